"""Nothing lost, nothing run by accident: existing results are replaced only with --overwrite;
plugin files that others could have changed are refused before any of their code runs; a run
whose result buffers cannot fit fails before processing; a plugin that writes into its input
cannot change the file; and a run killed with SIGKILL at any moment leaves every result file
absent or complete.
"""
import grp
import hashlib
import json
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import time

import numpy as np

from udfhost_test import SRCDIR, UDFHOST, fixture, main, raw_args, run, write_raw

SAMPLE = os.path.join(SRCDIR, "data", "sample.raw")
SAMPLE_ARGS = ["--format", "raw", "--dtype", "uint16", "--nav-shape", "24,32", "--sig-shape",
               "48,48"]


def sanitized():
    """An ASan/TSan build: it reserves terabytes of shadow address space (so no ulimit -v) and
    reports crashes itself. Known from the environment the suite sets, or from the binary."""
    if os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"):
        return True
    with open(UDFHOST, "rb") as f:
        binary = f.read()
    return b"__asan_init" in binary or b"__tsan_init" in binary


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(directory):
    """{name: sha256} of every file in directory."""
    return {n: digest(os.path.join(directory, n)) for n in sorted(os.listdir(directory))}


def one_line(err, what, *needles):
    lines = err.splitlines()
    if len(lines) != 1 or not lines[0].startswith("udfhost: "):
        raise AssertionError("%s: expected one line 'udfhost: ...', got %r" % (what, err))
    for needle in needles:
        if needle not in lines[0]:
            raise AssertionError("%s: %r does not mention %r" % (what, lines[0], needle))
    return lines[0]


# --- --overwrite ---------------------------------------------------------------------------------

def test_existing_results_refused_before_processing(tmp):
    """Every kind of file a run writes (.npy, .png, .tif, udfhost-run.json), alone in the output
    directory, makes the run refuse before it reads a frame; --overwrite replaces it."""
    args = ["run", "--plugin", "sum", "--plugin", "com", *SAMPLE_ARGS, "--preview",
            "--save-format", "tiff"]
    ref = os.path.join(tmp, "ref")
    run(args + ["-o", ref, SAMPLE])
    names = sorted(os.listdir(ref))
    for kind in (".npy", ".png", ".tif", "udfhost-run.json"):
        if not any(n.endswith(kind) for n in names):
            raise AssertionError("the reference run wrote no %s file: %s" % (kind, names))
    for name in names:
        out = os.path.join(tmp, "out-" + name)
        os.mkdir(out)
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"an earlier result")
        _, err = run(args + ["-o", out, SAMPLE], expect=5)
        one_line(err, name, os.path.join(out, name), "already exists", "--overwrite")
        if os.listdir(out) != [name] or open(os.path.join(out, name), "rb").read() != \
                b"an earlier result":
            raise AssertionError("%s: a refused run changed the directory: %s"
                                 % (name, os.listdir(out)))
        run(args + ["--overwrite", "-o", out, SAMPLE])
        if sorted(os.listdir(out)) != names:
            raise AssertionError("%s: --overwrite run left %s" % (name, os.listdir(out)))
        if name != "udfhost-run.json" and digest(os.path.join(out, name)) != \
                digest(os.path.join(ref, name)):
            raise AssertionError("%s: --overwrite did not write the new result" % name)
    # Refused before processing: a plugin that would fail in process_tile is never reached.
    out = os.path.join(tmp, "out-sum.intensity.npy")
    _, err = run(["run", "--plugin", "sum", "--plugin", fixture("fail"), "-p",
                  "hook=process_tile", *SAMPLE_ARGS, "-o", out, SAMPLE], expect=5)
    one_line(err, "failing plugin", "sum.intensity.npy", "already exists")


def test_live_results_rewrite_their_own_files(tmp):
    """--live-every rewrites the run's own files without --overwrite, but refuses others'."""
    out = os.path.join(tmp, "out")
    args = ["run", "--plugin", "sumsig", *SAMPLE_ARGS, "--partition-size", "16K",
            "--live-every", "1", "--preview", "-o", out, SAMPLE]
    run(args)
    ref = os.path.join(tmp, "ref")
    run(["run", "--plugin", "sumsig", *SAMPLE_ARGS, "--preview", "-o", ref, SAMPLE])
    if snapshot(out).get("sumsig.intensity.npy") != snapshot(ref)["sumsig.intensity.npy"]:
        raise AssertionError("live run ended with other results than a plain run")
    _, err = run(args, expect=5)
    one_line(err, "second live run", "already exists", "--overwrite")
    run(args[:-3] + ["--overwrite"] + args[-3:])


