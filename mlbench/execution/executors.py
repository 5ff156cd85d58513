"""Run a grid's cells (or one run) as submitit jobs: subprocesses on this machine, or SLURM jobs.

Every (run, backbone) is one training job (``only_backbones=(name,)``); each run then gets one
ensembles/metrics job (``ensemble_only=True``) once its training jobs succeeded: on SLURM through
``--dependency=afterok:...``, locally by submitting it when they finished (the local executor has no
dependencies). A job is a :class:`RunJob`, a ``submitit.helpers.Checkpointable``: on preemption or
timeout submitit requeues it and it resumes from the backbone's last finished epoch, because
re-running ``mlbench.training.runner.run`` on a run directory resumes it.

With ``wait=False`` (``--no-wait``, SLURM only) every job is submitted at once, the ensembles jobs
chained by SLURM itself, and :class:`JobsSubmitted` is raised instead of waiting: nothing on the login
node has to outlive the submission. ``mlbench grid status`` then asks sacct for the jobs' states, and
the same command run again resubmits what failed, or writes the results once everything is done.

Every job is recorded under the grid directory (or the run directory, for ``mlbench run``), and a
failed job leaves its error and the tail of its log in its run directory (the records' names and
formats are :mod:`mlbench.execution.jobs`'); ``mlbench grid status`` shows it, and the next invocation removes
it and submits only what is missing (backbones without predictions, runs without a leaderboard).
Without a waiting process, ``mlbench grid status`` reads a failure from sacct and the job's log instead.

Writer locks (:mod:`mlbench.foundations.dirlock`): the driving command holds its grid's or run's directory lock;
each job holds only its own task's lock in its run directory (``RunJob`` calls ``run(..., job=True)``),
so the jobs of one run never refuse each other, while a job whose task is still being written (by an
orphaned job of a killed grid, say) fails at once naming that process.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NoReturn, Sequence

import submitit
from submitit.slurm.slurm import SlurmInfoWatcher

from mlbench.foundations import dirlock
from mlbench.execution import jobs
from mlbench.foundations.errors import UserError
from mlbench.results.griddir import SUBMISSIONS_FILE
from mlbench.execution.jobs import JobState, latest_jobs
from mlbench.results.rundir import RunDir

KINDS = ("local", "slurm")
LOG_TAIL_LINES = 30
DEFAULT_TIMEOUT_MIN = 24 * 60
# SLURM states in which a recorded job will still run: a re-invocation waits for it instead of resubmitting.
LIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"}
# sacct may not list a job for a little while after sbatch returned (accounting lags the controller): a
# job recorded this recently that sacct does not know yet is taken as queued, not submitted twice.
SACCT_GRACE_S = 300
# SLURM states of a job that ended without doing its work.
ENDED_BADLY = {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
ENSEMBLES_TASK = "ensembles"
TRAIN_TASK = "train:"  # + the backbone's name
# The job folder pattern. submitit's local job controller also makes the pattern itself, unformatted, as
# an empty folder (Controller.start_tasks: self.folder.mkdir() before formatting); remove_placeholder
# removes it once the jobs started.
JOB_FOLDER = "%j"


class ExecutorError(UserError):
    """The executor cannot run as asked (the message names the option)."""


class JobsSubmitted(Exception):
    """Not a failure: ``--no-wait`` queued the SLURM jobs and returns without waiting for them.

    ``tasks`` holds every task with its job; ``task.reused`` marks the jobs an earlier invocation had
    submitted and that are still queued or running.
    """

    def __init__(self, tasks: list["Task"], record_file: Path) -> None:
        self.tasks, self.record_file = tasks, record_file
        new = sum(not t.reused for t in tasks)
        super().__init__(f"{new} SLURM job(s) submitted, {len(tasks) - new} still queued or running from before; "
                         f"not waiting for them (see {record_file})")

    @property
    def job_ids(self) -> list[str]:
        return [t.job.job_id for t in self.tasks]


def check_wait(kind: str, wait: bool) -> None:
    """--no-wait leaves the jobs to SLURM; inline runs and local jobs live only as long as this command."""
    if not wait and kind != "slurm":
        raise ExecutorError(f"--no-wait: only with --executor slurm (--executor {kind} runs the work inside this "
                            "command, which must wait for it)")


@dataclass(frozen=True)
class Resources:
    """What each training job asks for; the ensembles job takes the same minus the GPUs."""

    gpus_per_node: int | None = None  # local default: 1 when CUDA is available, else 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    timeout_min: int = DEFAULT_TIMEOUT_MIN
    partition: str | None = None
    slurm_parameters: Mapping[str, str] = field(default_factory=dict)  # extra #SBATCH --KEY=VALUE lines
    parallel: int | None = None  # local only: jobs at once (default: one per GPU slot, else 1)
    poll_s: float | None = None  # seconds between looks at the jobs (default: 1 local, 30 SLURM)


class RunJob(submitit.helpers.Checkpointable):
    """One ``mlbench.training.runner.run`` inside a job; requeued as it is after preemption or timeout (it resumes)."""

    def __init__(self, options: Any) -> None:
        self.options = options

    def __call__(self) -> tuple[str, bool]:
        """The run directory, and whether this process was the writing rank (False on other ranks)."""
        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # one task per GPU: the torch.distributed variables torchrun would set
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        result = run_job(self.options)
        return str(result.run_dir), result.is_main


def run_job(options: Any) -> Any:
    """One task of a run (``options``: the task's out, only_backbones, ensemble_only) from its stored plan.

    The job does not plan again: it reads RUN_DIR/plan.json, written by its driver (:func:`plan_tasks`)
    before the job was submitted; a task made without a driver's plan is planned here, once. Its
    driver holds the directory's writer lock; the job its task's."""
    from mlbench.training.runner import load_plan, plan_run, run_plan

    if RunDir(options.out).plan_file.is_file():
        plan = load_plan(options.out, only_backbones=options.only_backbones, ensemble_only=options.ensemble_only)
    else:
        plan = plan_run(options)
    return run_plan(plan, job=True)


@dataclass
class Task:
    """One job to run: a backbone's training, or a run's ensembles after its training tasks."""

    run_dir: Path
    name: str  # "train:BACKBONE" or "ensembles"
    options: Any
    needs: list["Task"] = field(default_factory=list)
    job: Any = None
    outcome: str = "waiting"  # waiting, submitted, done, failed, skipped
    reused: bool = False  # its job is an earlier invocation's, still queued or running on SLURM

    @property
    def label(self) -> str:
        return f"{self.run_dir} {self.name}"


def plan_tasks(plans: Sequence[Any]) -> list[Task]:
    """Training tasks for every backbone still without predictions, then each run's ensembles task.

    ``plans``: each run's :class:`mlbench.training.runner.RunPlan` (a RunOptions is planned here, once). Each
    plan is stored in its run directory (plan.json): the jobs read it instead of planning again."""
    from mlbench.training.runner import RunOptions, plan_run, store_plan

    tasks = []
    for item in plans:
        plan = plan_run(item) if isinstance(item, RunOptions) else item
        store_plan(plan)
        rundir, backbones = plan.rundir, plan.recipe.backbones
        opts = dataclasses.replace(plan.options, out=rundir.path)
        train = [Task(rundir.path, TRAIN_TASK + b, dataclasses.replace(opts, only_backbones=(b,), ensemble_only=False))
                 for b in backbones if not rundir.backbone_predictions(b).exists()]
        tasks += train
        tasks.append(Task(rundir.path, ENSEMBLES_TASK, dataclasses.replace(opts, only_backbones=None,
                                                                             ensemble_only=True), needs=train))
    return tasks


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class Submitter:
    """Submits tasks through one submitit executor kind and records every submission."""

    def __init__(self, kind: str, folder: Path, resources: Resources, wait: bool = True) -> None:
        if kind not in KINDS:
            raise ExecutorError(f"--executor {kind}: expected one of inline, {', '.join(KINDS)}")
        check_wait(kind, wait)
        self.kind, self.folder, self.resources, self.wait = kind, Path(folder), resources, wait
        # folder: the grid's (or run's) jobs folder (mlbench.execution.jobs.jobs_dir); the record sits inside it.
        self.record_file = self.folder / SUBMISSIONS_FILE
        self.record: list[dict[str, Any]] = jobs.read_submissions(self.record_file)
        gpus = resources.gpus_per_node
        if kind == "local":
            gpus = (1 if _cuda_count() else 0) if gpus is None else gpus
            available = _cuda_count()
            if gpus > available:
                raise ExecutorError(f"--gpus-per-node {gpus}: this machine has {available} CUDA device(s)")
            slots = max(1, available // gpus) if gpus else 1
            self.parallel = resources.parallel or slots
            if gpus and self.parallel > slots:
                raise ExecutorError(f"--parallel {self.parallel}: {available} GPU(s) give {slots} job(s) of "
                                    f"{gpus} GPU(s) at once")
        else:
            # sacct too: without it a re-invocation cannot tell a queued job from a failed one.
            missing = [tool for tool in ("sbatch", "srun", "sacct") if shutil.which(tool) is None]
            if missing:
                raise ExecutorError(f"--executor slurm: no {' or '.join(missing)} on PATH; run on a SLURM login "
                                    "node, or use --executor local")
            self.parallel = 0  # SLURM queues everything; the scheduler decides
        self.gpus = gpus or 0
        self.poll_s = resources.poll_s if resources.poll_s is not None else (1.0 if kind == "local" else 30.0)

    # -- the submitit executor for one job ------------------------------------------------------------
    def executor(self, task: Task, slot: int = 0) -> submitit.Executor:
        r = self.resources
        gpus = 0 if task.name == ENSEMBLES_TASK else self.gpus
        tasks_per_node = max(1, gpus)  # one process per GPU (torch.distributed inside the job)
        if self.kind == "local":
            ex = submitit.LocalExecutor(folder=self.folder / JOB_FOLDER)
            ex.update_parameters(timeout_min=r.timeout_min, gpus_per_node=gpus, tasks_per_node=tasks_per_node,
                                 visible_gpus=tuple(range(slot * self.gpus, slot * self.gpus + gpus)))
            return ex
        ex = submitit.AutoExecutor(folder=self.folder / JOB_FOLDER, cluster="slurm")
        extra = dict(r.slurm_parameters)
        if task.needs:
            # afterok: run only once every training job succeeded; a failed one cancels this job.
            extra.update(dependency="afterok:" + ":".join(t.job.job_id for t in task.needs),
                         **{"kill-on-invalid-dep": "yes"})
        where = f"{task.run_dir.parent.name}-{task.run_dir.name}"  # a grid cell: REMEDY-seed-N
        ex.update_parameters(name=f"mlbench-{where}-{task.name.replace(':', '-')}",
                             timeout_min=r.timeout_min, gpus_per_node=gpus or None, tasks_per_node=tasks_per_node,
                             cpus_per_task=r.cpus_per_task, mem_gb=r.mem_gb, slurm_partition=r.partition,
                             slurm_additional_parameters=extra or None)
        return ex

    def submit(self, task: Task, slot: int = 0) -> None:
        """Submit the task's job, unless it took a live job of an earlier invocation (adopt_live_jobs)."""
        if not task.reused:
            task.job = self.executor(task, slot).submit(RunJob(task.options))
            self.record.append({"run_dir": str(task.run_dir), "task": task.name, "job_id": task.job.job_id,
                                "executor": self.kind,
                                "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
            jobs.write_submissions(self.record_file, self.record)
        task.outcome = "submitted"

    def adopt_live_jobs(self, tasks: list[Task], say: Callable[[str], None] = lambda _: None) -> None:
        """Tasks whose last SLURM job (an earlier invocation's) is still queued or running take it, not a new one.

        One sacct call for all. A dependent task keeps its old job only if all its training tasks kept
        theirs: an old ensembles job waits on the old job ids, not on resubmitted ones.
        """
        if self.kind != "slurm":
            return  # local jobs of an earlier invocation were cancelled when it ended
        last = {(str(Path(e["run_dir"]).resolve()), e["task"]): e for e in self.record if e["executor"] == "slurm"}
        entries = {id(t): last.get((str(t.run_dir.resolve()), t.name)) for t in tasks}
        states = slurm_states(e["job_id"] for e in entries.values() if e)
        now = datetime.now(timezone.utc)
        for task in tasks:  # training tasks come before the ensembles task that needs them
            entry = entries[id(task)]
            job_id = entry["job_id"] if entry else None
            state = states.get(job_id, "UNKNOWN") if job_id else ""
            just_submitted = state == "UNKNOWN" and (
                now - datetime.fromisoformat(entry["submitted_at"])).total_seconds() < SACCT_GRACE_S
            if (state in LIVE_STATES or just_submitted) and all(t.reused for t in task.needs):
                task.job, task.reused = submitit.SlurmJob(folder=self.folder / JOB_FOLDER, job_id=job_id), True
            elif state in ENDED_BADLY:
                say(f"{task.label}: its job {job_id} ended {state}; submitting it again")

    def remove_placeholder(self) -> None:
        """The empty literal ``%j`` folder submitit's local controllers leave (see JOB_FOLDER)."""
        placeholder = self.folder / JOB_FOLDER
        if placeholder.is_dir() and not any(placeholder.iterdir()):
            placeholder.rmdir()


def slurm_states(job_ids: Iterable[str]) -> dict[str, str]:
    """sacct's state of each job, one call for all: PENDING, RUNNING, COMPLETED, FAILED, ... ({} without sacct).

    A fresh watcher: submitit's shared one (behind ``SlurmJob.state``) keeps states for minutes.
    """
    job_ids = sorted(set(job_ids))
    if not job_ids or shutil.which("sacct") is None:
        return {}
    watcher = SlurmInfoWatcher()
    for job_id in job_ids:
        watcher.register_job(job_id)
    watcher.update()  # an sacct that fails is logged by submitit; its jobs read UNKNOWN
    # "CANCELLED by 1234" is CANCELLED.
    return {job_id: watcher.get_state(job_id, mode="cache").split()[0].upper() for job_id in job_ids}


def slurm_job_states(folder: str | Path) -> dict[str, JobState] | None:
    """The state of the last SLURM job of every task of FOLDER's unfinished runs, for ``mlbench grid status``.

    FOLDER is a grid directory (or a run directory) holding ``jobs/submissions.json``. A job that ended
    badly (FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, ...) without its work being done comes with the
    tail of its log: with ``--no-wait`` no process is there to write failed.json. Returns {} when no
    SLURM job is recorded, None when some are but sacct is not on PATH.
    """
    jobs_dir = jobs.jobs_dir(folder)
    asked: dict[str, tuple[Path, str]] = {}
    for run_dir, tasks in latest_jobs(folder).items():
        if not RunDir(run_dir).finished():
            asked.update({e["job_id"]: (Path(run_dir), task) for task, e in tasks.items() if e["executor"] == "slurm"})
    if not asked:
        return {}
    if shutil.which("sacct") is None:
        return None
    states = slurm_states(asked)
    out = {}
    for job_id, (run_dir, task) in asked.items():
        state = states.get(job_id, "UNKNOWN")
        if state in ENDED_BADLY and not _work_done(run_dir, task):
            job = submitit.SlurmJob(folder=jobs_dir / JOB_FOLDER, job_id=job_id)
            log = _tail(job.stderr()) or _tail(job.stdout())
            out[job_id] = JobState(state, failed=True, log_tail=log, log=str(job.paths.stderr))
        else:
            out[job_id] = JobState(state)
    return out


def _work_done(run_dir: Path, task: str) -> bool:
    """A training task whose backbone has predictions needs no job any more (a later step may still fail)."""
    if task.startswith(TRAIN_TASK):
        return RunDir(run_dir).backbone_predictions(task.removeprefix(TRAIN_TASK)).exists()
    return RunDir(run_dir).finished()


def _tail(text: str | None, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


def record_failure(task: Task) -> None:
    """failed.json in the task's run directory: one error line and the tail of the job's log."""
    job = task.job
    log = _tail(job.stderr()) or _tail(job.stdout())
    last = next((line.strip() for line in reversed(log.splitlines()) if line.strip()), "")
    if "Traceback (most recent call last)" in log:  # our code raised: its last line says what
        reason = last
    else:  # killed, out of memory, cancelled: no traceback of ours, only the scheduler's state
        reason = f"ended without a result (state {job.state})"
    jobs.write_failure(task.run_dir, {
        "error": f"{task.name} job {job.job_id} failed: {reason}", "log_tail": log, "task": task.name,
        "job_id": job.job_id, "log": str(job.paths.stderr), "failed_at": datetime.now(timezone.utc).isoformat(
            timespec="seconds")})


def run_tasks(tasks: list[Task], submitter: Submitter, say: Callable[[str], None] = lambda _: None) -> list[Task]:
    """Submit every task when its training tasks succeeded (or at once, with dependencies, on SLURM); wait.

    Returns the failed tasks. Interrupted (Ctrl-C), local jobs are cancelled; SLURM jobs keep running
    and a re-invocation waits for them instead of submitting them again.
    """
    slots: dict[int, Task | None] = {i: None for i in range(submitter.parallel)}
    submitter.adopt_live_jobs(tasks, say)
    try:
        while True:
            for task in tasks:
                if task.outcome == "submitted" and task.job.done():
                    _collect(task, say)
                    for slot, holder in slots.items():
                        if holder is task:
                            slots[slot] = None
            for task in tasks:
                if task.outcome != "waiting":
                    continue
                if any(t.outcome in ("failed", "skipped") for t in task.needs):
                    task.outcome = "skipped"  # its run already failed and says why
                    continue
                if submitter.kind == "slurm":
                    if all(t.outcome in ("submitted", "done") for t in task.needs):
                        submitter.submit(task)
                        _announce(task, say)
                elif all(t.outcome == "done" for t in task.needs):
                    free = next((s for s, holder in slots.items() if holder is None), None)
                    if free is None:
                        break
                    submitter.submit(task, free)
                    slots[free] = task
                    _announce(task, say)
            if all(t.outcome in ("done", "failed", "skipped") for t in tasks):
                return [t for t in tasks if t.outcome == "failed"]
            time.sleep(submitter.poll_s)
    except BaseException as stop:
        if submitter.kind == "local":  # the jobs die with the command that waits on them
            for task in tasks:
                if task.outcome == "submitted":
                    task.job.cancel(check=False)
        elif isinstance(stop, KeyboardInterrupt):
            say(f"stopped waiting; SLURM jobs keep running (see {submitter.record_file}); "
                "run the same command again to wait for them")
        raise
    finally:
        submitter.remove_placeholder()  # every local controller has started by now (or was cancelled)


def submit_without_waiting(tasks: list[Task], submitter: Submitter,
                           say: Callable[[str], None] = lambda _: None) -> NoReturn:
    """SLURM, ``--no-wait``: every task's job now (or its live earlier one), then raise :class:`JobsSubmitted`.

    The ensembles jobs need no waiting process: SLURM starts each once its training jobs succeeded
    (``afterok``) and cancels it when one failed.
    """
    assert submitter.kind == "slurm" and not submitter.wait
    submitter.adopt_live_jobs(tasks, say)
    for task in tasks:  # in plan order: each training job has its id before the ensembles job names it
        submitter.submit(task)
        _announce(task, say)
    submitter.remove_placeholder()
    raise JobsSubmitted(tasks, submitter.record_file)


def _announce(task: Task, say: Callable[[str], None]) -> None:
    if task.reused:
        say(f"still queued or running from before: {task.label}: job {task.job.job_id}")
    else:
        say(f"submitted {task.label}: job {task.job.job_id}")


def _collect(task: Task, say: Callable[[str], None]) -> None:
    # What a job did is read from the files it writes into its run directory, never from submitit's
    # result pickle: a grid directory may come from elsewhere, and unpickling a file in it runs code.
    if _work_done(task.run_dir, task.name):
        task.outcome = "done"
        return
    task.outcome = "failed"
    if task.name == ENSEMBLES_TASK and task.job.state.upper().startswith("CANCELLED") and any(
            t.outcome == "failed" for t in task.needs):
        return  # cancelled by SLURM because a training job failed; that one wrote failed.json
    record_failure(task)
    say(f"failed {task.label}: job {task.job.job_id}; see {jobs.failure_file(task.run_dir)}")


def _clear_failures(run_dirs: Sequence[Path]) -> None:
    for run_dir in run_dirs:
        jobs.clear_failure(run_dir)


def submitit_executor(kind: str, grid_dir: Path, say: Callable[[str], None] = lambda _: None, wait: bool = True,
                      **resources: Any) -> Callable[[list[Any]], None]:
    """An executor for :func:`mlbench.grid.cells.run_grid`: every unfinished cell's jobs, under GRID_DIR/jobs.

    A cell is anything with ``run_dir`` and ``options`` (a :class:`mlbench.grid.cells.GridCell`): this module
    does not import the grid, so that ``mlbench run --executor`` does not depend on it.

    ``wait=False`` (SLURM only): it raises :class:`JobsSubmitted` through run_grid once the jobs are
    queued; run_grid run again later writes the comparison when every cell is done.
    """
    submitter = Submitter(kind, jobs.jobs_dir(grid_dir), Resources(**resources), wait=wait)

    def execute(cells: list[Any]) -> None:
        _clear_failures([c.run_dir for c in cells])  # stale: these cells are submitted again now
        # A grid's cells carry the plan plan_grid made (``plan``); anything else is planned once here.
        tasks = plan_tasks([getattr(c, "plan", None) or c.options for c in cells if not RunDir(c.run_dir).finished()])
        if not wait:
            submit_without_waiting(tasks, submitter, say)
        run_tasks(tasks, submitter, say)  # failures are in the cells' failed.json; run_grid names them

    return execute


def run_with_executor(opts: Any, kind: str, say: Callable[[str], None] = lambda _: None, wait: bool = True,
                      **resources: Any):
    """``mlbench run --executor local|slurm``: one job per backbone, then the ensembles job, under RUN_DIR/jobs.

    ``wait=False`` (SLURM only) raises :class:`JobsSubmitted` once the jobs are queued, unless the run
    is finished: then, as with waiting, it returns the run's result.
    """
    from mlbench.training.runner import RunError, RunResult, plan_run, prepare

    if opts.only_backbones or opts.ensemble_only:
        raise ExecutorError("--executor: splits the run into jobs itself; drop --only-backbone/--ensemble-only")
    plan = plan_run(opts)
    submitter = Submitter(kind, jobs.jobs_dir(plan.rundir.path), Resources(**resources), wait=wait)
    # This command drives the run: it holds the directory's writer lock, each job its own task's.
    with dirlock.hold(plan.rundir.path, "run"):
        if not plan.rundir.finished():
            prepare(plan)  # corpus, split and cache once, before the jobs start side by side
            _clear_failures([plan.rundir.path])
            tasks = plan_tasks([plan])
            if not wait:
                submit_without_waiting(tasks, submitter, say)
            failed = run_tasks(tasks, submitter, say)
            if failed or not plan.rundir.finished():
                raise RunError(f"{plan.rundir.path}: the run did not finish; see {jobs.failure_file(plan.rundir.path)}")
    return RunResult(plan.rundir.path, RunDir(plan.rundir.path).leaderboard().to_pandas(),
                     RunDir(plan.rundir.path).manifest())
