"""stddev, logsum, max, min: per-pixel statistics over frames, each checked against NumPy.

The references below are written out in NumPy from the same file (float64 for stddev and logsum,
the data's own dtype for max/min). Tolerances: max and min are exact (a maximum picks one stored
value); integer sums are exact in float64 here; float sums differ from NumPy's pairwise order only
by float64 rounding, hence rtol 1e-12; results rounded to float32 differ from NumPy's float64 cast
to float32 by at most one float32 ulp (the plugin rounds its own float64, not NumPy's), hence rtol
2**-23.
"""
import math
import os

import numpy as np

from udfhost_test import (assert_close, assert_equal, load, main, random_frames, raw_args, run,
                          write_raw)

RNG = np.random.default_rng(20261129)
DTYPES = ["|u1", "<u2", ">u2", "<u4", ">u4", "|i1", "<i2", ">i2", "<i4", ">i4",
          "<f4", ">f4", "<f8", ">f8"]
F32_RTOL = 2.0 ** -23


# --- NumPy references --------------------------------------------------------------------------

def ref_stddev(frames):
    """frames: (N, *sig) of the selected frames. Population statistics in float64 (ddof=0)."""
    f = frames.astype(np.float64)
    n = f.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = f.mean(axis=0) if n else np.full(f.shape[1:], np.nan)
        var = f.var(axis=0) if n else np.full(f.shape[1:], np.nan)
    return {"num_frames": np.array(n, dtype=np.uint64), "sum": f.sum(axis=0),
            "varsum": var * n if n else np.zeros(f.shape[1:]), "mean": mean, "var": var,
            "std": np.sqrt(var)}


def ref_logsum(frames):
    """Sum over frames of log(frame - min(frame) + 1), in float64, minimum over each frame."""
    f = frames.astype(np.float64)
    sig_axes = tuple(range(1, f.ndim))
    lo = f.min(axis=sig_axes, keepdims=True)
    return np.log(f - lo + 1).sum(axis=0)


