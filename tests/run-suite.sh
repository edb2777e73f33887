#!/bin/sh
# The whole test suite from scratch: installs what is missing, then three builds of the tree in
# build-suite/: a plain one (make check, install, out-of-tree SDK build against the installed SDK,
# valgrind memcheck of end-to-end runs, make distcheck), one under AddressSanitizer + UndefinedBehaviorSanitizer (make check) and one
# under ThreadSanitizer (the thread pool and the end-to-end runs). Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)
sh tests/install-deps.sh
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }
rm -rf build-suite
mkdir -p build-suite

passed=0
failed=0
count() { # count the PASS/FAIL lines of an automake test-suite.log summary
    p=$(sed -n 's/^# PASS: *//p' "$1/test-suite.log" 2>/dev/null | head -n 1)
    f=$(sed -n 's/^# FAIL: *//p' "$1/test-suite.log" 2>/dev/null | head -n 1)
    e=$(sed -n 's/^# ERROR: *//p' "$1/test-suite.log" 2>/dev/null | head -n 1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0}))
}
step() { # step NAME COMMAND...: run, and count a failure of the command itself
    name=$1
    shift
    echo "== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "FAIL: $name"
        failed=$((failed + 1))
    fi
}
show_failures() {
    for log in "$1"/tests/*.log; do
        grep -qE '^(FAIL|ERROR)' "$log" 2>/dev/null && { echo "--- $log"; tail -n 40 "$log"; }
    done
    return 0
}

# 1. Plain build, with MPI (tests/test_mpi.py runs 1, 2 and 3 ranks): the tests, an install into
#    a staging directory, the SDK example built out of tree with nothing but pkg-config and cc
#    against that install, and make distcheck. The sanitizer builds below are without MPI.
plain=build-suite/plain
mkdir -p $plain
(cd $plain && "$top/configure" --quiet --prefix=/usr/local --with-mpi CFLAGS="-O2 -g" &&
    make -j"$jobs" >/dev/null)
(cd $plain && make -j"$jobs" check >/dev/null 2>&1) || show_failures $plain
count $plain

stage=$top/build-suite/stage
sdk_example() {
    (cd $plain && make install DESTDIR="$stage" >/dev/null) || return 1
    rm -rf build-suite/example && cp -r plugin-sdk/example build-suite/example
    PKG_CONFIG_PATH="$stage/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" \
        make -C build-suite/example >/dev/null || return 1
    for so in framemax framestats; do
        syms=$(nm -D --defined-only build-suite/example/$so.so | awk '{print $3}')
        [ "$syms" = udf_plugin_entry_v1 ] || { echo "example $so exports: $syms"; return 1; }
    done
    # The installed udfhost finds its installed plugins by name only when installed for real;
    # here the staged plugin directory is given explicitly.
    UDFHOST_PLUGIN_PATH="$stage/usr/local/lib/udfhost" "$stage/usr/local/bin/udfhost" run \
        --plugin sum --plugin ./build-suite/example/framemax.so \
        --plugin ./build-suite/example/framestats.so --format raw --dtype uint16 \
        --nav-shape 24,32 --sig-shape 48,48 -o build-suite/example/out data/sample.raw &&
        [ -f build-suite/example/out/framemax.max.npy ] &&
        [ -f build-suite/example/out/framestats.result.npy ] &&
        [ -f build-suite/example/out/sum.intensity.npy ]
}
step "install and out-of-tree SDK example" sdk_example
sdk_template() {
    rm -rf build-suite/template && cp -r plugin-sdk/template build-suite/template
    PKG_CONFIG_PATH="$stage/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" \
        UDFHOST_PLUGIN_PATH="$stage/usr/local/lib/udfhost" \
        make -C build-suite/template test UDFHOST="$stage/usr/local/bin/udfhost" >/dev/null &&
    [ -f "$stage/usr/local/share/bash-completion/completions/udfhost" ]
}
step "plugin template built and tested against the installed SDK" sdk_template
installed_library() {
    # A C program against the installed libudfhost (pkg-config udfhost), and the installed
    # Python package, each running sum on the sample scan.
    lib="$stage/usr/local/lib"
    PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" \
        sh -c 'cc -std=c11 -o build-suite/api-client tests/api_client.c $(pkg-config --cflags --libs udfhost)' ||
        return 1
    LD_LIBRARY_PATH="$lib" UDFHOST_PLUGIN_PATH="$lib/udfhost" ./build-suite/api-client \
        data/sample.raw >build-suite/api-client.out || return 1
    site=$(cd $plain && sed -n 's/^PYTHON_SITE_DIR = //p' Makefile)
    py=$(cd $plain && sed -n 's/^PYTHON_NUMPY = //p' Makefile)
    PYTHONPATH="$stage$site" UDFHOST_PLUGIN_PATH="$lib/udfhost" "$py" -c '
import sys, numpy as np, udfhost.api as lt
from udfhost.udf.sum import SumUDF
assert "/stage/" in lt.__file__, lt.__file__
ds = lt.Context().load("raw", path="data/sample.raw", dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))
got = lt.Context().run_udf(dataset=ds, udf=SumUDF())["intensity"].data
want = np.fromfile("data/sample.raw", "<u2").reshape(768, -1).sum(axis=0).reshape(48, 48)
assert np.array_equal(got, want.astype(np.float32))
print(open("build-suite/api-client.out").read().strip())
'
}
step "installed libudfhost (C, pkg-config) and Python package" installed_library
step "valgrind memcheck of end-to-end runs (tests/valgrind.sh)" sh tests/valgrind.sh $plain
step "benchmark smoke run (make bench-quick)" sh -c "cd $plain && make bench-quick >bench-quick.log 2>&1 || { tail -n 20 bench-quick.log; exit 1; }"
step "make distcheck" sh -c "cd $plain && make -j$jobs distcheck >distcheck.log 2>&1 || { tail -n 40 distcheck.log; exit 1; }"

# 2. AddressSanitizer + UndefinedBehaviorSanitizer: every test, any finding fails it.
asan=build-suite/asan
mkdir -p $asan
san="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
# The Python package is left out: an extension built with ASan only loads into a Python that
# preloads the runtime. The library under it is tested here by tests/test_api (Criterion).
(cd $asan && "$top/configure" --quiet --disable-python CFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" &&
    make -j"$jobs" >/dev/null)
(cd $asan && ASAN_OPTIONS=detect_leaks=1 make -j"$jobs" check >/dev/null 2>&1) || show_failures $asan
count $asan

# 3. ThreadSanitizer: the pool and the multi-threaded end-to-end runs.
tsan=build-suite/tsan
mkdir -p $tsan
(cd $tsan && "$top/configure" --quiet --disable-python CFLAGS="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" &&
    make -j"$jobs" >/dev/null)
(cd $tsan && TSAN_OPTIONS="halt_on_error=1" make -j"$jobs" check-tsan >/dev/null 2>&1) ||
    show_failures $tsan
count $tsan

echo "== summary (plain, asan+ubsan, tsan builds)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
