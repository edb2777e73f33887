"""A dataset file that shrinks under a run: a DatasetError naming the file, never a crash of the
interpreter, whichever way the engine reads it; the interpreter goes on working."""
import os

import numpy as np
import pytest

import udfhost
import udfhost.api as lt


@pytest.mark.parametrize("io", ["mmap", "read"])
def test_truncated_after_open(tmp_path, io):
    path = tmp_path / "scan.raw"
    data = np.arange(64 * 32 * 32, dtype=np.uint16).reshape(64, 32, 32)
    data.tofile(path)
    ctx = lt.Context(threads=2)
    ds = ctx.load("raw", path=str(path), dtype="uint16", nav_shape=(8, 8), sig_shape=(32, 32),
                  io=io)
    os.truncate(path, 10 * 32 * 32 * 2)
    with pytest.raises(udfhost.DatasetError) as info:
        ctx.run_udf(dataset=ds, udf=lt.Plugin("sum"))
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    data.tofile(path)
    ds = ctx.load("raw", path=str(path), dtype="uint16", nav_shape=(8, 8), sig_shape=(32, 32))
    res = ctx.run_udf(dataset=ds, udf=lt.Plugin("sum", dtype="float64"))
    assert np.array_equal(res["intensity"].data, data.sum(axis=0, dtype=np.float64))
