#!/bin/sh
# bench/python.sh: the Python package against the command-line tool, in the same run (make
# bench-python; see bench/README.md). For each plugin row, interleaved repetitions of
#   cli     `udfhost run` on the bench file, whole process (walltime)
#   py-run  ctx.run_udf(...) inside Python, the call alone (perf_counter), results as NumPy
#   py      the same Python program, whole process (interpreter, imports, run)
# then import costs (python3 -c 'import numpy' against import udfhost.api + a run on a tiny
# dataset + its result as an array, whole process) and peak RSS (CLI, Python, numpy alone).
# Environment: as bench/run.sh (UDFHOST, UDFHOST_PLUGIN_PATH, PYTHON_NUMPY, BENCH_DIR, BENCH_GB,
# BENCH_REPS, BENCH_THREADS); UDFHOST_PYLIB: the package (default ./pylib).
set -u
here=$(cd "$(dirname "$0")" && pwd)
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "${1#./}" ;; esac; }
UDFHOST=$(abspath "${UDFHOST:-./udfhost}")
UDFHOST_PLUGIN_PATH=${UDFHOST_PLUGIN_PATH:-$(abspath ./plugins/.libs)}
PYLIB=$(abspath "${UDFHOST_PYLIB:-./pylib}")
PY=${PYTHON_NUMPY:-/usr/bin/python3}
CC=${CC:-cc}
BENCH_DIR=$(abspath "${BENCH_DIR:-./bench-data}")
BENCH_GB=${BENCH_GB:-1}
REPS=${BENCH_REPS:-5}
NPROC=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
T=${BENCH_THREADS:-$NPROC}
export UDFHOST_PLUGIN_PATH
die() { echo "bench-python: $*" >&2; exit 1; }
[ -x "$UDFHOST" ] || die "no udfhost at $UDFHOST"
PYTHONPATH=$PYLIB "$PY" -c 'import udfhost.api' || die "cannot import udfhost.api from $PYLIB"

mkdir -p "$BENCH_DIR" || die "cannot create $BENCH_DIR"
tmp=$BENCH_DIR/py.$$
rm -rf "$tmp" && mkdir -p "$tmp" || die "cannot create $tmp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
WT=$BENCH_DIR/walltime
$CC -O2 -o "$WT" "$here/walltime.c" || die "cannot build walltime.c"

rows=$(awk -v g="$BENCH_GB" 'BEGIN { r = int(128 * g + 0.5); if (r < 2) r = 2; print r }')
NAV=$rows,256 SIG=128,128
F=$BENCH_DIR/scan-uint16-${rows}x256-128x128.raw
FTINY=$BENCH_DIR/scan-uint16-16x16-64x64.raw
[ -f "$F" ] || "$PY" "$here/numpy_ref.py" gen "$F" --dtype uint16 --nav "$NAV" --sig "$SIG" ||
    die "cannot generate $F"
[ -f "$FTINY" ] || "$PY" "$here/numpy_ref.py" gen "$FTINY" --dtype uint16 --nav 16,16 --sig 64,64 ||
    die "cannot generate $FTINY"
for f in "$F" "$FTINY"; do "$PY" "$here/numpy_ref.py" evict "$f"; cat "$f" >/dev/null; done
bytes=$(wc -c <"$F" | tr -d ' ')

echo "machine: $NPROC cores, $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1), $(uname -sr)"
echo "data: $F ($bytes bytes, uint16, nav $NAV, sig $SIG), page cache warm (re-read before each run)"
echo "threads: $T; medians of $REPS interleaved repetitions"
echo

# The Python side of a row: PLUGIN-SPEC as Python expressions, e.g. 'lt.Plugin("sum")'.
cat >"$tmp/run.py" <<'EOF'
import sys, time
import numpy as np
import udfhost.api as lt
path, nav, sig, threads, out, reread = sys.argv[1:7]
udfs = eval("[" + sys.argv[7] + "]", {"lt": lt})
ctx = lt.Context(threads=int(threads))
ds = ctx.load("raw", path=path, dtype="uint16", nav_shape=tuple(map(int, nav.split(","))),
              sig_shape=tuple(map(int, sig.split(","))))
