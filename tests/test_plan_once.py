"""A run is planned once per process, and a resume reads the stored split instead of splitting again.

Counters wrap ``plan_run``, the dataset plugin's ``read`` and ``split_benchmark`` (the one split
computation): a resumed run, a grid re-run and a run through the local executor plan once and never
recompute a stored split; a label file whose content changed is read and split again.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter

import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

import mlbench.training.runner as runner
from mlbench.execution import executors
from mlbench.cli import main
from mlbench.demo import read_source_record
from mlbench.grid.cells import GridSpec, run_grid
from mlbench.foundations.io import write_parquet
from mlbench.results.metrics import MetricWarning
from mlbench.contracts.registry import get_registry
from mlbench.results.rundir import RunDir, RunDirError
from mlbench.training.runner import RunOptions
from cli_checks import assert_one_error

BENCH = "padchest-specific"
TINY = dict(benchmark=BENCH, demo=True, demo_options={"n_patients": 40, "image_size": 96}, image_size=32,
            max_epochs=1, backbones=("resnet10t",), ensembles=("ctp",), n_boot=10, progress=False, workers=1)
KEYS = ["entry", "label", "metric"]


def quietly(work, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return work(*args, **kwargs)


@pytest.fixture
def counts(monkeypatch):
    """plan_run calls, dataset reads and split computations in this process."""
    seen = Counter()

    def counting(name, real):
        def wrapper(*args, **kwargs):
            seen[name] += 1
            return real(*args, **kwargs)
        return wrapper

    registry = get_registry()
    dataset = type(registry.create("dataset", registry.create("benchmark", BENCH).dataset))
    monkeypatch.setattr(runner, "plan_run", counting("plan", runner.plan_run))
    monkeypatch.setattr(runner, "split_benchmark", counting("split", runner.split_benchmark))
    monkeypatch.setattr(dataset, "read", counting("read", dataset.read))
    return seen


def values(board: pd.DataFrame) -> pd.DataFrame:
    return board.sort_values(KEYS).reset_index(drop=True)[KEYS + ["value", "ci_low", "ci_high"]]


def unfinish(run_dir) -> pd.DataFrame:
    """Make a finished run look killed before its metrics: what a resume must redo."""
    rundir = RunDir(run_dir)
    board = rundir.leaderboard().to_pandas()
    rundir.leaderboard_file.unlink()
    rundir.update_manifest(lambda m: m.pop("finished_at"))
    return board


def test_a_resumed_finished_run_plans_once_and_reads_the_stored_split(tmp_path, counts):
    opts = RunOptions(out=tmp_path / "run", **TINY)
    first = quietly(runner.run, opts)
    assert counts == {"plan": 1, "read": 1, "split": 1}
    stored = RunDir(first.run_dir)
    assert stored.plan_file.is_file() and stored.image_paths_file.is_file()
    assert stored.read_plan()["identity"]["recipe"] == stored.manifest()["identity"]["recipe"]
    before = unfinish(first.run_dir)
    counts.clear()
    again = quietly(runner.run, opts)
    assert counts == {"plan": 1}  # no dataset read, no split
    assert again.manifest["split_hash"] == first.manifest["split_hash"]
    pd.testing.assert_frame_equal(values(again.leaderboard), values(before))


def test_a_label_file_whose_content_changed_is_split_again_a_touched_one_is_not(tmp_path, counts):
    opts = RunOptions(out=tmp_path / "run", **TINY)
    runner.prepare(runner.plan_run(opts))
    assert counts["split"] == 1
    csv = read_source_record(RunDir(opts.out).default_demo_dir).csv
    os.utime(csv, (1e9, 1e9))  # only its time changes
    runner.prepare(runner.plan_run(opts))
    assert (counts["read"], counts["split"]) == (1, 1)
    kept = RunDir(opts.out).split()["image_id"].tolist()
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    csv.write_text("".join(line for line in lines if kept[-1] not in line), encoding="utf-8")  # one image fewer
    runner.prepare(runner.plan_run(opts))
    assert (counts["read"], counts["split"]) == (2, 2)
    assert sorted(RunDir(opts.out).split()["image_id"]) == sorted(kept[:-1])


def test_a_stored_image_path_leading_out_of_the_image_root_is_one_line(tmp_path):
    out = tmp_path / "run"
    runner.prepare(runner.plan_run(RunOptions(out=out, **TINY)))
    rundir = RunDir(out)
    paths = pd.read_parquet(rundir.image_paths_file)
    paths.loc[3, "path"] = "../../secret-place/x.png"
    write_parquet(rundir.image_paths_file, pa.Table.from_pandas(paths, preserve_index=False))
    with pytest.raises(RunDirError) as refused:
        runner.prepare(runner.plan_run(RunOptions(out=out, **TINY)))
    assert "row 4" in str(refused.value) and "secret-place" not in str(refused.value)
    args = ["run", BENCH, "--demo", "--demo-option", "n_patients=40", "--demo-option", "image_size=96",
            "--backbones", "resnet10t", "--ensembles", "ctp", "--epochs", "1", "--image-size", "32",
            "--bootstrap", "10", "--workers", "1", "--quiet", "--out", str(out)]
    last = assert_one_error(CliRunner().invoke(main, args), rundir.image_paths_file.name, "row 4")
    assert "secret-place" not in last


def test_a_grid_re_run_plans_each_cell_once_and_splits_nothing(tmp_path, counts):
    spec = GridSpec(benchmark=BENCH, out=tmp_path / "grid", remedies=["uniform", "class-balanced"],
                    backbones=["resnet10t"], seeds=[0], demo=True, n_boot=10, progress=False,
                    run_options={k: v for k, v in TINY.items() if k not in ("benchmark", "demo", "backbones",
                                                                              "progress")})
    first = quietly(run_grid, spec)
    assert counts == {"plan": 2, "read": 2, "split": 2}  # one plan and one split per cell
    before = unfinish(first.cells[1].run_dir)
    counts.clear()
    again = quietly(run_grid, spec)
    assert counts == {"plan": 2}
    assert again.reused == [first.cells[0].label]
    pd.testing.assert_frame_equal(values(RunDir(first.cells[1].run_dir).leaderboard().to_pandas()), values(before))


def test_the_local_executor_plans_once_and_its_jobs_read_the_stored_plan(tmp_path, counts, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the jobs inherit it: one torch thread each
    opts = RunOptions(out=tmp_path / "run", **TINY)
    first = quietly(executors.run_with_executor, opts, "local", parallel=1, poll_s=0.2)
    assert counts == {"plan": 1, "read": 1, "split": 1}  # the driver's; the jobs planned nothing (below)
    before = unfinish(first.run_dir)
    counts.clear()
    # The ensembles job, here in this process: it reads plan.json and split.parquet.
    [job] = [t for t in executors.plan_tasks([runner.plan_run(opts)]) if t.name == executors.ENSEMBLES_TASK]
    assert counts == {"plan": 1}
    counts.clear()
    quietly(executors.run_job, job.options)
    assert counts == {}
    assert RunDir(first.run_dir).finished()
    pd.testing.assert_frame_equal(values(RunDir(first.run_dir).leaderboard().to_pandas()), values(before))
    counts.clear()
    quietly(executors.run_with_executor, opts, "local", parallel=1, poll_s=0.2)
    assert counts == {"plan": 1}


def test_a_job_whose_stored_plan_is_unreadable_fails_in_one_line(tmp_path):
    rundir = RunDir(tmp_path / "run")
    rundir.path.mkdir()
    rundir.plan_file.write_text('{"options": "secret-content"}', encoding="utf-8")
    with pytest.raises(RunDirError) as bad:
        runner.load_plan(rundir.path)
    assert str(rundir.plan_file) in str(bad.value) and "secret-content" not in str(bad.value)
    assert "\n" not in str(bad.value)
    rundir.plan_file.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RunDirError, match="expected a JSON object"):
        runner.load_plan(rundir.path)
