"""--isolate and --plugin-timeout: a plugin that fails, crashes, aborts, hangs or allocates far
more memory than the machine has, on a chosen partition, with 1, 2 and 8 workers. The run must
stop with one line naming plugin, hook and partition, exit 4, write no result file and leave no
worker process or thread behind; with --isolate a crash is a reported error, not the host's death.
"""
import os
import resource
import signal
import subprocess
import time

import numpy as np

from udfhost_test import UDFHOST, assert_equal, fixture, main, raw_args, run

NAV, SIG = (4, 5), (16, 16)
SANITIZED = bool(os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"))


def setup(tmp):
    path = os.path.join(tmp, "data.raw")
    data = (np.arange(np.prod(NAV + SIG)) * 7919 % 4093).astype("<u2").reshape(NAV + SIG)
    data.tofile(path)
    return path, data


def base(path, out):
    # 20 frames in partitions of one frame each, so partition 3 exists.
    return ["run", *raw_args(NAV, SIG, "<u2"), "--partition-size", "1", "-o", out, path]


def leftover_processes(marker):
    """udfhost processes still alive whose command line holds marker (the run's own out dir)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and "udfhost" in cmd:
            found.append((pid, cmd.replace("\0", " ")))
    return found


def check_failed_run(args, out, expect_status, *needles, limit_as=None, timeout=30):
    def limits():
        if limit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))
    started = time.monotonic()
    p = subprocess.run([UDFHOST] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, preexec_fn=limits)
    took = time.monotonic() - started
    what = "udfhost %s" % " ".join(map(str, args))
    if p.returncode != expect_status:
        raise AssertionError("%s: exit %d, expected %d: %s" % (what, p.returncode, expect_status,
                                                               p.stderr))
    lines = p.stderr.strip().splitlines()
    if len(lines) != 1 or not lines[0].startswith("udfhost: "):
        raise AssertionError("%s: expected one error line, got %r" % (what, p.stderr))
    for n in needles:
        if n not in lines[0]:
            raise AssertionError("%s: message %r lacks %r" % (what, lines[0], n))
    if os.path.isdir(out) and os.listdir(out):
        raise AssertionError("%s: a failed run left %s" % (what, os.listdir(out)))
    alive = leftover_processes(out)
    if alive:
        for pid, _ in alive:
            os.kill(int(pid), signal.SIGKILL)
        raise AssertionError("%s: processes left running: %s" % (what, alive))
    return took


def test_isolated_results_are_the_same_bits(tmp):
    path, data = setup(tmp)
    plugins = ["--plugin", "sum", "--plugin", "stddev", "--plugin", "sumsig", "--plugin",
               fixture("fail")]
    ref = os.path.join(tmp, "ref")
    run(base(path, ref) + plugins)
    names = sorted(f for f in os.listdir(ref) if f.endswith(".npy"))
    for threads in (1, 2, 8):
        out = os.path.join(tmp, "iso%d" % threads)
        run(base(path, out) + plugins + ["--isolate", "--threads", threads,
                                         "--plugin-timeout", "60"])
        got = sorted(f for f in os.listdir(out) if f.endswith(".npy"))
        if got != names:
            raise AssertionError("--isolate -t %d wrote %s, not %s" % (threads, got, names))
        for f in names:
            assert_equal(np.load(os.path.join(out, f)), np.load(os.path.join(ref, f)),
                         "%s with --isolate -t %d" % (f, threads))
    # sum rounds its exact sum to float32 once, at the end.
    assert_equal(np.load(os.path.join(ref, "sum.intensity.npy")),
                 data.sum(axis=(0, 1), dtype=np.float64).astype(np.float32), "sum against NumPy")
    # An ROI and live results go through the parent's merge as without --isolate.
    roi = os.path.join(tmp, "roi.npy")
    np.save(roi, (np.arange(20) % 3 == 0).reshape(NAV))
    out = os.path.join(tmp, "roi")
    run(base(path, out) + ["--plugin", "sumsig", "--isolate", "-t", 2, "--roi", roi,
                           "--live-every", 2])
    got = np.load(os.path.join(out, "sumsig.intensity.npy"))
    want = np.where(np.load(roi), data.sum(axis=(2, 3), dtype=np.float64), np.nan)
    assert_equal(got, want.astype(got.dtype), "sumsig with --isolate and an ROI")


def test_isolated_readers_with_state(tmp):
    """Worker processes share what the parent opened before forking: libhdf5's file (read with
    pread) and libtiff's decoder handles (opened per worker) must still give the same bits."""
    import h5py
    import tifffile
    data = (np.arange(12 * 10 * 32 * 32) * 2654435761 % 5003).astype("<u2").reshape(12, 10, 32, 32)
    h5 = os.path.join(tmp, "scan.h5")
    with h5py.File(h5, "w") as f:
        f.create_dataset("data", data=data, chunks=(1, 3, 32, 32), compression="gzip")
    tif = os.path.join(tmp, "scan.tif")
    tifffile.imwrite(tif, data.reshape(120, 32, 32), compression="zlib")
    want = data.sum(axis=(0, 1), dtype=np.float64)
    for path, extra in ((h5, []), (tif, ["--nav-shape", "12,10"])):
        for threads in (1, 3):
            out = os.path.join(tmp, "out-%s-%d" % (os.path.basename(path), threads))
            run(["run", "--plugin", "sum", "-p", "dtype=float64", "--isolate", "-t", threads,
                 "--partition-size", "20K", *extra, "-o", out, path])
            assert_equal(np.load(os.path.join(out, "sum.intensity.npy")), want,
                         "%s with --isolate -t %d" % (path, threads))


