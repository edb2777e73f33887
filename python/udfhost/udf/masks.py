"""ApplyMasksUDF: virtual detectors, each frame multiplied by N masks and summed (LiberTEM's
libertem.udf.masks.ApplyMasksUDF) on udfhost's `masks`."""
import os
import shutil
import tempfile

import numpy as np

from .._udfhost import ParameterError
from ._plugin import Plugin, Prepared, float_dtype


def _dense(mask):
    for name in ("todense", "toarray"):
        if hasattr(mask, name):
            return np.asarray(getattr(mask, name)())
    return np.asarray(mask)


class ApplyMasksUDF(Plugin):
    """Result "intensity" (nav x N): every frame multiplied by each of N masks and summed.

    mask_factories: a list of functions, each returning one sig-shaped mask (NumPy, or sparse
        with .todense()/.toarray()), or one function returning an (N, *sig) stack.
    mask_dtype: the masks' dtype (default: what the factories return); the result dtype is
        np.result_type(input dtype, mask dtype), float32 or float64, as in LiberTEM.
    use_sparse: None (udfhost decides), False (dense), True or a sparse backend name (sparse).
    mask_count: checked against the number of masks, if given.
    preferred_dtype: the input dtype LiberTEM would convert frames to; enters the result dtype.
    use_torch, backends: accepted and ignored (udfhost computes in C).
    shifts: per-frame mask shifts are not supported yet (NotImplementedError).
    """

    def __init__(self, mask_factories, use_torch=True, use_sparse=None, mask_count=None,
                 mask_dtype=None, preferred_dtype=None, backends=None, shifts=None, **kwargs):
        super().__init__("masks")
        if shifts is not None:
            raise NotImplementedError("ApplyMasksUDF(shifts=...): per-frame mask shifts are not "
                                      "supported by udfhost yet")
        self.mask_factories = mask_factories
        self.use_sparse = use_sparse
        self.mask_count = mask_count
        self.mask_dtype = None if mask_dtype is None else np.dtype(mask_dtype)
        self.preferred_dtype = None if preferred_dtype is None else np.dtype(preferred_dtype)

    def _masks(self, sig):
        if callable(self.mask_factories):
            stack = _dense(self.mask_factories())
            if stack.shape == sig:
                stack = stack[np.newaxis]
        else:
            stack = np.stack([_dense(f()) for f in self.mask_factories]) if \
                self.mask_factories else np.zeros((0,) + sig)
        if stack.ndim != len(sig) + 1 or stack.shape[1:] != sig:
            raise ParameterError(f"ApplyMasksUDF: masks of shape {stack.shape[1:]} do not match "
                                 f"the sig shape {sig}")
        if not len(stack):
            raise ParameterError("ApplyMasksUDF: no masks given")
        if stack.dtype.kind == "c":
            raise NotImplementedError("ApplyMasksUDF: complex masks are not supported by udfhost")
        if self.mask_count is not None and self.mask_count != len(stack):
            raise ParameterError(f"ApplyMasksUDF: mask_count={self.mask_count} but the "
                                 f"factories made {len(stack)} masks")
        return stack

    def _prepare(self, info):
        sig = tuple(info.dataset.shape.sig)
        stack = self._masks(sig)
        mask_dtype = self.mask_dtype or stack.dtype
        preferred = self.preferred_dtype or np.float32
        result = np.result_type(info.input_dtype(preferred), mask_dtype)
        if result.kind != "f":
            result = np.dtype(np.float64)
        sparse = "auto" if self.use_sparse is None else "false" if self.use_sparse is False \
            else "true"
        tmp = tempfile.mkdtemp(prefix="udfhost-masks-")
        try:
            path = os.path.join(tmp, "masks.npy")
            np.save(path, stack.astype(mask_dtype, copy=False))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        params = [f"file={path}", f"dtype={float_dtype(result)}", f"sparse={sparse}"]
        return Prepared("masks", params, cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))
