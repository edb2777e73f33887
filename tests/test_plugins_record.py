"""record: the frames the run sees written to a new .npy, checked against NumPy's view of the input."""
import os

import numpy as np

from udfhost_test import assert_equal, fixture, main, random_frames, raw_args, run, write_raw

RNG = np.random.default_rng(9)


def record(tmp, data, nav_ndim, params=(), extra=(), expect=0, name="rec.npy"):
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    out = os.path.join(tmp, name)
    args = ["run", "--plugin", "record", "-p", "out=" + out]
    for p in params:
        args += ["-p", p]
    _, err = run(args + [*raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:], data.dtype),
                         *extra, "--overwrite", "-o", os.path.join(tmp, "results"), path], expect=expect)
    return out, err


def binned(frames, crop, b):
    """NumPy reference: crop [y0:y1, x0:x1], then sum b x b blocks, dropping partial ones."""
    y0, x0, y1, x1 = crop
    c = frames[..., y0:y1, x0:x1].astype(np.float64)
    h, w = (c.shape[-2] // b) * b, (c.shape[-1] // b) * b
    c = c[..., :h, :w]
    return c.reshape(c.shape[:-2] + (h // b, b, w // b, b)).sum(axis=(-3, -1))


def test_copies_every_dtype(tmp):
    for dt in ("|u1", "<u2", ">u2", "<i4", ">f4", "<f8"):
        data = random_frames(RNG, (6, 7, 9, 5), dt)
        for threads in ("1", "3"):
            out, _ = record(tmp, data, 2, params=["overwrite=true"],
                            extra=["--threads", threads, "--partition-size", "1K"])
            # The stored values, in native byte order, in nav x sig shape.
            assert_equal(np.load(out), data.astype(data.dtype.newbyteorder("=")),
                         "record %s threads %s" % (dt, threads))
    data = random_frames(RNG, (11, 2, 3, 4), "<i2")
    out, _ = record(tmp, data, 1, name="3d.npy")
    assert_equal(np.load(out), data, "1-D nav, 3-D sig")


def test_roi_crop_bin_dtype(tmp):
    data = random_frames(RNG, (5, 6, 13, 17), "<u2")
    roi = RNG.random((5, 6)) < 0.4
    np.save(os.path.join(tmp, "roi.npy"), roi)
    out, _ = record(tmp, data, 2, extra=["--roi", os.path.join(tmp, "roi.npy")], name="in-roi.npy")
    assert_equal(np.load(out), data[roi], "ROI: the selected frames, in nav order")
    out, _ = record(tmp, data, 2, params=["crop=2,3,11,16"], name="crop.npy")
    assert_equal(np.load(out), data[..., 2:11, 3:16], "crop")
    # Binning sums; float32 by default, rows and columns that do not fill a bin are dropped.
    out, _ = record(tmp, data, 2, params=["crop=1,0,13,17", "bin=3"], name="bin.npy")
    assert_equal(np.load(out), binned(data, (1, 0, 13, 17), 3).astype(np.float32), "crop+bin")
    out, _ = record(tmp, data, 2, params=["bin=2", "dtype=float64"], name="bin64.npy")
    assert_equal(np.load(out), binned(data, (0, 0, 13, 17), 2), "bin, float64")
    # Integer output rounds to nearest and saturates.
    high = np.full((2, 3, 4, 4), 40000, "<u2")
    out, _ = record(tmp, high, 2, params=["bin=2", "dtype=uint16"], name="sat.npy")
    assert_equal(np.load(out), np.full((2, 3, 2, 2), 65535, np.uint16), "saturating uint16")
    out, _ = record(tmp, data, 2, params=["dtype=int8"], name="i8.npy")
    assert_equal(np.load(out), np.clip(data, -128, 127).astype(np.int8), "saturating int8")


def test_with_corrections(tmp):
    data = random_frames(RNG, (4, 5, 8, 6), "<u2")
    dark = RNG.random((8, 6)) * 100
    np.save(os.path.join(tmp, "dark.npy"), dark)
    out, _ = record(tmp, data, 2, extra=["--dark", os.path.join(tmp, "dark.npy")])
    ref = data.astype(np.float32) - dark.astype(np.float32)
    assert_equal(np.load(out), ref, "record after --dark (float32)")


def test_failed_run_leaves_nothing(tmp):
    data = random_frames(RNG, (6, 7, 9, 5), "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    out = os.path.join(tmp, "rec.npy")
    run(["run", "--plugin", "record", "-p", "out=" + out, "--plugin", fixture("fail"),
         "-p", "hook=process_tile", "-p", "partition=2", *raw_args((6, 7), (9, 5), "<u2"),
         "--partition-size", "1K", "-o", os.path.join(tmp, "results"), path], expect=4)
    left = sorted(os.listdir(tmp))
    # The results directory is made (empty) before any data is read.
    assert left == ["results", "scan.raw"] and not os.listdir(os.path.join(tmp, "results")), \
        "a failed run left %s" % left


def test_bad_parameters(tmp):
    data = random_frames(RNG, (3, 4, 6, 8), "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    shape = raw_args((3, 4), (6, 8), "<u2")
    cases = [
        (["out=" + path], "exists"),                       # never replaces the input
        (["out=" + os.path.join(tmp, "x.npy"), "crop=0,0,6"], "expected 4 values"),
        (["out=" + os.path.join(tmp, "x.npy"), "crop=0,0,7,8"], "outside the 6x8 frame"),
        (["out=" + os.path.join(tmp, "x.npy"), "crop=3,0,3,8"], "empty"),
        (["out=" + os.path.join(tmp, "x.npy"), "bin=9"], "larger than"),
        (["out=" + os.path.join(tmp, "x.npy"), "bin=0"], "bin"),
        (["out=" + os.path.join(tmp, "x.npy"), "dtype=float16"], "float16"),
        ([], "out"),
    ]
    before = open(path, "rb").read()
    for params, needle in cases:
        args = ["run", "--plugin", "record"]
        for p in params:
            args += ["-p", p]
        _, err = run(args + [*shape, "-o", os.path.join(tmp, "results"), path], expect=2)
        lines = err.splitlines()
        assert len(lines) == 1 and needle in lines[0], "%s: %r" % (params, err)
    assert open(path, "rb").read() == before, "the input changed"
    assert not [f for f in os.listdir(tmp) if f not in ("scan.raw", "results")], os.listdir(tmp)
    # A directory that does not exist is the plugin's failure, named.
    _, err = run(["run", "--plugin", "record", "-p", "out=" + os.path.join(tmp, "no", "x.npy"),
                  *shape, "-o", os.path.join(tmp, "results"), path], expect=4)
    assert "cannot create" in err, err
    # Crop and bin need 2-D frames.
    flat = random_frames(RNG, (3, 4, 48), "<u2")
    write_raw(path, flat)
    run(["run", "--plugin", "record", "-p", "out=" + os.path.join(tmp, "x.npy"), "-p", "bin=2",
         *raw_args((3, 4), (48,), "<u2"), path], expect=2)


if __name__ == "__main__":
    main([test_copies_every_dtype, test_roi_crop_bin_dtype, test_with_corrections,
          test_failed_run_leaves_nothing, test_bad_parameters])
