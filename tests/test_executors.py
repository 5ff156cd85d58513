"""submitit executors: a grid through real local subprocesses equals the inline grid; failures and resubmission.

The SLURM path runs against stand-in `sbatch`/`srun`/`sacct` scripts on PATH (no cluster): the test reads
the sbatch files submitit writes for the dependency and the resources.
"""

import os
import shutil
import signal
import stat
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from mlbench.executors import (ENSEMBLES_TASK, JOBS, SUBMISSIONS, ExecutorError, Resources, Submitter, Task,
                               plan_tasks, run_tasks, submitit_executor)
from mlbench.grid import (COMPARISON, FAILURE_FILE, GRID_FILE, GridError, GridSpec, cell_dir, grid_status,
                          run_grid)
from mlbench.io import read_json, write_json
from mlbench.metrics import MetricWarning
from mlbench.rundir import RunDir
from mlbench.runner import RunOptions

RUN = {"max_epochs": 1, "image_size": 32, "ensembles": ("ctp",), "n_boot": 20, "workers": 1,
       "demo_options": {"n_patients": 40, "image_size": 96}}
REMEDIES = ("uniform", "class-balanced")
KEYS = ["entry", "entry_kind", "label", "metric"]


def tiny_spec(out):
    return GridSpec(benchmark="padchest-specific", out=out, remedies=list(REMEDIES), backbones=["resnet10t"],
                    seeds=[0], demo=True, run_options=dict(RUN), n_boot=20, progress=False)


