"""The LiberTEM-named UDFs against independent NumPy computations of LiberTEM's definitions
(beyond test_libertem_udfs.py: CoM's rotation, flip, empty frames, ROI and regressions of a known
descan; FEM's ring edges; masks under a ROI; Pick without a ROI), memory datasets without a copy,
partial results, many runs in one process, progress bars and docstrings."""
import gc
import importlib
import inspect
import os
import pydoc
import subprocess
import sys
import threading

import numpy as np
import pytest

import udfhost
import udfhost.api as lt
from udfhost.udf.FEM import FEMUDF
from udfhost.udf.com import CoMParams, CoMUDF, RegressionOptions
from udfhost.udf.logsum import LogsumUDF
from udfhost.udf.masks import ApplyMasksUDF
from udfhost.udf.raw import PickUDF
from udfhost.udf.record import RecordUDF
from udfhost.udf.stddev import StdDevUDF
from udfhost.udf.sum import SumUDF
from udfhost.udf.sumsigudf import SumSigUDF

from conftest import SAMPLE

ENV = dict(os.environ)


def frames(shape=(5, 6, 16, 18), dtype=np.uint16, seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 400, size=shape).astype(dtype)


# --- CoM, written out from LiberTEM's definitions (libertem/udf/com.py, corrections) ---------

def lt_com(data, cy, cx, r=np.inf, ri=0.0, scan_rotation=0.0, flip_y=False):
    """LiberTEM's raw_com, raw_shifts, field, magnitude, divergence, curl, in float64."""
    h, w = data.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    mask = d2 <= r * r
    if ri > 0:
        mask &= ~(d2 <= ri * ri)
    f = data.astype(np.float64) * mask
    total = f.sum(axis=(-2, -1))
    ysum, xsum = (f * yy).sum(axis=(-2, -1)), (f * xx).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(total != 0, ysum / total, cy) - cy
        x = np.where(total != 0, xsum / total, cx) - cx
    shifts = np.stack([y, x], axis=-1)
    flip = np.array([[-1, 0], [0, 1]]) if flip_y else np.eye(2)
    a = np.pi / 180 * scan_rotation
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    field = shifts @ (rot @ flip).T
    fy, fx = field[..., 0], field[..., 1]
    return dict(raw_com=shifts + (cy, cx), raw_shifts=shifts, field=field, field_y=fy,
                field_x=fx, magnitude=np.hypot(fy, fx),
                divergence=np.gradient(fy, axis=0) + np.gradient(fx, axis=1),
                curl=np.gradient(fy, axis=1) - np.gradient(fx, axis=0))


@pytest.mark.parametrize("params", [
    dict(cy=7, cx=9, r=6, ri=3, scan_rotation=0.0, flip_y=False),
    dict(cy=7.5, cx=8.25, r=np.inf, ri=0.0, scan_rotation=37.0, flip_y=False),
    dict(cy=8, cx=9, r=7.5, ri=0.0, scan_rotation=-120.0, flip_y=True),
    dict(cy=6, cx=10, r=5, ri=2, scan_rotation=90.0, flip_y=True),
])
def test_com_against_numpy(ctx, params):
    data = frames()
    ds = ctx.load("memory", data=data)
    for udf in (CoMUDF.with_params(**params), CoMUDF(CoMParams(**params))):
        res = ctx.run_udf(dataset=ds, udf=udf)
        want = lt_com(data, **params)
        for name, arr in want.items():
            buf = res[name]
            assert buf.kind == "nav" and buf.data.dtype == np.float32, name
            assert buf.data.shape == arr.shape, name
            assert np.allclose(buf.data, arr, atol=2e-4, rtol=1e-5), name
        assert res["regression"].data.dtype == np.float64
        assert res["regression"].kind == "single" and res["regression"].data.shape == (3, 2)


