"""SumSigUDF: the sum over each frame (LiberTEM's libertem.udf.sumsigudf.SumSigUDF) on udfhost's
`sumsig`."""
from ._plugin import Plugin, Prepared, float_dtype


class SumSigUDF(Plugin):
    """Sum over each frame: result "intensity" (nav), a virtual bright-field image of the whole
    detector; float64 for int32/uint32/float64 data, else float32, as LiberTEM."""

    def __init__(self):
        super().__init__("sumsig")

    def _prepare(self, info):
        return Prepared("sumsig", [f"dtype={float_dtype(info.input_dtype())}"])
