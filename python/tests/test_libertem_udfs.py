"""The LiberTEM-named UDF classes: LiberTEM's result names, dtypes and shapes, with values checked
against NumPy computing LiberTEM's definitions on the same data."""
import numpy as np
import pytest

from udfhost.udf.FEM import FEMUDF
from udfhost.udf.com import CoMParams, CoMUDF, RegressionOptions
from udfhost.udf.logsum import LogsumUDF
from udfhost.udf.masks import ApplyMasksUDF
from udfhost.udf.raw import PickUDF
from udfhost.udf.record import RecordUDF
from udfhost.udf.stddev import StdDevUDF
from udfhost.udf.sum import SumUDF
from udfhost.udf.sumsigudf import SumSigUDF

YY, XX = np.mgrid[0:48, 0:48]


def test_sum_and_sumsig(ctx, sample, sample_data):
    s, ss = ctx.run_udf(dataset=sample, udf=[SumUDF(), SumSigUDF()])
    assert s["intensity"].data.dtype == np.float32
    assert np.array_equal(s["intensity"].data, sample_data.sum(axis=(0, 1)).astype(np.float32))
    assert ss["intensity"].kind == "nav" and ss["intensity"].data.shape == (24, 32)
    assert np.array_equal(ss["intensity"].data, sample_data.sum(axis=(2, 3)).astype(np.float32))
    s64 = ctx.run_udf(dataset=sample, udf=SumUDF(dtype="float64"))["intensity"].data
    assert s64.dtype == np.float64
    assert np.array_equal(s64, sample_data.sum(axis=(0, 1), dtype=np.float64))
    ints = ctx.run_udf(dataset=sample, udf=SumUDF(dtype="int64"))["intensity"].data
    assert ints.dtype == np.int64 and np.array_equal(ints, sample_data.sum(axis=(0, 1)))


def test_float64_data_gives_float64_results(ctx, sample_data):
    mem = ctx.load("memory", data=sample_data.astype(np.float64) / 3)
    s, ss = ctx.run_udf(dataset=mem, udf=[SumUDF(), SumSigUDF()])
    assert s["intensity"].data.dtype == np.float64
    assert ss["intensity"].data.dtype == np.float64


def test_stddev(ctx, sample, sample_data):
    res = ctx.run_udf(dataset=sample, udf=StdDevUDF())
    assert {"var", "std", "mean", "sum", "varsum", "num_frames"} <= set(res)
    f = sample_data.astype(np.float64)
    assert np.allclose(res["mean"].data, f.mean(axis=(0, 1)), rtol=1e-12)
    assert np.allclose(res["var"].data, f.var(axis=(0, 1)), rtol=1e-9)
    assert np.allclose(res["std"].data, f.std(axis=(0, 1)), rtol=1e-9)
    assert res["std"].data.dtype == np.float64
    n = res["num_frames"].data
    assert n.dtype == np.int64 and n.shape == (1,) and n[0] == 768
    roi = np.zeros((24, 32), bool)
    roi[::2] = True
    r = ctx.run_udf(dataset=sample, udf=StdDevUDF(dtype=np.float32), roi=roi)
    assert r["num_frames"].data[0] == roi.sum()
    assert r["var"].data.dtype == np.float32
    assert np.allclose(r["var"].data, f[roi].var(axis=0), rtol=1e-5)


def test_logsum(ctx, sample, sample_data):
    res = ctx.run_udf(dataset=sample, udf=LogsumUDF())
    f = sample_data.reshape(768, 48, 48).astype(np.float64)
    want = np.log(f - f.min(axis=(1, 2), keepdims=True) + 1).sum(axis=0)
    assert res["logsum"].data.dtype == np.float32
    assert np.allclose(res["logsum"].data, want, rtol=1e-6)


def test_apply_masks(ctx, sample, sample_data):
    d2 = (YY - 24) ** 2 + (XX - 24) ** 2
    disk = (d2 <= 64).astype(np.float32)
    ring = ((d2 > 169) & (d2 <= 529)).astype(np.float32)
    res = ctx.run_udf(dataset=sample, udf=ApplyMasksUDF(mask_factories=[lambda: disk,
                                                                        lambda: ring]))
    out = res["intensity"].data
    assert out.shape == (24, 32, 2) and out.dtype == np.float32
    f = sample_data.astype(np.float64)
    assert np.allclose(out[..., 0], (f * disk).sum(axis=(2, 3)), rtol=1e-6)
    assert np.allclose(out[..., 1], (f * ring).sum(axis=(2, 3)), rtol=1e-6)
    # float64 masks give float64 results (LiberTEM's result_type); a stack from one factory.
    stack = np.stack([disk, ring]).astype(np.float64)
    r64 = ctx.run_udf(dataset=sample, udf=ApplyMasksUDF(mask_factories=lambda: stack,
                                                        use_sparse=False, mask_count=2))
    assert r64["intensity"].data.dtype == np.float64
    assert np.allclose(r64["intensity"].data, out, rtol=1e-6)
    with pytest.raises(NotImplementedError):
        ApplyMasksUDF(mask_factories=[lambda: disk], shifts=np.zeros((24, 32, 2)))
    with pytest.raises(ValueError):
        ctx.run_udf(dataset=sample, udf=ApplyMasksUDF(mask_factories=[lambda: disk[:40]]))


