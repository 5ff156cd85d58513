"""Shared test setup: one torch thread, no network.

Two OpenMP threads competing with any other process on a 2-core machine were 8-25x slower than
one in our measurements; tiny test models gain nothing from a second thread.
"""

import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
# No test downloads weights: the hub is offline, so a missing file is refused at once, not retried.
os.environ["HF_HUB_OFFLINE"] = "1"
# The registry cache of one test session, not the user's: tests install and change plugins.
os.environ.setdefault("MLBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="mlbench-test-cache-"))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Tests that install plugins must not leak them into other tests."""
    from mlbench.contracts.registry import reset_registry

    reset_registry()
    yield
    reset_registry()


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: renders a page in headless Chromium (skips without one; fails under CI=true)")
