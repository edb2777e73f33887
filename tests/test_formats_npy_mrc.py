"""NumPy .npy and MRC datasets: fixtures written by NumPy and by the mrcfile library at test time,
opened without --format, summed and checked against NumPy and against the same data as raw; then
bad files and flags that disagree with the file: one line on stderr, the exit status, no results.
"""
import hashlib
import os
import struct

import mrcfile
import numpy as np

from udfhost_test import (assert_close, assert_equal, load, main, random_frames, raw_args, run,
                          write_raw)

RNG = np.random.default_rng(20261129)
NAV, SIG = (7, 9), (13, 11)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_sums(tmp, name, path, args=(), threads=2):
    """sum and sumsig in float64 over path; returns (sum, sumsig, sha256 of both result files)."""
    out = os.path.join(tmp, name)
    run(["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig",
         "-p", "dtype=float64", "--threads", threads, "--overwrite", "-o", out, *args, path])
    files = [os.path.join(out, f) for f in ("sum.intensity.npy", "sumsig.intensity.npy")]
    return load(out, "sum", "intensity"), load(out, "sumsig", "intensity"), \
        [digest(f) for f in files]


def check_against_numpy_and_raw(tmp, path, data, nav_ndim, args=()):
    """Results of path match NumPy on data (nav = leading nav_ndim axes) and, byte for byte, the
    results of the same bytes written as raw; --threads 1 and 3 give identical files."""
    got_sum, got_sumsig, files = run_sums(tmp, "out", path, args)
    nav_axes, sig_axes = tuple(range(nav_ndim)), tuple(range(nav_ndim, data.ndim))
    what = "%s %s" % (os.path.basename(path), data.dtype.str)
    if data.dtype.kind in "iu":
        # float64 holds these integer sums exactly, however they are added up.
        assert_equal(got_sum, data.sum(axis=nav_axes, dtype=np.int64).astype(np.float64),
                     "sum " + what)
        assert_equal(got_sumsig, data.sum(axis=sig_axes, dtype=np.int64).astype(np.float64),
                     "sumsig " + what)
    else:
        f64 = data.astype(np.float64)
        assert_close(got_sum, f64.sum(axis=nav_axes), "sum " + what, 1e-11)
        assert_close(got_sumsig, f64.sum(axis=sig_axes), "sumsig " + what, 1e-11)
    raw = os.path.join(tmp, "same.raw")
    write_raw(raw, data)
    _, _, raw_files = run_sums(tmp, "raw", raw,
                               raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:], data.dtype))
    assert raw_files == files, "%s: results differ from the same data as raw" % what
    for threads in (1, 3):
        _, _, t_files = run_sums(tmp, "t%d" % threads, path, args, threads)
        assert t_files == files, "%s: --threads %d gives different results" % (what, threads)


def check_failure(tmp, args, status, *needles):
    """udfhost run fails with status and one line 'udfhost: ...' containing the needles; no
    result files appear and the input files stay as they were."""
    inputs = {p: digest(os.path.join(tmp, p)) for p in os.listdir(tmp)
              if os.path.isfile(os.path.join(tmp, p))}
    out = os.path.join(tmp, "fail-out")
    _, err = run(["run", "--plugin", "sum", "-o", out, *args], expect=status, cwd=tmp)
    lines = err.splitlines()
    what = "udfhost %s" % " ".join(map(str, args))
    if len(lines) != 1 or not lines[0].startswith("udfhost: "):
        raise AssertionError("%s: expected one line 'udfhost: ...' on stderr, got %r" % (what, err))
    for needle in needles:
        if needle not in lines[0]:
            raise AssertionError("%s: message %r does not mention %r" % (what, lines[0], needle))
    if os.path.isdir(out) and os.listdir(out):
        raise AssertionError("%s: wrote %s" % (what, os.listdir(out)))
    for p, h in inputs.items():
        assert digest(os.path.join(tmp, p)) == h, "%s: changed input %s" % (what, p)


def info(path, *args):
    """udfhost info's 'key: value' lines as a dict."""
    out, _ = run(["info", *args, path])
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


# --- NumPy .npy ------------------------------------------------------------------------------


def write_npy(path, data, version=None):
    """np.save, or np.lib.format.write_array with an explicit format version."""
    with open(path, "wb") as f:
        if version is None:
            np.save(f, data)
        else:
            np.lib.format.write_array(f, data, version=version)


