"""FEMUDF: fluctuation electron microscopy (LiberTEM's libertem.udf.FEM.FEMUDF) on udfhost's
`fem`."""
import numpy as np

from ._plugin import Plugin, Prepared, format_value


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
        # LiberTEM's ring leaves out the pixels at exactly rad_in (d^2 <= rad_in^2, also the
        # centre pixel for rad_in = 0); fem's includes them: pass the next radius whose square
        # is above rad_in^2 (for 0, one whose square is tiny but not 0).
        rad_in = float(self.rad_in)
        ri = float(np.nextafter(rad_in, np.inf)) if rad_in > 0 else 1e-150
        while ri * ri <= rad_in * rad_in:
            ri = float(np.nextafter(ri, np.inf))
        params = [f"cy={format_value('cy', cy)}", f"cx={format_value('cx', cx)}",
                  f"ri={format_value('ri', ri)}", f"ro={format_value('ro', self.rad_out)}",
                  "dtype=float32"]
        return Prepared("fem", params)
