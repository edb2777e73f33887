"""The plugin SDK as a plugin author meets it: the example built out of tree with pkg-config and cc
against a private prefix, its results checked against NumPy, the exported symbols of every plugin,
the public header compiled alone as C11, C99 and C++11, and `udfhost plugin-info`."""
import os
import re
import shlex
import shutil
import subprocess

import numpy as np

from udfhost_test import (SRCDIR, assert_close, assert_equal, load, main, random_frames, raw_args,
                          run, write_raw)

RNG = np.random.default_rng(20261129)
CC = shlex.split(os.environ.get("UDFHOST_CC") or "cc")
PLUGIN_PATH = os.environ.get("UDFHOST_PLUGIN_PATH", "").split(":")[0]
SDK = os.path.join(SRCDIR, "plugin-sdk")
ENTRY = "udf_plugin_entry_v1"
# Symbols the linker itself may define in a shared object's dynamic table; never the plugin's.
LINKER_SYMBOLS = {"_init", "_fini", "__bss_start", "_edata", "_end"}


def sh(cmd, cwd=None, env=None, what=None):
    """Run a command (a list); fail with its output unless it exits 0; return stdout."""
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    if p.returncode != 0:
        raise AssertionError("%s: exit %d\ncommand: %s\nstdout: %s\nstderr: %s"
                             % (what or cmd[0], p.returncode, " ".join(map(shlex.quote, cmd)),
                                p.stdout, p.stderr))
    return p.stdout


def package_version():
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        m = re.search(r"AC_INIT\(\[udfhost\],\s*\[([^\]]+)\]", f.read())
    assert m, "no version in configure.ac's AC_INIT"
    return m.group(1)


def make_prefix(tmp):
    """An installed SDK as `make install` lays it out under a private prefix: the header in
    include/udfhost and udfhost-plugin.pc in lib/pkgconfig, made from the .pc.in the way configure
    substitutes it (installation directories stay relative to ${prefix}, ${exec_prefix}).
    Returns (prefix, environment with PKG_CONFIG_PATH pointing at it)."""
    prefix = os.path.join(tmp, "prefix")
    os.makedirs(os.path.join(prefix, "include", "udfhost"))
    pcdir = os.path.join(prefix, "lib", "pkgconfig")
    os.makedirs(pcdir)
    shutil.copyfile(os.path.join(SDK, "udfhost", "udf.h"),
                    os.path.join(prefix, "include", "udfhost", "udf.h"))
    subst = {"prefix": prefix, "exec_prefix": "${prefix}", "includedir": "${prefix}/include",
             "libdir": "${exec_prefix}/lib", "PACKAGE_VERSION": package_version(),
             "VERSION": package_version(), "PACKAGE_NAME": "udfhost"}
    with open(os.path.join(SDK, "udfhost-plugin.pc.in")) as f:
        text = f.read()
    text = re.sub(r"@([A-Za-z_]+)@", lambda m: subst.get(m.group(1), m.group(0)), text)
    left = re.findall(r"@[A-Za-z_]+@", text)
    assert not left, "udfhost-plugin.pc.in: unknown substitutions %s" % left
    with open(os.path.join(pcdir, "udfhost-plugin.pc"), "w") as f:
        f.write(text)
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    env.pop("PKG_CONFIG_LIBDIR", None)
    env.pop("PKG_CONFIG_SYSROOT_DIR", None)
    return prefix, env


def pkg_config(env, *args):
    assert shutil.which("pkg-config"), "pkg-config is not installed (a dependency of the SDK)"
    return sh(["pkg-config", *args, "udfhost-plugin"], env=env,
              what="pkg-config %s" % " ".join(args)).strip()


def build_framemax(tmp):
    """framemax.so compiled from the example with the flags pkg-config gives; returns its path."""
    _, env = make_prefix(tmp)
    cflags = shlex.split(pkg_config(env, "--cflags"))
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    shutil.copyfile(os.path.join(SDK, "example", "framemax.c"), os.path.join(src, "framemax.c"))
    # No -I to the source tree: the header must come from the prefix through pkg-config alone.
    sh(CC + cflags + ["-std=c11", "-O2", "-shared", "-fPIC", "-o", "framemax.so", "framemax.c"],
       cwd=src, env=env, what="compiling framemax.c")
    return os.path.join(src, "framemax.so")


def dynamic_symbols(path):
    """{name: nm type letter} of the defined dynamic symbols of a shared object."""
    assert shutil.which("nm"), "nm is not installed (binutils)"
    syms = {}
    for line in sh(["nm", "-D", "--defined-only", path], what="nm -D").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[-2]) == 1:
            syms[parts[-1]] = parts[-2]
    return syms