def test_npy_versions_and_dtypes(tmp):
    cases = [(">u2", None), ("<i2", (2, 0)), ("|u1", (3, 0)), ("<f4", None), (">f8", (2, 0)),
             ("<u4", (3, 0)), ("|i1", None), (">i4", (1, 0))]
    for dt, version in cases:
        data = random_frames(RNG, NAV + SIG, dt)
        path = os.path.join(tmp, "scan.npy")
        write_npy(path, data, version)
        with open(path, "rb") as f:
            assert f.read(7)[6] == (version or (1, 0))[0], "fixture has the wrong version"
        got = info(path)
        assert got["format"] == "npy" and got["io"] == "mmap", got
        assert got["nav shape"] == "7,9" and got["sig shape"] == "13,11", got
        order = "none" if np.dtype(dt).itemsize == 1 else "big" if dt[0] == ">" else "little"
        assert got["byte order"] == order, (dt, got)
        check_against_numpy_and_raw(tmp, path, data, 2)


def test_npy_detected_by_magic_and_extension(tmp):
    data = random_frames(RNG, (5, 3, 4), "<u2")
    path = os.path.join(tmp, "scan.bin")  # a raw-looking name: the magic decides
    write_npy(path, data)
    assert info(path)["format"] == "npy"
    check_against_numpy_and_raw(tmp, path, data, 1)


def test_npy_sig_dims_and_single_frame(tmp):
    path = os.path.join(tmp, "scan.npy")
    # One frame: nav (1,).
    frame = random_frames(RNG, SIG, "<u2")
    write_npy(path, frame)
    got = info(path)
    assert got["nav shape"] == "1" and got["sig shape"] == "13,11", got
    check_against_numpy_and_raw(tmp, path, frame[np.newaxis], 1)
    # 3-D nav, 2-D sig; then the same file with --sig-dims 1 and 3.
    data = random_frames(RNG, (3, 4, 5, 6, 7), ">i2")
    write_npy(path, data)
    assert info(path)["nav shape"] == "3,4,5"
    check_against_numpy_and_raw(tmp, path, data, 3)
    got = info(path, "--sig-dims", 3)
    assert got["nav shape"] == "3,4" and got["sig shape"] == "5,6,7", got
    check_against_numpy_and_raw(tmp, path, data, 2, ["--sig-dims", 3])
    check_against_numpy_and_raw(tmp, path, data, 4, ["--sig-dims", 1])


