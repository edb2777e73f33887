#!/bin/sh
# The demo: installs what is missing, builds udfhost in build/, runs it on the bundled sample scan
# (24 x 32 positions, 48 x 48 pixel frames): the summed pattern, the total counts, virtual bright
# and annular dark field and the centre of mass, in one pass; shows three of the results as pictures
# in the terminal and writes PNG previews of all of them next to the .npy files.
set -e
cd "$(dirname "$0")/.."
sh tests/install-deps.sh
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure --quiet
make --quiet -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
export UDFHOST_PLUGIN_PATH="$PWD/plugins/.libs"
set -x
./udfhost run --plugin sum --plugin sumsig \
    --plugin masks -p disk=24,24,8 -p ring=24,24,13,23 --plugin com \
    --format raw --dtype uint16 --nav-shape 24,32 --sig-shape 48,48 \
    --threads 2 --preview --overwrite -o demo-results ../data/sample.raw
set +x
PYTHON=$(sed -n 's/^PYTHON_NUMPY = //p' Makefile)
"${PYTHON:-/usr/bin/python3}" - <<'PY'
import numpy as np

def show(title, img):
    """Print an image as characters from dark to bright."""
    ramp = " .:-=+*#%@"
    lo, hi = np.percentile(img, 1), np.percentile(img, 99)
    levels = np.clip((img - lo) / (hi - lo + 1e-12) * (len(ramp) - 1), 0, len(ramp) - 1)
    print("\n%s, shape %s, %s .. %s" % (title, img.shape, img.min(), img.max()))
    for row in levels.astype(int):
        print("  " + "".join(ramp[v] * 2 for v in row))

s = np.load("demo-results/sum.intensity.npy")
v = np.load("demo-results/sumsig.intensity.npy")
m = np.load("demo-results/masks.intensity.npy")
show("sum.intensity: the summed diffraction pattern (every 2nd pixel)", s[::2, ::2])
show("sumsig.intensity: total counts per scan position (particles show dark)", v)
show("masks.intensity[..., 1]: virtual annular dark field (particles show bright)", m[..., 1])
print("\nResults and PNG previews: build/demo-results/ (sum, sumsig, masks, com)")
PY
if [ -d pylib/udfhost ]; then
    echo
    echo "The same run from Python (data/demo.py, the udfhost package of this build):"
    PYTHONPATH="$PWD/pylib" "${PYTHON:-/usr/bin/python3}" ../data/demo.py | tail -n 4
fi
