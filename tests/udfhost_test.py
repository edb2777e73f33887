"""Shared helpers for udfhost's Python tests: run the binary, make datasets, a tiny test runner.

The tests are the independent NumPy cross-check: every result udfhost writes is recomputed here
with NumPy from the same file and compared.
"""
import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np

UDFHOST = os.environ.get("UDFHOST", "udfhost")
FIXTURES = os.environ.get("UDFHOST_FIXTURES", "")
SRCDIR = os.environ.get("UDFHOST_SRCDIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fixture(name):
    """Path of a test fixture plugin."""
    return os.path.join(FIXTURES, name + ".so")


def run(args, expect=0, cwd=None):
    """Run udfhost with args; check the exit status; return (stdout, stderr) as text."""
    p = subprocess.run([UDFHOST] + [str(a) for a in args], capture_output=True, text=True, cwd=cwd)
    if expect is not None and p.returncode != expect:
        raise AssertionError(
            "udfhost %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
            % (" ".join(map(str, args)), p.returncode, expect, p.stdout, p.stderr))
    return p.stdout, p.stderr


def raw_args(shape_nav, shape_sig, dtype, offset=0):
    """The flags that describe a raw file of the given shapes and NumPy dtype ('<u2', '>f4')."""
    return ["--format", "raw", "--dtype", np.dtype(dtype).str,
            "--nav-shape", ",".join(map(str, shape_nav)),
            "--sig-shape", ",".join(map(str, shape_sig)),
            "--offset", str(offset)]


def random_frames(rng, shape, dtype):
    """Random data spanning much of the dtype's range (but sums stay exact in float64)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    lo, hi = max(info.min, -30000), min(info.max, 60000)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)


def write_raw(path, data, offset=0):
    with open(path, "wb") as f:
        f.write(b"\xab" * offset)
        f.write(data.tobytes())


def load(outdir, plugin, buffer):
    return np.load(os.path.join(outdir, "%s.%s.npy" % (plugin, buffer)))


def assert_equal(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        raise AssertionError("%s: shape/dtype %s %s != %s %s" % (what, a.shape, a.dtype, b.shape, b.dtype))
    if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
        bad = np.argwhere(~((a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else (a == b)))
        i = tuple(bad[0])
        raise AssertionError("%s: %d elements differ, first at %s: %r != %r"
                             % (what, len(bad), i, a[i], b[i]))


def assert_close(a, b, what, rtol):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        raise AssertionError("%s: shape/dtype %s %s != %s %s" % (what, a.shape, a.dtype, b.shape, b.dtype))
    if not np.allclose(a, b, rtol=rtol, atol=0, equal_nan=True):
        err = np.nanmax(np.abs(a.astype(np.float64) - b) / np.maximum(np.abs(b), 1e-300))
        raise AssertionError("%s: relative error %g > %g" % (what, err, rtol))


def main(tests):
    """Run every test function; print a line per test; exit 1 if any failed."""
    failed = 0
    for t in tests:
        with tempfile.TemporaryDirectory(prefix="udfhost-test-") as tmp:
            try:
                t(tmp)
                print("PASS: " + t.__name__)
            except Exception:
                failed += 1
                print("FAIL: " + t.__name__)
                traceback.print_exc(file=sys.stdout)
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    sys.exit(1 if failed else 0)