# Re-read the file right before the run, as the shell does with cat right before the CLI's run:
# the interpreter's start-up would otherwise put 0.1 s between the two.
if reread == "1":
    buf = bytearray(16 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    del buf
t = time.perf_counter()
res = ctx.run_udf(dataset=ds, udf=udfs)
arrays = [b.data for r in res for b in r.values()]
secs = time.perf_counter() - t
assert all(isinstance(a, np.ndarray) for a in arrays)
open(out, "w").write("%.6f\n" % secs)
EOF

timed() { # timed FILE CMD...: re-read FILE, run CMD under walltime; sets secs, rss
    cat "$1" >/dev/null
    shift
    "$WT" "$tmp/wt" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || { cat "$tmp/err" >&2; return 1; }
    read -r secs rss _ <"$tmp/wt"
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# row NAME PYTHON-UDFS -- CLI-PLUGIN-ARGS...
#   cli    the CLI's whole process;  cli-run  its processing as `udfhost run -v` reports it
#   py-run the run_udf call (plugin loading, run, results as arrays), the file re-read with
#          readinto just before it, as cat re-reads it before the CLI starts
#   run/cli-run  speed of run_udf as a share of the CLI's processing (the target: >= 95 %)
#   RSS: peak of separate runs without the re-read (python: the whole interpreter)
printf '%-16s %8s %8s %8s %12s %8s %9s %9s\n' row "cli s" "cli-run" "py-run" "run/cli-run" \
    "GB/s" "cli MiB" "py MiB"
row() {
    name=$1 pyudfs=$2
    shift 3
    : >"$tmp/cli" ; : >"$tmp/clirun" ; : >"$tmp/pyrun"
    i=0
    while [ $i -lt "$REPS" ]; do
        rm -rf "$tmp/o"
        timed "$F" "$UDFHOST" run "$@" --format raw --dtype uint16 --nav-shape "$NAV" \
            --sig-shape "$SIG" --threads "$T" -v -o "$tmp/o" "$F" || return 1
        echo "$secs" >>"$tmp/cli"
        sed -n 's/.* in \([0-9.]*\) s, .*/\1/p' "$tmp/err" >>"$tmp/clirun"
        timed "$F" env PYTHONPATH="$PYLIB" "$PY" "$tmp/run.py" "$F" "$NAV" "$SIG" "$T" \
            "$tmp/pysecs" 1 "$pyudfs" || return 1
        cat "$tmp/pysecs" >>"$tmp/pyrun"
        i=$((i + 1))
    done
    rm -rf "$tmp/o"
    timed "$F" "$UDFHOST" run "$@" --format raw --dtype uint16 --nav-shape "$NAV" \
        --sig-shape "$SIG" --threads "$T" -q -o "$tmp/o" "$F" || return 1
    cli_rss=$rss
    timed "$F" env PYTHONPATH="$PYLIB" "$PY" "$tmp/run.py" "$F" "$NAV" "$SIG" "$T" \
        "$tmp/pysecs" 0 "$pyudfs" || return 1
    py_rss=$rss
    c=$(median <"$tmp/cli") cr=$(median <"$tmp/clirun") r=$(median <"$tmp/pyrun")
    awk -v n="$name" -v c="$c" -v cr="$cr" -v r="$r" -v b="$bytes" -v m="$cli_rss" -v p="$py_rss" \
        'BEGIN { printf "%-16s %8.3f %8.3f %8.3f %11.0f%% %8.2f %9.1f %9.1f\n", n, c, cr, r,
                 100 * cr / r, b / r / 1e9, m / 1024, p / 1024 }'
}
row sum 'lt.Plugin("sum")' -- --plugin sum
row sumsig 'lt.Plugin("sumsig")' -- --plugin sumsig
row stddev 'lt.Plugin("stddev")' -- --plugin stddev
row masks-disk 'lt.Plugin("masks", disk=(64, 64, 20))' -- --plugin masks -p disk=64,64,20
row com 'lt.Plugin("com")' -- --plugin com
row sum+sumsig+com 'lt.Plugin("sum"), lt.Plugin("sumsig"), lt.Plugin("com")' -- \
    --plugin sum --plugin sumsig --plugin com
echo

# Start-up: import numpy alone, against import udfhost.api + a tiny run + its result as array.
cat >"$tmp/tiny.py" <<EOF
import udfhost.api as lt
from udfhost.udf.sum import SumUDF
ctx = lt.Context()
ds = ctx.load("raw", path="$FTINY", dtype="uint16", nav_shape=(16, 16), sig_shape=(64, 64))
a = ctx.run_udf(dataset=ds, udf=SumUDF())["intensity"].data
assert a.shape == (64, 64)
EOF
: >"$tmp/np" ; : >"$tmp/tiny"
i=0
while [ $i -lt $((REPS * 3)) ]; do
    timed "$FTINY" "$PY" -c 'import numpy' && echo "$secs" >>"$tmp/np" && np_rss=$rss
    timed "$FTINY" env PYTHONPATH="$PYLIB" "$PY" "$tmp/tiny.py" && echo "$secs" >>"$tmp/tiny"
    i=$((i + 1))
done
n=$(median <"$tmp/np") t=$(median <"$tmp/tiny")
awk -v n="$n" -v t="$t" 'BEGIN { printf "start-up: python3 -c \"import numpy\" %.1f ms; import udfhost.api + tiny run + result %.1f ms: %+.1f ms (target < 40 ms)\n", 1000 * n, 1000 * t, 1000 * (t - n) }'
awk -v c="$cli_rss" -v p="$py_rss" -v n="$np_rss" 'BEGIN { printf "peak RSS (last row): CLI %.1f MiB, Python %.1f MiB, numpy alone %.1f MiB: Python - CLI - numpy = %+.1f MiB (target <= 10)\n", c / 1024, p / 1024, n / 1024, (p - c - n) / 1024 }'
