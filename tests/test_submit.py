"""mlbench submit: a good run lands, a tampered one is refused naming what is wrong, concurrent submits both land."""

import json
import multiprocessing
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlbench.results import leaderboard
from mlbench.foundations.io import write_json, write_parquet
from mlbench.results.metrics import MetricWarning
from mlbench.training.runner import RunOptions, run
from mlbench.results.leaderboard import published_board as leaderboard_file_of
from mlbench.results.rescoring import recompute_run
from mlbench.judging.submit import SubmissionError, append_to_leaderboard, submit_run, validate_run

TINY = dict(benchmark="padchest-specific", demo=True, demo_options={"n_patients": 60, "image_size": 96},
            image_size=32, max_epochs=1, backbones=("mobilenetv3_small_050", "mobilenetv3_small_075"), progress=False,
            workers=1)
RUN_FILES = ("manifest.json", "split.parquet", "predictions.parquet", "leaderboard.parquet", "skipped.parquet")
N_BOOT = 50


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return run(RunOptions(out=tmp_path_factory.mktemp("run"), **TINY)).run_dir


def copy_run(run_dir: Path, dest: Path) -> Path:
    """The run's own files and its demo corpus (a run directory's stored paths are followed only inside it)."""
    dest.mkdir(parents=True)
    for name in RUN_FILES:
        shutil.copy2(run_dir / name, dest / name)
    shutil.copytree(run_dir / "demo-data", dest / "demo-data")
    return dest


def board(run_dir: Path) -> pd.DataFrame:
    return leaderboard.read(run_dir / "leaderboard.parquet").to_pandas()


def write_board(run_dir: Path, frame: pd.DataFrame) -> None:
    leaderboard.write(run_dir / "leaderboard.parquet", as_table(frame))


def as_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=leaderboard.SCHEMA, preserve_index=False)


def edit_manifest(run_dir: Path, **changes) -> None:
    m = json.loads((run_dir / "manifest.json").read_text())
    m.update(changes)
    write_json(run_dir / "manifest.json", m)


def with_intervals(run_dir: Path) -> None:
    """Fill the run's CIs the way the runner's metrics stage does with mlbench.results.stats (and record the settings)."""
    edit_manifest(run_dir, bootstrap={"n_boot": N_BOOT, "seed": 0})
    fresh = recompute_run(run_dir, n_boot=N_BOOT, seed=0).set_index(["entry", "label", "metric"])
    rows = board(run_dir)
    keys = list(zip(rows["entry"], rows["label"], rows["metric"]))
    rows["ci_low"] = [fresh.loc[k, "ci_low"] for k in keys]
    rows["ci_high"] = [fresh.loc[k, "ci_high"] for k in keys]
    write_board(run_dir, rows)


def refused(run_dir: Path, target: Path) -> str:
    with pytest.raises(SubmissionError) as caught:
        submit_run(run_dir, target)
    assert not target.exists(), "a refused run must not create or touch the leaderboard"
    return "\n".join(caught.value.problems)


def test_a_good_run_is_accepted_once(tiny_run, tmp_path):
    target = tmp_path / "demo-board.parquet"
    result = submit_run(tiny_run, target)
    rows = leaderboard.read(target).to_pandas()
    assert result.rows_appended == len(board(tiny_run)) == len(rows) == result.rows_in_file
    assert (rows["run_id"] == result.run_id).all() and (rows["dataset_kind"] == "synthetic").all()
    assert any("canonical" in p for p in result.validation.passed)
    with pytest.raises(SubmissionError, match="already in this leaderboard; nothing appended"):
        submit_run(tiny_run, target)
    assert len(leaderboard.read(target)) == len(rows)


