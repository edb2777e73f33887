"""End-to-end: udfhost on generated raw data of odd shapes, every result checked against NumPy."""
import os

import numpy as np

from udfhost_test import (assert_close, assert_equal, fixture, load, main, random_frames,
                          raw_args, run, write_raw)

RNG = np.random.default_rng(20261128)
INT_DTYPES = ["|u1", "<u2", ">u2", "<u4", "|i1", "<i2", ">i4"]
FLOAT_DTYPES = ["<f4", ">f4", "<f8", ">f8"]


def reference_sums(data, nav_ndim):
    """NumPy reference: exact sums (int64 for integers, float64 for floats)."""
    acc = np.int64 if data.dtype.kind in "iu" else np.float64
    nav_axes = tuple(range(nav_ndim))
    sig_axes = tuple(range(nav_ndim, data.ndim))
    return data.sum(axis=nav_axes, dtype=acc), data.sum(axis=sig_axes, dtype=acc)


def check_sums(tmp, data, nav_ndim, extra_args=(), offset=0, exact=None):
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data, offset)
    nav, sig = data.shape[:nav_ndim], data.shape[nav_ndim:]
    out = os.path.join(tmp, "out")
    for result_dtype in ("float32", "float64"):
        run(["run", "--plugin", "sum", "-p", "dtype=" + result_dtype,
             "--plugin", "sumsig", "-p", "dtype=" + result_dtype,
             *raw_args(nav, sig, data.dtype, offset), "--overwrite", "-o", out, *extra_args, path])
        ref_sum, ref_sumsig = reference_sums(data, nav_ndim)
        got_sum, got_sumsig = load(out, "sum", "intensity"), load(out, "sumsig", "intensity")
        what = "%s %s->%s" % (data.shape, data.dtype.str, result_dtype)
        if data.dtype.kind in "iu" or exact:
            # Exact sums rounded once: bit-identical to NumPy's int64 sum cast to the result.
            assert_equal(got_sum, ref_sum.astype(result_dtype), "sum " + what)
            assert_equal(got_sumsig, ref_sumsig.astype(result_dtype), "sumsig " + what)
        else:
            # float64 accumulation in a different order than NumPy's pairwise sum.
            rtol = 1e-6 if result_dtype == "float32" else 1e-11
            assert_close(got_sum, ref_sum.astype(result_dtype), "sum " + what, rtol)
            assert_close(got_sumsig, ref_sumsig.astype(result_dtype), "sumsig " + what, rtol)


def test_integer_dtypes_odd_shapes(tmp):
    for i, dt in enumerate(INT_DTYPES):
        shape = [(17, 13, 5, 11), (3, 37, 9, 23), (1, 1, 1, 1)][i % 3]
        check_sums(tmp, random_frames(RNG, shape, dt), 2, offset=[0, 3, 512][i % 3])


def test_float_dtypes_odd_shapes(tmp):
    for i, dt in enumerate(FLOAT_DTYPES):
        # Enough frames that partitions hold more than 4 (the sum plugin's unrolled loop).
        shape = [(15, 19, 13, 7), (11, 13, 6, 19)][i % 2]
        check_sums(tmp, random_frames(RNG, shape, dt), 2, offset=[0, 5][i % 2])


def test_nav_and_sig_dimensions(tmp):
    # 1-D nav with 1-D sig, 3-D nav with 2-D sig, 2-D nav with 3-D sig.
    check_sums(tmp, random_frames(RNG, (37, 41), "<u2"), 1)
    check_sums(tmp, random_frames(RNG, (3, 4, 5, 6, 7), "<u2"), 3)
    check_sums(tmp, random_frames(RNG, (4, 5, 3, 6, 7), "<f4"), 2)


def test_bands_of_large_frames(tmp):
    # Frames of 301 x 257 float32 (309 KB) are cut into bands of rows: sums must not notice.
    check_sums(tmp, random_frames(RNG, (8, 10, 301, 257), "<f4"), 2)
    check_sums(tmp, random_frames(RNG, (2, 5, 301, 257), "<u2"), 2,
               extra_args=["--partition-size", "1M", "--threads", "3"])


def test_thread_count_gives_identical_bits(tmp):
    data = random_frames(RNG, (29, 31, 24, 20), "<f4")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    results = []
    for threads in (1, 2, 3, 8):
        out = os.path.join(tmp, "t%d" % threads)
        run(["run", "--plugin", "sum", "--plugin", "sumsig", "--plugin", fixture("fail"),
             "--plugin", fixture("order"), *raw_args((29, 31), (24, 20), "<f4"),
             "--threads", threads, "--partition-size", "64K", "-o", out, path])
        results.append([load(out, p, b) for p, b in
                        (("sum", "intensity"), ("sumsig", "intensity"), ("fail", "sig"),
                         ("fail", "nav"), ("order", "fold"), ("order", "partition"))])
    for threads, r in zip((2, 3, 8), results[1:]):
        for a, b in zip(results[0], r):
            assert_equal(b, a, "threads %d vs 1" % threads)


