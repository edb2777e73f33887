"""Quantum Detectors Merlin .mib: files written here frame by frame ("MQ1," headers as the Merlin
software formats them, NUL-padded to the header size, big-endian pixels or raw R64 words), read
by udfhost and checked against NumPy and against the same pixels as a raw file."""
import json
import os

import numpy as np

from udfhost_test import assert_equal, load, main, random_frames, raw_args, run, write_raw

RNG = np.random.default_rng(20261129)
MIB_DTYPES = {"U08": ">u1", "U16": ">u2", "U32": ">u4"}


def frame_header(seq, width, height, pixel_depth, counter_depth, header_size=384, chips=1,
                 layout="1x1"):
    """One frame header as the Merlin software writes it: comma-separated fields, the counter
    depth third after "MQ1A", then NUL padding up to the header size."""
    fields = ["MQ1", "%06d" % seq, "%05d" % header_size, "%02d" % chips, "%04d" % width,
              "%04d" % height, pixel_depth, "%6s" % layout, "%02X" % ((1 << chips) - 1),
              "2020-05-18 16:51:49.971626", "0.000555", "0", "0", "0"]
    if pixel_depth == "R64":
        fields.append("")  # raw frames carry no thresholds or DACs
    else:
        fields += ["1.200000E+2", "5.110000E+2"] + ["0.000000E+0"] * 6 + ["3RX"]
        fields += ["%03d" % (RNG.integers(0, 512)) for _ in range(27)]
    fields += ["MQ1A", "2020-05-18T14:51:49.971626178Z", "555000ns", str(counter_depth), ""]
    text = ",".join(fields).encode("ascii")
    assert len(text) <= header_size, len(text)
    return text + b"\0" * (header_size - len(text))


def raw_words(frame, counter_depth):
    """R64 encoding of one frame (flat pixel order): 64-bit words whose bytes come in reverse
    order of the pixel groups they hold; 1-bit pixels packed least significant bit first."""
    flat = frame.ravel()
    if counter_depth == 1:
        groups = np.packbits(flat.astype(np.uint8) & 1, bitorder="little").reshape(-1, 8)
        return groups[:, ::-1].tobytes()
    if counter_depth == 6:
        return flat.astype(np.uint8).reshape(-1, 8)[:, ::-1].tobytes()
    if counter_depth == 12:
        return flat.astype(">u2").reshape(-1, 4)[:, ::-1].tobytes()
    raise ValueError(counter_depth)


def write_mib(path, frames, pixel_depth, counter_depth=None, first_seq=1, header_size=384,
              header_for=None):
    """Write frames (n, height, width) as a .mib file; header_for(i, header) may alter one."""
    n, height, width = frames.shape
    if counter_depth is None:
        counter_depth = {"U08": 6, "U16": 12, "U32": 24}[pixel_depth]
    with open(path, "wb") as f:
        for i, frame in enumerate(frames):
            h = frame_header(first_seq + i, width, height, pixel_depth, counter_depth,
                             header_size)
            if header_for:
                h = header_for(i, h)
            f.write(h)
            if pixel_depth == "R64":
                f.write(raw_words(frame, counter_depth))
            else:
                f.write(frame.astype(MIB_DTYPES[pixel_depth]).tobytes())


def write_hdr(path, frames, per_trigger=None, scan=None, counter_depth=12):
    """An acquisition header (.hdr) with the keys the Merlin software writes."""
    lines = ["HDR,\t",
             "Time and Date Stamp (day, mnth, yr, hr, min, s):\t18/05/2020 16:51:48",
             "Chip ID:\tW529_F5,-,-,-",
             "Assembly Size (NX1, 2X2):\t   1x1",
             "Counter Depth (number):\t%d" % counter_depth,
             "Frames in Acquisition (Number):\t%d" % frames,
             "Frames per Trigger (Number):\t%d" % (per_trigger or frames)]
    if scan:
        lines += ["ScanX:\t%d" % scan[1], "ScanY:\t%d" % scan[0]]
    lines += ["Software Version:\t0.67.0.9", "End\t" + " " * 200]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def sums(tmp, args, out="out", threads=None):
    out = os.path.join(tmp, out)
    extra = ["--threads", threads] if threads else []
    run(["run", "--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig",
         "-p", "dtype=float64", "--overwrite", "-o", out, *extra, *args])
    return load(out, "sum", "intensity"), load(out, "sumsig", "intensity")


