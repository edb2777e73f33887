"""HDF5 datasets: files written by h5py (contiguous, chunked, compressed, EMD-like layouts) give the
same sums as NumPy and as the same data in a raw file; bad files and flags fail with one line."""
import os
import shutil
import subprocess

import h5py
import numpy as np

from udfhost_test import (SRCDIR, UDFHOST, assert_equal, load, main, random_frames, raw_args,
                          run, write_raw)

RNG = np.random.default_rng(20261205)
NAV, SIG = (7, 9), (13, 11)
SUMS = ["--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig", "-p", "dtype=float64"]


def write_h5(path, dset, data, **kw):
    with h5py.File(path, "w") as f:
        f.create_dataset(dset, data=data, **kw)
    return path


def info(path, *args):
    out, _ = run(["info", *args, path])
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def check_sums(tmp, path, data, nav_ndim, args=(), name="h5"):
    """sum and sumsig of the HDF5 file equal NumPy's and those of the same data as raw."""
    out = os.path.join(tmp, "out-" + name)
    run(["run", *SUMS, "-o", out, *args, path])
    nav_axes = tuple(range(nav_ndim))
    sig_axes = tuple(range(nav_ndim, data.ndim))
    got_sum, got_sumsig = load(out, "sum", "intensity"), load(out, "sumsig", "intensity")
    # Integer (or integer-valued float) data: float64 sums are exact in any order.
    assert_equal(got_sum, data.sum(axis=nav_axes, dtype=np.float64), "sum " + name)
    assert_equal(got_sumsig, data.sum(axis=sig_axes, dtype=np.float64), "sumsig " + name)
    raw = os.path.join(tmp, name + ".raw")
    write_raw(raw, data)
    out_raw = out + "-raw"
    run(["run", *SUMS, "-o", out_raw,
         *raw_args(data.shape[:nav_ndim], data.shape[nav_ndim:], data.dtype), raw])
    for plugin in ("sum", "sumsig"):
        with open(os.path.join(out, plugin + ".intensity.npy"), "rb") as a, \
                open(os.path.join(out_raw, plugin + ".intensity.npy"), "rb") as b:
            assert a.read() == b.read(), "%s: %s differs from raw" % (name, plugin)
    return out


def check_threads(tmp, path, args=()):
    outs = []
    for threads in ("1", "3"):
        out = os.path.join(tmp, "threads" + threads)
        run(["run", *SUMS, "--threads", threads, "--partition-size", "4K", "--overwrite", "-o", out, *args,
             path])
        outs.append([open(os.path.join(out, p + ".intensity.npy"), "rb").read()
                     for p in ("sum", "sumsig")])
    assert outs[0] == outs[1], "--threads 1 and 3 differ"


def check_fails(tmp, args, expect, *needles):
    """One line 'udfhost: ...' on stderr naming every needle, the exit status, no results."""
    out = os.path.join(tmp, "failed-out")
    _, err = run(["run", *SUMS, "-o", out, *args], expect=expect)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("udfhost: "), "stderr: %r" % err
    for n in needles:
        assert n in lines[0], "%r not in %r" % (n, lines[0])
    assert not os.path.exists(os.path.join(out, "sum.intensity.npy")), "results written"
    return lines[0]


