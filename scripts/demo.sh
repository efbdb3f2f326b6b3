#!/usr/bin/env bash
# Installs what is needed, builds qtworker and runs the demo.
# Without a display it runs offscreen.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build-demo ] || meson setup build-demo -Dtests=false
meson compile -C build-demo
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    export QT_QPA_PLATFORM=offscreen
    echo "no display: running offscreen"
fi
exec ./build-demo/examples/generator_example
