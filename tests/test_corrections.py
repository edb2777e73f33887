"""Corrections (--dark, --gain, --excluded-pixels) against a NumPy reference of the same arithmetic.

The host corrects in the tile's float type: x = (float(raw) - dark) * gain with dark and gain
rounded to that type, then each excluded pixel becomes the float64 mean of its valid neighbours
(the 8 around it in the last two sig axes that are not excluded), rounded to the type. pick
returns the corrected frame, so it must match the reference bit for bit.
"""
import os

import numpy as np

from udfhost_test import assert_close, assert_equal, load, main, random_frames, raw_args, run, \
    write_raw

RNG = np.random.default_rng(77)


def reference(data, nav_ndim, dark=None, gain=None, excluded=None):
    ft = np.float64 if data.dtype.kind == "f" and data.dtype.itemsize == 8 else np.float32
    x = data.astype(data.dtype.newbyteorder("=")).astype(ft)
    if dark is not None:
        x = x - dark.astype(ft)
    if gain is not None:
        x = x * gain.astype(ft)
    if excluded is not None:
        sig = data.shape[nav_ndim:]
        h, w = (sig[-2], sig[-1]) if len(sig) >= 2 else (1, sig[-1])
        planes = x.reshape(data.shape[:nav_ndim] + (-1, h, w))
        mask = excluded.reshape(-1, h, w)
        patched = planes.copy()
        for pl, y, xx in zip(*np.nonzero(mask)):
            total = np.zeros(planes.shape[:nav_ndim], np.float64)
            count = 0
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xs = y + dy, xx + dx
                    if (dy or dx) and 0 <= yy < h and 0 <= xs < w and not mask[pl, yy, xs]:
                        total = total + planes[..., pl, yy, xs].astype(np.float64)
                        count += 1
            patched[..., pl, y, xx] = (total / count).astype(ft) if count else 0
        x = patched.reshape(x.shape)
    return x


def run_corrected(tmp, data, nav_ndim, at, files, extra=()):
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    args = []
    for opt, arr in files.items():
        f = os.path.join(tmp, opt + ".npy")
        np.save(f, arr)
        args += ["--" + opt, f]
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "pick", "-p", "at=" + ",".join(map(str, at)),
         "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig", "-p", "dtype=float64",
         *raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:], data.dtype), *args, *extra,
         "--overwrite", "-o", out, path])
    return out


def check(tmp, data, nav_ndim, at, dark=None, gain=None, excluded=None, extra=()):
    files = {k: v for k, v in (("dark", dark), ("gain", gain), ("excluded-pixels", excluded))
             if v is not None}
    out = run_corrected(tmp, data, nav_ndim, at, files, extra)
    mask = None
    if excluded is not None:
        sig = data.shape[nav_ndim:]
        if excluded.shape == sig and excluded.dtype == bool or excluded.ndim != 2 \
                or excluded.shape[1] != len(sig):
            mask = excluded != 0
        else:
            mask = np.zeros(sig, bool)
            mask[tuple(excluded.T)] = True
    ref = reference(data, nav_ndim, dark, gain, mask)
    what = "%s %s dark=%s gain=%s excluded=%s" % (data.shape, data.dtype, dark is not None,
                                                   gain is not None, excluded is not None)
    assert_equal(load(out, "pick", "intensity"), ref[at], "pick " + what)
    nav_axes = tuple(range(nav_ndim))
    sig_axes = tuple(range(nav_ndim, data.ndim))
    # float64 sums of the same values in another order.
    assert_close(load(out, "sum", "intensity"), ref.sum(axis=nav_axes, dtype=np.float64),
                 "sum " + what, 1e-12)
    assert_close(load(out, "sumsig", "intensity"), ref.sum(axis=sig_axes, dtype=np.float64),
                 "sumsig " + what, 1e-12)


def test_dark_and_gain(tmp):
    data = random_frames(RNG, (5, 7, 9, 11), "<u2")
    dark = RNG.random((9, 11)) * 50
    gain = RNG.random((9, 11)) + 0.5
    check(tmp, data, 2, (3, 4), dark=dark)
    check(tmp, data, 2, (0, 6), gain=gain)
    check(tmp, data, 2, (4, 0), dark=dark, gain=gain)
    # Maps of other dtypes: integers and float32.
    check(tmp, data, 2, (1, 1), dark=(dark * 3).astype(np.int32), gain=gain.astype(np.float32))


