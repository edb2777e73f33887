#!/bin/sh
# bench/run.sh: udfhost against the read-bandwidth ceiling of this machine and against NumPy.
# Run from a build directory (make bench does): see bench/README.md.
#
# Environment (all optional):
#   UDFHOST=./udfhost  UDFHOST_PLUGIN_PATH=./plugins/.libs  PYTHON_NUMPY=python3  CC=cc
#   BENCH_DIR=./bench-data   data, helpers and scratch (kept between runs; not in git)
#   BENCH_GB=1               uint16 dataset size in GiB (scales the nav rows of 128 x 256)
#   BENCH_REPS=5             repetitions per measurement (medians are reported)
#   BENCH_QUICK=1            ~10 s smoke run: tiny data, 1 rep, a few ops, checks sum vs NumPy
#   BENCH_CSV=./bench-results.csv
#   BENCH_COLD=auto|0        cold pass (drop_caches) when permitted; 0 skips it
#   BENCH_OPS="sum radial"   only these rows (op, or op:dtype, e.g. com:float32); default all
#   BENCH_THREADS="2"        only these thread counts; default 1 and all cores
# Exit status: 0 when every measured command succeeded (and, with BENCH_QUICK, the checks
# passed), 1 otherwise.
set -u

here=$(cd "$(dirname "$0")" && pwd)
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "${1#./}" ;; esac; }

UDFHOST=$(abspath "${UDFHOST:-./udfhost}")
UDFHOST_PLUGIN_PATH=${UDFHOST_PLUGIN_PATH:-$(abspath ./plugins/.libs)}
export UDFHOST_PLUGIN_PATH
PY=${PYTHON_NUMPY:-}
if [ -z "$PY" ]; then   # the first of these that imports numpy (configure prefers /usr/bin/python3)
    for PY in /usr/bin/python3 python3 false; do "$PY" -c 'import numpy' 2>/dev/null && break; done
fi
CC=${CC:-cc}
BENCH_DIR=$(abspath "${BENCH_DIR:-./bench-data}")
BENCH_GB=${BENCH_GB:-1}
BENCH_QUICK=${BENCH_QUICK:-0}
[ "$BENCH_QUICK" = 1 ] && REPS=${BENCH_REPS:-1} || REPS=${BENCH_REPS:-5}
BENCH_CSV=$(abspath "${BENCH_CSV:-./bench-results.csv}")
BENCH_COLD=${BENCH_COLD:-auto}
BENCH_OPS=${BENCH_OPS:-}
# The NumPy reference runs on one core: numpy_ref.py sets OMP/OpenBLAS/MKL/BLIS threads to 1
# itself (not exported here: GNU nproc would then report 1 core).

die() { echo "bench: $*" >&2; exit 1; }
case $REPS in '' | *[!0-9]* | 0) die "BENCH_REPS must be a positive integer" ;; esac
[ -x "$UDFHOST" ] || die "no udfhost at $UDFHOST (run from the build directory or set UDFHOST)"
"$PY" -c 'import numpy' 2>/dev/null || die "$PY cannot import numpy (set PYTHON_NUMPY)"

NPROC=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
THREADS=1
[ "$NPROC" -gt 1 ] && THREADS="1 $NPROC"
THREADS=${BENCH_THREADS:-$THREADS}

mkdir -p "$BENCH_DIR" || die "cannot create $BENCH_DIR"
tmp=$BENCH_DIR/run.$$
rm -rf "$tmp" && mkdir -p "$tmp" || die "cannot create $tmp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
raw=$tmp/raw          # one measurement a line: op dtype threads kind value
: >"$raw"
: >"$tmp/failures"
start=$(date +%s)

# --- helpers, built here so that no Makefile change is needed ------------------------------------
CEIL=$BENCH_DIR/ceiling
WT=$BENCH_DIR/walltime
$CC -O3 -ftree-vectorize -pthread -o "$CEIL" "$here/ceiling.c" || die "cannot build ceiling.c"
$CC -O2 -o "$WT" "$here/walltime.c" || die "cannot build walltime.c"

# --- machine ---------------------------------------------------------------------------------------
model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
echo "machine: $NPROC cores, ${model:-unknown CPU}, $mem RAM, $(uname -sr)"
echo "udfhost: $UDFHOST (plugins: $UDFHOST_PLUGIN_PATH); numpy: $("$PY" -c 'import numpy, sys; print(sys.executable, numpy.__version__)')"
{
    echo "machine: $NPROC cores, ${model:-unknown CPU}, $mem RAM, $(uname -sr)"
} >"$BENCH_DIR/machine.txt"

