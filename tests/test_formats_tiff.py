"""TIFF stacks: files written by tifffile (uncompressed, deflate, LZMA, tiled, strips, big-endian,
BigTIFF, ImageJ hyperstacks), summed by udfhost and checked against NumPy and against the same
frames as raw; then bad files, each one line on stderr, the right exit status, no results."""
import json
import os

import numpy as np
import tifffile

from test_errors import OLD_RESULT, check_failure
from udfhost_test import (SRCDIR, assert_close, assert_equal, load, main, random_frames, raw_args,
                          run, write_raw)

RNG = np.random.default_rng(20261129)
NAV, SIG = (7, 9), (13, 11)


def write_tiff(path, data, **kw):
    """A stack of pages (one per frame) by tifffile, grayscale."""
    kw.setdefault("photometric", "minisblack")
    tifffile.imwrite(path, data.reshape((-1,) + data.shape[-2:]), **kw)


def info(path, *args):
    out, _ = run(["info", "--json", *args, path])
    return json.loads(out)


def sums(tmp, path, args, name):
    out = os.path.join(tmp, name)
    run(["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig",
         "-p", "dtype=float64", "--overwrite", "-o", out, *args, path])
    return load(out, "sum", "intensity"), load(out, "sumsig", "intensity"), out


def check_against_numpy_and_raw(tmp, data, path, io, nav_args=()):
    """udfhost's sum and sumsig of the TIFF at path (holding data) against NumPy and raw."""
    nav_ndim = data.ndim - 2
    got_sum, got_sumsig, out = sums(tmp, path, nav_args, "out_tiff")
    acc = np.int64 if data.dtype.kind in "iu" else np.float64
    ref_sum = data.sum(axis=tuple(range(nav_ndim)), dtype=acc).astype(np.float64)
    ref_sumsig = data.sum(axis=(-2, -1), dtype=acc).astype(np.float64)
    what = "%s %s %s" % (os.path.basename(path), data.shape, data.dtype.str)
    if data.dtype.kind in "iu":
        assert_equal(got_sum, ref_sum, "sum " + what)
        assert_equal(got_sumsig, ref_sumsig, "sumsig " + what)
    else:
        assert_close(got_sum, ref_sum, "sum " + what, 1e-11)
        assert_close(got_sumsig, ref_sumsig, "sumsig " + what, 1e-11)
    raw = os.path.join(tmp, "same.raw")
    write_raw(raw, data)
    _, _, out_raw = sums(tmp, raw, raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:],
                                            data.dtype), "out_raw")
    for name in ("sum.intensity.npy", "sumsig.intensity.npy"):
        with open(os.path.join(out, name), "rb") as a, open(os.path.join(out_raw, name), "rb") as b:
            assert a.read() == b.read(), "%s: %s differs from raw" % (what, name)
    got = info(path, *nav_args)
    assert got["format"] == "tiff" and got["io"] == io, (what, got)
    assert got["sig_shape"] == list(data.shape[-2:]) and got["frames"] == data[..., 0, 0].size, got


def test_dtypes_byte_orders_and_layouts(tmp):
    nav = ["--nav-shape", "7,9"]
    cases = [  # dtype, tifffile options, how udfhost reads it
        ("u1", {}, "mmap"),
        ("<u2", {}, "mmap"),
        (">u2", {"byteorder": ">"}, "mmap"),
        ("<i2", {}, "mmap"),
        ("<i4", {"bigtiff": True}, "mmap"),
        (">i4", {"byteorder": ">", "bigtiff": True}, "mmap"),
        ("<u4", {"rowsperstrip": 4}, "mmap"),
        ("<f4", {}, "mmap"),
        (">f8", {"byteorder": ">"}, "mmap"),
        ("<u2", {"compression": "zlib"}, "libtiff"),
        (">i2", {"byteorder": ">", "compression": "zlib", "rowsperstrip": 5}, "libtiff"),
        ("<i4", {"compression": "zlib", "predictor": True}, "libtiff"),
        ("<u2", {"compression": "lzma"}, "libtiff"),
        (">f8", {"byteorder": ">", "compression": "zlib", "bigtiff": True}, "libtiff"),
    ]
    for i, (dt, kw, io) in enumerate(cases):
        data = random_frames(RNG, NAV + SIG, np.dtype(dt).newbyteorder("="))
        path = os.path.join(tmp, "stack%d.tif" % i)
        write_tiff(path, data.astype(dt), **kw)
        check_against_numpy_and_raw(tmp, data, path, io, nav)
    got = info(os.path.join(tmp, "stack2.tif"))
    assert got["byte_order"] == "big" and got["nav_shape"] == [63], got


