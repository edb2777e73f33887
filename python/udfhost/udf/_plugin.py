"""The base of every UDF that udfhost's engine runs: a plugin (bundled or a .so) with its -p
parameters, and what turns its result buffers into the UDF's results."""
import numpy as np

from .._udfhost import ParameterError


def format_value(name, value):
    """One -p value as the plugin's parser reads it: bools as true/false, sequences as a,b,c."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list, np.ndarray)):
        return ",".join(format_value(name, v) for v in np.asarray(value).ravel().tolist())
    raise ParameterError(f"parameter {name}: cannot pass a {type(value).__name__} to a plugin")


def format_params(params):
    """-p NAME=VALUE strings for keyword parameters. A list of sequences repeats the parameter
    (disk=[(64, 64, 10), (64, 64, 20)] is -p disk=64,64,10 -p disk=64,64,20)."""
    out = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, list) and value and all(
                isinstance(v, (tuple, list, np.ndarray, str)) for v in value):
            out.extend(f"{name}={format_value(name, v)}" for v in value)
        else:
            out.append(f"{name}={format_value(name, value)}")
    return out


class Prepared:
    """What one UDF adds to a run: the plugin, its parameters, and finish(buffers), which turns
    the plugin's result buffers (a dict of ResultBuffer) into the UDF's results."""

    def __init__(self, spec, params, finish=None, cleanup=None):
        self.spec = spec
        self.params = params
        self.finish = finish or (lambda buffers: buffers)
        self.cleanup = cleanup or (lambda: None)


class RunInfo:
    """What a UDF may look at while it prepares: the dataset, the ROI (flat bool or None) and the
    corrections (or None)."""

    def __init__(self, dataset, roi, corrections):
        self.dataset = dataset
        self.roi = roi
        self.corrections = corrections

    def input_dtype(self, preferred=np.float32):
        """The dtype LiberTEM hands a UDF that prefers `preferred`: the result type of the
        dataset's dtype and `preferred` (and float32 with corrections)."""
        types = [self.dataset.dtype, preferred]
        if self.corrections is not None and self.corrections.have_corrections():
            types.append(np.float32)
        return np.result_type(*types)


def float_dtype(dtype):
    """The plugin's dtype= choice for a LiberTEM result dtype: float64 for float64, else
    float32."""
    return "float64" if np.dtype(dtype) == np.float64 else "float32"


def exclusive_inner_radius(ri):
    """The radius to give com's and fem's ri (which keep pixels with ri^2 <= d^2) for LiberTEM's
    rings, which leave out the pixels with d^2 <= ri^2 (for ri = 0 the centre pixel): the
    nearest float whose square is above ri^2 (for 0, one whose square is tiny but not 0)."""
    ri = float(ri)
    out = float(np.nextafter(ri, np.inf)) if ri > 0 else 1e-150
    while out * out <= ri * ri:
        out = float(np.nextafter(out, np.inf))
    return out


class Plugin:
    """Plugin(name, **params): any plugin udfhost finds, by name (bundled, or in
    $UDFHOST_PLUGIN_PATH) or by a path containing '/', with the parameters `udfhost run -p`
    takes: Plugin("com", cy=64, cx=64, r=20). Values: numbers, strings, bools, sequences
    (disk=(64, 64, 20) is -p disk=64,64,20) and lists of sequences for repeated parameters.
    Its results are the plugin's buffers by name, as `udfhost run` writes them.
    `udfhost plugin-info NAME` lists a plugin's parameters and buffers."""

    def __init__(self, name, **params):
        if not isinstance(name, str) or not name:
            raise ParameterError("Plugin: the first argument is the plugin's name or path")
        self.name = name
        self.params = params

    def _prepare(self, info):
        return Prepared(self.name, format_params(self.params))

    def __repr__(self):
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({self.name!r}{args})"
