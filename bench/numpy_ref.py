#!/usr/bin/env python3
"""NumPy reference and data helpers for udfhost's benchmark (bench/run.sh).

    numpy_ref.py run --file F --dtype uint16 --nav Y,X --sig H,W --op OP [--masks M.npy]
                     [--at Y,X] [--save DIR]
        Runs one operation the way a careful NumPy user would: np.memmap of the file, one nav row
        of frames at a time (a few MiB), single-threaded. Prints "OP SECONDS", the time of the
        operation alone (open/memmap to result; no interpreter start or imports), and with --save
        writes the results as DIR/OP.NAME.npy.
    numpy_ref.py gen FILE --dtype uint16|float32 --nav Y,X --sig H,W
        Writes a synthetic 4D-STEM scan: a bright disk that moves with the scan position over a
        noisy background, one nav row at a time, then fsync()s it.
    numpy_ref.py masks FILE --sig H,W [--n 16]
        Writes N random dense float32 masks (N x H x W) as .npy.
    numpy_ref.py evict FILE
        fsync + posix_fadvise(POSIX_FADV_DONTNEED): drops the file's clean pages from the page
        cache, so that the next read brings it in as read from disk.
    numpy_ref.py check DIR_A NAME_A DIR_B NAME_B [--exact]
        Compares two .npy files (exactly, or with a float tolerance); exit 1 if they differ.

Operations (OP): sum sumsig max stddev disk dense16 rings16 com radial pick logsum fused
(fused = sum + sumsig + com in one pass). NumPy's BLAS is held to one thread (OMP, OpenBLAS, MKL,
BLIS variables set to 1 before numpy is imported), so the reference is one core.
rings16 uses scipy.sparse when SciPy imports, else dense masks (reported on stderr as "dense
fallback"); radial uses a one-hot pixel->bin sparse matrix with SciPy, else np.bincount per frame.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
           "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:
    import scipy.sparse as sparse  # noqa: E402
except ImportError:  # pragma: no cover - depends on the machine
    sparse = None

OPS = ("sum", "sumsig", "max", "stddev", "disk", "dense16", "rings16", "com", "radial", "pick",
       "logsum", "fused")


def shape_arg(text):
    return tuple(int(v) for v in text.split(","))


# ---------------------------------------------------------------------------------------------
# Masks, built the way udfhost's masks and radial plugins define them (pixel centres at integer
# coordinates, d^2 = (y-cy)^2 + (x-cx)^2).

def grid(sig):
    y, x = np.mgrid[0:sig[0], 0:sig[1]]
    return y.astype(np.float64), x.astype(np.float64)


def disk_mask(sig, cy, cx, r):
    y, x = grid(sig)
    return ((y - cy) ** 2 + (x - cx) ** 2 <= r * r).astype(np.float32)


def bin_index(sig, cy, cx, ri, ro, n):
    """Bin of every pixel for n rings of equal width from ri to ro (ro included), -1 outside."""
    y, x = grid(sig)
    d = np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    w = (ro - ri) / n
    k = np.floor((d - ri) / w).astype(np.int64)
    k[(d >= ri) & (d <= ro) & (k >= n)] = n - 1
    k[(d < ri) | (d > ro)] = -1
    return k.ravel()


def ring_masks(sig, cy, cx, ri, ro, n):
    k = bin_index(sig, cy, cx, ri, ro, n)
    m = np.zeros((n, sig[0] * sig[1]), np.float32)
    inside = k >= 0
    m[k[inside], np.nonzero(inside)[0]] = 1
    return m


# ---------------------------------------------------------------------------------------------

def rows(mm):
    """The scan one nav row at a time, as (frames, H*W) arrays (views of the memmap)."""
    n_rows = mm.shape[0]
    for r in range(n_rows):
        c = mm[r]
        yield c.reshape(c.shape[0], -1)


def run_op(args):
    nav, sig = shape_arg(args.nav), shape_arg(args.sig)
    dtype = np.dtype(args.dtype)
    if len(nav) == 1:
        nav = (1,) + nav
    npix = sig[0] * sig[1]
    integer = dtype.kind in "ui"
    acc_t = np.int64 if integer else np.float64
    op = args.op
    out = {}
    note = ""

    # Per-op set-up that a user would do once, outside the loop (masks, index tables): timed too,
    # as udfhost's time includes building its tables.
    t0 = time.perf_counter()
    mm = np.memmap(args.file, dtype=dtype, mode="r", shape=nav + tuple(sig))

    if op == "sum":
        acc = np.zeros(npix, acc_t)
        for c in rows(mm):
            acc += c.sum(axis=0, dtype=acc_t)
        out["intensity"] = acc.reshape(sig).astype(np.float32)
    elif op == "sumsig":
        res = np.empty(nav, acc_t)
        for r, c in enumerate(rows(mm)):
            res[r] = c.sum(axis=1, dtype=acc_t)
        out["intensity"] = res.astype(np.float32)
    elif op == "max":
        acc = None
        for c in rows(mm):
            m = c.max(axis=0)
            acc = m if acc is None else np.maximum(acc, m)
        out["intensity"] = acc.reshape(sig)
    elif op == "stddev":
        # Chan's pairwise merge of per-row (count, mean, M2), float64: one pass, stable.
        n = 0
        mean = np.zeros(npix, np.float64)
        m2 = np.zeros(npix, np.float64)
        for c in rows(mm):
            f = c.astype(np.float64)
            nb = f.shape[0]
            mb = f.mean(axis=0)
            m2b = ((f - mb) ** 2).sum(axis=0)
            delta = mb - mean
            tot = n + nb
            mean += delta * (nb / tot)
            m2 += m2b + delta * delta * (n * nb / tot)
            n = tot
        var = m2 / n
        out["mean"] = mean.reshape(sig).astype(np.float32)
        out["var"] = var.reshape(sig).astype(np.float32)
        out["std"] = np.sqrt(var).reshape(sig).astype(np.float32)
    elif op in ("disk", "dense16", "rings16"):
        if op == "disk":
            masks = disk_mask(sig, 64, 64, 20).reshape(1, npix)
        elif op == "dense16":
            masks = np.load(args.masks).astype(np.float32).reshape(-1, npix)
        else:
            masks = ring_masks(sig, 64, 64, 0, 64, 16)
        if op == "rings16" and sparse is not None:
            mt = sparse.csc_matrix(masks.T)   # (npix, 16): frames @ mt is a sparse product
            note = "scipy.sparse"
        else:
            mt = np.ascontiguousarray(masks.T)
            note = "dense fallback" if op == "rings16" else "dense (BLAS sgemm)"
        res = np.empty(nav + (masks.shape[0],), np.float32)
        for r, c in enumerate(rows(mm)):
            f = c.astype(np.float32)
            res[r] = np.asarray(f @ mt)
        out["intensity"] = res
    elif op in ("com", "fused"):
        ys = np.arange(sig[0], dtype=np.float64)
        xs = np.arange(sig[1], dtype=np.float64)
        com = np.empty(nav + (2,), np.float64)
        if op == "fused":
            acc = np.zeros(npix, acc_t)
            ssig = np.empty(nav, acc_t)
        for r, c in enumerate(rows(mm)):
            f = c.reshape(c.shape[0], sig[0], sig[1])
            rowsum = f.sum(axis=2, dtype=np.float64)      # (frames, H)
            colsum = f.sum(axis=1, dtype=np.float64)      # (frames, W)
            total = rowsum.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                com[r, :, 0] = rowsum @ ys / total
                com[r, :, 1] = colsum @ xs / total
            if op == "fused":
                acc += c.sum(axis=0, dtype=acc_t)
                ssig[r] = c.sum(axis=1, dtype=acc_t)
        out["raw_com"] = com.astype(np.float32)
        if op == "fused":
            out["sum"] = acc.reshape(sig).astype(np.float32)
            out["sumsig"] = ssig.astype(np.float32)
    elif op == "radial":
        cy, cx = (sig[0] - 1) / 2, (sig[1] - 1) / 2
        ro = float(np.sqrt(max(cy, sig[0] - 1 - cy) ** 2 + max(cx, sig[1] - 1 - cx) ** 2))
        k = bin_index(sig, cy, cx, 0.0, ro, 16)
        inside = np.nonzero(k >= 0)[0]
        prof = np.empty(nav + (16,), np.float64)
        if sparse is not None:
            onehot = sparse.csc_matrix((np.ones(inside.size), (inside, k[inside])),
                                       shape=(npix, 16))
            note = "scipy.sparse one-hot"
            for r, c in enumerate(rows(mm)):
                prof[r] = np.asarray(c.astype(np.float64) @ onehot)
        else:
            note = "np.bincount per frame"
            kk = k[inside]
            for r, c in enumerate(rows(mm)):
                for i in range(c.shape[0]):
                    prof[r, i] = np.bincount(kk, weights=c[i, inside], minlength=16)
        out["profile"] = prof.astype(np.float32)
    elif op == "pick":
        at = shape_arg(args.at)
        out["intensity"] = np.array(mm[at])
    elif op == "logsum":
        acc = np.zeros(npix, np.float64)
        for c in rows(mm):
            f = c.astype(np.float64)
            f -= f.min(axis=1, keepdims=True)
            f += 1.0
            np.log(f, out=f)
            acc += f.sum(axis=0)
        out["logsum"] = acc.reshape(sig).astype(np.float32)
    else:
        raise SystemExit(f"numpy_ref: unknown op {op!r}")
    del mm
    secs = time.perf_counter() - t0

    print(f"{op} {secs:.6f}" + (f" # {note}" if note else ""))
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        for name, arr in out.items():
            np.save(os.path.join(args.save, f"{op}.{name}.npy"), arr)


def gen(args):
    nav, sig = shape_arg(args.nav), shape_arg(args.sig)
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(12345)
    y, x = grid(sig)
    tmp = args.file + ".tmp"
    with open(tmp, "wb") as fh:
        for r in range(nav[0]):
            # A disk of radius H/6 whose centre drifts with the scan position, a background ramp
            # and uniform noise: frames differ, values stay well inside uint16.
            frames = np.empty((nav[1],) + tuple(sig), dtype)
            for c0 in range(0, nav[1], 64):
                c1 = min(nav[1], c0 + 64)
                cy = sig[0] / 2 + 4 * np.sin(r / 7.0)
                cx = sig[1] / 2 + 4 * np.cos(np.arange(c0, c1) / 11.0)
                d2 = (y[None] - cy) ** 2 + (x[None] - cx[:, None, None]) ** 2
                base = np.where(d2 <= (sig[0] / 6) ** 2, 900.0, 20.0 + x[None] / 8)
                noise = rng.integers(0, 64, size=base.shape)
                frames[c0:c1] = (base + noise).astype(dtype)
            fh.write(frames.tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, args.file)


def masks(args):
    sig = shape_arg(args.sig)
    rng = np.random.default_rng(54321)
    np.save(args.file, rng.random((args.n,) + tuple(sig), dtype=np.float32))


def evict(args):
    fd = os.open(args.file, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def check(args):
    a = np.load(os.path.join(args.dir_a, args.name_a))
    b = np.load(os.path.join(args.dir_b, args.name_b))
    if a.shape != b.shape:
        print(f"check: {args.name_a} shape {a.shape} != {args.name_b} shape {b.shape}")
        sys.exit(1)
    same = np.array_equal(a, b) if args.exact else np.allclose(a, b, rtol=1e-5, atol=1e-6,
                                                               equal_nan=True)
    if not same:
        bad = np.argwhere(a != b)[:3]
        print(f"check: {args.name_a} and {args.name_b} differ ({'exact' if args.exact else 'rtol 1e-5'}),"
              f" e.g. at {bad.tolist()}: {a[tuple(bad[0])] if len(bad) else ''} vs "
              f"{b[tuple(bad[0])] if len(bad) else ''}")
        sys.exit(1)
    print(f"check: {args.name_a} == {args.name_b} ({'exact' if args.exact else 'rtol 1e-5'})")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--file", required=True)
    r.add_argument("--dtype", default="uint16")
    r.add_argument("--nav", required=True)
    r.add_argument("--sig", required=True)
    r.add_argument("--op", required=True, choices=OPS)
    r.add_argument("--masks")
    r.add_argument("--at", default="0,0")
    r.add_argument("--save")
    g = sub.add_parser("gen")
    g.add_argument("file")
    g.add_argument("--dtype", default="uint16")
    g.add_argument("--nav", required=True)
    g.add_argument("--sig", required=True)
    m = sub.add_parser("masks")
    m.add_argument("file")
    m.add_argument("--sig", required=True)
    m.add_argument("--n", type=int, default=16)
    e = sub.add_parser("evict")
    e.add_argument("file")
    c = sub.add_parser("check")
    c.add_argument("dir_a")
    c.add_argument("name_a")
    c.add_argument("dir_b")
    c.add_argument("name_b")
    c.add_argument("--exact", action="store_true")
    args = p.parse_args()
    {"run": run_op, "gen": gen, "masks": masks, "evict": evict, "check": check}[args.cmd](args)


if __name__ == "__main__":
    main()
