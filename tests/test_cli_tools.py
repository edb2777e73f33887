"""The tools around `udfhost run`: `udfhost list-plugins` (search order, shadowing, unloadable
files, --json), `udfhost check-plugin` on the bundled plugins and on small plugins with typical
bugs compiled here on the fly, the plugin template built out of tree against a private prefix
and its own `make test`, and the bash completion."""
import json
import os
import shlex
import shutil
import subprocess

from udfhost_test import SRCDIR, UDFHOST, main
from test_sdk import CC, PLUGIN_PATH, SDK, dynamic_symbols, make_prefix, sh, LINKER_SYMBOLS, ENTRY


def udfhost(args, expect=0, env=None, plugin_path=None):
    """Run udfhost; check the exit status; return (stdout, stderr). plugin_path replaces
    UDFHOST_PLUGIN_PATH."""
    env = dict(env or os.environ)
    if plugin_path is not None:
        env["UDFHOST_PLUGIN_PATH"] = plugin_path
    p = subprocess.run([UDFHOST] + [str(a) for a in args], capture_output=True, text=True, env=env)
    if expect is not None and p.returncode != expect:
        raise AssertionError("udfhost %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
                             % (" ".join(map(str, args)), p.returncode, expect, p.stdout,
                                p.stderr))
    return p.stdout, p.stderr


def one_error_line(stdout, stderr, what):
    assert len(stderr.splitlines()) == 1 and stderr.startswith("udfhost: "), \
        "%s: expected one 'udfhost: ' line on stderr, got %r" % (what, stderr)


def bundled():
    return sorted(f[:-3] for f in os.listdir(PLUGIN_PATH) if f.endswith(".so"))


# --- list-plugins ------------------------------------------------------------------------------


def test_list_plugins(tmp):
    stdout, _ = udfhost(["list-plugins"])
    lines = stdout.splitlines()
    names = [line.split()[0] for line in lines]
    for name in bundled():
        assert names.count(name) == 1, "list-plugins lists %s %d times" % (name, names.count(name))
    line = lines[names.index("sum")]
    version = udfhost(["plugin-info", "sum"])[0].splitlines()[0].split()[1].rstrip(":")
    assert line.split()[1] == version, "sum's version: %r, plugin-info says %s" % (line, version)
    assert "sum of all frames" in line, "sum's description missing: %r" % line
    assert line.endswith(" " + os.path.join(PLUGIN_PATH, "sum.so")), "sum's path: %r" % line


def test_list_plugins_shadowing_and_unloadable(tmp):
    """An earlier directory's sum.so hides the bundled one (listed once: the file --plugin sum
    loads); a broken .so is listed as unloadable, and the exit status stays 0."""
    first = os.path.join(tmp, "first")
    os.makedirs(first)
    shutil.copyfile(os.path.join(PLUGIN_PATH, "sum.so"), os.path.join(first, "sum.so"))
    with open(os.path.join(first, "broken.so"), "w") as f:
        f.write("not a shared object\n")
    with open(os.path.join(first, "README"), "w") as f:
        f.write("not a plugin\n")
    path = "%s:%s" % (first, PLUGIN_PATH)
    stdout, stderr = udfhost(["list-plugins"], plugin_path=path)
    assert stderr == "", "list-plugins wrote to stderr: %r" % stderr
    lines = stdout.splitlines()
    names = [line.split()[0] for line in lines]
    assert names.count("sum") == 1, "sum listed %d times:\n%s" % (names.count("sum"), stdout)
    assert lines[names.index("sum")].endswith(os.path.join(first, "sum.so")), \
        "the shadowing sum.so should be listed:\n" + stdout
    broken = lines[names.index("broken")]
    assert "unloadable: " in broken and broken.endswith(os.path.join(first, "broken.so")), broken
    assert "README" not in stdout, stdout
    # The one --plugin sum loads is the one listed.
    info = udfhost(["plugin-info", "sum"], plugin_path=path)[0]
    assert "file: " + os.path.join(first, "sum.so") in info.splitlines(), info

    stdout, _ = udfhost(["list-plugins", "--json"], plugin_path=path)
    entries = json.loads(stdout)
    assert isinstance(entries, list), stdout
    by_name = {e["name"]: e for e in entries}
    assert len(by_name) == len(entries), "duplicate names in --json: %s" % stdout
    assert set(bundled()) | {"broken"} <= set(by_name), sorted(by_name)
    for e in entries:
        assert {"name", "version", "description", "path"} <= set(e), e
    assert by_name["sum"]["path"] == os.path.join(first, "sum.so"), by_name["sum"]
    assert by_name["sum"]["version"] and by_name["sum"]["description"], by_name["sum"]
    assert by_name["broken"]["version"] is None and by_name["broken"]["error"], by_name["broken"]

    # An empty search path: an empty array (nothing is installed under the build's prefix), or
    # only installed plugins.
    stdout, _ = udfhost(["list-plugins", "--json"], plugin_path=os.path.join(tmp, "nowhere"))
    assert isinstance(json.loads(stdout), list), stdout