def test_contiguous_uint16_is_mapped(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = write_h5(os.path.join(tmp, "scan.h5"), "entry/data", data)
    i = info(path)
    assert i["format"] == "hdf5" and i["io"] == "mmap (hdf5 contiguous)", i
    assert i["nav shape"] == "7,9" and i["sig shape"] == "13,11" and i["dtype"] == "uint16", i
    check_sums(tmp, path, data, 2)
    check_threads(tmp, path)


def test_detected_by_magic_without_extension(tmp):
    data = random_frames(RNG, NAV + SIG, "|u1")
    path = write_h5(os.path.join(tmp, "scan.bin"), "data", data)
    assert info(path)["format"] == "hdf5"
    check_sums(tmp, path, data, 2)


def test_big_endian_int32(tmp):
    data = random_frames(RNG, NAV + SIG, ">i4")
    path = write_h5(os.path.join(tmp, "be.h5"), "data", data)
    assert info(path)["byte order"] == "big"
    check_sums(tmp, path, data, 2)


def test_float32_3d_with_nav_shape(tmp):
    flat = RNG.integers(-5000, 5000, size=(63,) + SIG).astype("<f4")
    path = write_h5(os.path.join(tmp, "f.h5"), "frames", flat)
    assert info(path)["nav shape"] == "63"
    out = check_sums(tmp, path, flat.reshape(NAV + SIG), 2, ["--nav-shape", "7,9"])
    assert load(out, "sumsig", "intensity").shape == NAV


def test_sig_dims_and_sig_shape(tmp):
    # nav 2-D, sig 3-D with --sig-dims 3; then the same frames regrouped by --sig-shape.
    data = random_frames(RNG, (5, 3, 4, 13, 11), "<u2")
    path = write_h5(os.path.join(tmp, "s3.h5"), "data", data)
    check_sums(tmp, path, data, 2, ["--sig-dims", "3"], name="sig3")
    check_sums(tmp, path, data.reshape(5, 3, 52, 11), 2,
               ["--sig-dims", "3", "--sig-shape", "52,11"], name="sig3-reshaped")


def test_chunked_gzip(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = write_h5(os.path.join(tmp, "z.h5"), "data", data, chunks=(1, 3, 13, 11),
                    compression="gzip")
    io = info(path)["io"]
    assert io.startswith("hdf5 (chunks 1x3x13x11, gzip") and "3 frames per chunk" in io, io
    check_sums(tmp, path, data, 2)
    check_threads(tmp, path)


def test_chunked_shuffle_edge_chunks(tmp):
    # Chunks that do not divide the shape (edge chunks) and cut the signal too.
    for i, dt in enumerate(["<u4", ">f8", "<i2"]):
        data = random_frames(RNG, NAV + SIG, dt)
        if dt[1] == "f":
            data = np.round(data)
        path = write_h5(os.path.join(tmp, "sh%d.h5" % i), "data", data, chunks=(2, 4, 5, 11),
                        shuffle=True, compression="gzip" if i else None)
        io = info(path)["io"]
        assert "shuffle" in io and "18 frames per chunk" in io, io
        check_sums(tmp, path, data, 2, name="shuffle%d" % i)
        check_threads(tmp, path)


def test_chunked_reads_across_rows_and_planes(tmp):
    # 3-D nav of 120 frames: partitions of 7 or 8 frames start mid-row and span whole rows and
    # planes, so reads are cut into boxes at every nav level.
    data = random_frames(RNG, (6, 5, 4) + SIG, "<u2")
    path = write_h5(os.path.join(tmp, "nav3.h5"), "data", data, chunks=(2, 2, 3, 5, 11),
                    compression="gzip")
    assert "40 frames per chunk" in info(path)["io"]
    check_sums(tmp, path, data, 3)
    check_threads(tmp, path)
    check_sums(tmp, path, data.reshape((120,) + SIG), 1, ["--nav-shape", "120"], name="flat")


def test_several_candidates_need_hdf5_path(tmp):
    path = os.path.join(tmp, "multi.h5")
    a = random_frames(RNG, (100, 6, 4), "<u2")
    b = random_frames(RNG, NAV + SIG, ">i4")
    with h5py.File(path, "w") as f:
        f["a"] = a
        f["g/b"] = b
        f["g/small"] = np.zeros((4, 4))
    check_fails(tmp, [path], 2, path + ": several datasets could be the frames",
                "/a (100, 6, 4) uint16", "/g/b (7, 9, 13, 11) int32 big-endian", "--hdf5-path")
    check_sums(tmp, path, b, 2, ["--hdf5-path", "/g/b"], name="b")
    check_sums(tmp, path, a, 1, ["--hdf5-path", "a", "--sig-dims", "2"], name="a")
    check_fails(tmp, ["--hdf5-path", "/g/nope", path], 2, path, "/g/nope", "not found")
    check_fails(tmp, ["--hdf5-path", "/g", path], 2, path, "/g", "group, not a dataset")


def test_py4dstem_and_emd_layouts(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    # py4DSTEM 0.12 and older: 4DSTEM_experiment/data/datacubes/<name>/data with dim vectors.
    old = os.path.join(tmp, "old.h5")
    with h5py.File(old, "w") as f:
        f.attrs["version_major"], f.attrs["version_minor"] = 0, 12
        g = f.create_group("4DSTEM_experiment/data/datacubes/datacube_0")
        g.attrs["emd_group_type"] = 1
        g.create_dataset("data", data=data)
        for k, n in enumerate(data.shape):
            g["dim%d" % (k + 1)] = np.arange(n, dtype="f8")
        f.create_group("4DSTEM_experiment/metadata/microscope")
    check_sums(tmp, old, data, 2, name="py4dstem-old")
    # emdfile (py4DSTEM 0.14): <root>/<datacube name>/data, chunked by the writer.
    new = os.path.join(tmp, "scan.emd")
    with h5py.File(new, "w") as f:
        f.attrs["emd_group_type"] = "file"
        root = f.create_group("4DSTEM")
        root.attrs["emd_group_type"] = "root"
        g = root.create_group("datacube")
        g.attrs["emd_group_type"] = "array"
        g.create_dataset("data", data=data, chunks=(1, 1) + SIG)
        for k, n in enumerate(data.shape):
            g["dim%d" % k] = np.arange(n, dtype="f8")
    check_sums(tmp, new, data, 2, name="emdfile")


def test_unsupported_datasets(tmp):
    path = os.path.join(tmp, "bad.h5")
    with h5py.File(path, "w") as f:
        f["flat"] = np.zeros((64, 64), "<u2")
        f["strings"] = np.array([[["ab"] * 3] * 3] * 3, dtype="S2")
        f["int64"] = np.zeros((3, 4, 5), "<i8")
        f["bools"] = np.zeros((3, 4, 5), bool)
        f["f16"] = np.zeros((3, 4, 5), "<f2")
        f.create_group("g")
    check_fails(tmp, ["--hdf5-path", "/flat", path], 3, path, "/flat", "2 dimensions (64, 64)")
    for name, what in [("strings", "string"), ("int64", "int64"), ("bools", "enum (e.g. bool)"),
                       ("f16", "float16")]:
        check_fails(tmp, ["--hdf5-path", name, path], 3, path, name,
                    "element type %s is not supported" % what)
    only2d = write_h5(os.path.join(tmp, "only2d.h5"), "img", np.zeros((4, 5), "u1"))
    check_fails(tmp, [only2d], 3, only2d, "no dataset with 3 or more dimensions", "/img (4, 5)")
    vds = os.path.join(tmp, "vds.h5")
    layout = h5py.VirtualLayout(shape=(7, 9, 13, 11), dtype="<u2")
    layout[:] = h5py.VirtualSource(os.path.join(tmp, "src.h5"), "data", shape=(7, 9, 13, 11))
    with h5py.File(vds, "w") as f:
        f.create_virtual_dataset("data", layout)
    check_fails(tmp, [vds], 3, vds, "/data", "virtual datasets")
    lzf = write_h5(os.path.join(tmp, "lzf.h5"), "data", np.zeros(NAV + SIG, "<u2"),
                   compression="lzf")
    check_fails(tmp, [lzf], 3, lzf, "filter 32000", "lzf")


def test_absurd_shape(tmp):
    # Chunked and never written: h5py stores only the shape, which overflows 64 bits.
    path = os.path.join(tmp, "huge.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("data", shape=(2**40, 2**40, 2**20, 2**20), dtype="<u2",
                         chunks=(1, 1, 16, 16))
    check_fails(tmp, [path], 3, path, "/data", "overflows 64 bits")


def test_truncated_and_corrupt_files(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    for name, kw in [("contig", {}), ("gzip", {"chunks": (1, 3, 13, 11), "compression": "gzip"})]:
        path = write_h5(os.path.join(tmp, name + ".h5"), "data", data, **kw)
        blob = open(path, "rb").read()
        cut = os.path.join(tmp, name + "-cut.h5")
        with open(cut, "wb") as f:
            f.write(blob[:len(blob) // 2])
        check_fails(tmp, [cut], 3, cut, "file too short")
    # Garbage in the compressed bytes of chunk 5 (frames 15..17): found when reading.
    path = os.path.join(tmp, "gzip.h5")
    with h5py.File(path, "r") as f:
        chunk = f["data"].id.get_chunk_info(5)
    blob = bytearray(open(path, "rb").read())
    blob[chunk.byte_offset + 4:chunk.byte_offset + chunk.size - 4] = b"\x5a" * (chunk.size - 8)
    bad = os.path.join(tmp, "corrupt.h5")
    open(bad, "wb").write(bytes(blob))
    check_fails(tmp, [bad], 3, bad, "/data: frame 15: cannot read")
    noth5 = os.path.join(tmp, "not.h5")
    open(noth5, "wb").write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    check_fails(tmp, [noth5], 3, noth5, "cannot open as HDF5")


def test_flags_that_disagree_with_the_file(tmp):
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = write_h5(os.path.join(tmp, "scan.h5"), "data", data)
    check_fails(tmp, ["--nav-shape", "8,8", path], 2, path, "--nav-shape 8,8", "63 frames")
    check_fails(tmp, ["--sig-shape", "13,12", path], 2, path, "--sig-shape 13,12", "frames of 143 pixels")
    check_fails(tmp, ["--dtype", "float32", path], 2, path, "--dtype float32", "uint16")
    check_fails(tmp, ["--dtype", ">u2", path], 2, path, "--dtype uint16 big-endian")
    check_fails(tmp, ["--sig-dims", "4", path], 3, path, "4 signal dimensions")
    # Agreeing flags are fine.
    check_sums(tmp, path, data.reshape((63,) + SIG), 1, ["--dtype", "uint16", "--nav-shape", "63"],
               name="agree")



def test_hdf5_module_loads_only_when_needed(tmp):
    """libhdf5 is not linked into udfhost (its dependencies slowed every start); the HDF5 reader
    module is loaded for HDF5 files only, and a udfhost that cannot find it says so."""
    p = subprocess.run(["readelf", "-d", UDFHOST], capture_output=True, text=True, check=True)
    needed = [line for line in p.stdout.splitlines() if "(NEEDED)" in line]
    assert needed and not any("hdf5" in line for line in needed), needed
    data = random_frames(RNG, NAV + SIG, "<u2")
    path = write_h5(os.path.join(tmp, "scan.h5"), "data", data)
    # A copy of the binary away from its build directory looks only in the installed place.
    if os.path.exists("/usr/local/libexec/udfhost/udfhost-hdf5.so"):
        print("note: udfhost is installed in /usr/local; the missing-module case was skipped")
        return
    lone = os.path.join(tmp, "udfhost")
    shutil.copy(UDFHOST, lone)
    p = subprocess.run([lone, "info", path], capture_output=True, text=True)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 3 and len(lines) == 1, (p.returncode, p.stderr)
    assert "cannot read HDF5 files: the HDF5 module of udfhost did not load" in lines[0] and \
        "udfhost-hdf5.so" in lines[0], lines[0]
    raw = os.path.join(tmp, "scan.raw")
    write_raw(raw, data)
    p = subprocess.run([lone, "info", *raw_args(NAV, SIG, "<u2"), raw], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr


def test_files_that_break_libhdf5(tmp):
    """Fuzzing found HDF5 files that crash libhdf5 1.10.8 or make it allocate without bound
    (tests/fuzz/known-crashes/: one of 1449 bytes otherwise ends in the OOM killer). udfhost opens
    an HDF5 file first in a child process limited to 256 MiB more address space: each must end in
    one line and exit 3, and no process may grow past that bound."""
    if os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"):
        print("note: skipped under a sanitizer (no address-space limit beside its shadow memory)")
        return
    import resource
    here = os.path.join(SRCDIR, "tests", "fuzz", "known-crashes")
    for name in sorted(os.listdir(here)):
        path = os.path.join(tmp, name)
        shutil.copy(os.path.join(here, name), path)
        p = subprocess.run([UDFHOST, "info", path], capture_output=True, text=True, timeout=120)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 3 and len(lines) == 1 and path in lines[0], (name, p.returncode,
                                                                               p.stderr)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mib < 400, "a child process reached %.0f MiB" % peak_mib


main([test_contiguous_uint16_is_mapped, test_detected_by_magic_without_extension,
      test_big_endian_int32, test_float32_3d_with_nav_shape, test_sig_dims_and_sig_shape,
      test_chunked_gzip, test_chunked_shuffle_edge_chunks,
      test_chunked_reads_across_rows_and_planes, test_several_candidates_need_hdf5_path,
      test_py4dstem_and_emd_layouts, test_unsupported_datasets, test_absurd_shape,
      test_truncated_and_corrupt_files, test_flags_that_disagree_with_the_file,
      test_hdf5_module_loads_only_when_needed, test_files_that_break_libhdf5])
