"""The demo of data/demo.sh from Python: sum, sumsig, a virtual bright-field disk and an annular
dark-field ring, and the centre of mass, in one pass over data/sample.raw.

After the build (sh data/demo.sh, or make in build/), from the top of the tree:

    PYTHONPATH=build/pylib /usr/bin/python3 data/demo.py

With udfhost installed, plain `python3 data/demo.py`.
"""
import os

import numpy as np

import udfhost.api as lt
from udfhost.udf.com import CoMUDF
from udfhost.udf.masks import ApplyMasksUDF
from udfhost.udf.sum import SumUDF
from udfhost.udf.sumsigudf import SumSigUDF

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.raw")


def show(title, img):
    """Print an image as characters from dark to bright (as data/demo.sh does)."""
    ramp = " .:-=+*#%@"
    lo, hi = np.percentile(img, 1), np.percentile(img, 99)
    levels = np.clip((img - lo) / (hi - lo + 1e-12) * (len(ramp) - 1), 0, len(ramp) - 1)
    print("\n%s, shape %s, %s .. %s" % (title, img.shape, img.min(), img.max()))
    for row in levels.astype(int):
        print("  " + "".join(ramp[v] * 2 for v in row))


# The detectors of data/demo.sh (masks -p disk=24,24,8 -p ring=24,24,13,23), as mask factories:
# a disk of radius 8 and a ring from 13 to 23 pixels around the frame's centre, both edges in.
yy, xx = np.mgrid[0:48, 0:48]
d2 = (yy - 24) ** 2 + (xx - 24) ** 2


def bright_field():
    return (d2 <= 8 ** 2).astype(np.float32)


def annular_dark_field():
    return ((d2 >= 13 ** 2) & (d2 <= 23 ** 2)).astype(np.float32)


ctx = lt.Context(threads=2)
ds = ctx.load("raw", path=SAMPLE, dtype="uint16", nav_shape=(24, 32), sig_shape=(48, 48))
print(ds)

# One list of UDFs is one pass over the data; the results come back as one dict per UDF.
# `com` centres on (H-1)/2 unless told otherwise, CoMUDF on H//2 as LiberTEM: give demo.sh's.
total, counts, detectors, com = ctx.run_udf(dataset=ds, udf=[
    SumUDF(),
    SumSigUDF(),
    ApplyMasksUDF(mask_factories=[bright_field, annular_dark_field]),
    CoMUDF.with_params(cy=23.5, cx=23.5),
])

s = total["intensity"].data               # (48, 48) float32, the engine's memory
v = counts["intensity"].data              # (24, 32)
m = detectors["intensity"].data           # (24, 32, 2): bright field, dark field
shift = com["magnitude"].data             # (24, 32): length of the CoM shift, in pixels

show("SumUDF: the summed diffraction pattern (every 2nd pixel)", s[::2, ::2])
show("SumSigUDF: total counts per scan position (particles show dark)", v)
show("ApplyMasksUDF, mask 1: virtual annular dark field (particles show bright)", m[..., 1])

print("\n%d frames, %.0f counts in all (the sum over SumSigUDF's image: %.0f)"
      % (ds.shape.nav.size, s.sum(dtype=np.float64), v.sum(dtype=np.float64)))
bf, adf = m[..., 0], m[..., 1]
y, x = np.unravel_index(np.argmax(adf), adf.shape)
print("brightest dark-field position: (%d, %d), %.0f counts there, bright field %.0f"
      " (scan median %.0f)" % (y, x, adf[y, x], bf[y, x], np.median(bf)))
print("CoM shift: median %.3f px, largest %.3f px at %s"
      % (np.median(shift), shift.max(), np.unravel_index(np.argmax(shift), shift.shape)))