# --- plugin file permissions -------------------------------------------------------------------

CONSTRUCTOR_PLUGIN = r"""
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
/* Runs as soon as the library is loaded: before any udfhost check could look at a descriptor. */
__attribute__((constructor)) static void mark(void)
{
    const char *path = getenv("UDFHOST_TEST_MARKER");
    if (path)
        close(open(path, O_WRONLY | O_CREAT, 0644));
}
"""


def build_constructor_plugin(tmp, path):
    src = os.path.join(tmp, "constructor.c")
    with open(src, "w") as f:
        f.write(CONSTRUCTOR_PLUGIN)
    cc = os.environ.get("UDFHOST_CC", "cc").split()
    subprocess.run(cc + ["-shared", "-fPIC", "-o", path, src], check=True)
    os.chmod(path, 0o755)


def run_env(args, expect, env, cwd=None):
    p = subprocess.run([UDFHOST] + args, capture_output=True, text=True, env=env, cwd=cwd)
    if p.returncode != expect:
        raise AssertionError("udfhost %s: exit %d, expected %d: %s"
                             % (" ".join(args), p.returncode, expect, p.stderr))
    return p.stdout, p.stderr


def foreign_group():
    """A group id that is not the user's private group (None if this user cannot chgrp to one)."""
    me = pwd.getpwuid(os.getuid())
    candidates = [g.gr_gid for g in grp.getgrall()] if os.getuid() == 0 else os.getgroups()
    for gid in candidates:
        g = grp.getgrgid(gid)
        if g.gr_name != me.pw_name or [m for m in g.gr_mem if m != me.pw_name]:
            return gid
    return None


def test_unsafe_plugin_refused_before_dlopen(tmp):
    """A plugin file anyone may change is refused, and its constructor never runs; the flag (even
    after --plugin) loads it."""
    pdir = os.path.join(tmp, "plugins")
    os.mkdir(pdir, 0o755)
    evil = os.path.join(pdir, "evil.so")
    build_constructor_plugin(tmp, evil)
    marker = os.path.join(tmp, "constructor-ran")
    env = dict(os.environ, UDFHOST_TEST_MARKER=marker)
    os.chmod(evil, 0o757)
    for cmd in (["run", "--plugin", evil, *SAMPLE_ARGS, "-o", os.path.join(tmp, "o"), SAMPLE],
                ["plugin-info", evil], ["check-plugin", evil]):
        stdout, err = run_env(cmd, 4, env)
        if cmd[0] != "check-plugin":
            one_line(err, cmd[0], evil, "anyone may change", "--allow-unsafe-plugins")
        elif "anyone may change" not in stdout:
            raise AssertionError("check-plugin: %r does not say why" % stdout)
        if os.path.exists(marker):
            raise AssertionError("%s: the refused plugin's constructor ran" % cmd[0])
    # The control: loading it does run the constructor (so the check above can fail).
    _, err = run_env(["plugin-info", evil, "--allow-unsafe-plugins"], 4, env)
    if not os.path.exists(marker) or "no symbol" not in err:
        raise AssertionError("with --allow-unsafe-plugins the file was not loaded: %r" % err)