def test_list_plugins_usage(tmp):
    stdout, stderr = udfhost(["list-plugins", "extra"], expect=2)
    assert stdout == "", stdout
    one_error_line(stdout, stderr, "list-plugins extra")
    udfhost(["list-plugins", "--bogus"], expect=2)
    stdout, _ = udfhost(["list-plugins", "--help"])
    assert "--json" in stdout and "unloadable" in stdout and "shadow" in stdout, stdout


# --- check-plugin ------------------------------------------------------------------------------

PLUGIN_HEAD = r"""
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>
#include <udfhost/udf.h>
"""

# A correct plugin: per-frame sum (nav), per-pixel sum (sig), merged by adding.
GOOD = PLUGIN_HEAD + r"""
static int declare(udf_ctx *ctx)
{
    udf_buffer_decl nav = {.name = "framesum", .kind = UDF_KIND_NAV, .dtype = UDF_F64};
    udf_buffer_decl sig = {.name = "pixelsum", .kind = UDF_KIND_SIG, .dtype = UDF_F64};
    int rc = ctx->host->declare_buffer(ctx, &nav);
    return rc ? rc : ctx->host->declare_buffer(ctx, &sig);
}

static int frame(udf_ctx *ctx, const udf_tile *t)
{
    const float *px = t->data;
    double *nav = ctx->buffers[0].data, *sig = ctx->buffers[1].data, s = 0;
    for (uint64_t p = 0; p < t->sig_count; p++) {
        s += px[p];
        sig[p] += px[p];
    }
    *nav = s;
    return UDF_OK;
}

static int merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    (void)ctx;
    double *d = dest[1].data;
    const double *s = src[1].data;
    for (uint64_t i = 0; i < dest[1].count; i++)
        MERGE_STATEMENT;
    return UDF_OK;
}

static const udf_plugin desc = {
    UDF_PLUGIN_HEADER, .name = NAME, .version = "1", .description = "test plugin",
    .params = PARAMS, .declare_buffers = declare, .process_frame = frame, .merge = merge,
};
UDF_PLUGIN_DEFINE(desc)
"""

# Keeps state per worker thread instead of in its buffers: the nav result says which thread
# processed the frame, so it changes with the thread count.
THREAD_STATE = PLUGIN_HEAD + r"""
#include <stdatomic.h>
static atomic_int next_worker;
static _Thread_local int worker = -1;

static int declare(udf_ctx *ctx)
{
    udf_buffer_decl nav = {.name = "worker", .kind = UDF_KIND_NAV, .dtype = UDF_I32};
    return ctx->host->declare_buffer(ctx, &nav);
}

static int frame(udf_ctx *ctx, const udf_tile *t)
{
    (void)t;
    if (worker < 0)
        worker = atomic_fetch_add(&next_worker, 1);
    /* Slow enough that every worker gets partitions. */
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    *(int32_t *)ctx->buffers[0].data = worker;
    return UDF_OK;
}

static const udf_plugin desc = {
    UDF_PLUGIN_HEADER, .name = "threadstate", .version = "1", .description = "per-thread state",
    .declare_buffers = declare, .process_frame = frame,
};
UDF_PLUGIN_DEFINE(desc)
"""

