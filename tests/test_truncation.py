"""Truncated and changing inputs: every sample format, written by an independent writer, cut at
0, 1, 511 and 512 bytes, inside its header and at each frame boundary +-1: every run on a cut file
ends in a clean error (status 2, 3 or 4, one line "udfhost: ..." naming the file, no result
files), unless the cut legitimately leaves a readable dataset (raw or MIB data without
--nav-shape keeps its whole frames; a cut after the last pixel may keep everything). Then a file
that shrinks while it is mapped (SIGBUS must be reported, status 3) and SIGINT/SIGTERM during a
run (exit 130/143 within a second, no temporary or result files).

Issue 8: "A truncation corpus in the suite: every sample file cut at 0, 1, 511, 512 bytes and at
each frame boundary +-1: 100 % clean error exits."
"""
import os
import shutil
import signal
import subprocess
import time

import h5py
import mrcfile
import numpy as np
import tifffile

from test_formats_mib import write_mib
from udfhost_test import UDFHOST, main, raw_args, write_raw

RNG = np.random.default_rng(20261211)
NAV, SIG = (2, 3), (12, 10)          # 6 frames of 240 bytes (uint16): 511/512 fall in the data
NFRAMES = NAV[0] * NAV[1]
MAX_CUTS = 40
TIMEOUT = 30
SUMS = ["--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig", "-p", "dtype=float64"]
CLEAN_ERRORS = (2, 3, 4)


def frames():
    return RNG.integers(0, 60000, size=(NFRAMES,) + SIG, endpoint=True).astype("<u2")


def describe(rc):
    return "killed by %s" % signal.Signals(-rc).name if rc < 0 else "exit %d" % rc