def test_unsafe_plugin_cases(tmp):
    """Group-writable files, world-writable directories, the sticky bit, symbolic links, and the
    flag for every command that loads plugins."""
    src = os.path.join(os.environ["UDFHOST_PLUGIN_PATH"].split(":")[0], "sum.so")
    out = os.path.join(tmp, "out")
    ref = os.path.join(tmp, "ref")
    run(["run", "--plugin", "sum", *SAMPLE_ARGS, "-o", ref, SAMPLE])

    def runs(plugin, ok, *needles):
        args = ["run", "--plugin", plugin, *SAMPLE_ARGS, "--overwrite", "-o", out, SAMPLE]
        if ok:
            run(args)
            return
        _, err = run(args, expect=4)
        one_line(err, plugin, plugin, "--allow-unsafe-plugins", *needles)
        for flagged in (args[:3] + ["--allow-unsafe-plugins"] + args[3:],
                        ["run", "--allow-unsafe-plugins"] + args[1:]):
            run(flagged)
            if digest(os.path.join(out, "sum.intensity.npy")) != \
                    digest(os.path.join(ref, "sum.intensity.npy")):
                raise AssertionError("%s: wrong result with --allow-unsafe-plugins" % plugin)

    safe = os.path.join(tmp, "safe")
    os.mkdir(safe, 0o755)
    plugin = os.path.join(safe, "sum.so")
    shutil.copy(src, plugin)
    os.chmod(plugin, 0o755)
    runs(plugin, True)
    os.chmod(plugin, 0o757)
    runs(plugin, False, "anyone may change")
    gid = foreign_group()
    if gid is None:
        print("note: no group to give the plugin: group-writable case not tried")
    else:
        os.chown(plugin, -1, gid)
        os.chmod(plugin, 0o775)
        runs(plugin, False, "its group may change")
        os.chown(plugin, -1, pwd.getpwuid(os.getuid()).pw_gid)
    os.chmod(plugin, 0o755)
    runs(plugin, True)
    # A directory anyone may write to; with the sticky bit (as /tmp) only the owner can replace.
    os.chmod(safe, 0o777)
    runs(plugin, False, "directory " + safe, "anyone may replace it")
    os.chmod(safe, 0o1777)
    runs(plugin, True)
    if os.getuid() == 0:
        os.chown(plugin, 1, -1)
        runs(plugin, False, "user 1 put into the shared directory")
        os.chown(plugin, 0, -1)
    else:
        print("note: not root: a foreign file in a sticky directory not tried")
    # A symbolic link from a safe directory to a file in an unsafe one.
    os.chmod(safe, 0o777)
    link_dir = os.path.join(tmp, "links")
    os.mkdir(link_dir, 0o755)
    link = os.path.join(link_dir, "sum.so")
    os.symlink(plugin, link)
    runs(link, False, "directory " + safe)
    # Every command that loads plugins takes the flag.
    env = dict(os.environ, UDFHOST_PLUGIN_PATH=safe)
    _, err = run_env(["plugin-info", "sum"], 4, env)
    one_line(err, "plugin-info", plugin, "--allow-unsafe-plugins")
    run_env(["plugin-info", "--allow-unsafe-plugins", "sum"], 0, env)
    listed, _ = run_env(["list-plugins", "--json"], 0, env)
    entry = [e for e in json.loads(listed) if e["path"] == plugin]
    if len(entry) != 1 or "anyone may replace it" not in (entry[0].get("error") or ""):
        raise AssertionError("list-plugins does not list the unsafe plugin as such: %s" % entry)
    listed, _ = run_env(["list-plugins", "--json", "--allow-unsafe-plugins"], 0, env)
    entry = [e for e in json.loads(listed) if e["path"] == plugin]
    if len(entry) != 1 or entry[0]["version"] is None:
        raise AssertionError("list-plugins --allow-unsafe-plugins did not load it: %s" % entry)
    stdout, _ = run_env(["check-plugin", plugin], 4, env)
    if "anyone may replace it" not in stdout:
        raise AssertionError("check-plugin does not say why: %r" % stdout)
    stdout, _ = run_env(["check-plugin", "--allow-unsafe-plugins", plugin], 0, env)
    if not stdout.startswith("OK: "):
        raise AssertionError("check-plugin --allow-unsafe-plugins: %r" % stdout)


def test_no_plugin_from_the_current_directory(tmp):
    """A bare name is looked up in UDFHOST_PLUGIN_PATH and the installed directory only: a
    NAME.so in the current directory is never loaded, also with empty path entries."""
    evil = os.path.join(tmp, "evil.so")
    build_constructor_plugin(tmp, evil)
    marker = os.path.join(tmp, "constructor-ran")
    for path in (os.environ["UDFHOST_PLUGIN_PATH"], "", ":", "::" + os.environ[
            "UDFHOST_PLUGIN_PATH"] + ":"):
        env = dict(os.environ, UDFHOST_TEST_MARKER=marker, UDFHOST_PLUGIN_PATH=path)
        _, err = run_env(["plugin-info", "evil"], 2, env, cwd=tmp)
        one_line(err, "UDFHOST_PLUGIN_PATH=%r" % path, "plugin 'evil' not found")
        if os.path.exists(marker):
            raise AssertionError("UDFHOST_PLUGIN_PATH=%r: evil.so in the current directory was "
                                 "loaded" % path)
    # Named explicitly, it is loaded (the control).
    env = dict(os.environ, UDFHOST_TEST_MARKER=marker)
    run_env(["plugin-info", "./evil.so"], 4, env, cwd=tmp)
    if not os.path.exists(marker):
        raise AssertionError("./evil.so was not loaded")