# A result-only buffer without get_results to fill it.
RESULT_ONLY = PLUGIN_HEAD + r"""
static int declare(udf_ctx *ctx)
{
    udf_buffer_decl nav = {.name = "peak", .kind = UDF_KIND_NAV, .dtype = UDF_F32};
    udf_buffer_decl final = {.name = "final", .kind = UDF_KIND_SINGLE, .dtype = UDF_F64,
                             .flags = UDF_BUFFER_RESULT_ONLY};
    int rc = ctx->host->declare_buffer(ctx, &nav);
    return rc ? rc : ctx->host->declare_buffer(ctx, &final);
}

static int frame(udf_ctx *ctx, const udf_tile *t)
{
    *(float *)ctx->buffers[0].data = ((const float *)t->data)[0];
    return UDF_OK;
}

static const udf_plugin desc = {
    UDF_PLUGIN_HEADER, .name = "resultonly", .version = "1", .description = "no get_results",
    .declare_buffers = declare, .process_frame = frame,
};
UDF_PLUGIN_DEFINE(desc)
"""

REQUIRED_PARAM = ('(const udf_param_decl[]){{.name = "k", .type = UDF_PARAM_INT, '
                  '.flags = UDF_PARAM_REQUIRED, .help = "a number"}, {.name = NULL}}')


def build_plugin(tmp, name, source, defines=()):
    """Compile source into tmp/name.so against the SDK header of the source tree."""
    src = os.path.join(tmp, name + ".c")
    with open(src, "w") as f:
        f.write(source)
    so = os.path.join(tmp, name + ".so")
    sh(CC + ["-std=c11", "-O2", "-Wall", "-Werror", "-fPIC", "-shared", "-fvisibility=hidden",
             "-I" + SDK] + ["-D%s=%s" % d for d in defines] + ["-o", so, src],
       what="compiling " + name)
    return so


def good_plugin(tmp, name, merge="d[i] += s[i]", params="NULL"):
    return build_plugin(tmp, name, GOOD, [("NAME", '"%s"' % name), ("MERGE_STATEMENT", merge),
                                          ("PARAMS", params)])


def check(args, expect):
    stdout, stderr = udfhost(["check-plugin"] + args, expect=expect)
    last = stdout.splitlines()[-1] if stdout else ""
    if expect == 0:
        assert last.startswith("OK: "), "check-plugin %s: last line %r\n%s" % (args, last, stdout)
        assert "problem:" not in stdout, stdout
    elif expect == 4:
        assert last.startswith("PROBLEMS: "), "check-plugin %s: last line %r" % (args, last)
        assert int(last.split()[1]) == stdout.count("problem: "), stdout
        one_error_line(stdout, stderr, "check-plugin %s" % args)
    return stdout, stderr


def test_check_plugin_bundled(tmp):
    for name in ("sum", "sumsig", "stddev", "max", "logsum"):
        if name in bundled():
            stdout, _ = check([name], 0)
            assert stdout.splitlines()[-1].startswith("OK: %s " % name), stdout
    stdout, _ = check(["-v", "sum"], 0)
    assert "3 threads" in stdout and "ROI" in stdout, "check-plugin -v:\n" + stdout


def test_check_plugin_good(tmp):
    so = good_plugin(tmp, "good")
    stdout, _ = check([so], 0)
    assert "runs on generated data" in stdout, stdout


def test_check_plugin_last_wins_merge(tmp):
    """A merge that replaces the result with each partition (dest = src): only the last partition
    survives, so results depend on how the data was split."""
    so = good_plugin(tmp, "lastwins", merge="d[i] = s[i]")
    stdout, _ = check([so], 4)
    lines = [line for line in stdout.splitlines() if line.startswith("problem: ")]
    assert any("'pixelsum'" in line and "partition" in line and "merge" in line
               for line in lines), "last-wins merge not reported:\n" + stdout
    assert not any("'framesum'" in line for line in lines), \
        "the nav buffer (placed by the host) was blamed too:\n" + stdout


