"""``mlbench explain`` end to end on a tiny real run (a 40-patient demo corpus, one epoch of resnet10t)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from mlbench.results import leaderboard
from mlbench.cli import main
from mlbench.demo import read_source_record
from mlbench.explainers import ExplainError



@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished run of padchest-specific on a small demo corpus (the real runner, real files)."""
    from mlbench.training.runner import RunOptions, run

    root = tmp_path_factory.mktemp("explain")
    demo = root / "demo-data"
    result = run(RunOptions(benchmark="padchest-specific", out=root / "run", demo=True, demo_dir=demo,
                            demo_options={"n_patients": 40, "image_size": 96, "n_corrupt": 0},
                            backbones=("resnet10t",), max_epochs=1, workers=1, progress=False))
    split = pd.read_parquet(result.run_dir / "split.parquet")
    first = split.loc[split["split"] == "test", "image_id"].head(8)
    assert pd.read_csv(demo / "findings.csv")["image_id"].isin(first).any(), "the corpus must give boxes to score"
    return result.run_dir, demo


def _explain(*args: str):
    return CliRunner().invoke(main, ["explain", *args], catch_exceptions=False)


def _cam_rows(run_dir: Path) -> pd.DataFrame:
    board = leaderboard.validate_table(leaderboard.read(run_dir / "leaderboard.parquet")).to_pandas()
    return board[board["metric"].str.startswith("cam_")]


def test_split_explains_scores_and_appends_leaderboard_rows(tiny_run, tmp_path):
    run_dir, demo = tiny_run
    out = tmp_path / "out"
    # The corpus lies beside the run, not inside it: its paths are given, as a user's real data would be.
    source = read_source_record(demo)
    # one shown label keeps the panels few; every finding with a box is explained and scored anyway
    args = ["--split", "test", "--limit", "8", "--labels", "normal", "--out", str(out), "--device", "cpu",
            "--csv", str(source.csv), "--image-root", str(source.images)]
    result = _explain(str(run_dir), *args, "--batch-size", "3")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "explain.json").read_text())
    assert len(summary["images"]) == 8
    assert summary["target_layers"] == {"resnet10t": "backbone.layer2"}  # 8 x 8 at 64 px
    for image_id in summary["images"]:
        folder = out / Path(image_id).stem
        explanation = json.loads((folder / "explanation.json").read_text())
        shown = {k: v for k, v in explanation["labels"].items() if v["shown"]}
        assert list(shown) == ["normal"]
        scored_only = [v for v in explanation["labels"].values() if not v["shown"]]
        assert all("pointing_hit" in v["heatmap"] and "panel" not in v for v in scored_only)
        for label, entry in shown.items():
            panel = cv2.imread(str(folder / entry["panel"]))
            assert panel is not None and panel.shape[0] > 200 and panel.shape[1] > 200
            assert entry["agreement"] in ("0/1", "1/1")
            assert set(entry["models"]) == {"resnet10t"}
            assert 0.0 <= entry["probability"] <= 1.0
            assert entry["heatmap"]["max"] <= 1.0
        assert cv2.imread(str(folder / "std.png")) is not None
    scores = pd.read_csv(out / "cam_scores.csv")
    assert set(scores["hit"].unique()) <= {0.0, 1.0} and scores["mass_in_box"].dropna().between(0, 1).all()
    rows = _cam_rows(run_dir)
    assert set(rows["entry"]) == {"gradcam"} and set(rows["entry_kind"]) == {"explainer"}
    overall = rows[(rows["label"] == "__global__") & (rows["metric"] == "cam_pointing")]
    assert len(overall) == 1 and overall["n_positive"].iloc[0] == len(scores)
    assert overall["value"].iloc[0] == pytest.approx(scores["hit"].mean())
    assert {"cam_pointing", "cam_mass_in_box", "cam_mass_in_lungs"} <= set(rows["metric"])
    assert rows["run_id"].notna().all() and rows["split_hash"].notna().all() and rows["device"].notna().all()
    before = len(rows)
    again = _explain(str(run_dir), *args)
    assert again.exit_code == 0, again.output
    assert len(_cam_rows(run_dir)) == before  # replaced, not duplicated


def test_default_labels_are_those_the_ensemble_predicts():
    from mlbench.explainers.pipeline import choose_labels

    scores = np.array([[0.2, 0.9, 0.6], [0.1, 0.3, 0.2]])
    assert choose_labels(scores, 0.5) == [[1, 2], [1]]  # by probability; else the top one
    assert choose_labels(scores, 0.5, [0]) == [[0], [0]]


def test_files_with_chosen_labels(tiny_run, tmp_path):
    run_dir, demo = tiny_run
    split = pd.read_parquet(run_dir / "split.parquet")
    image_id = split.loc[split["split"] == "test", "image_id"].iloc[0]
    path = next((demo / "images").rglob(image_id))
    out = tmp_path / "files"
    result = _explain(str(run_dir), str(path), "--labels", "nodule,pacemaker", "--out", str(out), "--no-score")
    assert result.exit_code == 0, result.output
    folder = out / Path(image_id).stem
    explanation = json.loads((folder / "explanation.json").read_text())
    assert [k for k, v in explanation["labels"].items() if v["shown"]] == ["nodule", "pacemaker"]
    assert (folder / "nodule.png").is_file() and (folder / "pacemaker.png").is_file()
    assert explanation["display"] == "original crop"
    assert not (out / "cam_scores.csv").exists()


def test_unknown_label_lists_the_valid_ones(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    result = _explain(str(run_dir), "--split", "test", "--limit", "1", "--labels", "nodule,heart of gold",
                      "--out", str(tmp_path / "x"))
    assert result.exit_code != 0
    assert "unknown label 'heart of gold' for benchmark 'padchest-specific'" in result.output
    assert "valid labels: normal, COPD signs" in result.output


def test_unreadable_image_is_named(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = _explain(str(run_dir), str(broken), "--out", str(tmp_path / "x"))
    assert result.exit_code != 0
    assert f"{broken}: cannot read this image (" in result.output


def test_wrong_image_size_is_refused(tiny_run):
    from mlbench.explainers.pipeline import explain_images
    from mlbench.training.runner import load_trained

    trained = load_trained(tiny_run[0])
    with pytest.raises(ExplainError, match=r"shape \(2, 1, 32, 32\), but the run's models take \(batch, 1, 64, 64\)"):
        explain_images(trained, torch.rand(2, 1, 32, 32), ["nodule"])
    explanation = explain_images(trained, torch.rand(2, 1, 64, 64), ["nodule", "normal"])
    assert explanation.heatmaps.shape == (1, 2, 2, 64, 64)
    assert np.isfinite(explanation.heatmaps.numpy()).all()
