#!/usr/bin/env bash
# Installs what is needed, builds qtworker and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export QT_QPA_PLATFORM=offscreen
[ -d build-test ] || meson setup build-test -Dtests=true
meson compile -C build-test
meson test -C build-test --print-errorlogs
# The design contract lives beside the project in development clones only.
if [ -x ../shared/tools/check-contract ]; then
    ../shared/tools/check-contract
fi
