#!/usr/bin/env bash
# Installs what is needed, builds qtworker and runs the whole test suite:
# a normal build, then the same suite under ASan+UBSan and under TSan.
#   QTW_SANITIZERS="none" skips the sanitizer builds (quick local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export QT_QPA_PLATFORM=offscreen
here=$(pwd)

stage() {  # stage NAME BUILD_DIR [meson options...]
    local name=$1 dir=$2
    shift 2
    local t0=$SECONDS
    echo "=== $name ==="
    [ -d "$dir" ] || meson setup "$dir" -Dbench=false "$@"
    meson compile -C "$dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2
    echo "=== $name: $((SECONDS - t0)) s ==="
}

stage "tests" build-test

if [ "${QTW_SANITIZERS:-all}" != none ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    stage "tests under ASan+UBSan" build-asan -Dbuildtype=debug \
        -Db_sanitize=address,undefined -Db_lundef=false
    unset ASAN_OPTIONS UBSAN_OPTIONS
    # Qt is not built with TSan: the only suppressions, for Qt's own
    # libraries, live in this one commented file.
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$here/tests/tsan.supp"
    stage "tests under TSan" build-tsan -Dbuildtype=debug -Db_sanitize=thread -Db_lundef=false
    unset TSAN_OPTIONS
fi

# The design contract lives beside the project in development clones only.
if [ -x ../shared/tools/check-contract ]; then
    ../shared/tools/check-contract
fi