def udfhost(args, timeout=TIMEOUT):
    """Run udfhost; return (returncode, stdout, stderr); returncode None on a timeout."""
    try:
        p = subprocess.run([UDFHOST] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        return None, "", err or ""
    return p.returncode, p.stdout, p.stderr


def results(out):
    """The two result arrays of a run, and their bytes."""
    got = {}
    for plugin in ("sum", "sumsig"):
        with open(os.path.join(out, plugin + ".intensity.npy"), "rb") as f:
            got[plugin] = f.read()
    return got


def arrays(out):
    return (np.load(os.path.join(out, "sum.intensity.npy")),
            np.load(os.path.join(out, "sumsig.intensity.npy")))


def check_sums(out, data, what):
    """sum and sumsig as NumPy computes them over the frames (n, sy, sx) of data."""
    got_sum, got_sumsig = arrays(out)
    ref_sum = data.sum(axis=0, dtype=np.int64).astype(np.float64)
    ref_sumsig = data.sum(axis=(1, 2), dtype=np.int64).astype(np.float64)
    if got_sum.shape != ref_sum.shape or not np.array_equal(got_sum, ref_sum):
        return "%s: sum %s differs from NumPy's %s" % (what, got_sum.shape, ref_sum.shape)
    if got_sumsig.size != ref_sumsig.size or not np.array_equal(got_sumsig.ravel(), ref_sumsig):
        return "%s: sumsig %s differs from NumPy's over %d frames" % (
            what, got_sumsig.shape, len(data))
    return None


class Sample:
    """A valid file and what a cut of it may legitimately give.

    data_end: the first byte after the last pixel byte; cuts below it must fail unless
    prefix_frames(cut) says how many whole frames a run may then legitimately process."""

    def __init__(self, name, path, data, args, fmt, magic_len, data_end, boundaries,
                 header_points, prefix_frames=None):
        self.name, self.path, self.data, self.args, self.fmt = name, path, data, args, fmt
        self.magic_len, self.data_end = magic_len, data_end
        self.boundaries, self.header_points = boundaries, header_points
        self.prefix_frames = prefix_frames or (lambda cut: None)
        self.size = os.path.getsize(path)

    def cuts(self):
        fixed = [0, 1, 511, 512] + list(self.header_points)
        around = sorted({b + d for b in self.boundaries for d in (-1, 0, 1)} - set(fixed))
        room = max(MAX_CUTS - len(fixed), 2)
        if len(around) > room:  # evenly spread, keeping the first and the last
            idx = np.unique(np.linspace(0, len(around) - 1, room).round().astype(int))
            around = [around[i] for i in idx]
        return sorted({c for c in fixed + around if 0 <= c < self.size})


def check_cuts(tmp, sample):
    """Run the intact sample, then every cut of it; raise one error listing every problem."""
    out = os.path.join(tmp, "out-" + sample.name)
    rc, _, err = udfhost(["run", *SUMS, *sample.args, "-o", out, sample.path])
    if rc != 0:
        raise AssertionError("%s: the intact sample fails: %s, stderr %r"
                             % (sample.name, describe(rc) if rc is not None else "timeout", err))
    problem = check_sums(out, sample.data, sample.name + " intact")
    if problem:
        raise AssertionError(problem)
    full = results(out)
    shutil.rmtree(out)

    with open(sample.path, "rb") as f:
        content = f.read()
    ext = os.path.splitext(sample.path)[1]
    problems, tally = [], {}
    for cut in sample.cuts():
        cut_name = "%s-cut%d%s" % (sample.name, cut, ext)
        cut_path = os.path.join(tmp, cut_name)
        with open(cut_path, "wb") as f:
            f.write(content[:cut])
        args = list(sample.args)
        if cut < sample.magic_len and "--format" not in args:
            args = ["--format", sample.fmt] + args
        rc, _, err = udfhost(["run", *SUMS, *args, "-o", out, cut_path])
        where = "%s cut at %d of %d bytes (udfhost run ... %s %s)" % (
            sample.name, cut, sample.size, " ".join(args), cut_name)
        key = "timeout" if rc is None else describe(rc)
        tally[key] = tally.get(key, 0) + 1
        leftovers = sorted(os.listdir(out)) if os.path.isdir(out) else []
        prefix = sample.prefix_frames(cut)
        if rc is None:
            problems.append("%s: no exit within %d s; stderr %r" % (where, TIMEOUT, err))
        elif rc < 0:
            problems.append("%s: CRASH, %s; stderr %r" % (where, describe(rc), err))
        elif rc == 0:
            if prefix:
                problem = check_sums(out, sample.data[:prefix], where + " (%d whole frames)"
                                     % prefix)
                if problem:
                    problems.append(problem)
            elif cut >= sample.data_end:
                if results(out) != full:
                    problems.append("%s: succeeded with results that differ from the intact "
                                    "file's (data lost silently)" % where)
            else:
                try:
                    shape = arrays(out)[1].shape
                except Exception:  # noqa: BLE001 - a missing or broken result is reported
                    shape = "unreadable"
                problems.append("%s: exit 0 on a file missing part of its pixels (sumsig "
                                "shape %s); stderr %r" % (where, shape, err))
            if err.strip():
                problems.append("%s: exit 0 but stderr %r" % (where, err))
        else:
            lines = err.splitlines()
            if rc not in CLEAN_ERRORS:
                problems.append("%s: exit status %d, expected 2, 3 or 4; stderr %r"
                                % (where, rc, err))
            if prefix:
                problems.append("%s: refused, but it holds %d whole frames that a run without "
                                "--nav-shape should process (%s, stderr %r)"
                                % (where, prefix, describe(rc), err))
            if len(lines) != 1 or not lines[0].startswith("udfhost: "):
                problems.append("%s: %s with stderr %r, expected exactly one line "
                                "'udfhost: ...'" % (where, describe(rc), err))
            elif cut_name not in lines[0]:
                problems.append("%s: message %r does not name the file" % (where, lines[0]))
            if leftovers:
                problems.append("%s: %s but the output directory holds %s"
                                % (where, describe(rc), leftovers))
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.unlink(cut_path)
    print("  %s (%d bytes, data end %d): %d cuts: %s" % (
        sample.name, sample.size, sample.data_end, sum(tally.values()),
        ", ".join("%d %s" % (n, k) for k, n in sorted(tally.items()))))
    if problems:
        raise AssertionError("%d of the cuts of %s went wrong:\n  %s"
                             % (len(problems), sample.name, "\n  ".join(problems)))


# --- the samples -------------------------------------------------------------------------------


def whole_frames(offset, stride, exact=False):
    """For data without --nav-shape: the whole frames a cut keeps (None when none, or when exact
    and the cut is not on a frame boundary)."""
    def frames_kept(cut):
        k = max(cut - offset, 0) // stride
        if k == 0 or (exact and (cut - offset) % stride):
            return None
        return min(k, NFRAMES)
    return frames_kept


def raw_sample(tmp, with_nav):
    data = frames()
    offset = 0 if with_nav else 100
    name = "raw-nav" if with_nav else "raw"
    path = os.path.join(tmp, name + ".raw")
    write_raw(path, data, offset)
    args = raw_args(NAV, SIG, "<u2", offset)
    if not with_nav:  # what a user gives for a raw file whose scan length they do not know
        args = ["--format", "raw", "--dtype", "uint16", "--sig-shape", "12,10",
                "--offset", str(offset)]
    stride = data[0].nbytes
    bounds = [offset + k * stride for k in range(NFRAMES + 1)]
    return Sample(name, path, data, args, "raw", 0, offset + data.nbytes, bounds,
                  [] if with_nav else [50, 99],
                  None if with_nav else whole_frames(offset, stride))


def test_raw_with_nav_shape(tmp):
    check_cuts(tmp, raw_sample(tmp, True))


def test_raw_without_nav_shape(tmp):
    check_cuts(tmp, raw_sample(tmp, False))


def test_npy(tmp):
    data = frames()
    path = os.path.join(tmp, "scan.npy")
    np.save(path, data.reshape(NAV + SIG))
    with open(path, "rb") as f:
        f.read(6)
        major = f.read(1)[0]
        f.read(1)
        hlen = int.from_bytes(f.read(2 if major == 1 else 4), "little")
    start = (10 if major == 1 else 12) + hlen
    assert os.path.getsize(path) == start + data.nbytes
    stride = data[0].nbytes
    check_cuts(tmp, Sample("npy", path, data, [], "npy", 6, start + data.nbytes,
                           [start + k * stride for k in range(NFRAMES + 1)],
                           [6, 8, 9, 10, 40, start - 2]))


def test_mrc(tmp):
    data = (frames() // 2).astype("<i2")
    path = os.path.join(tmp, "stack.mrc")
    with mrcfile.new(path, data) as m:
        m.set_extended_header(np.zeros(10, dtype=[("a", "<i4")]))
    with mrcfile.open(path) as m:
        start = 1024 + int(m.header.nsymbt)
    assert os.path.getsize(path) == start + data.nbytes, os.path.getsize(path)
    stride = data[0].nbytes
    check_cuts(tmp, Sample("mrc", path, data, [], "mrc", 212, start + data.nbytes,
                           [start + k * stride for k in range(NFRAMES + 1)],
                           [12, 100, 208, 211, 224, 1023, 1024, 1025]))


def tiff_sample(tmp, name, compression):
    data = frames()
    path = os.path.join(tmp, name + ".tif")
    tifffile.imwrite(path, data, photometric="minisblack", compression=compression)
    bounds, data_end = [], 0
    with tifffile.TiffFile(path) as t:
        assert len(t.pages) == NFRAMES and t.pages[0].compression == (
            1 if compression is None else 8), (len(t.pages), t.pages[0].compression)
        for page in t.pages:
            bounds.append(page.offset)  # the directory
            for off, count in zip(page.dataoffsets, page.databytecounts):
                bounds += [off, off + count]
                data_end = max(data_end, off + count)
    return Sample(name, path, data, [], "tiff", 4, data_end, bounds, [2, 4, 7, 8, 9, 10, 30])


def test_tiff_uncompressed(tmp):
    check_cuts(tmp, tiff_sample(tmp, "tiff", None))


def test_tiff_deflate(tmp):
    check_cuts(tmp, tiff_sample(tmp, "tiff-deflate", "zlib"))


def mib_sample(tmp, with_nav):
    data = frames()
    name = "mib-nav" if with_nav else "mib"
    path = os.path.join(tmp, name + ".mib")
    write_mib(path, data, "U16")
    stride = 384 + data[0].nbytes
    assert os.path.getsize(path) == NFRAMES * stride
    bounds = [k * stride for k in range(NFRAMES + 1)] + [k * stride + 384 for k in range(NFRAMES)]
    return Sample(name, path, data, ["--nav-shape", "2,3"] if with_nav else [], "mib", 3,
                  NFRAMES * stride, bounds, [2, 3, 4, 50, 383],
                  None if with_nav else whole_frames(0, stride, exact=True))


def test_mib_without_nav_shape(tmp):
    check_cuts(tmp, mib_sample(tmp, False))


def test_mib_with_nav_shape(tmp):
    check_cuts(tmp, mib_sample(tmp, True))


def hdf5_sample(tmp, name, **kw):
    data = frames()
    path = os.path.join(tmp, name + ".h5")
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", data=data.reshape(NAV + SIG), **kw)
        if kw:
            chunks = [ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks())]
            spans = [(c.byte_offset, c.byte_offset + c.size) for c in chunks]
        else:
            start = ds.id.get_offset()
            spans = [(start + k * data[0].nbytes, start + (k + 1) * data[0].nbytes)
                     for k in range(NFRAMES)]
    bounds = sorted({b for s in spans for b in s})
    return Sample(name, path, data, [], "hdf5", 8, max(e for _, e in spans), bounds,
                  [4, 8, 9, 40, 100, min(s for s, _ in spans) // 2])


def test_hdf5_contiguous(tmp):
    check_cuts(tmp, hdf5_sample(tmp, "hdf5"))


def test_hdf5_gzip_chunked(tmp):
    check_cuts(tmp, hdf5_sample(tmp, "hdf5-gzip", chunks=(1, 1) + SIG, compression="gzip"))


# --- files that change during a run, and signals -----------------------------------------------


def sparse_raw(path, size, head=1 << 20):
    """A file of size bytes: head bytes of data, then a hole (reads as zeros)."""
    with open(path, "wb") as f:
        f.write(RNG.integers(0, 1000, size=head // 2, dtype="<u2").tobytes())
    os.truncate(path, size)


def test_file_shrinks_while_mapped(tmp):
    """A raw file truncated from 64 MB to 1 MB while udfhost reads it: udfhost either finished
    first, or stops with status 3 and one line naming the file (SIGBUS caught), never a crash."""
    path = os.path.join(tmp, "shrinks.raw")
    out = os.path.join(tmp, "out")
    args = ["run", "--plugin", "sum", "--plugin", "stddev", "--format", "raw", "--dtype",
            "uint16", "--nav-shape", "512", "--sig-shape", "256,256", "--threads", "1",
            "--partition-size", "1M", "-o", out, path]
    problems, caught, outcomes = [], 0, []
    for delay in (0.05, 0.02, 0.08, 0.01, 0.15, 0.005, 0.3):
        sparse_raw(path, 64 << 20)
        if os.path.isdir(out):
            shutil.rmtree(out)
        p = subprocess.Popen([UDFHOST] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(delay)
        running = p.poll() is None
        os.truncate(path, 1 << 20)
        try:
            _, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            problems.append("delay %.3f s: no exit within %d s" % (delay, TIMEOUT))
            continue
        rc = p.returncode
        outcomes.append("delay %.3f s: %s%s %r" % (
            delay, describe(rc), "" if running else " (finished before the cut)", err.strip()))
        lines = err.splitlines()
        leftovers = sorted(os.listdir(out)) if os.path.isdir(out) else []
        if rc < 0:
            problems.append("delay %.3f s: CRASH, %s (the mapped file shrank under udfhost; "
                            "SIGBUS must be caught and reported with status 3); stderr %r"
                            % (delay, describe(rc), err))
        elif rc == 0:
            if running and not leftovers:
                problems.append("delay %.3f s: exit 0 without results" % delay)
        else:
            caught += "SIGBUS" in err or "changed" in err
            if rc != 3:
                problems.append("delay %.3f s: exit %d, expected 3; stderr %r" % (delay, rc, err))
            if len(lines) != 1 or not lines[0].startswith("udfhost: ") \
                    or "shrinks.raw" not in lines[0]:
                problems.append("delay %.3f s: expected one line 'udfhost: ... shrinks.raw ...', "
                                "got %r" % (delay, err))
            if leftovers:
                problems.append("delay %.3f s: %s but the output directory holds %s"
                                % (delay, describe(rc), leftovers))
    os.unlink(path)
    print("  " + "\n  ".join(outcomes))
    if problems:
        raise AssertionError("file shrinking while mapped:\n  " + "\n  ".join(problems))
    if not caught:
        print("  note: no run was cut while it read the file; the SIGBUS path was not hit")


def stop_with(tmp, signum, status):
    """A slow run (about 2 s) on a 2 GB sparse raw file, stopped by signum after 0.2 s: the exit
    status within 1 s, one line on stderr, no temporary or result files left."""
    path = os.path.join(tmp, "big.raw")
    out = os.path.join(tmp, "out")
    sparse_raw(path, 2 << 30)
    args = ["run", "--plugin", "stddev", "--plugin", "sum", "--format", "raw", "--dtype",
            "uint16", "--sig-shape", "256,256", "--threads", "1", "--no-progress", "-o", out,
            path]
    problems, outcomes = [], []
    try:
        for attempt in range(3):
            if os.path.isdir(out):
                shutil.rmtree(out)
            os.mkdir(out)  # exists from the start, so leftovers in it are visible
            p = subprocess.Popen([UDFHOST] + args, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            time.sleep(0.2)
            if p.poll() is not None:
                p.communicate()
                outcomes.append("attempt %d: finished (%s) before the signal" %
                                (attempt, describe(p.returncode)))
                continue
            sent = time.monotonic()
            p.send_signal(signum)
            try:
                _, err = p.communicate(timeout=1.0)
                took = time.monotonic() - sent
            except subprocess.TimeoutExpired:
                try:
                    _, err = p.communicate(timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    p.kill()
                    _, err = p.communicate()
                took = time.monotonic() - sent
                problems.append("%s: still running 1 s after the signal (exited after %.2f s "
                                "with %s)" % (signal.Signals(signum).name, took,
                                              describe(p.returncode)))
            rc = p.returncode
            outcomes.append("attempt %d: %s after %.3f s, stderr %r"
                            % (attempt, describe(rc), took, err))
            left = sorted(os.listdir(out))
            if rc != status:
                problems.append("%s: %s, expected exit %d; stderr %r"
                                % (signal.Signals(signum).name, describe(rc), status, err))
            elif len(err.splitlines()) != 1 or not err.startswith("udfhost: "):
                problems.append("%s: expected one line 'udfhost: ...' on stderr, got %r"
                                % (signal.Signals(signum).name, err))
            tmps = [f for f in left if ".tmp" in f]
            if tmps:
                problems.append("%s: temporary files left: %s" % (signal.Signals(signum).name,
                                                                  tmps))
            if [f for f in left if f not in tmps]:
                problems.append("%s: files left in the output directory: %s"
                                % (signal.Signals(signum).name, [f for f in left if f not in tmps]))
            break
        else:
            problems.append("every run finished within 0.2 s: the file is too small to test "
                            "%s here" % signal.Signals(signum).name)
    finally:
        os.unlink(path)
    print("  " + "; ".join(outcomes))
    if problems:
        raise AssertionError("\n  ".join(problems))


def test_sigint_stops_run(tmp):
    stop_with(tmp, signal.SIGINT, 130)


def test_sigterm_stops_run(tmp):
    stop_with(tmp, signal.SIGTERM, 143)


if __name__ == "__main__":
    main([test_raw_with_nav_shape, test_raw_without_nav_shape, test_npy, test_mrc,
          test_tiff_uncompressed, test_tiff_deflate, test_mib_without_nav_shape,
          test_mib_with_nav_shape, test_hdf5_contiguous, test_hdf5_gzip_chunked,
          test_file_shrinks_while_mapped, test_sigint_stops_run, test_sigterm_stops_run])
