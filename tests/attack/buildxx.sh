#!/usr/bin/env bash
# buildxx.sh NN_name.cpp [build-dir]: like build.sh, for probes that need a QThread.
set -euo pipefail
cd "$(dirname "$0")"; case $1 in probes/*) cd probes; set -- "${1#probes/}" "${@:2}";; esac
src=$1; dir=${2:-build}; lib=$(cd "$(git rev-parse --show-toplevel)" && pwd)/$dir
out=${src%.cpp}; [ "$dir" = build ] || out=$out-$dir
san=""
case $dir in *asan*) san="-fsanitize=address,undefined";; *tsan*) san="-fsanitize=thread";; esac
c++ -std=c++17 -g -O1 -Wall -fPIC $san -I"$(git rev-parse --show-toplevel)/capi" "$src" -o "$out" $(pkg-config --cflags --libs Qt6Core) -L"$lib" -lqtworker -Wl,-rpath,"$lib" -lpthread
echo "$out"
