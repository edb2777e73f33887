"""Running UDFs: the engine executes on a thread of its own (the GIL released), while the
calling thread shows progress, hands out partial results and turns Ctrl-C into a cancel."""
import sys
import threading

import numpy as np

from ._udfhost import ParameterError, Run
from .udf._plugin import RunInfo


class ResultBuffer:
    """One result of a UDF, as LiberTEM's BufferWrapper shows it.

    .data        the result as a NumPy array (nav buffers in the nav shape + extra shape, NaN or
                 0 at frames outside the ROI), over the engine's memory: no copy
    .raw_data    nav buffers: only the valid frames, flat (n, *extra); others: .data
    .valid_mask  bool array of .data's shape: True where .data holds results
    .masked_data .data as a numpy.ma array, masked where not valid
    .kind        "nav", "sig" or "single";  .dtype, .extra_shape, .name
    """

    def __init__(self, name, kind, data, valid=None, nav_ndim=0):
        self.name = name
        self.kind = kind
        self._data = data
        self._valid = valid  # nav: bool nav-shaped; None: all
        self._nav_ndim = nav_ndim if kind == "nav" else 0

    @property
    def data(self):
        """The result as a NumPy array over the engine's memory, no copy (nav buffers: nav
        shape + extra shape, NaN or 0 outside the ROI)."""
        return self._data

    @property
    def dtype(self):
        """The NumPy dtype of .data."""
        return self._data.dtype

    @property
    def extra_shape(self):
        """The shape per nav position (nav buffers), else the whole shape."""
        if self.kind == "nav":
            return self._data.shape[self._nav_ndim:]
        return self._data.shape

    @property
    def valid_mask(self):
        """A bool array of .data's shape: True where .data holds results."""
        if self.kind != "nav" or self._valid is None:
            return np.ones(self._data.shape, dtype=bool)
        extra = self._data.ndim - self._valid.ndim
        return np.broadcast_to(self._valid.reshape(self._valid.shape + (1,) * extra),
                               self._data.shape)

    @property
    def raw_data(self):
        """Nav buffers: the valid positions only, flat (n, *extra_shape); others: .data."""
        if self.kind != "nav":
            return self._data
        flat = self._data.reshape((-1,) + self.extra_shape)
        return flat if self._valid is None or self._valid.all() else flat[self._valid.ravel()]

    @property
    def masked_data(self):
        """.data as a numpy.ma array, masked where not valid."""
        return np.ma.masked_array(self._data, mask=~self.valid_mask)

    def __array__(self, dtype=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def __repr__(self):
        return f"<ResultBuffer {self.name} {self.kind} {self._data.dtype} {self._data.shape}>"


class UDFResults:
    """What run_udf_iter yields: .buffers, a tuple of dicts (one per UDF) of ResultBuffer, and
    .damage, a ResultBuffer whose .data is the bool nav mask of the frames merged so far."""

    def __init__(self, buffers, damage):
        self.buffers = buffers
        self.damage = damage


class _Bar:
    """A progress bar over the selected frames: tqdm when it is installed, else one line on
    stderr redrawn in place."""

    def __init__(self, total):
        self.total = total
        self.shown = -1
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.tqdm = None
        else:
            self.tqdm = tqdm(total=total, unit="frame")

    def update(self, done):
        if done == self.shown:
            return
        if self.tqdm is not None:
            self.tqdm.update(done - max(self.shown, 0))
        else:
            frac = done / self.total if self.total else 1.0
            fill = int(frac * 30)
            sys.stderr.write(f"\r[{'#' * fill}{'.' * (30 - fill)}] {frac * 100:3.0f}% "
                             f"{done}/{self.total} frames")
            sys.stderr.flush()
        self.shown = done

    def close(self):
        if self.tqdm is not None:
            self.tqdm.close()
        elif self.shown >= 0:
            sys.stderr.write("\n")


def _roi_flat(dataset, roi):
    """The ROI as flat bool (num_frames), or None."""
    if roi is None:
        return None
    if hasattr(roi, "todense"):
        roi = roi.todense()
    roi = np.asarray(roi)
    nav = tuple(dataset.shape.nav)
    if roi.shape != nav and roi.shape != (dataset.shape.nav.size,):
        raise ParameterError(f"roi of shape {roi.shape} does not match the nav shape {nav}")
    if roi.dtype.kind not in "biu":
        raise ParameterError(f"roi must be bool or integer, not {roi.dtype}")
    return np.ascontiguousarray(roi.reshape(-1) != 0)


def _wrap(results, prepared, dataset):
    """Results (the engine's) as one dict of ResultBuffer per UDF, and the valid nav mask."""
    nav = tuple(dataset.shape.nav)
    valid = results.valid().reshape(nav)
    dicts = []
    for (plugin, buffers), prep in zip(results.buffers(), prepared):
        raw = {name: ResultBuffer(name, kind, arr, valid, len(nav))
               for name, kind, arr in buffers}
        dicts.append(prep.finish(raw))
    return tuple(dicts), valid


def _stop(r, done, worker):
    """Cancel the run and wait until its thread has ended, also through more Ctrl-C: the
    engine must not outlive the call (it reads the caller's arrays and temporary files)."""
    while True:
        try:
            r.cancel()
            done.wait()
            worker.join()
            return
        except KeyboardInterrupt:
            continue


def run(ctx, dataset, udfs, roi, corrections, progress, iterate):
    """Generator: with iterate, UDFResults after merged partitions, then the final ones; without,
    only the final ones."""
    roi_flat = _roi_flat(dataset, roi)
    if corrections is not None and not hasattr(corrections, "have_corrections"):
        raise ParameterError("corrections must be a udfhost.corrections.CorrectionSet")
    info = RunInfo(dataset, roi_flat, corrections)
    prepared = []
    try:
        r = Run(dataset._handle)
        runs = {}
        for u in udfs:
            prep = u._prepare(info)
            prepared.append(prep)
            if prep.spec in runs:  # the engine's "given twice" would name a plugin not given
                raise ParameterError(f"plugin {prep.spec} given twice in one run (by "
                                     f"{runs[prep.spec]!r} and {u!r}): a pass runs a plugin "
                                     "once, use separate run_udf calls")
            runs[prep.spec] = u
            r.add_plugin(prep.spec, prep.params)
        if ctx.threads:
            r.set_threads(ctx.threads)
        if roi_flat is not None:
            r.set_roi(roi_flat.view(np.uint8))
        if corrections is not None and corrections.have_corrections():
            r.set_corrections(corrections.dark, corrections.gain, corrections.excluded_pixels)
        if iterate:
            r.enable_partial(1)
        failure = []
        done = threading.Event()

        def execute():
            try:
                r.execute()
            except BaseException as e:  # handed to the calling thread
                failure.append(e)
            finally:
                done.set()

        total = int(roi_flat.sum()) if roi_flat is not None else dataset.shape.nav.size
        bar = _Bar(total) if progress else None
        worker = threading.Thread(target=execute, name="udfhost-run", daemon=True)
        worker.start()
        try:
            # Not worker.join(timeout): a Ctrl-C in it marks the thread stopped while it still
            # runs (CPython 3.11, bpo-45274), and a join after that returns at once.
            while not done.wait(0.05 if bar or iterate else 0.25):
                if bar:
                    bar.update(r.progress()[0])
                if iterate:
                    part = r.take_partial()
                    if part is not None:
                        buffers, valid = _wrap(part, prepared, dataset)
                        yield UDFResults(buffers, ResultBuffer("damage", "nav", valid))
            worker.join()  # ending now: done is set just before
        except BaseException:
            # Ctrl-C, or the consumer closed the generator: stop the engine, then go on with it.
            _stop(r, done, worker)
            raise
        finally:
            if bar:
                if not failure:
                    bar.update(r.progress()[0])
                bar.close()
        if failure:
            raise failure[0]
        buffers, valid = _wrap(r.take_results(), prepared, dataset)
        yield UDFResults(buffers, ResultBuffer("damage", "nav", valid))
    finally:
        for prep in prepared:
            prep.cleanup()
