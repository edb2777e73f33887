"""Bad input raises the UdfhostError subclass of its kind with one line naming the problem
(beyond test_bad_input.py: truncated and missing files of every format, memory arrays, plugin
parameters of every kind, every hook of a failing plugin, corrections, output files, out of
memory); and after each failure nothing is written, no thread is left, no temporary file stays
and the next run works."""
import os
import tempfile
import threading

import numpy as np
import pytest

import udfhost
import udfhost.api as lt
from udfhost.udf.masks import ApplyMasksUDF
from udfhost.udf.raw import PickUDF
from udfhost.udf.sum import SumUDF

from conftest import FIXTURES, SAMPLE

FAIL = os.path.join(FIXTURES, "fail.so")
needs_fixtures = pytest.mark.skipif(not os.path.exists(FAIL),
                                    reason="fixture plugins not built (make check TESTS=)")


@pytest.fixture
def clean(tmp_path, monkeypatch):
    """Runs in an empty cwd with a private temporary directory; afterwards checks that both
    are still empty and that no thread was left behind."""
    cwd = tmp_path / "cwd"
    tmp = tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    threads = threading.active_count()
    yield cwd
    assert os.listdir(cwd) == []
    assert os.listdir(tmp) == []
    assert threading.active_count() == threads


def one_line(exc, *words):
    msg = str(exc)
    assert msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    assert isinstance(exc, udfhost.UdfhostError)
    return msg


def next_run_works(ctx, ds=None):
    ds = ds or ctx.load("raw", path=SAMPLE, dtype="uint16", nav_shape=(24, 32),
                        sig_shape=(48, 48))
    res = ctx.run_udf(dataset=ds, udf=lt.Plugin("sumsig", dtype="float64"))
    assert res["intensity"].data.sum() == np.fromfile(SAMPLE, "<u2").sum()


# --- datasets ---------------------------------------------------------------------------------

def npy_bytes(shape=(4, 5, 8, 8), dtype="<u2"):
    import io
    f = io.BytesIO()
    np.save(f, np.zeros(shape, dtype))
    return f.getvalue()


@pytest.mark.parametrize("filetype", ["npy", "auto"])
def test_truncated_npy(ctx, clean, filetype):
    path = clean.parent / "short.npy"
    data = npy_bytes()
    path.write_bytes(data[:len(data) - 100])
    with pytest.raises(udfhost.DatasetError) as info:
        ctx.load(filetype, path=str(path))
    one_line(info.value, str(path), "short")
    next_run_works(ctx)


def test_truncated_raw_and_frame_layout(ctx, clean):
    path = clean.parent / "scan.raw"
    np.zeros((10, 16, 16), np.uint16).tofile(path)
    with pytest.raises(udfhost.DatasetError) as info:
        ctx.load("raw", path=str(path), dtype="uint16", nav_shape=(11,), sig_shape=(16, 16))
    one_line(info.value, str(path), "short")
    with pytest.raises(udfhost.DatasetError) as info:
        ctx.load("raw", path=str(path), dtype="uint16", nav_shape=(10,), sig_shape=(16, 16),
                 frame_header=4)
    one_line(info.value, str(path))
    next_run_works(ctx)


@pytest.mark.parametrize("filetype", ["raw", "npy", "hdf5", "mib", "mrc", "tiff", "auto"])
def test_missing_file(ctx, clean, filetype):
    path = str(clean.parent / f"missing.{filetype}")
    extra = dict(dtype="uint16", nav_shape=(2, 2), sig_shape=(4, 4)) if filetype == "raw" else {}
    with pytest.raises(udfhost.DatasetError) as info:
        ctx.load(filetype, path=path, **extra)
    one_line(info.value, path, "No such file")


@pytest.mark.parametrize("options,word", [
    (dict(nav_shape="a"), "nav_shape"), (dict(nav_shape=(1.5, 2)), "nav_shape"),
    (dict(nav_shape=(24, None)), "nav_shape"), (dict(sig_shape=48), "sig_shape"),
    (dict(dtype=object), "dtype"), (dict(sync_offset="x"), "sync"),
    (dict(sync_offset=1.5), "sync_offset"), (dict(byte_order="middle"), "middle"),
    (dict(nav_shap=(24, 32)), "nav_shap"), (dict(hdf5_path=3.5), "hdf5_path"),
])
def test_bad_options(ctx, clean, options, word):
    kw = dict(dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))
    kw.update(options)
    with pytest.raises(udfhost.ParameterError) as info:
        ctx.load("raw", path=SAMPLE, **kw)
    one_line(info.value, word)
    assert isinstance(info.value, ValueError)  # ParameterError is a ValueError too
    next_run_works(ctx)


