"""The geometry plugins com, radial and fem against independent NumPy references, on generated
data of odd shapes and several dtypes, with masks, scan rotation, ROI, bands of rows, thread
counts, several plugins in one pass, and bad parameters.

Tolerances. Integer data: every per-frame sum is an integer below 2**53, exact in float64 on both
sides, so whatever depends only on sums and one correctly rounded operation (raw_com = sy / s,
raw_shifts, radial profiles) is compared bit for bit. radial adds each bin's pixels in pixel
order, as np.bincount does, so its profiles are bit-identical for float data too. Otherwise the
plugins sum in another order than NumPy (and the rotation is written out, not a matmul), so
float64 results agree to ~1e-13 relative (rtol 1e-10 leaves room), and float32 results are the
float64 value rounded once: within their half ulp of 6e-8 of the reference (rtol 1e-6). Shifts,
field, divergence and curl are differences of nearly equal numbers, so their error scales with
the coordinates, not with the value: those compare with atol = rtol * the largest reference value.
"""
import os

import numpy as np

from udfhost_test import assert_close, assert_equal, load, main, raw_args, run, write_raw

RNG = np.random.default_rng(20261130)
NAV, SIG = (7, 13), (19, 23)
DTYPES = ["<u2", "<i4", "<f4", "<f8", ">u2"]

# udfhost's exit statuses: the host rejects a value outside a declared range as a usage error (2);
# a plugin that rejects its parameters in init_task with UDF_ERR_PARAM is also a usage error (2:
# nothing was read yet), and one that cannot handle the dataset (1-D signal) a plugin error (4).
USAGE_ERROR, PLUGIN_PARAM_ERROR, PLUGIN_ERROR = 2, 2, 4


# --- data ---------------------------------------------------------------------------------------

def frames(shape, dtype, peaks=True):
    """Non-negative data (so frame sums are well conditioned) with a bright blob at a random
    place in every frame, so that centres of mass move by pixels."""
    dt = np.dtype(dtype)
    nav, sig = shape[:-2], shape[-2:]
    base = RNG.random(shape) * 20000
    if peaks:
        y, x = np.indices(sig, dtype=np.float64)
        py = RNG.uniform(0, sig[0] - 1, nav)[..., None, None]
        px = RNG.uniform(0, sig[1] - 1, nav)[..., None, None]
        base += 30000 * np.exp(-((y - py) ** 2 + (x - px) ** 2) / 8)
    return (base if dt.kind == "f" else np.floor(base)).astype(dt)


def write(tmp, data, nav_ndim=2):
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    return [*raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:], data.dtype), path]


# --- the references -----------------------------------------------------------------------------

def distance2(sig, cy, cx):
    """Squared distance of pixel (y, x) from (cy, cx), centre of pixel (0, 0) at 0, 0."""
    y, x = np.indices(sig, dtype=np.float64)
    return (y - cy) * (y - cy) + (x - cx) * (x - cx)


def centre(sig, cy, cx):
    return ((sig[0] - 1) / 2 if cy is None else cy, (sig[1] - 1) / 2 if cx is None else cx)