def test_float64_data_in_bands(tmp):
    # 200 x 200 float64 frames reach the plugins in bands of rows: the maps must line up.
    data = random_frames(RNG, (2, 3, 200, 200), ">f8")
    check(tmp, data, 2, (1, 2), dark=RNG.random((200, 200)), gain=RNG.random((200, 200)) + 1)


def test_excluded_pixels(tmp):
    data = random_frames(RNG, (4, 6, 10, 12), "<u2")
    mask = np.zeros((10, 12), bool)
    # Corners, edges, a cluster (neighbours that are excluded themselves do not count) and a
    # pixel whose neighbours are all excluded (it becomes 0).
    mask[0, 0] = mask[9, 11] = mask[0, 5] = mask[4, 0] = True
    mask[5:8, 5:8] = True
    check(tmp, data, 2, (2, 3), excluded=mask)
    check(tmp, data, 2, (3, 5), excluded=mask, dark=RNG.random((10, 12)) * 9,
          extra=["--threads", "3", "--partition-size", "2K"])
    # The same pixels as a coordinate list (K, 2) of integers, and as an integer mask.
    coords = np.argwhere(mask).astype(np.int64)
    check(tmp, data, 2, (1, 1), excluded=coords)
    check(tmp, data, 2, (1, 2), excluded=mask.astype(np.uint8))


def test_other_signal_dimensions(tmp):
    data = random_frames(RNG, (13, 17), "<i2")          # 1-D nav, 1-D signal
    mask = np.zeros(17, bool)
    mask[[0, 7, 8, 16]] = True
    check(tmp, data, 1, (5,), excluded=mask, gain=RNG.random(17) + 1)
    data = random_frames(RNG, (3, 2, 4, 5), "<f4")      # 1-D nav, 3-D signal
    mask = np.zeros((2, 4, 5), bool)
    mask[0, 1, 1] = mask[1, 3, 4] = True
    check(tmp, data, 1, (2,), excluded=mask, dark=RNG.random((2, 4, 5)))


def test_bad_correction_files(tmp):
    data = random_frames(RNG, (3, 4, 5, 6), "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    np.save(os.path.join(tmp, "wrong.npy"), np.zeros((6, 5)))
    np.save(os.path.join(tmp, "floatmask.npy"), np.zeros((5, 6)))
    np.save(os.path.join(tmp, "outside.npy"), np.array([[1, 1], [5, 0]]))
    with open(os.path.join(tmp, "junk.npy"), "wb") as f:
        f.write(b"junk")
    cases = [
        ("--dark", "wrong.npy", "dark frame shape (6,5) does not match the sig shape (5,6)"),
        ("--gain", "wrong.npy", "gain map shape (6,5)"),
        ("--gain", "missing.npy", "missing.npy"),
        ("--dark", "junk.npy", "junk.npy"),
        ("--excluded-pixels", "floatmask.npy", "bool or integer"),
        ("--excluded-pixels", "outside.npy", "outside 0..4"),
        ("--excluded-pixels", "wrong.npy", "bool or integer"),
    ]
    out = os.path.join(tmp, "out")
    for opt, name, needle in cases:
        _, err = run(["run", "--plugin", "sum", *raw_args((3, 4), (5, 6), "<u2"), opt,
                      os.path.join(tmp, name), "-o", out, path], expect=3)
        lines = err.splitlines()
        if len(lines) != 1 or needle not in lines[0] or name not in lines[0]:
            raise AssertionError("%s %s: expected one line naming %s with %r, got %r"
                                 % (opt, name, name, needle, err))
        if os.path.isdir(out) and os.listdir(out):
            raise AssertionError("%s %s: results written: %s" % (opt, name, os.listdir(out)))


if __name__ == "__main__":
    main([test_dark_and_gain, test_float64_data_in_bands, test_excluded_pixels,
          test_other_signal_dimensions, test_bad_correction_files])