def numpy_com(f, cy, cx, r, ri=0.0):
    d2 = (YY - cy) ** 2 + (XX - cx) ** 2
    m = (d2 <= r * r) & (d2 > ri * ri if ri > 0 else True)
    w = f * m
    tot = w.sum(axis=(2, 3))
    y = (w * YY).sum(axis=(2, 3)) / tot
    x = (w * XX).sum(axis=(2, 3)) / tot
    return np.stack([y, x], axis=-1)


def test_com(ctx, sample, sample_data):
    f = sample_data.astype(np.float64)
    udf = CoMUDF.with_params(cy=24, cx=24, r=20, ri=3)
    res = ctx.run_udf(dataset=sample, udf=udf)
    assert set(res) == {"raw_com", "raw_shifts", "field", "field_y", "field_x", "magnitude",
                        "divergence", "curl", "regression"}
    com = numpy_com(f, 24, 24, 20, 3)
    assert np.allclose(res["raw_com"].data, com, atol=1e-4)
    shifts = com - np.array([24, 24])
    assert np.allclose(res["raw_shifts"].data, shifts, atol=1e-4)
    fy, fx = shifts[..., 0], shifts[..., 1]
    assert np.allclose(res["field_y"].data, fy, atol=1e-4)
    assert np.allclose(res["magnitude"].data, np.hypot(fy, fx), atol=1e-4)
    assert np.allclose(res["divergence"].data, np.gradient(fy, axis=0) + np.gradient(fx, axis=1),
                       atol=1e-4)
    assert np.allclose(res["curl"].data, np.gradient(fy, axis=1) - np.gradient(fx, axis=0),
                       atol=1e-4)
    assert np.array_equal(res["regression"].data, np.zeros((3, 2)))
    # Defaults centre at sig_shape // 2, as LiberTEM; rotation and flip as LiberTEM's.
    dflt = ctx.run_udf(dataset=sample, udf=CoMUDF())
    assert np.allclose(dflt["raw_shifts"].data, numpy_com(f, 24, 24, np.inf) - 24, atol=1e-4)
    rot = ctx.run_udf(dataset=sample, udf=CoMUDF(CoMParams(cy=24, cx=24, scan_rotation=90.0)))
    base = dflt["field"].data
    got = rot["field"].data
    assert np.allclose(np.hypot(got[..., 0], got[..., 1]), np.hypot(base[..., 0], base[..., 1]),
                       atol=1e-4)
    assert not np.allclose(got, base, atol=1e-3)


@pytest.mark.parametrize("regression", [RegressionOptions.SUBTRACT_MEAN,
                                        RegressionOptions.SUBTRACT_LINEAR])
def test_com_regression(ctx, sample, regression):
    plain = ctx.run_udf(dataset=sample, udf=CoMUDF.with_params(cy=24, cx=24))
    res = ctx.run_udf(dataset=sample, udf=CoMUDF.with_params(cy=24, cx=24,
                                                              regression=regression))
    field = plain["field"].data.astype(np.float64)
    yy, xx = np.mgrid[0:24, 0:32]
    if regression == RegressionOptions.SUBTRACT_MEAN:
        want = field - field.mean(axis=(0, 1))
    else:
        a = np.stack([np.ones(768), yy.ravel(), xx.ravel()], axis=1)
        coeff = np.linalg.lstsq(a, field.reshape(-1, 2), rcond=None)[0]
        want = field - (a @ coeff).reshape(24, 32, 2)
        assert np.allclose(res["regression"].data, coeff, atol=1e-5)
    assert np.allclose(res["field"].data, want, atol=1e-4)
    assert np.allclose(res["field"].data[..., 0].mean(), 0, atol=1e-4)


def test_com_needs_2d_scan(ctx, sample_data):
    with pytest.raises(ValueError, match="2D nav"):
        ctx.run_udf(dataset=ctx.load("memory", data=sample_data.reshape(768, 48, 48)),
                    udf=CoMUDF())


def test_pick(ctx, sample, sample_data):
    roi = np.zeros((24, 32), bool)
    roi[5, 6] = True
    one = ctx.run_udf(dataset=sample, udf=PickUDF(), roi=roi)["intensity"]
    assert one.kind == "single" and one.data.shape == (1, 48, 48) and one.data.dtype == np.uint16
    assert np.array_equal(one.data[0], sample_data[5, 6])
    roi[7, 1:9] = True
    many = ctx.run_udf(dataset=sample, udf=PickUDF(), roi=roi)["intensity"].data
    assert np.array_equal(many, sample_data[roi])


def test_fem(ctx, sample, sample_data):
    res = ctx.run_udf(dataset=sample, udf=FEMUDF(center=(22, 25), rad_in=4, rad_out=14))
    d2 = (YY - 22) ** 2 + (XX - 25) ** 2
    ring = (d2 > 16) & (d2 <= 196)
    want = sample_data[:, :, ring].astype(np.float64).std(axis=-1)
    out = res["intensity"].data
    assert out.dtype == np.float32 and out.shape == (24, 32)
    assert np.allclose(out, want, rtol=1e-5)


def test_record(ctx, sample, sample_data, tmp_path):
    path = tmp_path / "frames.npy"
    assert ctx.run_udf(dataset=sample, udf=RecordUDF(path)) == {}
    assert np.array_equal(np.load(path), sample_data)
    with pytest.raises(RuntimeError):
        ctx.run_udf(dataset=sample, udf=RecordUDF(path), roi=np.ones((24, 32), bool))