@pytest.mark.parametrize("filetype", ["blo", "RAW", "", "dask"])
def test_unknown_filetype(ctx, clean, filetype):
    with pytest.raises(udfhost.ParameterError) as info:
        ctx.load(filetype, path=SAMPLE)
    one_line(info.value, "filetype", "known")


@pytest.mark.parametrize("array,options,word", [
    (np.zeros((2, 3, 4, 4), np.complex64), {}, "complex64"),
    (np.zeros((2, 3, 4, 4), bool), {}, "bool"),
    (np.zeros((2, 3, 4, 4), np.int64), {}, "int64"),
    (np.zeros((2, 3, 4, 4), np.uint64), {}, "uint64"),
    (np.zeros((2, 3, 4, 4), np.float16), {}, "float16"),
    (np.zeros((2, 3, 4, 4), "U1"), {}, "not supported"),
    (np.zeros((2, 3, 4, 4), np.uint16), dict(sig_dims=5), "sig_dims"),
    (np.zeros((2, 3, 4, 4), np.uint16), dict(sig_dims="2"), "sig_dims"),
    (np.zeros((2, 3, 4, 4), np.uint16), dict(nav_shape=(5,), sig_shape=(4, 4)), "fit"),
    (np.zeros((2, 3, 4, 4), np.uint16), dict(sig_shape=(5, 5)), "fit"),
    (np.zeros((2, 3, 4, 4), np.uint16), dict(io_backend="mmap"), "io"),
    (np.zeros((2, 3, 4, 4), np.uint16), dict(sync_offset=2), "sync_offset"),
    (np.zeros(10, np.uint16), {}, "dimensions"),
    (None, {}, "data"),
])
def test_bad_memory_arrays(ctx, clean, array, options, word):
    with pytest.raises(udfhost.ParameterError) as info:
        ctx.load("memory", data=array, **options)
    one_line(info.value, word)
    next_run_works(ctx, ctx.load("memory", data=np.fromfile(SAMPLE, "<u2").reshape(24, 32, 48,
                                                                                   48)))


# --- runs -------------------------------------------------------------------------------------

@pytest.fixture
def sample3(ctx):
    return ctx.load("raw", path=SAMPLE, dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))


BAD_PLUGINS = [
    (lambda: lt.Plugin("no_such_plugin"), udfhost.ParameterError, ["no_such_plugin"]),
    (lambda: lt.Plugin("/nonexistent/dir/p.so"), udfhost.ParameterError, ["p.so"]),
    (lambda: lt.Plugin("com", cy="abc"), udfhost.ParameterError, ["cy", "abc"]),
    (lambda: lt.Plugin("com", flip_y="perhaps"), udfhost.ParameterError, ["flip_y"]),
    (lambda: lt.Plugin("sum", dtype=object()), udfhost.ParameterError, ["dtype"]),
    (lambda: lt.Plugin("sum", dtype="complex64"), udfhost.ParameterError, ["complex64"]),
    (lambda: lt.Plugin("radial", n_bins=0), udfhost.ParameterError, ["n_bins"]),
    (lambda: lt.Plugin("radial", n_bins=2.5), udfhost.ParameterError, ["n_bins"]),
    (lambda: lt.Plugin("pick"), udfhost.ParameterError, ["at", "required"]),
    (lambda: lt.Plugin("pick", at=(1, 2, 3)), udfhost.UdfhostError, ["pick"]),
    (lambda: lt.Plugin("masks", disk=(24, 24)), udfhost.UdfhostError, ["disk"]),
    (lambda: lt.Plugin("masks", file="/nonexistent/m.npy"), udfhost.UdfhostError, ["m.npy"]),
    (lambda: lt.Plugin("fem", ri=9, ro=3), udfhost.UdfhostError, ["ri", "ro"]),
    (lambda: lt.Plugin("sum", colour="red"), udfhost.ParameterError, ["colour"]),
    (lambda: [lt.Plugin("sum"), lt.Plugin("sum", dtype="float64")], udfhost.ParameterError,
     ["sum", "twice"]),
    (lambda: lt.Plugin(FAIL, how="explode"), udfhost.ParameterError, ["how", "explode"]),
]


