#!/usr/bin/env bash
# Only worker_* symbols may be exported from the shared library (DESIGN.md),
# and every function the public header declares must be.
# usage: check_exports.sh NM LIBRARY HEADER
set -euo pipefail
nm_bin=$1 lib=$2 header=$3

syms=$(LC_ALL=C "$nm_bin" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 } NF == 2 { print $2 }')
if [ -z "$syms" ]; then
    echo "no defined dynamic symbols found in $lib" >&2
    exit 1
fi

status=0
stray=$(grep -v '^worker_' <<<"$syms" || true)
if [ -n "$stray" ]; then
    echo "exported symbols without the worker_ prefix:" >&2
    sed 's/^/  /' <<<"$stray" >&2
    status=1
fi

# Every function the header declares (QTWORKER_API lines), plus a few by name
# in case the header parse ever finds nothing.
# (the name right before the parenthesis: a return type may be worker_* too)
declared=$(grep -o 'QTWORKER_API[^(]*(' "$header" | grep -o 'worker_[a-z_]*[[:space:]]*($' | tr -d ' (' | sort -u)
for name in worker_create worker_yield worker_strerror $declared; do
    if ! grep -qx "$name" <<<"$syms"; then
        echo "not exported: $name" >&2
        status=1
    fi
done
[ "$status" = 0 ] && echo "ok: $(wc -l <<<"$syms") symbols, all worker_*; $(wc -w <<<"$declared") declared functions exported"
exit $status
