#!/usr/bin/python3
"""Write data/sample.raw: a small synthetic 4D-STEM scan for examples and tests.

Nav 24x32 (y, x), sig 48x48 (y, x), uint16 little-endian, C order, no header. Each frame holds a
bright disk (the undiffracted beam) on weak diffuse scattering. Across the scan:
  - the disk centre is shifted by a smooth field (a vortex with curl plus outward shifts around the
    particles with divergence), so centre-of-mass maps show a structure;
  - a few round particles are thicker than the support: the disk dims there (dark in a virtual
    bright-field image) and the diffuse scattering grows (bright in a virtual dark-field image);
  - Poisson counting noise from np.random.default_rng(42), so the file is the same on every run.
Run with: /usr/bin/python3 data/make_sample.py [OUTPUT]   (default: sample.raw next to this script)
"""

import os
import sys

import numpy as np

NAV_SHAPE = (24, 32)  # scan positions (y, x)
SIG_SHAPE = (48, 48)  # detector pixels (y, x)
SEED = 42

DISK_RADIUS = 8.0       # px: radius of the undiffracted beam on the detector
DISK_COUNTS = 2000.0    # counts/px inside the disk where there is no specimen
DISK_EDGE = 0.6         # px: width of the disk's soft edge (sub-pixel centre shifts stay smooth)
DIFFUSE_COUNTS = 4.0    # counts/px of diffuse scattering next to the disk on the bare support
DIFFUSE_DECAY = 14.0    # px: exponential fall-off of the diffuse scattering away from the disk
VORTEX_SHIFT = 1.8      # px: peak shift of the smooth rotational part of the field
PARTICLE_SHIFT = 1.5    # px: peak outward shift at a particle's rim

# Particles in scan coordinates: (centre y, centre x, radius), all in scan steps.
PARTICLES = (
    (6.0, 8.0, 4.5),
    (15.5, 22.0, 5.5),
    (18.0, 7.5, 3.0),
    (5.0, 25.0, 2.5),
)
# Thickness at a particle's centre relative to the mean free path: the disk keeps exp(-t) of its
# intensity, and what it loses goes into diffuse scattering.
PARTICLE_THICKNESS = 0.8


def specimen_maps():
    """Return (thickness, shift_y, shift_x), each of NAV_SHAPE."""
    y, x = np.meshgrid(np.arange(NAV_SHAPE[0], dtype=np.float64),
                       np.arange(NAV_SHAPE[1], dtype=np.float64), indexing="ij")
    thickness = np.zeros(NAV_SHAPE)
    shift_y = np.zeros(NAV_SHAPE)
    shift_x = np.zeros(NAV_SHAPE)

    # Rotational part (curl, no divergence): a vortex around the scan centre, like a magnetic
    # domain, fading towards the edges.
    v = (y - (NAV_SHAPE[0] - 1) / 2) / (NAV_SHAPE[0] / 2)
    u = (x - (NAV_SHAPE[1] - 1) / 2) / (NAV_SHAPE[1] / 2)
    envelope = VORTEX_SHIFT * np.exp(-(u * u + v * v))
    shift_y += envelope * u
    shift_x += -envelope * v

    # Particles: spherical thickness profiles and a radial (divergent) field around each, like the
    # electric field of a charged particle: growing inside, falling off as 1/r outside.
    for cy, cx, radius in PARTICLES:
        dy, dx = y - cy, x - cx
        r = np.hypot(dy, dx)
        inside = r < radius
        cap = np.sqrt(np.clip(1 - (r / radius) ** 2, 0, 1))
        thickness += PARTICLE_THICKNESS * cap
        strength = PARTICLE_SHIFT * np.where(inside, r / radius, radius / np.maximum(r, 1e-9))
        unit = np.maximum(r, 1e-9)
        shift_y += strength * dy / unit
        shift_x += strength * dx / unit
    return thickness, shift_y, shift_x


def expected_counts(thickness, shift_y, shift_x):
    """Mean counts per pixel, shape NAV_SHAPE + SIG_SHAPE (float64)."""
    ky = np.arange(SIG_SHAPE[0], dtype=np.float64)[:, None]
    kx = np.arange(SIG_SHAPE[1], dtype=np.float64)[None, :]
    cy = (SIG_SHAPE[0] - 1) / 2 + shift_y[..., None, None]
    cx = (SIG_SHAPE[1] - 1) / 2 + shift_x[..., None, None]
    r = np.hypot(ky - cy, kx - cx)
    t = thickness[..., None, None]

    disk = 0.5 * (1 - np.tanh((r - DISK_RADIUS) / DISK_EDGE))
    transmitted = np.exp(-t)
    # Diffuse scattering outside the disk: a weak background from the support film, plus what the
    # particles scatter out of the beam (proportional to the lost fraction).
    outside = np.exp(-np.maximum(r - DISK_RADIUS, 0) / DIFFUSE_DECAY) * (1 - disk)
    diffuse = DIFFUSE_COUNTS * (1 + 12 * (1 - transmitted)) * outside
    return DISK_COUNTS * transmitted * disk + diffuse


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    out = argv[1] if len(argv) > 1 else os.path.join(here, "sample.raw")

    lam = expected_counts(*specimen_maps())
    # Round the means so that the last-bit differences of exp/tanh between CPUs and NumPy builds
    # cannot change a Poisson draw: with one NumPy version the file is the same on every machine.
    lam = np.round(lam, 6)
    rng = np.random.default_rng(SEED)
    counts = rng.poisson(lam)
    if counts.max() >= 65535:
        raise SystemExit("make_sample.py: counts overflow uint16 (max %d)" % counts.max())
    data = np.ascontiguousarray(counts.astype("<u2"))

    expected_bytes = NAV_SHAPE[0] * NAV_SHAPE[1] * SIG_SHAPE[0] * SIG_SHAPE[1] * 2
    assert data.nbytes == expected_bytes
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        data.tofile(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    print("%s: nav %dx%d, sig %dx%d, uint16 LE, %d bytes, counts %d..%d"
          % (out, *NAV_SHAPE, *SIG_SHAPE, data.nbytes, data.min(), data.max()))


if __name__ == "__main__":
    main(sys.argv)
