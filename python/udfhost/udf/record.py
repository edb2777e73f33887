"""RecordUDF: write the frames to a .npy file (LiberTEM's libertem.udf.record.RecordUDF) with
udfhost's `record`."""
import os

from ._plugin import Plugin, Prepared


class RecordUDF(Plugin):
    """Write the dataset's frames (after corrections) to filename as .npy of shape nav + sig,
    replacing the file. No result buffers. As in LiberTEM, a ROI is refused."""

    def __init__(self, filename, _is_master=True):
        super().__init__("record", filename=filename)
        self.filename = os.fspath(filename)

    def _prepare(self, info):
        if info.roi is not None:
            raise RuntimeError("Recording with ROI is not supported.")
        return Prepared("record", [f"out={self.filename}", "overwrite=true", "dtype=native"])
