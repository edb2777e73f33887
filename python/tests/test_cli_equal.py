"""Python's results equal the files `udfhost run` writes, byte for byte (same dtype, shape and
bytes), beyond test_results_vs_cli.py: every bundled plugin on every frame dtype, raw files with
an offset and frame headers, .npy of 3 and 4 dimensions, HDF5, sync offsets, ROIs given every way
Python takes them, every kind of correction, record's file, and the LiberTEM-named classes
against the plugin runs they stand for."""
import os
import subprocess

import numpy as np
import pytest

import udfhost.api as lt
from udfhost.corrections import CorrectionSet
from udfhost.udf.FEM import FEMUDF
from udfhost.udf.com import CoMUDF
from udfhost.udf.logsum import LogsumUDF
from udfhost.udf.masks import ApplyMasksUDF
from udfhost.udf.stddev import StdDevUDF
from udfhost.udf.sum import SumUDF
from udfhost.udf.sumsigudf import SumSigUDF

from conftest import SAMPLE, SAMPLE_NAV, UDFHOST

NAV, SIG = (6, 7), (20, 24)

# Every bundled plugin but record (which writes a file, compared separately): its name, the
# parameters as Python passes them and the same as `-p` arguments, for frames of SIG.
PLUGINS = [
    ("sum", {"dtype": "float64"}, ["dtype=float64"]),
    ("sumsig", {}, []),
    ("pick", {"at": (4, 5)}, ["at=4,5"]),
    ("masks", {"disk": [(10, 12, 6), (9.5, 11, 3.5)], "ring": (10, 12, 4, 9),
               "rect": (1, 2, 15, 20), "dtype": "float64"},
     ["disk=10,12,6", "disk=9.5,11,3.5", "ring=10,12,4,9", "rect=1,2,15,20", "dtype=float64"]),
    ("stddev", {"dtype": "float64"}, ["dtype=float64"]),
    ("logsum", {}, []),
    ("max", {}, []),
    ("min", {}, []),
    ("com", {"cy": 9.5, "cx": 12, "r": 9, "ri": 1.5, "scan_rotation": -20.0, "flip_y": True},
     ["cy=9.5", "cx=12", "r=9", "ri=1.5", "scan_rotation=-20.0", "flip_y=true"]),
    ("radial", {"n_bins": 7, "ro": 11}, ["n_bins=7", "ro=11"]),
    ("fem", {"cy": 10, "cx": 11, "ri": 2, "ro": 8}, ["cy=10", "cx=11", "ri=2", "ro=8"]),
]


def cli_args(plugins):
    args = []
    for name, _, pargs in plugins:
        args += ["--plugin", name]
        for p in pargs:
            args += ["-p", p]
    return args


def run_cli(out, args):
    """udfhost run ARGS -o OUT; returns OUT."""
    p = subprocess.run([UDFHOST, "run", *map(str, args), "-q", "-o", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


def assert_files_equal(out, plugin, results):
    """Every result buffer equals <plugin>.<name>.npy in out, and there are no other files."""
    files = sorted(f for f in os.listdir(out) if f.startswith(plugin + "."))
    assert files == sorted(f"{plugin}.{name}.npy" for name in results), (plugin, files)
    for name, buf in results.items():
        want = np.load(os.path.join(out, f"{plugin}.{name}.npy"))
        got = buf.data
        assert (got.dtype, got.shape) == (want.dtype, want.shape), (plugin, name)
        assert got.tobytes() == want.tobytes(), (plugin, name)


def random_data(dtype, shape=NAV + SIG, seed=3):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 300 + 100).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(max(info.min, -20000), min(info.max, 50000), size=shape,
                        endpoint=True).astype(dt)


def py_udfs(plugins):
    return [lt.Plugin(name, **params) for name, params, _ in plugins]


def check_all(out, plugins, results):
    for (name, _, _), res in zip(plugins, results):
        assert_files_equal(out, name, res)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32",
                                   "float32", "float64", ">u2", ">i4", ">f4"])
def test_every_plugin_on_every_dtype(tmp_path, ctx, dtype):
    data = random_data(dtype)
    path = tmp_path / "scan.raw"
    data.tofile(path)
    ds = ctx.load("raw", path=str(path), dtype=dtype, nav_shape=NAV, sig_shape=SIG)
    assert ds.dtype == np.dtype(dtype).newbyteorder("=")
    res = ctx.run_udf(dataset=ds, udf=py_udfs(PLUGINS))
    out = run_cli(tmp_path / "out", cli_args(PLUGINS) + [
        "--format", "raw", "--dtype", np.dtype(dtype).str, "--nav-shape", "6,7",
        "--sig-shape", "20,24", path])
    check_all(out, PLUGINS, res)
    # Not vacuous: the sum is NumPy's, and pick gives the frame as stored.
    want = data.sum(axis=(0, 1), dtype=np.float64)
    if data.dtype.kind == "f":  # summed in another order
        assert np.allclose(res[0]["intensity"].data, want, rtol=1e-12, atol=1e-9)
    else:
        assert np.array_equal(res[0]["intensity"].data, want)
    assert np.array_equal(res[2]["intensity"].data, data[4, 5])
    assert res[6]["intensity"].data.dtype == data.dtype.newbyteorder("=")


