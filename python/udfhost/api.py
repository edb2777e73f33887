"""udfhost's Python API, with LiberTEM's names: import udfhost.api as lt.

    ctx = lt.Context()                      # one worker thread per core; Context(threads=2)
    ds = ctx.load("auto", path="scan.mib")  # or "raw", "npy", "tiff", "mrc", "mib", "hdf5", "memory"
    res = ctx.run_udf(dataset=ds, udf=SumUDF())
    res["intensity"].data                   # NumPy array over the engine's results, no copy
"""
import re

import numpy as np

from . import _run
from ._udfhost import Dataset as _Dataset, ParameterError, UdfhostError
from .corrections import CorrectionSet
from .udf._plugin import Plugin

__all__ = ["Context", "DataSet", "Shape", "Plugin", "ResultBuffer", "UDFResults",
           "CorrectionSet"]

ResultBuffer = _run.ResultBuffer
UDFResults = _run.UDFResults

# Context.load's filetypes: LiberTEM's names for the formats udfhost reads.
_FORMATS = ("raw", "npy", "tiff", "mrc", "mib", "hdf5")

# Dataset options of `udfhost run`, by their names here, and LiberTEM's other names for them.
_OPTIONS = ("format", "dtype", "byte_order", "nav_shape", "sig_shape", "offset", "frame_header",
            "frame_footer", "sig_dims", "hdf5_path", "sync_offset", "io")
_ALIASES = {"scan_size": "nav_shape", "detector_size": "sig_shape", "ds_path": "hdf5_path",
            "io_backend": "io"}
_SHAPES = ("nav_shape", "sig_shape")
_FLAG = re.compile(r"--(" + "|".join(o.replace("_", "-") for o in _OPTIONS) + r")\b")


class _Dims(tuple):
    """A tuple of dimensions with LiberTEM's .size and .dims."""

    @property
    def size(self):
        return int(np.prod(self, dtype=np.int64))

    @property
    def dims(self):
        return len(self)


class Shape(_Dims):
    """A dataset's shape: the tuple nav + sig, with .nav and .sig (each with .size, .dims)."""

    def __new__(cls, nav, sig):
        self = super().__new__(cls, tuple(nav) + tuple(sig))
        self.nav = _Dims(nav)
        self.sig = _Dims(sig)
        return self

    def to_tuple(self):
        """The shape as a plain tuple, nav + sig."""
        return tuple(self)

    def __repr__(self):
        return f"Shape(nav={tuple(self.nav)}, sig={tuple(self.sig)})"


class DataSet:
    """A dataset opened by Context.load. .shape (a Shape with .nav and .sig), .dtype (NumPy),
    .info (what `udfhost info` shows), close()."""

    def __init__(self, handle, array=None):
        self._handle = handle
        self.info = handle.info()
        self.shape = Shape(self.info["nav_shape"], self.info["sig_shape"])
        self.dtype = np.dtype(self.info["dtype"])
        self.path = self.info["path"]
        self.format = self.info["format"]

    def close(self):
        """Unmap the file (memory datasets: let go of the array) now, not at garbage
        collection. Results already computed stay valid."""
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"<DataSet {self.format} {self.path!r} nav {tuple(self.shape.nav)} "
                f"sig {tuple(self.shape.sig)} {self.dtype}>")


def _option_value(name, value):
    """A load() option as `udfhost run` takes it on the command line."""
    if name in _SHAPES:
        if isinstance(value, str):
            return value
        try:
            dims = [int(v) for v in value]
            if any(d != v for d, v in zip(dims, value)):
                raise TypeError
        except (TypeError, ValueError):
            raise ParameterError(f"{name}: {value!r} is not a shape (a tuple of ints)") from None
        return ",".join(str(d) for d in dims)
    if name == "dtype":
        try:
            return np.dtype(value).str
        except TypeError:
            raise ParameterError(f"dtype: {value!r} is not a dtype") from None
    if isinstance(value, bool):
        raise ParameterError(f"{name}: {value!r} is not a number or a string")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, str):
        return value
    raise ParameterError(f"{name}: {value!r} is not a number or a string")