def test_check_plugin_thread_state(tmp):
    so = build_plugin(tmp, "threadstate", THREAD_STATE)
    stdout, _ = check([so], 4)
    assert "problem: non-deterministic: results differ between 1 and 2 threads in buffer " \
        "'worker'" in stdout, stdout


def test_check_plugin_result_only(tmp):
    so = build_plugin(tmp, "resultonly", RESULT_ONLY)
    stdout, _ = check([so], 4)
    assert "'final'" in stdout and "get_results" in stdout, stdout


def test_check_plugin_parameters(tmp):
    so = good_plugin(tmp, "needsk", params=REQUIRED_PARAM)
    stdout, stderr = udfhost(["check-plugin", so], expect=2)
    one_error_line(stdout, stderr, "required parameter missing")
    assert "'k' is required" in stderr and "-p k=" in stderr, stderr
    check(["-p", "k=3", so], 0)
    stdout, stderr = udfhost(["check-plugin", "-p", "k=three", so], expect=2)
    one_error_line(stdout, stderr, "bad parameter value")
    stdout, stderr = udfhost(["check-plugin", "-p", "nope=1", so], expect=2)
    one_error_line(stdout, stderr, "unknown parameter")


def test_check_plugin_unloadable(tmp):
    bad = os.path.join(tmp, "bad.so")
    with open(bad, "w") as f:
        f.write("not a plugin\n")
    stdout, _ = check([bad], 4)
    assert "problem: does not load: " in stdout, stdout
    stdout, stderr = udfhost(["check-plugin", os.path.join(tmp, "missing.so")], expect=2)
    one_error_line(stdout, stderr, "missing file")
    stdout, stderr = udfhost(["check-plugin"], expect=2)
    one_error_line(stdout, stderr, "no plugin")
    stdout, _ = udfhost(["check-plugin", "--help"])
    assert "PROBLEMS" in stdout and "-p, --param" in stdout, stdout


# --- the plugin template -----------------------------------------------------------------------


def test_template(tmp):
    """The template, copied as a third party would, builds against a private prefix through
    PKG_CONFIG_PATH alone, passes its own `make test` with the udfhost under test, exports only
    its entry point, installs with PREFIX and DESTDIR, and is then found by name."""
    assert shutil.which("make"), "make is not installed"
    prefix, env = make_prefix(tmp)
    proj = os.path.join(tmp, "myproject")
    os.makedirs(proj)
    src = os.path.join(SDK, "template")
    names = sorted(os.listdir(src))
    for name in ("Makefile", "README.md", "myplugin.c", "check.c", "test.sh"):
        assert name in names, "template lacks %s: %s" % (name, names)
    # Contents only, not modes: under make distcheck the source tree is read-only.
    for name in names:
        shutil.copyfile(os.path.join(src, name), os.path.join(proj, name))
    cc = "CC=" + " ".join(map(shlex.quote, CC))
    out = sh(["make", "-C", proj, cc, "test", "UDFHOST=" + os.path.abspath(UDFHOST)], env=env,
             what="make test in the template")
    assert "PASS: myplugin, 3 thread(s)" in out, out
    assert "OK: myplugin" in out, "template test did not run check-plugin:\n" + out
    so = os.path.join(proj, "myplugin.so")
    own = {s: t for s, t in dynamic_symbols(so).items() if s not in LINKER_SYMBOLS}
    assert own == {ENTRY: "T"}, "template plugin exports %s" % sorted(own)

    stage = os.path.join(tmp, "stage")
    sh(["make", "-C", proj, cc, "install", "DESTDIR=" + stage], env=env, what="make install")
    staged = os.path.join(stage + prefix, "lib", "udfhost", "myplugin.so")
    assert os.path.isfile(staged), "make install DESTDIR: no %s" % staged
    home = os.path.join(tmp, "home")
    sh(["make", "-C", proj, cc, "install", "PREFIX=" + home], env=env, what="make install PREFIX")
    plugindir = os.path.join(home, "lib", "udfhost")
    assert os.path.isfile(os.path.join(plugindir, "myplugin.so")), os.listdir(home)
    stdout, _ = udfhost(["list-plugins"], plugin_path=plugindir + ":" + PLUGIN_PATH)
    line = [l for l in stdout.splitlines() if l.split()[0] == "myplugin"]
    assert line and line[0].split()[1] == "0.1", "installed template not listed:\n" + stdout

    # A broken copy fails its test: the check is real.
    with open(os.path.join(proj, "myplugin.c")) as f:
        text = f.read()
    assert "d[i] += s[i];" in text, "template merge changed; update this test"
    with open(os.path.join(proj, "myplugin.c"), "w") as f:
        f.write(text.replace("d[i] += s[i];", "d[i] = s[i];"))
    p = subprocess.run(["make", "-C", proj, cc, "test", "UDFHOST=" + os.path.abspath(UDFHOST)],
                       env=env, capture_output=True, text=True)
    assert p.returncode != 0, "template test passed with a broken merge:\n" + p.stdout
    assert "check: sum at pixel" in p.stderr, p.stderr