def test_raw_with_offset_headers_and_footers(tmp_path, ctx):
    data = random_data("uint16")
    path = tmp_path / "framed.raw"
    with open(path, "wb") as f:
        f.write(b"\x11" * 100)
        for frame in data.reshape(-1, *SIG):
            f.write(b"\x22" * 16 + frame.tobytes() + b"\x33" * 8)
    ds = ctx.load("raw", path=str(path), dtype="uint16", nav_shape=NAV, sig_shape=SIG,
                  offset=100, frame_header=16, frame_footer=8)
    plugins = PLUGINS[:3]
    res = ctx.run_udf(dataset=ds, udf=py_udfs(plugins))
    out = run_cli(tmp_path / "out", cli_args(plugins) + [
        "--format", "raw", "--dtype", "uint16", "--nav-shape", "6,7", "--sig-shape", "20,24",
        "--offset", "100", "--frame-header", "16", "--frame-footer", "8", path])
    check_all(out, plugins, res)
    assert np.array_equal(res[2]["intensity"].data, data[4, 5])


@pytest.mark.parametrize("sync_offset", [3, -2])
def test_sync_offset(tmp_path, ctx, sync_offset):
    data = random_data("uint16")
    path = tmp_path / "scan.raw"
    data.tofile(path)
    plugins = [PLUGINS[1], PLUGINS[2]]
    ds = ctx.load("raw", path=str(path), dtype="uint16", nav_shape=NAV, sig_shape=SIG,
                  sync_offset=sync_offset)
    res = ctx.run_udf(dataset=ds, udf=py_udfs(plugins))
    out = run_cli(tmp_path / "out", cli_args(plugins) + [
        "--format", "raw", "--dtype", "uint16", "--nav-shape", "6,7", "--sig-shape", "20,24",
        "--sync-offset", sync_offset, path])
    check_all(out, plugins, res)
    sums = res[0]["intensity"].data.ravel()
    frames = data.reshape(42, -1).sum(axis=1).astype(np.float32)
    if sync_offset > 0:  # scan frame i is file frame i + 3; the last 3 are missing
        assert np.array_equal(sums[:42 - sync_offset], frames[sync_offset:])
    else:  # two blank frames first
        assert np.array_equal(sums[-sync_offset:], frames[:42 + sync_offset])


@pytest.mark.parametrize("shape,sig_dims", [((42, 20, 24), 2), ((6, 7, 20, 24), 2),
                                            ((6, 7, 480), 1)])
def test_npy_files(tmp_path, ctx, shape, sig_dims):
    data = random_data("float32", shape)
    path = tmp_path / "scan.npy"
    np.save(path, data)
    ds = ctx.load("npy", path=str(path), sig_dims=sig_dims)
    assert tuple(ds.shape) == shape and ds.format == "npy"
    plugins = [("sum", {}, []), ("sumsig", {}, []), ("stddev", {}, []), ("max", {}, []),
               ("logsum", {}, [])]
    res = ctx.run_udf(dataset=ds, udf=py_udfs(plugins))
    out = run_cli(tmp_path / "out", cli_args(plugins) + ["--sig-dims", sig_dims, path])
    check_all(out, plugins, res)
    assert np.array_equal(res[3]["intensity"].data, data.reshape(-1, *shape[-sig_dims:]).max(0))


def test_hdf5_file(tmp_path, ctx):
    h5py = pytest.importorskip("h5py")
    data = random_data("uint16")
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("entry/frames", data=data)
        f.create_dataset("entry/other", data=np.zeros(3))
    ds = ctx.load("hdf5", path=str(path), hdf5_path="/entry/frames")
    assert tuple(ds.shape) == NAV + SIG
    plugins = PLUGINS[:4]
    res = ctx.run_udf(dataset=ds, udf=py_udfs(plugins))
    out = run_cli(tmp_path / "out", cli_args(plugins) + ["--hdf5-path", "/entry/frames", path])
    check_all(out, plugins, res)
    assert np.array_equal(res[2]["intensity"].data, data[4, 5])


def roi_forms(roi):
    """The ways Python takes a ROI: bool nav-shaped, flat bool, 0/1 integers."""
    return [roi, roi.ravel(), roi.astype(np.uint8), roi.astype(np.int64).ravel()]


