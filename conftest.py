"""Shared test setup: few threads (CI has 2 cores and neighbours), no network."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _fresh_registry():
    """Tests that install plugins must not leak them into other tests."""
    from mlbench.registry import reset_registry

    reset_registry()
    yield
    reset_registry()
