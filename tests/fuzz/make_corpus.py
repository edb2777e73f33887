#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/: small valid files
of every format and variant the readers handle (each < 4 KiB). Needs numpy, tifffile, mrcfile,
h5py. Rerun after adding a variant; files of the same name are overwritten, crashers added by hand
(crash-* / leak-* / oom-* names) are left alone."""
import io
import os
import struct
import sys
import tempfile

import h5py
import mrcfile
import numpy as np
import tifffile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
RNG = np.random.default_rng(8)
MAX_SEED = 4096


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < MAX_SEED, (target, name, len(data))
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(arr, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, arr)
    else:
        np.lib.format.write_array(b, arr, version=version)
    return b.getvalue()


def tiff(pages, **kw):
    b = io.BytesIO()
    with tifffile.TiffWriter(b, byteorder=kw.pop("byteorder", "<")) as w:
        for p in pages:
            w.write(p, photometric="minisblack", **kw)
    return b.getvalue()


def mrc(arr, ext=None):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "seed.mrc")
        with mrcfile.new(path) as m:
            m.set_data(arr)
            if ext is not None:
                m.set_extended_header(ext)
        with open(path, "rb") as f:
            return f.read()


def mib_header(seq, width, height, depth, counter, header_size=384, chips=1, layout="1x1"):
    fields = ["MQ1", "%06d" % seq, "%05d" % header_size, "%02d" % chips, "%04d" % width,
              "%04d" % height, depth, "%6s" % layout, "%02X" % ((1 << chips) - 1),
              "2020-05-18 16:51:49.971626", "0.000555", "0", "0", "0"]
    if depth == "R64":
        fields.append("")
    else:
        fields += ["1.200000E+2", "5.110000E+2"] + ["0.000000E+0"] * 6 + ["3RX"]
        fields += ["%03d" % v for v in range(27)]
    fields += ["MQ1A", "2020-05-18T14:51:49.971626178Z", "555000ns", str(counter), ""]
    text = ",".join(fields).encode()
    return text + b"\0" * (header_size - len(text))


def mib(frames, depth, counter=None, **kw):
    counter = counter or {"U08": 6, "U16": 12, "U32": 24, "R64": 12}[depth]
    out = b""
    for i, f in enumerate(frames):
        out += mib_header(i + 1, f.shape[1], f.shape[0], depth, counter, **kw)
        if depth == "R64":
            flat = f.ravel()
            if counter == 1:
                g = np.packbits(flat.astype(np.uint8) & 1, bitorder="little").reshape(-1, 8)
                out += g[:, ::-1].tobytes()
            elif counter == 6:
                out += flat.astype(np.uint8).reshape(-1, 8)[:, ::-1].tobytes()
            else:
                out += flat.astype(">u2").reshape(-1, 4)[:, ::-1].tobytes()
        else:
            out += f.astype({"U08": ">u1", "U16": ">u2", "U32": ">u4"}[depth]).tobytes()
    return out


def h5(build):
    b = io.BytesIO()
    with h5py.File(b, "w", libver="latest") as f:
        build(f)
    return b.getvalue()


def frames(shape, dtype):
    return RNG.integers(0, 100, size=shape).astype(dtype)


def main():
    dtypes = ["u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8", ">u2", ">f4", "?"]
    # --- npy: headers and whole arrays ---------------------------------------------------------
    for dt in dtypes:
        a = frames((3, 4), dt)
        name = dt.replace(">", "be_").replace("?", "bool")
        put("fuzz_npy_header", "v1_%s.npy" % name, npy(a)[:256])
        put("fuzz_array", "%s.npy" % name, npy(a))
    put("fuzz_npy_header", "v2.npy", npy(frames((2, 2), "u2"), version=(2, 0)))
    put("fuzz_npy_header", "v3.npy", npy(frames((2, 2), "u2"), version=(3, 0)))
    put("fuzz_npy_header", "scalar.npy", npy(np.array(5, dtype="u2")))
    put("fuzz_npy_header", "fortran.npy", npy(np.asfortranarray(frames((3, 5), "u2"))))
    put("fuzz_npy_header", "4d.npy", npy(frames((2, 2, 3, 3), "u2")))
    put("fuzz_npy_header", "empty.npy", npy(np.zeros((0, 4), "u2")))
    put("fuzz_array", "fortran.npy", npy(np.asfortranarray(frames((3, 5), ">i4"))))
    put("fuzz_array", "3d.npy", npy(frames((2, 3, 4), "f8"), version=(2, 0)))
    # --- TIFF as arrays: dtypes, byte orders, stacks, compression, tiles -----------------------
    for dt in ["u1", "u2", "u4", "i1", "i2", "i4", "f4", "f8"]:
        put("fuzz_array", "tiff_%s.tif" % dt, tiff([frames((4, 6), dt)]))
    put("fuzz_array", "tiff_be.tif", tiff([frames((4, 6), "u2")], byteorder=">"))
    put("fuzz_array", "tiff_stack.tif", tiff([frames((4, 4), "u2") for _ in range(3)]))
    put("fuzz_array", "tiff_bigtiff.tif",
        (lambda b: (tifffile.imwrite(b, frames((4, 4), "u2"), bigtiff=True), b.getvalue())[1])(
            io.BytesIO()))
    for comp in ["zlib"]:  # LZW, PackBits: tifffile needs imagecodecs to write them
        put("fuzz_array", "tiff_%s.tif" % comp, tiff([frames((8, 8), "u2")], compression=comp))
    put("fuzz_array", "tiff_tiled.tif", tiff([frames((40, 40), "u1")], tile=(16, 16),
                                             compression="zlib"))
    put("fuzz_array", "tiff_strips.tif", tiff([frames((4, 4), "u1")], rowsperstrip=1))
    put("fuzz_array", "tiff_rgb.tif", tiff([frames((4, 4, 3), "u1")]))
    # --- datasets ------------------------------------------------------------------------------
    put("fuzz_dataset", "4d.npy", npy(frames((2, 2, 4, 4), "u2")))
    put("fuzz_dataset", "3d_be.npy", npy(frames((3, 4, 4), ">f4")))
    put("fuzz_dataset", "fortran.npy", npy(np.asfortranarray(frames((2, 3, 4, 4), "u1"))))
    put("fuzz_dataset", "u1.mrc", mrc(frames((3, 4, 4), "u1").astype(np.int8)))
    put("fuzz_dataset", "i2.mrc", mrc(frames((2, 4, 4), "i2")))
    put("fuzz_dataset", "f4_ext.mrc", mrc(frames((2, 4, 4), "f4"), ext=np.zeros(16, "u1")))
    put("fuzz_dataset", "u2.mrc", mrc(frames((2, 4, 4), "u2")))
    put("fuzz_dataset", "stack.tif", tiff([frames((4, 4), "u2") for _ in range(4)]))
    put("fuzz_dataset", "stack_be.tif", tiff([frames((4, 4), "f4") for _ in range(2)],
                                             byteorder=">"))
    put("fuzz_dataset", "stack_zlib.tif", tiff([frames((8, 8), "u2") for _ in range(3)],
                                               compression="zlib"))
    put("fuzz_dataset", "stack_tiled.tif", tiff([frames((16, 16), "u1") for _ in range(2)],
                                                tile=(16, 16)))
    put("fuzz_dataset", "imagej.tif",
        (lambda b: (tifffile.imwrite(b, frames((3, 4, 4), "u2"), imagej=True), b.getvalue())[1])(
            io.BytesIO()))
    for depth in ["U08", "U16", "U32"]:
        put("fuzz_dataset", "%s.mib" % depth.lower(), mib(frames((2, 4, 4), "u4") % 200, depth))
    put("fuzz_dataset", "r64_12.mib", mib(frames((2, 8, 8), "u2"), "R64", 12))
    put("fuzz_dataset", "r64_6.mib", mib(frames((2, 8, 8), "u1") % 60, "R64", 6))
    put("fuzz_dataset", "r64_1.mib", mib(frames((2, 8, 8), "u1") % 2, "R64", 1))
    put("fuzz_dataset", "quad.mib", mib(frames((1, 8, 8), "u2"), "U16", chips=4, layout="2x2",
                                        header_size=768))
    # --- HDF5 (its own target: the library is slow and not thread-safe) ------------------------
    put("fuzz_hdf5", "contiguous.h5", h5(lambda f: f.create_dataset("d",
                                                                      data=frames((2, 2, 4, 4), "u2"))))
    put("fuzz_hdf5", "chunked.h5", h5(lambda f: f.create_dataset("g/d", data=frames((3, 4, 4), "f4"),
                                                                   chunks=(1, 4, 4))))
    put("fuzz_hdf5", "gzip.h5", h5(lambda f: f.create_dataset("d", data=frames((2, 4, 4), "u1"),
                                                                chunks=(1, 4, 4), compression="gzip")))
    put("fuzz_hdf5", "be.h5", h5(lambda f: f.create_dataset("d", data=frames((2, 4, 4), ">i4"))))

    def two(f):
        f.create_dataset("a", data=frames((2, 4, 4), "u2"))
        f.create_dataset("b", data=frames((4,), "u2"))
    put("fuzz_hdf5", "two.h5", h5(two))
    b = io.BytesIO()
    with h5py.File(b, "w") as f:  # the default (oldest) file format version
        f.create_dataset("d", data=frames((2, 3, 4), "u2"))
    put("fuzz_hdf5", "v0.h5", b.getvalue())
    # --- raw: a 56-byte parameter block (see fuzz_raw.c), then the file ----------------------
    def raw(dtype, nav, sig, offset=0, header=0, footer=0, sync=0, flags=0, body=b""):
        p = bytes([dtype, len(nav), len(sig), flags])
        p += struct.pack("<4H", *(list(nav) + [0] * (4 - len(nav))))
        p += struct.pack("<4H", *(list(sig) + [0] * (4 - len(sig))))
        p += struct.pack("<QIIq", offset, header, footer, sync)
        return p + b"\0" * (56 - len(p)) + body
    body = frames((4, 4, 4), "u2").tobytes()
    put("fuzz_raw", "u2_4x4", raw(2, (), (4, 4), body=body))
    put("fuzz_raw", "u2_2x2_4x4_big", raw(2, (2, 2), (4, 4), flags=3, body=body))
    put("fuzz_raw", "f4_offsets", raw(9, (2,), (2, 2), offset=16, header=8, footer=4,
                                      body=bytes(16) + (bytes(8) + bytes(16) + bytes(4)) * 2))
    put("fuzz_raw", "u1_sync_pad", raw(1, (3, 3), (4, 4), sync=-2, body=bytes(16 * 5)))
    put("fuzz_raw", "u1_sync_skip", raw(1, (4,), (4, 4), sync=3, flags=4, body=bytes(16 * 5)))
    put("fuzz_raw", "f8_1d", raw(10, (), (8,), body=bytes(64 * 3)))
    # --- Merlin acquisition headers, next to a 4-frame 4x4 U16 x.mib (see fuzz_mib_hdr.c) ------
    def hdr(frames_n, per_trigger=None, scan=None, depth=12):
        lines = ["HDR,\t", "Time and Date Stamp (day, mnth, yr, hr, min, s):\t18/05/2020 16:51:48",
                 "Chip ID:\tW529_F5,-,-,-", "Assembly Size (NX1, 2X2):\t   1x1",
                 "Counter Depth (number):\t%d" % depth,
                 "Frames in Acquisition (Number):\t%d" % frames_n,
                 "Frames per Trigger (Number):\t%d" % (per_trigger or frames_n)]
        if scan:
            lines += ["ScanX:\t%d" % scan[1], "ScanY:\t%d" % scan[0]]
        lines += ["Software Version:\t0.67.0.9", "End\t" + " " * 20]
        return "\n".join(lines) + "\n"
    put("fuzz_mib_hdr", "plain.hdr", hdr(4))
    put("fuzz_mib_hdr", "trigger.hdr", hdr(4, per_trigger=2))
    put("fuzz_mib_hdr", "scan.hdr", hdr(4, scan=(2, 2)))
    put("fuzz_mib_hdr", "too_many.hdr", hdr(8, per_trigger=4))
    # --- .ini descriptors -----------------------------------------------------------------------
    put("fuzz_ini", "raw.ini", "[dataset]\npath = data.raw\nformat = raw\ndtype = <u2\n"
        "nav_shape = 16,16\nsig_shape = 8x8\noffset = 0\nframe_header = 8\nframe_footer = 4\n"
        "byte_order = big\n")
    put("fuzz_ini", "full.ini", "; comment\n[dataset]\npath = /abs/data.h5\nformat = hdf5\n"
        "hdf5_path = /entry/data\nsig_dims = 2\nsync_offset = -3\nio = read\n\n[udfhost]\n"
        "threads = 4\noutput = results\n")
    put("fuzz_ini", "npy.ini", "[dataset]\npath=sub/x.npy\nsig_dims=1\nio=direct\n"
        "[udfhost]\nthreads=1\n")
    put("fuzz_ini", "bad.ini", "[dataset]\npath = a\nunknown = 1\n")
    put("fuzz_ini", "continued.ini", "[dataset]\npath = a b c\n  continued\n# x\nio = mmap\n")
    # --- command-line values --------------------------------------------------------------------
    for i, s in enumerate(["256,256", "16x64x64", "1,2,3,4", "4294967296,4294967296", "0",
                           "18446744073709551615", "10K", "1.5G", "4MiB", "2TB", "<u2", ">f4",
                           "=i4", "|u1", "uint16", "float64", "bool", "b1", "-3", "big",
                           "little", "1,-2.5e3,0x10", "nan", "inf", "yes", "float32",
                           "1e308,1e-308", "mmap", "direct"]):
        put("fuzz_shape", "v%02d" % i, s)
    print("corpus written to", CORPUS)


if __name__ == "__main__":
    sys.exit(main())
