"""Every result from Python equals the file `udfhost run` writes for the same run, byte for
byte: each bundled plugin, several dtypes and formats, ROI, corrections, several in one pass."""
import os
import subprocess

import numpy as np
import pytest

import udfhost.api as lt
from udfhost.corrections import CorrectionSet

from conftest import SAMPLE, UDFHOST

# plugin, parameters as Python gives them, the same as -p arguments
PLUGINS = [
    ("sum", {}, []),
    ("sum", {"dtype": "float64"}, ["dtype=float64"]),
    ("sumsig", {}, []),
    ("pick", {"at": (3, 7)}, ["at=3,7"]),
    ("masks", {"disk": [(24, 24, 8), (20, 26, 5)], "ring": (24, 24, 13, 23)},
     ["disk=24,24,8", "disk=20,26,5", "ring=24,24,13,23"]),
    ("masks", {"rect": (2, 3, 30, 40), "sparse": False, "compute": "float32"},
     ["rect=2,3,30,40", "sparse=false", "compute=float32"]),
    ("stddev", {}, []),
    ("logsum", {}, []),
    ("max", {}, []),
    ("min", {}, []),
    ("com", {"cy": 23.5, "cx": 24, "r": 20, "ri": 2, "scan_rotation": 30.0, "flip_y": True},
     ["cy=23.5", "cx=24", "r=20", "ri=2", "scan_rotation=30.0", "flip_y=true"]),
    ("radial", {}, []),
    ("fem", {"ri": 5, "ro": 15}, ["ri=5", "ro=15"]),
]


