"""Bad input raises the right UdfhostError subclass with one line naming the problem, writes
nothing, leaves no thread behind, and the next run works."""
import os
import threading

import numpy as np
import pytest

import udfhost
import udfhost.api as lt
from udfhost.udf.sum import SumUDF

from conftest import FIXTURES, SAMPLE


def raw(ctx, path=SAMPLE, **over):
    kw = dict(dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))
    kw.update(over)
    return ctx.load("raw", path=str(path), **kw)


LOAD_ERRORS = [
    (dict(nav_shape="a"), udfhost.ParameterError, "nav_shape"),
    (dict(nav_shape=(1.5, 2)), udfhost.ParameterError, "nav_shape"),
    (dict(sig_shape=[48, "x"]), udfhost.ParameterError, "sig_shape"),
    (dict(dtype="uint17"), udfhost.ParameterError, "uint17"),
    (dict(dtype="complex64"), udfhost.ParameterError, "dtype"),
    (dict(offset=-1), udfhost.ParameterError, "offset"),
    (dict(offset=True), udfhost.ParameterError, "offset"),
    (dict(colour="red"), udfhost.ParameterError, "colour"),
    (dict(nav_shape=(24, 33)), udfhost.DatasetError, "file too short"),
    (dict(sig_shape=(48, 49)), udfhost.DatasetError, "sample.raw"),
    (dict(io="sideways"), udfhost.ParameterError, "io"),
    (dict(sig_shape=None, dtype=None), udfhost.ParameterError, "needs sig_shape"),
    (dict(sig_shape=None), udfhost.ParameterError, "needs sig_shape"),
]


@pytest.mark.parametrize("over,exc,text", LOAD_ERRORS, ids=lambda v: str(v)[:30])
def test_load_errors(ctx, over, exc, text):
    before = threading.active_count()
    kw = dict(dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))
    kw.update(over)
    with pytest.raises(exc) as info:
        ctx.load("raw", path=SAMPLE, **{k: v for k, v in kw.items() if v is not None})
    msg = str(info.value)
    assert text in msg and "\n" not in msg and "--" not in msg, msg
    assert isinstance(info.value, udfhost.UdfhostError) and info.value.code < 0
    assert threading.active_count() == before


def test_missing_and_unreadable_files(ctx, tmp_path):
    with pytest.raises(udfhost.DatasetError, match="nonexistent"):
        raw(ctx, path="/nonexistent/scan.raw")
    with pytest.raises(udfhost.DatasetError):
        ctx.load("auto", path=str(tmp_path))  # an empty directory of frames
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(udfhost.DatasetError, match="bad.npy"):
        ctx.load("npy", path=str(bad))
    with pytest.raises(udfhost.ParameterError, match="filetype"):
        ctx.load("blo", path=str(bad))
    with pytest.raises(udfhost.ParameterError):
        ctx.load("raw")


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_, np.int64, np.float16, object])
def test_memory_of_unsupported_dtype(ctx, dtype):
    with pytest.raises(udfhost.ParameterError, match="not supported"):
        ctx.load("memory", data=np.zeros((2, 3, 4, 4), dtype=dtype))


def test_run_errors_write_nothing_and_leave_no_thread(ctx, sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = threading.active_count()
    cases = [
        (lt.Plugin("nosuchplugin"), udfhost.ParameterError, "nosuchplugin"),
        (lt.Plugin("./nowhere/x.so"), udfhost.ParameterError, "x.so"),
        (lt.Plugin("sumsig", dtype="int7"), udfhost.ParameterError, "int7"),
        (lt.Plugin("sumsig", colour=1), udfhost.ParameterError, "colour"),
        (lt.Plugin("masks"), udfhost.UdfhostError, "no mask"),
        (lt.Plugin("pick", at=(99, 0)), udfhost.UdfhostError, "pick"),
        (lt.Plugin(os.path.join(FIXTURES, "fail.so"), hook="process_tile", partition=3),
         udfhost.PluginError, "partition 3"),
        (lt.Plugin(os.path.join(FIXTURES, "fail.so"), hook="merge", partition=2),
         udfhost.PluginError, "merge"),
        (lt.Plugin(os.path.join(FIXTURES, "bad_major.so")), udfhost.PluginError, "major"),
    ]
    for udf, exc, text in cases:
        with pytest.raises(exc) as info:
            ctx.run_udf(dataset=sample, udf=[SumUDF(), udf])
        assert text in str(info.value) and "\n" not in str(info.value), str(info.value)
        assert threading.active_count() == before
        # The next run works.
        res = ctx.run_udf(dataset=sample, udf=SumUDF())
        assert res["intensity"].data.shape == (48, 48)
    with pytest.raises(udfhost.ParameterError, match="roi"):
        ctx.run_udf(dataset=sample, udf=SumUDF(), roi=np.ones((24, 31), bool))
    with pytest.raises(udfhost.ParameterError, match="not a UDF"):
        ctx.run_udf(dataset=sample, udf=np.sum)
    with pytest.raises(ValueError, match="empty"):
        ctx.run_udf(dataset=sample, udf=[])
    with pytest.raises(udfhost.DatasetError, match="dark"):
        ctx.run_udf(dataset=sample, udf=SumUDF(),
                    corrections=lt.CorrectionSet(dark=np.zeros((48, 47))))
    assert os.listdir(tmp_path) == []
    assert threading.active_count() == before


def test_context_arguments():
    with pytest.raises(udfhost.ParameterError):
        lt.Context(threads=0)
    with pytest.raises(udfhost.ParameterError):
        lt.Context(executor=object())
    assert lt.Context.make_with("inline").threads == 1
    assert lt.Context.make_with("threads", cpus=3).threads == 3
