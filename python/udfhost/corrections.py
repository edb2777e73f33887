"""Detector corrections for a run, as LiberTEM's CorrectionSet."""
import numpy as np

from ._udfhost import ParameterError


class CorrectionSet:
    """Corrections the engine applies to every frame before the UDFs see it.

    dark: sig-shaped array subtracted from every frame.
    gain: sig-shaped array every frame is multiplied with, after the dark frame.
    excluded_pixels: a sig-shaped bool mask, an integer (K, sig dims) array of pixel
        coordinates, or anything with .todense() / .toarray() giving a mask (sparse.COO);
        each pixel is replaced by the mean of its valid neighbours.
    allow_empty: accepted for LiberTEM's signature; pixels without valid neighbours become 0.

    With any correction, UDFs see float32 data (float64 for float64 data).
    """

    def __init__(self, dark=None, gain=None, excluded_pixels=None, allow_empty=False):
        self.dark = None if dark is None else _array(dark, "dark")
        self.gain = None if gain is None else _array(gain, "gain")
        if excluded_pixels is not None:
            for dense in ("todense", "toarray"):
                if hasattr(excluded_pixels, dense):
                    excluded_pixels = getattr(excluded_pixels, dense)()
                    break
            excluded_pixels = _array(excluded_pixels, "excluded_pixels")
        self.excluded_pixels = excluded_pixels
        self.allow_empty = allow_empty

    def get_dark_frame(self):
        """The dark frame (a sig-shaped array), or None."""
        return self.dark

    def get_gain_map(self):
        """The gain map (a sig-shaped array), or None."""
        return self.gain

    def get_excluded_pixels(self):
        """The excluded pixels (a bool mask or (K, sig dims) coordinates), or None."""
        return self.excluded_pixels

    def have_corrections(self):
        """True if any correction is set."""
        return any(x is not None for x in (self.dark, self.gain, self.excluded_pixels))


def _array(value, what):
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ParameterError(f"{what}: dtype {arr.dtype} is not a number type")
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("="), copy=False))
