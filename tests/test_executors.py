"""submitit executors: a grid through real local subprocesses equals the inline grid; failures and resubmission.

The SLURM path runs against stand-in `sbatch`/`srun`/`sacct` scripts on PATH (no cluster): the test reads
the sbatch files submitit writes for the dependency and the resources.
"""

import os
import shutil
import stat
import warnings

import pandas as pd
import pytest

from mlbench.executors import (ENSEMBLES_TASK, JOBS, SUBMISSIONS, Resources, Submitter, plan_tasks,
                               submitit_executor)
from mlbench.grid import COMPARISON, FAILURE_FILE, GridError, GridSpec, cell_dir, grid_status, run_grid
from mlbench.io import read_json
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
    job_folders = [p for p in (local.grid_dir / JOBS).iterdir() if p.name.isdigit()]
    assert sorted(p.name for p in job_folders) == sorted(r["job_id"] for r in record)


def test_a_failed_cell_is_reported_and_a_rerun_resubmits_only_it(grids):
    _, local = grids
    grid_dir, before = local.grid_dir, len(submissions(local.grid_dir))
    victim = RunDir(cell_dir(grid_dir, "class-balanced", 0))
    kept = RunDir(cell_dir(grid_dir, "uniform", 0)).backbone_predictions("resnet10t").stat().st_mtime_ns
    # A killed cell: its backbone's work and its leaderboard gone; a file where the checkpoints go makes it fail.
    shutil.rmtree(victim.backbone_dir("resnet10t"))
    victim.leaderboard_file.unlink()
    victim.backbone_dir("resnet10t").write_text("in the way")
    executor = submitit_executor("local", grid_dir, poll_s=0.2)
    with pytest.raises(GridError, match="class-balanced seed 0 did not finish"):
        quietly(run_grid, tiny_spec(grid_dir), executor=executor)
    failure = read_json(victim.path / FAILURE_FILE)
    assert failure["error"].startswith("train:resnet10t job ") and "FileExistsError" in failure["error"]
    assert "Traceback" in failure["log_tail"] and len(failure["log_tail"].splitlines()) <= 30
    states = {c.remedy: c for c in grid_status(grid_dir)}
    assert states["class-balanced"].state == "failed" and "FileExistsError" in states["class-balanced"].detail
    assert states["uniform"].state == "done"
    # The training job failed, so its ensembles job was never submitted.
    assert [r["task"] for r in submissions(grid_dir)[before:]] == ["train:resnet10t"]

    victim.backbone_dir("resnet10t").unlink()
    again = quietly(run_grid, tiny_spec(grid_dir), executor=executor)
    added = submissions(grid_dir)[before + 1:]
    assert [(r["run_dir"], r["task"]) for r in added] == [(str(victim.path), "train:resnet10t"),
                                                          (str(victim.path), ENSEMBLES_TASK)]
    assert not (victim.path / FAILURE_FILE).exists()
    assert RunDir(cell_dir(grid_dir, "uniform", 0)).backbone_predictions("resnet10t").stat().st_mtime_ns == kept
    pd.testing.assert_frame_equal(again.comparison, local.comparison, atol=1e-9, rtol=0)


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
    opts = RunOptions(benchmark="padchest-specific", out=fake_slurm / "run", demo=True,
                      backbones=("resnet10t", "resnet18"), progress=False)
    resources = Resources(gpus_per_node=2, cpus_per_task=8, mem_gb=64, timeout_min=600, partition="gpu",
                          slurm_parameters={"account": "proj"})
    submitter = Submitter("slurm", fake_slurm / JOBS, resources)
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
    assert [r["job_id"] for r in read_json(fake_slurm / JOBS / SUBMISSIONS)] == ["1001", "1002", "1003"]

    # Another invocation finds the jobs still queued or running (sacct says so) and waits for them instead.
    again = Submitter("slurm", fake_slurm / JOBS, resources)
    for task in plan_tasks([opts]):
        again.submit(task)
    assert (fake_slurm / "count").read_text().strip() == "1003"
    assert len(read_json(fake_slurm / JOBS / SUBMISSIONS)) == 3
