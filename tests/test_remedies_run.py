"""Remedies inside a run: a sampler orders training, tuned thresholds add *_tuned rows, submit recomputes them."""

import warnings

import numpy as np
import pytest

from mlbench.results.leaderboard import GLOBAL_LABEL, TUNED_METRICS
from mlbench.results.metrics import MetricWarning
from mlbench.training.runner import RunError, RunOptions, run
from mlbench.results.rundir import RunDir
from mlbench.judging.submit import validate_run

TINY = dict(benchmark="padchest-specific", demo=True, demo_options={"n_patients": 40, "image_size": 96},
            image_size=32, max_epochs=1, backbones=("resnet10t",), ensembles=("ctp",), n_boot=20, progress=False,
            workers=1)


@pytest.fixture(scope="module")
def remedy_run(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return run(RunOptions(out=tmp_path_factory.mktemp("remedy"), sampler="ml-ros",
                              sampler_options={"percentage": 25}, threshold_rule="val-f1", **TINY))


def test_sampler_and_threshold_rule_are_recorded(remedy_run):
    m = remedy_run.manifest
    assert m["recipe"]["sampler"] == "ml-ros" and m["recipe"]["sampler_options"] == {"percentage": 25}
    assert m["versions"]["plugins"]["sampler:ml-ros"].startswith("mlbench-imbalanced==")
    fitted = m["thresholds"]["per_entry"]
    assert m["thresholds"]["rule"] == "val-f1" and set(fitted) == {"resnet10t", "ctp"}
    assert all(0 <= t <= 1 for t in fitted["resnet10t"].values())


def test_tuned_rows_sit_beside_the_papers(remedy_run):
    board = remedy_run.leaderboard
    glob = board[board["label"] == GLOBAL_LABEL]
    assert set(TUNED_METRICS) <= set(glob["metric"]) and {"f1", "f1_pos", "hamming"} <= set(glob["metric"])
    # The paper's 0.5 rows are computed as without the rule: only new rows are added.
    assert len(board[board["metric"] == "f1"]) == len(board[board["metric"] == "f1_tuned"])


def test_submit_recomputes_tuned_rows_from_the_validation_predictions(remedy_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        v = validate_run(remedy_run.run_dir)
    assert v.ok, v.problems


def test_ml_ros_epochs_are_longer_than_the_training_split(remedy_run):
    history = RunDir(remedy_run.run_dir).history_file("resnet10t")
    assert history.is_file()
    split = RunDir(remedy_run.run_dir).split()
    n_train = int((split["split"] == "train").sum())
    from mlbench.contracts.registry import get_registry

    labels = split.loc[split["split"] == "train", list(split.columns[3:])].to_numpy(np.uint8)
    sampler = get_registry().create("sampler", "ml-ros", labels=labels, seed=0, percentage=25)
    assert len(sampler.epoch(0)) > n_train


def test_unknown_sampler_and_bad_options_fail_before_any_work(tmp_path):
    with pytest.raises(Exception, match="no sampler named 'nosuch'"):
        run(RunOptions(out=tmp_path / "a", sampler="nosuch", **TINY))
    with pytest.raises(Exception, match="ml-ros"):
        run(RunOptions(out=tmp_path / "b", sampler="ml-ros", sampler_options={"nosuch": 1}, **TINY))
    with pytest.raises(RunError, match="--thresholds"):
        run(RunOptions(out=tmp_path / "c", threshold_rule="max", **TINY))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
