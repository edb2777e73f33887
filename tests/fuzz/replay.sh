#!/bin/sh
# Replay every fuzz corpus under AddressSanitizer + UndefinedBehaviorSanitizer without libFuzzer:
# builds the targets with $CC (default gcc) and replay.c, then runs each over
# tests/fuzz/corpus/<target>/. Exit 0 when every input ran clean, 1 on any sanitizer report or
# unreadable input, 77 (automake's "skipped") when the sanitizers or libraries are missing.
#
#   tests/fuzz/replay.sh [OUTDIR]     (default: a temporary directory, removed afterwards)
set -u

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
    out=$1
    keep=1
else
    out=$(mktemp -d "${TMPDIR:-/tmp}/udfhost-replay.XXXXXX") || exit 1
    keep=0
fi
cleanup() { [ $keep = 1 ] || rm -rf "$out"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! pkg-config --exists libtiff-4 hdf5 inih libpng 2>/dev/null; then
    echo "replay.sh: pkg-config cannot find libtiff-4 hdf5 inih libpng: skipped"
    exit 77
fi
if ! echo 'int main(void){return 0;}' |
        ${CC:-gcc} -x c -fsanitize=address,undefined -o "$out/probe" - 2>/dev/null; then
    echo "replay.sh: ${CC:-gcc} cannot build with -fsanitize=address,undefined: skipped"
    exit 77
fi
if ! "$here/build.sh" --replay "$out" >"$out/build.log" 2>&1; then
    cat "$out/build.log"
    echo "replay.sh: build failed"
    exit 1
fi

# Any report is fatal, leaks included. max_allocation_size_mb: the inputs are a few KiB, so an
# allocation above 256 MiB breaks the peak-memory rule and fails the replay, as under libFuzzer.
# fast_unwind_on_malloc=0 gives the full stacks (through libhdf5) the suppressions match.
ASAN_OPTIONS="detect_leaks=1:max_allocation_size_mb=256:fast_unwind_on_malloc=0:${ASAN_OPTIONS:-}"
LSAN_OPTIONS="suppressions=$here/lsan-hdf5.supp:${LSAN_OPTIONS:-}"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
HDF5_USE_FILE_LOCKING=FALSE
FUZZ_TMPDIR=$out # where fuzz_hdf5, fuzz_mib_hdr and fuzz_ini write their input file
export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS HDF5_USE_FILE_LOCKING FUZZ_TMPDIR

status=0
for t in fuzz_npy_header fuzz_array fuzz_dataset fuzz_hdf5 fuzz_raw fuzz_mib_hdr fuzz_ini \
    fuzz_shape; do
    if [ ! -d "$here/corpus/$t" ]; then
        echo "FAIL: $t: no corpus in $here/corpus/$t"
        status=1
    elif "$out/$t" "$here/corpus/$t" >"$out/$t.log" 2>&1; then
        echo "PASS: $t: $(tail -n 1 "$out/$t.log" | sed 's/.*: \([0-9]* inputs\).*/\1/')"
    else
        cat "$out/$t.log"
        echo "FAIL: $t"
        status=1
    fi
done
exit $status