def test_every_plugin_with_a_roi(tmp_path, ctx):
    data = random_data("int16")
    path = tmp_path / "scan.raw"
    data.tofile(path)
    roi = np.zeros(NAV, bool)
    roi[1:5, 2:6] = True
    roi[0, 0] = roi[5, 6] = True
    np.save(tmp_path / "roi.npy", roi)
    ds = ctx.load("raw", path=str(path), dtype="int16", nav_shape=NAV, sig_shape=SIG)
    out = run_cli(tmp_path / "out", cli_args(PLUGINS) + [
        "--format", "raw", "--dtype", "int16", "--nav-shape", "6,7", "--sig-shape", "20,24",
        "--roi", tmp_path / "roi.npy", path])
    for form in roi_forms(roi):
        res = ctx.run_udf(dataset=ds, udf=py_udfs(PLUGINS), roi=form)
        check_all(out, PLUGINS, res)
    sums = res[1]["intensity"]
    assert np.isnan(sums.data[~roi]).all() and not np.isnan(sums.data[roi]).any()
    assert np.array_equal(sums.valid_mask, roi)
    assert np.array_equal(res[0]["intensity"].data, data[roi].sum(axis=0, dtype=np.float64))


@pytest.mark.parametrize("kind", ["mask", "coords", "dark", "gain", "all"])
def test_corrections(tmp_path, ctx, kind):
    data = random_data("uint8")
    path = tmp_path / "scan.raw"
    data.tofile(path)
    rng = np.random.default_rng(5)
    dark = rng.uniform(0, 20, SIG).astype(np.float32)
    gain = rng.uniform(0.5, 2, SIG)
    mask = np.zeros(SIG, bool)
    mask[[0, 7, 13, 19], [3, 23, 8, 0]] = True
    coords = np.argwhere(mask)
    corr = {"mask": dict(excluded_pixels=mask), "coords": dict(excluded_pixels=coords),
            "dark": dict(dark=dark), "gain": dict(gain=gain),
            "all": dict(dark=dark, gain=gain, excluded_pixels=mask)}[kind]
    args = []
    for name, arr in corr.items():
        np.save(tmp_path / f"{name}.npy", arr)
        args += ["--" + name.replace("_", "-"), tmp_path / f"{name}.npy"]
    plugins = PLUGINS + [("record", {"out": str(tmp_path / "py.npy")},
                          [f"out={tmp_path / 'cli.npy'}"])]
    ds = ctx.load("raw", path=str(path), dtype="uint8", nav_shape=NAV, sig_shape=SIG)
    res = ctx.run_udf(dataset=ds, udf=py_udfs(plugins), corrections=CorrectionSet(**corr))
    out = run_cli(tmp_path / "out", cli_args(plugins) + [
        "--format", "raw", "--dtype", "uint8", "--nav-shape", "6,7", "--sig-shape", "20,24",
        *args, path])
    check_all(out, PLUGINS, res)
    assert res[-1] == {}
    a, b = np.load(tmp_path / "py.npy"), np.load(tmp_path / "cli.npy")
    assert a.dtype == b.dtype == np.float32 and a.shape == NAV + SIG
    assert a.tobytes() == b.tobytes()
    # The corrections were applied: the recorded frames are NumPy's correction of the data.
    f = data.astype(np.float32)
    if "dark" in corr:
        f = f - dark
    if "gain" in corr:
        f = f * gain.astype(np.float32)
    keep = ~mask if "excluded_pixels" in corr else np.ones(SIG, bool)
    assert np.allclose(a[..., keep], f[..., keep], rtol=1e-6, atol=1e-4)
    if "excluded_pixels" in corr:
        assert not np.allclose(a[..., mask], data[..., mask])


def test_record_with_roi_crop_and_bin(tmp_path, ctx, sample, sample_data):
    roi = np.zeros(SAMPLE_NAV, bool)
    roi[3, :] = roi[10:12, 5] = True
    np.save(tmp_path / "roi.npy", roi)
    ctx.run_udf(dataset=sample, roi=roi, udf=lt.Plugin(
        "record", out=str(tmp_path / "py.npy"), crop=(2, 3, 42, 45), bin=3, dtype="float64"))
    run_cli(tmp_path / "out", ["--plugin", "record", "-p", f"out={tmp_path / 'cli.npy'}",
                               "-p", "crop=2,3,42,45", "-p", "bin=3", "-p", "dtype=float64",
                               "--roi", tmp_path / "roi.npy", "--format", "raw", "--dtype",
                               "uint16", "--nav-shape", "24,32", "--sig-shape", "48,48",
                               SAMPLE])
    a, b = np.load(tmp_path / "py.npy"), np.load(tmp_path / "cli.npy")
    assert a.dtype == b.dtype == np.float64 and a.shape == b.shape == (roi.sum(), 13, 14)
    assert a.tobytes() == b.tobytes()
    frames = sample_data[roi][:, 2:41, 3:45].astype(np.float64)
    assert np.array_equal(a, frames.reshape(-1, 13, 3, 14, 3).sum(axis=(2, 4)))
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".npy")]  # no buffers


