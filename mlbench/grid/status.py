"""``mlbench grid status``: every cell of a grid directory and its state.

Read from the files the cells and the executors' jobs left (:class:`mlbench.results.griddir.GridDir`,
:mod:`mlbench.execution.jobs`) and from the writer locks (:mod:`mlbench.foundations.dirlock`); a SLURM job's state comes
from the scheduler (:func:`mlbench.execution.executors.slurm_job_states`), passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbench.foundations import dirlock
from mlbench.results.griddir import GridDir
from mlbench.execution.jobs import JobState, latest_jobs, read_failure
from mlbench.contracts.registry import Registry
from mlbench.results.rundir import RunDir


@dataclass
class CellStatus:
    remedy: str
    seed: int
    # done; running (a live writer, a live grid's job, or a SLURM job); pending (not started, or waiting in a
    # live grid); interrupted (started, unfinished, and nobody runs it: killed or stopped); failed
    state: str
    run_dir: Path
    detail: str = ""


STATES = ("done", "running", "pending", "interrupted", "failed")


def grid_status(grid_dir: str | Path, registry: Registry | None = None,
                job_states: dict[str, JobState] | None = None) -> list[CellStatus]:
    """Every cell of GRID_DIR and its state, from the files the cells and jobs left and the writer locks.

    ``job_states`` (job id -> state, from the scheduler) adds each job's state to the detail, and
    makes a cell whose job ended badly failed, with the job's log tail, when no failed.json says so.
    A started, unfinished cell is running while a process holds its writer lock (or its grid's,
    with jobs submitted since that grid started), and interrupted when nobody does; cells with SLURM
    jobs keep the scheduler's word.
    """
    grid_dir = Path(grid_dir)
    grid = GridDir(grid_dir)
    spec = grid.spec()
    jobs = latest_jobs(grid_dir)
    job_states = job_states or {}
    grid_writer = dirlock.holder(grid_dir)
    out = []
    for remedy in spec["remedies"]:
        for seed in spec["seeds"]:
            run_dir = grid.cell_dir(remedy, seed)
            failure = read_failure(run_dir)
            cell_jobs = jobs.get(str(run_dir.resolve()), {})
            submitted = _jobs_text(cell_jobs, job_states)
            states = [job_states[e["job_id"]] for e in cell_jobs.values() if e["job_id"] in job_states]
            rundir = RunDir(run_dir)
            started = rundir.exists()
            done = sorted(rundir.manifest().get("stages", {})) if started else []
            stages = f"stages done: {', '.join(done) or 'none'}"
            writers = dirlock.live_writers(run_dir)
            on_slurm = any(e.get("executor") == "slurm" for e in cell_jobs.values())
            if rundir.finished():
                state, detail = "done", ""
            elif failure:
                state, detail = "failed", failure
            elif any(s.failed for s in states):
                state, detail = "failed", _scheduler_failure(cell_jobs, job_states)
            elif writers:
                state, detail = "running", f"{stages}; by {_writers_text(writers, grid_writer)}"
            elif on_slurm:  # the scheduler's word: its jobs may run where no lock of theirs is seen
                running = started or any(s.state == "RUNNING" for s in states)
                state, detail = ("running", stages) if running else ("pending", "")
            elif grid_writer is not None:
                live_jobs = grid_writer.started_at is not None and any(
                    str(e.get("submitted_at", "")) >= grid_writer.started_at for e in cell_jobs.values())
                if live_jobs:  # a local job of the live grid between its locks (e.g. just started)
                    state, detail = "running", stages
                else:
                    state = "pending"
                    detail = (f"{stages}; " if started else "") + f"waiting for the grid ({grid_writer.describe()})"
            elif started:
                state, detail = "interrupted", f"{stages}; {_nobody_runs(grid_dir, run_dir)}"
            else:
                state, detail = "pending", ""
            detail += (f"; {submitted}" if detail else submitted) if submitted and state != "failed" else ""
            out.append(CellStatus(remedy, int(seed), state, run_dir, detail))
    return out


def _writers_text(writers: list[dirlock.Writer], grid_writer: dirlock.Writer | None) -> str:
    """'the grid (pid 12 on node1, started ...)' for a cell run inside the grid's process; a job by its task:
    'train:resnet10t job (pid ...)'; else '`mlbench run` (pid ...)'."""
    shown = []
    for w in writers:
        if grid_writer is not None and (w.pid, w.host) == (grid_writer.pid, grid_writer.host):
            shown.append(f"the grid ({grid_writer.describe()})")
        elif w.role == "job" and w.task:
            shown.append(f"{w.task} job ({w.describe()})")
        else:
            shown.append(f"{w.by} ({w.describe()})")
    return ", ".join(dict.fromkeys(shown))


def _nobody_runs(grid_dir: Path, run_dir: Path) -> str:
    """Who last wrote the cell (or its grid) and that it is gone."""
    cell, grid = dirlock.last_writer(run_dir), dirlock.last_writer(grid_dir)
    # A cell run inside the grid's process is the grid's doing.
    last = grid if cell is None or (grid is not None and (cell.pid, cell.host) == (grid.pid, grid.host)) else cell
    if last is None or last.pid is None:
        return "no process runs it"
    how = "stopped" if last.released_at else "was killed"
    return f"no process runs it: its last writer, {last.by} ({last.describe()}), {how}"


def _jobs_text(cell_jobs: dict[str, dict[str, Any]], job_states: dict[str, JobState]) -> str:
    """'jobs: train:NAME 123 RUNNING, ensembles 124 PENDING' (the states when known)."""
    if not cell_jobs:
        return ""
    shown = []
    for task, entry in cell_jobs.items():
        state = job_states.get(entry["job_id"])
        shown.append(f"{task} {entry['job_id']}" + (f" {state.state}" if state else ""))
    return "jobs: " + ", ".join(shown)


def _scheduler_failure(cell_jobs: dict[str, dict[str, Any]], job_states: dict[str, JobState]) -> str:
    """Which jobs ended badly, and the log tail of the first with a log (a training job's, usually)."""
    failed = [(task, e["job_id"], job_states[e["job_id"]]) for task, e in cell_jobs.items()
              if e["job_id"] in job_states and job_states[e["job_id"]].failed]
    lines = [f"{task} job {job_id} ended {state.state}" + (f" (log {state.log})" if state.log_tail else "")
             for task, job_id, state in failed]
    tail = next((state.log_tail for _, _, state in failed if state.log_tail), "")
    return "\n".join(lines + ([tail] if tail else []))
