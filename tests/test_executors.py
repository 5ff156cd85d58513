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

from mlbench.execution.executors import (ENSEMBLES_TASK, LOG_TAIL_LINES, ExecutorError, JobsSubmitted, Resources, Submitter,
                               Task, plan_tasks, run_tasks, slurm_job_states, submitit_executor)
from mlbench.grid.cells import GridError, GridSpec, run_grid
from mlbench.results.griddir import COMPARISON, FAILURE_FILE, GRID_FILE, JOBS_DIR as JOBS, SUBMISSIONS_FILE as SUBMISSIONS, \
    cell_dir
from mlbench.grid.status import grid_status
from mlbench.foundations.io import read_json, write_json
from mlbench.results.metrics import MetricWarning
from mlbench.results.rundir import RunDir
from mlbench.training.runner import RunOptions

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
    import torch

    # the inline grid too: a module run before may have raised it, and another thread count changes the
    # scores' last bits, which brier and ece_15 (unlike the rank and decision metrics) show
    torch.set_num_threads(1)
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
    assert failure["error"] == (f"train:resnet10t job {task.job.job_id} failed: mlbench.training.runner.RunError: "
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
# stands in for sacct: a job's state is in $FAKE_SLURM/state-ID, else it is running; logs each call
echo "$@" >> "$FAKE_SLURM/sacct.log"
echo "JobID|State|NodeList"
for id in $(echo "$@" | tr ' ' '\\n' | grep -E '^[0-9]+$'); do
  state=$(cat "$FAKE_SLURM/state-$id" 2>/dev/null || echo RUNNING)
  [ "$state" = ABSENT ] || echo "$id|$state|node1"  # ABSENT: accounting does not list the job (yet)
done
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


def dependency(folder, job_id):
    """The --dependency line of a job's sbatch file under FOLDER/jobs, or None."""
    text = (folder / JOBS / job_id / f"{job_id}_submission.sh").read_text()
    return next((line for line in text.splitlines() if line.startswith("#SBATCH --dependency")), None)


def set_states(fake_slurm, **states):
    for job_id, state in states.items():
        (fake_slurm / f"state-{job_id.removeprefix('job')}").write_text(state + "\n")


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
    tasks = plan_tasks([opts])
    again.adopt_live_jobs(tasks)
    for task in tasks:
        again.submit(task)
    assert [(t.job.job_id, t.reused) for t in tasks] == [("1001", True), ("1002", True), ("1003", True)]
    assert (fake_slurm / "count").read_text().strip() == "1003"
    assert len(submissions(grid_dir)) == 3


def test_slurm_without_sbatch_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ExecutorError, match="--executor slurm: no sbatch or srun or sacct on PATH"):
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


# -- --no-wait: submit, return, and let a later invocation pick up ----------------------------------------
def submit_grid(grid_dir, say=lambda _: None):
    """One `mlbench grid --executor slurm --no-wait` of the tiny grid: the jobs it queued (or found queued)."""
    with pytest.raises(JobsSubmitted) as submitted:
        quietly(run_grid, tiny_spec(grid_dir), executor=submitit_executor("slurm", grid_dir, say, wait=False))
    return submitted.value


def recorded(grid_dir):
    return [(Path(r["run_dir"]).parent.name, r["task"], r["job_id"]) for r in submissions(grid_dir)]


def status_of(grid_dir):
    return {c.remedy: c for c in grid_status(grid_dir, job_states=slurm_job_states(grid_dir))}


def cli(*args):
    from click.testing import CliRunner

    from mlbench.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "200"})


def test_no_wait_queues_every_job_chained_by_afterok_and_returns(fake_slurm):
    grid_dir = fake_slurm / "grid"
    submitted = submit_grid(grid_dir)
    assert recorded(grid_dir) == [("uniform", "train:resnet10t", "1001"), ("uniform", ENSEMBLES_TASK, "1002"),
                                  ("class-balanced", "train:resnet10t", "1003"),
                                  ("class-balanced", ENSEMBLES_TASK, "1004")]
    assert submitted.job_ids == ["1001", "1002", "1003", "1004"] and not any(t.reused for t in submitted.tasks)
    # SLURM chains each ensembles job on its cell's training job: nothing has to wait on the login node.
    assert [dependency(grid_dir, j) for j in submitted.job_ids] == [
        None, "#SBATCH --dependency=afterok:1001", None, "#SBATCH --dependency=afterok:1003"]
    assert not (grid_dir / COMPARISON).exists()


