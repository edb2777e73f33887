"""The masks plugin (virtual detectors) against a NumPy reference: intensity[f, i] is the float64
dot product of frame f with mask i, on generated data of odd shapes, for every way of giving
masks, dense and sparse application, ROI, bands of rows, thread counts and bad parameters.

Tolerances: integer data with integer-valued masks sums exactly in float64 on both sides (the
sums here stay far below 2**53), so those results are compared bit for bit, also after one
rounding to float32. Float data is summed in a different order than NumPy's einsum: float64
results agree to ~1e-12 relative (rtol 1e-9 leaves room for cancellation), float32 results to
their rounding (6e-8; rtol 1e-6).
"""
import os

import numpy as np

from udfhost_test import (assert_close, assert_equal, load, main, random_frames, raw_args, run,
                          write_raw)

RNG = np.random.default_rng(20261129)
NAV, SIG = (7, 13), (19, 23)

# A hook that rejects a parameter makes udfhost exit with the plugin-error status; values the host
# itself can check against the declaration (types, choices) are usage errors.
# Parameters the plugin refuses in declare_buffers/init_task (UDF_ERR_PARAM) are usage errors
# too, like those the host refuses from the declarations.
PLUGIN_ERROR = USAGE_ERROR = 2


# --- the reference ------------------------------------------------------------------------------

def distance2(sig, cy, cx):
    """Squared distance of pixel (y, x) from (cy, cx), centre of pixel (0, 0) at 0, 0."""
    y, x = np.indices(sig, dtype=np.float64)
    return (y - cy) * (y - cy) + (x - cx) * (x - cx)


def ref_disk(sig, cy, cx, r):
    return (distance2(sig, cy, cx) <= r * r)[None].astype(np.float64)


def ref_ring(sig, cy, cx, ri, ro):
    d2 = distance2(sig, cy, cx)
    return ((ri * ri <= d2) & (d2 <= ro * ro))[None].astype(np.float64)


def ref_rect(sig, y0, x0, y1, x1):
    m = np.zeros(sig)
    m[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1
    return m[None]


def ref_radial_bins(sig, cy, cx, ri, ro, n):
    d = np.sqrt(distance2(sig, cy, cx))
    w = (ro - ri) / n
    out = []
    for b in range(n):
        lo = ri + b * w
        hi = ro if b == n - 1 else ri + (b + 1) * w
        inside = (lo <= d) & ((d <= hi) if b == n - 1 else (d < hi))
        out.append(inside)
    return np.array(out, dtype=np.float64)


def reference(data, nav_ndim, stack):
    """intensity[..., i] = sum over pixels of frame * mask_i, in float64."""
    nav = data.shape[:nav_ndim]
    frames = data.reshape(nav + (-1,)).astype(np.float64)
    return np.einsum("...p,ip->...i", frames, stack.reshape(len(stack), -1))


def run_masks(tmp, data, nav_ndim, mask_args, extra=(), dtype="float64", out="out"):
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    out = os.path.join(tmp, out)
    margs = [a for m in mask_args for a in ("-p", m)]
    run(["run", "--plugin", "masks", *margs, "-p", "dtype=" + dtype,
         *raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:], data.dtype), "--overwrite", "-o", out,
         *extra, path])
    return load(out, "masks", "intensity")


def check(tmp, data, nav_ndim, mask_args, stack, extra=(), exact=None, what=""):
    """Run with both result dtypes and both application paths; compare with NumPy."""
    ref = reference(data, nav_ndim, stack)
    if exact is None:
        exact = data.dtype.kind in "iu"
    for sparse in ("true", "false"):
        for dtype in ("float64", "float32"):
            got = run_masks(tmp, data, nav_ndim, mask_args + ["sparse=" + sparse], extra, dtype)
            label = "%s %s sparse=%s ->%s" % (what, data.dtype.str, sparse, dtype)
            if exact:
                assert_equal(got, ref.astype(dtype), label)
            else:
                assert_close(got, ref.astype(dtype), label, 1e-9 if dtype == "float64" else 1e-6)


