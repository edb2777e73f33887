#!/bin/sh
# `make fuzz`: build the libFuzzer targets (build.sh) and run each for $FUZZ_SECONDS (default 60)
# under OSS-Fuzz's limits (2560 MB, 25 s per input) plus our own: no single allocation above
# 256 MiB (inputs are at most 16 KiB, far below the 1 MB of the peak-memory rule).
#
#   tests/fuzz/fuzz.sh [WORKDIR]      (default tests/fuzz: out/, work/<target>/, crashes/)
#
# Seeds come from tests/fuzz/corpus/<target>/ (read only); inputs that add coverage go to
# WORKDIR/work/<target>/ (copy the useful ones into the corpus by hand, after
# `TARGET -merge=1 corpus/TARGET work/TARGET`); crashers go to WORKDIR/crashes/<target>-*.
# Exit status 1 if any target found something.
set -u

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-"fuzz_npy_header fuzz_array fuzz_dataset fuzz_hdf5 fuzz_raw fuzz_mib_hdr
    fuzz_ini fuzz_shape"}

"$here/build.sh" "$dir/out" || exit 1
mkdir -p "$dir/crashes" "$dir/work/tmp"
FUZZ_TMPDIR=$dir/work/tmp # crashed children leave their temp files here; removed at the end
export FUZZ_TMPDIR
# libhdf5's own leaks on corrupt files are suppressed (see lsan-hdf5.supp); matching them needs
# full malloc stacks. Huge allocations fail as in production instead of aborting.
HDF5_USE_FILE_LOCKING=FALSE
ASAN_OPTIONS="allocator_may_return_null=1:fast_unwind_on_malloc=0:${ASAN_OPTIONS:-}"
LSAN_OPTIONS="suppressions=$here/lsan-hdf5.supp:${LSAN_OPTIONS:-}"
export HDF5_USE_FILE_LOCKING ASAN_OPTIONS LSAN_OPTIONS
status=0
for t in $targets; do
    mkdir -p "$dir/work/$t"
    echo "== $t: $seconds s"
    if ! "$dir/out/$t" -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2560 \
            -malloc_limit_mb=256 -timeout=25 -print_final_stats=1 \
            -artifact_prefix="$dir/crashes/$t-" "$dir/work/$t" "$here/corpus/$t" \
            >"$dir/work/$t.log" 2>&1; then
        status=1
        grep -E 'ERROR|SUMMARY|Test unit written' "$dir/work/$t.log"
        echo "FAIL: $t (log: $dir/work/$t.log)"
    fi
    grep -E '^#[0-9]+.*(DONE|pulse)' "$dir/work/$t.log" | tail -n 1
done
rm -rf "$dir/work/tmp"
exit $status