def quietly(work, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return work(*args, **kwargs)


def submissions(grid_dir):
    return read_json(grid_dir / JOBS / SUBMISSIONS)


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    assert os.environ.get("OMP_NUM_THREADS") == "1"  # submitit's local jobs inherit it: one torch thread each
    root = tmp_path_factory.mktemp("executors")
    inline = quietly(run_grid, tiny_spec(root / "inline"))
    local = quietly(run_grid, tiny_spec(root / "local"),
                    executor=submitit_executor("local", root / "local", parallel=2, poll_s=0.2))
    return inline, local


def board(run_dir):
    table = pd.read_parquet(RunDir(run_dir).leaderboard_file)
    return table.sort_values(KEYS).reset_index(drop=True)


def test_local_executor_writes_the_leaderboards_of_the_inline_grid(grids):
    inline, local = grids
    for a, b in zip(inline.cells, local.cells):
        assert RunDir(a.run_dir).manifest()["split_hash"] == RunDir(b.run_dir).manifest()["split_hash"]
        left, right = board(a.run_dir), board(b.run_dir)
        pd.testing.assert_frame_equal(left[KEYS], right[KEYS])
        assert (left["value"] - right["value"]).abs().max() <= 1e-9
    pd.testing.assert_frame_equal(pd.read_parquet(inline.grid_dir / COMPARISON),
                                  pd.read_parquet(local.grid_dir / COMPARISON), atol=1e-9, rtol=0)


def test_one_job_per_backbone_then_each_cells_ensembles_job(grids):
    _, local = grids
    record = submissions(local.grid_dir)
    assert sorted((r["run_dir"], r["task"]) for r in record) == sorted(
        (str(c.run_dir), task) for c in local.cells for task in ("train:resnet10t", ENSEMBLES_TASK))
    for cell in local.cells:  # the ensembles job comes after its training job (no dependencies locally)
        order = [r["task"] for r in record if r["run_dir"] == str(cell.run_dir)]
        assert order == ["train:resnet10t", ENSEMBLES_TASK]
    # One folder per job and the record; no empty literal "%j" folder (submitit's local controllers make one).
    assert sorted(p.name for p in (local.grid_dir / JOBS).iterdir()) == sorted(
        [r["job_id"] for r in record] + [SUBMISSIONS])


def job_process(grid_dir, index, timeout_s=120):
    """The pid of the task process of the index-th submitted job (a local job's id is its controller's pid)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = submissions(grid_dir) if (grid_dir / JOBS / SUBMISSIONS).is_file() else []
        if len(record) > index:
            controller = record[index]["job_id"]
            for stat_file in Path("/proc").glob("[0-9]*/stat"):
                try:
                    parent = stat_file.read_text().rsplit(")", 1)[1].split()[1]
                except (OSError, IndexError):
                    continue
                if parent == controller:
                    return int(stat_file.parent.name), record[index]
        time.sleep(0.05)
    raise AssertionError(f"no process for job {index} of {grid_dir}")


def test_killing_a_cells_job_and_rerunning_resubmits_only_that_cell(grids):
    _, local = grids
    grid_dir, before = local.grid_dir, len(submissions(local.grid_dir))
    victim = RunDir(cell_dir(grid_dir, "class-balanced", 0))
    kept = RunDir(cell_dir(grid_dir, "uniform", 0)).backbone_predictions("resnet10t").stat().st_mtime_ns
    shutil.rmtree(victim.backbone_dir("resnet10t"))  # its work to do again: the job we kill below
    victim.leaderboard_file.unlink()
    outcome = {}

    def run_in_background():
        try:
            quietly(run_grid, tiny_spec(grid_dir), executor=submitit_executor("local", grid_dir, poll_s=0.2))
        except GridError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=run_in_background)
    thread.start()
    pid, killed = job_process(grid_dir, before)
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert (killed["run_dir"], killed["task"]) == (str(victim.path), "train:resnet10t")
    assert "cells class-balanced seed 0 did not finish" in outcome["error"]
    failure = read_json(victim.path / FAILURE_FILE)
    assert failure["error"] == f"train:resnet10t job {killed['job_id']} failed: ended without a result (state FINISHED)"
    states = {c.remedy: c for c in grid_status(grid_dir)}
    assert states["class-balanced"].state == "failed" and killed["job_id"] in states["class-balanced"].detail
    assert states["uniform"].state == "done"
    assert len(submissions(grid_dir)) == before + 1  # no ensembles job after a failed training job

    again = quietly(run_grid, tiny_spec(grid_dir), executor=submitit_executor("local", grid_dir, poll_s=0.2))
    added = submissions(grid_dir)[before + 1:]
    assert [(r["run_dir"], r["task"]) for r in added] == [(str(victim.path), "train:resnet10t"),
                                                          (str(victim.path), ENSEMBLES_TASK)]
    assert not (victim.path / FAILURE_FILE).exists()
    assert RunDir(cell_dir(grid_dir, "uniform", 0)).backbone_predictions("resnet10t").stat().st_mtime_ns == kept
    pd.testing.assert_frame_equal(again.comparison, local.comparison, atol=1e-9, rtol=0)


def test_a_failing_job_leaves_its_error_and_log_tail(tmp_path):
    run_dir = tmp_path / "run"
    opts = RunOptions(benchmark="padchest-specific", out=run_dir, backbones=("resnet10t",), progress=False)
    task = Task(run_dir, "train:resnet10t", opts)  # no --csv/--images: the job's run() refuses at once
    failed = run_tasks([task], Submitter("local", tmp_path / JOBS, Resources(poll_s=0.2)))
    assert failed == [task]
    failure = read_json(run_dir / FAILURE_FILE)
    assert failure["error"] == (f"train:resnet10t job {task.job.job_id} failed: mlbench.runner.RunError: "
                                "--csv and --images: give the dataset's label file and image folder, or --demo")
    lines = failure["log_tail"].splitlines()
    assert 2 <= len(lines) <= 30 and "Traceback" in failure["log_tail"]


# -- SLURM without a cluster ----------------------------------------------------------------------------
FAKE_SBATCH = """#!/bin/sh
# stands in for sbatch: numbers the jobs from 1001 and logs each submission
n=$(cat "$FAKE_SLURM/count" 2>/dev/null || echo 1000); n=$((n+1)); echo $n > "$FAKE_SLURM/count"
echo "$1" >> "$FAKE_SLURM/sbatch.log"
echo "Submitted batch job $n"
"""
FAKE_SACCT = """#!/bin/sh
# stands in for sacct: every job asked about is still running
echo "JobID|State|NodeList"
for id in $(echo "$@" | tr ' ' '\\n' | grep -E '^[0-9]+$'); do echo "$id|RUNNING|node1"; done
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", "#!/bin/sh\nexit 0\n"), ("sacct", FAKE_SACCT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(tmp_path))
    return tmp_path


def sbatch_lines(job):
    text = job.paths.submission_file.read_text()
    return {line for line in text.splitlines() if line.startswith("#SBATCH")}


def test_slurm_jobs_carry_resources_and_the_afterok_dependency(fake_slurm):
    grid_dir = fake_slurm / "grid"
    write_json(grid_dir / GRID_FILE, tiny_spec(grid_dir).identity())
    opts = RunOptions(benchmark="padchest-specific", out=cell_dir(grid_dir, "uniform", 0), demo=True,
                      backbones=("resnet10t", "resnet18"), progress=False)
    resources = Resources(gpus_per_node=2, cpus_per_task=8, mem_gb=64, timeout_min=600, partition="gpu",
                          slurm_parameters={"account": "proj"})
    submitter = Submitter("slurm", grid_dir / JOBS, resources)
    tasks = plan_tasks([opts])
    assert [t.name for t in tasks] == ["train:resnet10t", "train:resnet18", ENSEMBLES_TASK]
    for task in tasks:
        submitter.submit(task)
    assert [t.job.job_id for t in tasks] == ["1001", "1002", "1003"]
    common = {"#SBATCH --cpus-per-task=8", "#SBATCH --mem=64GB", "#SBATCH --time=600", "#SBATCH --partition=gpu",
              "#SBATCH --account=proj"}
    train = sbatch_lines(tasks[0].job)
    assert common | {"#SBATCH --gpus-per-node=2", "#SBATCH --ntasks-per-node=2"} <= train
    assert not any("dependency" in line for line in train)
    ensembles = sbatch_lines(tasks[2].job)
    assert common | {"#SBATCH --dependency=afterok:1001:1002", "#SBATCH --kill-on-invalid-dep=yes",
                     "#SBATCH --ntasks-per-node=1"} <= ensembles
    assert not any("gpus" in line for line in ensembles)
    assert [r["job_id"] for r in submissions(grid_dir)] == ["1001", "1002", "1003"]
    assert {(c.remedy, c.state, c.detail) for c in grid_status(grid_dir)} == {
        ("uniform", "pending", "jobs: train:resnet10t 1001, train:resnet18 1002, ensembles 1003"),
        ("class-balanced", "pending", "")}

    # Another invocation finds the jobs still queued or running (sacct says so) and waits for them instead.
    again = Submitter("slurm", grid_dir / JOBS, resources)
    for task in plan_tasks([opts]):
        again.submit(task)
    assert (fake_slurm / "count").read_text().strip() == "1003"
    assert len(submissions(grid_dir)) == 3


def test_slurm_without_sbatch_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ExecutorError, match="--executor slurm: no sbatch or srun on PATH"):
        submitit_executor("slurm", tmp_path / "grid")