# --- data ------------------------------------------------------------------------------------------
if [ "$BENCH_QUICK" = 1 ]; then
    NAV16=8,16 NAV32=4,16 SIG=64,64
else
    rows=$(awk -v g="$BENCH_GB" 'BEGIN { r = int(128 * g + 0.5); if (r < 2) r = 2; print r }')
    NAV16=$rows,256 NAV32=$((rows / 2)),256 SIG=128,128
fi
TNAV=16,16 TSIG=64,64
name() { echo "$BENCH_DIR/scan-$1-$(echo "$2" | tr , x)-$(echo "$3" | tr , x).raw"; }
F16=$(name uint16 $NAV16 $SIG)
F32=$(name float32 $NAV32 $SIG)
FTINY=$(name uint16 $TNAV $TSIG)
MASKS=$BENCH_DIR/masks16-$(echo $SIG | tr , x).npy
for spec in "uint16 $NAV16 $F16" "float32 $NAV32 $F32" "uint16 $TNAV:$TSIG $FTINY"; do
    set -- $spec
    dt=$1 nav=${2%%:*} f=$3 sig=$SIG
    case $2 in *:*) sig=${2#*:} ;; esac
    if [ ! -f "$f" ]; then
        echo "generating $f ($dt, nav $nav, sig $sig)"
        "$PY" "$here/numpy_ref.py" gen "$f" --dtype "$dt" --nav "$nav" --sig "$sig" ||
            die "cannot generate $f"
    fi
done
[ -f "$MASKS" ] || "$PY" "$here/numpy_ref.py" masks "$MASKS" --sig "$SIG" || die "cannot write $MASKS"

fsize() { wc -c <"$1" | tr -d ' '; }
# Page-cache state: evict each file, then read it once, so the cache holds it as read from disk
# (not as just written, where mmap readers fault on small pages), as real data would be.
for f in "$F16" "$F32" "$FTINY"; do
    "$PY" "$here/numpy_ref.py" evict "$f" || die "cannot evict $f"
    cat "$f" >/dev/null
done
echo "data: $F16 ($(fsize "$F16") bytes), $F32 ($(fsize "$F32") bytes)"
echo "page cache: warm, as read from disk (posix_fadvise DONTNEED, then read once with cat);"
echo "            each file is re-read with cat right before every measurement"
echo "timing: medians of $REPS interleaved repetitions (ceiling mmap, ceiling pread, udfhost per"
echo "        thread count, then NumPy); udfhost and the ceiling readers: whole-process wall time;"
echo "        NumPy: the operation only (no interpreter start), one thread"
echo

# --- measuring -------------------------------------------------------------------------------------
# timed FILE CMD...: re-read FILE, run CMD under walltime; sets secs, rss_kib; returns CMD's status.
timed() {
    f=$1
    shift
    cat "$f" >/dev/null
    "$WT" "$tmp/wt" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    st=$?
    secs=0 rss_kib=0
    [ -s "$tmp/wt" ] && read -r secs rss_kib _ <"$tmp/wt"
    return $st
}
rec() { echo "$1 $2 $3 $4 $5" >>"$raw"; }
fail() {
    echo "FAILED: $1 ($2, threads $3): $(head -n 3 "$tmp/err" | tr '\n' ' ')" | tee -a "$tmp/failures" >&2
}

# wanted OP DTYPE: the row is in BENCH_OPS (as OP or OP:DTYPE), or BENCH_OPS is empty.
wanted() {
    [ -z "$BENCH_OPS" ] && return 0
    for w in $(echo "$BENCH_OPS" | tr , ' '); do
        [ "$w" = "$1" ] || [ "$w" = "$1:$2" ] && return 0
    done
    return 1
}

# bench_op OP DTYPE FILE NAV SIG NUMPY_OP -- UDFHOST_PLUGIN_ARGS...
bench_op() {
    op=$1 dt=$2 file=$3 nav=$4 sig=$5 npop=$6
    shift 7
    wanted "$op" "$dt" || return 0
    bytes=$(fsize "$file")
    [ "$op" = pick ] && bytes=0     # reads one frame: time, not bandwidth
    printf '%-17s %-8s' "$op" "$dt" >&2
    for t in $THREADS; do rec "$op" "$dt" "$t" bytes "$bytes"; done
    rec "$op" "$dt" np bytes "$bytes"
    rep=1
    while [ "$rep" -le "$REPS" ]; do
        for t in $THREADS; do
            if [ "$op" != pick ]; then
                for mode in mmap pread; do
                    if timed "$file" "$CEIL" "$mode" "$file" "$t"; then
                        rec "$op" "$dt" "$t" "$mode" "$secs"
                    else
                        fail "ceiling $mode" "$dt" "$t"
                    fi
                done
            fi
            rm -rf "$tmp/udf-out"
            if timed "$file" "$UDFHOST" run "$@" --format raw --dtype "$dt" --nav-shape "$nav" \
                --sig-shape "$sig" --threads "$t" -q -o "$tmp/udf-out" "$file"; then
                rec "$op" "$dt" "$t" udf "$secs"
                if [ "$rep" = 1 ]; then
                    # Peak RSS as GNU time reports it (%M, KiB), in a separate untimed run.
                    if [ -x /usr/bin/time ]; then
                        cat "$file" >/dev/null
                        /usr/bin/time -f %M -o "$tmp/rss" "$UDFHOST" run "$@" --format raw \
                            --dtype "$dt" --nav-shape "$nav" --sig-shape "$sig" --threads "$t" \
                            -q --overwrite -o "$tmp/udf-out2" "$file" >/dev/null 2>&1 </dev/null &&
                            rss_kib=$(tail -n 1 "$tmp/rss")
                    fi
                    rec "$op" "$dt" "$t" rss "$rss_kib"
                fi
            else
                fail "udfhost $op" "$dt" "$t"
                rec "$op" "$dt" "$t" failed 1
            fi
        done
        save=
        [ "$BENCH_QUICK" = 1 ] && save="--save $tmp/np-out"
        if timed "$file" "$PY" "$here/numpy_ref.py" run --file "$file" --dtype "$dt" --nav "$nav" \
            --sig "$sig" --op "$npop" --masks "$MASKS" --at "$AT" $save; then
            rec "$op" "$dt" np np "$(awk '{ print $2; exit }' "$tmp/out")"
            note=$(sed -n 's/.*# //p' "$tmp/out")
            [ -n "$note" ] && [ "$rep" = 1 ] && echo "$op $dt: numpy uses $note" >>"$tmp/notes"
        else
            fail "numpy $npop" "$dt" 1
        fi
        printf '.' >&2
        rep=$((rep + 1))
    done
    echo >&2
}

# Frame in the middle of the scan for pick.
AT=$(echo "$NAV16" | awk -F, '{ print int($1 / 2) "," int($2 / 2) }')

if [ "$BENCH_QUICK" = 1 ]; then
    check() {   # check UDF_NAME NP_NAME: udfhost's last result equals NumPy's, exactly
        "$PY" "$here/numpy_ref.py" check "$tmp/udf-out" "$1" "$tmp/np-out" "$2" --exact ||
            echo "FAILED: check $1" >>"$tmp/failures"
    }
    bench_op sum uint16 "$F16" "$NAV16" "$SIG" sum -- --plugin sum
    wanted sum uint16 && check sum.intensity.npy sum.intensity.npy
    bench_op sumsig uint16 "$F16" "$NAV16" "$SIG" sumsig -- --plugin sumsig
    wanted sumsig uint16 && check sumsig.intensity.npy sumsig.intensity.npy
    bench_op com uint16 "$F16" "$NAV16" "$SIG" com -- --plugin com
    bench_op sum float32 "$F32" "$NAV32" "$SIG" sum -- --plugin sum
else
    for dt in uint16 float32; do
        if [ $dt = uint16 ]; then f=$F16 nav=$NAV16; else f=$F32 nav=$NAV32; fi
        bench_op sum $dt "$f" "$nav" "$SIG" sum -- --plugin sum
        [ $dt = uint16 ] && {
            bench_op sumsig $dt "$f" "$nav" "$SIG" sumsig -- --plugin sumsig
            bench_op max $dt "$f" "$nav" "$SIG" max -- --plugin max
        }
        bench_op stddev $dt "$f" "$nav" "$SIG" stddev -- --plugin stddev
        [ $dt = uint16 ] && {
            bench_op masks-disk $dt "$f" "$nav" "$SIG" disk -- --plugin masks -p disk=64,64,20
            bench_op masks-dense16 $dt "$f" "$nav" "$SIG" dense16 -- \
                --plugin masks -p "file=$MASKS" -p sparse=false
            bench_op masks-dense16-f32 $dt "$f" "$nav" "$SIG" dense16 -- \
                --plugin masks -p "file=$MASKS" -p sparse=false -p compute=float32
            bench_op masks-rings16 $dt "$f" "$nav" "$SIG" rings16 -- \
                --plugin masks -p radial_bins=64,64,0,64,16 -p sparse=true
        }
        bench_op com $dt "$f" "$nav" "$SIG" com -- --plugin com
        [ $dt = uint16 ] && {
            bench_op radial $dt "$f" "$nav" "$SIG" radial -- --plugin radial
            bench_op pick $dt "$f" "$nav" "$SIG" pick -- --plugin pick -p "at=$AT"
            bench_op logsum $dt "$f" "$nav" "$SIG" logsum -- --plugin logsum
            bench_op sum+sumsig+com $dt "$f" "$nav" "$SIG" fused -- \
                --plugin sum --plugin sumsig --plugin com
            # The I/O backends other than the default (mmap for data in page cache).
            bench_op sum-io-read $dt "$f" "$nav" "$SIG" sum -- --plugin sum --io read
            bench_op sum-io-direct $dt "$f" "$nav" "$SIG" sum -- --plugin sum --io direct
        }
    done
fi

# Tiny dataset: whole-process time of udfhost sum (2 MiB; process start dominates).
tiny_reps=$REPS
[ "$BENCH_QUICK" = 1 ] || [ "$REPS" -ge 11 ] || tiny_reps=11
REPS_SAVE=$REPS REPS=$tiny_reps
bench_op sum-tiny uint16 "$FTINY" "$TNAV" "$TSIG" sum -- --plugin sum
REPS=$REPS_SAVE

# Cold pass: caches dropped before each run; udfhost sum (all cores) vs dd's sequential read,
# with each I/O backend: cold_row NAME UDFHOST_IO_ARGS...
cold_row() {
    row=$1
    shift
    wanted "$row" uint16 || return 0
    bytes=$(fsize "$F16")
    rec "$row" uint16 "$NPROC" bytes "$bytes"
    printf '%-17s %-8s' "$row" uint16 >&2
    i=1
    while [ "$i" -le "$creps" ]; do
        sync && echo 1 >/proc/sys/vm/drop_caches
        if "$WT" "$tmp/wt" dd if="$F16" of=/dev/null bs=16M >/dev/null 2>"$tmp/err" </dev/null; then
            read -r secs _ <"$tmp/wt" && rec "$row" uint16 "$NPROC" dd "$secs"
        else
            fail "dd cold" uint16 1
        fi
        sync && echo 1 >/proc/sys/vm/drop_caches
        rm -rf "$tmp/udf-out"
        if "$WT" "$tmp/wt" "$UDFHOST" run --plugin sum "$@" --format raw --dtype uint16 \
            --nav-shape "$NAV16" --sig-shape "$SIG" --threads "$NPROC" -q -o "$tmp/udf-out" \
            "$F16" >/dev/null 2>"$tmp/err" </dev/null; then
            read -r secs rss_kib _ <"$tmp/wt" && rec "$row" uint16 "$NPROC" udf "$secs"
            [ "$i" = 1 ] && rec "$row" uint16 "$NPROC" rss "$rss_kib"
        else
            fail "udfhost $row" uint16 "$NPROC"
            rec "$row" uint16 "$NPROC" failed 1
        fi
        printf '.' >&2
        i=$((i + 1))
    done
    echo >&2
}

cold=no
if [ "$BENCH_QUICK" != 1 ] && [ "$BENCH_COLD" != 0 ] &&
    { wanted sum-cold uint16 || wanted sum-cold-read uint16 || wanted sum-cold-direct uint16; } &&
    { sync && echo 1 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    cold=yes
    creps=$REPS
    [ "$creps" -gt 3 ] && creps=3
    cold_row sum-cold
    cold_row sum-cold-read --io read
    cold_row sum-cold-direct --io direct
    cat "$F16" >/dev/null   # leave it warm
fi

# --- report ----------------------------------------------------------------------------------------
# Medians per (op, dtype, threads, kind); the ceiling is the faster of the mmap and pread medians
# at that thread count (dd for the cold row); NumPy is the single-thread reference for every row.
awk -v csv="$BENCH_CSV" '
function median(key,   n, i, j, v, a) {
    n = cnt[key]
    if (n == 0) return ""
    for (i = 1; i <= n; i++) a[i] = val[key, i]
    for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
    if ($4 == "bytes") { bytes[$1, $2, $3] = $5; if ($3 != "np" && !(($1, $2, $3) in seen)) { seen[$1, $2, $3] = 1; order[++nrow] = $1 SUBSEP $2 SUBSEP $3 } ; next }
    if ($4 == "rss") { rss[$1, $2, $3] = $5; next }
    if ($4 == "failed") { failed[$1, $2, $3] = 1; next }
    val[k, ++cnt[k]] = $5
}
END {
    hdr = sprintf("%-17s %-7s %7s %9s %7s %8s %7s %9s %8s %8s", "operation", "dtype", "threads", "seconds", "GB/s", "ceil GB/s", "of ceil", "numpy s", "vs numpy", "RSS MiB")
    print hdr
    gsub(/./, "-", hdr); print hdr
    print "operation,dtype,threads,median_s,gbps,ceiling_gbps,ceiling_fraction,numpy_s,speedup_vs_numpy,peak_rss_mib,ceiling_mmap_s,ceiling_pread_s,ceiling_dd_s,reps,status" > csv
    for (r = 1; r <= nrow; r++) {
        split(order[r], p, SUBSEP); op = p[1]; dt = p[2]; t = p[3]
        b = bytes[op, dt, t]
        u = median(op SUBSEP dt SUBSEP t SUBSEP "udf")
        mm = median(op SUBSEP dt SUBSEP t SUBSEP "mmap")
        pr = median(op SUBSEP dt SUBSEP t SUBSEP "pread")
        dd = median(op SUBSEP dt SUBSEP t SUBSEP "dd")
        np_s = median(op SUBSEP dt SUBSEP "np" SUBSEP "np")
        c = ""
        if (mm != "") c = mm
        if (pr != "" && (c == "" || pr < c)) c = pr
        if (dd != "" && (c == "" || dd < c)) c = dd
        status = (op SUBSEP dt SUBSEP t) in failed ? "FAILED" : "ok"
        gb = (u != "" && b > 0) ? sprintf("%.2f", b / u / 1e9) : "-"
        cg = (c != "" && b > 0) ? sprintf("%.2f", b / c / 1e9) : "-"
        fr = (u != "" && c != "" && b > 0) ? sprintf("%.0f%%", 100 * c / u) : "-"
        frc = (u != "" && c != "" && b > 0) ? sprintf("%.3f", c / u) : ""
        sp = (u != "" && np_s != "") ? sprintf("%.1fx", np_s / u) : "-"
        spc = (u != "" && np_s != "") ? sprintf("%.2f", np_s / u) : ""
        rs = ((op, dt, t) in rss) ? sprintf("%.1f", rss[op, dt, t] / 1024) : "-"
        printf "%-17s %-7s %7s %9s %7s %8s %7s %9s %8s %8s%s\n", op, dt, t, (u == "" ? "FAILED" : sprintf("%.4f", u)), gb, cg, fr, (np_s == "" ? "-" : sprintf("%.4f", np_s)), sp, rs, (status == "ok" ? "" : "  " status)
        printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%d,%s\n", op, dt, t, u, (gb == "-" ? "" : gb), (cg == "-" ? "" : cg), frc, np_s, spc, (rs == "-" ? "" : rs), mm, pr, dd, cnt[op SUBSEP dt SUBSEP t SUBSEP "udf"], status > csv
    }
}' "$raw"

echo
echo "GB/s: input bytes (1e9) per second of whole-process udfhost time. of ceil: the ceiling's time"
echo "over udfhost's (ceiling = faster of the mmap and pread readers, same threads, same loop;"
echo "dd's sequential read for the sum-cold rows). vs numpy: NumPy's time (1 thread, op only) over udfhost's."
echo "pick reads one frame: its time should not depend on the dataset size."
[ -s "$tmp/notes" ] && sort -u "$tmp/notes"
[ "$cold" = yes ] && echo "sum-cold*: page cache dropped (echo 1 > /proc/sys/vm/drop_caches) before every run." ||
    echo "cold pass: skipped (BENCH_QUICK, BENCH_COLD=0, or drop_caches not permitted)"
echo "CSV: $BENCH_CSV   ($(($(date +%s) - start)) s in all)"

if [ -s "$tmp/failures" ]; then
    echo
    echo "failures:"
    cat "$tmp/failures"
    exit 1
fi
exit 0
