"""Shared test configuration: hypothesis profiles, float64 helpers, the CUDA-simulator marker.

Hypothesis runs derandomized with small example counts so the whole suite stays well inside
CI's budget on a 2-core machine; set HYPOTHESIS_PROFILE=thorough locally for more examples.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
# Every eager primitive call also runs its shape/dtype rule and checks impl against it
# (fnx.core.tracing.check_rules), so eager and traced code cannot disagree unnoticed.
# FNX_CHECK_RULES=0 turns it off for a faster local run.
os.environ.setdefault("FNX_CHECK_RULES", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=15,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    """A seeded NumPy generator for test data."""
    return np.random.default_rng(0)


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: CUDA code path (simulator without a GPU)")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (e.g. the random-program sweeps); "
                          "FNX_RUNSLOW=1 does the same")


def pytest_collection_modifyitems(config, items):
    # Slow tests (long sweeps) are opt-in so the default suite stays inside CI's budget.
    if config.getoption("--runslow") or os.environ.get("FNX_RUNSLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or FNX_RUNSLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