def ref_com(data, nav_ndim, cy=None, cx=None, r=None, ri=0.0, rotation=0.0, flip=False):
    sig = data.shape[nav_ndim:]
    cy, cx = centre(sig, cy, cx)
    d2 = distance2(sig, cy, cx)
    mask = (ri * ri <= d2) & ((d2 <= r * r) if r is not None else True)
    y, x = np.indices(sig, dtype=np.float64)
    f = data.astype(np.float64) * mask
    axes = (-2, -1)
    s, sy, sx = f.sum(axis=axes), (f * y).sum(axis=axes), (f * x).sum(axis=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        com = np.stack([np.where(s == 0, np.nan, sy / s), np.where(s == 0, np.nan, sx / s)], -1)
    shifts = com - np.array([cy, cx])
    a = np.pi / 180 * rotation
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    transform = rot @ np.diag([-1.0 if flip else 1.0, 1.0])
    field = np.einsum("ij,...j->...i", transform, shifts)
    out = {"raw_com": com, "raw_shifts": shifts, "field": field,
           "magnitude": np.sqrt(shifts[..., 0] ** 2 + shifts[..., 1] ** 2)}
    if nav_ndim == 2:
        fy, fx = field[..., 0], field[..., 1]
        out["divergence"] = np.gradient(fy, axis=0) + np.gradient(fx, axis=1)
        out["curl"] = np.gradient(fy, axis=1) - np.gradient(fx, axis=0)
    else:
        out["divergence"] = out["curl"] = np.full(data.shape[:nav_ndim], np.nan)
    return out


def ref_radial(data, nav_ndim, cy=None, cx=None, ri=0.0, ro=None, n=16):
    sig = data.shape[nav_ndim:]
    cy, cx = centre(sig, cy, cx)
    d = np.sqrt(distance2(sig, cy, cx)).ravel()
    if ro is None:
        ro = d.max()
    edges = ri + np.arange(n + 1) * ((ro - ri) / n)
    edges[-1] = ro
    k = np.minimum(np.searchsorted(edges, d, side="right") - 1, n - 1)
    inside = (d >= ri) & (d <= ro)
    flat = data.reshape(-1, d.size).astype(np.float64)
    prof = np.array([np.bincount(k[inside], weights=fr[inside], minlength=n) for fr in flat])
    return prof.reshape(data.shape[:nav_ndim] + (n,))


def ref_fem(data, nav_ndim, cy=None, cx=None, ri=0.0, ro=None):
    sig = data.shape[nav_ndim:]
    cy, cx = centre(sig, cy, cx)
    d2 = distance2(sig, cy, cx)
    mask = (ri * ri <= d2) & ((d2 <= ro * ro) if ro is not None else True)
    flat = data.reshape(-1, d2.size).astype(np.float64)[:, mask.ravel()]
    return np.std(flat, axis=1, ddof=0).reshape(data.shape[:nav_ndim])


# --- comparison ---------------------------------------------------------------------------------

def rtol_for(result_dtype):
    return 1e-6 if result_dtype == "float32" else 1e-10


def assert_close_scaled(a, b, what, rtol):
    """|a - b| <= rtol * max|b| elementwise, NaN where b is NaN."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        raise AssertionError("%s: shape/dtype %s %s != %s %s" % (what, a.shape, a.dtype, b.shape, b.dtype))
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        raise AssertionError("%s: NaN at different places" % what)
    scale = np.nanmax(np.abs(b)) if np.any(~np.isnan(b)) else 0.0
    err = np.nanmax(np.abs(a.astype(np.float64) - b)) if np.any(~np.isnan(b)) else 0.0
    if err > rtol * scale:
        raise AssertionError("%s: error %g > %g * %g" % (what, err, rtol, scale))


def check_com(out, ref, result_dtype, what, exact_com=False):
    rtol = rtol_for(result_dtype)
    for name, want in ref.items():
        got = load(out, "com", name)
        want = want.astype(result_dtype)
        if name == "raw_com" and exact_com:
            assert_equal(got, want, "%s %s" % (what, name))
        elif name in ("raw_com", "magnitude"):
            assert_close(got, want, "%s %s" % (what, name), rtol)
        else:
            assert_close_scaled(got, want, "%s %s" % (what, name), rtol)


# --- com ----------------------------------------------------------------------------------------

def test_com_single_bright_pixel_is_exact(tmp):
    for dt in DTYPES:
        data = np.zeros(NAV + SIG, dtype=dt)
        py, px = RNG.integers(0, SIG[0], NAV), RNG.integers(0, SIG[1], NAV)
        iy, ix = np.indices(NAV)
        data[iy, ix, py, px] = 1000
        data[2, 5] = 0  # an empty frame has no centre
        out = os.path.join(tmp, "out")
        run(["run", "--plugin", "com", "-p", "dtype=float64", *write(tmp, data), "--overwrite", "-o", out])
        want = np.stack([py, px], -1).astype(np.float64)
        want[2, 5] = np.nan
        assert_equal(load(out, "com", "raw_com"), want, "raw_com " + dt)
        assert_equal(load(out, "com", "raw_shifts"), want - [9.0, 11.0], "raw_shifts " + dt)


def test_com_whole_disk_ring_and_centres(tmp):
    cases = [{}, {"cy": 7.25, "cx": 14.5}, {"cy": 8.0, "cx": 10.0, "r": 6.0},
             {"cy": 11.5, "cx": 9.0, "r": 8.0, "ri": 3.0}, {"ri": 4.0}, {"cy": -3.0, "r": 15.0}]
    for i, dt in enumerate(DTYPES):
        data = frames(NAV + SIG, dt)
        args = write(tmp, data)
        for params in cases:
            for result_dtype in ("float32", "float64"):
                p = [a for k, v in params.items() for a in ("-p", "%s=%s" % (k, v))]
                out = os.path.join(tmp, "out")
                run(["run", "--plugin", "com", *p, "-p", "dtype=" + result_dtype, *args,
                     "--overwrite", "-o", out])
                ref = ref_com(data, 2, **params)
                check_com(out, ref, result_dtype, "%s %s %s" % (dt, params, result_dtype),
                          exact_com=np.dtype(dt).kind != "f")


def test_com_scan_rotation_and_flip(tmp):
    data = frames(NAV + SIG, "<f8")
    args = write(tmp, data)
    for rotation in (0, 90, -33.3):
        for flip in (False, True):
            for result_dtype in ("float32", "float64"):
                out = os.path.join(tmp, "out")
                run(["run", "--plugin", "com", "-p", "scan_rotation=%s" % rotation,
                     "-p", "flip_y=%s" % str(flip).lower(), "-p", "cy=8.5", "-p", "cx=12",
                     "-p", "dtype=" + result_dtype, *args, "--overwrite", "-o", out])
                ref = ref_com(data, 2, cy=8.5, cx=12, rotation=rotation, flip=flip)
                check_com(out, ref, result_dtype, "rot %s flip %s %s" % (rotation, flip,
                                                                         result_dtype))
    # The direction, spelled out: +90 degrees turns a shift down (+y) into one to the left (-x).
    data = np.zeros((3, 4) + SIG, dtype="<u2")
    data[..., 12, 11] = 7  # 3 rows below the centre (9, 11)
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "com", "-p", "scan_rotation=90", "-p", "dtype=float64",
         *write(tmp, data), "--overwrite", "-o", out])
    assert_close_scaled(load(out, "com", "field"), np.broadcast_to([0.0, -3.0], (3, 4, 2)),
                        "rotation direction", 1e-15)


def test_com_empty_frames_and_other_nav_dims(tmp):
    data = frames((11,) + SIG, "<u2")
    data[4] = 0
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "com", "-p", "dtype=float64", *write(tmp, data, 1), "-o", out])
    ref = ref_com(data, 1)
    check_com(out, ref, "float64", "1-D nav", exact_com=True)
    assert np.all(np.isnan(load(out, "com", "divergence"))), "divergence needs a 2-D scan"
    assert np.isnan(load(out, "com", "raw_com")[4]).all(), "empty frame"
    data = frames((2, 3, 4) + SIG, "<f4")
    run(["run", "--plugin", "com", *write(tmp, data, 3), "--overwrite", "-o", out])
    check_com(out, ref_com(data, 3), "float32", "3-D nav")


# --- radial -------------------------------------------------------------------------------------

def test_radial_against_bincount(tmp):
    cases = [{}, {"n_bins": 1}, {"n_bins": 7, "ri": 2.5, "ro": 9.0},
             {"cy": 3.0, "cx": 17.25, "n_bins": 30}, {"cy": -2.0, "cx": 30.0, "n_bins": 5}]
    for dt in DTYPES:
        data = frames(NAV + SIG, dt)
        args = write(tmp, data)
        for params in cases:
            for result_dtype in ("float32", "float64"):
                p = [a for k, v in params.items() for a in ("-p", "%s=%s" % (k, v))]
                out = os.path.join(tmp, "out")
                run(["run", "--plugin", "radial", *p, "-p", "dtype=" + result_dtype, *args,
                     "--overwrite", "-o", out])
                kw = {k if k != "n_bins" else "n": v for k, v in params.items()}
                prof = ref_radial(data, 2, **kw)
                what = "%s %s %s" % (dt, params, result_dtype)
                assert_equal(load(out, "radial", "profile"), prof.astype(result_dtype),
                             "profile " + what)
                total = prof.sum(axis=(0, 1)).astype(result_dtype)
                if np.dtype(dt).kind == "f":
                    assert_close(load(out, "radial", "radial_sum"), total, "radial_sum " + what,
                                 rtol_for(result_dtype))
                else:
                    assert_equal(load(out, "radial", "radial_sum"), total, "radial_sum " + what)


def test_radial_large_integer_frames(tmp):
    # The chunk path walks 8- and 16-bit frames in blocks of rows, eight frames at a time, and
    # prefetches ahead across blocks, bands and groups of frames: 128 x 128 frames (whole, in
    # blocks of 4 rows, 13 frames: a group of 8 and 5 single frames) and 301 x 257 ones (cut into
    # bands of rows) must give NumPy's sums exactly.
    for nav, sig, dt in (((13,), (128, 128), "<u2"), ((3, 4), (301, 257), "<u2"),
                         ((2, 9), (128, 128), "|i1")):
        data = frames(nav + sig, "<i4")
        data = (data % 256 - 128 if dt == "|i1" else data).astype(dt)
        out = os.path.join(tmp, "out")
        run(["run", "--plugin", "radial", "-p", "n_bins=24", "-p", "dtype=float64",
             *write(tmp, data, len(nav)), "--threads", 2, "--overwrite", "-o", out])
        assert_equal(load(out, "radial", "profile"), ref_radial(data, len(nav), n=24),
                     "profile %s %s" % (sig, dt))


def test_radial_bin_edges(tmp):
    # Distances hit the bin edges exactly: 5 x 5 frame, centre (2, 2), ro 2, 2 bins of width 1.
    data = np.arange(2 * 25, dtype="<u2").reshape(2, 1, 5, 5)
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "radial", "-p", "n_bins=2", "-p", "ro=2", "-p", "dtype=float64",
         *write(tmp, data), "-o", out])
    frame = data[0, 0].astype(np.float64)
    inner = frame[2, 2]  # d = 0
    outer = frame[1:4, 1:4].sum() - inner + frame[0, 2] + frame[4, 2] + frame[2, 0] + frame[2, 4]
    assert_equal(load(out, "radial", "profile")[0, 0], np.array([inner, outer]), "edges")


# --- fem ----------------------------------------------------------------------------------------

def test_fem_against_std(tmp):
    cases = [{}, {"ri": 3.0, "ro": 8.0}, {"cy": 4.0, "cx": 19.5, "ro": 6.0}, {"ri": 9.0}]
    for dt in DTYPES:
        data = frames(NAV + SIG, dt)
        args = write(tmp, data)
        for params in cases:
            for result_dtype in ("float32", "float64"):
                p = [a for k, v in params.items() for a in ("-p", "%s=%s" % (k, v))]
                out = os.path.join(tmp, "out")
                run(["run", "--plugin", "fem", *p, "-p", "dtype=" + result_dtype, *args,
                     "--overwrite", "-o", out])
                assert_close(load(out, "fem", "intensity"),
                             ref_fem(data, 2, **params).astype(result_dtype),
                             "fem %s %s %s" % (dt, params, result_dtype), rtol_for(result_dtype))


def test_fem_is_stable_with_an_offset(tmp):
    # Small fluctuations on a large offset: a one-pass sum of squares would lose every digit.
    data = (1e9 + RNG.random(NAV + SIG)).astype("<f8")
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "fem", "-p", "dtype=float64", *write(tmp, data), "-o", out])
    assert_close(load(out, "fem", "intensity"), ref_fem(data, 2), "offset", 1e-6)


# --- all three: ROI, bands, threads, one pass ----------------------------------------------------

GEOMETRY = ["--plugin", "com", "-p", "cy=7", "-p", "cx=12.5", "-p", "r=9", "-p", "ri=1",
            "-p", "scan_rotation=-33.3", "-p", "flip_y=true", "-p", "dtype=float64",
            "--plugin", "radial", "-p", "n_bins=9", "-p", "cy=10", "-p", "dtype=float64",
            "--plugin", "fem", "-p", "ri=2", "-p", "ro=8", "-p", "dtype=float64",
            "--plugin", "sum", "-p", "dtype=float64"]


def check_all(out, data, mask=None):
    """Every result of a GEOMETRY run against the references; NaN outside the ROI mask."""
    com = ref_com(data, 2, cy=7, cx=12.5, r=9, ri=1, rotation=-33.3, flip=True)
    prof = ref_radial(data, 2, cy=10, n=9)
    fem = ref_fem(data, 2, ri=2, ro=8)
    if mask is not None:
        for k in com:
            com[k][~mask] = np.nan
        if data.ndim == 4:
            fy, fx = com["field"][..., 0], com["field"][..., 1]
            com["divergence"] = np.gradient(fy, axis=0) + np.gradient(fx, axis=1)
            com["curl"] = np.gradient(fy, axis=1) - np.gradient(fx, axis=0)
            com["divergence"][~mask] = com["curl"][~mask] = np.nan
        prof[~mask] = np.nan
        fem[~mask] = np.nan
    sel = mask if mask is not None else np.ones(data.shape[:2], bool)
    check_com(out, com, "float64", "all")
    assert_close(load(out, "radial", "profile"), prof, "all profile", 1e-12)
    assert_close(load(out, "radial", "radial_sum"), prof[sel].sum(axis=0), "all radial_sum", 1e-12)
    assert_close(load(out, "fem", "intensity"), fem, "all fem", 1e-10)
    assert_close(load(out, "sum", "intensity"), data[sel].sum(axis=0, dtype=np.float64),
                 "all sum", 1e-12)


def test_roi(tmp):
    for dt in ("<u2", "<f4"):
        data = frames(NAV + SIG, dt)
        roi = RNG.random(NAV) < 0.6
        roi[:, :2] = False
        np.save(os.path.join(tmp, "roi.npy"), roi)
        out = os.path.join(tmp, "out")
        run(["run", *GEOMETRY, *write(tmp, data), "--roi", os.path.join(tmp, "roi.npy"),
             "--overwrite", "-o", out])
        check_all(out, data, roi)


def test_bands_threads_and_partitions_give_identical_bits(tmp):
    # 301 x 257 float32 frames are cut into bands of rows; 19 x 23 ones are not.
    for nav, sig, dt in (((5, 6), (301, 257), "<f4"), (NAV, SIG, ">u2")):
        data = frames(nav + sig, dt)
        args = write(tmp, data)
        first = None
        for threads, psize in ((1, None), (2, None), (3, "2K"), (2, "2K"), (1, "2K")):
            out = os.path.join(tmp, "t%d%s" % (threads, psize))
            extra = ["--partition-size", psize] if psize else []
            run(["run", *GEOMETRY, *args, "--threads", threads, *extra, "--overwrite", "-o", out])
            got = {(p, b): load(out, p, b) for p, b in
                   (("com", "raw_com"), ("com", "divergence"), ("com", "curl"),
                    ("radial", "profile"), ("radial", "radial_sum"), ("fem", "intensity"))}
            if first is None:
                first = got
                check_all(out, data)
            elif psize == "2K" and threads == 3:
                first = got  # a new partitioning: radial_sum may differ in its last bits
            else:
                for k in got:
                    assert_equal(got[k], first[k], "%s %s threads %d" % (k + (threads,)))


# --- bad parameters -------------------------------------------------------------------------------

def test_bad_parameters(tmp):
    args = write(tmp, frames(NAV + SIG, "<u2"))
    cases = [
        ("com", ["r=-1"], USAGE_ERROR, "r"),
        ("com", ["ri=-0.5"], USAGE_ERROR, "ri"),
        ("com", ["ri=5", "r=4"], PLUGIN_PARAM_ERROR, "inner radius ri 5 > outer radius r 4"),
        ("com", ["cy=100", "cx=100", "r=3"], PLUGIN_PARAM_ERROR, "holds no pixel"),
        ("com", ["flip_y=maybe"], USAGE_ERROR, "flip_y"),
        ("com", ["dtype=int8"], USAGE_ERROR, "dtype"),
        ("radial", ["n_bins=0"], USAGE_ERROR, "n_bins"),
        ("radial", ["n_bins=2.5"], USAGE_ERROR, "n_bins"),
        ("radial", ["ro=-3"], USAGE_ERROR, "ro"),
        ("radial", ["ri=5", "ro=4"], PLUGIN_PARAM_ERROR, "ri 5 must be below outer radius ro 4"),
        ("radial", ["ri=4", "ro=4"], PLUGIN_PARAM_ERROR, "must be below"),
        ("fem", ["ri=5", "ro=4"], PLUGIN_PARAM_ERROR, "inner radius ri 5 > outer radius ro 4"),
        ("fem", ["ri=50"], PLUGIN_PARAM_ERROR, "holds no pixel"),
        ("fem", ["ro=-1"], USAGE_ERROR, "ro"),
    ]
    for plugin, params, status, words in cases:
        p = [a for v in params for a in ("-p", v)]
        _, err = run(["run", "--plugin", plugin, *p, *args, "-o", os.path.join(tmp, "o")],
                     expect=status)
        what = "%s %s" % (plugin, params)
        assert err.count("\n") == 1, "%s: not one line: %r" % (what, err)
        assert words in err, "%s: %r not in %r" % (what, words, err)
        # udfhost may have created the output directory, but writes no result into it.
        o = os.path.join(tmp, "o")
        assert not os.path.exists(o) or not os.listdir(o), what + ": wrote results"
    one_d = write(tmp, frames((3, 4, 437, 1), "<u2")[..., 0], 2)
    for plugin in ("com", "radial", "fem"):
        _, err = run(["run", "--plugin", plugin, *one_d, "-o", os.path.join(tmp, "o")],
                     expect=PLUGIN_ERROR)
        assert err.count("\n") == 1 and "needs a 2-D signal" in err, err


if __name__ == "__main__":
    main([test_com_single_bright_pixel_is_exact, test_com_whole_disk_ring_and_centres,
          test_com_scan_rotation_and_flip, test_com_empty_frames_and_other_nav_dims,
          test_radial_against_bincount, test_radial_large_integer_frames, test_radial_bin_edges,
          test_fem_against_std, test_fem_is_stable_with_an_offset, test_roi,
          test_bands_threads_and_partitions_give_identical_bits, test_bad_parameters])
