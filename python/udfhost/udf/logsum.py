"""LogsumUDF: sum over frames of log(frame - min(frame) + 1) (LiberTEM's
libertem.udf.logsum.LogsumUDF) on udfhost's `logsum`."""
from ._plugin import Plugin, Prepared


class LogsumUDF(Plugin):
    """Result "logsum" (sig, float32 as in LiberTEM): the sum over frames of
    log(frame - min(frame) + 1), for showing diffraction patterns of a large dynamic range."""

    def __init__(self):
        super().__init__("logsum")

    def _prepare(self, info):
        return Prepared("logsum", ["dtype=float32"])