def assert_abs(a, b, scale, what, tol):
    """|a - b| <= tol * scale elementwise: for sums whose terms cancel, where the rounding error
    is relative to the sum of the magnitudes of the terms (scale), not to the result."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        raise AssertionError("%s: shape/dtype %s %s != %s %s" % (what, a.shape, a.dtype, b.shape, b.dtype))
    err = np.max(np.abs(a - b) / np.maximum(scale, 1e-300))
    if not err <= tol:
        raise AssertionError("%s: error %g of the magnitude sum > %g" % (what, err, tol))


def native(dtype):
    return np.dtype(dtype).newbyteorder("=")


def selected(data, nav_ndim, roi):
    """The selected frames as (N, *sig), in flat nav order."""
    frames = data.reshape((-1,) + data.shape[nav_ndim:])
    return frames if roi is None else frames[roi.ravel()]


# --- Running -----------------------------------------------------------------------------------

def run_stats(tmp, data, nav_ndim, plugins=("stddev", "logsum", "max", "min"), dtype="float32",
              extra=(), roi=None, out="out"):
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    args = []
    for p in plugins:
        args += ["--plugin", p]
        if p in ("stddev", "logsum"):
            args += ["-p", "dtype=" + dtype]
    if roi is not None:
        np.save(os.path.join(tmp, "roi.npy"), roi)
        args += ["--roi", os.path.join(tmp, "roi.npy")]
    out = os.path.join(tmp, out)
    run(["run", *args, *raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:], data.dtype),
         "--overwrite", "-o", out, *extra, path])
    return out


def check_stats(out, data, nav_ndim, plugins=("stddev", "logsum", "max", "min"),
                dtype="float32", roi=None, what=""):
    frames = selected(data, nav_ndim, roi)
    what = "%s %s %s %s" % (what, data.shape, data.dtype.str, dtype)
    exact_ints = data.dtype.kind in "iu"
    if "stddev" in plugins:
        ref = ref_stddev(frames)
        assert_equal(load(out, "stddev", "num_frames"), ref["num_frames"], "num_frames " + what)
        if exact_ints:
            # Integers below 2^17, at most a few hundred frames: every partial sum is exact.
            assert_equal(load(out, "stddev", "sum"), ref["sum"], "sum " + what)
        else:
            # Signed sums cancel, so bound the error by the sum of magnitudes, not the result.
            scale = np.abs(frames.astype(np.float64)).sum(axis=0)
            assert_abs(load(out, "stddev", "sum"), ref["sum"], scale, "sum " + what, 1e-13)
        assert_close(load(out, "stddev", "varsum"), ref["varsum"], "varsum " + what, 1e-12)
        rtol = F32_RTOL if dtype == "float32" else 1e-12
        for b in ("var", "std"):
            assert_close(load(out, "stddev", b), ref[b].astype(dtype), b + " " + what, rtol)
        mean = load(out, "stddev", "mean")
        if dtype == "float32":
            assert_close(mean, ref["mean"].astype(dtype), "mean " + what, rtol)
        elif len(frames):
            scale = np.abs(frames.astype(np.float64)).mean(axis=0)
            assert_abs(mean, ref["mean"], scale, "mean " + what, 1e-13)
    if "logsum" in plugins:
        # float64 sums of logs in another order (and NumPy's own log): rounding only.
        rtol = F32_RTOL if dtype == "float32" else 1e-12
        assert_close(load(out, "logsum", "logsum"), ref_logsum(frames).astype(dtype),
                     "logsum " + what, rtol)
    nat = native(data.dtype)
    for p, fn in (("max", np.max), ("min", np.min)):
        if p in plugins:
            assert_equal(load(out, p, "intensity"), fn(frames, axis=0).astype(nat), p + " " + what)


# --- Tests -------------------------------------------------------------------------------------

def test_every_dtype_odd_shapes(tmp):
    # Partitions of 2 KiB hold a handful of frames: many merges per run.
    for i, dt in enumerate(DTYPES):
        data = random_frames(RNG, (7, 13, 9, 11), dt)
        dtype = ("float32", "float64")[i % 2]
        out = run_stats(tmp, data, 2, dtype=dtype, extra=["--partition-size", "2K"])
        check_stats(out, data, 2, dtype=dtype)


def test_nav_and_sig_dimensions(tmp):
    # 1-D nav with 1-D and 2-D sig, 3-D nav with 3-D sig.
    for shape, nav_ndim, dt in (((37, 41), 1, "<u2"), ((29, 5, 7), 1, ">f4"),
                                ((3, 4, 5, 2, 3, 7), 3, "<i4")):
        data = random_frames(RNG, shape, dt)
        out = run_stats(tmp, data, nav_ndim, dtype="float64", extra=["--partition-size", "1K"])
        check_stats(out, data, nav_ndim, dtype="float64")


def test_roi(tmp):
    nav, sig = (13, 17), (9, 10)
    for dt in ("<u2", ">i2", "<f4", ">f8"):
        data = random_frames(RNG, nav + sig, dt)
        roi = RNG.random(nav) < 0.4
        roi[3:6] = False  # whole partitions without selected frames
        out = run_stats(tmp, data, 2, dtype="float64", roi=roi,
                        extra=["--partition-size", "2K", "--threads", 3])
        check_stats(out, data, 2, dtype="float64", roi=roi, what="roi")
    # One selected frame: variance exactly 0, max = min = that frame.
    roi = np.zeros(nav, bool)
    roi[5, 7] = True
    out = run_stats(tmp, data, 2, dtype="float64", roi=roi)
    check_stats(out, data, 2, dtype="float64", roi=roi, what="one frame")
    assert_equal(load(out, "stddev", "var"), np.zeros(sig), "one frame: var 0")


def test_no_selected_frames(tmp):
    nav, sig = (5, 6), (4, 3)
    data = random_frames(RNG, nav + sig, "<u2")
    out = run_stats(tmp, data, 2, roi=np.zeros(nav, bool))
    assert_equal(load(out, "stddev", "num_frames"), np.array(0, np.uint64), "no frames: count")
    for b in ("mean", "var", "std"):
        assert_equal(load(out, "stddev", b), np.full(sig, np.nan, np.float32), "no frames: " + b)
    assert_equal(load(out, "logsum", "logsum"), np.zeros(sig, np.float32), "no frames: logsum")
    # max and min keep their fill: the identity of the reduction (np.max of nothing raises).
    assert_equal(load(out, "max", "intensity"), np.zeros(sig, np.uint16), "no frames: max")
    assert_equal(load(out, "min", "intensity"), np.full(sig, 65535, np.uint16), "no frames: min")


def test_stddev_large_offset_is_stable(tmp):
    # Values around 1e6 with noise of standard deviation 1: a naive E[x^2] - E[x]^2 in float64
    # cancels 12 of its 16 digits. Chan's update keeps the error near eps * offset / std (the
    # precision with which a float64 mean near 1e6 can be stored at all), about 1e-10.
    offset, noise = 1e6, 1.0
    rng = np.random.default_rng(1906)
    data = (offset + noise * rng.standard_normal((11, 13, 9, 11))).astype(">f8")
    out = run_stats(tmp, data, 2, plugins=("stddev",), dtype="float64",
                    extra=["--partition-size", "2K", "--threads", 2])
    f = data.reshape(-1, 9, 11).astype(np.float64)
    ref_var = f.var(axis=0)
    rtol = 20 * np.finfo(np.float64).eps * offset / noise  # 4.4e-9
    assert_close(load(out, "stddev", "var"), ref_var, "var at offset 1e6", rtol)
    assert_close(load(out, "stddev", "std"), np.sqrt(ref_var), "std at offset 1e6", rtol)
    # The mean is a float64 sum of n positive terms, rounded at most n times: rtol n * eps.
    n = f.shape[0]
    assert_close(load(out, "stddev", "mean"), f.mean(axis=0), "mean at offset 1e6",
                 n * np.finfo(np.float64).eps)
    # The same tolerance rejects the naive formula, so this test does tell the two apart.
    naive = (f * f).mean(axis=0) - f.mean(axis=0) ** 2
    if np.allclose(naive, ref_var, rtol=rtol, atol=0):
        raise AssertionError("naive sum of squares passed the tolerance: test too weak")


def test_large_frames_in_bands(tmp):
    # 301 x 257 float32 frames (309 KB) reach stddev/max/min in bands of rows: num_frames must
    # count each frame once, and Chan's update must see the same earlier-frame count in every
    # band. logsum asks for whole frames, so it runs in a pass of its own here.
    data = random_frames(RNG, (4, 5, 301, 257), "<f4")
    out = run_stats(tmp, data, 2, plugins=("stddev", "max", "min"), dtype="float64",
                    extra=["--partition-size", "1M", "--threads", 2])
    check_stats(out, data, 2, plugins=("stddev", "max", "min"), dtype="float64", what="bands")
    data = random_frames(RNG, (3, 4, 301, 257), "<u2")
    out = run_stats(tmp, data, 2, dtype="float64", extra=["--partition-size", "1M"])
    check_stats(out, data, 2, dtype="float64", what="whole frames")


def test_threads_give_identical_bits(tmp):
    data = random_frames(RNG, (23, 29, 9, 11), ">f4")
    files = [("stddev", b) for b in ("num_frames", "sum", "varsum", "mean", "var", "std")]
    files += [("logsum", "logsum"), ("max", "intensity"), ("min", "intensity")]
    roi = RNG.random((23, 29)) < 0.7
    for roi_arg in (None, roi):
        results = []
        for threads in (1, 2, 3):
            out = run_stats(tmp, data, 2, dtype="float64", roi=roi_arg, out="t%d" % threads,
                            extra=["--threads", threads, "--partition-size", "2K"])
            results.append([load(out, p, b) for p, b in files])
        check_stats(out, data, 2, dtype="float64", roi=roi_arg, what="threads")
        for threads, r in zip((2, 3), results[1:]):
            for (p, b), x, y in zip(files, results[0], r):
                assert_equal(y, x, "%s.%s: %d threads vs 1" % (p, b, threads))


def test_nan_propagates_in_max_and_min(tmp):
    # np.max / np.min semantics: one NaN frame value makes that pixel NaN, in any partition.
    for dt in ("<f4", ">f8"):
        data = random_frames(RNG, (6, 7, 5, 4), dt)
        data[0, 0, 1, 1] = np.nan   # first frame: NaN must survive later frames
        data[5, 6, 2, 3] = np.nan   # last frame: NaN must replace earlier values
        data[3, 2, 4, 0] = np.nan   # middle partition: NaN must survive merges
        out = run_stats(tmp, data, 2, plugins=("max", "min"), extra=["--partition-size", "1K"])
        check_stats(out, data, 2, plugins=("max", "min"), what="nan")
        for p in ("max", "min"):
            got = load(out, p, "intensity")
            if not (np.isnan(got[1, 1]) and np.isnan(got[2, 3]) and np.isnan(got[4, 0])):
                raise AssertionError("%s %s: NaN did not propagate" % (p, dt))


def test_extreme_integer_values(tmp):
    # The fill values (the type's lowest/highest) must not leak: data at both ends of the range.
    for dt in ("|u1", "|i1", "<i2", "<u4", "<i4"):
        info = np.iinfo(dt)
        data = RNG.integers(info.min, info.max, size=(5, 6, 3, 4), endpoint=True).astype(dt)
        data[1, 2, 0, 0], data[3, 4, 0, 0] = info.min, info.max
        out = run_stats(tmp, data, 2, plugins=("max", "min", "logsum"), dtype="float64",
                        extra=["--partition-size", "512"])
        check_stats(out, data, 2, plugins=("max", "min", "logsum"), dtype="float64",
                    what="extremes")


def test_logsum_table_bits(tmp):
    # For 8- and 16-bit data the plugin looks log(x - min + 1) up in a table of C's log() (as
    # math.log computes it) and adds the frames in frame order, four pixels and four frames at a
    # time with a tail: within one partition that is exactly NumPy's frame-by-frame float64 sum
    # over the same table. 99-pixel frames (24 quads and 3 more) and 13 frames (3 groups of 4
    # and one more); values from the whole range of each type.
    for dt in ("|u1", "<u2", ">u2", "|i1", "<i2"):
        info = np.iinfo(np.dtype(dt))
        data = RNG.integers(info.min, info.max, (13, 9, 11), endpoint=True).astype(dt)
        out = run_stats(tmp, data, 1, plugins=("logsum",), dtype="float64",
                        extra=["--threads", 1, "--partition-size", "1G"])
        table = np.array([math.log(k + 1.0) for k in range(info.max - info.min + 1)])
        acc = np.zeros(data.shape[1:])
        for frame in data.astype(np.int64):
            acc += table[frame - frame.min()]
        assert_equal(load(out, "logsum", "logsum"), acc, "logsum table " + dt)


def test_bad_parameters_exit_2(tmp):
    data = random_frames(RNG, (3, 4, 5, 6), "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    for plugin, param in (("stddev", "dtype=int8"), ("logsum", "dtype=float16"),
                          ("stddev", "ddof=1"), ("max", "dtype=float32"), ("min", "axis=0")):
        _, err = run(["run", "--plugin", plugin, "-p", param, *raw_args((3, 4), (5, 6), "<u2"),
                      "-o", os.path.join(tmp, "out"), path], expect=2)
        lines = err.strip().splitlines()
        if len(lines) != 1 or plugin not in lines[0]:
            raise AssertionError("%s -p %s: expected one line naming the plugin, got %r"
                                 % (plugin, param, err))
        if os.path.exists(os.path.join(tmp, "out", plugin + ".intensity.npy")):
            raise AssertionError("results written after a usage error")


if __name__ == "__main__":
    main([test_every_dtype_odd_shapes, test_nav_and_sig_dimensions, test_roi,
          test_no_selected_frames, test_stddev_large_offset_is_stable, test_large_frames_in_bands,
          test_threads_give_identical_bits, test_nan_propagates_in_max_and_min,
          test_extreme_integer_values, test_logsum_table_bits, test_bad_parameters_exit_2])