def test_npy_user_shapes_reshape(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = os.path.join(tmp, "scan.npy")
    write_npy(path, data)
    flat = data.reshape(63, 143)
    check_against_numpy_and_raw(tmp, path, flat, 1,
                                ["--nav-shape", "63", "--sig-shape", "143", "--dtype", "uint16"])
    # 7-D: five scan dims are too many unless --nav-shape flattens them.
    data7 = random_frames(RNG, (2, 3, 2, 2, 1, 3, 4), "<u2")
    write_npy(path, data7)
    check_failure(tmp, [path], 3, path, "5 scan dimensions")
    check_against_numpy_and_raw(tmp, path, data7.reshape(6, 4, 3, 4), 2, ["--nav-shape", "6,4"])


def npy_bytes(header_dict, data=b"", version=1):
    """A hand-made .npy: magic, version, padded header, data."""
    lead = 10 if version == 1 else 12
    text = header_dict.encode("latin1")
    pad = (-(lead + len(text) + 1)) % 64
    text += b" " * pad + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + data


def test_npy_bad_input(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    good = os.path.join(tmp, "good.npy")
    write_npy(good, data)
    with open(good, "rb") as f:
        blob = f.read()

    def bad(name, content, status, *needles, args=()):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(content)
        check_failure(tmp, [*args, path], status, path, *needles)

    bad("short.npy", blob[:-1], 3, "file too short")
    bad("header.npy", blob[:60], 3, "truncated header")
    bad("preamble.npy", blob[:9], 3, "truncated preamble")
    bad("huge.npy", npy_bytes("{'descr': '<u2', 'fortran_order': False, "
                              "'shape': (4294967296, 4294967296, 16, 16), }"), 3, "overflow")
    bad("big.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                             "'shape': (100000, 100000, 64, 64), }"), 3, "file too short")
    bad("hlen.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f" + b" " * 100, 3, "header length")
    bad("version.npy", b"\x93NUMPY\x04\x00" + blob[8:], 3, "version 4.0")
    path = os.path.join(tmp, "fortran.npy")
    np.save(path, np.asfortranarray(data))
    check_failure(tmp, [path], 3, path + ": Fortran-order arrays are not supported for datasets; "
                  "save a C-ordered copy")
    path = os.path.join(tmp, "int64.npy")
    np.save(path, data.astype(np.int64))
    check_failure(tmp, [path], 3, path, "int64", "not supported")
    path = os.path.join(tmp, "struct.npy")
    np.save(path, np.zeros((3, 4, 4), dtype=[("a", "<u2")]))
    check_failure(tmp, [path], 3, path, "structured")
    path = os.path.join(tmp, "vector.npy")
    np.save(path, np.zeros(10, "<u2"))
    check_failure(tmp, [path], 3, path, "(10)", "sig-dims")
    path = os.path.join(tmp, "empty.npy")
    np.save(path, np.zeros((0, 4, 4), "<u2"))
    check_failure(tmp, [path], 3, path, "(0,4,4)")

    check_failure(tmp, ["--nav-shape", "8,8", good], 2, good, "--nav-shape 8,8", "7,9")
    check_failure(tmp, ["--sig-shape", "11,11", good], 2, good, "--sig-shape 11,11", "13,11")
    check_failure(tmp, ["--dtype", "float32", good], 2, good, "--dtype float32", "uint16")


# --- MRC ---------------------------------------------------------------------------------------


def write_mrc(path, data, ext_header=None):
    """mrcfile.new; a big-endian data dtype makes mrcfile write a big-endian file."""
    with mrcfile.new(path, data, overwrite=True) as m:
        if ext_header is not None:
            m.set_extended_header(ext_header)


def test_mrc_modes_and_byte_orders(tmp):
    nz = NAV[0] * NAV[1]
    cases = [("i1", 0, None), ("<i2", 1, None), ("<f4", 2, None), ("<u2", 6, None),
             (">u2", 6, None), (">f4", 2, None), ("<i2", 1, np.zeros(5, dtype=[("a", "<i4")]))]
    for dt, mode, ext in cases:
        data = random_frames(RNG, (nz,) + SIG, dt)
        path = os.path.join(tmp, "stack.mrc")
        write_mrc(path, data, ext)
        with mrcfile.open(path) as m:  # the fixture is what we think it is
            assert int(m.header.mode) == mode and m.data.dtype == np.dtype(dt), (dt, m.data.dtype)
            assert int(m.header.nsymbt) == (0 if ext is None else 20)
        got = info(path)
        assert got["format"] == "mrc" and got["io"] == "mmap", got
        assert got["nav shape"] == str(nz) and got["sig shape"] == "13,11", got
        order = "none" if np.dtype(dt).itemsize == 1 else "big" if dt[0] == ">" else "little"
        assert got["byte order"] == order, (dt, got)
        check_against_numpy_and_raw(tmp, path, data, 1)
        # --nav-shape lays the scan grid over the sections.
        check_against_numpy_and_raw(tmp, path, data.reshape(NAV + SIG), 2,
                                    ["--nav-shape", "7,9"])


def test_mrc_detection_and_old_files(tmp):
    data = random_frames(RNG, (11,) + SIG, "<f4")
    path = os.path.join(tmp, "stack.mrc")
    write_mrc(path, data)
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    # 'MAP ' decides, whatever the name.
    other = os.path.join(tmp, "stack.data")
    with open(other, "wb") as f:
        f.write(blob)
    assert info(other)["format"] == "mrc"
    check_against_numpy_and_raw(tmp, other, data, 1)
    # An older file without 'MAP ' and machine stamp: the .mrcs name and exact sizes suffice.
    blob[208:216] = bytes(8)
    old = os.path.join(tmp, "old.mrcs")
    with open(old, "wb") as f:
        f.write(blob)
    check_against_numpy_and_raw(tmp, old, data, 1)
    old_dat = os.path.join(tmp, "old.dat")
    os.rename(old, old_dat)
    check_against_numpy_and_raw(tmp, old_dat, data, 1, ["--format", "mrc"])
    # Mode 0 is int8 (MRC2014, mrcfile); --dtype uint8 reads unsigned bytes of older writers.
    u8 = random_frames(RNG, (6, 5, 4), "u1")
    path = os.path.join(tmp, "bytes.mrc")
    write_mrc(path, u8.view(np.int8))
    assert info(path)["dtype"] == "int8"
    check_against_numpy_and_raw(tmp, path, u8.view(np.int8), 1)
    check_against_numpy_and_raw(tmp, path, u8, 1, ["--dtype", "uint8"])


def mrc_header(nx, ny, nz, mode, nsymbt=0, order="<", magic=b"MAP "):
    """A 1024-byte MRC2014 header packed by hand (struct), independent of mrcfile."""
    h = bytearray(1024)
    struct.pack_into(order + "4i", h, 0, nx, ny, nz, mode)
    struct.pack_into(order + "i", h, 92, nsymbt)
    h[208:212] = magic
    h[212:214] = b"\x44\x44" if order == "<" else b"\x11\x11"
    return bytes(h)


def test_mrc_hand_packed_big_endian(tmp):
    data = random_frames(RNG, (10, 9, 8), ">i2")
    path = os.path.join(tmp, "be.mrc")
    with open(path, "wb") as f:
        f.write(mrc_header(8, 9, 10, 1, 100, ">") + b"\x55" * 100 + data.tobytes())
    with mrcfile.open(path) as m:
        assert_equal(m.data, data, "mrcfile reads the hand-packed file")
    check_against_numpy_and_raw(tmp, path, data, 1)


def test_mrc_bad_input(tmp):
    data = random_frames(RNG, (6, 5, 4), "<f4")
    good = os.path.join(tmp, "good.mrc")
    write_mrc(good, data)
    with open(good, "rb") as f:
        blob = f.read()

    def bad(name, content, status, *needles, args=()):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(content)
        check_failure(tmp, [*args, path], status, path, *needles)

    big = 2**31 - 1
    bad("short.mrc", blob[:-1], 3, "file too short")
    bad("header.mrc", blob[:500], 3, "file too short", "1024")
    bad("overflow.mrc", mrc_header(big, big, big, 2) + bytes(64), 3, "overflows 64 bits")
    bad("huge.mrc", mrc_header(65536, 65536, 65536, 2) + bytes(64), 3, "file too short")
    bad("negative.mrc", mrc_header(4, -5, 6, 2), 3, "NY is -5")
    bad("zero.mrc", mrc_header(4, 5, 0, 2), 3, "NZ is 0")
    bad("mode.mrc", mrc_header(4, 5, 6, 5) + bytes(480), 3, "unknown MODE 5")
    bad("complex.mrc", mrc_header(4, 5, 6, 4) + bytes(960), 3, "MODE 4", "not supported")
    bad("half.mrc", mrc_header(4, 5, 6, 12) + bytes(240), 3, "MODE 12", "float16",
        "not supported")
    bad("nsymbt.mrc", mrc_header(4, 5, 6, 2, 5000) + bytes(480), 3, "NSYMBT", "5000")
    bad("negsym.mrc", mrc_header(4, 5, 6, 2, -8) + bytes(480), 3, "NSYMBT", "-8")
    bad("nomagic.mrc", mrc_header(4, 5, 6, 2, magic=bytes(4)) + bytes(479), 3, "MAP ",
        "not an MRC file")
    # Without 'MAP ' and without the name, --format mrc is needed; then the sizes decide.
    bad("nomagic.dat", mrc_header(4, 5, 6, 2, magic=bytes(4)) + bytes(480), 2, "raw format")
    check_failure(tmp, ["--format", "mrc", os.path.join(tmp, "header.mrc")], 3, "too short")

    check_failure(tmp, ["--nav-shape", "4,2", good], 2, good, "--nav-shape 4,2", "6 frames")
    check_failure(tmp, ["--sig-shape", "21", good], 2, good, "--sig-shape 21", "5,4")
    check_failure(tmp, ["--dtype", "int16", good], 2, good, "--dtype int16", "MODE 2")
    check_failure(tmp, ["--dtype", "uint8", good], 2, good, "--dtype uint8")


if __name__ == "__main__":
    main([test_npy_versions_and_dtypes, test_npy_detected_by_magic_and_extension,
          test_npy_sig_dims_and_single_frame, test_npy_user_shapes_reshape, test_npy_bad_input,
          test_mrc_modes_and_byte_orders, test_mrc_detection_and_old_files,
          test_mrc_hand_packed_big_endian, test_mrc_bad_input])
