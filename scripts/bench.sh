#!/usr/bin/env bash
# Builds qtworker (release) and runs the benchmarks next to the baselines
# (one queued invokeMethod per value, QPromise + QFutureWatcher, superqt's
# thread_worker); prints the table and writes it into doc/performance.md.
# Debian 12, as root or with sudo: installs what it needs with apt-get.
# BENCH_BUILD_DIR picks the build directory (default build-bench). The table
# goes to stdout; build output and per-measurement progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh python3-superqt python3-pyqt6 python3-qtpy >&2
build="${BENCH_BUILD_DIR:-build-bench}"
if [ -d "$build" ]; then
    meson configure "$build" -Dbuildtype=release -Dbench=true >&2
else
    meson setup "$build" -Dbuildtype=release -Dbench=true -Dtests=false -Ddemos=false >&2
fi
meson compile -C "$build" >&2
export QT_QPA_PLATFORM=offscreen QT_API=pyqt6
# The distribution's python: that is where apt put PyQt6 and superqt.
exec /usr/bin/python3 bench/run_bench.py --build "$build" --doc doc/performance.md "$@"
