"""What a run writes besides its .npy results: the run record (udfhost-run.json), the --json summary,
--stdout, the progress bar, PNG previews and TIFF copies."""
import io
import json
import os
import struct
import subprocess
import zlib

import numpy as np
import tifffile

from udfhost_test import UDFHOST, fixture, load, main, random_frames, raw_args, run, write_raw

RNG = np.random.default_rng(77)
NAV, SIG = (6, 7), (9, 8)


def dataset(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    return data, path


def test_run_record_and_json(tmp):
    data, path = dataset(tmp)
    out = os.path.join(tmp, "out")
    args = ["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "masks", "-p",
            "disk=4,4,2", "-p", "ring=4,4,1,3", *raw_args(NAV, SIG, "<u2"), "--threads", "2",
            "--json", "-o", out, path]
    stdout, stderr = run(args)
    assert stderr == "", stderr
    summary = json.loads(stdout)
    with open(os.path.join(out, "udfhost-run.json")) as f:
        record = json.load(f)
    assert summary == record, "--json and udfhost-run.json differ"
    assert record["command"] == ["udfhost"] + args, record["command"]
    assert [p["name"] for p in record["plugins"]] == ["sum", "masks"]
    assert record["plugins"][1]["parameters"] == [["disk", "4,4,2"], ["ring", "4,4,1,3"]]
    ds = record["dataset"]
    assert ds["path"] == os.path.realpath(path) and ds["format"] == "raw", ds
    assert ds["nav_shape"] == list(NAV) and ds["sig_shape"] == list(SIG), ds
    assert ds["dtype"] == "uint16" and ds["bytes"] == data.nbytes, ds
    assert record["threads"] == 2 and record["frames"] == 42, record
    files = {r["file"]: r for r in record["results"]}
    assert set(files) == {"sum.intensity.npy", "masks.intensity.npy"}, files
    for name, r in files.items():
        arr = np.load(os.path.join(out, name))
        assert list(arr.shape) == r["shape"] and arr.dtype.name == r["dtype"], (name, r)


def test_stdout_buffer(tmp):
    data, path = dataset(tmp)
    out = os.path.join(tmp, "out")
    p = subprocess.run([UDFHOST, "run", "--plugin", "sumsig", "-p", "dtype=float64",
                        *raw_args(NAV, SIG, "<u2"), "--stdout", "sumsig.intensity", "-o", out,
                        path], capture_output=True)
    assert p.returncode == 0 and p.stderr == b"", p.stderr
    arr = np.load(io.BytesIO(p.stdout))
    assert np.array_equal(arr, load(out, "sumsig", "intensity")), "stdout != file"
    assert np.array_equal(arr, data.sum(axis=(2, 3), dtype=np.float64))
    for extra, needle in ((["--stdout", "sumsig.nothing"], "no result buffer sumsig.nothing"),
                          (["--stdout", "sumsig"], "PLUGIN.BUFFER"),
                          (["--stdout", "sumsig.intensity", "--json"], "choose one")):
        _, err = run(["run", "--plugin", "sumsig", *raw_args(NAV, SIG, "<u2"), *extra,
                      "-o", os.path.join(tmp, "bad"), path], expect=2)
        assert needle in err and len(err.splitlines()) == 1, err


def test_progress_and_failures(tmp):
    data, path = dataset(tmp)
    out = os.path.join(tmp, "out")
    _, err = run(["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"), "--progress",
                  "--partition-size", "1K", "-o", out, path])
    assert "42/42 frames" in err and "100%" in err, err
    # Not a terminal: no bar unless asked.
    _, err = run(["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"), "--overwrite", "-o", out, path])
    assert err == "", err
    # A failed run writes no record either.
    short = os.path.join(tmp, "short.raw")
    write_raw(short, data[:3])
    out2 = os.path.join(tmp, "out2")
    run(["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"), "-o", out2, short], expect=3)
    assert not os.path.exists(os.path.join(out2, "udfhost-run.json"))


