"""mlbench evaluate: a PadChest demo run scored on the NIH demo corpus's official test split, for the labels
the two benchmarks map to the same finding; internal vs external in compare and the report; a resumed and a
repeated evaluation; every mistake one line; a hostile run directory refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import mlbench
from cli_checks import assert_one_error, cli, finished_tiny_run
from mlbench.judging import external_validation
from mlbench.results import leaderboard
from mlbench.results.evaluations import SCOPE_COLUMN, read_rows
from mlbench.results.rundir import RunDir

NIH_DEMO = ("--demo-option", "n_patients=40", "--demo-option", "image_size=64")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return finished_tiny_run(tmp_path_factory.mktemp("external") / "run")


@pytest.fixture(scope="module")
def evaluated(run_dir) -> Path:
    result = cli("evaluate", run_dir, "--on", "nih-cxr14", "--demo", *NIH_DEMO, "--device", "cpu", "--workers", "1",
                 "--progress", "quiet")
    assert result.exit_code == 0, result.output
    assert "pinned official test set" in result.output and "labels not shared: 27" in result.output
    return run_dir


def _record(run_dir: Path) -> dict:
    return json.loads(RunDir(run_dir).external_record("nih-cxr14").read_text())


def test_rows_carry_the_external_scope_the_run_s_label_names_and_the_nih_split(evaluated):
    rundir, record = RunDir(evaluated), _record(evaluated)
    rows = read_rows(rundir.external_leaderboard("nih-cxr14"), "nih-cxr14")
    assert set(rows[SCOPE_COLUMN]) == {"external:nih-cxr14"}
    shared = [s["label"] for s in record["shared"]]
    assert shared[:2] == ["cardiomegaly", "pleural effusion"] and len(shared) == 8
    per_label = set(rows["label"]) - {leaderboard.GLOBAL_LABEL} - {lab for lab in rows["label"] if lab.startswith("__")}
    assert per_label == set(shared)  # padchest-specific's spelling, only the shared labels
    assert set(rows["split_hash"]) == {record["split_hash"]} and set(rows["dataset_kind"]) == {"synthetic"}
    assert set(rows["benchmark"]) == {"padchest-specific"}
    # Any leaderboard reader reads the rows (the scope column is simply extra).
    assert leaderboard.read(rundir.external_leaderboard("nih-cxr14")).num_rows == len(rows)
    assert record["not_shared"]["normal"].startswith("maps to no term")
    assert record["skipped"]["not_shared_labels"] == 27 and record["skipped"]["counts"] == {"data:missing_image": 1}


def test_external_values_are_the_aucs_of_the_stored_predictions_against_nih_s_test_labels(evaluated):
    rundir, record = RunDir(evaluated), _record(evaluated)
    demo = rundir.external_demo_dir("nih-cxr14")
    labels = pd.read_csv(next(demo.rglob("*.csv")))  # the NIH-format label file the demo wrote
    official = set((Path(__import__("mlbench_nih").__file__).parent / "data" /
                    "official_test_patients.txt").read_text().split())
    test = labels[labels["Patient ID"].astype(str).isin(official)]
    preds = pd.read_parquet(rundir.external_predictions("nih-cxr14"))
    assert set(preds["split"]) == {"test"} and preds["image_id"].nunique() == record["n_scored"]
    on_disk = {path.name for path in demo.rglob("*.png")}
    assert record["n_scored"] == test["Image Index"].isin(on_disk).sum()  # the demo's missing film is skipped
    truth = {row["Image Index"]: set(row["Finding Labels"].split("|")) for _, row in test.iterrows()}
    rows = read_rows(rundir.external_leaderboard("nih-cxr14"), "nih-cxr14").set_index(["entry", "label", "metric"])
    checked = 0
    for pair in record["shared"]:
        part = preds[(preds["entry"] == "resnet10t") & (preds["label"] == pair["label"])]
        y = np.array([pair["target_label"] in truth[i] for i in part["image_id"]])
        assert rows.loc[("resnet10t", pair["label"], "auc"), "n_positive"] == y.sum() == pair["n_positive"]
        if 0 < y.sum() < len(y):
            assert rows.loc[("resnet10t", pair["label"], "auc"), "value"] == pytest.approx(
                roc_auc_score(y, part["probability"]))
            checked += 1
    assert checked >= 3


def test_compare_and_the_report_show_internal_vs_external(evaluated, tmp_path):
    comparison = mlbench.compare_run(evaluated)
    assert len(comparison.external) == 1
    ev = comparison.external[0]
    table = ev.of()
    assert ev.scope == "external:nih-cxr14" and ev.metric == "auc"
    assert list(table["label"]) == [s["label"] for s in _record(evaluated)["shared"]] + [leaderboard.GLOBAL_LABEL]
    own = leaderboard.read(RunDir(evaluated).leaderboard_file).to_pandas()
    own = own[(own["entry"] == ev.entry) & (own["metric"] == "auc")].set_index("label")["value"]
    row = table.set_index("label").loc["cardiomegaly"]
    assert row["internal"] == pytest.approx(own["cardiomegaly"])
    assert row["difference"] == pytest.approx(row["external"] - row["internal"])
    result = cli("compare", evaluated)
    assert result.exit_code == 0 and "internal vs external:nih-cxr14" in result.output
    page = mlbench.write_report(evaluated, tmp_path / "report.html")
    html = page.read_text()
    assert 'id="external"' in html and 'id="external-table-0"' in html and "Internal vs external" in html
    section = html[html.index('id="external-table-0"'):]
    assert "cardiomegaly" in section[:4000] and "Cardiomegaly" in section[:4000] and "narrower" in section[:4000]


def test_a_repeated_evaluation_is_reused_and_a_killed_one_resumes(evaluated, monkeypatch):
    rundir = RunDir(evaluated)
    files = [rundir.external_record("nih-cxr14"), rundir.external_leaderboard("nih-cxr14"),
             rundir.external_predictions("nih-cxr14")]
    before = [p.read_bytes() for p in files]
    predicted = pd.read_parquet(files[2])
    again = mlbench.evaluate_run(evaluated, on="nih-cxr14", demo=True, progress=False, workers=1,
                                 demo_options={"n_patients": 40, "image_size": 64})
    assert again.reused and [p.read_bytes() for p in files] == before
    # Killed after its chunks: the record is gone (another run's would not mark this one done), the parts stay.
    rundir.external_record("nih-cxr14").unlink()
    real_write = external_validation.predictions.write

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(external_validation.predictions, "write", killed)
    with pytest.raises(KeyboardInterrupt):
        external_validation.evaluate_run(evaluated, "nih-cxr14", demo=True, progress=False, workers=1, chunk_size=4)
    assert any(rundir.external_parts("nih-cxr14").glob("*.parquet"))
    monkeypatch.setattr(external_validation.predictions, "write", real_write)
    resumed = external_validation.evaluate_run(evaluated, "nih-cxr14", demo=True, progress=False, workers=1,
                                               chunk_size=4)
    assert resumed.chunks_reused == resumed.chunks > 1 and not resumed.reused
    assert not rundir.external_parts("nih-cxr14").exists()
    # The same predictions, from the finished chunks (batched differently: equal to float precision).
    again = pd.read_parquet(files[2])
    assert again[["image_id", "entry", "label"]].equals(predicted[["image_id", "entry", "label"]])
    assert np.allclose(again["probability"], predicted["probability"], atol=1e-6)


@pytest.mark.parametrize("args, names", [
    (("--on", "no-such-bench", "--demo"), ["--on no-such-bench"]),
    (("--on", "padchest-general", "--demo"), ["--on padchest-general", "same dataset"]),
    (("--on", "folder", "--demo"), ["--on folder", "shares no label"]),
    (("--on", "nih-cxr14"), ["--csv and --images"]),
    (("--on", "nih-cxr14", "--csv", "missing.csv", "--images", "."), ["--csv missing.csv", "no such file"]),
    (("--on", "nih-cxr14", "--dataset-option", "nope=1", "--demo"), ["--dataset-option", "nope"]),
])
def test_each_mistake_is_one_line_before_any_work(run_dir, args, names):
    assert_one_error(cli("evaluate", run_dir, *args), *names)


def test_an_unfinished_or_hostile_run_directory_is_refused(run_dir, tmp_path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished, symlinks=True)
    manifest = json.loads((unfinished / "manifest.json").read_text())
    manifest.pop("finished_at")
    (unfinished / "manifest.json").write_text(json.dumps(manifest))
    assert_one_error(cli("evaluate", unfinished, "--on", "nih-cxr14", "--demo"), "not finished")

    hostile = tmp_path / "hostile"
    shutil.copytree(run_dir, hostile, symlinks=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.rmtree(hostile / "external", ignore_errors=True)
    (hostile / "external").mkdir()
    os.symlink(outside, hostile / "external" / "nih-cxr14")  # writes would land outside the run
    assert_one_error(cli("evaluate", hostile, "--on", "nih-cxr14", "--demo"), "leads outside")
    assert not any(outside.iterdir())

    stolen = tmp_path / "stolen"
    shutil.copytree(run_dir, stolen, symlinks=True)
    best = RunDir(stolen).best_checkpoint("resnet10t")
    shutil.move(best, tmp_path / "best.pt")
    os.symlink(tmp_path / "best.pt", best)  # a checkpoint read from outside the run directory
    assert_one_error(cli("evaluate", stolen, "--on", "nih-cxr14", "--demo"), "checkpoint", "leads outside")


def test_the_python_call_checks_its_arguments():
    with pytest.raises(mlbench.ArgumentError, match="evaluate_run: on=3"):
        mlbench.evaluate_run("run", on=3)
