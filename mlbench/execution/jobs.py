"""The executors' records: what was submitted, and which job failed (:mod:`mlbench.execution.executors` writes them).

FOLDER is a grid directory, or the run directory of ``mlbench run --executor``; a run directory is
either a grid's cell or that run::

    FOLDER/jobs/JOB_ID/              submitit's pickles and logs of one job
    FOLDER/jobs/submissions.json     every job submitted: run directory, task, job id, executor, time
    RUN_DIR/failed.json              a failed job's error line and the tail of its log

Kept apart from ``executors`` (which imports submitit) so that ``mlbench grid status`` reads them
without it. The file names are :mod:`mlbench.results.griddir`'s constants (the one module besides rundir that
spells file names); how the records are read and written is this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbench.results.griddir import FAILURE_FILE, JOBS_DIR, SUBMISSIONS_FILE
from mlbench.foundations.io import read_json, write_json


@dataclass(frozen=True)
class JobState:
    """The scheduler's word on one submitted job (:func:`mlbench.execution.executors.slurm_job_states` asks sacct)."""

    state: str  # SLURM's: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, ...
    failed: bool = False  # ended without doing its work (nobody may have written failed.json for it)
    log_tail: str = ""
    log: str = ""  # the job's log file


# -- submissions --------------------------------------------------------------------------------------
def jobs_dir(folder: str | Path) -> Path:
    return Path(folder) / JOBS_DIR


def submissions_file(folder: str | Path) -> Path:
    """FOLDER/jobs/submissions.json (a submitter given the jobs folder itself finds it as ``JOBS/SUBMISSIONS_FILE``)."""
    return jobs_dir(folder) / SUBMISSIONS_FILE


def read_submissions(record_file: str | Path) -> list[dict[str, Any]]:
    """Every submission recorded in ``record_file``, oldest first ([] before the first)."""
    path = Path(record_file)
    return read_json(path) if path.is_file() else []


def write_submissions(record_file: str | Path, record: list[dict[str, Any]]) -> None:
    write_json(record_file, record)


def latest_jobs(folder: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Per run directory (resolved), the last submission of each of its tasks, from FOLDER/jobs/submissions.json.

    {run_dir: {task: {"run_dir", "task", "job_id", "executor", "submitted_at"}}}, tasks in submission order.
    """
    latest: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in read_submissions(submissions_file(folder)):
        # Stored as the submitting process saw them (relative or not): one key per directory.
        latest.setdefault(str(Path(entry["run_dir"]).resolve()), {})[entry["task"]] = entry
    return latest


# -- failures -----------------------------------------------------------------------------------------
def failure_file(run_dir: str | Path) -> Path:
    return Path(run_dir) / FAILURE_FILE


def write_failure(run_dir: str | Path, info: dict[str, Any]) -> None:
    write_json(failure_file(run_dir), info)


def clear_failure(run_dir: str | Path) -> None:
    failure_file(run_dir).unlink(missing_ok=True)


def read_failure(run_dir: str | Path) -> str:
    """The recorded failure's error line and log tail, or "" when no job of this run failed."""
    path = failure_file(run_dir)
    if not path.is_file():
        return ""
    info = read_json(path)
    return f"{info.get('error', 'failed')}\n{info.get('log_tail', '')}".strip()
