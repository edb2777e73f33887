"""Output faults on real file systems: a full disk (a small tmpfs), a read-only one, and /dev/full
as standard output. Each run must fail with one line naming the file and the problem, exit 5,
leave no new or temporary file, and keep the results an earlier run wrote intact.

Mounting needs root (CAP_SYS_ADMIN), as in CI; elsewhere those cases say so and are skipped.
"""
import contextlib
import hashlib
import os
import subprocess

import numpy as np

from udfhost_test import UDFHOST, main, raw_args, run

NAV, SIG = (4, 8), (128, 128)


def setup(tmp):
    path = os.path.join(tmp, "data.raw")
    data = (np.arange(np.prod(NAV + SIG)) % 3001).astype("<u2").reshape(NAV + SIG)
    data.tofile(path)
    return path


def snapshot(d):
    """Name -> sha256 of every file in d."""
    out = {}
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


@contextlib.contextmanager
def tmpfs(where, size, case):
    """A tmpfs of size bytes mounted at where for the with block; yields False (and says the case
    was skipped) where mounting is not allowed."""
    os.makedirs(where, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size, "tmpfs", where],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print("note: cannot mount a tmpfs here (not root?); the %s case was skipped" % case)
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", where], capture_output=True)


def check_refused(args, out, before, *needles):
    p = subprocess.run([UDFHOST] + [str(a) for a in args], capture_output=True, text=True)
    what = "udfhost %s" % " ".join(map(str, args))
    lines = p.stderr.strip().splitlines()
    if p.returncode != 5 or len(lines) != 1:
        raise AssertionError("%s: exit %d (expected 5), stderr %r" % (what, p.returncode, p.stderr))
    for n in needles:
        if n not in lines[0]:
            raise AssertionError("%s: message %r lacks %r" % (what, lines[0], n))
    after = snapshot(out)
    if after != before:
        raise AssertionError("%s: the output directory changed: %s -> %s" % (what, before, after))
    return lines[0]


# sum (64 KiB) and stddev (five 64-128 KiB buffers) need about 450 KiB with the run record.
PLUGINS = ["--plugin", "sum", "--plugin", "stddev", "--plugin", "sumsig"]


def test_full_disk(tmp):
    path = setup(tmp)
    out = os.path.join(tmp, "small")
    # Room for one run's results but not for the temporary copies of a second one beside them.
    with tmpfs(out, 640 << 10, "full-disk") as mounted:
        if not mounted:
            return
        run(["run", *PLUGINS, *raw_args(NAV, SIG, "<u2"), "-o", out, path])
        before = snapshot(out)
        check_refused(["run", *PLUGINS, "-p", "dtype=float64", *raw_args(NAV, SIG, "<u2"),
                       "--overwrite", "-o", out, path], out, before,
                      out, "No space left on device")
        # The earlier results are still whole.
        got = np.load(os.path.join(out, "sum.intensity.npy"))
        want = np.fromfile(path, "<u2").reshape(NAV + SIG).sum(axis=(0, 1), dtype=np.float64)
        if not np.array_equal(got, want.astype(np.float32)):
            raise AssertionError("the earlier sum changed")


def test_full_disk_pictures(tmp):
    """The PNG and TIFF writers fill the disk: the message names the picture as the user will
    see it, not the temporary it was being written under."""
    path = setup(tmp)
    out = os.path.join(tmp, "pictures")
    # 68 KiB: room for sum.intensity.npy (64 KiB of float32 and its header), not for a picture.
    with tmpfs(out, 68 << 10, "full-disk picture") as mounted:
        if not mounted:
            return
        for fmt, name in ((["--preview"], "sum.intensity.png"),
                          (["--save-format", "tiff"], "sum.intensity.tif")):
            args = ["run", "--plugin", "sum", *fmt, *raw_args(NAV, SIG, "<u2"), "-o", out, path]
            line = check_refused(args, out, {}, os.path.join(out, name), "No space left on device")
            if ".tmp" in line:
                raise AssertionError("the message names the temporary file: %r" % line)


def test_read_only_file_system(tmp):
    """Root may write into any directory, but not into a read-only file system."""
    path = setup(tmp)
    out = os.path.join(tmp, "ro")
    with tmpfs(out, 4 << 20, "read-only") as mounted:
        if not mounted:
            return
        run(["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"), "-o", out, path])
        subprocess.run(["mount", "-o", "remount,ro", out], check=True)
        before = snapshot(out)
        check_refused(["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"), "--overwrite",
                       "-o", out, path], out, before, out, "Read-only file system")
        check_refused(["run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"), "--overwrite",
                       "-o", os.path.join(out, "new"), path], out, before, "new",
                      "Read-only file system")


def test_stdout_full(tmp):
    path = setup(tmp)
    out = os.path.join(tmp, "out")
    with open("/dev/full", "wb") as full:
        p = subprocess.run([UDFHOST, "run", "--plugin", "sum", *raw_args(NAV, SIG, "<u2"),
                            "--stdout", "sum.intensity", "-o", out, path], stdout=full,
                           stderr=subprocess.PIPE, text=True)
    lines = p.stderr.strip().splitlines()
    if p.returncode != 5 or len(lines) != 1 or "stdout" not in lines[0] or \
            "No space left on device" not in lines[0]:
        raise AssertionError("--stdout to /dev/full: exit %d, %r" % (p.returncode, p.stderr))


if __name__ == "__main__":
    main([test_full_disk, test_full_disk_pictures, test_read_only_file_system, test_stdout_full])
