"""The public Python API: the demo in one call, then compare, submit, show and list from Python."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest

import mlbench
from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.contracts.registry import PluginError

TINY = dict(demo_options={"n_patients": 40, "image_size": 96}, image_size=32, max_epochs=1,
            backbones=("resnet10t",), n_boot=20, progress=False, workers=1)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels without test positives in a 40-patient demo
        return mlbench.run_benchmark("padchest-specific", demo=True, out=str(out), **TINY)


def test_the_demo_runs_in_one_call(demo_run):
    board = demo_run.leaderboard
    assert set(board["entry"]) == {"resnet10t", "ctp", "ptc-lw", "ptc-mode"}
    assert set(board["dataset_kind"]) == {"synthetic"}
    macro = board[(board["label"] == GLOBAL_LABEL) & (board["metric"] == "auc")].set_index("entry")["value"]
    assert all(0.0 <= v <= 1.0 and not math.isnan(v) for v in macro)
    # The run directory holds the same board the call returned.
    stored = mlbench.RunDir(demo_run.run_dir).leaderboard().to_pandas()
    assert len(stored) == len(board) and demo_run.manifest["run_id"] == stored["run_id"].iloc[0]


def test_compare_says_a_demo_run_is_not_comparable(demo_run):
    result = mlbench.compare_run(demo_run.run_dir)
    assert not result.comparable and result.notes[0].startswith("NOT COMPARABLE")
    assert set(result.rows["entry"]) <= {"resnet10t", "ctp", "ptc-lw", "ptc-mode"} and len(result.rows) > 0
    assert result.beats().empty  # nothing counts as beating the paper on synthetic data


def test_submit_then_show_the_board(demo_run, tmp_path):
    board = tmp_path / "board.parquet"
    submitted = mlbench.submit_run(demo_run.run_dir, board)
    assert submitted.rows_appended == len(demo_run.leaderboard) == submitted.rows_in_file
    shown = mlbench.show_leaderboard("padchest-specific", file=board)
    assert set(shown["entry"]) == {"resnet10t", "ctp", "ptc-lw", "ptc-mode"}
    assert list(shown["value"]) == sorted(shown["value"], reverse=True)  # best first
    published = mlbench.show_leaderboard("padchest-specific", label="cardiomegaly")
    assert set(published["source"]) == {"published"} and set(published["label"]) == {"cardiomegaly"}


def test_list_plugins():
    losses = mlbench.list_plugins("loss")
    assert {"weighted-bce", "bce"} <= {p["name"] for p in losses} and {p["kind"] for p in losses} == {"loss"}
    assert len(mlbench.list_plugins()) > len(losses)
    with pytest.raises(PluginError, match="unknown kind 'losses'; expected one of dataset, loss"):
        mlbench.list_plugins("losses")


def test_an_unknown_run_option_is_named():
    with pytest.raises(mlbench.ArgumentError, match="unknown option 'epochs'; expected one of .*max_epochs"):
        mlbench.run_benchmark("padchest-specific", demo=True, epochs=1)


def test_import_mlbench_and_reading_boards_import_no_torch():
    code = ("import sys, mlbench\n"
            "assert 'torch' not in sys.modules, 'import mlbench'\n"
            "rows = mlbench.show_leaderboard('padchest-specific')\n"
            "names = [p['name'] for p in mlbench.list_plugins('backbone')]\n"
            "assert len(rows) > 0 and 'resnet10t' in names\n"
            "heavy = sorted(m for m in ('torch', 'timm', 'cv2') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'run_benchmarks'"):
        mlbench.run_benchmarks  # noqa: B018
