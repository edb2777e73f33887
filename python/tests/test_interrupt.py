"""Ctrl-C and early ends (beyond test_running.py): SIGINT during run_udf, during a run_udf_iter
loop, during a run with a progress bar, and twice in a row, each in a run of several seconds
(8192 frames of 128 x 128 through 1024 dense masks: about 5 s on 2 cores), raises
KeyboardInterrupt within 2 s, leaves no thread and no temporary file, and the interpreter goes
on running; and a run_udf_iter generator closed, abandoned or broken out of stops its run
promptly without leaving a thread."""
import gc
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import udfhost.api as lt
from udfhost.udf.masks import ApplyMasksUDF
from udfhost.udf.sumsigudf import SumSigUDF

CHILD = r"""
import os, sys, tempfile, threading, time
import numpy as np
import udfhost.api as lt
from udfhost.udf.masks import ApplyMasksUDF
from udfhost.udf.sum import SumUDF

data = np.ones((8192, 128, 128), np.uint16)
stack = np.random.default_rng(1).random((1024, 128, 128)).astype(np.float32)
ctx = lt.Context(threads=2)
ds = ctx.load("memory", data=data)
small = ctx.load("memory", data=np.ones((4, 4, 8, 8), np.uint16))


def slow():
    return ApplyMasksUDF(mask_factories=lambda: stack, use_sparse=False)


def by_run_udf():
    ctx.run_udf(dataset=ds, udf=[SumUDF(), slow()])


def by_iter():
    for part in ctx.run_udf_iter(dataset=ds, udf=slow()):
        pass


def with_progress():
    ctx.run_udf(dataset=ds, udf=slow(), progress=True)


for name in sys.argv[1:]:
    print("ready", name, flush=True)
    t = time.monotonic()
    try:
        {"run_udf": by_run_udf, "iter": by_iter, "progress": with_progress,
         "twice": by_run_udf}[name]()
        print("finished", name, time.monotonic() - t, flush=True)
    except KeyboardInterrupt:
        print("interrupted", name, flush=True)
    res = ctx.run_udf(dataset=small, udf=SumUDF(dtype="float64"))
    assert res["intensity"].data.tolist() == [[16.0] * 8] * 8
    others = [t for t in threading.enumerate() if t is not threading.main_thread()
              and type(t).__name__ != "TMonitor"]  # tqdm's monitor thread is tqdm's
    print("threads", 1 + len(others), "tmp",
          len([f for f in os.listdir(tempfile.gettempdir()) if f.startswith("udfhost-")]),
          flush=True)
print("exit", flush=True)
"""


def test_ctrl_c_in_every_kind_of_run(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    cases = ["run_udf", "iter", "progress", "twice"]
    p = subprocess.Popen([sys.executable, "-c", CHILD, *cases], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        for name in cases:
            line = p.stdout.readline()
            assert line.split() == ["ready", name], line
            time.sleep(0.5)
            p.send_signal(signal.SIGINT)
            sent = time.monotonic()
            if name == "twice":
                time.sleep(0.05)
                p.send_signal(signal.SIGINT)
            line = p.stdout.readline()
            took = time.monotonic() - sent
            if not line:  # the child ended: say how
                p.wait(timeout=20)
                raise AssertionError(f"exit {p.returncode}: {p.stderr.read()}")
            assert line.split() == ["interrupted", name], line  # not "finished": it was slow
            assert took < 2.0, (name, took)
            assert p.stdout.readline().split() == ["threads", "1", "tmp", "0"], name
        assert p.stdout.readline().strip() == "exit"
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert "Traceback" not in err, err
    assert os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def slow_dataset():
    data = np.ones((4096, 128, 128), np.uint16)
    return data, np.random.default_rng(2).random((512, 128, 128)).astype(np.float32)


def slow_udfs(stack):
    return [SumSigUDF(), ApplyMasksUDF(mask_factories=lambda: stack, use_sparse=False)]


def settle(before, timeout=2.0):
    """Wait until the thread count is back to before (the worker is joined synchronously, so
    this should hold at once); return the count."""
    end = time.monotonic() + timeout
    while threading.active_count() != before and time.monotonic() < end:
        time.sleep(0.01)
    return threading.active_count()


@pytest.mark.parametrize("how", ["close", "break", "del", "close-unstarted"])
def test_ending_run_udf_iter_early(slow_dataset, tmp_path, monkeypatch, how):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data, stack = slow_dataset
    ctx = lt.Context(threads=2)
    ds = ctx.load("memory", data=data)
    before = threading.active_count()
    gen = ctx.run_udf_iter(dataset=ds, udf=slow_udfs(stack))
    t = time.monotonic()
    if how == "close-unstarted":
        gen.close()
    else:
        first = next(gen)
        assert not first.damage.data.all()  # the run was not over yet
        if how == "close":
            gen.close()
        elif how == "break":
            for part in gen:
                break
            gen.close()
        else:
            del gen
            gc.collect()
    took = time.monotonic() - t
    assert took < 1.5, took
    assert settle(before) == before
    assert os.listdir(tmp_path) == []
    # The next run works and gives the right answer.
    res = ctx.run_udf(dataset=ctx.load("memory", data=data[:64]), udf=SumSigUDF())
    assert np.array_equal(res["intensity"].data, np.full(64, 128 * 128, np.float32))


def test_exception_in_the_consumer_cancels(slow_dataset):
    data, stack = slow_dataset
    ctx = lt.Context(threads=2)
    ds = ctx.load("memory", data=data)
    before = threading.active_count()
    t = time.monotonic()
    with pytest.raises(RuntimeError, match="consumer"):
        for part in ctx.run_udf_iter(dataset=ds, udf=slow_udfs(stack)):
            raise RuntimeError("consumer gave up")
    assert time.monotonic() - t < 1.5
    assert settle(before) == before


def test_generator_thrown_keyboard_interrupt(slow_dataset):
    """What Ctrl-C in a consumer looks like from the generator's side: throw()."""
    data, stack = slow_dataset
    ctx = lt.Context(threads=2)
    ds = ctx.load("memory", data=data)
    before = threading.active_count()
    gen = ctx.run_udf_iter(dataset=ds, udf=slow_udfs(stack))
    next(gen)
    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gen.throw(KeyboardInterrupt())
    assert time.monotonic() - t < 1.5
    assert settle(before) == before
    with pytest.raises(StopIteration):
        next(gen)
