"""StdDevUDF: per-pixel mean, variance and standard deviation over frames (LiberTEM's
libertem.udf.stddev.StdDevUDF) on udfhost's `stddev`."""
import numpy as np

from ._plugin import Plugin, Prepared


class StdDevUDF(Plugin):
    """Per-pixel statistics over the frames: results "var", "std", "mean" (sig, population
    variance), "sum", "varsum" (sig) and "num_frames" (single, shape (1,), int64), with
    LiberTEM's dtypes: var, std and varsum in `dtype` (None: float64), sum and mean in
    np.result_type(input dtype, dtype), so float64 for int32/uint32/float64 data. use_numba is
    accepted and ignored."""

    def __init__(self, dtype=None, use_numba=True):
        super().__init__("stddev")
        self.dtype = np.dtype(np.float64 if dtype is None else dtype)

    def _prepare(self, info):
        plugin_dtype = "float32" if self.dtype == np.float32 and \
            info.input_dtype(np.float32) == np.float32 else "float64"

        # LiberTEM's dtypes: var, std and varsum in the base dtype, sum and mean in its result
        # type with the input dtype.
        base = self.dtype
        wide = np.result_type(info.input_dtype(np.float32), base)
        want = {"var": base, "std": base, "varsum": base, "sum": wide, "mean": wide}

        def finish(buffers):
            n = buffers["num_frames"]
            buffers["num_frames"] = type(n)(n.name, n.kind, n.data.reshape(1).astype(np.int64))
            for name, dtype in want.items():
                buf = buffers[name]
                if buf.data.dtype != dtype:
                    buffers[name] = type(buf)(buf.name, buf.kind, buf.data.astype(dtype))
            return buffers
        return Prepared("stddev", [f"dtype={plugin_dtype}"], finish)
