"""--io mmap|read|direct: the three ways of reading mapped-layout data give the same bits, for every
format that uses them, with any threads and partitions."""
import os

import numpy as np
import tifffile

from udfhost_test import main, random_frames, raw_args, run, write_raw

RNG = np.random.default_rng(9090)


def results(tmp, args, io, tag):
    out = os.path.join(tmp, "out-" + tag + "-" + io)
    _, err = run(["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig",
                  "--plugin", "max", "--io", io, "--threads", "3", "--partition-size", "3K",
                  *args, "-o", out], expect=None)
    if "O_DIRECT" in err and io == "direct":
        return None  # e.g. tmpfs: said clearly, exit 2
    assert not err, err
    return {n: open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out))
            if n.endswith(".npy")}


def check_all_modes(tmp, args, tag):
    ref = results(tmp, args, "mmap", tag)
    assert len(ref) == 3, ref.keys()
    for io in ("read", "direct", "auto"):
        got = results(tmp, args, io, tag)
        if got is None:
            print("note: %s: O_DIRECT not supported on this file system" % tag)
            continue
        assert got == ref, "%s: --io %s differs from mmap" % (tag, io)


def test_raw_with_frame_headers(tmp):
    data = random_frames(RNG, (7, 9, 13, 11), ">u2")
    path = os.path.join(tmp, "scan.raw")
    with open(path, "wb") as f:
        f.write(b"H" * 333)
        for frame in data.reshape(63, 13, 11):
            f.write(b"h" * 17 + frame.tobytes() + b"f" * 5)
    check_all_modes(tmp, [*raw_args((7, 9), (13, 11), ">u2", offset=333), "--frame-header",
                          "17", "--frame-footer", "5", path], "raw")


def test_npy_and_tiff(tmp):
    data = random_frames(RNG, (5, 11, 17, 19), "<f4")
    path = os.path.join(tmp, "scan.npy")
    np.save(path, data)
    check_all_modes(tmp, [path], "npy")
    path = os.path.join(tmp, "scan.tif")
    tifffile.imwrite(path, data.reshape(55, 17, 19), photometric="minisblack")
    check_all_modes(tmp, ["--nav-shape", "5,11", path], "tiff")


def test_io_errors(tmp):
    data = random_frames(RNG, (4, 4, 8, 8), "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    _, err = run(["run", "--plugin", "sum", *raw_args((4, 4), (8, 8), "<u2"), "--io", "fast",
                  path], expect=2)
    assert "--io: 'fast' is not auto, mmap, read or direct" in err, err
    out, _ = run(["info", *raw_args((4, 4), (8, 8), "<u2"), "--io", "read", path])
    assert "io: read" in out, out


if __name__ == "__main__":
    main([test_raw_with_frame_headers, test_npy_and_tiff, test_io_errors])
