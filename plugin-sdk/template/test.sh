#!/bin/sh
# Runs the plugin through `udfhost run` on generated data (odd shapes, 1 and 3 threads, small
# partitions) and compares every result with check.c's own computation; then asks
# `udfhost check-plugin` for its opinion. Called by `make test`; exits non-zero on any mismatch.
# Environment: UDFHOST (default: udfhost in PATH), PLUGIN (default: myplugin).
set -eu
UDFHOST=${UDFHOST:-udfhost}
PLUGIN=${PLUGIN:-myplugin}
NAV=7,9
SIG=13,11
THRESHOLD=1000

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

./check generate "$tmp/scan.raw" $NAV $SIG
for threads in 1 3; do
    rm -rf "$tmp/out"
    "$UDFHOST" run -q --plugin "./$PLUGIN.so" -p threshold=$THRESHOLD \
        --format raw --dtype uint16 --byte-order little --nav-shape $NAV --sig-shape $SIG \
        --threads $threads --partition-size 2K -o "$tmp/out" "$tmp/scan.raw"
    ./check verify "$tmp/scan.raw" $NAV $SIG $THRESHOLD "$tmp/out" "$PLUGIN"
    echo "PASS: $PLUGIN, $threads thread(s)"
done
"$UDFHOST" check-plugin "./$PLUGIN.so"
