"""mlbench run end to end on a tiny demo corpus: files, manifest, skips, resume."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlbench.results import leaderboard
from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.results.rundir import RunDirError as ManifestError
from mlbench.training.runner import RunOptions, load_trained, run

TINY = dict(benchmark="padchest-specific", demo=True, demo_options={"n_patients": 60, "image_size": 96},
            image_size=32, max_epochs=2, backbones=("resnet10t", "mobilenetv3_small_050"), progress=False,
            workers=1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = run(RunOptions(out=out, **TINY))
    return result


def test_run_writes_every_contract_file(tiny_run):
    d = tiny_run.run_dir
    for name in ("manifest.json", "split.parquet", "predictions.parquet", "leaderboard.parquet", "skipped.parquet"):
        assert (d / name).is_file(), name
    m = json.loads((d / "manifest.json").read_text())
    for key in ("benchmark", "benchmark_version", "variant", "dataset_kind", "csv_sha256", "split_hash", "seed",
                "recipe", "backbones", "versions", "device", "stages", "skipped"):
        assert key in m, key
    assert m["dataset_kind"] == "synthetic" and m["variant"] == "crop+aug"
    assert {"data", "split", "preprocess", "train:resnet10t", "ensemble", "metrics"} <= set(m["stages"])


def test_skipped_items_are_counted_and_listed(tiny_run):
    m = json.loads((tiny_run.run_dir / "manifest.json").read_text())
    counts = m["skipped"]["counts"]
    assert counts.get("data:not_pa", 0) > 0 and counts.get("data:nan_labels", 0) > 0
    assert counts.get("preprocess:unreadable_image", 0) + counts.get("preprocess:truncated", 0) >= 1
    skipped = pq.read_table(tiny_run.run_dir / "skipped.parquet").to_pandas()
    assert len(skipped) == m["skipped"]["total"]
    corrupt = skipped[skipped["stage"] == "preprocess"]
    assert (corrupt["item"].str.endswith(".png")).all()


def test_split_and_predictions_are_consistent(tiny_run):
    d = tiny_run.run_dir
    split = pq.read_table(d / "split.parquet").to_pandas()
    assert list(split.columns[:3]) == ["image_id", "patient_id", "split"]
    assert split.groupby("patient_id")["split"].nunique().max() == 1  # no patient in two splits
    preds = pq.read_table(d / "predictions.parquet").to_pandas()
    assert list(preds.columns) == ["image_id", "split", "entry", "label", "probability"]
    skipped = set(pq.read_table(d / "skipped.parquet").to_pandas()["item"])
    test_ids = set(split.loc[split["split"] == "test", "image_id"]) - skipped
    for entry in ("resnet10t", "mobilenetv3_small_050", "ctp", "ptc-lw", "ptc-mode"):
        got = preds[(preds["entry"] == entry) & (preds["split"] == "test")]
        assert set(got["image_id"]) == test_ids, entry
        assert got["probability"].between(0, 1).all()


def test_leaderboard_rows(tiny_run):
    table = leaderboard.read(tiny_run.run_dir / "leaderboard.parquet")
    board = table.to_pandas()
    assert set(board["entry"]) == {"resnet10t", "mobilenetv3_small_050", "ctp", "ptc-lw", "ptc-mode"}
    assert set(board["metric"]) == {"auc", "auprc", "f1", "f1_pos", "hamming", "ece_15", "brier"}
    calibration = board[board["metric"].isin(["ece_15", "brier"])]
    assert len(calibration) == 2 * len(board[board["metric"] == "auc"])  # every entry, label, group and macro
    assert calibration["value"].between(0, 1).all() and calibration["ci_low"].notna().all()
    assert (board["source"] == "run").all() and (board["dataset_kind"] == "synthetic").all()
    m = json.loads((tiny_run.run_dir / "manifest.json").read_text())
    assert (board["split_hash"] == m["split_hash"]).all()
    glob = board[(board["label"] == GLOBAL_LABEL) & (board["metric"] == "hamming")]
    assert len(glob) == 5 and glob["value"].between(0, 1).all()


def test_rerun_is_a_no_op_and_a_changed_recipe_is_refused(tiny_run):
    board_before = pd.read_parquet(tiny_run.run_dir / "leaderboard.parquet")
    preds_before = (tiny_run.run_dir / "backbones" / "resnet10t" / "predictions.parquet").stat().st_mtime_ns
    run(RunOptions(out=tiny_run.run_dir, **TINY))
    # Training is not redone, and the recomputed ensembles and metrics are the same numbers.
    assert (tiny_run.run_dir / "backbones" / "resnet10t" / "predictions.parquet").stat().st_mtime_ns == preds_before
    board_after = pd.read_parquet(tiny_run.run_dir / "leaderboard.parquet")
    keys = ["entry", "label", "metric"]
    pd.testing.assert_frame_equal(board_after.sort_values(keys)[keys + ["value", "ci_low", "ci_high"]].reset_index(drop=True),
                                  board_before.sort_values(keys)[keys + ["value", "ci_low", "ci_high"]].reset_index(drop=True))
    with pytest.raises(ManifestError, match="holds another run"):
        run(RunOptions(out=tiny_run.run_dir, **{**TINY, "max_epochs": 3}))


def test_trained_models_load_back(tiny_run):
    trained = load_trained(tiny_run.run_dir)
    assert set(trained.models) == {"resnet10t", "mobilenetv3_small_050"}
    assert len(trained.labels) == 35


def test_missing_csv_column_is_a_clear_error(tmp_path):
    from mlbench.data import DataSource, DatasetError
    from mlbench.contracts.registry import get_registry

    csv = tmp_path / "bad.csv"
    csv.write_text("ImageID,ImageDir,Labels\nx.png,0,\"['normal']\"\n")
    dataset = get_registry().create("dataset", "padchest")
    with pytest.raises(DatasetError, match="PatientID"):
        dataset.read(DataSource(csv, tmp_path))


def test_grid_as_independent_jobs_gives_the_same_leaderboard(tiny_run, tmp_path):
    """--only-backbone per backbone, then --ensemble-only == one full run (deterministic on CPU)."""
    out = tmp_path / "grid"
    for name in TINY["backbones"]:
        result = run(RunOptions(out=out, only_backbones=(name,), **TINY))
        assert result.leaderboard is None
        assert not (out / "leaderboard.parquet").exists()
    again = run(RunOptions(out=out, only_backbones=(TINY["backbones"][0],), **TINY))  # a finished job: no-op
    assert again.leaderboard is None
    final = run(RunOptions(out=out, ensemble_only=True, **TINY))
    cols = ["entry", "label", "metric", "value"]
    expected = tiny_run.leaderboard[cols].sort_values(cols[:3]).reset_index(drop=True)
    got = final.leaderboard[cols].sort_values(cols[:3]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-6)


def test_ensemble_only_refuses_missing_backbones(tmp_path):
    from mlbench.training.runner import RunError

    out = tmp_path / "partial"
    run(RunOptions(out=out, only_backbones=(TINY["backbones"][0],), **TINY))
    with pytest.raises(RunError, match="have no predictions yet"):
        run(RunOptions(out=out, ensemble_only=True, **TINY))
