#!/bin/sh
# The Python package's tests (python/tests/test_*.py), with pytest, against the package as the
# build tree assembles it (pylib/), its plugins and the udfhost binary; skipped (77) without a
# Python that has numpy and pytest.
[ -n "$UDFHOST_PYTHON" ] || { echo "SKIP: no Python with numpy"; exit 77; }
"$UDFHOST_PYTHON" -c 'import pytest' 2>/dev/null ||
    { echo "SKIP: no pytest for $UDFHOST_PYTHON (apt-get install python3-pytest)"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$UDFHOST_PYLIB${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 \
    exec "$UDFHOST_PYTHON" -m pytest -q -p no:cacheprovider "$here"
