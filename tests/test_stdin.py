"""Raw frames from a pipe ("-"): the same results as from the file, with any thread count, ROI,
headers; a stream that ends early is an error naming the frame."""
import os
import subprocess

import numpy as np

from udfhost_test import UDFHOST, assert_equal, load, main, random_frames, raw_args, run, \
    write_raw

RNG = np.random.default_rng(404)


def piped(args, data, expect=0):
    p = subprocess.run([UDFHOST] + [str(a) for a in args], input=data, capture_output=True,
                       timeout=120)
    if p.returncode != expect:
        raise AssertionError("udfhost %s: exit %d, expected %d: %s"
                             % (" ".join(map(str, args)), p.returncode, expect, p.stderr))
    return p.stderr.decode()


def test_stream_equals_file(tmp):
    data = random_frames(RNG, (9, 13, 11, 7), ">i2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data, offset=100)
    roi = RNG.random((9, 13)) < 0.6
    np.save(os.path.join(tmp, "roi.npy"), roi)
    plugins = ["--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig", "--plugin", "max"]
    shape = raw_args((9, 13), (11, 7), ">i2", offset=100)
    with open(path, "rb") as f:
        stream = f.read()
    for extra in ([], ["--roi", os.path.join(tmp, "roi.npy")]):
        run(["run", *plugins, *shape, *extra, "--overwrite", "-o", os.path.join(tmp, "file"), path])
        for threads in ("1", "2", "3"):
            out = os.path.join(tmp, "pipe" + threads)
            piped(["run", *plugins, *shape, *extra, "--threads", threads, "--partition-size",
                   "1K", "--overwrite", "-o", out, "-"], stream)
            for plugin in ("sum", "sumsig", "max"):
                assert_equal(load(out, plugin, "intensity"),
                             load(os.path.join(tmp, "file"), plugin, "intensity"),
                             "%s from a pipe, threads %s, %s" % (plugin, threads, extra))


def test_frame_headers_in_stream(tmp):
    data = random_frames(RNG, (20, 6, 5), "<u2")
    stream = b"".join(b"H" * 12 + f.tobytes() + b"F" * 4 for f in data)
    out = os.path.join(tmp, "out")
    piped(["run", "--plugin", "sum", "-p", "dtype=float64", "--dtype", "<u2", "--nav-shape",
           "4,5", "--sig-shape", "6,5", "--frame-header", "12", "--frame-footer", "4",
           "-o", out, "-"], stream)
    assert_equal(load(out, "sum", "intensity"), data.sum(axis=0, dtype=np.float64),
                 "frame header/footer in a stream")


def test_bad_streams(tmp):
    data = random_frames(RNG, (10, 4, 4), "<u2")
    out = os.path.join(tmp, "out")
    shape = ["--dtype", "<u2", "--nav-shape", "10", "--sig-shape", "4,4"]
    err = piped(["run", "--plugin", "sum", *shape, "-o", out, "-"], data.tobytes()[:-5], expect=3)
    assert err.count("\n") == 1 and "stdin: the stream ended in frame 9 of 10" in err, err
    assert not os.path.exists(os.path.join(out, "sum.intensity.npy"))
    err = piped(["run", "--plugin", "sum", "--dtype", "<u2", "--sig-shape", "4,4", "-o", out,
                 "-"], data.tobytes(), expect=2)
    assert "needs --nav-shape" in err, err
    err = piped(["run", "--plugin", "sum", *shape, "--sync-offset", "2", "-o", out, "-"],
                data.tobytes(), expect=2)
    assert "--sync-offset" in err, err
    # More data than the scan needs is left unread, not an error.
    piped(["run", "--plugin", "sum", *shape, "-o", out, "-"], data.tobytes() + b"\0" * 64)


if __name__ == "__main__":
    main([test_stream_equals_file, test_frame_headers_in_stream, test_bad_streams])