def test_an_edited_auc_is_named_with_both_values(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    rows = board(run_dir)
    hit = rows.index[(rows["entry"] == "ctp") & (rows["metric"] == "auc") & rows["value"].notna()
                     & (rows["label"] != "__global__")][0]
    label, true_value = rows.loc[hit, "label"], rows.loc[hit, "value"]
    rows.loc[hit, "value"] = min(true_value + 0.2, 1.0) if true_value < 0.9 else true_value - 0.2
    write_board(run_dir, rows)
    message = refused(run_dir, tmp_path / "board.parquet")
    assert f"entry 'ctp', label '{label}', metric 'auc'" in message
    assert repr(float(rows.loc[hit, "value"])) in message and repr(float(true_value)) in message


def test_a_changed_split_hash_is_refused(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    fake = "0" * 64
    edit_manifest(run_dir, split_hash=fake)
    rows = board(run_dir)
    rows["split_hash"] = fake
    write_board(run_dir, rows)
    message = refused(run_dir, tmp_path / "board.parquet")
    assert "split hash" in message and fake in message
    assert json.loads((tiny_run / "manifest.json").read_text())["split_hash"] in message  # the canonical one


def test_a_dropped_test_image_is_named(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    preds = pq.read_table(run_dir / "predictions.parquet")
    frame = preds.to_pandas()
    dropped = frame.loc[frame["split"] == "test", "image_id"].iloc[0]
    write_parquet(run_dir / "predictions.parquet", pa.Table.from_pandas(frame[frame["image_id"] != dropped],
                                                                         schema=preds.schema, preserve_index=False))
    message = refused(run_dir, tmp_path / "board.parquet")
    assert f"lacks test images {dropped}" in message


def test_a_test_image_claimed_as_skipped_must_really_be_unreadable(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    preds = pq.read_table(run_dir / "predictions.parquet")
    frame = preds.to_pandas()
    hidden = frame.loc[frame["split"] == "test", "image_id"].iloc[-1]
    write_parquet(run_dir / "predictions.parquet", pa.Table.from_pandas(frame[frame["image_id"] != hidden],
                                                                         schema=preds.schema, preserve_index=False))
    skipped = pq.read_table(run_dir / "skipped.parquet")
    extra = pa.table({"stage": ["preprocess"], "item": [hidden], "reason": ["truncated"], "detail": ["claimed"]},
                     schema=skipped.schema)
    write_parquet(run_dir / "skipped.parquet", pa.concat_tables([skipped, extra]))
    message = refused(run_dir, tmp_path / "board.parquet")
    assert "listed as skipped but read and preprocess fine" in message and hidden in message


def test_edited_labels_in_split_parquet_are_refused(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    split = pq.read_table(run_dir / "split.parquet").to_pandas()
    first_test = split.index[split["split"] == "test"][0]
    split.loc[first_test, "cardiomegaly"] = 1 - split.loc[first_test, "cardiomegaly"]
    write_parquet(run_dir / "split.parquet", pa.Table.from_pandas(split, preserve_index=False))
    message = refused(run_dir, tmp_path / "board.parquet")
    assert "another patient, subset or labels than the canonical split" in message
    assert split.loc[first_test, "image_id"] in message


def test_tampered_ensemble_scores_are_refused(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    preds = pq.read_table(run_dir / "predictions.parquet")
    frame = preds.to_pandas()
    ctp = (frame["entry"] == "ctp") & (frame["split"] == "test")
    frame.loc[ctp, "probability"] = frame.loc[ctp, "probability"] ** 0.5  # same ranking, other decisions
    write_parquet(run_dir / "predictions.parquet", pa.Table.from_pandas(frame, schema=preds.schema,
                                                                         preserve_index=False))
    assert "ensembles ctp differ from the ensembles recomputed" in refused(run_dir, tmp_path / "board.parquet")


def test_nan_and_infinity_are_refused(tiny_run, tmp_path):
    for bad in (float("nan"), float("inf")):
        run_dir = copy_run(tiny_run, tmp_path / f"run-{bad}")
        rows = board(run_dir)
        hit = rows.index[(rows["metric"] == "f1") & (rows["label"] == "__global__")][0]
        rows.loc[hit, "value"] = bad
        write_board(run_dir, rows)
        message = refused(run_dir, tmp_path / "board.parquet")
        assert "metric 'f1'" in message and "label '__global__'" in message


def test_intervals_are_checked_too(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    with_intervals(run_dir)
    rows = board(run_dir)
    assert rows.loc[rows["metric"] == "auc", "ci_low"].notna().any()
    result = submit_run(run_dir, tmp_path / "ok.parquet")
    assert any("intervals too" in p for p in result.validation.passed)

    # a narrowed interval would let compare claim "beats published": refused
    edited = copy_run(run_dir, tmp_path / "edited")
    rows = board(edited)
    hit = rows.index[(rows["entry"] == "ctp") & (rows["label"] == "__global__") & (rows["metric"] == "auc")][0]
    rows.loc[hit, "ci_low"] = rows.loc[hit, "value"] - 1e-3
    write_board(edited, rows)
    message = refused(edited, tmp_path / "board.parquet")
    assert "entry 'ctp', label '__global__', metric 'auc': ci_low" in message


def test_synthetic_runs_stay_out_of_a_benchmarks_own_board(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MLBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    with pytest.raises(SubmissionError, match="never enter a benchmark's own leaderboard"):
        submit_run(tiny_run)
    with pytest.raises(SubmissionError, match="never enter a benchmark's own leaderboard"):
        submit_run(tiny_run, tmp_path / "boards" / "padchest-specific.parquet")
    # A file holding published rows takes none, whatever it is called.
    published = tmp_path / "renamed.parquet"
    published.write_bytes(leaderboard_file_of("padchest-specific").read_bytes())
    with pytest.raises(SubmissionError, match="holds published or real rows"):
        submit_run(tiny_run, published)
    # and a file that holds real rows does not take them under another name either
    real = board(tiny_run).assign(dataset_kind="padchest", run_id="someone-else")
    target = tmp_path / "mixed.parquet"
    leaderboard.write(target, as_table(real))
    with pytest.raises(SubmissionError, match="published or real rows; a synthetic run does not mix"):
        submit_run(tiny_run, target)


def test_a_run_claiming_to_be_padchest_is_caught(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    edit_manifest(run_dir, dataset_kind="padchest")
    rows = board(run_dir)
    rows["dataset_kind"] = "padchest"
    write_board(run_dir, rows)
    assert "the dataset reader says 'synthetic'" in refused(run_dir, tmp_path / "padchest-specific.parquet")


def test_append_refuses_another_benchmark_and_keeps_the_file_readable(tmp_path, tiny_run):
    rows = board(tiny_run)
    target = tmp_path / "board.parquet"
    append_to_leaderboard(target, as_table(rows))
    other = rows.assign(benchmark="padchest-general", run_id="x")
    with pytest.raises(SubmissionError, match="holds benchmark padchest-specific"):
        append_to_leaderboard(target, as_table(other))
    assert len(leaderboard.read(target)) == len(rows)


def test_two_concurrent_submits_both_land(tiny_run, tmp_path):
    runs = []
    for i in range(2):
        run_dir = copy_run(tiny_run, tmp_path / f"run{i}")
        new_id = f"concurrent-{i}"
        edit_manifest(run_dir, run_id=new_id)
        write_board(run_dir, board(run_dir).assign(run_id=new_id))
        runs.append(run_dir)
    assert validate_run(runs[0]).ok
    target = tmp_path / "shared-board.parquet"
    # Forked processes start with mlbench loaded, so the two submits overlap instead of importing.
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    procs = [context.Process(target=_submit_in_child, args=(start, r, target)) for r in runs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
    assert [proc.exitcode for proc in procs] == [0, 0]
    rows = leaderboard.read(target).to_pandas()
    per_run = rows.groupby("run_id").size()
    assert dict(per_run) == {"concurrent-0": len(board(tiny_run)), "concurrent-1": len(board(tiny_run))}
    assert not list(tmp_path.glob(".shared-board.parquet.*"))  # no temporary file left behind


def _submit_in_child(start, run_dir: Path, target: Path) -> None:
    start.wait()
    submit_run(run_dir, target)  # an exception exits the child with a non-zero code


def test_the_command_line_submits_and_refuses(tiny_run, tmp_path):
    from click.testing import CliRunner

    from mlbench.cli import main

    target = tmp_path / "cli-board.parquet"
    args = ["submit", str(tiny_run), "--leaderboard", str(target)]
    ok = CliRunner().invoke(main, args, env={"COLUMNS": "200"})
    assert ok.exit_code == 0, ok.output
    assert "accepted run" in ok.output and "ok: split is canonical" in ok.output
    again = CliRunner().invoke(main, args, env={"COLUMNS": "200"})
    assert again.exit_code == 1 and "already in this leaderboard" in again.output


def test_schema_problems_are_named(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    table = pq.read_table(run_dir / "leaderboard.parquet").drop(["ci_low"])
    pq.write_table(table, run_dir / "leaderboard.parquet")
    assert "missing columns ['ci_low']" in refused(run_dir, tmp_path / "board.parquet")
    (run_dir / "predictions.parquet").unlink()
    assert "predictions.parquet: no such file" in refused(run_dir, tmp_path / "board.parquet")


def test_recompute_matches_the_runner(tiny_run):
    fresh = recompute_run(tiny_run, n_boot=0).set_index(["entry", "label", "metric"])
    rows = board(tiny_run).set_index(["entry", "label", "metric"])
    common = rows.index.intersection(fresh.index)
    assert len(common) == len(rows)
    a, b = rows.loc[common, "value"].to_numpy(float), fresh.loc[common, "value"].to_numpy(float)
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], atol=1e-12)


def test_explainer_rows_are_left_out_and_said_so(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    rows = board(run_dir)
    cam = rows[rows["label"] == "__global__"].head(2).assign(entry="gradcam", entry_kind="explainer",
                                                             metric=["cam_pointing_game", "cam_iou"], value=0.4)
    write_board(run_dir, pd.concat([rows, cam], ignore_index=True))
    target = tmp_path / "board.parquet"
    result = submit_run(run_dir, target)
    notes = result.validation.left_out
    assert any("2 explainer rows (cam_iou, cam_pointing_game) are not submitted" in n for n in notes)
    stored = leaderboard.read(target).to_pandas()
    assert len(stored) == len(rows) and not (stored["entry_kind"] == "explainer").any()


def _append_in_child(start, rows: pd.DataFrame, run_id: str, target: Path) -> None:
    start.wait()
    append_to_leaderboard(target, as_table(rows.assign(run_id=run_id)))


def test_many_racing_appends_lose_nothing(tiny_run, tmp_path):
    """Eight appends released at once (without the lock, typically one of eight survives)."""
    rows = board(tiny_run)
    target = tmp_path / "raced.parquet"
    context = multiprocessing.get_context("fork")
    start = context.Barrier(8)
    procs = [context.Process(target=_append_in_child, args=(start, rows, f"race-{i}", target)) for i in range(8)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0] * 8
    stored = leaderboard.read(target).to_pandas()
    assert sorted(stored["run_id"].unique()) == [f"race-{i}" for i in range(8)] and len(stored) == 8 * len(rows)
