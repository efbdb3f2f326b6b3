#!/usr/bin/env bash
# build.sh NN_name.c [build-dir]: compiles an attack program against the
# header and the library in build-dir (default ../build). Run it with
# QT_QPA_PLATFORM=offscreen ./NN_name[-build-dir].
set -euo pipefail
cd "$(dirname "$0")"; case $1 in probes/*) cd probes; set -- "${1#probes/}" "${@:2}";; esac
src=$1; dir=${2:-build}; lib=$(cd "$(git rev-parse --show-toplevel)" && pwd)/$dir
out=${src%.c}; [ "$dir" = build ] || out=$out-$dir
san=""
case $dir in *asan*) san="-fsanitize=address,undefined";; *tsan*) san="-fsanitize=thread";; esac
cc -std=c99 -D_GNU_SOURCE -g -O1 -Wall $san -I"$(git rev-parse --show-toplevel)/capi" "$src" -o "$out" -L"$lib" -lqtworker -Wl,-rpath,"$lib" -lpthread
echo "$out"
