#!/bin/sh
# Build the fuzz targets from the tree's sources, outside the autotools build.
#
#   tests/fuzz/build.sh [--replay] [OUTDIR]
#
# Default: clang with -fsanitize=fuzzer,address,undefined (libFuzzer binaries). --replay: $CC
# (default gcc) with -fsanitize=address,undefined, each target linked with replay.c instead of
# libFuzzer, for replaying the corpora in `make check`. Binaries go to OUTDIR (default
# tests/fuzz/out, or tests/fuzz/out-replay). The library sources are those of
# libudfhost_core_la_SOURCES in Makefile.am, so new src/*.c files are picked up.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mode=fuzz
if [ "${1:-}" = "--replay" ]; then
    mode=replay
    shift
fi
if [ $mode = fuzz ]; then
    out=${1:-$here/out}
    CC=${FUZZ_CC:-clang}
    lib_san="-fsanitize=fuzzer-no-link,address,undefined"
    link_san="-fsanitize=fuzzer,address,undefined"
else
    out=${1:-$here/out-replay}
    CC=${CC:-gcc}
    lib_san="-fsanitize=address,undefined"
    link_san="-fsanitize=address,undefined"
fi
jobs=${FUZZ_JOBS:-2}
mkdir -p "$out/obj"

pkgs="libtiff-4 hdf5 inih libpng"
pkg_cflags=$(pkg-config --cflags $pkgs)
pkg_libs=$(pkg-config --libs $pkgs)

# The sources need only these two of config.h (cmd_run.c, main.c, plugin.c).
cat >"$out/config.h" <<CONFIG
#define PACKAGE_VERSION "fuzz"
#define UDFHOST_PLUGIN_DIR "/nonexistent"
CONFIG

cflags="-std=c11 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined -D_GNU_SOURCE
 -DUDFHOST_HDF5_BUILTIN
 -I$top/src -I$top/plugin-sdk -I$out -I$here $pkg_cflags"

# The HDF5 reader is a module of udfhost; here it is linked in (UDFHOST_HDF5_BUILTIN).
sources="$(sed -n '/^libudfhost_core_la_SOURCES *=/,/[^\\]$/p' "$top/Makefile.am" |
          tr ' \t\\' '\n\n\n' | grep '^src/.*\.c$') src/ds_hdf5.c"
[ -n "$sources" ] || { echo "build.sh: no sources found in $top/Makefile.am" >&2; exit 1; }

export CC cflags lib_san out top
printf '%s\n' $sources | xargs -P "$jobs" -I{} sh -c \
    'o="$out/obj/$(basename {} .c).o"; $CC $cflags $lib_san -c "$top/{}" -o "$o"'
rm -f "$out/libudfhost-fuzz.a"
ar rcs "$out/libudfhost-fuzz.a" "$out"/obj/*.o

extra=
if [ $mode = replay ]; then
    $CC $cflags $lib_san -c "$here/replay.c" -o "$out/obj-replay.o"
    extra="$out/obj-replay.o"
fi
# name:source:extra flags
for t in fuzz_npy_header:fuzz_npy_header.c: fuzz_array:fuzz_array.c: \
         fuzz_dataset:fuzz_dataset.c: fuzz_hdf5:fuzz_dataset.c:-DFUZZ_HDF5 \
         fuzz_raw:fuzz_raw.c: fuzz_mib_hdr:fuzz_mib_hdr.c: fuzz_ini:fuzz_ini.c: \
         fuzz_shape:fuzz_shape.c:; do
    name=${t%%:*}
    rest=${t#*:}
    src=${rest%%:*}
    def=${rest#*:}
    $CC $cflags $def $link_san "$here/$src" $extra "$out/libudfhost-fuzz.a" $pkg_libs \
        -ldl -lm -lpthread -o "$out/$name"
done
echo "build.sh: built $mode targets in $out"