def test_a_no_wait_rerun_submits_nothing_while_the_jobs_are_queued(fake_slurm):
    grid_dir = fake_slurm / "grid"
    submit_grid(grid_dir)
    set_states(fake_slurm, job1001="RUNNING", job1002="PENDING", job1003="PENDING", job1004="PENDING")
    assert not (fake_slurm / "sacct.log").exists()  # nothing recorded before: nothing to ask sacct
    again = submit_grid(grid_dir)
    assert [(t.job.job_id, t.reused) for t in again.tasks] == [(j, True) for j in ("1001", "1002", "1003", "1004")]
    assert (fake_slurm / "count").read_text().strip() == "1004" and len(submissions(grid_dir)) == 4
    assert len((fake_slurm / "sacct.log").read_text().splitlines()) == 1  # one sacct call for every job

    cells = status_of(grid_dir)
    assert cells["uniform"].state == "running"  # the first cell holds the grid's prepared split
    assert cells["uniform"].detail.endswith("; jobs: train:resnet10t 1001 RUNNING, ensembles 1002 PENDING")
    assert (cells["class-balanced"].state, cells["class-balanced"].detail) == (
        "pending", "jobs: train:resnet10t 1003 PENDING, ensembles 1004 PENDING")
    shown = cli("grid", "status", grid_dir)
    assert shown.exit_code == 0 and "ensembles 1004 PENDING" in shown.output, shown.output
    assert shown.output.splitlines()[-1] == "0 done, 1 running, 1 pending, 0 failed"


def test_a_rerun_right_after_submitting_does_not_submit_jobs_sacct_does_not_list_yet(fake_slurm):
    grid_dir = fake_slurm / "grid"
    submit_grid(grid_dir)
    set_states(fake_slurm, job1001="ABSENT", job1002="ABSENT", job1003="ABSENT", job1004="ABSENT")
    again = submit_grid(grid_dir)  # seconds later: accounting lags, the jobs are queued all the same
    assert all(t.reused for t in again.tasks) and (fake_slurm / "count").read_text().strip() == "1004"
    # Long after submission, a job sacct does not know is gone: submitted again.
    record = submissions(grid_dir)
    for entry in record:
        entry["submitted_at"] = "2020-01-01T00:00:00+00:00"
    write_json(grid_dir / JOBS / SUBMISSIONS, record)
    later = submit_grid(grid_dir)
    assert not any(t.reused for t in later.tasks) and (fake_slurm / "count").read_text().strip() == "1008"


# SLURM cancels the ensembles job of a failed training job (--kill-on-invalid-dep); until it does, the
# ensembles job still waits on the failed job's id and must be replaced, not kept.
@pytest.mark.parametrize("ensembles_state", ["CANCELLED by 0", "PENDING"])
def test_a_job_that_failed_unwatched_shows_failed_with_its_log_and_only_its_cell_is_resubmitted(fake_slurm,
                                                                                                ensembles_state):
    grid_dir = fake_slurm / "grid"
    submit_grid(grid_dir)
    set_states(fake_slurm, job1001="RUNNING", job1002="PENDING", job1003="FAILED", job1004=ensembles_state)
    log = grid_dir / JOBS / "1003" / "1003_0_log.err"
    log.write_text("".join(f"epoch {i}\n" for i in range(40)) + "torch.OutOfMemoryError: CUDA out of memory\n")

    failed = status_of(grid_dir)["class-balanced"]
    assert failed.state == "failed"
    ended = [f"train:resnet10t job 1003 ended FAILED (log {log})"]
    ended += ["ensembles job 1004 ended CANCELLED"] if ensembles_state.startswith("CANCELLED") else []
    assert failed.detail.splitlines() == ended + log.read_text().splitlines()[-LOG_TAIL_LINES:]
    assert status_of(grid_dir)["uniform"].state == "running"
    shown = cli("grid", "status", grid_dir)
    assert shown.exit_code == 0 and "torch.OutOfMemoryError: CUDA out of memory" in shown.output, shown.output
    assert shown.output.splitlines()[-1] == "0 done, 1 running, 0 pending, 1 failed"

    said = []
    again = submit_grid(grid_dir, said.append)
    assert recorded(grid_dir)[4:] == [("class-balanced", "train:resnet10t", "1005"),
                                      ("class-balanced", ENSEMBLES_TASK, "1006")]
    assert dependency(grid_dir, "1006") == "#SBATCH --dependency=afterok:1005"
    assert [(t.job.job_id, t.reused) for t in again.tasks] == [("1001", True), ("1002", True), ("1005", False),
                                                               ("1006", False)]
    assert any("job 1003 ended FAILED; submitting it again" in line for line in said), said

    # Without sacct the status says so and shows what the files say, without a traceback.
    (fake_slurm / "bin" / "sacct").unlink()
    shown = cli("grid", "status", grid_dir)
    assert shown.exit_code == 0 and "Traceback" not in shown.output, shown.output
    assert "jobs: train:resnet10t 1005, ensembles 1006" in shown.output
    assert shown.output.splitlines()[-1].startswith("no sacct on PATH")


