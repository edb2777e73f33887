"""Bad input: every case gets one line on stderr naming the thing at fault, the documented exit
status, no result files (and no temporary ones), an untouched earlier result and an untouched input.

Exit statuses (udfhost(1)): 2 usage, 3 data, 4 plugin, 5 output.
"""
import hashlib
import os
import signal
import subprocess

import numpy as np

from udfhost_test import UDFHOST, fixture, main, raw_args, run, write_raw

NAV, SIG = (5, 4), (5, 5)
OLD_RESULT = b"an earlier run's result, which a failed run must not touch"


def setup(tmp):
    """A valid dataset, an output directory holding an older result, and the ROI files."""
    data = np.arange(np.prod(NAV + SIG), dtype="<u2").reshape(NAV + SIG)
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    for name in ("sum.intensity.npy", "fail.sig.npy"):
        with open(os.path.join(out, name), "wb") as f:
            f.write(OLD_RESULT)
    np.save(os.path.join(tmp, "roi_ok.npy"), np.ones(NAV, bool))
    np.save(os.path.join(tmp, "roi_shape.npy"), np.ones(NAV[::-1], bool))
    np.save(os.path.join(tmp, "roi_float.npy"), np.ones(NAV, np.float32))
    with open(os.path.join(tmp, "roi_ok.npy"), "rb") as f:
        good = f.read()
    with open(os.path.join(tmp, "roi_trunc.npy"), "wb") as f:
        f.write(good[:-3])
    with open(os.path.join(tmp, "roi_junk.npy"), "wb") as f:
        f.write(b"not numpy at all")
    with open(os.path.join(tmp, "short.raw"), "wb") as f:
        f.write(data.tobytes()[:-1])
    open(os.path.join(tmp, "empty.raw"), "wb").close()
    return path, out


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_failure(tmp, out, args, status, *needles):
    """Run udfhost expecting failure; check the message and that nothing was written."""
    inputs = {p: digest(os.path.join(tmp, p)) for p in os.listdir(tmp)
              if os.path.isfile(os.path.join(tmp, p))}
    _, err = run(args, expect=status, cwd=tmp)
    lines = err.splitlines()
    what = "udfhost %s" % " ".join(map(str, args))
    if len(lines) != 1 or not lines[0].startswith("udfhost: "):
        raise AssertionError("%s: expected one line 'udfhost: ...' on stderr, got %r" % (what, err))
    for needle in needles:
        if needle not in lines[0]:
            raise AssertionError("%s: message %r does not mention %r" % (what, lines[0], needle))
    if os.path.isdir(out):
        files = sorted(os.listdir(out))
        if files != ["fail.sig.npy", "sum.intensity.npy"]:
            raise AssertionError("%s: output directory holds %s after a failed run" % (what, files))
        for name in files:
            with open(os.path.join(out, name), "rb") as f:
                if f.read() != OLD_RESULT:
                    raise AssertionError("%s: a failed run changed %s" % (what, name))
    for p, h in inputs.items():
        if digest(os.path.join(tmp, p)) != h:
            raise AssertionError("%s: a failed run changed the input %s" % (what, p))


