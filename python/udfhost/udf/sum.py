"""SumUDF: the sum of all frames (LiberTEM's libertem.udf.sum.SumUDF) on udfhost's `sum`."""
import numpy as np

from ._plugin import Plugin, Prepared, float_dtype


class SumUDF(Plugin):
    """Sum of all frames: result "intensity" (sig). dtype: as LiberTEM, the result is
    np.result_type(dataset dtype, dtype); integer data is summed exactly, then rounded once."""

    def __init__(self, dtype="float32"):
        super().__init__("sum", dtype=dtype)
        self.dtype = np.dtype(dtype)

    def _prepare(self, info):
        want = info.input_dtype(self.dtype)
        if want.kind == "c":
            raise NotImplementedError("SumUDF: complex results are not supported by udfhost")
        plugin_dtype = float_dtype(want) if want.kind == "f" else "float64"

        def finish(buffers):
            if want.kind != "f":  # integer sums: exact in float64 up to 2**53
                buf = buffers["intensity"]
                buffers["intensity"] = type(buf)(buf.name, buf.kind, buf.data.astype(want))
            return buffers
        return Prepared("sum", [f"dtype={plugin_dtype}"], finish)