# --- memory for the results ----------------------------------------------------------------------

def test_results_that_cannot_fit(tmp):
    """Result buffers far beyond RAM + swap of any machine (radial's profile of 65536 bins for 1e9
    frames of a sparse file: over 700 TiB; sumsig's far less) fail before processing, naming the
    plugin that needs the most; nothing is created."""
    path = os.path.join(tmp, "huge.raw")
    with open(path, "wb") as f:
        f.truncate(1000000 * 1000 * 4)
    out = os.path.join(tmp, "out")
    started = time.monotonic()
    _, err = run(["run", "--plugin", "sumsig", "--plugin", "radial", "-p", "n_bins=65536",
                  "--format", "raw", "--dtype", "uint8", "--nav-shape", "1000000,1000",
                  "--sig-shape", "2,2", "-o", out, path], expect=6)
    line = one_line(err, "huge results", "out of memory for result buffers (needs ",
                    "plugin radial", "RAM + swap")
    need = float(re.search(r"needs (\d+(\.\d+)?) GiB", line).group(1))
    if need < 700 * 1024:
        raise AssertionError("%r: the need is understated" % line)
    if time.monotonic() - started > 10 or os.path.exists(out):
        raise AssertionError("the refusal came late or created %s" % out)


def test_results_beyond_ulimit_v(tmp):
    """Under ulimit -v the address space left is the limit: 11 GiB of sumsig buffers are refused
    under a 2 GB limit, while a small run under the same limit succeeds."""
    if sanitized():
        print("note: skipped in a sanitizer build (its shadow memory needs terabytes of address "
              "space)")
        return
    path = os.path.join(tmp, "mid.raw")
    with open(path, "wb") as f:
        f.truncate(30000 * 30000)
    limit = "ulimit -v 2000000; exec \"$0\" \"$@\""

    def limited(args, expect):
        p = subprocess.run(["sh", "-c", limit, UDFHOST] + args, capture_output=True, text=True)
        if p.returncode != expect:
            raise AssertionError("under ulimit -v: exit %d, expected %d: %s"
                                 % (p.returncode, expect, p.stderr))
        return p.stderr

    err = limited(["run", "--plugin", "sumsig", "--format", "raw", "--dtype", "uint8",
                   "--nav-shape", "30000,30000", "--sig-shape", "1,1", "--threads", "2", "-o",
                   os.path.join(tmp, "big"), path], 6)
    one_line(err, "ulimit -v", "out of memory for result buffers (needs ", "plugin sumsig",
             "ulimit -v")
    limited(["run", "--plugin", "sum", "--plugin", "sumsig", "--plugin", "com", *SAMPLE_ARGS,
             "--threads", "2", "-o", os.path.join(tmp, "small"), SAMPLE], 0)


# --- a plugin that writes into its input ---------------------------------------------------------