def test_plugin_faults_isolated(tmp):
    path, _ = setup(tmp)
    out = os.path.join(tmp, "out")
    cases = [
        ("error", "plugin fail failed in process_tile on partition 3", "deliberate failure"),
        ("segv", "plugin fail crashed with SIGSEGV in process_tile on partition 3"),
        ("abort", "plugin fail crashed with SIGABRT in process_tile on partition 3"),
        ("hang", "plugin fail did not return from process_tile on partition 3 within 0.5 s",
         "--plugin-timeout", "worker process was killed"),
    ]
    for how, *needles in cases:
        if SANITIZED and how in ("segv", "abort"):
            continue  # the sanitizer reports the worker's crash itself, in more lines
        # A returned error stops the run the same way without worker processes.
        for extra in (["--isolate"], []) if how == "error" else (["--isolate"],):
            for threads in (1, 2, 8):
                took = check_failed_run(
                    base(path, out) + ["--plugin", "sum", "--plugin", fixture("fail"),
                                       "-p", "hook=process_tile", "-p", "partition=3",
                                       "-p", "how=" + how, "--threads", threads,
                                       "--plugin-timeout", "0.5"] + extra, out, 4, *needles)
                if took > 10:
                    raise AssertionError("how=%s -t %d took %.1f s" % (how, threads, took))


def test_runaway_allocation(tmp):
    """10x the machine's memory in one hook: the allocation fails and the plugin says so; the
    address-space limit keeps a machine that overcommits from trying to provide it."""
    if SANITIZED:
        print("note: skipped under a sanitizer (its allocator reserves without limit)")
        return
    path, _ = setup(tmp)
    out = os.path.join(tmp, "out")
    for extra in (["--isolate"], []):
        for threads in (1, 2, 8):
            check_failed_run(base(path, out) + ["--plugin", fixture("fail"), "-p",
                                                "hook=process_tile", "-p", "partition=3", "-p",
                                                "how=alloc", "--threads", threads] + extra,
                             out, 4, "plugin fail failed in process_tile on partition 3",
                             "cannot allocate 10x RAM", limit_as=16 << 30)