def test_com_float64_for_32_bit_data(ctx):
    data = frames(dtype=np.uint32)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=CoMUDF.with_params(cy=8, cx=9))
    assert res["field"].data.dtype == np.float64
    assert np.allclose(res["raw_com"].data, lt_com(data, 8, 9)["raw_com"], atol=1e-10)


def test_com_empty_frames_have_no_shift(ctx):
    """LiberTEM's center_shifts: a frame without intensity in the mask has a shift of 0."""
    data = frames()
    data[2, 3] = 0
    data[0, 0, 6:10, 7:11] = 0  # inside the disk of r=1.5 only
    params = dict(cy=8, cx=9, r=1.5)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=CoMUDF.with_params(**params))
    want = lt_com(data, **params)
    for name in ("raw_com", "raw_shifts", "field", "magnitude", "divergence", "curl"):
        assert np.isfinite(res[name].data).all(), name
        assert np.allclose(res[name].data, want[name], atol=2e-4), name
    assert np.array_equal(res["raw_shifts"].data[2, 3], [0, 0])
    assert np.array_equal(res["raw_com"].data[0, 0], [8, 9])


def test_com_under_a_roi(ctx):
    data = frames()
    roi = np.zeros((5, 6), bool)
    roi[1:4, 1:5] = True
    res = ctx.run_udf(dataset=ctx.load("memory", data=data), roi=roi,
                      udf=CoMUDF.with_params(cy=8, cx=9, r=6))
    want = lt_com(data, 8, 9, 6)
    for name in ("raw_com", "field", "magnitude"):
        buf = res[name]
        assert buf.data.dtype == np.float32
        assert np.isnan(buf.data[~roi]).all(), name
        assert np.allclose(buf.data[roi], want[name][roi], atol=2e-4), name
        assert buf.raw_data.shape == (roi.sum(),) + buf.data.shape[2:], name
    # Derivatives inside the ROI, away from its edge, are LiberTEM's.
    assert np.allclose(res["divergence"].data[2, 2:4], want["divergence"][2, 2:4], atol=2e-4)


def descan(ny=8, nx=9, h=24, w=24):
    """Frames with one bright pixel that moves linearly with the scan position (a descan
    error), and the true coefficients [[y0, x0], [dy/dy, dx/dy], [dy/dx, dx/dx]]."""
    coeff = np.array([[2.0, -1.0], [0.5, 0.25], [-0.25, 0.5]])
    data = np.zeros((ny, nx, h, w), np.float32)
    for i in range(ny):
        for j in range(nx):
            dy, dx = coeff[0] + i * coeff[1] + j * coeff[2]
            data[i, j, int(round(12 + dy)), int(round(12 + dx))] = 100
    return data, coeff


def test_com_regression_finds_the_descan(ctx):
    data, coeff = descan()
    ds = ctx.load("memory", data=data)
    lin = ctx.run_udf(dataset=ds, udf=CoMUDF.with_params(
        cy=12, cx=12, regression=RegressionOptions.SUBTRACT_LINEAR))
    plain = ctx.run_udf(dataset=ds, udf=CoMUDF.with_params(cy=12, cx=12))
    shifts = plain["field"].data.astype(np.float64)
    yy, xx = np.mgrid[0:8, 0:9]
    a = np.stack([np.ones(72), yy.ravel(), xx.ravel()], axis=1)
    fit = np.linalg.lstsq(a, shifts.reshape(72, 2), rcond=None)[0]
    assert np.allclose(lin["regression"].data, fit, atol=1e-5)
    assert np.allclose(fit, coeff, atol=0.06)  # rounding to pixels: the plane is still found
    resid = shifts - (a @ fit).reshape(8, 9, 2)
    assert np.allclose(lin["field"].data, resid, atol=1e-4)
    assert np.allclose(lin["field_x"].data, resid[..., 1], atol=1e-4)
    assert np.allclose(lin["magnitude"].data, np.hypot(resid[..., 0], resid[..., 1]), atol=1e-4)
    assert np.abs(lin["field"].data).max() < 0.6 < np.abs(plain["field"].data).max()
    mean = ctx.run_udf(dataset=ds, udf=CoMUDF.with_params(
        cy=12, cx=12, regression=RegressionOptions.SUBTRACT_MEAN))
    assert np.allclose(mean["regression"].data[0], shifts.reshape(-1, 2).mean(axis=0), atol=1e-5)
    assert np.array_equal(mean["regression"].data[1:], np.zeros((2, 2)))
    assert np.allclose(mean["field"].data, shifts - shifts.reshape(-1, 2).mean(axis=0),
                       atol=1e-4)
    # A given (3, 2) regression is subtracted as it is.
    given = ctx.run_udf(dataset=ds, udf=CoMUDF.with_params(cy=12, cx=12, regression=coeff))
    assert np.array_equal(given["regression"].data, coeff)
    assert np.allclose(given["field"].data, shifts - (a @ coeff).reshape(8, 9, 2), atol=1e-4)
    assert np.allclose(given["divergence"].data,
                       np.gradient(given["field_y"].data.astype(np.float64), axis=0)
                       + np.gradient(given["field_x"].data.astype(np.float64), axis=1),
                       atol=1e-4)


