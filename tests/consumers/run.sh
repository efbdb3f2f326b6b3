#!/usr/bin/env bash
# Consumer checks: install qtworker to a temporary prefix, then build and run
# a C program against it via pkg-config and via CMake (a C and C++ project
# with the static component, and a C-only project), and use the source tree
# as a meson subproject.   run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd); build=$(cd "$2" && pwd)
here="$src/tests/consumers"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export QT_QPA_PLATFORM=offscreen
pass=0; fail=0
check() {  # check NAME COMMAND...
    if "${@:2}" >"$tmp/$1.log" 2>&1; then pass=$((pass + 1)); echo "ok   $1";
    else fail=$((fail + 1)); echo "FAIL $1"; sed 's/^/    /' "$tmp/$1.log" | tail -20; fi
}

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet
prefix="$tmp/root$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')"
libdir=$(dirname "$(find "$prefix" -name 'libqtworker.so.*' -type f | head -1)")
export LD_LIBRARY_PATH="$libdir"

check soname bash -c "readelf -d '$libdir'/libqtworker.so.*.*.* | grep -q 'SONAME.*libqtworker.so.[0-9]'"
check pkg-config bash -c "
  export PKG_CONFIG_PATH='$libdir/pkgconfig'
  cc -std=c99 -Wall -Wextra -pedantic -Werror '$here/consumer.c' -o '$tmp/pc' \
     \$(pkg-config --define-variable=prefix='$prefix' --cflags --libs qtworker) && '$tmp/pc'"
check cmake bash -c "
  cmake -S '$here/cmake' -B '$tmp/cm' -DCMAKE_PREFIX_PATH='$prefix' -DCMAKE_BUILD_TYPE=Release &&
  cmake --build '$tmp/cm' && '$tmp/cm/consumer_shared' && LD_LIBRARY_PATH= '$tmp/cm/consumer_static'"
# A C-only project (no C++ compiler enabled) finds the package, builds and
# runs; asking it for the static component fails with a reason, not inside Qt.
check cmake-c-only bash -c "
  cmake -S '$here/cmake-c' -B '$tmp/cmc' -DCMAKE_PREFIX_PATH='$prefix' -DCMAKE_BUILD_TYPE=Release &&
  cmake --build '$tmp/cmc' && '$tmp/cmc/consumer_c'"
check cmake-c-only-static-refused bash -c "
  ! cmake -S '$here/cmake-c' -B '$tmp/cmcs' -DCMAKE_PREFIX_PATH='$prefix' -DQTW_REQUEST_STATIC=ON \
      >'$tmp/cmcs.log' 2>&1 && cat '$tmp/cmcs.log' &&
  tr -s ' \n' '  ' <'$tmp/cmcs.log' | grep -q 'component \"static\" needs C++'"
check meson-subproject bash -c "
  mkdir -p '$tmp/sub/subprojects' && cp '$here/meson/meson.build' '$tmp/sub/' &&
  cp '$here/consumer.c' '$tmp/' && ln -s '$src' '$tmp/sub/subprojects/qtworker' &&
  meson setup '$tmp/sub/build' '$tmp/sub' && meson compile -C '$tmp/sub/build' &&
  LD_LIBRARY_PATH= '$tmp/sub/build/consumer'"
echo "consumers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
