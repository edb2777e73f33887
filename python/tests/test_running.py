"""Runs as a notebook user lives them: Ctrl-C, partial results, progress bars, many runs in one
process, results outliving their Context and dataset, docstrings."""
import gc
import inspect
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import udfhost.api as lt
from udfhost.udf.sum import SumUDF
from udfhost.udf.sumsigudf import SumSigUDF

from conftest import SAMPLE

ENV = dict(os.environ)

# A run of several seconds here: 1 GiB of float32 frames through 512 dense masks.
SLOW = """
import os, sys, tempfile, time, numpy as np, udfhost.api as lt
data = np.ones((16384, 128, 128), np.float32)
path = os.path.join(tempfile.mkdtemp(), "masks.npy")
np.save(path, np.random.default_rng(1).random((512, 128, 128)).astype(np.float32))
ctx = lt.Context(threads=2)
ds = ctx.load("memory", data=data)
masks = lt.Plugin("masks", file=path, sparse=False)
print("ready", flush=True)
t = time.monotonic()
try:
    ctx.run_udf(dataset=ds, udf=masks)
    print("finished", time.monotonic() - t, flush=True)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
small = ctx.load("memory", data=data[:64, :16, :16].copy())
res = ctx.run_udf(dataset=small, udf=lt.Plugin("sum"))
assert res["intensity"].data[0, 0] == 64
import threading
print("threads", sum(t.is_alive() for t in threading.enumerate()), flush=True)
"""


def test_ctrl_c_stops_a_run_and_the_interpreter_goes_on():
    p = subprocess.Popen([sys.executable, "-c", SLOW], stdout=subprocess.PIPE, text=True,
                         env=ENV)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, _ = p.communicate(timeout=30)
    lines = out.split("\n")
    assert lines[0].startswith("interrupted"), out
    assert float(lines[0].split()[1]) - sent < 2.0, out
    assert "threads 1" in out
    assert p.returncode == 0, out


def test_closing_the_iterator_cancels(ctx):
    data = np.ones((8192, 128, 128), np.float32)
    ds = ctx.load("memory", data=data)
    before = threading.active_count()
    it = ctx.run_udf_iter(dataset=ds, udf=lt.Plugin("masks", disk=[(64, 64, r) for r in
                                                                    range(4, 40, 2)],
                                                     sparse=False))
    t = time.monotonic()
    next(it)
    it.close()
    assert time.monotonic() - t < 5
    assert threading.active_count() == before


def test_partial_results_grow_and_end_at_the_final_ones(sample_data):
    ctx = lt.Context(threads=2)
    data = np.repeat(sample_data.reshape(768, 48, 48), 8, axis=0)[:, :40, :40].copy()
    ds = ctx.load("memory", data=data.reshape(64, 96, 40, 40))
    final = ctx.run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF()])
    seen = np.zeros((64, 96), bool)
    parts = 0
    for part in ctx.run_udf_iter(dataset=ds, udf=[SumUDF(), SumSigUDF()]):
        parts += 1
        damage = part.damage.data
        assert damage.shape == (64, 96) and damage.dtype == bool
        assert (damage | ~seen).all(), "a merged frame is no longer merged"
        seen = damage
        nav = part.buffers[1]["intensity"].data
        assert np.array_equal(nav[damage], final[1]["intensity"].data[damage])
        assert np.isnan(nav[~damage]).all()
    assert parts >= 1 and seen.all()
    assert np.array_equal(part.buffers[0]["intensity"].data, final[0]["intensity"].data)


@pytest.mark.parametrize("have_tqdm", [True, False])
def test_progress_bar(have_tqdm):
    code = f"""
import sys
if not {have_tqdm}:
    sys.modules["tqdm"] = None
    sys.modules["tqdm.auto"] = None
import numpy as np, udfhost.api as lt
ctx = lt.Context()
ds = ctx.load("raw", path={SAMPLE!r}, dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))
a = ctx.run_udf(dataset=ds, udf=lt.Plugin("sum"), progress=True)["intensity"].data
b = ctx.run_udf(dataset=ds, udf=lt.Plugin("sum"))["intensity"].data
assert np.array_equal(a, b)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    assert "768" in p.stderr and ("100%" in p.stderr), p.stderr


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_many_runs_and_contexts_leak_nothing(sample_data):
    def runs(n):
        for _ in range(n):
            with lt.Context(threads=2) as ctx:
                ds = ctx.load("memory", data=sample_data)
                res = ctx.run_udf(dataset=ds, udf=[SumUDF(), SumSigUDF(), lt.Plugin("com")])
                assert res[0]["intensity"].data.shape == (48, 48)
                ds.close()
    runs(20)
    gc.collect()
    before = rss_mib()
    threads = threading.active_count()
    runs(200)
    gc.collect()
    assert rss_mib() - before < 4, (before, rss_mib())
    assert threading.active_count() == threads


def test_memory_datasets_are_not_copied():
    """A C-contiguous array is used in place: opening and running over 256 MiB adds no 256 MiB."""
    data = np.ones((4096, 128, 128), np.uint32)
    ctx = lt.Context(threads=2)
    before = rss_mib()
    ds = ctx.load("memory", data=data)
    res = ctx.run_udf(dataset=ds, udf=lt.Plugin("sum", dtype="float64"))
    assert rss_mib() - before < 64, (before, rss_mib())
    assert res["intensity"].data[0, 0] == 4096
    data[0, 0, 0] = 5  # the dataset sees the caller's memory
    again = ctx.run_udf(dataset=ds, udf=lt.Plugin("sum", dtype="float64"))
    assert again["intensity"].data[0, 0] == 4100


def test_results_outlive_context_and_dataset(sample_data):
    ctx = lt.Context()
    ds = ctx.load("raw", path=SAMPLE, dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))
    res = ctx.run_udf(dataset=ds, udf=SumUDF(dtype="float64"))
    arr = res["intensity"].data
    ds.close()
    ctx.close()
    del ds, ctx, res
    gc.collect()
    assert np.array_equal(arr, sample_data.sum(axis=(0, 1), dtype=np.float64))
    assert not arr.flags.owndata  # the engine's memory, kept alive by the array


def test_docstrings():
    import udfhost
    import udfhost.corrections
    import udfhost.udf
    from udfhost.udf import FEM, com, logsum, masks, raw, record, stddev, sum, sumsigudf
    modules = [udfhost, lt, udfhost.corrections, udfhost.udf, FEM, com, logsum, masks, raw,
               record, stddev, sum, sumsigudf]
    for m in modules:
        assert m.__doc__, m
        for name, obj in vars(m).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", "").startswith("udfhost"):
                assert obj.__doc__, f"{m.__name__}.{name}"
    doc = lt.Context.load.__doc__
    for option in ("nav_shape", "sig_shape", "dtype", "sync_offset", "hdf5_path", "sig_dims"):
        assert option in doc
    for method in (lt.Context.run_udf, lt.Context.run_udf_iter, lt.Context.make_with):
        assert method.__doc__


def test_demo_script():
    """data/demo.py, the README's Python demo, runs and finds the sample's counts."""
    from conftest import SRCDIR
    p = subprocess.run([sys.executable, os.path.join(SRCDIR, "data", "demo.py")],
                       capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    assert "768 frames, 283423891 counts in all" in p.stdout
