"""One file per frame (a directory or a glob): natural order, .npy, TIFF and raw frames, results
equal to NumPy on the stacked frames; a bad file in the middle is named when it is read."""
import os

import numpy as np
import tifffile

from udfhost_test import assert_equal, load, main, random_frames, run

RNG = np.random.default_rng(206)


def sums(tmp, args):
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig", "-p",
         "dtype=float64", *args, "--overwrite", "-o", out])
    return load(out, "sum", "intensity"), load(out, "sumsig", "intensity")


def check(tmp, frames, nav, args, what):
    got_sum, got_sumsig = sums(tmp, args)
    data = frames.reshape(nav + frames.shape[1:])
    nav_axes = tuple(range(len(nav)))
    sig_axes = tuple(range(len(nav), data.ndim))
    assert_equal(got_sum, data.sum(axis=nav_axes, dtype=np.float64), "sum " + what)
    assert_equal(got_sumsig, data.sum(axis=sig_axes, dtype=np.float64), "sumsig " + what)


def test_npy_frames_in_natural_order(tmp):
    frames = random_frames(RNG, (15, 7, 9), "<i2")
    d = os.path.join(tmp, "scan")
    os.mkdir(d)
    for i, f in enumerate(frames):
        np.save(os.path.join(d, "frame_%d.npy" % i), f)   # frame_2 sorts before frame_10
    open(os.path.join(d, ".hidden"), "w").close()
    check(tmp, frames, (15,), [d], "directory of .npy")
    check(tmp, frames, (3, 5), ["--nav-shape", "3,5", os.path.join(d, "frame_*.npy")],
          "glob of .npy, 2-D nav")
    # Zero-padded names sort the same way.
    d2 = os.path.join(tmp, "padded")
    os.mkdir(d2)
    for i, f in enumerate(frames):
        np.save(os.path.join(d2, "img%05d.npy" % i), f)
    check(tmp, frames, (15,), [d2], "zero-padded names")


def test_tiff_and_raw_frames(tmp):
    frames = random_frames(RNG, (11, 6, 8), "<u2")
    d = os.path.join(tmp, "tif")
    os.mkdir(d)
    for i, f in enumerate(frames):
        tifffile.imwrite(os.path.join(d, "f%d.tif" % i), f, compression="zlib" if i % 2 else None)
    check(tmp, frames, (11,), [d], "TIFF frames, some compressed")
    d = os.path.join(tmp, "raw")
    os.mkdir(d)
    for i, f in enumerate(frames):
        with open(os.path.join(d, "f%d.raw" % i), "wb") as fh:
            fh.write(b"HDR!" * 4 + f.astype(">u2").tobytes())
    check(tmp, frames, (11,), ["--dtype", ">u2", "--sig-shape", "6,8", "--offset", "16",
                              "--threads", "3", os.path.join(d, "*.raw")], "raw frames")


def test_bad_files(tmp):
    frames = random_frames(RNG, (6, 4, 5), "<u2")
    d = os.path.join(tmp, "scan")
    os.mkdir(d)
    for i, f in enumerate(frames):
        np.save(os.path.join(d, "f%d.npy" % i), f if i != 4 else f[:3])
    out = os.path.join(tmp, "out")
    _, err = run(["run", "--plugin", "sum", d, "-o", out], expect=3)
    assert len(err.splitlines()) == 1 and "f4.npy" in err and "frame 4" in err, err
    assert not os.path.exists(os.path.join(out, "sum.intensity.npy"))
    _, err = run(["run", "--plugin", "sum", "--nav-shape", "2,2", d, "-o", out], expect=2)
    assert "4 frames" in err and "6 files" in err, err
    _, err = run(["run", "--plugin", "sum", os.path.join(tmp, "nothing*.npy"), "-o", out],
                 expect=3)
    assert "no file matches" in err, err
    # Raw frames need the layout; a short raw frame is named.
    d = os.path.join(tmp, "raw")
    os.mkdir(d)
    for i in range(3):
        with open(os.path.join(d, "f%d.raw" % i), "wb") as fh:
            fh.write(b"\0" * (40 if i != 1 else 39))
    _, err = run(["run", "--plugin", "sum", os.path.join(d, "*.raw"), "-o", out], expect=2)
    assert "needs --sig-shape" in err or "needs --dtype" in err, err
    _, err = run(["run", "--plugin", "sum", "--dtype", "u2", "--sig-shape", "4,5",
                  os.path.join(d, "*.raw"), "-o", out], expect=3)
    assert "f1.raw" in err and "too short" in err, err


if __name__ == "__main__":
    main([test_npy_frames_in_natural_order, test_tiff_and_raw_frames, test_bad_files])
