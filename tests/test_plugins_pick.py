"""pick: the frame at given nav coordinates, bit for bit as NumPy indexes it; reads one frame."""
import os
import subprocess

import numpy as np

from udfhost_test import (UDFHOST, assert_equal, load, main, random_frames, raw_args, run,
                          write_raw)

RNG = np.random.default_rng(4242)


def pick(tmp, data, nav_ndim, at, extra=(), threads=2):
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    out = os.path.join(tmp, "out")
    _, err = run(["run", "--plugin", "pick", "-p", "at=" + ",".join(map(str, at)), *extra,
                  *raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:], data.dtype),
                  "--threads", threads, "-v", "--overwrite", "-o", out, path])
    return out, err


def test_dtypes_and_positions(tmp):
    for dt in ("|u1", "<u2", ">u2", "<i4", ">f4", "<f8"):
        data = random_frames(RNG, (9, 13, 7, 5), dt)
        for at in ((0, 0), (8, 12), (4, 7)):
            out, _ = pick(tmp, data, 2, at)
            # The stored dtype in native byte order, the exact values.
            assert_equal(load(out, "pick", "intensity"), data[at].astype(data.dtype.newbyteorder("=")),
                         "pick %s at %s" % (dt, at))


def test_nav_and_sig_dimensions(tmp):
    data = random_frames(RNG, (31, 6), "<u2")
    out, _ = pick(tmp, data, 1, (30,))
    assert_equal(load(out, "pick", "intensity"), data[30], "1-D nav, 1-D sig")
    # Frames of 320 KB reach the plugin in bands of rows (tiles of part of a frame).
    data = random_frames(RNG, (3, 4, 200, 200), ">f8")
    out, _ = pick(tmp, data, 2, (2, 1))
    assert_equal(load(out, "pick", "intensity"), data[2, 1].astype("=f8"), "frames in bands")
    data = random_frames(RNG, (3, 4, 5, 2, 3, 7), "<i2")
    out, _ = pick(tmp, data, 3, (2, 1, 4))
    assert_equal(load(out, "pick", "intensity"), data[2, 1, 4], "3-D nav, 3-D sig")


def test_reads_only_the_picked_frame(tmp):
    data = random_frames(RNG, (11, 17, 8, 8), "<u2")
    for threads in (1, 2, 3):
        out, err = pick(tmp, data, 2, (5, 9), extra=["--partition-size", "1K"], threads=threads)
        assert_equal(load(out, "pick", "intensity"), data[5, 9], "pick with small partitions")
        if "processed 1 frames" not in err:
            raise AssertionError("pick alone should process one frame; -v said: %r" % err)
    # A sparse 128 GiB file: reading all of it would take minutes, one frame takes nothing.
    path = os.path.join(tmp, "huge.raw")
    with open(path, "wb") as f:
        f.truncate(1024 * 1024 * 256 * 256 * 2)
    p = subprocess.run([UDFHOST, "run", "--plugin", "pick", "-p", "at=1000,3",
                        *raw_args((1024, 1024), (256, 256), "<u2"), "-o", tmp, path],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("pick on a sparse file failed: %s" % p.stderr)
    assert_equal(load(tmp, "pick", "intensity"), np.zeros((256, 256), np.uint16), "sparse pick")


def test_with_other_plugins_and_roi(tmp):
    data = random_frames(RNG, (7, 10, 6, 9), "<u2")
    roi = np.zeros((7, 10), bool)
    roi[2:5, 3:8] = True
    np.save(os.path.join(tmp, "roi.npy"), roi)
    out, err = pick(tmp, data, 2, (3, 4), extra=["--plugin", "sum", "-p", "dtype=float64",
                                                 "--roi", os.path.join(tmp, "roi.npy")])
    assert_equal(load(out, "pick", "intensity"), data[3, 4], "pick beside sum with ROI")
    # sum still sees the whole ROI: pick's selection narrows nothing when another plugin runs.
    assert_equal(load(out, "sum", "intensity"), data[roi].sum(axis=0, dtype=np.int64).astype(
        np.float64), "sum beside pick")
    if "processed %d frames" % roi.sum() not in err:
        raise AssertionError("expected the ROI's %d frames to be processed: %r" % (roi.sum(), err))


def test_bad_parameters(tmp):
    data = random_frames(RNG, (4, 5, 3, 3), "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    np.save(os.path.join(tmp, "roi.npy"), np.eye(4, 5, dtype=bool))
    shape = raw_args((4, 5), (3, 3), "<u2")
    cases = [
        ([], 2, "at"),                                  # required
        (["-p", "at=1,x"], 2, "at"),                   # not integers
        (["-p", "at=1"], 2, "2 dimensions"),                # refused by the plugin before
        (["-p", "at=1,2,3"], 2, "2 dimensions"),            # any data is read: usage errors
        (["-p", "at=4,0"], 2, "outside 0..3"),
        (["-p", "at=0,-1"], 2, "outside 0..4"),
        (["-p", "at=0,1", "--roi", os.path.join(tmp, "roi.npy")], 2, "not in the ROI"),
    ]
    for args, status, needle in cases:
        out = os.path.join(tmp, "out")
        _, err = run(["run", "--plugin", "pick", *args, *shape, "-o", out, path], expect=status)
        lines = err.splitlines()
        if len(lines) != 1 or needle not in lines[0] or not lines[0].startswith("udfhost: "):
            raise AssertionError("pick %s: expected one line naming %r, got %r" % (args, needle, err))
        if os.path.exists(os.path.join(out, "pick.intensity.npy")):
            raise AssertionError("pick %s: a failed run wrote a result" % args)


if __name__ == "__main__":
    main([test_dtypes_and_positions, test_nav_and_sig_dimensions, test_reads_only_the_picked_frame,
          test_with_other_plugins_and_roi, test_bad_parameters])
