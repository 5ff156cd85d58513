"""A tiny demo run's split hash and every leaderboard value, pinned.

Refactors of the runner must not change what a run computes. The pinned file was written by the
runner before the RunDir/stage refactor; regenerate it (``MLBENCH_WRITE_GOLDEN=1``) only for a
change that is meant to alter results, and say so in the commit.
"""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from mlbench.results.metrics import MetricWarning
from mlbench.training.runner import RunOptions, run

GOLDEN = Path(__file__).parent / "data" / "golden_tiny_run.json"
TINY = dict(benchmark="padchest-specific", demo=True, demo_options={"n_patients": 40, "image_size": 96},
            image_size=32, max_epochs=1, backbones=("resnet10t",), ensembles=("ctp", "ptc-lw"), n_boot=20,
            progress=False, workers=1)


def _values(board) -> dict[str, list]:
    board = board.sort_values(["entry", "label", "metric"], kind="stable")
    return {f"{r.entry}|{r.label}|{r.metric}": [r.value, r.ci_low, r.ci_high] for r in board.itertuples()}


@pytest.mark.slow
def test_tiny_demo_run_matches_the_pinned_results(tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float sums depend on the thread count; other tests in this worker may set 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            result = run(RunOptions(out=tmp_path / "run", **TINY))
    finally:
        torch.set_num_threads(threads)
    got = {"split_hash": result.manifest["split_hash"], "values": _values(result.leaderboard)}
    if os.environ.get("MLBENCH_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert got["split_hash"] == want["split_hash"]
    assert sorted(got["values"]) == sorted(want["values"])
    for key, expected in want["values"].items():
        np.testing.assert_allclose(np.array(got["values"][key], dtype=float), np.array(expected, dtype=float),
                                   rtol=0, atol=1e-6, equal_nan=True, err_msg=key)