def check_against_numpy(got, data, what):
    nav_ndim = data.ndim - 2
    ref_sum = data.sum(axis=tuple(range(nav_ndim)), dtype=np.int64).astype(np.float64)
    ref_sumsig = data.sum(axis=(-2, -1), dtype=np.int64).astype(np.float64)
    assert_equal(got[0], ref_sum, "sum " + what)
    assert_equal(got[1], ref_sumsig, "sumsig " + what)


def info(path, *args):
    out, _ = run(["info", "--json", *args, path])
    return json.loads(out)


def test_decoded_pixel_depths(tmp):
    nav, sig = (7, 9), (13, 11)
    for pixel_depth, dt in MIB_DTYPES.items():
        data = random_frames(RNG, nav + sig, dt.replace(">", "<"))
        path = os.path.join(tmp, "scan_%s.mib" % pixel_depth)
        write_mib(path, data.reshape((-1,) + sig), pixel_depth)
        # Detected without --format; nav is 1-D over all frames unless told.
        meta = info(path)
        assert meta["format"] == "mib" and meta["nav_shape"] == [63] and \
            meta["sig_shape"] == [13, 11] and meta["io"] == "mmap", meta
        assert meta["byte_order"] == "big" or dt == ">u1", meta
        got = sums(tmp, ["--nav-shape", "7,9", path])
        check_against_numpy(got, data, pixel_depth)
        raw_path = os.path.join(tmp, "scan.raw")
        write_raw(raw_path, data.astype(dt))
        from_raw = sums(tmp, [*raw_args(nav, sig, dt), raw_path], out="raw")
        assert_equal(got[0], from_raw[0], "sum mib vs raw " + pixel_depth)
        assert_equal(got[1], from_raw[1], "sumsig mib vs raw " + pixel_depth)
        for threads in (1, 3):
            again = sums(tmp, ["--nav-shape", "7,9", "--partition-size", "2K", path],
                         out="t%d" % threads, threads=threads)
            assert_equal(again[0], got[0], "sum threads %d" % threads)
            assert_equal(again[1], got[1], "sumsig threads %d" % threads)


def test_quad_sized_header(tmp):
    # Quad detectors write 768-byte headers and 2x2G layouts; decoded frames are plain images.
    data = random_frames(RNG, (5, 6, 17, 19), "<u2")
    path = os.path.join(tmp, "quad.mib")
    with open(path, "wb") as f:
        for i, frame in enumerate(data.reshape(-1, 17, 19)):
            h = frame_header(i + 1, 19, 17, "U16", 12, header_size=768, chips=4, layout="2x2G")
            f.write(h + frame.astype(">u2").tobytes())
    check_against_numpy(sums(tmp, ["--nav-shape", "5,6", path]), data, "quad header")


def test_raw_counter_depths(tmp):
    nav, sig = (5, 7), (8, 24)  # 192 pixels: three 64-pixel words of 1-bit data
    for depth, top, dt in ((1, 1, np.uint8), (6, 63, np.uint8), (12, 4095, np.uint16)):
        data = RNG.integers(0, top, size=nav + sig, endpoint=True).astype(dt)
        path = os.path.join(tmp, "raw%d.mib" % depth)
        write_mib(path, data.reshape((-1,) + sig), "R64", depth)
        meta = info(path)
        assert meta["dtype"] == np.dtype(dt).name and meta["sig_shape"] == [8, 24], meta
        got = sums(tmp, ["--nav-shape", "5,7", path])
        check_against_numpy(got, data, "R64 %d-bit" % depth)
        for threads in (1, 3):
            again = sums(tmp, ["--nav-shape", "5,7", "--partition-size", "1K", path],
                         out="t%d" % threads, threads=threads)
            assert_equal(again[0], got[0], "raw sum threads %d" % threads)
            assert_equal(again[1], got[1], "raw sumsig threads %d" % threads)
        # One frame back as stored: every pixel in its place.
        out = os.path.join(tmp, "pick")
        run(["run", "--plugin", "pick", "-p", "at=2,3", "--nav-shape", "5,7", "--overwrite", "-o",
             out, path])
        assert_equal(load(out, "pick", "intensity"), data[2, 3], "pick R64 %d-bit" % depth)