def read_png(path):
    """A small independent PNG reader (8-bit grey or RGB, non-interlaced): rows of pixels."""
    with open(path, "rb") as f:
        blob = f.read()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, width = 8, b"", None
    while pos < len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (0, 2), (depth, colour)
            channels = 1 if colour == 0 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return np.frombuffer(b"".join(rows), np.uint8).reshape(height, width, channels)


def test_previews_and_tiff(tmp):
    data, path = dataset(tmp)
    out = os.path.join(tmp, "out")
    run(["run", "--plugin", "sum", "--plugin", "sumsig", "--plugin", "masks", "-p",
         "disk=4,4,2", "-p", "ring=4,4,1,3", "--plugin", "com", *raw_args(NAV, SIG, "<u2"),
         "--preview", "--save-format", "tiff", "-o", out, path])
    names = set(os.listdir(out))
    for name in ("sum.intensity.png", "sumsig.intensity.png", "masks.intensity.0.png",
                 "masks.intensity.1.png", "com.divergence.png", "sum.intensity.tif",
                 "masks.intensity.tif"):
        assert name in names, "%s missing from %s" % (name, sorted(names))
    assert not [n for n in names if ".tmp" in n], names
    img = read_png(os.path.join(out, "sumsig.intensity.png"))
    assert img.shape[:2] == NAV, img.shape
    ref = load(out, "sumsig", "intensity")
    # The brightest result is the brightest pixel, the darkest the darkest (grey map).
    assert img[..., 0].flat[np.argmax(ref)] == 255 and img[..., 0].flat[np.argmin(ref)] == 0
    stack = tifffile.imread(os.path.join(out, "masks.intensity.tif"))
    masks = load(out, "masks", "intensity")
    assert stack.shape == (2,) + NAV and stack.dtype == np.float32, stack.shape
    assert np.array_equal(stack, np.moveaxis(masks, -1, 0).astype(np.float32))
    assert np.array_equal(tifffile.imread(os.path.join(out, "sum.intensity.tif")),
                          load(out, "sum", "intensity"))
    _, err = run(["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"), "--preview-scale",
                  "cubic", "-o", out, path], expect=2)
    assert "--preview-scale" in err, err


def test_live_results(tmp):
    """--live-every N rewrites the results as partitions are merged; what is not done yet is NaN.
    A run that fails later leaves the last live results, which is what they are for."""
    data, path = dataset(tmp)
    out = os.path.join(tmp, "out")
    # 42 frames in partitions of one frame; the fail fixture stops the run in partition 10, after
    # live results for partitions 0..8 were written (every 3 merges: after 3, 6 and 9).
    run(["run", "--plugin", "sumsig", "-p", "dtype=float64", "--plugin", fixture("fail"),
         "-p", "hook=process_tile", "-p", "partition=10", *raw_args(NAV, SIG, "<u2"),
         "--partition-size", "1", "--threads", "1", "--live-every", "3", "-o", out, path],
         expect=4)
    live = load(out, "sumsig", "intensity").ravel()
    ref = data.sum(axis=(2, 3), dtype=np.float64).ravel()
    assert np.array_equal(live[:9], ref[:9]), live[:12]
    assert np.isnan(live[9:]).all(), live[:12]
    assert not os.path.exists(os.path.join(out, "udfhost-run.json"))
    # A run that completes ends with the final results.
    run(["run", "--plugin", "sumsig", "-p", "dtype=float64", *raw_args(NAV, SIG, "<u2"),
         "--partition-size", "1", "--live-every", "5", "--preview", "--overwrite", "-o", out, path])
    assert np.array_equal(load(out, "sumsig", "intensity").ravel(), ref)
    assert not [n for n in os.listdir(out) if ".tmp" in n], os.listdir(out)


if __name__ == "__main__":
    main([test_run_record_and_json, test_stdout_buffer, test_progress_and_failures,
          test_previews_and_tiff, test_live_results])