# --- bash completion ---------------------------------------------------------------------------


def complete(line, env=None):
    """Completions of bash for the command line `line` (the cursor at its end)."""
    script = os.path.join(SRCDIR, "completion", "udfhost.bash")
    code = r'''
source "$1" || exit 1
read -ra COMP_WORDS <<< "$2"
COMP_WORDS[0]=$3
[[ $2 == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$2
COMP_POINT=${#2}
_udfhost
printf '%s\n' "${COMPREPLY[@]}"
'''
    p = subprocess.run(["bash", "-c", code, "bash", script, line, os.path.abspath(UDFHOST)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, "completion of %r: exit %d: %s" % (line, p.returncode, p.stderr)
    return [w for w in p.stdout.splitlines() if w]


def test_completion(tmp):
    if not shutil.which("bash"):
        print("NOTE: no bash in PATH; the completion checks were skipped")
        return
    assert complete("udfhost r") == ["run"], complete("udfhost r")
    got = complete("udfhost ")
    for cmd in ("run", "info", "plugin-info", "list-plugins", "check-plugin"):
        assert cmd in got, "subcommand %s not completed: %s" % (cmd, got)
    assert complete("udfhost run --plu") == ["--plugin", "--plugin-timeout"], \
        complete("udfhost run --plu")
    assert complete("udfhost list-plugins --j") == ["--json"]
    assert "--verbose" in complete("udfhost check-plugin --"), complete("udfhost check-plugin --")
    want = sorted(n for n in bundled() if n.startswith("s"))
    assert {"sum", "sumsig", "stddev"} <= set(want), want
    assert sorted(complete("udfhost run --plugin s")) == want, complete("udfhost run --plugin s")
    assert complete("udfhost run --plugin sum -p ") == ["dtype="], \
        complete("udfhost run --plugin sum -p ")
    assert complete("udfhost run --plugin sum --threads 2 -p d") == ["dtype="]
    assert sorted(complete("udfhost plugin-info su")) == ["sum", "sumsig"]
    assert complete("udfhost run --dtype uint1") == ["uint16"]
    # Files elsewhere: the dataset argument and option values.
    with open(os.path.join(tmp, "scan.raw"), "w") as f:
        f.write("")
    assert complete("udfhost run --plugin sum %s/sc" % tmp) == [os.path.join(tmp, "scan.raw")]
    assert complete("udfhost run --roi %s/sc" % tmp) == [os.path.join(tmp, "scan.raw")]


if __name__ == "__main__":
    main([test_list_plugins, test_list_plugins_shadowing_and_unloadable, test_list_plugins_usage,
          test_check_plugin_bundled, test_check_plugin_good, test_check_plugin_last_wins_merge,
          test_check_plugin_thread_state, test_check_plugin_result_only,
          test_check_plugin_parameters, test_check_plugin_unloadable, test_template,
          test_completion])