def test_com_parameters_checked(ctx):
    with pytest.raises(ValueError):
        CoMUDF.with_params(r=3, ri=5)
    ds = ctx.load("memory", data=frames((30, 16, 18)))
    with pytest.raises(ValueError, match="2D nav"):
        ctx.run_udf(dataset=ds, udf=CoMUDF())
    ds = ctx.load("memory", data=frames((5, 6, 288)), sig_dims=1)
    with pytest.raises(ValueError, match="2D sig"):
        ctx.run_udf(dataset=ds, udf=CoMUDF())


# --- FEM: np.std of the pixels with rad_in^2 < d^2 <= rad_out^2 ------------------------------

@pytest.mark.parametrize("center,rad_in,rad_out", [((8, 9), 0, 5), ((8, 9), 3, 5),
                                                    ((7.5, 8.5), 2.5, 6.5), ((0, 0), 4, 30)])
def test_fem_against_numpy(ctx, center, rad_in, rad_out):
    data = frames(seed=2)
    res = ctx.run_udf(dataset=ctx.load("memory", data=data),
                      udf=FEMUDF(center=center, rad_in=rad_in, rad_out=rad_out))
    yy, xx = np.mgrid[0:16, 0:18]
    d2 = (yy - center[0]) ** 2 + (xx - center[1]) ** 2
    ring = (d2 > rad_in ** 2) & (d2 <= rad_out ** 2)
    want = data[..., ring].astype(np.float64).std(axis=-1)
    out = res["intensity"].data
    assert out.dtype == np.float32 and out.shape == (5, 6)
    assert np.allclose(out, want, rtol=2e-6), np.abs(out - want).max()


# --- the others -------------------------------------------------------------------------------

def test_logsum_of_signed_and_float_data(ctx):
    for dtype in (np.int16, np.float64):
        data = (frames(seed=3).astype(np.float64) - 200).astype(dtype)
        res = ctx.run_udf(dataset=ctx.load("memory", data=data), udf=LogsumUDF())
        f = data.reshape(-1, 16, 18).astype(np.float64)
        want = np.log(f - f.min(axis=(1, 2), keepdims=True) + 1).sum(axis=0)
        assert res["logsum"].data.dtype == np.float32  # LiberTEM's, also for float64 data
        assert np.allclose(res["logsum"].data, want, rtol=1e-6)


