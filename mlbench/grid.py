"""``mlbench grid``: imbalance remedies side by side on one split and one cache, with paired statistics.

A grid runs every (remedy, seed) as an ordinary run directory holding every backbone of the grid
(so ``explain``, ``compare``, ``submit`` and ``report`` work per cell), all cells sharing one
demo corpus and one preprocessing cache. The first remedy listed is the baseline; every other
remedy is compared with it entry by entry (each backbone, each ensemble) on the same test images,
with paired patient-bootstrap 95% CIs (:mod:`mlbench.paired`), and across seeds as mean ± sd. Verdicts
are Holm-adjusted over every remedy within each (entry, scope, metric)::

    GRID_DIR/
      grid.json                 the grid's spec (a re-run with another spec is refused)
      shared/demo-data/         the demo corpus (--demo), written once
      shared/cache/             the preprocessing cache, built once
      cells/REMEDY/seed-N/      one run directory per remedy and seed
      jobs/                     with --executor local|slurm: submitit's job folders and submissions.json
      comparison.parquet        remedy, baseline, entry, scope, name, metric, difference, ci_low,
                                ci_high, sd, n_seeds, p_value, p_adjusted, verdict

A remedy is a registered sampler (``ml-ros``), a registered loss (``class-balanced``), the
threshold rule ``val-f1``, or several joined by ``+`` (``ml-ros+class-balanced``). A killed grid
resumes: finished cells are reused, an unfinished one resumes inside its run directory.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import pyarrow as pa

from mlbench import dirlock, paired
from mlbench.errors import UserError
from mlbench.io import read_json, write_json, write_parquet
from mlbench.registry import Registry, get_registry
from mlbench.rescoring import compare_stored, load_stored_run
from mlbench.rundir import RunDir
from mlbench.thresholds import RULES

GRID_FILE = "grid.json"
COMPARISON = "comparison.parquet"
CELLS = "cells"
SHARED = "shared"
COMPARISON_COLUMNS = ("remedy", "baseline", "entry") + paired.COLUMNS
TUNED_RULE = "val-f1"  # the one threshold rule besides "fixed"


# RunOptions fields each cell gets from the grid, not from its run options.
GRID_SETS = frozenset({"benchmark", "out", "demo", "demo_dir", "cache", "csv", "images", "backbones", "seed",
                       "sampler", "loss", "threshold_rule", "progress", "only_backbones", "ensemble_only"})


class GridError(UserError):
    """The grid cannot run as asked (the message names the option or file)."""


@dataclass(frozen=True)
class Remedy:
    """What a remedy changes in the recipe; None keeps the benchmark's choice."""

    name: str
    sampler: str | None = None
    loss: str | None = None
    threshold_rule: str | None = None


KIND_PLURALS = {"sampler": "samplers", "loss": "losses", "threshold rule": "threshold rules"}


def parse_remedy(spec: str, registry: Registry) -> Remedy:
    """``ml-ros``, ``class-balanced``, ``val-f1`` or ``+``-joined combinations of them (one of each kind at most)."""
    samplers, losses = registry.names("sampler"), registry.names("loss")
    parts = [p.strip() for p in spec.split("+")]
    if not all(parts):
        raise GridError(f"--remedies {spec}: an empty part; expected names joined by + (e.g. ml-ros+val-f1)")
    found: dict[str, list[str]] = {kind: [] for kind in KIND_PLURALS}
    for part in parts:
        if part in RULES:
            found["threshold rule"].append(part)
        elif part in samplers:
            found["sampler"].append(part)
        elif part in losses:
            found["loss"].append(part)
        else:
            raise GridError(f"--remedies {spec}: '{part}' is neither a sampler ({', '.join(samplers)}), a loss "
                            f"({', '.join(losses)}) nor a threshold rule ({', '.join(RULES)})")
    repeated = next((p for p in parts if parts.count(p) > 1), None)
    if repeated is not None:
        raise GridError(f"--remedies {spec}: '{repeated}' twice in one remedy; list each part once")
    for kind, names in found.items():
        if len(names) > 1:
            raise GridError(f"--remedies {spec}: {len(names)} {KIND_PLURALS[kind]} ({', '.join(names)}) in one "
                            "remedy; a remedy combines at most one sampler, one loss and one threshold rule")
    (sampler, *_), (loss, *_), (rule, *_) = (found[k] or [None] for k in ("sampler", "loss", "threshold rule"))
    return Remedy(spec, sampler, loss, rule)