def test_usage_errors(tmp):
    path, out = setup(tmp)
    good = raw_args(NAV, SIG, "<u2")
    cases = [
        (["run", *good, path], "no --plugin"),
        (["run", "--plugin", "sum", *good], "no dataset"),
        (["run", "--plugin", "sum", *good, path, path], "more than one dataset"),
        (["run", "--plugin", "sum", "--bogus", *good, path], "--bogus"),
        (["run", "--plugin", "nosuch", *good, path], "nosuch", "not found"),
        (["run", "--plugin", "sum", "--plugin", "sum", *good, path], "sum", "twice"),
        (["run", "-p", "dtype=float64", "--plugin", "sum", *good, path], "-p dtype=float64"),
        (["run", "--plugin", "sum", "-p", "dtype", *good, path], "-p dtype", "NAME=VALUE"),
        (["run", "--plugin", "sum", "-p", "dtype=int8", *good, path], "sum", "dtype", "int8"),
        (["run", "--plugin", "sum", "-p", "colour=red", *good, path], "sum", "colour"),
        (["run", "--plugin", "sum", *good, "--dtype", "u3", path], "--dtype", "u3"),
        (["run", "--plugin", "sum", *good, "--nav-shape", "5,0", path], "--nav-shape", "5,0"),
        (["run", "--plugin", "sum", *good, "--nav-shape", "5,x", path], "--nav-shape", "5,x"),
        (["run", "--plugin", "sum", *good, "--sig-shape", "", path], "--sig-shape"),
        (["run", "--plugin", "sum", *good, "--nav-shape", "4294967296,4294967296,2", path],
         "--nav-shape", "2^64"),
        (["run", "--plugin", "sum", *good, "--byte-order", "middle", path], "--byte-order"),
        (["run", "--plugin", "sum", *good, "--format", "nosuch", path], "--format", "nosuch"),
        (["run", "--plugin", "sum", *good, "--threads", "0", path], "--threads"),
        (["run", "--plugin", "sum", *good, "--threads", "many", path], "--threads", "many"),
        (["run", "--plugin", "sum", *good, "--offset", "-1", path], "--offset"),
        (["run", "--plugin", "sum", *good, "--partition-size", "0", path], "--partition-size"),
        (["run", "--plugin", "sum", "--format", "raw", "--dtype", "u2", "--nav-shape", "5,4",
          path], "--sig-shape"),
        (["run", "--plugin", "sum", "--format", "raw", "--nav-shape", "5,4", "--sig-shape", "5,5",
          path], "--dtype"),
        (["frobnicate"], "frobnicate"),
    ]
    for args, *needles in cases:
        check_failure(tmp, out, args + (["-o", out] if args[0] == "run" else []), 2, *needles)


def test_data_errors(tmp):
    path, out = setup(tmp)
    good = raw_args(NAV, SIG, "<u2")
    cases = [
        (["run", "--plugin", "sum", *good, "missing.raw"], "missing.raw", "No such file"),
        (["run", "--plugin", "sum", *good, "short.raw"], "short.raw", "too short"),
        (["run", "--plugin", "sum", *good, "empty.raw"], "empty.raw", "too short"),
        (["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2", offset=1), path], "too short"),
        (["run", "--plugin", "sum", *raw_args((5, 5), SIG, "<u2"), path], "too short"),
        (["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u4"), path], "too short"),
        (["run", "--plugin", "sum", *good, "/dev/null"], "not a regular file"),
        (["run", "--plugin", "sum", *good, "--roi", "nothere.npy", path], "nothere.npy"),
        (["run", "--plugin", "sum", *good, "--roi", "roi_shape.npy", path], "roi_shape.npy",
         "(4,5)", "(5,4)"),
        (["run", "--plugin", "sum", *good, "--roi", "roi_float.npy", path], "roi_float.npy",
         "float32"),
        (["run", "--plugin", "sum", *good, "--roi", "roi_trunc.npy", path], "roi_trunc.npy",
         "too short"),
        (["run", "--plugin", "sum", *good, "--roi", "roi_junk.npy", path], "roi_junk.npy"),
    ]
    for args, *needles in cases:
        check_failure(tmp, out, args + ["-o", out], 3, *needles)


def test_output_errors(tmp):
    path, out = setup(tmp)
    good = raw_args(NAV, SIG, "<u2")
    blocker = os.path.join(tmp, "a-file")
    open(blocker, "wb").close()
    check_failure(tmp, out, ["run", "--plugin", "sum", *good, "-o", os.path.join(blocker, "sub"),
                             path], 5, "a-file")
    if os.geteuid() != 0:  # root writes anywhere
        os.chmod(out, 0o500)
        try:
            check_failure(tmp, out, ["run", "--plugin", "sum", *good, "-o", out, path], 5, out)
        finally:
            os.chmod(out, 0o700)