def cli(tmp_path, plugin_args, dataset_args, extra=()):
    out = tmp_path / "cli"
    cmd = [UDFHOST, "run", *plugin_args, *dataset_args, *extra, "-q", "--overwrite", "-o", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


def assert_same(out, plugin, results):
    files = sorted(f for f in os.listdir(out) if f.startswith(plugin + "."))
    assert sorted(f"{plugin}.{name}.npy" for name in results) == files
    for name, buf in results.items():
        want = np.load(out / f"{plugin}.{name}.npy")
        got = buf.data
        assert got.dtype == want.dtype and got.shape == want.shape, (plugin, name)
        assert got.tobytes() == want.tobytes(), (plugin, name)


SAMPLE_ARGS = ["--format", "raw", "--dtype", "uint16", "--nav-shape", "24,32",
               "--sig-shape", "48,48", SAMPLE]


@pytest.mark.parametrize("plugin,params,pargs", PLUGINS, ids=lambda v: str(v)[:40])
def test_each_plugin_equals_the_cli(tmp_path, ctx, sample, plugin, params, pargs):
    res = ctx.run_udf(dataset=sample, udf=lt.Plugin(plugin, **params))
    out = cli(tmp_path, ["--plugin", plugin] + [a for p in pargs for a in ("-p", p)], SAMPLE_ARGS)
    assert_same(out, plugin, res)


@pytest.mark.parametrize("dtype", ["uint8", "uint32", "int16", "float32", ">u2"])
def test_dtypes_and_npy(tmp_path, ctx, dtype):
    rng = np.random.default_rng(7)
    data = (rng.integers(0, 200, size=(6, 7, 20, 24)) * (1 if dtype != "float32" else 0.37))
    data = data.astype(np.dtype(dtype))
    raw = tmp_path / "scan.raw"
    data.tofile(raw)
    npy = tmp_path / "scan.npy"
    np.save(npy, data)
    udfs = [lt.Plugin("sum", dtype="float64"), lt.Plugin("sumsig"), lt.Plugin("stddev"),
            lt.Plugin("max"), lt.Plugin("com")]
    args = ["--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig", "--plugin", "stddev",
            "--plugin", "max", "--plugin", "com"]
    ds = ctx.load("raw", path=str(raw), dtype=dtype, nav_shape=(6, 7), sig_shape=(20, 24))
    from_raw = ctx.run_udf(dataset=ds, udf=udfs)
    out = cli(tmp_path, args, ["--format", "raw", "--dtype", np.dtype(dtype).str,
                               "--nav-shape", "6,7", "--sig-shape", "20,24", str(raw)])
    for name, res in zip(["sum", "sumsig", "stddev", "max", "com"], from_raw):
        assert_same(out, name, res)
    from_npy = ctx.run_udf(dataset=ctx.load("auto", path=str(npy)), udf=udfs)
    for a, b in zip(from_raw, from_npy):
        for name in a:
            assert a[name].data.tobytes() == b[name].data.tobytes()


def test_roi_corrections_and_several_plugins(tmp_path, ctx, sample):
    roi = np.zeros((24, 32), bool)
    roi[2:20:3, 5:29:2] = True
    np.save(tmp_path / "roi.npy", roi)
    dark = np.linspace(0, 40, 48 * 48, dtype=np.float32).reshape(48, 48)
    gain = np.full((48, 48), 1.25, np.float64)
    excluded = np.zeros((48, 48), bool)
    excluded[[3, 17, 30], [4, 22, 41]] = True
    np.save(tmp_path / "dark.npy", dark)
    np.save(tmp_path / "gain.npy", gain)
    np.save(tmp_path / "excluded.npy", excluded)
    udfs = [lt.Plugin("sum"), lt.Plugin("sumsig"), lt.Plugin("masks", disk=(24, 24, 8)),
            lt.Plugin("com", cy=24, cx=24), lt.Plugin("stddev")]
    res = ctx.run_udf(dataset=sample, udf=udfs, roi=roi,
                      corrections=CorrectionSet(dark=dark, gain=gain, excluded_pixels=excluded))
    out = cli(tmp_path, ["--plugin", "sum", "--plugin", "sumsig", "--plugin", "masks", "-p",
                         "disk=24,24,8", "--plugin", "com", "-p", "cy=24", "-p", "cx=24",
                         "--plugin", "stddev"], SAMPLE_ARGS,
              ["--roi", str(tmp_path / "roi.npy"), "--dark", str(tmp_path / "dark.npy"),
               "--gain", str(tmp_path / "gain.npy"),
               "--excluded-pixels", str(tmp_path / "excluded.npy")])
    for name, r in zip(["sum", "sumsig", "masks", "com", "stddev"], res):
        assert_same(out, name, r)
    # The corrections did something: not the uncorrected sum.
    plain = ctx.run_udf(dataset=sample, udf=lt.Plugin("sum"), roi=roi)
    assert not np.array_equal(plain["intensity"].data, res[0]["intensity"].data)


def test_record_writes_the_same_file(tmp_path, ctx, sample):
    ctx.run_udf(dataset=sample, udf=lt.Plugin("record", out=str(tmp_path / "py.npy"),
                                              bin=2, crop=(4, 4, 44, 44)))
    cli(tmp_path, ["--plugin", "record", "-p", f"out={tmp_path / 'cli.npy'}", "-p", "bin=2",
                   "-p", "crop=4,4,44,44"], SAMPLE_ARGS)
    a, b = np.load(tmp_path / "py.npy"), np.load(tmp_path / "cli.npy")
    assert a.shape == (24, 32, 20, 20) and a.tobytes() == b.tobytes()


def test_memory_dataset_equals_the_file(ctx, sample, sample_data):
    udfs = [lt.Plugin("sum"), lt.Plugin("sumsig"), lt.Plugin("com"), lt.Plugin("logsum")]
    a = ctx.run_udf(dataset=sample, udf=udfs)
    readonly = sample_data.copy()
    readonly.flags.writeable = False
    for arr in (sample_data, readonly, np.asfortranarray(sample_data),
                sample_data.astype(">u2"), sample_data[:, :, ::-1, :][:, :, ::-1, :]):
        b = ctx.run_udf(dataset=ctx.load("memory", data=arr), udf=udfs)
        for x, y in zip(a, b):
            for name in x:
                assert x[name].data.tobytes() == y[name].data.tobytes(), name
    flat = ctx.load("memory", data=sample_data.reshape(768, 48, 48), nav_shape=(24, 32),
                    sig_dims=2)
    assert tuple(flat.shape.nav) == (24, 32)
    c = ctx.run_udf(dataset=flat, udf=lt.Plugin("sumsig"))
    assert c["intensity"].data.tobytes() == a[1]["intensity"].data.tobytes()


REALDATA = os.path.join(os.path.dirname(os.path.abspath(os.environ.get("UDFHOST_SRCDIR", "."))),
                        "shared", "realdata", "merlin")


@pytest.mark.skipif(not os.path.isdir(REALDATA), reason="no ../shared/realdata on this machine")
@pytest.mark.parametrize("name", ["Single_9_Frame_CounterDepth_12_Rows_256.mib",
                                  "Quad_1_Frame_CounterDepth_6_Rows_256.mib"])
def test_real_merlin_files(tmp_path, ctx, name):
    """Files a Merlin detector wrote, opened with filetype "auto" as the CLI detects them."""
    path = os.path.join(REALDATA, name)
    ds = ctx.load("auto", path=path)
    assert ds.format == "mib"
    res = ctx.run_udf(dataset=ds, udf=[lt.Plugin("sum", dtype="float64"), lt.Plugin("sumsig")])
    out = cli(tmp_path, ["--plugin", "sum", "-p", "dtype=float64", "--plugin", "sumsig"], [path])
    assert_same(out, "sum", res[0])
    assert_same(out, "sumsig", res[1])
    assert res[0]["intensity"].data.sum() > 0