def canonical_remedy(remedy: Remedy, recipe: Any) -> str:
    """What the remedy changes in ``recipe`` (a Recipe), parts in the order sampler+loss+rule; its own
    choices dropped (``uniform+weighted-bce`` is the recipe itself: ``''``)."""
    parts = [(remedy.sampler, recipe.sampler), (remedy.loss, recipe.loss), (remedy.threshold_rule,
                                                                              recipe.threshold_rule)]
    return "+".join(mine for mine, own in parts if mine is not None and mine != own)


@dataclass
class GridSpec:
    """Everything ``mlbench grid`` can be told; ``run_options`` holds the overrides every cell takes."""

    benchmark: str
    out: Path
    remedies: Sequence[str]
    backbones: Sequence[str] | None = None
    seeds: Sequence[int] = (0,)
    demo: bool = False
    csv: Path | None = None
    images: Path | None = None
    run_options: dict[str, Any] = field(default_factory=dict)  # RunOptions fields: max_epochs, ensembles, ...
    n_boot: int = 1000  # paired bootstrap replicates of the comparison
    progress: bool | str = "auto"

    def identity(self) -> dict[str, Any]:
        """What makes two grids the same grid (paths and progress do not)."""
        return {"benchmark": self.benchmark, "remedies": list(self.remedies),
                "backbones": list(self.backbones) if self.backbones else None, "seeds": [int(s) for s in self.seeds],
                "demo": self.demo, "run_options": {k: _plain(v) for k, v in sorted(self.run_options.items())},
                "n_boot": self.n_boot}


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def folder_name(remedy: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", remedy)


@dataclass(frozen=True)
class Cell:
    """One (remedy, seed) of the grid: an ordinary run directory."""

    remedy: Remedy
    seed: int
    options: Any  # mlbench.runner.RunOptions

    @property
    def run_dir(self) -> Path:
        return Path(self.options.out)

    @property
    def label(self) -> str:
        return f"{self.remedy.name} seed {self.seed}"


def cell_dir(grid_dir: Path, remedy: str, seed: int) -> Path:
    return Path(grid_dir) / CELLS / folder_name(remedy) / f"seed-{seed}"


def plan_grid(spec: GridSpec, registry: Registry | None = None) -> list[Cell]:
    """Every cell's RunOptions, each checked by :func:`mlbench.runner.plan_run` before any work."""
    from mlbench.runner import RunOptions, check_seed, make_recipe, plan_run

    registry = registry or get_registry()
    if not spec.remedies:
        raise GridError("--remedies: expected at least one remedy (the first is the baseline)")
    if len(set(spec.remedies)) != len(spec.remedies):
        raise GridError(f"--remedies {','.join(spec.remedies)}: a remedy is listed twice")
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise GridError(f"--seeds {spec.seeds}: expected distinct seeds")
    for seed in spec.seeds:  # named as the grid's option, before plan_run checks each cell's --seed
        check_seed(seed, "--seeds (seeds=)")
    unknown = set(spec.run_options) - {f.name for f in dataclasses.fields(RunOptions)}
    if unknown:
        raise GridError(f"grid run options {sorted(unknown)}: not options of mlbench run")
    reserved = sorted(set(spec.run_options) & GRID_SETS)
    if reserved:
        raise GridError(f"grid run options {reserved}: set by the grid itself for each cell")
    remedies = [parse_remedy(r, registry) for r in spec.remedies]
    run_options = dict(spec.run_options)
    if spec.backbones is not None and len(spec.backbones) == 1:
        # An ensemble of one model repeats it (CTP) or thresholds it (PTC): the grid compares the model itself.
        run_options.setdefault("ensembles", ())
    # Two spellings of one recipe change (val-f1+ml-ros, ml-ros+val-f1; uniform, the recipe's own sampler) would
    # train the same cells twice and compare them as if they were two remedies.
    own = make_recipe(registry.create("benchmark", spec.benchmark),
                      RunOptions(benchmark=spec.benchmark, demo=spec.demo, backbones=spec.backbones, **run_options))
    seen: dict[str, str] = {}
    for remedy in remedies:
        canonical = canonical_remedy(remedy, own)
        if canonical in seen:
            what = canonical or "the benchmark's own recipe"
            raise GridError(f"--remedies: '{seen[canonical]}' and '{remedy.name}' plan the same cells ({what}); "
                            "list one of them")
        seen[canonical] = remedy.name
    shared = Path(spec.out) / SHARED
    cells = []
    for remedy in remedies:
        for seed in spec.seeds:
            opts = RunOptions(benchmark=spec.benchmark, out=cell_dir(spec.out, remedy.name, seed), demo=spec.demo,
                              demo_dir=shared / "demo-data", cache=shared / "cache", csv=spec.csv,
                              images=spec.images, backbones=spec.backbones, seed=int(seed), sampler=remedy.sampler,
                              loss=remedy.loss, threshold_rule=remedy.threshold_rule, progress=spec.progress,
                              **run_options)
            plan_run(opts, registry)  # every name and option checked now, not hours into the grid
            cells.append(Cell(remedy, int(seed), opts))
    return cells


def is_finished(run_dir: Path) -> bool:
    """A cell whose run completed (leaderboard written and the manifest says finished)."""
    rundir = RunDir(run_dir)
    return rundir.leaderboard_file.is_file() and rundir.exists() and bool(rundir.manifest().get("finished_at"))


def _name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and value.isprintable() and value.strip(".") != ""


def _names_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_name(v) for v in value) and len(set(value)) == len(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# The fields of grid.json (GridSpec.identity) and what each must hold; the file is read as hostile.
SPEC_FIELDS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("benchmark", _name, "a benchmark name"),
    ("remedies", _names_list, "a list of distinct remedy names"),
    ("backbones", lambda v: v is None or _names_list(v), "null or a list of distinct backbone names"),
    ("seeds", lambda v: isinstance(v, list) and bool(v) and all(map(_integer, v)) and len(set(v)) == len(v),
     "a list of distinct integer seeds"),
    ("demo", lambda v: isinstance(v, bool), "true or false"),
    ("run_options", lambda v: isinstance(v, dict), "an object of run options"),
    ("n_boot", lambda v: _integer(v) and v >= 1, "a positive integer"),
)