class Context:
    """Where UDFs run: udfhost's engine with `threads` worker threads (None: one per core).

    LiberTEM's Context(executor=...) starts a dask cluster; here the engine's thread pool does
    the work in this process, so executor may only be None. Context.make_with("threads",
    cpus=4) and make_with("inline") (one thread) are accepted too. A Context holds no resources
    of its own: close() is for LiberTEM's API, and results stay valid after it."""

    def __init__(self, executor=None, *, threads=None, plot_class=None):
        if executor is not None:
            raise ParameterError("Context(executor=...): udfhost runs UDFs on its own thread "
                                 "pool; use Context(threads=N)")
        if threads is not None and (not isinstance(threads, int) or not 1 <= threads <= 1024):
            raise ParameterError(f"threads: {threads!r} is not a number from 1 to 1024")
        self.threads = threads

    @classmethod
    def make_with(cls, executor_spec="threads", *, cpus=None, gpus=None, plot_class=None,
                  **ignored):
        """A Context as LiberTEM makes one: "inline"/"synchronous" run on one thread; "threads",
        "dask" and the other executors on `cpus` threads (default: one per core)."""
        if executor_spec in ("inline", "synchronous"):
            return cls(threads=1)
        if isinstance(cpus, (list, tuple, range, set)):
            cpus = len(cpus)
        return cls(threads=cpus)

    def load(self, filetype, path=None, *, data=None, **options):
        """Open a dataset: Context.load(filetype, path=..., **options) -> DataSet.

        filetype: "auto" (the format told from the file), "raw", "npy", "tiff", "mrc", "mib",
            "hdf5", or "memory" (a NumPy array: data=arr, sig_dims=2).
        path: the file (also a directory or glob of one file per frame, or an .ini descriptor).
        options, those of `udfhost run` by their long names:
            dtype        element type of raw data: "uint16", np.uint16, ">u2", ...
            nav_shape    scan shape, e.g. (256, 256)        (LiberTEM also: scan_size)
            sig_shape    frame shape, e.g. (128, 128)       (LiberTEM also: detector_size)
            byte_order   "little" or "big", unless dtype says < or >
            offset       bytes before the first frame
            frame_header, frame_footer   bytes around each frame
            sig_dims     npy, hdf5, memory: the last N dimensions are the signal (default 2)
            hdf5_path    the dataset inside an HDF5 file          (LiberTEM: ds_path)
            sync_offset  scan frame i is file frame i+N
            io           "mmap", "read" or "direct"               (LiberTEM: io_backend)
        Memory datasets use the array in place when it is C-contiguous and in native byte
        order (keep it unchanged while the dataset lives), else a contiguous copy; nav_shape and
        sig_shape may reshape it.
        Raises ParameterError for unknown or malformed options, DatasetError for a file that
        cannot be read as said.
        """
        options = {_ALIASES.get(k, k): v for k, v in options.items() if v is not None}
        for ignored in ("tileshape", "num_partitions", "check_cast", "tiledelay",
                        "force_need_decode", "array_backends", "base_shape"):
            options.pop(ignored, None)
        if filetype == "memory":
            return self._load_memory(data, options)
        if data is not None:
            raise ParameterError("data= is for filetype 'memory'")
        if filetype != "auto":
            if filetype not in _FORMATS:
                raise ParameterError(f"unknown filetype '{filetype}' (known: auto, memory, "
                                     f"{', '.join(_FORMATS)})")
            options.setdefault("format", filetype)
        if path is None:
            raise ParameterError("load: no path given")
        for name in options:
            if name not in _OPTIONS:
                raise ParameterError(f"unknown dataset option '{name}' (known: "
                                     f"{', '.join(_OPTIONS[1:])})")
        pairs = [(name, _option_value(name, value)) for name, value in options.items()]
        try:
            return DataSet(_Dataset(path, pairs))
        except UdfhostError as e:
            # The engine's messages name options as `udfhost run` spells them (--sig-shape);
            # here they are keywords (sig_shape).
            text = _FLAG.sub(lambda m: m.group(1).replace("-", "_"), str(e))
            if text == str(e):
                raise
            raise type(e)(text) from None

    def _load_memory(self, data, options):
        if data is None:
            raise ParameterError("load('memory'): no data= given")
        arr = np.asarray(data)
        unknown = set(options) - {"sig_dims", "nav_shape", "sig_shape", "sync_offset"}
        if unknown:
            raise ParameterError(f"unknown option '{sorted(unknown)[0]}' for a memory dataset "
                                 "(known: sig_dims, nav_shape, sig_shape)")
        if options.get("sync_offset", 0):
            raise ParameterError("sync_offset is not supported for memory datasets")
        nav, sig = options.get("nav_shape"), options.get("sig_shape")
        sig_dims = options.get("sig_dims")
        for name, shape in (("nav_shape", nav), ("sig_shape", sig)):
            if shape is not None:
                _option_value(name, shape)
        if sig_dims is None:
            sig_dims = len(sig) if sig is not None else arr.ndim - len(nav) if nav is not None \
                else 2
        if not isinstance(sig_dims, (int, np.integer)) or isinstance(sig_dims, bool):
            raise ParameterError(f"sig_dims: {sig_dims!r} is not a number")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if nav is not None or sig is not None:
            sig_t = tuple(sig) if sig is not None else arr.shape[arr.ndim - sig_dims:]
            nav_t = tuple(nav) if nav is not None else (arr.size // max(1, int(np.prod(sig_t))),)
            if int(np.prod(nav_t)) * int(np.prod(sig_t)) != arr.size:
                raise ParameterError(f"memory dataset: nav_shape {nav_t} and sig_shape {sig_t} "
                                     f"do not fit an array of {arr.size} elements")
            arr = arr.reshape(nav_t + sig_t)
            sig_dims = len(sig_t)
        arr = np.ascontiguousarray(arr)
        return DataSet(_Dataset.from_memory(arr, int(sig_dims)))

    def run_udf(self, dataset, udf, roi=None, corrections=None, progress=False, backends=None,
                plots=None, sync=True):
        """Run one UDF or several in one pass over the dataset; blocks until done.

        udf: a UDF (SumUDF(), Plugin("com", ...), ...) or a list of them.
        roi: a bool array of the nav shape (or flat), True = process this frame; nav results
            are NaN (float) or 0 elsewhere.
        corrections: a CorrectionSet (dark, gain, excluded_pixels).
        progress: show a progress bar (tqdm when installed, else a plain one on stderr).
        Returns a dict {buffer name: ResultBuffer} for one UDF, a tuple of such dicts for a
        list. ResultBuffer.data is a NumPy array over the engine's result memory (no copy),
        valid after the Context and the dataset are closed.
        Ctrl-C stops the run and raises KeyboardInterrupt; errors raise UdfhostError
        subclasses with the message `udfhost run` prints.
        """
        if not sync:
            raise ParameterError("run_udf(sync=False) is not supported; run_udf_iter gives "
                                 "results while the run goes on")
        udfs, single = _udf_list(udf)
        final = None
        for final in _run.run(self, dataset, udfs, roi, corrections, progress, iterate=False):
            pass
        return final.buffers[0] if single else final.buffers

    def run_udf_iter(self, dataset, udf, roi=None, corrections=None, progress=False,
                     backends=None, plots=None, sync=True):
        """run_udf, yielding UDFResults while the run goes on: .buffers is a tuple of dicts
        (one per UDF, also for a single UDF) of the results so far, .damage a ResultBuffer
        whose .data is the bool nav mask of the frames merged so far. The last one yielded holds
        the final results. Partial results are the engine's snapshots after merged partitions; a
        consumer slower than the run gets fewer of them, never stale ones. Closing the generator
        early cancels the run."""
        udfs, _ = _udf_list(udf)
        return _run.run(self, dataset, udfs, roi, corrections, progress, iterate=True)

    def close(self):
        """Nothing to release: the engine's threads live only while a run does."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _udf_list(udf):
    if isinstance(udf, (list, tuple)):
        if not udf:
            raise ValueError("empty list of UDFs - nothing to do!")
        udfs, single = list(udf), False
    else:
        udfs, single = [udf], True
    for u in udfs:
        if not hasattr(u, "_prepare"):
            raise ParameterError(f"{u!r} is not a UDF udfhost runs (its bundled UDFs, or "
                                 "udfhost.api.Plugin for any plugin)")
    return udfs, single
