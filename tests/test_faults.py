"""Fault injection, as SQLite tests it: tests/udfhost-fault (udfhost with every allocation and file
I/O call of the host wrapped, see tests/fault/fault.c) runs each of five end-to-end runs over the
sample scan once cleanly to count its calls, then once for every N with the N-th allocation
failing (once, and from then on), and once for every N and every kind of error of the N-th
read/write/fsync/rename. Every run must either succeed with the clean run's results, byte for byte (EINTR
and short transfers must always end so), or fail cleanly: the status for the fault (6 for memory,
3 for reading, 5 for writing), one line on stderr naming the file (and for reads and writes the
offset), no signal, no sanitizer report (the ASan build checks for leaks on every error path),
and the output directory exactly as it was: no result, no temporary, the results of an earlier
run (which it was told to --overwrite) untouched.

Issue 8: "a test build where the N-th allocation fails, for every N over an end-to-end run
(one-off and persistent): each ends in an error message, no leak (ASan/LSan), no output file";
"EIO, short reads, ENOSPC and EINTR at the N-th read/write call: the message names file and
offset, EINTR is retried, no partial result."
"""
import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys

import numpy as np

from udfhost_test import SRCDIR, main

FAULT_BIN = os.environ.get("UDFHOST_FAULT_BIN", "")
SAMPLE = os.path.join(SRCDIR, "data", "sample.ini")
SAMPLE_DATA = os.path.join(SRCDIR, "data", "sample.raw")
TIMEOUT = 60
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")
# Faults a correct program always survives.
SURVIVABLE = ("short", "eintr")
KINDS = {"read": ("eio", "short", "eintr"), "write": ("eio", "enospc", "short", "eintr"),
         "sync": ("eio", "enospc"), "rename": ("eio", "enospc")}
STATUS = {"alloc": 6, "read": 3, "write": 5, "sync": 5, "rename": 5}
STATS = ["--plugin", "sum", "--plugin", "sumsig", "--plugin", "stddev"]
ROI_DARK = ["--roi", "{tmp}/roi.npy", "--dark", "{tmp}/dark.npy"]


def sample_npy(tmp):
    """The sample scan as .npy, an ROI, a dark frame and masks: for the paths that detect the format
    and read .npy headers and arrays."""
    frames = np.fromfile(SAMPLE_DATA, dtype="<u2").reshape(24, 32, 48, 48)
    np.save(os.path.join(tmp, "sample.npy"), frames)
    np.save(os.path.join(tmp, "roi.npy"), (np.arange(24 * 32) % 3 != 0).reshape(24, 32))
    np.save(os.path.join(tmp, "dark.npy"), np.full((48, 48), 3, np.float32))
    np.save(os.path.join(tmp, "masks.npy"),
            np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48))
    return os.path.join(tmp, "sample.npy")