def read_spec(grid_dir: str | Path) -> dict[str, Any]:
    """GRID_DIR/grid.json, checked field by field; a GridError naming the file and the field otherwise."""
    path = Path(grid_dir) / GRID_FILE
    if not path.is_file():
        raise GridError(f"{path}: no such file; expected a grid directory made by `mlbench grid`")
    try:
        data = read_json(path)
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise GridError(f"{path}: not valid JSON; expected the grid spec `mlbench grid` writes") from None
    if not isinstance(data, dict):
        raise GridError(f"{path}: expected a JSON object (the grid spec `mlbench grid` writes)")
    for key, valid, expected in SPEC_FIELDS:
        if key not in data:
            raise GridError(f"{path}: field '{key}' is missing; expected {expected}")
        if not valid(data[key]):
            raise GridError(f"{path}: field '{key}' must be {expected}")
    return data


def _start(spec: GridSpec) -> None:
    """Write grid.json, or check that GRID_DIR holds this same grid."""
    path = Path(spec.out) / GRID_FILE
    if path.exists():
        old = read_spec(spec.out)
        if old != spec.identity():
            diff = sorted(k for k in set(old) | set(spec.identity()) if old.get(k) != spec.identity().get(k))
            raise GridError(f"{spec.out} holds another grid (differs in: {', '.join(diff)}); choose a new --out")
    else:
        write_json(path, spec.identity())


