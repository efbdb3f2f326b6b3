#!/usr/bin/env bash
# build.sh NN_name.c|.cpp [build-dir]: compiles an attack program (C99, or
# C++17 with Qt Core for the ones that need a QThread) against the header and
# the library in build-dir (default build, at the repository root). Run it
# with QT_QPA_PLATFORM=offscreen ./NN_name[-build-dir].
set -euo pipefail
cd "$(dirname "$0")"; case $1 in probes/*) cd probes; set -- "${1#probes/}" "${@:2}";; esac
root=$(git rev-parse --show-toplevel)
src=$1; dir=${2:-build}; lib=$root/$dir
out=${src%.*}; [ "$dir" = build ] || out=$out-$dir
san=""
case $dir in *asan*) san="-fsanitize=address,undefined";; *tsan*) san="-fsanitize=thread";; esac
link=(-I"$root/capi" "$src" -o "$out" -L"$lib" -lqtworker -Wl,-rpath,"$lib" -lpthread)
case $src in
*.cpp) c++ -std=c++17 -g -O1 -Wall -fPIC $san "${link[@]}" $(pkg-config --cflags --libs Qt6Core) ;;
*) cc -std=c99 -D_GNU_SOURCE -g -O1 -Wall $san "${link[@]}" ;;
esac
echo "$out"