def test_run_executor_refuses_a_hand_split_run_in_one_line(tmp_path):
    from click.testing import CliRunner

    from mlbench.cli import main

    result = CliRunner().invoke(main, ["run", "padchest-specific", "--demo", "--only-backbone", "resnet10t",
                                       "--executor", "local", "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        "Error: --executor: splits the run into jobs itself; drop --only-backbone/--ensemble-only"]
    assert not (tmp_path / "run").exists()


def test_a_two_process_job_trains_as_torch_distributed_ranks(grids, tmp_path):
    """What --gpus-per-node 2 submits (two tasks, RunJob exporting RANK/WORLD_SIZE/MASTER_*), here on CPU/gloo."""
    import dataclasses

    import numpy as np
    import submitit

    from mlbench.executors import RunJob

    inline, _ = grids
    single = inline.cells[0]
    opts = dataclasses.replace(single.options, out=tmp_path / "ddp", only_backbones=("resnet10t",), device="cpu")
    executor = submitit.LocalExecutor(folder=tmp_path / JOBS / "%j")
    executor.update_parameters(timeout_min=10, tasks_per_node=2)
    job = executor.submit(RunJob(opts))
    assert job.results() == [(str(opts.out), True), (str(opts.out), False)]  # rank 0 writes, rank 1 does not
    h1, h2 = (read_json(RunDir(d).history_file("resnet10t"))["history"] for d in (single.run_dir, opts.out))
    # Same global batches and seed; BatchNorm statistics (per rank) and float order differ.
    np.testing.assert_allclose([e["val_loss"] for e in h1], [e["val_loss"] for e in h2], rtol=0.01)
    assert RunDir(opts.out).backbone_predictions("resnet10t").is_file()