def test_timeout_without_isolation(tmp):
    """Without worker processes a hung call cannot be stopped: the watchdog names it and the
    process exits; nothing was written, so nothing is lost."""
    path, _ = setup(tmp)
    out = os.path.join(tmp, "out")
    for threads in (1, 2, 8):
        took = check_failed_run(
            base(path, out) + ["--plugin", "sum", "--plugin", fixture("fail"), "-p",
                               "hook=process_tile", "-p", "partition=3", "-p", "how=hang",
                               "--threads", threads, "--plugin-timeout", "0.5"], out, 4,
            "plugin fail did not return from process_tile on partition 3 within 0.5 s")
        if took > 10:
            raise AssertionError("-t %d took %.1f s to stop" % (threads, took))
    # merge and get_results run on the merging thread (in the parent, with --isolate).
    for extra in ([], ["--isolate"]):
        check_failed_run(base(path, out) + ["--plugin", fixture("fail"), "-p", "hook=merge",
                                            "-p", "partition=3", "-p", "how=hang",
                                            "--plugin-timeout", "0.5", "-t", 2] + extra,
                         out, 4, "plugin fail did not return from merge on partition 3")
        check_failed_run(base(path, out) + ["--plugin", fixture("fail"), "-p",
                                            "hook=get_results", "-p", "how=hang",
                                            "--plugin-timeout", "0.5"] + extra,
                         out, 4, "plugin fail did not return from get_results within 0.5 s")


def test_sigterm_ends_isolated_workers(tmp):
    """SIGTERM to the host while a worker hangs: exit 143 within a second, no worker left."""
    path, _ = setup(tmp)
    out = os.path.join(tmp, "out")
    args = base(path, out) + ["--plugin", fixture("fail"), "-p", "hook=process_tile", "-p",
                              "partition=0", "-p", "how=hang", "--isolate", "-t", 2]
    p = subprocess.Popen([UDFHOST] + [str(a) for a in args], stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        _, stderr = p.communicate(timeout=5)
    finally:
        p.kill()
    took = time.monotonic() - started
    if p.returncode != 143 or took > 1.5:
        raise AssertionError("SIGTERM: exit %d after %.2f s: %s" % (p.returncode, took, stderr))
    if "stopped by SIGTERM" not in stderr:
        raise AssertionError("SIGTERM: message %r" % stderr)
    if leftover_processes(out) or (os.path.isdir(out) and os.listdir(out)):
        raise AssertionError("SIGTERM left %s %s" % (leftover_processes(out), os.listdir(out)))


def test_isolate_as_pid_1(tmp):
    """udfhost as a container's first process (PID 1): its workers must not take their parent
    for dead (a parent that dies is told by getppid changing, not by it being 1)."""
    path, data = setup(tmp)
    out = os.path.join(tmp, "out")
    args = [str(a) for a in base(path, out) + ["--plugin", "sumsig", "--isolate", "-t", 2]]
    probe = subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True)
    if probe.returncode != 0:
        print("note: cannot make a PID namespace here (not root?); skipped")
        return
    p = subprocess.run(["unshare", "--pid", "--fork", UDFHOST] + args, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    got = np.load(os.path.join(out, "sumsig.intensity.npy"))
    assert_equal(got, data.sum(axis=(2, 3), dtype=np.float64).astype(got.dtype), "sumsig as PID 1")


def test_isolate_usage_errors(tmp):
    path, _ = setup(tmp)
    out = os.path.join(tmp, "out")
    for bad in ("0", "-1", "abc", "1e9", "nan"):
        check_failed_run(base(path, out) + ["--plugin", "sum", "--plugin-timeout", bad], out, 2,
                         "--plugin-timeout", bad)
    p = subprocess.run([UDFHOST, "run", "--plugin", "sum", "--isolate", *raw_args(NAV, SIG, "<u2"),
                        "-o", out, "-"], input=b"", capture_output=True)
    if p.returncode != 2 or b"--isolate cannot share standard input" not in p.stderr:
        raise AssertionError("--isolate on stdin: exit %d: %s" % (p.returncode, p.stderr))


if __name__ == "__main__":
    main([test_isolated_results_are_the_same_bits, test_isolated_readers_with_state,
          test_plugin_faults_isolated,
          test_runaway_allocation, test_timeout_without_isolation,
          test_sigterm_ends_isolated_workers, test_isolate_as_pid_1, test_isolate_usage_errors])
