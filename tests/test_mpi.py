"""Runs across MPI ranks (udfhost built with configure --with-mpi): with 1, 2 and 3 ranks on this
machine every result file is bit-identical to a plain single-process run, and a failure on any
rank ends the job with a message naming rank and host, a non-zero status and no result files.

Skips (exit 77) when udfhost was built without MPI or mpirun is missing.
"""
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np

from udfhost_test import UDFHOST, fixture, main, raw_args, random_frames, run, write_raw

RNG = np.random.default_rng(20261129)
NAV, SIG = (37, 41), (24, 20)
# Open MPI as root in a container: allow root, more ranks than cores, no cross-memory attach.
MPI_ENV = {"OMPI_MCA_btl_vader_single_copy_mechanism": "none",
           "OMPI_MCA_rmaps_base_oversubscribe": "1",
           "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def skip_reason():
    version = subprocess.run([UDFHOST, "--version"], capture_output=True, text=True).stdout
    if "(MPI)" not in version:
        return "udfhost was built without MPI (configure --with-mpi)"
    if not shutil.which("mpirun"):
        return "mpirun not found (apt-get install openmpi-bin)"
    return None


def mpirun(ranks, args, expect=0, mpmd=None):
    """udfhost args on `ranks` ranks; mpmd: other args for ranks 1.. (one more program block)."""
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), UDFHOST,
           *map(str, args)]
    if mpmd:
        cmd = cmd[:4] + ["1", UDFHOST, *map(str, args), ":", "-n", str(ranks - 1), UDFHOST,
                         *map(str, mpmd)]
    env = dict(os.environ, **MPI_ENV)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if expect is not None and (p.returncode == 0) != (expect == 0):
        raise AssertionError("%s: exit %d\nstdout: %s\nstderr: %s"
                             % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def dataset(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = os.path.join(tmp, "scan.raw")
    write_raw(path, data)
    roi = RNG.random(NAV) > 0.25
    roi[3:9] = False  # whole partitions without a selected frame
    np.save(os.path.join(tmp, "roi.npy"), roi)
    return path


def plugin_args():
    return ["--plugin", "sum", "--plugin", "sumsig", "-p", "dtype=float32",
            "--plugin", "stddev", "--plugin", "com", "-p", "cy=11.5", "-p", "cx=9.25",
            "--plugin", "masks", "-p", "disk=12,10,5", "-p", "ring=12,10,3,9",
            "--plugin", fixture("order")]


def result_files(out):
    return sorted(f for f in os.listdir(out) if f.endswith(".npy"))


def assert_same_files(ref, out, what):
    names = result_files(ref)
    if not names or result_files(out) != names:
        raise AssertionError("%s: files %s, expected %s" % (what, result_files(out), names))
    for name in names:
        with open(os.path.join(ref, name), "rb") as a, open(os.path.join(out, name), "rb") as b:
            if a.read() != b.read():
                raise AssertionError("%s: %s differs from the single-process run" % (what, name))


def test_ranks_give_identical_bits(tmp):
    path = dataset(tmp)
    for roi in ([], ["--roi", os.path.join(tmp, "roi.npy")]):
        common = [*plugin_args(), *raw_args(NAV, SIG, "<u2"), "--partition-size", "40K", *roi,
                  path]
        ref = os.path.join(tmp, "ref")
        run(["run", *common, "-o", ref, "--threads", "1"])
        for ranks, threads in ((1, 2), (2, 1), (2, 3), (3, 1), (3, 2)):
            out = os.path.join(tmp, "r%d-t%d" % (ranks, threads))
            p = mpirun(ranks, ["run", *common, "-o", out, "--threads", threads, "--json"])
            what = "%d ranks x %d threads%s" % (ranks, threads, " with ROI" if roi else "")
            assert_same_files(ref, out, what)
            if '"ranks": %d,' % ranks not in p.stdout:
                raise AssertionError("%s: run record does not say %d ranks: %s"
                                     % (what, ranks, p.stdout))
            shutil.rmtree(out)
        shutil.rmtree(ref)


def check_failure(p, out, rank_pattern, *needles):
    """A failed job: non-zero exit, every message names rank and host (ranks ended by the abort
    may say they were stopped), one names a rank matching rank_pattern and holds every needle,
    and no result files. Returns that rank."""
    if p.returncode == 0:
        raise AssertionError("a failed job exited 0:\n" + p.stderr)
    host = socket.gethostname()
    lines = [l for l in p.stderr.splitlines() if l.startswith("udfhost: ")]
    named = [re.match(r"udfhost: rank (\d+) on (\S+): ", l) for l in lines]
    if not lines or not all(named):
        raise AssertionError("failure messages do not name rank and host: %r" % p.stderr)
    for m in named:
        if not (m.group(2) == host or host.startswith(m.group(2) + ".")):
            raise AssertionError("failure names host %s, not %s" % (m.group(2), host))
    cause = [(l, m) for l, m in zip(lines, named)
             if re.fullmatch(rank_pattern, m.group(1)) and all(n in l for n in needles)]
    if not cause:
        raise AssertionError("no message from rank %s mentions %s: %r" % (rank_pattern, needles, lines))
    if os.path.isdir(out) and os.listdir(out):
        raise AssertionError("a failed job wrote %s" % os.listdir(out))
    return int(cause[0][1].group(1))


def test_failing_partition_stops_the_job(tmp):
    path = dataset(tmp)
    out = os.path.join(tmp, "out")
    for ranks in (1, 2, 3):
        args = ["run", "--plugin", "sum", "--plugin", fixture("fail"), "-p", "hook=process_tile",
                "-p", "partition=30", *raw_args(NAV, SIG, "<u2"), "--partition-size", "40K",
                "--threads", "2", "-o", out, path]
        p = mpirun(ranks, args, expect=1)
        needles = ["plugin fail failed in process_tile on partition 30", "deliberate failure"]
        if ranks > 1:
            check_failure(p, out, "[0-9]+", *needles)
        elif [l for l in p.stderr.splitlines() if l.startswith("udfhost")] != [
                "udfhost: %s: %s in process_tile (status -3)" % tuple(needles)]:
            # One rank is a plain run: the plain message, naming no rank (mpirun adds its own).
            raise AssertionError("1 rank: unexpected message %r" % p.stderr)


def test_failure_on_another_rank(tmp):
    # MPMD: only ranks 1 and 2 fail, on the first partition they compute. Enough data that they
    # get one before rank 0 has done everything (about 1000 partitions).
    data = random_frames(RNG, (128, 128, 16, 16), "<u2")
    path = os.path.join(tmp, "big.raw")
    write_raw(path, data)
    out = os.path.join(tmp, "out")
    common = [*raw_args((128, 128), (16, 16), "<u2"), "--partition-size", "8K", "--threads", "1",
              "-o", out, path]
    p = mpirun(3, ["run", "--plugin", "sum", "--plugin", fixture("fail"), *common], expect=1,
               mpmd=["run", "--plugin", "sum", "--plugin", fixture("fail"), "-p",
                     "hook=process_tile", "-p", "partition=-1", *common])
    check_failure(p, out, "[12]", "plugin fail failed in process_tile on partition ",
                  "deliberate failure")


def test_failing_setup_on_one_rank(tmp):
    # MPMD: rank 1 alone is given a plugin that fails while being set up (as a rank that cannot
    # read the file would).
    path = dataset(tmp)
    out = os.path.join(tmp, "out")
    common = [*raw_args(NAV, SIG, "<u2"), "-o", out, path]
    p = mpirun(2, ["run", "--plugin", fixture("fail"), *common], expect=1,
               mpmd=["run", "--plugin", fixture("fail"), "-p", "hook=init_task", *common])
    check_failure(p, out, "1", "init_task")


if __name__ == "__main__":
    why = skip_reason()
    if why:
        print("SKIP: " + why)
        sys.exit(77)
    main([test_ranks_give_identical_bits, test_failing_partition_stops_the_job,
          test_failure_on_another_rank, test_failing_setup_on_one_rank])