def test_once_the_jobs_did_their_work_the_same_no_wait_command_writes_the_comparison(grids, fake_slurm):
    from submitit.core.utils import DelayedSubmission

    from mlbench.training.runner import run

    inline, _ = grids
    grid_dir = fake_slurm / "grid"
    submitted = submit_grid(grid_dir)
    for job_id in submitted.job_ids:  # the cluster runs each submitted job, in order
        pickled = DelayedSubmission.load(grid_dir / JOBS / job_id / f"{job_id}_submitted.pkl")
        quietly(run, pickled.function.options)
        set_states(fake_slurm, **{f"job{job_id}": "COMPLETED"})
    result = quietly(run_grid, tiny_spec(grid_dir), executor=submitit_executor("slurm", grid_dir, wait=False))
    assert len(submissions(grid_dir)) == 4
    assert {c.state for c in grid_status(grid_dir)} == {"done"}
    pd.testing.assert_frame_equal(pd.read_parquet(grid_dir / COMPARISON), inline.comparison, atol=1e-9, rtol=0)
    pd.testing.assert_frame_equal(result.comparison, inline.comparison, atol=1e-9, rtol=0)


GRID_ARGS = ["--remedies", "uniform,class-balanced", "--backbones", "resnet10t", "--epochs", "1", "--image-size", "32",
             "--ensembles", "ctp", "--bootstrap", "20", "--workers", "1", "--quiet", "--no-pretrained"]


def test_grid_and_run_no_wait_on_the_command_line_print_the_jobs_and_the_next_commands(fake_slurm):
    from mlbench.contracts.registry import get_registry

    registry = get_registry()
    dataset = registry.create("dataset", registry.create("benchmark", "padchest-specific").dataset)
    source = dataset.write_demo(fake_slurm / "corpus", seed=0, **RUN["demo_options"])
    grid_dir = fake_slurm / "grid"
    command = ["grid", "padchest-specific", *GRID_ARGS, "--csv", source.csv, "--images", source.images,
               "--executor", "slurm", "--no-wait", "--out", grid_dir]
    first = cli(*command)
    assert first.exit_code == 0, first.output
    assert "submitted 4 SLURM job(s): 1001 1002 1003 1004" in first.output
    assert f"mlbench grid status {grid_dir}" in first.output and "comparison.parquet" in " ".join(
        first.output.split())
    again = cli(*command)  # the stand-in sacct says every job still runs
    assert again.exit_code == 0, again.output
    assert "still queued or running from before: 1001 1002 1003 1004" in again.output
    assert "submitted" not in again.output
    assert len(submissions(grid_dir)) == 4

    run_dir = fake_slurm / "run"
    ran = cli("run", "padchest-specific", "--demo", "--demo-option", "n_patients=40", "--demo-option", "image_size=96",
              "--backbones", "resnet10t", "--ensembles", "ctp", "--epochs", "1", "--image-size", "32", "--workers", "1",
              "--bootstrap", "20", "--quiet", "--executor", "slurm", "--no-wait", "--out", run_dir)
    assert ran.exit_code == 0, ran.output
    flat = " ".join(ran.output.split())
    assert "submitted 2 SLURM job(s): 1005 1006" in flat and "sacct -j 1005,1006" in flat
    assert "to print the leaderboard once they are done" in flat
    assert dependency(run_dir, "1006") == "#SBATCH --dependency=afterok:1005"
    assert not RunDir(run_dir).leaderboard_file.exists()


@pytest.mark.parametrize("command", [["grid", "padchest-specific", "--remedies", "uniform", "--demo", "--executor",
                                      "local"], ["run", "padchest-specific", "--demo"]])
def test_no_wait_without_slurm_is_refused_in_one_line_before_any_work(tmp_path, command):
    result = cli(*command, "--no-wait", "--out", tmp_path / "out")
    executor = "local" if "local" in command else "inline"
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: --no-wait: only with --executor slurm (--executor {executor} runs the work inside this command, "
        "which must wait for it)"]
    assert not (tmp_path / "out").exists()


def test_a_two_process_job_trains_as_torch_distributed_ranks(grids, tmp_path):
    """What --gpus-per-node 2 submits (two tasks, RunJob exporting RANK/WORLD_SIZE/MASTER_*), here on CPU/gloo."""
    import dataclasses

    import numpy as np
    import submitit

    from mlbench.execution.executors import RunJob

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