def udfhost(args, fault=None, count_file=None, stdin=None):
    """Run the fault build, stdin bytes on its standard input; return (status, stderr). The
    status is -SIG for a signal."""
    env = dict(os.environ)
    env.pop("UDFHOST_FAULT", None)
    env.pop("UDFHOST_FAULT_COUNT", None)
    if fault:
        env["UDFHOST_FAULT"] = fault
    if count_file:
        env["UDFHOST_FAULT_COUNT"] = count_file
    try:
        p = subprocess.run([FAULT_BIN] + args, input=stdin, capture_output=True, env=env,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % TIMEOUT
    return p.returncode, p.stderr.decode(errors="replace")


def snapshot(out):
    """What the output directory holds: name -> (inode, bytes)."""
    files = {}
    for name in os.listdir(out):
        path = os.path.join(out, name)
        with open(path, "rb") as f:
            files[name] = (os.stat(path).st_ino, f.read())
    return files


def read_counts(path):
    counts, fired = {}, None
    with open(path) as f:
        for line in f:
            words = line.split()
            if words[0] == "fired":
                fired = "%s at %s" % (words[1], words[2])
            else:
                counts[words[0]] = int(words[1])
    return counts, fired


class Config:
    """One end-to-end run: counted once cleanly, then run with every fault."""

    def __init__(self, tmp, name, args, dataset, persist=True, stdin=None):
        self.tmp, self.name, self.dataset, self.persist = tmp, name, dataset, persist
        self.stdin = stdin
        self.argv = [a.format(tmp=tmp) for a in args]
        clean = os.path.join(tmp, "clean")
        rc, err = udfhost(self.args(clean, False), stdin=stdin)
        if rc != 0 or err:
            raise AssertionError("%s: clean run: status %s, stderr %r" % (name, rc, err))
        self.clean = {k: v[1] for k, v in snapshot(clean).items()}
        # The record holds times and the command line; all that must match is that it is there.
        self.clean.pop("udfhost-run.json")
        # Each faulty run writes with --overwrite into a copy of this: half of the results of an
        # earlier run, to be replaced (the others are new), and an unrelated file. All must
        # survive a failed run untouched (same inode, same bytes).
        self.seed = os.path.join(tmp, "seed")
        shutil.copytree(clean, self.seed)
        for name in sorted(os.listdir(self.seed))[::2]:
            os.unlink(os.path.join(self.seed, name))
        with open(os.path.join(self.seed, "unrelated.txt"), "w") as f:
            f.write("not udfhost's\n")
        # The calls to count are those of a run into the seed, as every faulty run is.
        counted = os.path.join(tmp, "counted")
        shutil.copytree(self.seed, counted)
        rc, err = udfhost(self.args(counted), count_file=counted + ".counts", stdin=stdin)
        if rc != 0 or err:
            raise AssertionError("%s: counting run: status %s, stderr %r" % (name, rc, err))
        self.counts, _ = read_counts(counted + ".counts")
        for cls in ("alloc", "write", "sync", "rename"):
            if not self.counts[cls]:
                raise AssertionError("%s: no %s call counted: is udfhost-fault wrapped?"
                                     % (name, cls))

    def args(self, out, overwrite=True):
        return (["run"] + self.argv + ["-o", out, self.dataset]
                + (["--overwrite"] if overwrite else []))

    def faults(self):
        """Every fault to try: (class, spec)."""
        for n in range(1, self.counts["alloc"] + 1):
            yield "alloc", "alloc:%d" % n
            if self.persist:
                yield "alloc", "alloc:%d:persist" % n
        for cls, kinds in KINDS.items():
            for n in range(1, self.counts[cls] + 1):
                for kind in kinds:
                    yield cls, "%s:%d:%s" % (cls, n, kind)

    def check(self, index, cls, fault):
        """Run with one fault; return None or what went wrong."""
        out = os.path.join(self.tmp, "run%d" % index)
        shutil.copytree(self.seed, out, copy_function=os.link)
        before = snapshot(out)
        counts_file = out + ".counts"
        rc, err = udfhost(self.args(out), fault, counts_file, self.stdin)
        fired = read_counts(counts_file)[1] if os.path.exists(counts_file) else None
        try:
            return self.judge(cls, fault, rc, err, out, before, fired)
        except Exception as e:  # a result file that is not even readable, say
            return "%s, UDFHOST_FAULT=%s: %r" % (self.name, fault, e)
        finally:
            shutil.rmtree(out)

    def judge(self, cls, fault, rc, err, out, before, fired):
        what = "%s, UDFHOST_FAULT=%s (fired: %s): status %s, stderr:\n%s" % (
            self.name, fault, fired or "no", rc, err)
        if rc is None:
            return what + "\n  -> hangs"
        if rc < 0:
            return what + "\n  -> killed by %s" % signal.Signals(-rc).name
        if any(s in err for s in SANITIZER_REPORTS):
            return what + "\n  -> sanitizer report"
        after = snapshot(out)
        kind = fault.split(":")[2] if cls != "alloc" else "enomem"
        if rc == 0:
            if err:
                return what + "\n  -> succeeded but printed something"
            got = {k: v[1] for k, v in after.items() if k != "udfhost-run.json"}
            if got.keys() - before.keys() - self.clean.keys() or "udfhost-run.json" not in after:
                return what + "\n  -> succeeded with other files: %s" % sorted(after)
            for name, data in self.clean.items():
                if got.get(name) != data:
                    return what + "\n  -> succeeded but %s differs from the clean run" % name
            # Losing an fsync error would leave results that may not be on disk; only the
            # directory's fsync after the renames (the last one) comes too late to undo them.
            if cls == "sync" and fired and fault.split(":")[1] != str(self.counts["sync"]):
                return what + "\n  -> succeeded although an fsync failed"
            if cls == "rename" and fired:
                return what + "\n  -> succeeded although a rename failed"
            return None
        if kind in SURVIVABLE:
            return what + "\n  -> a %s %s must be retried, not fail the run" % (kind, cls)
        lines = err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("udfhost: "):
            return what + "\n  -> not one 'udfhost: ...' line on stderr"
        # Reading back a result file being written (libtiff does) is part of writing results; a
        # file a plugin loads through the host is one of its parameters (udf.h, load_array).
        status = (5 if cls == "read" and out in err else
                  2 if cls == "read" and "masks.npy" in err else STATUS[cls])
        if rc != status:
            return what + "\n  -> status %d, expected %d" % (rc, status)
        if cls != "alloc":
            if not any(f in err for f in (self.tmp, os.path.basename(SAMPLE_DATA), "stdin:")):
                return what + "\n  -> the message names no file"
            if cls in ("read", "write") and "offset" not in err:
                return what + "\n  -> the message names no offset"
        if after != before:
            return what + "\n  -> the output directory changed: %s -> %s" % (
                sorted(before), sorted(after))
        return None


def run_config(c):
    faults = list(c.faults())
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        problems = [p for p in pool.map(lambda a: c.check(a[0], *a[1]), enumerate(faults)) if p]
    print("%s: %s calls, %d runs with a fault, %d problems" % (
        c.name, ", ".join("%d %s" % (v, k) for k, v in c.counts.items()), len(faults),
        len(problems)))
    if problems:
        raise AssertionError("%d of %d runs went wrong; the first ones:\n\n%s" % (
            len(problems), len(faults), "\n\n".join(problems[:8])))


def test_faults_stats_one_thread_pread(tmp):
    """The pread path (--io read) on one worker."""
    run_config(Config(tmp, "sum+sumsig+stddev, 1 thread, pread",
                      STATS + ["--threads", "1", "--io", "read"], SAMPLE))


def test_faults_stats_two_threads_mmap(tmp):
    """The mapped path with two workers: which allocation is the N-th varies from run to run."""
    run_config(Config(tmp, "sum+sumsig+stddev, 2 threads, mmap",
                      STATS + ["--threads", "2", "--io", "mmap"], SAMPLE, persist=False))


def test_faults_png_tiff(tmp):
    """The PNG and TIFF writers (libtiff reads back what it wrote, through our procedures)."""
    run_config(Config(tmp, "sum, --preview, --save-format tiff",
                      ["--plugin", "sum", "--threads", "1", "--preview", "--save-format", "tiff"],
                      SAMPLE))


def test_faults_npy_roi_dark(tmp):
    """Format detection, .npy headers, and the arrays read with array_read_file: ROI, dark frame
    and the masks a plugin loads through the host."""
    run_config(Config(tmp, "sum + masks, .npy, --roi, --dark",
                      ["--plugin", "sum", "--plugin", "masks", "-p", "file={tmp}/masks.npy",
                       "--threads", "2"] + ROI_DARK, sample_npy(tmp)))


def test_faults_stdin(tmp):
    """Raw frames from a pipe (32 of the sample's), where short reads and EINTR are everyday."""
    with open(SAMPLE_DATA, "rb") as f:
        frames = f.read(32 * 48 * 48 * 2)
    run_config(Config(tmp, "sum, stdin", ["--plugin", "sum", "--threads", "2", "--format", "raw",
                                          "--dtype", "uint16", "--nav-shape", "4,8",
                                          "--sig-shape", "48,48"], "-", stdin=frames))


if __name__ == "__main__":
    if not FAULT_BIN or not os.path.exists(FAULT_BIN):
        print("SKIP: no fault-injection build (UDFHOST_FAULT_BIN)")
        sys.exit(77)
    main([test_faults_stats_one_thread_pread, test_faults_stats_two_threads_mmap,
          test_faults_png_tiff, test_faults_npy_roi_dark, test_faults_stdin])