def test_plugin_cannot_change_its_input(tmp):
    """scribble casts away const and writes into its tiles. With --io mmap the data is the file
    mapped read-only: the write crashes the run (reported by udfhost's crash handler, or by ASan
    in a sanitizer build). With --io read it lands in a worker's buffer, so the run may finish,
    as expected. Either way the file keeps its bytes."""
    rng = np.random.default_rng(8)
    data = rng.integers(0, 60000, size=(6, 5, 16, 16), endpoint=True).astype("<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    before = digest(path)
    args = ["run", "--plugin", fixture("scribble"), *raw_args((6, 5), (16, 16), "<u2"),
            "--threads", "1"]
    out = os.path.join(tmp, "mmap")
    p = subprocess.run([UDFHOST] + args + ["--io", "mmap", "-o", out, path], capture_output=True,
                       text=True)
    if sanitized():
        if p.returncode == 0 or "AddressSanitizer" not in p.stderr:
            raise AssertionError("--io mmap: exit %d without an ASan report: %s"
                                 % (p.returncode, p.stderr))
    else:
        expect = ("udfhost: crashed with SIGSEGV; last plugin call: scribble in process_tile on "
                  "partition 0")
        if p.returncode != -signal.SIGSEGV or expect not in p.stderr:
            raise AssertionError("--io mmap: exit %d, stderr %r" % (p.returncode, p.stderr))
    if os.path.exists(out) and os.listdir(out):
        raise AssertionError("a crashed run left %s" % os.listdir(out))
    if digest(path) != before:
        raise AssertionError("--io mmap: the plugin changed the input file")
    out = os.path.join(tmp, "read")
    run(args + ["--io", "read", "-o", out, path])
    if digest(path) != before:
        raise AssertionError("--io read: the plugin changed the input file")
    if not np.load(os.path.join(out, "scribble.seen.npy")).all():
        raise AssertionError("--io read: the plugin did not see every frame")


# --- kill -9 -------------------------------------------------------------------------------------

TEMP = re.compile(r"^\.(.+)\.tmp-(\d+)$")


def test_kill_9_leaves_complete_files(tmp):
    """SIGKILL at 100 moments spread over a run (sum, sumsig, stddev, com with previews), into
    one directory that earlier runs filled (--overwrite): every result file is complete and
    equal to the reference run's; leftovers are only temporaries of the killed process."""
    args = ["run", "--plugin", "sum", "--plugin", "sumsig", "--plugin", "stddev", "--plugin",
            "com", *SAMPLE_ARGS, "--preview", "--threads", "2", "--partition-size", "64K"]
    ref = os.path.join(tmp, "ref")
    started = time.monotonic()
    run(args + ["-o", ref, SAMPLE])
    duration = time.monotonic() - started
    reference = snapshot(ref)
    arrays = {n: np.load(os.path.join(ref, n)) for n in reference if n.endswith(".npy")}
    out = os.path.join(tmp, "out")
    rng = random.Random(9)
    killed = finished = with_temps = partial_sets = 0
    for _ in range(100):
        p = subprocess.Popen([UDFHOST] + args + ["--overwrite", "-o", out, SAMPLE],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, duration))
        p.send_signal(signal.SIGKILL)
        status = p.wait()
        if status == -signal.SIGKILL:
            killed += 1
        elif status == 0:
            finished += 1
        else:
            raise AssertionError("run ended with status %d before the kill" % status)
        if not os.path.isdir(out):
            continue
        present, temps = set(), False
        for name in os.listdir(out):
            temp = TEMP.match(name)
            if temp:
                if temp.group(1) not in reference or int(temp.group(2)) != p.pid:
                    raise AssertionError("stray temporary file %s (killed pid %d)" % (name, p.pid))
                os.unlink(os.path.join(out, name))  # the documented cleanup
                temps = True
                continue
            if name not in reference:
                raise AssertionError("unexpected file %s after a kill" % name)
            present.add(name)
            full = os.path.join(out, name)
            if name.endswith(".npy"):
                got = np.load(full)
                if got.dtype != arrays[name].dtype or not np.array_equal(
                        got, arrays[name], equal_nan=got.dtype.kind == "f"):
                    raise AssertionError("%s differs from the reference after a kill" % name)
            elif name == "udfhost-run.json":
                with open(full) as f:
                    json.load(f)
            elif digest(full) != reference[name]:
                raise AssertionError("%s differs from the reference after a kill" % name)
        with_temps += temps
        if present and present != set(reference):
            partial_sets += 1
    print("kill -9: %d runs killed, %d finished first (run time %.3f s); %d kills left "
          "temporaries, %d left an incomplete set of files" % (killed, finished, duration,
                                                              with_temps, partial_sets))
    if killed < 30:
        raise AssertionError("only %d of 100 runs were killed before they finished" % killed)
    run(args + ["--overwrite", "-o", out, SAMPLE])
    if set(os.listdir(out)) != set(reference):
        raise AssertionError("after a clean run: %s" % sorted(os.listdir(out)))


if __name__ == "__main__":
    main([test_existing_results_refused_before_processing,
          test_live_results_rewrite_their_own_files, test_unsafe_plugin_refused_before_dlopen, test_unsafe_plugin_cases,
          test_no_plugin_from_the_current_directory, test_results_that_cannot_fit,
          test_results_beyond_ulimit_v, test_plugin_cannot_change_its_input,
          test_kill_9_leaves_complete_files])