def test_merge_order_and_partitions(tmp):
    nav, sig = (23, 19), (6, 5)
    data = random_frames(RNG, nav + sig, "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    roi = RNG.random(nav) < 0.6
    roi[:, :3] = False  # whole partitions without selected frames
    np.save(os.path.join(tmp, "roi.npy"), roi)
    for roi_args in ([], ["--roi", os.path.join(tmp, "roi.npy")]):
        out = os.path.join(tmp, "out")
        run(["run", "--plugin", fixture("order"), *raw_args(nav, sig, "<u2"), "--threads", 4,
             "--partition-size", "600", "--overwrite", "-o", out, *roi_args, path])
        part = load(out, "order", "partition").ravel()
        item = load(out, "order", "item").ravel()
        mask = roi.ravel() if roi_args else np.ones(part.size, bool)
        sel = part[mask]
        # Partitions are contiguous, increasing ranges of frames.
        assert np.all(np.diff(sel) >= 0), "partition indices not increasing in nav order"
        assert np.all(part[~mask] == 0), "unselected frames must read 0 in integer nav buffers"
        # Items number the selected frames within each partition from 0.
        for p in np.unique(sel):
            assert_equal(item[mask][sel == p], np.arange((sel == p).sum()), "items of %d" % p)
        # The fold only matches when merges ran in partition order (and only non-empty ones).
        fold = 0
        for p in np.unique(sel):
            fold = (fold * 1000003 + int(p) + 1) % 2**64
        assert_equal(load(out, "order", "fold"), np.array(fold, dtype=np.uint64), "merge fold")


def test_roi(tmp):
    nav, sig = (13, 17), (9, 10)
    for dt in ("<u2", "<f4"):
        data = random_frames(RNG, nav + sig, dt)
        path = os.path.join(tmp, "scan.raw")
        write_raw(path, data)
        roi = RNG.random(nav) < 0.3
        np.save(os.path.join(tmp, "roi.npy"), roi)
        np.save(os.path.join(tmp, "roi_flat.npy"), roi.ravel().astype(np.uint8))
        for roi_file in ("roi.npy", "roi_flat.npy"):
            out = os.path.join(tmp, "out")
            run(["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig",
                 "-p", "dtype=float64", *raw_args(nav, sig, dt), "--overwrite", "-o", out,
                 "--roi", os.path.join(tmp, roi_file), path])
            acc = np.int64 if dt[1] == "u" else np.float64
            ref_sum = data[roi].sum(axis=0, dtype=acc).astype(np.float64)
            ref_sumsig = np.full(nav, np.nan)
            ref_sumsig[roi] = data[roi].sum(axis=(1, 2), dtype=acc)
            assert_close(load(out, "sum", "intensity"), ref_sum, "roi sum " + dt, 1e-12)
            assert_close(load(out, "sumsig", "intensity"), ref_sumsig, "roi sumsig " + dt, 1e-12)


def test_process_frame_and_partition_paths(tmp):
    nav, sig = (9, 14), (11, 13)
    data = random_frames(RNG, nav + sig, ">i2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    roi = RNG.random(nav) < 0.5
    np.save(os.path.join(tmp, "roi.npy"), roi)
    for roi_args in ([], ["--roi", os.path.join(tmp, "roi.npy")]):
        mask = roi if roi_args else np.ones(nav, bool)
        out = os.path.join(tmp, "out")
        run(["run", "--plugin", fixture("frames"), "--plugin", fixture("whole"),
             "--plugin", "sum", *raw_args(nav, sig, ">i2"), "--partition-size", "2K",
             "--overwrite", "-o", out, *roi_args, path])
        f64 = data.astype(np.float64)
        ref_nav = np.where(mask, f64.sum(axis=(2, 3)), np.nan)
        assert_equal(load(out, "frames", "sum"), ref_nav, "process_frame nav sum")
        coords = np.stack(np.meshgrid(np.arange(nav[0]), np.arange(nav[1]), indexing="ij"), -1)
        assert_equal(load(out, "frames", "coords"), np.where(mask[..., None], coords, 0),
                     "process_frame coords")
        assert_equal(load(out, "frames", "max"), f64[mask].max(axis=0), "fill -inf and max")
        assert_equal(load(out, "whole", "navsum"), ref_nav, "process_partition nav sum")
        assert_equal(load(out, "whole", "sigsum"), f64[mask].sum(axis=0), "process_partition sig")


def test_frame_header_and_footer(tmp):
    nav, sig = (5, 6), (7, 3)
    data = random_frames(RNG, nav + sig, "<u2")
    path = os.path.join(tmp, "scan.raw")
    with open(path, "wb") as f:
        f.write(b"H" * 100)
        for frame in data.reshape(-1, *sig):
            f.write(b"h" * 12 + frame.tobytes() + b"ft" * 3)
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "sum", "--plugin", "sumsig", *raw_args(nav, sig, "<u2", 100),
         "--frame-header", 12, "--frame-footer", 6, "-o", out, path])
    ref_sum, ref_sumsig = reference_sums(data, 2)
    assert_equal(load(out, "sum", "intensity"), ref_sum.astype(np.float32), "sum")
    assert_equal(load(out, "sumsig", "intensity"), ref_sumsig.astype(np.float32), "sumsig")


def test_bundled_sample(tmp):
    path = os.path.join(os.environ.get("UDFHOST_SRCDIR", "."), "data", "sample.raw")
    data = np.fromfile(path, dtype="<u2").reshape(24, 32, 48, 48)
    run(["run", "--plugin", "sum", "--plugin", "sumsig", "--format", "raw", "--dtype", "uint16",
         "--nav-shape", "24,32", "--sig-shape", "48,48", "--threads", 2, "-o", tmp, path])
    ref_sum, ref_sumsig = reference_sums(data, 2)
    assert_equal(load(tmp, "sum", "intensity"), ref_sum.astype(np.float32), "sample sum")
    assert_equal(load(tmp, "sumsig", "intensity"), ref_sumsig.astype(np.float32), "sample sumsig")


if __name__ == "__main__":
    main([test_integer_dtypes_odd_shapes, test_float_dtypes_odd_shapes,
          test_nav_and_sig_dimensions, test_bands_of_large_frames,
          test_thread_count_gives_identical_bits, test_merge_order_and_partitions, test_roi,
          test_process_frame_and_partition_paths, test_frame_header_and_footer,
          test_bundled_sample])