# --- tests --------------------------------------------------------------------------------------

GENERATED = [
    # boundary pixels at integer distances (3-4-5) must agree exactly with the reference
    (["disk=9,11,5"], lambda: ref_disk(SIG, 9, 11, 5)),
    (["disk=9.5,10.25,4.5"], lambda: ref_disk(SIG, 9.5, 10.25, 4.5)),
    (["disk=-2,30,9"], lambda: ref_disk(SIG, -2, 30, 9)),  # centre off the detector
    (["ring=9,11,3,5"], lambda: ref_ring(SIG, 9, 11, 3, 5)),
    (["ring=9,11,0,0"], lambda: ref_ring(SIG, 9, 11, 0, 0)),  # the centre pixel only
    (["rect=2,3,17,9"], lambda: ref_rect(SIG, 2, 3, 17, 9)),
    (["rect=-5,-5,100,4"], lambda: ref_rect(SIG, -5, -5, 100, 4)),  # clipped to the frame
    (["rect=0,0,19,23"], lambda: ref_rect(SIG, 0, 0, 19, 23)),  # whole frame: runs span rows
    (["radial_bins=9,11,0,10,4"], lambda: ref_radial_bins(SIG, 9, 11, 0, 10, 4)),
    (["radial_bins=8.5,12,1.5,9,3"], lambda: ref_radial_bins(SIG, 8.5, 12, 1.5, 9, 3)),
]


