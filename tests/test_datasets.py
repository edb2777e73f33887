"""Dataset handling common to every format: detection, raw without a nav shape, --sync-offset,
.ini descriptors and `udfhost info`, checked against NumPy on the same bytes."""
import json
import os

import numpy as np

from udfhost_test import assert_equal, load, main, random_frames, raw_args, run, write_raw

RNG = np.random.default_rng(5150)


def sums(tmp, args, out="out"):
    out = os.path.join(tmp, out)
    run(["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig", "-p",
         "dtype=float64", *args, "--overwrite", "-o", out])
    return load(out, "sum", "intensity"), load(out, "sumsig", "intensity")


def test_raw_detection_and_default_nav(tmp):
    data = random_frames(RNG, (23, 9, 7), "<u2")
    path = os.path.join(tmp, "scan.bin")
    write_raw(path, data)
    # No --format (the .bin ending and --dtype say raw), no --nav-shape (every whole frame).
    got_sum, got_sumsig = sums(tmp, ["--dtype", "<u2", "--sig-shape", "9,7", path])
    assert_equal(got_sum, data.sum(axis=0, dtype=np.int64).astype(np.float64), "sum, 1-D nav")
    assert_equal(got_sumsig, data.sum(axis=(1, 2), dtype=np.int64).astype(np.float64),
                 "sumsig, 1-D nav")
    # A trailing partial frame is not a frame.
    with open(path, "ab") as f:
        f.write(b"\0" * 50)
    got_sum, _ = sums(tmp, ["--dtype", "<u2", "--sig-shape", "9,7", path])
    assert_equal(got_sum, data.sum(axis=0, dtype=np.int64).astype(np.float64), "partial frame")
    # Without --dtype nothing says what the file is.
    other = os.path.join(tmp, "scan.xyz")
    write_raw(other, data)
    _, err = run(["run", "--plugin", "sum", "--sig-shape", "9,7", other], expect=2)
    assert "cannot tell the format" in err and "scan.xyz" in err and len(err.splitlines()) == 1, err


def test_sync_offset(tmp):
    data = random_frames(RNG, (40, 5, 6), "<i2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    nav = (5, 8)
    for n in (3, -4, 0, 39, -39, 45):
        # Scan frame i is file frame i + n; frames beyond the file are zeros.
        ref = np.zeros((40, 5, 6), np.int64)
        for i in range(40):
            if 0 <= i + n < 40:
                ref[i] = data[i + n]
        ref = ref.reshape(nav + (5, 6))
        for threads in ("1", "3"):
            got_sum, got_sumsig = sums(tmp, [*raw_args(nav, (5, 6), "<i2"), "--sync-offset",
                                             str(n), "--threads", threads,
                                             "--partition-size", "200", path])
            assert_equal(got_sum, ref.sum(axis=(0, 1)).astype(np.float64), "sum, sync %d" % n)
            assert_equal(got_sumsig, ref.sum(axis=(2, 3)).astype(np.float64),
                         "sumsig, sync %d" % n)
    _, err = run(["run", "--plugin", "sum", *raw_args(nav, (5, 6), "<i2"), "--sync-offset",
                  "x", path], expect=2)
    assert "--sync-offset" in err, err
    # Found by fuzz_raw: scan frame + offset overflowed int64_t.
    _, err = run(["run", "--plugin", "sum", *raw_args(nav, (5, 6), "<i2"), "--sync-offset",
                  str(2**63 - 30), path], expect=2)
    assert "--sync-offset 9223372036854775778 is out of range for a scan of 40 frames" in err, err


def test_ini_descriptor(tmp):
    data = random_frames(RNG, (6, 7, 8, 9), ">u2")
    sub = os.path.join(tmp, "scans")
    os.mkdir(sub)
    write_raw(os.path.join(sub, "scan.dat"), data, offset=128)
    ini = os.path.join(sub, "scan.ini")
    with open(ini, "w") as f:
        f.write("; a scan\n[dataset]\npath = scan.dat\nformat = raw\ndtype = >u2\n"
                "nav_shape = 6,7\nsig_shape = 8,9\noffset = 128\n\n"
                "[udfhost]\nthreads = 2\noutput = %s\n" % os.path.join(tmp, "from-ini"))
    # The data path is relative to the descriptor; [udfhost] output is the default -o.
    run(["run", "--plugin", "sum", "-p", "dtype=float64", ini])
    assert_equal(load(os.path.join(tmp, "from-ini"), "sum", "intensity"),
                 data.sum(axis=(0, 1), dtype=np.int64).astype(np.float64), "sum from .ini")
    # Command-line options win over the descriptor.
    got_sum, got_sumsig = sums(tmp, ["--nav-shape", "42", ini])
    assert_equal(got_sumsig, data.reshape(42, 8, 9).sum(axis=(1, 2), dtype=np.int64)
                 .astype(np.float64), "--nav-shape over the .ini")
    out, _ = run(["info", "--json", ini])
    info = json.loads(out)
    assert info["nav_shape"] == [6, 7] and info["byte_order"] == "big", info
    assert info["file"] == os.path.join(sub, "scan.dat"), info
    bad = [
        ("[dataset]\npath = scan.dat\ncolour = red\n", "bad.ini:3: unknown key 'colour'"),
        ("[dataset]\nformat = raw\n", "has no path"),
        ("[dataset]\npath = scan.dat\n[extra]\nx = 1\n", "bad.ini:4: unknown section [extra]"),
        ("[dataset]\npath = scan.dat\nnav_shape = 6,x\n", "bad.ini:3: nav_shape"),
        ("[dataset]\npath = scan.dat\ndtype =\n", "bad.ini:3: dtype: no value"),
        ("[dataset]\npath = scan.dat\njust words\n", "bad.ini:3: not an ini line"),
        ("[udfhost]\nthreads = 0\n", "bad.ini:2: threads"),
    ]
    for text, needle in bad:
        path = os.path.join(sub, "bad.ini")
        with open(path, "w") as f:
            f.write(text)
        _, err = run(["run", "--plugin", "sum", path], expect=2)
        assert len(err.splitlines()) == 1 and needle in err, "%r: %r" % (text, err)


def test_info(tmp):
    data = random_frames(RNG, (4, 5, 6, 7), "<f4")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data, offset=16)
    out, _ = run(["info", *raw_args((4, 5), (6, 7), "<f4", offset=16), path])
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    expect = {"format": "raw", "nav shape": "4,5", "sig shape": "6,7", "dtype": "float32",
              "byte order": "little", "frames": "20", "frame size": "168 bytes",
              "file size": "%d bytes" % (16 + data.nbytes), "io": "mmap"}
    for k, v in expect.items():
        assert lines.get(k) == v, "info %s: %r, expected %r\n%s" % (k, lines.get(k), v, out)
    out, _ = run(["info", "--json", *raw_args((4, 5), (6, 7), "<f4", offset=16),
                  "--sync-offset", "-2", path])
    info = json.loads(out)
    assert info == {"file": path, "format": "raw", "nav_shape": [4, 5], "sig_shape": [6, 7],
                    "dtype": "float32", "byte_order": "little", "frames": 20,
                    "frame_bytes": 168, "data_bytes": 3360, "file_bytes": 16 + data.nbytes,
                    "io": "mmap", "sync_offset": -2, "file_frames": 20}, info
    _, err = run(["info", "--dtype", "u2", "--sig-shape", "1000,1000", path], expect=3)
    assert "too short" in err and len(err.splitlines()) == 1, err


if __name__ == "__main__":
    main([test_raw_detection_and_default_nav, test_sync_offset, test_ini_descriptor, test_info])
