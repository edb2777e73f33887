"""PickUDF: the frames of a ROI as stored (LiberTEM's libertem.udf.raw.PickUDF), on udfhost's
`pick` (one frame) or `record` (several)."""
import os
import shutil
import tempfile

import numpy as np

from .._run import ResultBuffer
from ._plugin import Plugin, Prepared


class PickUDF(Plugin):
    """Result "intensity" (single, shape (n, *sig), the dataset's dtype): the n frames the ROI
    selects, in nav order (without a ROI, every frame). As in LiberTEM, use it with a small ROI:
    roi = np.zeros(ds.shape.nav, bool); roi[y, x] = True."""

    def __init__(self):
        super().__init__("pick")

    def _prepare(self, info):
        nav = tuple(info.dataset.shape.nav)
        sig = tuple(info.dataset.shape.sig)
        roi = info.roi
        if roi is not None and roi.sum() == 1:
            at = np.unravel_index(int(np.flatnonzero(roi)[0]), nav)

            def one(buffers):
                buf = buffers["intensity"]
                return {"intensity": ResultBuffer("intensity", "single", buf.data[np.newaxis])}
            return Prepared("pick", ["at=" + ",".join(str(int(i)) for i in at)], one)
        # Several frames: `record` writes exactly the selected ones, which are then mapped.
        tmp = tempfile.mkdtemp(prefix="udfhost-pick-")
        path = os.path.join(tmp, "frames.npy")

        def many(buffers):
            data = np.load(path).reshape((-1,) + sig)
            return {"intensity": ResultBuffer("intensity", "single", data)}
        return Prepared("record", [f"out={path}", "dtype=native"], many,
                        cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))
