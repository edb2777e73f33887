"""Array files the host reads whole (masks, ROI, dark and gain): TIFF written by tifffile, in
strips and tiles, compressed and not, must give the same results as the same array in .npy."""
import os

import numpy as np
import tifffile

from udfhost_test import assert_equal, load, main, random_frames, raw_args, run, write_raw

RNG = np.random.default_rng(31)
NAV, SIG = (6, 7), (20, 24)


def setup(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    return data, path


def masks_result(tmp, path, mask_file, extra=()):
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "masks", "-p", "file=" + mask_file, "-p", "dtype=float64",
         *raw_args(NAV, SIG, "<u2"), *extra, "--overwrite", "-o", out, path])
    return load(out, "masks", "intensity")


def test_tiff_mask_stacks(tmp):
    data, path = setup(tmp)
    stack = (RNG.random((3,) + SIG) * 4).astype(np.float32)
    ref = np.einsum("abyx,nyx->abn", data.astype(np.float64), stack.astype(np.float64))
    variants = {
        "plain": {},
        "deflate": {"compression": "zlib"},
        "tiled": {"tile": (16, 16)},
        "tiled-deflate": {"tile": (16, 16), "compression": "zlib"},
        "bigendian": {"byteorder": ">"},
        "strips": {"rowsperstrip": 3},
    }
    for name, kw in variants.items():
        f = os.path.join(tmp, name + ".tif")
        # minisblack: three pages, not one planar RGB image (tifffile would guess RGB for 3).
        tifffile.imwrite(f, stack, photometric="minisblack", **kw)
        got = masks_result(tmp, path, f)
        # float64 dot products of float32 masks with integers: exact up to summation order.
        np.testing.assert_allclose(got, ref, rtol=1e-12, err_msg="TIFF masks, " + name)
    # One page is one mask; integer pages work too.
    f = os.path.join(tmp, "one.tif")
    tifffile.imwrite(f, (stack[0] > 2).astype(np.uint8))
    got = masks_result(tmp, path, f)
    ref1 = np.einsum("abyx,yx->ab", data.astype(np.float64), (stack[0] > 2).astype(np.float64))
    ref1 = ref1[..., np.newaxis]  # masks always has the mask axis, here of length 1
    assert_equal(got, ref1, "one-page uint8 TIFF mask")


def test_tiff_roi_dark_gain(tmp):
    data, path = setup(tmp)
    roi = RNG.random(NAV) < 0.5
    dark = (RNG.random(SIG) * 30).astype(np.float32)
    gain = (RNG.random(SIG) + 0.5).astype(np.float32)
    results = {}
    for kind in ("npy", "tif"):
        files = {}
        for name, arr in (("roi", roi.astype(np.uint8)), ("dark", dark), ("gain", gain)):
            f = os.path.join(tmp, "%s.%s" % (name, kind))
            np.save(f, arr) if kind == "npy" else tifffile.imwrite(f, arr, compression="zlib")
            files[name] = f[:-4] + ".npy" if kind == "npy" else f
        out = os.path.join(tmp, "out-" + kind)
        run(["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig",
             *raw_args(NAV, SIG, "<u2"), "--roi", files["roi"], "--dark", files["dark"],
             "--gain", files["gain"], "-o", out, path])
        results[kind] = (load(out, "sum", "intensity"), load(out, "sumsig", "intensity"))
    assert_equal(results["tif"][0], results["npy"][0], "sum with TIFF vs npy ROI/dark/gain")
    assert_equal(results["tif"][1], results["npy"][1], "sumsig with TIFF vs npy ROI/dark/gain")
    ref = ((data.astype(np.float32) - dark) * gain)[roi].sum(axis=0, dtype=np.float64)
    np.testing.assert_allclose(results["tif"][0], ref, rtol=1e-12)


def test_bad_tiffs(tmp):
    data, path = setup(tmp)
    good = os.path.join(tmp, "good.tif")
    tifffile.imwrite(good, np.ones((2,) + SIG, np.float32), compression="zlib")
    raw = open(good, "rb").read()
    cases = {
        "truncated.tif": raw[: len(raw) // 2],
        "header-only.tif": raw[:8],
    }
    for name, content in cases.items():
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(content)
    tifffile.imwrite(os.path.join(tmp, "rgb.tif"), np.zeros(SIG + (3,), np.uint8),
                     photometric="rgb")
    tifffile.imwrite(os.path.join(tmp, "mixed.tif"), np.zeros(SIG, np.uint16))
    tifffile.imwrite(os.path.join(tmp, "mixed.tif"), np.zeros((5, 5), np.uint16), append=True)
    for name, needle in (("truncated.tif", "truncated.tif"), ("header-only.tif", "header-only"),
                         ("rgb.tif", "3 samples"), ("mixed.tif", "mixed.tif")):
        f = os.path.join(tmp, name)
        _, err = run(["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"), "--dark", f,
                      "-o", os.path.join(tmp, "out"), path], expect=3)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("udfhost: ") and needle in lines[0], \
            "%s: expected one line naming %r, got %r" % (name, needle, err)
        # Through a plugin (load_array) the same file is a usage error of its parameter.
        _, err = run(["run", "--plugin", "masks", "-p", "file=" + f, *raw_args(NAV, SIG, "<u2"),
                      "-o", os.path.join(tmp, "out"), path], expect=2)
        assert len(err.splitlines()) == 1 and name in err, err


if __name__ == "__main__":
    main([test_tiff_mask_stacks, test_tiff_roi_dark_gain, test_bad_tiffs])