def test_malformed_plugins(tmp):
    path, out = setup(tmp)
    good = raw_args(NAV, SIG, "<u2")
    cases = [
        ("abi_v2", "ABI 2", "udf_plugin_entry_v2"),
        ("bad_major", "ABI 2"),
        ("short_desc", "descriptor is"),
        ("no_entry", "udf_plugin_entry_v1"),
        ("bad_signature", "pointer size"),
    ]
    for name, *needles in cases:
        so = fixture(name)
        check_failure(tmp, out, ["run", "--plugin", so, *good, "-o", out, path], 4, so, *needles)
    # Not a shared object at all.
    check_failure(tmp, out, ["run", "--plugin", path, *good, "-o", out, path], 4, path)


def test_plugin_fails_in_each_hook(tmp):
    """With --overwrite, so that only the failure keeps the earlier results in place."""
    path, out = setup(tmp)
    good = raw_args(NAV, SIG, "<u2")
    # 20 frames in partitions of one frame each, so partition 3 exists.
    for hook in ("declare_buffers", "init_task", "preprocess", "process_tile", "postprocess",
                 "merge", "get_results"):
        partition_hook = hook in ("preprocess", "process_tile", "postprocess", "merge")
        for threads in (1, 2, 3):
            needles = ["plugin fail failed in " + hook, "deliberate failure in " + hook]
            if partition_hook:
                needles.append("on partition 3")
            # sum runs alongside: its results must not be written either.
            check_failure(tmp, out, ["run", "--plugin", "sum", "--plugin", fixture("fail"),
                                     "-p", "hook=" + hook, "-p", "partition=3", *good,
                                     "--partition-size", "1", "--threads", threads,
                                     "--overwrite", "-o", out, path], 4, *needles)
    # A plugin that fails without saying why still gets a message.
    check_failure(tmp, out, ["run", "--plugin", fixture("fail"), "-p", "hook=process_tile",
                             "-p", "partition=3", "-p", "silent=true", *good,
                             "--partition-size", "1", "--overwrite", "-o", out, path],
                  4, "process_tile", "no message given")


def test_plugin_crash_is_named(tmp):
    """Without isolation a crash still kills the process, but first names the plugin call."""
    if os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"):
        print("note: under a sanitizer its own crash report replaces udfhost's")
        return
    path, out = setup(tmp)
    p = subprocess.run([UDFHOST, "run", "--plugin", fixture("fail"), "-p", "hook=process_tile",
                        "-p", "partition=3", "-p", "how=segv", *raw_args(NAV, SIG, "<u2"),
                        "--partition-size", "1", "--overwrite", "-o", out, path],
                       capture_output=True, text=True)
    if p.returncode != -signal.SIGSEGV:
        raise AssertionError("expected death by SIGSEGV, got %d: %s" % (p.returncode, p.stderr))
    expect = "udfhost: crashed with SIGSEGV; last plugin call: fail in process_tile on partition 3"
    if expect not in p.stderr:
        raise AssertionError("crash report %r lacks %r" % (p.stderr, expect))
    if sorted(os.listdir(out)) != ["fail.sig.npy", "sum.intensity.npy"]:
        raise AssertionError("a crashed run left %s" % os.listdir(out))


def test_fixture_succeeds_when_not_asked_to_fail(tmp):
    """The failure cases above fail because of the hook, not because the fixture is broken."""
    path, out = setup(tmp)
    run(["run", "--plugin", fixture("fail"), "-p", "hook=process_tile", "-p", "partition=99",
         *raw_args(NAV, SIG, "<u2"), "--partition-size", "1", "--overwrite", "-o", out, path])
    data = np.fromfile(path, "<u2").reshape(NAV + SIG)
    got = np.load(os.path.join(out, "fail.sig.npy"))
    if not np.array_equal(got, data.sum(axis=(0, 1), dtype=np.float64)):
        raise AssertionError("fail fixture computed a wrong sum")
    leftovers = [f for f in os.listdir(out) if ".tmp" in f]
    if leftovers:
        raise AssertionError("temporary files left after success: %s" % leftovers)


if __name__ == "__main__":
    main([test_usage_errors, test_data_errors, test_output_errors, test_malformed_plugins,
          test_plugin_fails_in_each_hook, test_plugin_crash_is_named,
          test_fixture_succeeds_when_not_asked_to_fail])