def check_framemax(tmp, plugin, tag):
    """Run plugin (a path) on random uint16 and float32 data of odd shapes, compare with NumPy."""
    nav, sig = (7, 9), (13, 11)
    for dt in ("<u2", "<f4", ">u2"):
        data = random_frames(RNG, nav + sig, dt)
        # A few frames where the maximum occurs twice: the first in flat order must win.
        flat = data.reshape(nav[0] * nav[1], -1)
        for i in (0, 5, 62):
            flat[i, [3, 100]] = flat[i].max() + 1
        if dt == "<f4":
            flat[8] = -7.5  # a constant frame: the maximum at pixel 0
        path = os.path.join(tmp, "scan.raw")
        write_raw(path, data)
        for threads in (1, 3):
            out = os.path.join(tmp, "out")
            shutil.rmtree(out, ignore_errors=True)
            run(["run", "--plugin", plugin, *raw_args(nav, sig, dt), "--threads", threads,
                 "--partition-size", "4K", "-o", out, path])
            frames = data.astype(np.float32).reshape(nav + (-1,))
            ref_max = frames.max(axis=-1)
            idx = frames.argmax(axis=-1)
            ref_argmax = np.stack(np.unravel_index(idx, sig), axis=-1).astype(np.int64)
            what = "%s %s threads %d" % (tag, dt, threads)
            assert_equal(load(out, "framemax", "max"), ref_max, "max " + what)
            assert_equal(load(out, "framemax", "argmax"), ref_argmax, "argmax " + what)
            names = sorted(os.listdir(out))
            assert names == ["framemax.argmax.npy", "framemax.max.npy", "udfhost-run.json"], \
                "%s: unexpected result files %s" % (what, names)


def check_framestats(tmp, plugin):
    """The UDF_MAP_PLUGIN example against NumPy: mean, std and the fraction above a threshold."""
    nav, sig = (5, 8), (17, 9)
    for dt in ("<u2", ">f8"):
        data = random_frames(RNG, nav + sig, dt)
        path = os.path.join(tmp, "scan.raw")
        write_raw(path, data)
        out = os.path.join(tmp, "out-stats")
        run(["run", "--plugin", plugin, "-p", "above=100", *raw_args(nav, sig, dt),
             "--partition-size", "2K", "--overwrite", "-o", out, path])
        got = load(out, "framestats", "result")
        frames = data.astype(np.float32).astype(np.float64).reshape(nav + (-1,))
        ref = np.stack([frames.mean(axis=-1), frames.std(axis=-1),
                        (frames > 100).mean(axis=-1)], axis=-1)
        # float64 sums in another order than NumPy's pairwise ones.
        assert_close(got, ref, "framestats %s" % dt, 1e-12)
        assert sorted(os.listdir(out)) == ["framestats.result.npy", "udfhost-run.json"], \
            os.listdir(out)


def test_pkg_config_file(tmp):
    prefix, env = make_prefix(tmp)
    assert pkg_config(env, "--modversion") == package_version(), "pkg-config --modversion"
    cflags = shlex.split(pkg_config(env, "--cflags"))
    assert "-I" + os.path.join(prefix, "include") in cflags, \
        "--cflags %s does not name %s/include" % (cflags, prefix)
    # Header only: there is nothing to link.
    assert pkg_config(env, "--libs") == "", "--libs should be empty"
    for var, want in (("includedir", os.path.join(prefix, "include")),
                      ("libdir", os.path.join(prefix, "lib")),
                      ("plugindir", os.path.join(prefix, "lib", "udfhost"))):
        got = pkg_config(env, "--variable=" + var)
        assert got == want, "pkg-config --variable=%s: %r, expected %r" % (var, got, want)


def test_example_out_of_tree(tmp):
    plugin = build_framemax(tmp)
    check_framemax(tmp, plugin, "cc")