def test_acquisition_header_gives_nav(tmp):
    data = random_frames(RNG, (6, 8, 9, 10), "<u2")
    path = os.path.join(tmp, "scan.mib")
    write_mib(path, data.reshape(-1, 9, 10), "U16")
    # Frames per trigger: one scan row per trigger.
    write_hdr(os.path.join(tmp, "scan.hdr"), 48, per_trigger=8)
    assert info(path)["nav_shape"] == [6, 8]
    check_against_numpy(sums(tmp, [path]), data, "nav from Frames per Trigger")
    # ScanX/ScanY win over frames per trigger.
    write_hdr(os.path.join(tmp, "scan.hdr"), 48, per_trigger=48, scan=(6, 8))
    assert info(path)["nav_shape"] == [6, 8]
    assert info(os.path.join(tmp, "scan.hdr"))["nav_shape"] == [6, 8]
    # --nav-shape wins over both.
    assert info(path, "--nav-shape", "4,12")["nav_shape"] == [4, 12]


def test_acquisition_of_many_files(tmp):
    nav, sig = (9, 7), (5, 6)
    data = random_frames(RNG, nav + sig, "<u4")
    frames = data.reshape((-1,) + sig)
    # Eleven files of uneven length: natural order (2 before 10), not name order.
    bounds = [0, 3, 9, 10, 17, 25, 30, 38, 41, 50, 57, 63]
    for k in range(11):
        write_mib(os.path.join(tmp, "acq_%d.mib" % (k + 1)), frames[bounds[k]:bounds[k + 1]],
                  "U32", first_seq=bounds[k] + 1)
    hdr = os.path.join(tmp, "acq.hdr")
    write_hdr(hdr, 63, per_trigger=7)
    meta = info(hdr)
    assert meta["nav_shape"] == [9, 7] and meta["frames"] == 63, meta
    got = sums(tmp, [hdr])
    check_against_numpy(got, data, "11 files")
    for threads, part in ((1, "700"), (3, "1K"), (3, "64K")):
        again = sums(tmp, ["--partition-size", part, hdr], out="t", threads=threads)
        assert_equal(again[0], got[0], "files sum threads %d %s" % (threads, part))
        assert_equal(again[1], got[1], "files sumsig threads %d %s" % (threads, part))
    # A sync offset reads across file boundaries too.
    shifted = sums(tmp, ["--sync-offset", "2", hdr], out="sync")
    ref = np.zeros_like(frames)
    ref[:-2] = frames[2:]
    check_against_numpy(shifted, ref.reshape(nav + sig), "sync offset over files")


def check_failure(tmp, args, status, *needles):
    out = os.path.join(tmp, "failed")
    _, err = run(["run", "--plugin", "sum", "-o", out, *args], expect=status)
    lines = err.splitlines()
    what = "udfhost %s" % " ".join(map(str, args))
    assert len(lines) == 1 and lines[0].startswith("udfhost: "), "%s: %r" % (what, err)
    for needle in needles:
        assert needle in lines[0], "%s: %r does not mention %r" % (what, lines[0], needle)
    assert not os.path.exists(out) or not os.listdir(out), "%s: results written" % what