def test_sum_sumsig_stddev_under_a_roi(ctx):
    data = frames(dtype=np.int32, seed=4) - 100
    roi = np.zeros((5, 6), bool)
    roi[[0, 2, 4], [1, 3, 5]] = True
    s, ss, sd = ctx.run_udf(dataset=ctx.load("memory", data=data), roi=roi,
                            udf=[SumUDF(), SumSigUDF(), StdDevUDF(dtype=np.float32)])
    f = data[roi].astype(np.float64)
    assert s["intensity"].data.dtype == np.float64  # int32 data: LiberTEM computes in float64
    assert np.array_equal(s["intensity"].data, f.sum(axis=0))
    assert ss["intensity"].data.dtype == np.float64
    assert np.array_equal(ss["intensity"].raw_data, f.sum(axis=(1, 2)))
    assert np.isnan(ss["intensity"].data[~roi]).all()
    assert sd["num_frames"].data.tolist() == [3]
    assert sd["var"].data.dtype == np.float32 and sd["mean"].data.dtype == np.float64
    assert np.allclose(sd["var"].data, f.var(axis=0), rtol=1e-5)
    assert np.allclose(sd["std"].data, f.std(axis=0), rtol=1e-5)
    assert np.allclose(sd["mean"].data, f.mean(axis=0), rtol=1e-12)
    assert sd["varsum"].data.dtype == np.float32 and sd["sum"].data.dtype == np.float64
    assert np.allclose(sd["varsum"].data, f.var(axis=0) * 3, rtol=1e-6)


def test_apply_masks_under_a_roi_and_sparse(ctx):
    data = frames(seed=5)
    rng = np.random.default_rng(6)
    masks = [rng.random((16, 18)), (rng.random((16, 18)) < 0.05).astype(np.float32)]
    roi = np.zeros((5, 6), bool)
    roi[1:3] = True
    want = np.einsum("nyx,kyx->nk", data[roi].astype(np.float64), np.stack(masks))
    for sparse in (None, False, True):
        res = ctx.run_udf(dataset=ctx.load("memory", data=data), roi=roi,
                          udf=ApplyMasksUDF(mask_factories=[lambda m=m: m for m in masks],
                                            use_sparse=sparse))
        buf = res["intensity"]
        assert buf.data.dtype == np.float64 and buf.data.shape == (5, 6, 2)
        assert buf.extra_shape == (2,) and buf.raw_data.shape == (roi.sum(), 2)
        assert np.isnan(buf.data[~roi]).all()
        assert np.allclose(buf.raw_data, want, rtol=1e-6)


def test_pick_without_and_with_an_empty_roi(ctx):
    data = frames(dtype=np.float32, seed=7)
    ds = ctx.load("memory", data=data)
    every = ctx.run_udf(dataset=ds, udf=PickUDF())["intensity"]
    assert every.kind == "single" and every.data.dtype == np.float32
    assert np.array_equal(every.data, data.reshape(30, 16, 18))
    none = ctx.run_udf(dataset=ds, udf=PickUDF(), roi=np.zeros((5, 6), bool))["intensity"]
    assert none.data.shape == (0, 16, 18)
    roi = np.zeros(30, bool)
    roi[[29, 3, 17]] = True  # a flat ROI: frames in nav order
    some = ctx.run_udf(dataset=ds, udf=PickUDF(), roi=roi)["intensity"].data
    assert np.array_equal(some, data.reshape(30, 16, 18)[[3, 17, 29]])


def test_record_after_corrections_is_float32(ctx, tmp_path):
    data = frames(seed=8)
    dark = np.full((16, 18), 10, np.float32)
    path = tmp_path / "out.npy"
    path.write_bytes(b"old")  # RecordUDF replaces the file, as LiberTEM's
    assert ctx.run_udf(dataset=ctx.load("memory", data=data), udf=RecordUDF(str(path)),
                       corrections=lt.CorrectionSet(dark=dark)) == {}
    got = np.load(path)
    assert got.dtype == np.float32 and np.array_equal(got, data - dark)


# --- memory datasets ------------------------------------------------------------------------