# grid.json's run options that `mlbench grid` has an option for (what resume_command can spell).
CLI_RUN_OPTIONS = {"max_epochs": "--epochs", "image_size": "--image-size", "ensembles": "--ensembles",
                   "workers": "--workers", "device": "--device", "n_boot": "--bootstrap"}


def resume_command(grid_dir: str | Path, spec: dict[str, Any] | None = None) -> str:
    """The `mlbench grid` command that resumes GRID_DIR, spelled from grid.json (add your --executor).

    Options the command line cannot give (a grid started from Python with other run options) make
    it say so instead; --csv and --images are not recorded in grid.json and are left to fill in.
    """
    import shlex

    spec = read_spec(grid_dir) if spec is None else spec
    options = spec["run_options"]
    plain = (set(options) <= set(CLI_RUN_OPTIONS) and options.get("n_boot", spec["n_boot"]) == spec["n_boot"]
             and all(_integer(options[k]) for k in ("max_epochs", "image_size", "workers") if k in options)
             and _names_list(options.get("ensembles", ["-"])) and _name(options.get("device", "auto")))
    if not plain:
        return f"the same run_grid() call with out={shlex.quote(str(grid_dir))} (grid.json holds its spec)"
    words = ["mlbench", "grid", spec["benchmark"], "--remedies", ",".join(spec["remedies"])]
    if spec["backbones"]:
        words += ["--backbones", ",".join(spec["backbones"])]
    words += ["--seeds", ",".join(str(s) for s in spec["seeds"])]
    words += ["--demo"] if spec["demo"] else []
    for key, flag in CLI_RUN_OPTIONS.items():
        value = spec["n_boot"] if key == "n_boot" else options.get(key)
        if value is not None and not (key == "device" and value == "auto"):
            words += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    command = " ".join(shlex.quote(w) for w in words)
    if not spec["demo"]:
        command += " --csv CSV --images IMAGES"  # the same files as the first time (not recorded)
    return f"{command} --out {shlex.quote(str(grid_dir))}"


@dataclass
class GridResult:
    grid_dir: Path
    cells: list[Cell]
    reused: list[str]  # labels of cells already finished before this invocation
    comparison: pd.DataFrame


Executor = Callable[[list[Cell]], None]


def run_inline(cells: list[Cell]) -> None:
    """Run the cells one after the other in this process."""
    from mlbench.runner import run

    for cell in cells:
        run(cell.options)


def run_grid(spec: GridSpec, *, executor: Executor = run_inline, registry: Registry | None = None,
             say: Callable[[str], None] = lambda _: None) -> GridResult:
    """Plan, run the unfinished cells through ``executor`` and write comparison.parquet."""
    from mlbench.runner import plan_run, prepare

    cells = plan_grid(spec, registry)
    out = Path(spec.out)
    if out.exists() and not out.is_dir():
        raise GridError(f"--out {out}: is a file; expected a grid directory")
    if RunDir(out).exists():
        raise GridError(f"--out {out}: is a run directory (it holds manifest.json); expected a grid directory, "
                        "choose another --out")
    # One grid process per directory: a second identical grid refuses, naming the first (mlbench.dirlock).
    with dirlock.hold(out, "grid"):
        _start(spec)
        todo = [c for c in cells if not is_finished(c.run_dir)]
        reused = [c.label for c in cells if c not in todo]
        if reused:
            say(f"reusing {len(reused)} finished cell(s): {', '.join(reused)}")
        if todo:
            # One corpus and one cache for every cell, made here once before any cell runs in parallel.
            with dirlock.hold(todo[0].run_dir, "run"):
                prepare(plan_run(todo[0].options, registry))
            say(f"{len(todo)} cell(s) to run: {', '.join(c.label for c in todo)}")
            executor(todo)
        missing = [c.label for c in cells if not is_finished(c.run_dir)]
        if missing:
            raise GridError(f"{spec.out}: cells {', '.join(missing)} did not finish; see `mlbench grid status`")
        comparison = compare_cells(cells, spec.remedies[0], n_boot=spec.n_boot)
        write_parquet(out / COMPARISON, pa.Table.from_pandas(comparison, preserve_index=False))
    return GridResult(out, cells, reused, comparison)


