"""Shared fixtures of the Python package's tests: the sample scan, its data, a context."""
import os
import sys

import numpy as np
import pytest

SRCDIR = os.environ.get("UDFHOST_SRCDIR",
                        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
UDFHOST = os.environ.get("UDFHOST", "udfhost")
FIXTURES = os.environ.get("UDFHOST_FIXTURES", "")
SAMPLE = os.path.join(SRCDIR, "data", "sample.raw")
SAMPLE_NAV = (24, 32)
SAMPLE_SIG = (48, 48)

sys.path.insert(0, os.path.join(SRCDIR, "tests"))


@pytest.fixture(scope="session")
def sample_data():
    """The bundled sample scan as a NumPy array (nav + sig)."""
    return np.fromfile(SAMPLE, dtype="<u2").reshape(SAMPLE_NAV + SAMPLE_SIG)


@pytest.fixture
def ctx():
    import udfhost.api as lt
    with lt.Context(threads=2) as c:
        yield c


@pytest.fixture
def sample(ctx):
    """The sample scan, opened as a raw dataset."""
    return ctx.load("raw", path=SAMPLE, dtype="uint16", nav_shape=SAMPLE_NAV, sig_shape=SAMPLE_SIG)