def test_generated_masks_each_kind_exact(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    for args, make in GENERATED:
        stack = make()
        assert stack.any(), "test mask %s is empty" % args
        check(tmp, data, 2, args, stack, what=" ".join(args))


def test_input_dtypes(tmp):
    weights = RNG.integers(-3, 4, size=(2,) + SIG).astype(np.float64)
    np.save(os.path.join(tmp, "w.npy"), weights)
    args = ["disk=9,11,6", "file=" + os.path.join(tmp, "w.npy"), "ring=9,11,2,7"]
    stack = np.concatenate([ref_disk(SIG, 9, 11, 6), weights, ref_ring(SIG, 9, 11, 2, 7)])
    for dt in ("<u2", ">u2", "<i2", "|u1", "<i4", "<f4", ">f4", "<f8"):
        check(tmp, random_frames(RNG, NAV + SIG, dt), 2, args, stack, what=dt)


def test_float_weights(tmp):
    # Non-integer weights round in the products: close, not exact, even for integer data.
    weights = RNG.standard_normal((3,) + SIG)
    weights[weights < 0.5] = 0  # mostly zero: the sparse weighted path
    np.save(os.path.join(tmp, "w.npy"), weights)
    for dt in ("<u2", "<f4"):
        check(tmp, random_frames(RNG, NAV + SIG, dt), 2, ["file=" + os.path.join(tmp, "w.npy")],
              weights, exact=False, what="float weights")


def test_file_masks_and_order(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    stack3 = RNG.integers(0, 5, size=(3,) + SIG).astype(np.float32)
    single = RNG.integers(0, 2, size=SIG).astype(np.int16)
    boolean = RNG.random(SIG) < 0.3
    np.save(os.path.join(tmp, "three.npy"), stack3)
    np.save(os.path.join(tmp, "single.npy"), single.astype(">i2"))  # big-endian file
    np.save(os.path.join(tmp, "bool.npy"), boolean)
    args = ["ring=9,11,2,8", "file=" + os.path.join(tmp, "three.npy"), "disk=4,4,3",
            "file=" + os.path.join(tmp, "bool.npy"), "radial_bins=9,11,0,9,2",
            "file=" + os.path.join(tmp, "single.npy"), "rect=1,2,3,4"]
    stack = np.concatenate([ref_ring(SIG, 9, 11, 2, 8), stack3, ref_disk(SIG, 4, 4, 3),
                            boolean[None], ref_radial_bins(SIG, 9, 11, 0, 9, 2), single[None],
                            ref_rect(SIG, 1, 2, 3, 4)]).astype(np.float64)
    assert len(stack) == 10
    check(tmp, data, 2, args, stack, what="mixed order")
    got = run_masks(tmp, data, 2, args)
    assert got.shape == NAV + (10,), got.shape


def test_other_dimensions(tmp):
    # 1-D nav with generated masks; file masks on 1-D and 3-D signals.
    data = random_frames(RNG, (37,) + SIG, "<u2")
    check(tmp, data, 1, ["disk=9,11,5", "rect=0,0,3,23"],
          np.concatenate([ref_disk(SIG, 9, 11, 5), ref_rect(SIG, 0, 0, 3, 23)]), what="1-D nav")
    for sig in ((41,), (3, 5, 7)):
        data = random_frames(RNG, (5, 6) + sig, "<i2")
        masks = RNG.integers(0, 3, size=(2,) + sig).astype(np.float64)
        np.save(os.path.join(tmp, "m.npy"), masks)
        check(tmp, data, 2, ["file=" + os.path.join(tmp, "m.npy")], masks, what="sig %s" % (sig,))


def test_bands_of_large_frames(tmp):
    # 301 x 257 frames do not fit 8 to a tile, so the host cuts them into bands of rows: runs and
    # dense blocks must be clipped to each band and partial sums added per frame.
    sig = (301, 257)
    data = random_frames(RNG, (2, 5) + sig, "<u2")
    args = ["disk=150,128,100", "ring=10,250,5,60", "rect=0,0,301,257", "rect=37,0,250,257"]
    stack = np.concatenate([ref_disk(sig, 150, 128, 100), ref_ring(sig, 10, 250, 5, 60),
                            ref_rect(sig, 0, 0, 301, 257), ref_rect(sig, 37, 0, 250, 257)])
    check(tmp, data, 2, args, stack, extra=["--threads", 3, "--partition-size", "1M"],
          what="bands")
    fdata = random_frames(RNG, (2, 3) + sig, "<f8")
    check(tmp, fdata, 2, args, stack, what="bands f8")


def test_roi(tmp):
    roi = RNG.random(NAV) < 0.4
    np.save(os.path.join(tmp, "roi.npy"), roi)
    args = ["disk=9,11,5", "ring=9,11,5,8"]
    stack = np.concatenate([ref_disk(SIG, 9, 11, 5), ref_ring(SIG, 9, 11, 5, 8)])
    for dt in ("<u2", "<f4"):
        data = random_frames(RNG, NAV + SIG, dt)
        ref = reference(data, 2, stack)
        ref[~roi] = np.nan
        for sparse in ("true", "false"):
            got = run_masks(tmp, data, 2, args + ["sparse=" + sparse],
                            ["--roi", os.path.join(tmp, "roi.npy")], "float32")
            assert np.isnan(got[~roi]).all(), "frames outside the ROI must be NaN"
            if dt == "<u2":
                assert_equal(got, ref.astype(np.float32), "roi " + dt)
            else:
                assert_close(got, ref.astype(np.float32), "roi " + dt, 1e-6)


def test_threads_and_partitions_bit_identical(tmp):
    data = random_frames(RNG, NAV + SIG, "<f4")
    weights = RNG.standard_normal((2,) + SIG)
    np.save(os.path.join(tmp, "w.npy"), weights)
    args = ["disk=9,11,5", "file=" + os.path.join(tmp, "w.npy"), "radial_bins=9,11,0,12,3"]
    for sparse in ("true", "false"):
        results = []
        for threads in (1, 2, 3):
            results.append(run_masks(tmp, data, 2, args + ["sparse=" + sparse],
                                     ["--threads", threads, "--partition-size", "2K"],
                                     "float64", out="t%d" % threads))
        for threads, r in zip((2, 3), results[1:]):
            assert_equal(r, results[0], "sparse=%s threads %d vs 1" % (sparse, threads))


KERNELS = ("avx512", "avx2", "none")  # UDFHOST_MASKS_SIMD caps the dense kernels of this CPU


def run_kernels(tmp, data, args, extra=()):
    """The float64 results of every dense kernel (capped by UDFHOST_MASKS_SIMD)."""
    out = {}
    try:
        for k in KERNELS:
            os.environ["UDFHOST_MASKS_SIMD"] = k
            out[k] = run_masks(tmp, data, 2, args + ["sparse=false"], extra, out="k-" + k)
    finally:
        del os.environ["UDFHOST_MASKS_SIMD"]
    return out


def test_dense_kernels_agree(tmp):
    # The AVX-512 and AVX2 kernels make the same fused operations in the same order: same bits.
    # 21 masks: one full vector and a padded one in each kernel's widths.
    data = random_frames(RNG, NAV + SIG, "<f4")
    weights = RNG.standard_normal((21,) + SIG)
    np.save(os.path.join(tmp, "w.npy"), weights)
    ref = reference(data, 2, weights)
    for compute in ("float64", "float32"):
        got = run_kernels(tmp, data, ["file=" + os.path.join(tmp, "w.npy"),
                                      "compute=" + compute])
        assert_equal(got["avx2"], got["avx512"], "compute=%s avx2 vs avx512" % compute)
        if compute == "float64":
            assert_close(got["none"], ref, "compute=float64 portable kernel", 1e-9)


def test_compute_float32(tmp):
    # compute=float32: weights and data rounded to float, each product rounded, sums over blocks
    # of 128 pixels in float, blocks summed in double. Per result the error stays below
    # (128 + 2) * 2**-24 (~7.7e-6) of sum |x * w| (the recursive-summation bound); LiberTEM's
    # float32 dot products over whole frames reach 1e-5 of the result itself.
    nav, sig = (5, 6), (27, 25)  # 675 pixels: five full blocks and a partial one
    weights = RNG.standard_normal((19,) + sig)  # signed: the sums cancel
    weights[3] = np.abs(weights[3])
    np.save(os.path.join(tmp, "w.npy"), weights)
    for dt in ("<u2", "<i4", "<f4"):
        data = random_frames(RNG, nav + sig, dt)
        ref = reference(data, 2, weights)
        scale = reference(np.abs(data.astype(np.float64)), 2, np.abs(weights))
        got = run_kernels(tmp, data, ["file=" + os.path.join(tmp, "w.npy"), "compute=float32"])
        for k, r in got.items():
            err = np.abs(r - ref) / scale
            assert err.max() < 7.7e-6, "%s kernel %s: error %g of sum |x w|" % (dt, k, err.max())
            if dt == "<u2":  # nothing cancels: relative to the result itself
                assert_close(r[..., 3], ref[..., 3], "%s kernel %s, positive mask" % (dt, k),
                             1e-5)
            # the float path really ran: its rounding shows against the double result
            assert not np.array_equal(r, ref), "%s kernel %s: no float rounding" % (dt, k)
        # threads and partitions do not change the bits
        args = ["file=" + os.path.join(tmp, "w.npy"), "compute=float32", "sparse=false"]
        three = run_masks(tmp, data, 2, args, ["--threads", 3, "--partition-size", "1K"], out="t3")
        one = run_masks(tmp, data, 2, args, ["--threads", 1], out="t1")
        assert_equal(three, one, dt + " threads 3 vs 1")
    # sparse application ignores compute: it is exact in double either way
    data = random_frames(RNG, NAV + SIG, "<u2")
    a = run_masks(tmp, data, 2, ["disk=9,11,5", "sparse=true", "compute=float32"], out="s32")
    assert_equal(a, reference(data, 2, ref_disk(SIG, 9, 11, 5)), "sparse, compute=float32")
    path = os.path.join(tmp, "scan.raw")
    _, err = run(["run", "--plugin", "masks", "-p", "rect=0,0,19,23", "-p", "compute=float32",
                  *raw_args(NAV, SIG, "<u2"), "-v", "--overwrite", "-o",
                  os.path.join(tmp, "out"), path])
    assert "applied dense in float32" in err, err


def test_sparse_auto_choice(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    for mask, mode in (("disk=9,11,3", "sparse"), ("rect=0,0,19,23", "dense")):
        _, err = run(["run", "--plugin", "masks", "-p", mask, *raw_args(NAV, SIG, "<u2"),
                      "-v", "--overwrite", "-o", os.path.join(tmp, "out"), path])
        assert "applied " + mode in err, "%s: expected %s application: %s" % (mask, mode, err)


def test_bad_parameters(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    np.save(os.path.join(tmp, "wrong.npy"), np.ones((2, 19, 22)))
    missing = os.path.join(tmp, "no-such-masks.npy")
    cases = [
        (["disk=1,2"], PLUGIN_ERROR, ["disk=1,2", "expected 3 values"]),
        (["ring=1,2,3,4,5"], PLUGIN_ERROR, ["expected 4 values"]),
        (["disk=9,11,-1"], PLUGIN_ERROR, ["negative radius"]),
        (["ring=9,11,-1,4"], PLUGIN_ERROR, ["negative inner radius"]),
        (["ring=9,11,5,4"], PLUGIN_ERROR, ["RI > outer radius RO"]),
        (["radial_bins=9,11,5,4,2"], PLUGIN_ERROR, ["RI >= outer radius RO"]),
        (["radial_bins=9,11,0,4,2.5"], PLUGIN_ERROR, ["N must be a whole number"]),
        (["radial_bins=9,11,0,4,0"], PLUGIN_ERROR, ["N must be a whole number"]),
        (["rect=5,5,5,9"], PLUGIN_ERROR, ["empty rectangle"]),
        (["disk=a,b,c"], USAGE_ERROR, ["disk"]),
        (["rect=1.5,0,4,4"], USAGE_ERROR, ["rect"]),
        (["disk=1,1,1", "dtype=float16"], USAGE_ERROR, ["float16"]),
        (["disk=1,1,1", "sparse=maybe"], USAGE_ERROR, ["maybe"]),
        (["disk=1,1,1", "compute=float16"], USAGE_ERROR, ["float16"]),
        (["bogus=1"], USAGE_ERROR, ["bogus"]),
        ([], PLUGIN_ERROR, ["no mask given"]),
        (["dtype=float64"], PLUGIN_ERROR, ["no mask given"]),
        (["file=" + missing], PLUGIN_ERROR, [missing]),
        (["file=" + os.path.join(tmp, "wrong.npy")], PLUGIN_ERROR,
         ["wrong.npy", "(2, 19, 22)", "(19, 23)"]),
    ]
    for masks, status, words in cases:
        margs = [a for m in masks for a in ("-p", m)]
        _, err = run(["run", "--plugin", "masks", *margs, *raw_args(NAV, SIG, "<u2"),
                      "-o", os.path.join(tmp, "out"), path], expect=status)
        lines = err.strip().split("\n")
        assert len(lines) == 1 and lines[0].startswith("udfhost: "), "%s: %r" % (masks, err)
        for w in words:
            assert w in err, "%s: %r does not name %r" % (masks, err, w)
        assert not os.path.exists(os.path.join(tmp, "out", "masks.intensity.npy"))
    # Generated masks need a 2-D signal; file masks do not.
    flat = random_frames(RNG, (4, 5, 437), "<u2")
    write_raw(path, flat)
    _, err = run(["run", "--plugin", "masks", "-p", "ring=1,1,0,3",
                  *raw_args((4, 5), (437,), "<u2"), "-o", os.path.join(tmp, "out"), path],
                 expect=4)  # UDF_ERR_UNSUPPORTED: the dataset, not a parameter, is the problem
    assert "2-D signal" in err and "(437,)" in err, err


if __name__ == "__main__":
    main([test_generated_masks_each_kind_exact, test_input_dtypes, test_float_weights,
          test_file_masks_and_order, test_other_dimensions, test_bands_of_large_frames, test_roi,
          test_threads_and_partitions_bit_identical, test_dense_kernels_agree,
          test_compute_float32, test_sparse_auto_choice,
          test_bad_parameters])