def test_memory_dataset_uses_a_contiguous_array_in_place(ctx):
    data = frames(dtype=np.float32, seed=9)
    refs = sys.getrefcount(data)
    ds = ctx.load("memory", data=data)
    assert sys.getrefcount(data) == refs + 1  # the dataset keeps the array itself
    before = ctx.run_udf(dataset=ds, udf=SumUDF())["intensity"].data.copy()
    data[0, 0] += 1000  # no copy: the next run sees the change
    after = ctx.run_udf(dataset=ds, udf=SumUDF())["intensity"].data
    assert np.array_equal(after - before, np.full((16, 18), 1000, np.float32))
    ds.close()
    assert sys.getrefcount(data) == refs


@pytest.mark.parametrize("layout", ["fortran", "strided", "big-endian"])
def test_memory_dataset_copies_other_layouts(ctx, layout):
    base = frames(dtype=np.float32, seed=10)
    data = {"fortran": np.asfortranarray(base), "strided": np.repeat(base, 2, axis=-1)[..., ::2],
            "big-endian": base.astype(">f4")}[layout]
    ds = ctx.load("memory", data=data)
    want = ctx.run_udf(dataset=ctx.load("memory", data=base.copy()), udf=SumSigUDF())
    first = ctx.run_udf(dataset=ds, udf=SumSigUDF())["intensity"].data
    assert np.array_equal(first, want["intensity"].data)
    data[0, 0] += 1000  # a copy: the dataset keeps what it was given
    again = ctx.run_udf(dataset=ds, udf=SumSigUDF())["intensity"].data
    assert np.array_equal(again, first)


def test_memory_dataset_of_a_readonly_mapped_file(ctx, tmp_path):
    data = frames(seed=11)
    np.save(tmp_path / "scan.npy", data)
    mapped = np.load(tmp_path / "scan.npy", mmap_mode="r")
    assert not mapped.flags.writeable
    res = ctx.run_udf(dataset=ctx.load("memory", data=mapped), udf=[SumUDF(), PickUDF()],
                      roi=np.ones((5, 6), bool))
    assert np.array_equal(res[0]["intensity"].data, data.sum(axis=(0, 1)).astype(np.float32))
    assert np.array_equal(res[1]["intensity"].data, data.reshape(30, 16, 18))


def test_memory_dataset_reshaped(ctx):
    data = frames((30, 16, 18), seed=12)
    ds = ctx.load("memory", data=data, nav_shape=(5, 6), sig_shape=(16, 18))
    assert tuple(ds.shape.nav) == (5, 6) and ds.shape.sig.size == 288
    res = ctx.run_udf(dataset=ds, udf=SumSigUDF())
    assert np.array_equal(res["intensity"].data,
                          data.reshape(5, 6, -1).sum(axis=-1).astype(np.float32))


# --- partial results --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big():
    """4096 frames of 64 x 64 (16 partitions) and 600 dense masks: a run of about a second,
    long enough for several partial results."""
    data = np.random.default_rng(13).integers(0, 1000, (64, 64, 64, 64)).astype(np.uint16)
    masks = [(32, 32, r) for r in np.linspace(1, 45, 600)]
    return data, masks


def test_partial_results(big):
    data, masks = big
    ctx = lt.Context(threads=2)
    ds = ctx.load("memory", data=data)
    udfs = [SumUDF(), SumSigUDF(), lt.Plugin("masks", disk=masks, sparse=False)]
    final = ctx.run_udf(dataset=ds, udf=udfs)
    before = threading.active_count()
    seen = np.zeros((64, 64), bool)
    parts = []
    for part in ctx.run_udf_iter(dataset=ds, udf=udfs):
        damage = part.damage.data
        assert damage.shape == (64, 64) and damage.dtype == bool
        assert (seen <= damage).all(), "damage shrank"
        seen = damage.copy()
        parts.append(int(damage.sum()))
        assert len(part.buffers) == 3
        # sig results: exactly the sum over the merged frames (sum accumulates int64)
        assert np.array_equal(part.buffers[0]["intensity"].data,
                              data[damage].sum(axis=0).astype(np.float32))
        # nav results: the final values where merged, NaN elsewhere
        for k in (1, 2):
            got, want = part.buffers[k]["intensity"].data, final[k]["intensity"].data
            assert np.array_equal(got[damage], want[damage])
            assert np.isnan(got[~damage]).all()
            assert np.array_equal(part.buffers[k]["intensity"].valid_mask[..., 0]
                                  if k == 2 else part.buffers[k]["intensity"].valid_mask, damage)
    assert seen.all() and parts[-1] == 4096
    assert parts == sorted(parts)
    for a, b in zip(part.buffers, final):
        for name in b:
            assert a[name].data.tobytes() == b[name].data.tobytes()
    assert threading.active_count() == before