# -- comparison ---------------------------------------------------------------------------------------
def compare_cells(cells: list[Cell], baseline: str, *, n_boot: int) -> pd.DataFrame:
    """Every remedy against the baseline, per entry, combined over seeds."""
    stored = {(c.remedy.name, c.seed): load_stored_run(c.run_dir) for c in cells}
    seeds = sorted({c.seed for c in cells})
    tables = []
    for remedy in dict.fromkeys(c.remedy.name for c in cells):
        if remedy == baseline:
            continue
        per_seed = [compare_stored(stored[(baseline, s)], stored[(remedy, s)], n_boot=n_boot) for s in seeds]
        for entry in per_seed[0]:
            combined = paired.combine_seeds([comparisons[entry] for comparisons in per_seed])
            tables.append(combined.table.assign(remedy=remedy, baseline=baseline, entry=entry))
    if not tables:
        return pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    # One family per (entry, scope, metric) over every remedy: k remedies against one baseline are k tests.
    return paired.adjust(pd.concat(tables, ignore_index=True)[list(COMPARISON_COLUMNS)],
                         family=("entry",) + paired.FAMILY)


# -- status -------------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class JobState:
    """The scheduler's word on one submitted job (:func:`mlbench.executors.slurm_job_states` asks sacct)."""

    state: str  # SLURM's: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED, ...
    failed: bool = False  # ended without doing its work (nobody may have written failed.json for it)
    log_tail: str = ""
    log: str = ""  # the job's log file


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
    spec = read_spec(grid_dir)
    jobs = latest_jobs(grid_dir)
    job_states = job_states or {}
    grid_writer = dirlock.holder(grid_dir)
    out = []
    for remedy in spec["remedies"]:
        for seed in spec["seeds"]:
            run_dir = cell_dir(grid_dir, remedy, seed)
            failure = _job_failure(run_dir)
            cell_jobs = jobs.get(str(run_dir.resolve()), {})
            submitted = _jobs_text(cell_jobs, job_states)
            states = [job_states[e["job_id"]] for e in cell_jobs.values() if e["job_id"] in job_states]
            started = RunDir(run_dir).exists()
            done = sorted(RunDir(run_dir).manifest().get("stages", {})) if started else []
            stages = f"stages done: {', '.join(done) or 'none'}"
            writers = dirlock.live_writers(run_dir)
            on_slurm = any(e.get("executor") == "slurm" for e in cell_jobs.values())
            if is_finished(run_dir):
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


FAILURE_FILE = "failed.json"  # written into a cell by an executor whose job failed
JOBS_DIR = "jobs"  # an executor's job folders and its record of submissions, in the grid (or run) directory
SUBMISSIONS_FILE = "submissions.json"


def latest_jobs(folder: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Per run directory (resolved), the last submission of each of its tasks, from FOLDER/jobs/submissions.json.

    {run_dir: {task: {"run_dir", "task", "job_id", "executor", "submitted_at"}}}, tasks in submission order.
    """
    path = Path(folder) / JOBS_DIR / SUBMISSIONS_FILE
    if not path.is_file():
        return {}
    latest: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in read_json(path):
        # Stored as the submitting process saw them (relative or not): one key per directory.
        latest.setdefault(str(Path(entry["run_dir"]).resolve()), {})[entry["task"]] = entry
    return latest


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


def _job_failure(run_dir: Path) -> str:
    path = run_dir / FAILURE_FILE
    if not path.is_file():
        return ""
    info = read_json(path)
    return f"{info.get('error', 'failed')}\n{info.get('log_tail', '')}".strip()