def test_example_makefile(tmp):
    """The example's own Makefile, run in a copy of the directory, finds the SDK through
    PKG_CONFIG_PATH and builds a plugin that exports only its entry point."""
    assert shutil.which("make"), "make is not installed"
    _, env = make_prefix(tmp)
    ex = os.path.join(tmp, "example")
    os.makedirs(ex)
    # Contents only, not modes: under make distcheck the source tree is read-only.
    for name in ("Makefile", "framemax.c", "framestats.c"):
        shutil.copyfile(os.path.join(SDK, "example", name), os.path.join(ex, name))
    sh(["make", "-C", ex, "CC=" + " ".join(map(shlex.quote, CC))], env=env, what="make -C example")
    plugin = os.path.join(ex, "framemax.so")
    assert os.path.isfile(plugin), "make built no framemax.so"
    syms = dynamic_symbols(plugin)
    assert syms.get(ENTRY) == "T", "example (make): %s not exported as a function: %s" % (ENTRY, syms)
    own = {s: t for s, t in syms.items() if s not in LINKER_SYMBOLS}
    assert list(own) == [ENTRY], "example (make, -fvisibility=hidden) exports %s" % sorted(own)
    check_framemax(tmp, plugin, "make")
    stats = os.path.join(ex, "framestats.so")
    own = {s: t for s, t in dynamic_symbols(stats).items() if s not in LINKER_SYMBOLS}
    assert own == {ENTRY: "T"}, "framestats (UDF_MAP_PLUGIN) exports %s" % sorted(own)
    check_framestats(tmp, stats)
    sh(["make", "-C", ex, "clean"], env=env, what="make clean")
    assert not os.path.exists(plugin), "make clean left framemax.so"
    assert not os.path.exists(stats), "make clean left framestats.so"


def test_exported_symbols(tmp):
    bundled = sorted(f[:-3] for f in os.listdir(PLUGIN_PATH) if f.endswith(".so"))
    assert "sum" in bundled and "sumsig" in bundled, "bundled plugins: %s" % bundled
    for name in bundled:
        path = os.path.join(PLUGIN_PATH, name + ".so")
        assert os.path.isfile(path), "bundled plugin %s not found" % path
        syms = dynamic_symbols(path)
        funcs = sorted(s for s, t in syms.items() if t in "TtWwi")
        assert funcs == [ENTRY], "%s exports functions %s, expected only %s" % (name, funcs, ENTRY)
        assert syms[ENTRY] == "T", "%s: %s has type %s" % (name, ENTRY, syms[ENTRY])
        other = sorted(s for s in syms if s != ENTRY and s not in LINKER_SYMBOLS)
        assert not other, "%s exports other symbols %s" % (name, other)
    # The example built with the plain compile line (no -fvisibility=hidden): the entry point is
    # there, and its static hooks are not.
    syms = dynamic_symbols(build_framemax(tmp))
    assert syms.get(ENTRY) == "T", "framemax: %s not exported as a function: %s" % (ENTRY, syms)
    hooks = sorted(s for s in syms if s.startswith("framemax"))
    assert not hooks, "framemax exports its static hooks %s" % hooks


HEADER_ONLY = "#include <udfhost/udf.h>\n"

# Uses every inline function and macro of the header, so that warnings inside them show.
HEADER_USE = r"""#include <udfhost/udf.h>

size_t header_use(const udf_ctx *ctx, const udf_host *host);
size_t header_use(const udf_ctx *ctx, const udf_host *host)
{
    size_t n = udf_dtype_size(UDF_F64) + (size_t)udf_buffer_find(ctx, "max");
    if (UDF_HAS_FIELD(host, udf_host, get_extension))
        n += sizeof(UDF_ABI_SIGNATURE) + sizeof(UDF_ENTRY_NAME);
    return n;
}
"""

# A minimal plugin: in C++ the entry point must still get C linkage (an unmangled name).
MINIMAL_PLUGIN = r"""#include <udfhost/udf.h>

static int minimal_declare(udf_ctx *ctx)
{
    udf_buffer_decl b = udf_buffer_decl();
    b.name = "count";
    b.kind = UDF_KIND_SINGLE;
    b.dtype = UDF_U64;
    return ctx->host->declare_buffer(ctx, &b);
}

static int minimal_tile(udf_ctx *ctx, const udf_tile *tile)
{
    *static_cast<uint64_t *>(ctx->buffers[0].data) += tile->depth;
    return UDF_OK;
}

static int minimal_merge(udf_ctx *, udf_view *dest, const udf_view *src)
{
    *static_cast<uint64_t *>(dest[0].data) += *static_cast<const uint64_t *>(src[0].data);
    return UDF_OK;
}

static udf_plugin make_minimal()
{
    udf_plugin p = udf_plugin();
    p.abi_major = UDF_ABI_MAJOR;
    p.abi_minor = UDF_ABI_MINOR;
    p.struct_size = sizeof(udf_plugin);
    p.signature = UDF_ABI_SIGNATURE;
    p.name = "minimal";
    p.version = "1.0";
    p.description = "counts frames (C++)";
    p.tiling = UDF_TILE_FULL_FRAMES;
    p.declare_buffers = minimal_declare;
    p.process_tile = minimal_tile;
    p.merge = minimal_merge;
    return p;
}

static const udf_plugin minimal = make_minimal();

UDF_PLUGIN_DEFINE(minimal)
"""


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_header_c(tmp):
    strict = ["-Wall", "-Wextra", "-pedantic", "-Werror", "-Wstrict-prototypes",
              "-Wmissing-prototypes", "-Wshadow"]
    for std in ("c11", "c99"):
        for name, text in (("only.c", HEADER_ONLY), ("use.c", HEADER_USE)):
            src = write(tmp, name, text)
            sh(CC + ["-std=" + std] + strict + ["-O2", "-I" + SDK, "-c", src, "-o",
                                                os.path.join(tmp, "x.o")],
               what="%s, -std=%s, header alone" % (name, std))