@needs_fixtures
@pytest.mark.parametrize("make,exc,words", BAD_PLUGINS, ids=lambda v: "")
def test_bad_plugins_and_parameters(ctx, clean, sample3, make, exc, words):
    out = clean.parent / "rec.npy"
    udfs = make()
    udfs = (udfs if isinstance(udfs, list) else [udfs]) + [lt.Plugin("record", out=str(out))]
    with pytest.raises(exc) as info:
        ctx.run_udf(dataset=sample3, udf=udfs)
    one_line(info.value, *words)
    assert not out.exists()
    next_run_works(ctx, sample3)


HOOKS = ["declare_buffers", "init_task", "preprocess", "process_tile", "postprocess", "merge",
         "get_results"]


@needs_fixtures
@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("silent", [False, True])
def test_failing_plugin_in_every_hook(ctx, clean, sample3, hook, silent):
    rec = clean.parent / "rec.npy"
    roi = np.zeros((24, 32), bool)
    roi[::3, ::2] = True
    fail = lt.Plugin(FAIL, hook=hook, partition=-1, silent=silent)
    # PickUDF of several frames and ApplyMasksUDF keep temporary files (checked by `clean`)
    for udfs in ([SumUDF(), fail, PickUDF(),
                  ApplyMasksUDF(mask_factories=[lambda: np.ones((48, 48))])],
                 [fail, lt.Plugin("record", out=str(rec))]):
        with pytest.raises(udfhost.PluginError) as info:
            ctx.run_udf(dataset=sample3, udf=udfs, roi=roi)
        one_line(info.value, "fail", hook, "no message" if silent else "deliberate failure")
        assert info.value.code == udfhost.PluginError.code
        assert not rec.exists()  # record's file only appears when the whole run succeeded
    next_run_works(ctx, sample3)


@needs_fixtures
def test_failure_on_one_partition_names_it(ctx, clean):
    data = np.ones((64, 64, 32, 32), np.float32)  # several partitions
    ds = ctx.load("memory", data=data)
    with pytest.raises(udfhost.PluginError) as info:
        ctx.run_udf(dataset=ds, udf=lt.Plugin(FAIL, hook="process_tile", partition=3))
    one_line(info.value, "process_tile", "partition 3")
    with pytest.raises(udfhost.PluginError):
        for _ in ctx.run_udf_iter(dataset=ds, udf=[SumUDF(), lt.Plugin(FAIL, hook="merge",
                                                                       partition=2)]):
            pass
    next_run_works(ctx)


@needs_fixtures
def test_failure_during_run_udf_iter_after_partial_results(ctx, clean):
    data = np.ones((64, 64, 32, 32), np.float32)
    ds = ctx.load("memory", data=data)
    with pytest.raises(udfhost.PluginError) as info:
        for part in ctx.run_udf_iter(dataset=ds, udf=[SumUDF(), lt.Plugin(
                FAIL, hook="get_results")]):
            assert part.damage.data.any()
    one_line(info.value, "get_results")
    next_run_works(ctx)


@pytest.mark.parametrize("roi,exc,word", [
    (np.ones((24, 31), bool), udfhost.ParameterError, "roi"),
    (np.ones((32, 24), bool), udfhost.ParameterError, "roi"),
    (np.ones(767, bool), udfhost.ParameterError, "roi"),
    (np.ones((24, 32)), udfhost.ParameterError, "float64"),
    (np.ones((24, 32), complex), udfhost.ParameterError, "roi"),
])
def test_bad_roi(ctx, clean, sample3, roi, exc, word):
    with pytest.raises(exc) as info:
        ctx.run_udf(dataset=sample3, udf=[SumUDF(), PickUDF()], roi=roi)
    one_line(info.value, word)
    next_run_works(ctx, sample3)


@pytest.mark.parametrize("corr,exc,words", [
    (dict(dark=np.zeros((48, 47))), udfhost.DatasetError, ["dark", "48"]),
    (dict(gain=np.ones((47, 48))), udfhost.DatasetError, ["gain", "47"]),
    (dict(gain=np.ones((48, 48, 1))), udfhost.DatasetError, ["gain"]),
    (dict(excluded_pixels=np.zeros((48, 40), bool)), udfhost.DatasetError, ["excluded"]),
    (dict(excluded_pixels=np.array([[50, 3]])), udfhost.DatasetError, ["excluded", "50"]),
    (dict(excluded_pixels=np.array([[1, 2, 3]])), udfhost.DatasetError, ["excluded"]),
])
def test_bad_corrections(ctx, clean, sample3, corr, exc, words):
    rec = clean.parent / "rec.npy"
    with pytest.raises(exc) as info:
        ctx.run_udf(dataset=sample3, udf=[SumUDF(), lt.Plugin("record", out=str(rec))],
                    corrections=lt.CorrectionSet(**corr))
    one_line(info.value, *words)
    assert not rec.exists()
    next_run_works(ctx, sample3)