def test_partial_results_outlive_the_run(big):
    data, masks = big
    ctx = lt.Context(threads=2)
    ds = ctx.load("memory", data=data)
    kept = [(p.damage.data, p.buffers[0]["intensity"].data)
            for p in ctx.run_udf_iter(dataset=ds, udf=SumSigUDF())]
    del ds
    gc.collect()
    for damage, nav in kept:
        assert np.array_equal(nav[damage], data[damage].sum(axis=(1, 2)).astype(np.float32))


# --- many runs in one process -----------------------------------------------------------------

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def test_many_runs_of_every_kind_leak_nothing(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = frames((8, 8, 32, 32), seed=14)
    fail = os.path.join(os.environ.get("UDFHOST_FIXTURES", ""), "fail.so")

    def runs(n):
        for i in range(n):
            ctx = lt.Context(threads=2)
            ds = ctx.load("memory", data=data)
            res = ctx.run_udf(dataset=ds, udf=[SumUDF(), CoMUDF(), LogsumUDF(),
                                               ApplyMasksUDF(mask_factories=lambda: data[0])])
            assert res[0]["intensity"].data.shape == (32, 32)
            for part in ctx.run_udf_iter(dataset=ds, udf=SumSigUDF()):
                pass
            assert part.damage.data.all()
            if os.path.exists(fail) and i % 2:
                with pytest.raises(udfhost.PluginError):
                    ctx.run_udf(dataset=ds, udf=lt.Plugin(fail, hook="merge", partition=-1))
            with pytest.raises(udfhost.ParameterError):
                ctx.run_udf(dataset=ds, udf=lt.Plugin("sum", dtype="int3"))
            ds.close()
            ctx.close()
    runs(20)
    gc.collect()
    before, threads = rss_mib(), threading.active_count()
    runs(200)
    gc.collect()
    assert rss_mib() - before < 4, (before, rss_mib())
    assert threading.active_count() == threads
    assert os.listdir(tmp_path) == []  # ApplyMasksUDF's temporary mask files are gone


def test_results_outlive_the_array_context_and_dataset(ctx):
    data = frames(seed=15)
    want = data.sum(axis=(0, 1)).astype(np.float32)
    c = lt.Context()
    ds = c.load("memory", data=data)
    res = c.run_udf(dataset=ds, udf=[SumUDF(), StdDevUDF()])
    ds.close()
    with pytest.raises(ValueError, match="closed"):
        c.run_udf(dataset=ds, udf=SumUDF())
    c.close()
    del data, ds, c
    gc.collect()
    assert np.array_equal(res[0]["intensity"].data, want)
    assert res[1]["num_frames"].data.tolist() == [30]


# --- progress bars ----------------------------------------------------------------------------

PROGRESS = """
import sys
if {hide}:
    sys.modules["tqdm"] = None
    sys.modules["tqdm.auto"] = None
import numpy as np, udfhost.api as lt
from udfhost.udf.sumsigudf import SumSigUDF
ctx = lt.Context(threads=2)
ds = ctx.load("raw", path={path!r}, dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))
roi = np.zeros((24, 32), bool); roi[:5] = True
a = ctx.run_udf(dataset=ds, udf=SumSigUDF(), roi=roi, progress=True)["intensity"].data
print("bar done", file=sys.stderr, flush=True)
parts = list(ctx.run_udf_iter(dataset=ds, udf=SumSigUDF(), roi=roi, progress=True))
b = ctx.run_udf(dataset=ds, udf=SumSigUDF(), roi=roi)["intensity"].data
assert a.tobytes() == b.tobytes() == parts[-1].buffers[0]["intensity"].data.tobytes()
print("same")
"""


@pytest.mark.parametrize("hide", [False, True], ids=["tqdm", "no-tqdm"])
def test_progress_counts_the_roi_frames(hide):
    p = subprocess.run([sys.executable, "-c", PROGRESS.format(hide=hide, path=SAMPLE)],
                       capture_output=True, text=True, env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "same\n"
    first, _, second = p.stderr.partition("bar done\n")
    assert "160/160" in first and "/768" not in first, p.stderr
    assert "160/160" in second
    assert ("it/s" in first or "frame/s" in first) != hide, p.stderr  # tqdm's, or the plain one


def test_progress_bar_closed_after_a_failure(capsys):
    fail = os.path.join(os.environ.get("UDFHOST_FIXTURES", ""), "fail.so")
    if not os.path.exists(fail):
        pytest.skip("fixture plugins not built (make check TESTS=)")
    sys.modules.pop("tqdm.auto", None)
    ctx = lt.Context(threads=2)
    ds = ctx.load("memory", data=frames((16, 16, 8, 8)))
    with pytest.raises(udfhost.PluginError):
        ctx.run_udf(dataset=ds, udf=lt.Plugin(fail, hook="process_tile", partition=-1),
                    progress=True)
    res = ctx.run_udf(dataset=ds, udf=SumSigUDF(), progress=True)
    assert res["intensity"].data.shape == (16, 16)
    assert capsys.readouterr().out == ""


# --- docstrings -------------------------------------------------------------------------------

MODULES = ["udfhost", "udfhost.api", "udfhost.corrections", "udfhost.udf", "udfhost.udf.FEM",
           "udfhost.udf.com", "udfhost.udf.logsum", "udfhost.udf.masks", "udfhost.udf.raw",
           "udfhost.udf.record", "udfhost.udf.stddev", "udfhost.udf.sum",
           "udfhost.udf.sumsigudf"]


def public(module):
    m = importlib.import_module(module)
    names = getattr(m, "__all__", None) or [n for n, v in vars(m).items()
                                            if not n.startswith("_") and
                                            getattr(v, "__module__", None) == module]
    return m, names


def test_every_public_name_and_member_has_a_docstring():
    missing = []
    for module in MODULES:
        m, names = public(module)
        assert m.__doc__, module
        for name in names:
            obj = getattr(m, name)
            if not (inspect.isclass(obj) or callable(obj)):
                continue
            if not inspect.getdoc(obj):
                missing.append(f"{module}.{name}")
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for attr, value in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    if (inspect.isfunction(value) or isinstance(value, property)) and \
                            not value.__doc__:
                        missing.append(f"{module}.{name}.{attr}")
    assert missing == []


def test_help_of_context_load():
    text = pydoc.render_doc(lt.Context.load, renderer=pydoc.plaintext)
    for option in ("nav_shape", "sig_shape", "dtype", "sync_offset", "hdf5_path", "sig_dims",
                   "memory", "ParameterError", "DatasetError"):
        assert option in text, option
    for exc in ("ParameterError", "DatasetError", "PluginError", "OutputError",
                "OutOfMemoryError", "CancelledError", "UdfhostError"):
        assert getattr(udfhost, exc).__doc__, exc
    for udf in (SumUDF, CoMUDF, ApplyMasksUDF, FEMUDF, PickUDF):
        assert "result" in pydoc.render_doc(udf, renderer=pydoc.plaintext).lower(), udf
