#!/usr/bin/env bash
# Installs what is needed, builds qtworker and runs the demo image viewer
# with its C plugins (demos/plugins/*.c). Extra arguments go to the viewer
# (try --help). Without a display it runs offscreen for a few seconds and
# writes a screenshot instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build-demo ] || meson setup build-demo -Dtests=false -Dbench=false -Ddemos=true
meson compile -C build-demo
viewer=./build-demo/demos/viewer/qtviewer
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    export QT_QPA_PLATFORM=offscreen
    shot=build-demo/demo-screenshot.png
    echo "no display: running offscreen for 3 s"
    "$viewer" --screenshot "$shot" --quit-after-ms 3000 "$@"
    echo "screenshot written to $(pwd)/$shot"
else
    exec "$viewer" "$@"
fi
