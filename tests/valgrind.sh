#!/bin/sh
# valgrind memcheck over a few end-to-end runs of a plain build: every kind of run a user makes
# most (sum; sumsig, stddev and com on 2 threads with live results; masks read with pread and
# drawn as previews; a TIFF dataset; runs that fail) must be free of invalid reads and writes,
# uninitialised values and definite or indirect leaks.
# Usage: sh tests/valgrind.sh BUILD_DIR (run from anywhere; BUILD_DIR holds udfhost and plugins).
# Prints one line per run and exits 1 if any run had a valgrind error.
set -u
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
export UDFHOST_PLUGIN_PATH="$build/plugins/.libs"
fixtures="$build/tests/plugins/.libs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
sample="$src/data/sample.raw"
shape="--format raw --dtype uint16 --nav-shape 24,32 --sig-shape 48,48"
failed=0

# check NAME EXPECTED_STATUS udfhost-arguments...: one run under memcheck. Exit status 99 is
# valgrind's: an error (a definite or indirect leak counts as one).
check() {
    name=$1
    want=$2
    shift 2
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --suppressions="$src/tests/valgrind.supp" --log-file="$tmp/$name.vg" \
        "$build/udfhost" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    status=$?
    if [ "$status" -eq "$want" ] && [ ! -s "$tmp/$name.vg" ]; then
        echo "PASS: valgrind $name"
    else
        echo "FAIL: valgrind $name (exit $status, expected $want)"
        cat "$tmp/$name.err" "$tmp/$name.vg"
        failed=1
    fi
}

check sum 0 run --plugin sum $shape -o "$tmp/sum" "$sample"
check threads 0 run --plugin sumsig --plugin stddev --plugin com $shape --threads 2 \
    --partition-size 64K --live-every 4 -o "$tmp/threads" "$sample"
check masks 0 run --plugin masks -p disk=24,24,8 -p ring=24,24,13,23 $shape --io read \
    --preview -o "$tmp/masks" "$sample"
# A TIFF dataset: radial's profile (24 x 32 positions x 16 bins) written as a 16-page stack.
check tiff-write 0 run --plugin radial $shape --save-format tiff -o "$tmp/radial" "$sample"
check tiff-read 0 run --plugin sum --plugin sumsig --threads 2 -o "$tmp/tiff" \
    "$tmp/radial/radial.profile.tif"
# Failures: a file shorter than its shape, a plugin that fails on a partition, results that
# exist already.
head -c 100000 "$sample" >"$tmp/short.raw"
check short-file 3 run --plugin sum $shape -o "$tmp/short" "$tmp/short.raw"
check plugin-fails 4 run --plugin sum --plugin "$fixtures/fail.so" -p hook=process_tile \
    -p partition=3 $shape --threads 2 --partition-size 16K -o "$tmp/fails" "$sample"
check exists 5 run --plugin sum $shape -o "$tmp/sum" "$sample"
exit $failed