def test_bad_correction_types(clean):
    for bad in (dict(dark=np.zeros((48, 48), complex)), dict(gain=np.array([["a"]]))):
        with pytest.raises(udfhost.ParameterError) as info:
            lt.CorrectionSet(**bad)
        one_line(info.value, next(iter(bad)))


def test_record_refuses_to_replace_a_file(ctx, clean, sample3):
    out = clean.parent / "exists.npy"
    out.write_bytes(b"precious")
    with pytest.raises(udfhost.UdfhostError) as info:
        ctx.run_udf(dataset=sample3, udf=lt.Plugin("record", out=str(out)))
    one_line(info.value, str(out), "exists")
    assert out.read_bytes() == b"precious"
    with pytest.raises(udfhost.PluginError) as info:
        ctx.run_udf(dataset=sample3, udf=lt.Plugin("record", out=str(clean.parent / "x/y.npy")))
    one_line(info.value, "y.npy")
    next_run_works(ctx, sample3)


def test_out_of_memory(ctx, clean):
    path = clean.parent / "huge.raw"
    with open(path, "wb") as f:
        f.truncate(1 << 40)  # sparse: a TiB of frames of one pixel, a 8 TiB nav buffer
    ds = ctx.load("raw", path=str(path), dtype="uint8", nav_shape=(1 << 20, 1 << 20),
                  sig_shape=(1, 1))
    with pytest.raises(udfhost.OutOfMemoryError) as info:
        ctx.run_udf(dataset=ds, udf=lt.Plugin("sumsig"))
    one_line(info.value, "memory", "sumsig")
    assert isinstance(info.value, MemoryError)
    ds.close()
    os.unlink(path)
    next_run_works(ctx)


def test_python_errors_of_udfs_leave_nothing(ctx, clean, sample3):
    def broken():
        raise ZeroDivisionError("mask factory broke")
    with pytest.raises(ZeroDivisionError):
        ctx.run_udf(dataset=sample3, udf=[PickUDF(), ApplyMasksUDF(mask_factories=[broken])])
    with pytest.raises(udfhost.ParameterError, match="mask_count"):
        ctx.run_udf(dataset=sample3, udf=[PickUDF(), ApplyMasksUDF(
            mask_factories=[lambda: np.ones((48, 48))], mask_count=2)])
    with pytest.raises(udfhost.ParameterError, match="CorrectionSet"):
        ctx.run_udf(dataset=sample3, udf=SumUDF(), corrections={"dark": np.zeros((48, 48))})
    with pytest.raises(udfhost.ParameterError, match="sync"):
        ctx.run_udf(dataset=sample3, udf=SumUDF(), sync=False)
    next_run_works(ctx, sample3)


def test_closed_dataset(ctx, clean, sample3):
    sample3.close()
    with pytest.raises(ValueError, match="closed"):
        ctx.run_udf(dataset=sample3, udf=SumUDF())
    next_run_works(ctx)


def test_many_failures_in_a_row_then_a_run(ctx, clean, sample3):
    """A run after failed runs works, also after many of them."""
    for i in range(30):
        with pytest.raises(udfhost.UdfhostError):
            ctx.run_udf(dataset=sample3, udf=[SumUDF(), lt.Plugin("com", r=-1 - i)])
    next_run_works(ctx, sample3)


def test_two_udfs_on_one_plugin(ctx, clean, sample3):
    """PickUDF of several frames runs udfhost's record, which a pass runs once: the message names
    the UDFs given, not a plugin the caller never gave twice."""
    roi = np.zeros((24, 32), bool)
    roi[1, 1:3] = True
    with pytest.raises(udfhost.ParameterError) as info:
        ctx.run_udf(dataset=sample3, roi=roi,
                    udf=[PickUDF(), lt.Plugin("record", out=str(clean.parent / "r.npy"))])
    one_line(info.value, "PickUDF", "record", "twice", "separate")
    with pytest.raises(udfhost.ParameterError) as info:
        ctx.run_udf(dataset=sample3, udf=[SumUDF(), lt.Plugin("sum", dtype="float64")])
    one_line(info.value, "SumUDF", "sum", "twice")
    assert not (clean.parent / "r.npy").exists()
    next_run_works(ctx, sample3)
