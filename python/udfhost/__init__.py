"""udfhost: user-defined reduction functions (UDFs) over electron-microscopy datasets.

The engine is C (libudfhost); this package drives it with LiberTEM's names::

    import udfhost.api as lt
    from udfhost.udf.sum import SumUDF

    ctx = lt.Context()
    ds = ctx.load("auto", path="scan.npy")
    res = ctx.run_udf(dataset=ds, udf=SumUDF())
    res["intensity"].data          # a NumPy array over the engine's result memory

Errors are UdfhostError subclasses carrying the one-line message `udfhost run` prints:
ParameterError (also a ValueError), DatasetError, PluginError, OutputError (an OSError),
OutOfMemoryError (a MemoryError) and CancelledError.
"""
import os as _os

try:  # only in the build tree: where the uninstalled plugins and modules are
    from . import _build
except ImportError:
    pass
else:
    _os.environ.setdefault("UDFHOST_PLUGIN_PATH", _build.plugin_path)
    _os.environ.setdefault("UDFHOST_MODULE_DIR", _build.module_dir)

from ._udfhost import (  # noqa: E402
    CancelledError,
    DatasetError,
    OutOfMemoryError,
    OutputError,
    ParameterError,
    PluginError,
    UdfhostError,
    version as __version__,
)

__all__ = ["UdfhostError", "ParameterError", "DatasetError", "PluginError", "OutputError",
           "OutOfMemoryError", "CancelledError", "__version__"]
