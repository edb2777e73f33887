"""CoMUDF: centre of mass of every frame, its shifts and derived fields (LiberTEM's
libertem.udf.com.CoMUDF) on udfhost's `com`."""
import enum
from typing import NamedTuple, Optional, Union

import numpy as np

from .._run import ResultBuffer
from ._plugin import Plugin, Prepared, exclusive_inner_radius, float_dtype, format_value


class RegressionOptions(enum.IntEnum):
    """What CoMUDF subtracts from the field: nothing, its mean, or a plane fitted over the
    scan (the descan error)."""
    NO_REGRESSION = -1
    SUBTRACT_MEAN = 0
    SUBTRACT_LINEAR = 1


class CoMParams(NamedTuple):
    """CoMUDF's parameters, as LiberTEM's: centre (cy, cx; None: sig_shape // 2), outer radius r
    (inf: none) and inner radius ri of the mask, scan_rotation in degrees, flip_y, and the
    regression to subtract (a RegressionOptions or a (3, 2) array
    [[y, x], [dy/dy, dx/dy], [dy/dx, dx/dx]])."""
    cy: Optional[float] = None
    cx: Optional[float] = None
    r: float = float("inf")
    ri: Optional[float] = 0.0
    scan_rotation: float = 0.0
    flip_y: bool = False
    regression: Union[np.ndarray, RegressionOptions] = RegressionOptions.NO_REGRESSION


class CoMUDF(Plugin):
    """Centre of mass of every frame (in a disk of radius r, or a ring ri < d <= r).

    Results (nav, float32; float64 for int32/uint32/float64 data): raw_com (y, x), raw_shifts
    (raw_com - (cy, cx)), field (the shifts flipped, rotated and with the regression
    subtracted), field_y, field_x, magnitude, divergence, curl; and regression (single (3, 2),
    float64: what was subtracted). Needs a 2-D scan and 2-D frames, as in LiberTEM."""

    def __init__(self, com_params=CoMParams()):
        super().__init__("com")
        self.com_params = CoMParams(*com_params)

    @classmethod
    def with_params(cls, *, cy=None, cx=None, r=float("inf"), ri=0.0, scan_rotation=0.0,
                    flip_y=False, regression=RegressionOptions.NO_REGRESSION):
        """CoMUDF(CoMParams(...)) with keyword arguments; ri must be below r."""
        if ri is not None and ri >= r:
            raise ValueError(f"ri ({ri}) must be smaller than r ({r})")
        return cls(CoMParams(cy, cx, r, ri, scan_rotation, flip_y, regression))

    def _prepare(self, info):
        p = self.com_params
        ds = info.dataset
        if len(ds.shape.sig) != 2:
            raise ValueError("CoMUDF only works with 2D sig shape.")
        if len(ds.shape.nav) != 2:
            raise ValueError("CoMUDF only works with 2D nav shape.")
        h, w = ds.shape.sig
        cy = h // 2 if p.cy is None else p.cy
        cx = w // 2 if p.cx is None else p.cx
        params = [f"cy={format_value('cy', cy)}", f"cx={format_value('cx', cx)}",
                  f"scan_rotation={format_value('scan_rotation', p.scan_rotation)}",
                  f"flip_y={format_value('flip_y', bool(p.flip_y))}",
                  f"dtype={float_dtype(info.input_dtype())}"]
        if np.isfinite(p.r):
            params.append(f"r={format_value('r', p.r)}")
        if p.ri is not None and p.ri > 0 and not np.isclose(p.ri, 0):
            params.append(f"ri={format_value('ri', exclusive_inner_radius(p.ri))}")
        regression = p.regression

        def finish(buffers):
            field = buffers["field"]
            valid = field._valid
            applied = np.zeros((3, 2))
            # Frames whose mask sum is 0: com gives NaN, LiberTEM a shift of 0 (center_shifts).
            shifts = buffers["raw_shifts"].data
            empty = np.isnan(shifts).any(axis=-1)
            if valid is not None:
                empty &= valid
            recompute = bool(empty.any())
            if recompute:
                shifts[empty] = 0
                buffers["raw_com"].data[empty] = (cy, cx)
                field.data[empty] = 0
            if isinstance(regression, np.ndarray) or regression != RegressionOptions.NO_REGRESSION:
                applied = _subtract_regression(field.data, valid, regression)
                recompute = True
            if recompute:
                fy, fx = field.data[..., 0], field.data[..., 1]
                buffers["magnitude"].data[...] = np.sqrt(fy * fy + fx * fx)
                buffers["divergence"].data[...] = np.gradient(fy, axis=0) + \
                    np.gradient(fx, axis=1)
                buffers["curl"].data[...] = np.gradient(fy, axis=1) - np.gradient(fx, axis=0)
            out = dict(buffers)
            out["field_y"] = ResultBuffer("field_y", "nav", field.data[..., 0], valid, 2)
            out["field_x"] = ResultBuffer("field_x", "nav", field.data[..., 1], valid, 2)
            out["regression"] = ResultBuffer("regression", "single", applied)
            return out
        return Prepared("com", params, finish)


def _subtract_regression(field, valid, regression):
    """Subtract from field (nav y, nav x, 2), in place, the mean (SUBTRACT_MEAN) or the plane
    fitted by least squares over the valid positions (SUBTRACT_LINEAR), or the given (3, 2)
    coefficients; return the coefficients subtracted."""
    ny, nx = field.shape[:2]
    yy, xx = np.mgrid[0:ny, 0:nx]
    ok = np.isfinite(field).all(axis=-1) & (np.ones((ny, nx), bool) if valid is None else valid)
    if isinstance(regression, np.ndarray):
        coeff = np.asarray(regression, dtype=np.float64).reshape(3, 2)
    elif regression == RegressionOptions.SUBTRACT_MEAN:
        coeff = np.zeros((3, 2))
        coeff[0] = field[ok].mean(axis=0) if ok.any() else 0
    elif regression == RegressionOptions.SUBTRACT_LINEAR:
        a = np.stack([np.ones(ok.sum()), yy[ok], xx[ok]], axis=1)
        coeff = np.linalg.lstsq(a, field[ok].astype(np.float64), rcond=None)[0] \
            if ok.sum() >= 3 else np.zeros((3, 2))
    else:
        raise ValueError(f"unknown regression {regression!r}")
    plane = coeff[0] + yy[..., None] * coeff[1] + xx[..., None] * coeff[2]
    field -= plane.astype(field.dtype)
    return coeff