def test_header_cplusplus(tmp):
    cxx = shutil.which("g++")
    if not cxx:
        print("NOTE: no g++ in PATH; the header's C++ checks were skipped")
        return
    strict = ["-Wall", "-Wextra", "-pedantic", "-Werror"]
    for std in ("c++11", "c++17"):
        src = write(tmp, "only.cc", HEADER_ONLY)
        sh([cxx, "-x", "c++", "-std=" + std] + strict + ["-I" + SDK, "-c", src, "-o",
                                                         os.path.join(tmp, "x.o")],
           what="g++ -std=%s, header alone" % std)
        src = write(tmp, "use.cc", HEADER_USE)
        sh([cxx, "-x", "c++", "-std=" + std] + strict + ["-O2", "-I" + SDK, "-c", src, "-o",
                                                         os.path.join(tmp, "x.o")],
           what="g++ -std=%s, header functions" % std)
    src = write(tmp, "minimal.cc", MINIMAL_PLUGIN)
    so = os.path.join(tmp, "minimal.so")
    sh([cxx, "-x", "c++", "-std=c++11"] + strict + ["-O2", "-fPIC", "-shared",
                                                    "-fvisibility=hidden", "-I" + SDK, src,
                                                    "-o", so], what="g++ minimal plugin")
    syms = dynamic_symbols(so)
    assert syms.get(ENTRY) == "T", "C++ plugin: no unmangled %s in %s" % (ENTRY, sorted(syms))
    mangled = sorted(s for s in syms if s.startswith("_Z") and ENTRY in s)
    assert not mangled, "C++ plugin exports a mangled entry point %s" % mangled
    # And the host loads and runs it.
    nav, sig = (5, 7), (3, 4)
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, random_frames(RNG, nav + sig, "<u2"))
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", so, *raw_args(nav, sig, "<u2"), "--partition-size", "100", "-o",
         out, path])
    assert_equal(load(out, "minimal", "count"), np.array(35, dtype=np.uint64), "C++ frame count")


def test_plugin_info(tmp):
    plugin = build_framemax(tmp)
    stdout, _ = run(["plugin-info", plugin])
    lines = stdout.splitlines()
    assert lines[0] == "framemax 1.0: maximum of each frame and its detector position (y, x)", \
        "framemax plugin-info first line: %r" % lines[0]
    assert "file: " + os.path.realpath(plugin) in lines or "file: " + plugin in lines, \
        "framemax plugin-info does not name its file:\n" + stdout
    assert "method: process_tile" in lines, stdout
    assert "input dtype: float32" in lines, stdout
    assert "parameters: none" in lines, "framemax has no parameters:\n" + stdout

    stdout, _ = run(["plugin-info", "sum"])
    lines = stdout.splitlines()
    assert re.match(r"^sum \S+: \S", lines[0]), "sum plugin-info first line: %r" % lines[0]
    assert "file: " + os.path.join(PLUGIN_PATH, "sum.so") in lines, \
        "sum found elsewhere than UDFHOST_PLUGIN_PATH:\n" + stdout
    assert "input dtype: native" in lines, stdout
    i = lines.index("parameters:")
    assert lines[i + 1] == "  dtype (choice: float32|float64) default float32", \
        "sum's dtype parameter: %r" % lines[i + 1:]
    assert lines[i + 2].strip(), "sum's dtype parameter has no help line"
    assert lines[i + 3] == "buffers:", "sum has one parameter:\n" + stdout
    # The buffers sum declares with the default dtype: its private int64 accumulator (uint16
    # data) and the result.
    assert lines[i + 4:] == ["  acc (sig, int64, private: not written)",
                             "  intensity (sig, float32, result)"], stdout

    # A plugin that does not exist: a usage error, one line, nothing on stdout.
    stdout, stderr = run(["plugin-info", os.path.join(tmp, "nope.so")], expect=2)
    assert stdout == "" and len(stderr.splitlines()) == 1, (stdout, stderr)


if __name__ == "__main__":
    main([test_pkg_config_file, test_example_out_of_tree, test_example_makefile,
          test_exported_symbols, test_header_c, test_header_cplusplus, test_plugin_info])