def test_tiles_and_edges(tmp):
    # 37x21 frames in 16x16 tiles: partial tiles at the right and bottom edges.
    data = random_frames(RNG, (5, 4, 37, 21), "<u2")
    for i, kw in enumerate([{"tile": (16, 16)}, {"tile": (16, 16), "compression": "zlib"}]):
        path = os.path.join(tmp, "tiled%d.tif" % i)
        write_tiff(path, data, **kw)
        check_against_numpy_and_raw(tmp, data, path, "libtiff", ["--nav-shape", "5,4"])


def test_imagej_hyperstack_gives_the_nav_shape(tmp):
    data = random_frames(RNG, (5, 6) + SIG, "<u2")
    # ImageJ axes TZCYX: a 4-D array becomes slices x channels, or frames x slices when named.
    for i, meta in enumerate([{}, {"axes": "TZYX"}]):
        path = os.path.join(tmp, "hyper%d.tif" % i)
        tifffile.imwrite(path, data, imagej=True, metadata=meta)
        assert info(path)["nav_shape"] == [5, 6]
        check_against_numpy_and_raw(tmp, data, path, "mmap")
    # A given --nav-shape wins over ImageJ's.
    assert info(path, "--nav-shape", "30")["nav_shape"] == [30]


def test_imagej_stack_with_one_directory(tmp):
    # ImageJ writes stacks over 4 GiB as one directory followed by all images back to back.
    data = random_frames(RNG, (4,) + SIG, "<i2")
    path = os.path.join(tmp, "big.tif")
    tifffile.imwrite(path, data[0], photometric="minisblack", metadata=None,
                     description="ImageJ=1.54f\nimages=4\nframes=4\nloop=false\n")
    assert tifffile.TiffFile(path).pages[0].dataoffsets[0] + data[0].nbytes == os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(data[1:].tobytes())
    check_against_numpy_and_raw(tmp, data, path, "mmap")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    _, err = run(["info", path], expect=3)
    assert "too short" in err and len(err.splitlines()) == 1, err


def test_single_page_and_detection(tmp):
    data = random_frames(RNG, (1,) + SIG, "<f4")
    path = os.path.join(tmp, "image.tif")
    tifffile.imwrite(path, data[0], photometric="minisblack")
    check_against_numpy_and_raw(tmp, data, path, "mmap")
    assert info(path)["nav_shape"] == [1]
    # By magic number, whatever the name: classic and BigTIFF, both byte orders.
    for i, kw in enumerate([{}, {"byteorder": ">"}, {"bigtiff": True},
                            {"bigtiff": True, "byteorder": ">"}]):
        odd = os.path.join(tmp, "scan%d.dat" % i)
        write_tiff(odd, data, **kw)
        assert info(odd)["format"] == "tiff"


def test_threads_give_identical_bits(tmp):
    data = random_frames(RNG, (11, 13) + SIG, "<f4")
    for kw in ({}, {"compression": "zlib"}):
        path = os.path.join(tmp, "stack.tif")
        write_tiff(path, data, **kw)
        results = []
        for threads in (1, 3):
            out = os.path.join(tmp, "t%d" % threads)
            run(["run", "--plugin", "sum", "--plugin", "sumsig", "--threads", threads,
                 "--partition-size", "8K", "--nav-shape", "11,13", "--overwrite", "-o", out, path])
            # The run record names the thread count; the results must not depend on it.
            results.append([open(os.path.join(out, n), "rb").read()
                            for n in sorted(os.listdir(out)) if n != "udfhost-run.json"])
        assert results[0] == results[1], kw