def test_bad_files(tmp):
    sig = (4, 4)
    frames = random_frames(RNG, (26,) + sig, "<u1")

    def mib(name, header_for=None, pixel_depth="U08", data=frames, depth=None, **kw):
        path = os.path.join(tmp, name)
        write_mib(path, data, pixel_depth, depth, header_for=header_for, **kw)
        return path

    good = mib("good.mib")
    with open(good, "rb") as f:
        blob = f.read()
    short = os.path.join(tmp, "short.mib")
    with open(short, "wb") as f:
        f.write(blob[:-1])
    check_failure(tmp, [short], 3, short, "file too short", "truncated last frame")
    extra = os.path.join(tmp, "extra.mib")
    with open(extra, "wb") as f:
        f.write(blob + b"\0" * 7)
    check_failure(tmp, [extra], 3, extra, "extra bytes")
    headeronly = os.path.join(tmp, "headeronly.mib")
    with open(headeronly, "wb") as f:
        f.write(blob[:100])
    check_failure(tmp, [headeronly], 3, headeronly, "file too short")
    # The header size field says 400 but headers are 384 bytes: 26 frames of 400 bytes are 25
    # of 416, so only the last frame's header (where none is) gives it away.
    lying = mib("lying.mib", lambda i, h: h.replace(b",00384,", b",00400,"))
    check_failure(tmp, [lying], 3, lying, "no Merlin frame header", "offset 9984")
    # Headers that change between the first and last frame.
    changed = mib("changed.mib", lambda i, h: h.replace(b",0004,0004,", b",0002,0008,")
                  if i == 25 else h)
    check_failure(tmp, [changed], 3, changed, "last frame", "frame size 2 x 8 vs 4 x 4")
    garbage = os.path.join(tmp, "garbage.mib")
    with open(garbage, "wb") as f:
        f.write(b"XQ1," + blob[4:])
    check_failure(tmp, [garbage], 3, garbage, "no Merlin frame header")
    check_failure(tmp, ["--format", "mib", garbage], 3, garbage, "'MQ1,'")
    absurd = [(b",0004,0004,", b",0000,0004,", "frame size 0 x 4"),
              (b",0004,0004,", b",99999,0004,", "frame size 99999 x 4"),
              (b",0004,0004,", b",99999999999999999999999,0004,", "width (X)"),
              (b",00384,", b",99999999,", "header size 99999999"),
              (b",00384,", b",00008,", "header size 8"),
              (b",01,", b",00,", "number of chips 0"),
              (b",U08,", b",U64,", "pixel depth 'U64'"),
              (b",U08,", b",XYZ,", "pixel depth 'XYZ'")]
    for k, (old, new, needle) in enumerate(absurd):
        p = mib("absurd%d.mib" % k, lambda i, h: h.replace(old, new, 1))
        check_failure(tmp, [p], 3, p, needle)
    raw24 = mib("raw24.mib", lambda i, h: h.replace(b"ns,12,", b"ns,24,"), pixel_depth="R64",
                depth=12, data=frames.repeat(4, 2))
    check_failure(tmp, [raw24], 3, raw24, "counter depth 24 is not supported")
    quad = mib("quad.mib", lambda i, h: h.replace(b",01,", b",04,").replace(b"   1x1", b"   2x2"),
               pixel_depth="R64", depth=6, data=frames.repeat(4, 2))
    check_failure(tmp, [quad], 3, quad, "sensor layout 2x2 with 4 chips is not supported")
    # The user's shapes and dtype against the file's: usage errors.
    check_failure(tmp, ["--nav-shape", "5,5", good], 2, good, "--nav-shape 5,5", "26 frames")
    check_failure(tmp, ["--sig-shape", "4,5", good], 2, good, "--sig-shape 4,5", "4,4")
    check_failure(tmp, ["--dtype", "uint16", good], 2, good, "--dtype uint16", "uint8")
    # Reshaping the signal with the same pixel count is fine.
    assert info(good, "--sig-shape", "16")["sig_shape"] == [16]


def test_bad_acquisitions(tmp):
    sig = (3, 5)
    frames = random_frames(RNG, (12,) + sig, "<u2")
    for k in range(3):
        write_mib(os.path.join(tmp, "a_%d.mib" % (k + 1)), frames[4 * k:4 * k + 4], "U16",
                  first_seq=4 * k + 1)
    hdr = os.path.join(tmp, "a.hdr")
    write_hdr(hdr, 12, per_trigger=4)
    assert info(hdr)["nav_shape"] == [3, 4]
    # The header promises more frames than the files hold.
    write_hdr(hdr, 16, per_trigger=4)
    check_failure(tmp, [hdr], 3, hdr, "says 16 frames", "hold 12")
    assert info(hdr, "--nav-shape", "12")["nav_shape"] == [12]
    write_hdr(hdr, 12, per_trigger=4)
    # A missing file shows as a gap in the sequence numbers.
    os.rename(os.path.join(tmp, "a_2.mib"), os.path.join(tmp, "moved"))
    check_failure(tmp, [hdr], 3, "a_3.mib", "first frame is number 9", "end with frame 4")
    os.rename(os.path.join(tmp, "moved"), os.path.join(tmp, "a_2.mib"))
    # A file whose frames differ from the first file's.
    write_mib(os.path.join(tmp, "a_3.mib"), frames[8:], "U32", first_seq=9)
    check_failure(tmp, [hdr], 3, "a_3.mib", "pixel depth U32 vs U16")
    with open(hdr, "w") as f:
        f.write("HDR,\nFrames per Trigger (Number):\tmany\nEnd\n")
    check_failure(tmp, [hdr], 3, hdr, "Frames per Trigger (Number) 'many'")
    with open(hdr, "w") as f:
        f.write("not a header\n")
    check_failure(tmp, ["--format", "mib", hdr], 3, hdr, "'HDR,'")
    lonely = os.path.join(tmp, "lonely.hdr")
    write_hdr(lonely, 4)
    check_failure(tmp, [lonely], 3, lonely, "no data files")


if __name__ == "__main__":
    main([test_decoded_pixel_depths, test_quad_sized_header, test_raw_counter_depths,
          test_acquisition_header_gives_nav, test_acquisition_of_many_files, test_bad_files,
          test_bad_acquisitions])
