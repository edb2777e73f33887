"""FEMUDF: fluctuation electron microscopy (LiberTEM's libertem.udf.FEM.FEMUDF) on udfhost's
`fem`."""
from ._plugin import Plugin, Prepared, exclusive_inner_radius, format_value


class FEMUDF(Plugin):
    """Result "intensity" (nav, float32): the standard deviation of each frame's pixels in the
    ring rad_in < d <= rad_out around center = (row, column), LiberTEM's pixel set."""

    def __init__(self, center, rad_in, rad_out):
        super().__init__("fem", center=center, rad_in=rad_in, rad_out=rad_out)
        self.center = tuple(center)
        self.rad_in = rad_in
        self.rad_out = rad_out

    def _prepare(self, info):
        cy, cx = self.center
        ri = exclusive_inner_radius(self.rad_in)
        params = [f"cy={format_value('cy', cy)}", f"cx={format_value('cx', cx)}",
                  f"ri={format_value('ri', ri)}", f"ro={format_value('ro', self.rad_out)}",
                  "dtype=float32"]
        return Prepared("fem", params)