def test_bad_files(tmp):
    out = os.path.join(tmp, "out")
    os.mkdir(out)  # with an earlier run's results, which a failed run must leave alone
    for name in ("sum.intensity.npy", "fail.sig.npy"):
        with open(os.path.join(out, name), "wb") as f:
            f.write(OLD_RESULT)
    data = random_frames(RNG, (6,) + SIG, "<u2")

    def bad(name, status, *needles, args=()):
        # --overwrite: only the failure keeps the earlier results in place.
        path = os.path.join(tmp, name)
        check_failure(tmp, out, ["run", "--plugin", "sum", "--plugin", "sumsig", "--overwrite",
                                 "-o", out, *args, path], status, path + ": ", *needles)

    # Truncated: the last page's data is cut, its directory is still there.
    for i, kw in enumerate([{}, {"compression": "zlib"}]):
        path = os.path.join(tmp, "cut%d.tif" % i)
        with tifffile.TiffWriter(path) as w:
            for frame in data:
                w.write(frame, photometric="minisblack", contiguous=False, **kw)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 7)
        bad("cut%d.tif" % i, 3, "file too short", "page 5 strip 0")
    # Cut inside page 3's directory.
    ifd = tifffile.TiffFile(path).pages[3].offset
    with open(path, "r+b") as f:
        f.truncate(ifd + 5)
    bad("cut1.tif", 3, "page 3: cannot read its directory (file truncated or corrupt)")
    with open(os.path.join(tmp, "junk.tif"), "wb") as f:
        f.write(b"not a tiff at all")
    bad("junk.tif", 3, "not a readable TIFF")

    with tifffile.TiffWriter(os.path.join(tmp, "mixed.tif")) as w:
        for shape, dt in (((13, 11), "u2"), ((13, 11), "u2"), ((13, 12), "u2")):
            w.write(np.zeros(shape, dt), photometric="minisblack")
    bad("mixed.tif", 3, "page 2 is 12x13 uint16, page 0 is 11x13 uint16")
    with tifffile.TiffWriter(os.path.join(tmp, "mixed_dtype.tif")) as w:
        for dt in ("u2", "i2"):
            w.write(np.zeros(SIG, dt), photometric="minisblack")
    bad("mixed_dtype.tif", 3, "page 1 is 11x13 int16")
    tifffile.imwrite(os.path.join(tmp, "rgb.tif"), np.zeros((3, 5, 7, 3), "u1"),
                     photometric="rgb")
    bad("rgb.tif", 3, "page 0 has 3 samples per pixel")
    tifffile.imwrite(os.path.join(tmp, "bits1.tif"), np.zeros((3, 5, 8), bool))
    bad("bits1.tif", 3, "page 0 has 1-bit samples")
    write_tiff(os.path.join(tmp, "bits12.tif"), data)
    with tifffile.TiffFile(os.path.join(tmp, "bits12.tif"), mode="r+b") as t:
        t.pages[0].tags["BitsPerSample"].overwrite(12)
    bad("bits12.tif", 3, "12-bit samples")

    # Absurd header values: a zero width; a strip offset far past the end of the file.
    write_tiff(os.path.join(tmp, "zero.tif"), data)
    with tifffile.TiffFile(os.path.join(tmp, "zero.tif"), mode="r+b") as t:
        t.pages[0].tags["ImageWidth"].overwrite(0)
    bad("zero.tif", 3)
    write_tiff(os.path.join(tmp, "far.tif"), data, bigtiff=True)
    with tifffile.TiffFile(os.path.join(tmp, "far.tif"), mode="r+b") as t:
        t.pages[3].tags["StripOffsets"].overwrite(2**63 - 5)
    bad("far.tif", 3, "file too short", "page 3")
    write_tiff(os.path.join(tmp, "huge.tif"), data, compression="zlib", bigtiff=True)
    with tifffile.TiffFile(os.path.join(tmp, "huge.tif"), mode="r+b") as t:
        t.pages[0].tags["ImageWidth"].overwrite(2**32 - 1)
        t.pages[0].tags["ImageLength"].overwrite(2**32 - 1)
    bad("huge.tif", 3)

    # Corrupt deflate data inside page 4's strip: an error at read naming the frame.
    path = os.path.join(tmp, "corrupt.tif")
    write_tiff(path, data, compression="zlib")
    page = tifffile.TiffFile(path).pages[4]
    start, n = page.dataoffsets[0], page.databytecounts[0]
    with open(path, "r+b") as f:
        f.seek(start + n // 3)
        chunk = f.read(16)
        f.seek(start + n // 3)
        f.write(bytes(b ^ 0x5A for b in chunk))
    bad("corrupt.tif", 3, "frame 4: ")
    bad("corrupt.tif", 3, "frame 4: ", args=["--threads", "3", "--partition-size", "1K"])

    good = os.path.join(tmp, "good.tif")
    write_tiff(good, data)
    bad("good.tif", 2, "--nav-shape 2,4", "6 frames", args=["--nav-shape", "2,4"])
    bad("good.tif", 2, "--sig-shape 12,12", "13,11", args=["--sig-shape", "12,12"])
    bad("good.tif", 2, "--dtype float32", "uint16", args=["--dtype", "float32"])
    # Reshaping frames that agree in size is fine.
    got = info(good, "--nav-shape", "2,3", "--sig-shape", "11,13", "--dtype", "uint16")
    assert got["nav_shape"] == [2, 3] and got["sig_shape"] == [11, 13], got


def test_tile_claims_are_bounded(tmp):
    """Found by fuzz_dataset: a 920-byte file whose tiles claim 4 GiB each. The tile buffer must
    not grow with the claim; the frame is refused (4 GiB would pass under a generous ulimit)."""
    path = os.path.join(SRCDIR, "tests", "fuzz", "corpus", "fuzz_dataset", "oom-tiff-tile-claim")
    out = os.path.join(tmp, "out")
    _, err = run(["run", "--plugin", "sum", "-o", out, path], expect=3)
    assert "frame 0: tiles of 268435472x16 are far larger than the 2818064x16 image" in err, err
    assert len(err.splitlines()) == 1 and not os.listdir(out), err


if __name__ == "__main__":
    main([test_dtypes_byte_orders_and_layouts, test_tiles_and_edges,
          test_imagej_hyperstack_gives_the_nav_shape, test_imagej_stack_with_one_directory,
          test_single_page_and_detection, test_threads_give_identical_bits, test_bad_files,
          test_tile_claims_are_bounded])