def test_memory_datasets_equal_the_cli(tmp_path, ctx, sample_data):
    """A memory dataset, in every layout Python accepts, equals the CLI on the file."""
    out = run_cli(tmp_path / "out", cli_args(PLUGINS) + [
        "--format", "raw", "--dtype", "uint16", "--nav-shape", "24,32", "--sig-shape", "48,48",
        SAMPLE])
    plugins = PLUGINS
    wide = np.zeros((24, 32, 48, 96), np.uint16)
    wide[..., ::2] = sample_data
    forms = [sample_data, sample_data.astype(">u2"), np.asfortranarray(sample_data),
             wide[..., ::2], np.flip(np.flip(sample_data, 2).copy(), 2)]
    for arr in forms:
        ds = ctx.load("memory", data=arr, sig_dims=2)
        assert ds.dtype == np.uint16 and tuple(ds.shape) == (24, 32, 48, 48)
        res = ctx.run_udf(dataset=ds, udf=py_udfs(plugins))
        check_all(out, plugins, res)


# LiberTEM-named classes and the plugin runs they translate to, for uint16 data of SIG.
def _masks():
    yy, xx = np.mgrid[0:20, 0:24]
    return [lambda: ((yy - 10) ** 2 + (xx - 12) ** 2 <= 25).astype(np.float32),
            lambda: (xx > 12).astype(np.float32)]


CLASSES = [
    (lambda: SumUDF(), "sum", ["dtype=float32"], {"intensity": "intensity"}),
    (lambda: SumSigUDF(), "sumsig", ["dtype=float32"], {"intensity": "intensity"}),
    (lambda: LogsumUDF(), "logsum", ["dtype=float32"], {"logsum": "logsum"}),
    (lambda: StdDevUDF(), "stddev", ["dtype=float64"],
     {"mean": "mean", "var": "var", "std": "std", "sum": "sum", "varsum": "varsum"}),
    (lambda: FEMUDF(center=(10, 11), rad_in=3, rad_out=8), "fem",
     ["cy=10", "cx=11", f"ri={float(np.nextafter(3.0, np.inf))!r}", "ro=8", "dtype=float32"],
     {"intensity": "intensity"}),
    (lambda: CoMUDF.with_params(cy=9, cx=12, r=8, scan_rotation=15.0), "com",
     ["cy=9", "cx=12", "r=8", "scan_rotation=15.0", "dtype=float32"],
     {"raw_com": "raw_com", "raw_shifts": "raw_shifts", "field": "field",
      "magnitude": "magnitude", "divergence": "divergence", "curl": "curl"}),
]


@pytest.mark.parametrize("make,plugin,pargs,names", CLASSES, ids=[c[1] for c in CLASSES])
def test_libertem_classes_equal_their_plugin_runs(tmp_path, ctx, make, plugin, pargs, names):
    data = random_data("uint16", seed=11)
    path = tmp_path / "scan.raw"
    data.tofile(path)
    ds = ctx.load("raw", path=str(path), dtype="uint16", nav_shape=NAV, sig_shape=SIG)
    res = ctx.run_udf(dataset=ds, udf=make())
    out = run_cli(tmp_path / "out", ["--plugin", plugin, *[a for p in pargs for a in ("-p", p)],
                                     "--format", "raw", "--dtype", "uint16", "--nav-shape",
                                     "6,7", "--sig-shape", "20,24", path])
    for mine, theirs in names.items():
        want = np.load(out / f"{plugin}.{theirs}.npy")
        got = res[mine].data
        assert (got.dtype, got.shape) == (want.dtype, want.shape), mine
        assert got.tobytes() == want.tobytes(), mine


def test_apply_masks_equals_masks_with_the_same_file(tmp_path, ctx):
    data = random_data("uint16", seed=12)
    ds = ctx.load("memory", data=data)
    factories = _masks()
    res = ctx.run_udf(dataset=ds, udf=ApplyMasksUDF(mask_factories=factories))
    stack = np.stack([f() for f in factories])
    np.save(tmp_path / "masks.npy", stack)
    path = tmp_path / "scan.npy"
    np.save(path, data)
    out = run_cli(tmp_path / "out", ["--plugin", "masks", "-p", f"file={tmp_path / 'masks.npy'}",
                                     path])
    want = np.load(out / "masks.intensity.npy")
    got = res["intensity"].data
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape == NAV + (2,)
    assert got.tobytes() == want.tobytes()
