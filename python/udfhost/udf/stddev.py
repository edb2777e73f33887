"""StdDevUDF: per-pixel mean, variance and standard deviation over frames (LiberTEM's
libertem.udf.stddev.StdDevUDF) on udfhost's `stddev`."""
import numpy as np

from ._plugin import Plugin, Prepared


class StdDevUDF(Plugin):
    """Per-pixel statistics over the frames: results "var", "std", "mean" (sig, population
    variance), "sum", "varsum" (sig, always float64) and "num_frames" (single, shape (1,),
    int64, as LiberTEM). dtype: the precision of var/std/mean, None for float64; float32 gives
    float32 only where LiberTEM's input dtype is float32 (uint8/uint16/int16/float32 data),
    float64 otherwise. use_numba is accepted and ignored."""

    def __init__(self, dtype=None, use_numba=True):
        super().__init__("stddev")
        self.dtype = np.dtype(np.float64 if dtype is None else dtype)

    def _prepare(self, info):
        plugin_dtype = "float32" if self.dtype == np.float32 and \
            info.input_dtype(np.float32) == np.float32 else "float64"

        def finish(buffers):
            n = buffers["num_frames"]
            buffers["num_frames"] = type(n)(n.name, n.kind, n.data.reshape(1).astype(np.int64))
            return buffers
        return Prepared("stddev", [f"dtype={plugin_dtype}"], finish)
