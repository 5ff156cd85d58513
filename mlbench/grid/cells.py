"""``mlbench grid``: imbalance remedies side by side on one split and one cache, with paired statistics.

A grid runs every (remedy, seed) as an ordinary run directory holding every backbone of the grid
(so ``explain``, ``compare``, ``submit`` and ``report`` work per cell), all cells sharing one
demo corpus and one preprocessing cache. The first remedy listed is the baseline; every other
remedy is compared with it entry by entry (each backbone, each ensemble) on the same test images,
with paired patient-bootstrap 95% CIs (:mod:`mlbench.results.paired`), and across seeds as mean ± sd. Verdicts
are Holm-adjusted over every remedy within each (entry, scope, metric). The comparison's columns are
:data:`COMPARISON_COLUMNS`; where each file of the grid directory lives is :class:`mlbench.results.griddir.GridDir`'s,
what a remedy may say :mod:`mlbench.grid.remedies`', and a cell's state :mod:`mlbench.grid.status`'.

A killed grid resumes: finished cells are reused, an unfinished one resumes inside its run directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import pyarrow as pa

from mlbench.foundations import dirlock
from mlbench.results import paired
from mlbench.results.griddir import GridDir, GridError, is_integer, is_name, is_names_list
from mlbench.contracts.registry import Registry, get_registry
from mlbench.grid.remedies import KINDS, Remedy, canonical_remedy, parse_remedy
from mlbench.results.rescoring import StoredRun, compare_stored, load_stored_run, stored_replicates
from mlbench.results.rundir import RunDir

COMPARISON_COLUMNS = ("remedy", "baseline", "entry") + paired.COLUMNS

# RunOptions fields each cell gets from the grid (or from its remedy), not from its run options.
GRID_SETS = frozenset({"benchmark", "out", "demo", "demo_dir", "cache", "csv", "images", "backbones", "seed",
                       "progress", "only_backbones", "ensemble_only", "trackers"} | {kind.field for kind in KINDS})


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
    trackers: Sequence[str] = ()  # every cell's experiment trackers (like progress: not the grid's identity)

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


@dataclass(frozen=True)
class GridCell:
    """One (remedy, seed) of the grid: an ordinary run directory."""

    remedy: Remedy
    seed: int
    options: Any  # mlbench.training.runner.RunOptions
    # The mlbench.training.runner.RunPlan plan_grid made: the executors run it instead of planning again.
    plan: Any = field(default=None, compare=False, repr=False)

    @property
    def run_dir(self) -> Path:
        return Path(self.options.out)

    @property
    def label(self) -> str:
        return f"{self.remedy.name} seed {self.seed}"


def plan_grid(spec: GridSpec, registry: Registry | None = None) -> list[GridCell]:
    """Every cell's RunOptions, each checked by :func:`mlbench.training.runner.plan_run` before any work."""
    from mlbench.training.runner import RunOptions, check_seed, make_recipe, plan_run, shares_training, training_identity

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
    grid = GridDir(spec.out)
    cells = []
    for remedy in remedies:
        for seed in spec.seeds:
            opts = RunOptions(benchmark=spec.benchmark, out=grid.cell_dir(remedy.name, seed), demo=spec.demo,
                              demo_dir=grid.demo_dir, cache=grid.cache_dir, csv=spec.csv, images=spec.images,
                              backbones=spec.backbones, seed=int(seed), progress=spec.progress,
                              trackers=tuple(spec.trackers),
                              **remedy.options(), **run_options)
            # Every name and option checked now, not hours into the grid; the one plan of this cell.
            plan = plan_run(opts, registry)
            # A remedy acting only after training (an adjuster, val-f1) reuses an earlier cell's training.
            # So does a schedule whose first stages are an earlier cell's whole training (crt after uniform).
            dummy = [1] * len(plan.benchmark.labels)
            twins = [c for c in cells if c.seed == int(seed)]
            twin = next((c for c in twins if training_identity(c.plan.recipe) == training_identity(plan.recipe)),
                        None) or next((c for c in twins if shares_training(c.plan.recipe, plan.recipe, registry,
                                                                            dummy, 2)), None)
            if twin is not None:
                opts = dataclasses.replace(opts, training_twin=twin.options.out)
                plan = plan_run(opts, registry)
            cells.append(GridCell(remedy, int(seed), opts, plan))
    return cells


def _start(spec: GridSpec) -> None:
    """Write the grid's spec, or check that GRID_DIR holds this same grid."""
    grid = GridDir(spec.out)
    if grid.spec_file.exists():
        old = grid.spec()
        if old != spec.identity():
            diff = sorted(k for k in set(old) | set(spec.identity()) if old.get(k) != spec.identity().get(k))
            raise GridError(f"{spec.out} holds another grid (differs in: {', '.join(diff)}); choose a new --out")
    else:
        grid.write_spec(spec.identity())


# The spec's run options that `mlbench grid` has an option for (what resume_command can spell).
CLI_RUN_OPTIONS = {"max_epochs": "--epochs", "image_size": "--image-size", "ensembles": "--ensembles",
                   "workers": "--workers", "device": "--device", "n_boot": "--bootstrap"}
# ... and the on/off switches it has (option -> the flag for True, the flag for False).
CLI_RUN_SWITCHES = {"pretrained": ("--pretrained", "--no-pretrained")}


def resume_command(grid_dir: str | Path, spec: dict[str, Any] | None = None) -> str:
    """The `mlbench grid` command that resumes GRID_DIR, spelled from its spec (add your --executor).

    Options the command line cannot give (a grid started from Python with other run options) make
    it say so instead; --csv and --images are not recorded in the spec and are left to fill in.
    """
    import shlex

    spec = GridDir(grid_dir).spec() if spec is None else spec
    options = spec["run_options"]
    plain = (set(options) <= set(CLI_RUN_OPTIONS) | set(CLI_RUN_SWITCHES)
             and all(isinstance(options[k], bool) for k in CLI_RUN_SWITCHES if k in options)
             and options.get("n_boot", spec["n_boot"]) == spec["n_boot"]
             and all(is_integer(options[k]) for k in ("max_epochs", "image_size", "workers") if k in options)
             and is_names_list(options.get("ensembles", ["-"])) and is_name(options.get("device", "auto")))
    if not plain:
        spec_name = GridDir(grid_dir).spec_file.name
        return f"the same run_grid() call with out={shlex.quote(str(grid_dir))} ({spec_name} holds its spec)"
    words = ["mlbench", "grid", spec["benchmark"], "--remedies", ",".join(spec["remedies"])]
    if spec["backbones"]:
        words += ["--backbones", ",".join(spec["backbones"])]
    words += ["--seeds", ",".join(str(s) for s in spec["seeds"])]
    words += ["--demo"] if spec["demo"] else []
    for key, flag in CLI_RUN_OPTIONS.items():
        value = spec["n_boot"] if key == "n_boot" else options.get(key)
        if value is not None and not (key == "device" and value == "auto"):
            words += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    words += [on if options[key] else off for key, (on, off) in CLI_RUN_SWITCHES.items() if key in options]
    command = " ".join(shlex.quote(w) for w in words)
    if not spec["demo"]:
        command += " --csv CSV --images IMAGES"  # the same files as the first time (not recorded)
    return f"{command} --out {shlex.quote(str(grid_dir))}"


@dataclass
class GridResult:
    grid_dir: Path
    cells: list[GridCell]
    reused: list[str]  # labels of cells already finished before this invocation
    comparison: pd.DataFrame


Executor = Callable[[list[GridCell]], None]


def run_inline(cells: list[GridCell]) -> None:
    """Run the cells one after the other in this process, each from the plan plan_grid made."""
    from mlbench.training.runner import run, run_plan

    for cell in cells:
        if cell.plan is not None:
            run_plan(cell.plan)
        else:  # a cell made by hand, without plan_grid
            run(cell.options)


def run_grid(spec: GridSpec, *, executor: Executor = run_inline, registry: Registry | None = None,
             say: Callable[[str], None] = lambda _: None) -> GridResult:
    """Plan, run the unfinished cells through ``executor`` and write the comparison (GridDir.comparison_file)."""
    from mlbench.training.runner import prepare

    cells = plan_grid(spec, registry)
    out = Path(spec.out)
    if out.exists() and not out.is_dir():
        raise GridError(f"--out {out}: is a file; expected a grid directory")
    if RunDir(out).exists():
        raise GridError(f"--out {out}: is a run directory (it holds {RunDir(out).manifest_file.name}); expected a "
                        "grid directory, choose another --out")
    # One grid process per directory: a second identical grid refuses, naming the first (mlbench.foundations.dirlock).
    with dirlock.hold(out, "grid"):
        _start(spec)
        todo = [c for c in cells if not RunDir(c.run_dir).finished()]
        reused = [c.label for c in cells if c not in todo]
        if reused:
            say(f"reusing {len(reused)} finished cell(s): {', '.join(reused)}")
        if todo:
            # One corpus and one cache for every cell, made here once before any cell runs in parallel.
            with dirlock.hold(todo[0].run_dir, "run"):
                prepare(todo[0].plan)
            say(f"{len(todo)} cell(s) to run: {', '.join(c.label for c in todo)}")
            executor(todo)
        missing = [c.label for c in cells if not RunDir(c.run_dir).finished()]
        if missing:
            raise GridError(f"{spec.out}: cells {', '.join(missing)} did not finish; see `mlbench grid status`")
        comparison = compare_cells(cells, spec.remedies[0], n_boot=spec.n_boot)
        GridDir(out).write_comparison(pa.Table.from_pandas(comparison, preserve_index=False))
    return GridResult(out, cells, reused, comparison)


# -- comparison ---------------------------------------------------------------------------------------
def compare_cells(cells: list[GridCell], baseline: str, *, n_boot: int, use_stored: bool = True) -> pd.DataFrame:
    """Every remedy against the baseline, per entry, combined over seeds.

    Each run entry's replicates are those its cell's metrics stage stored (RunDir.replicates_file) where they
    fit these draws and its predictions (``use_stored``; otherwise, or where not, computed: the same values to
    1e-12). The baseline's runs are read once and what is computed is computed once per seed and entry
    (paired.sharing_replicates); each other remedy's runs are read when compared, so at most
    two remedies' predictions are in memory at a time.
    """
    run_dirs = {(c.remedy.name, c.seed): c.run_dir for c in cells}
    seeds = sorted({c.seed for c in cells})
    base = {s: load_stored_run(run_dirs[(baseline, s)]) for s in seeds}
    tables = []
    # 256 MB: the baseline's replicates of every seed and entry and one remedy's, at 1,000 replicates
    # of 54 labels (about 2 MB per run entry)
    def kept(runs) -> list:  # what the cells' metrics stages kept for these draws (compare_stored's seed 0)
        return [r for run in runs if isinstance(run, StoredRun)  # a run read some other way keeps nothing
                for r in stored_replicates(run, n_boot=n_boot, seed=0)] if use_stored else []

    with paired.sharing_replicates(max_bytes=2**28) as cache, cache.offering(kept(base.values())):
        for remedy in dict.fromkeys(c.remedy.name for c in cells):
            if remedy == baseline:
                continue
            runs = {s: load_stored_run(run_dirs[(remedy, s)]) for s in seeds}
            with cache.offering(kept(runs.values())):
                per_seed = [compare_stored(base[s], runs[s], n_boot=n_boot) for s in seeds]
            for entry in per_seed[0]:
                combined = paired.combine_seeds([comparisons[entry] for comparisons in per_seed])
                tables.append(combined.table.assign(remedy=remedy, baseline=baseline, entry=entry))
    if not tables:
        return pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    # One family per (entry, scope, metric) over every remedy: k remedies against one baseline are k tests.
    return paired.adjust(pd.concat(tables, ignore_index=True)[list(COMPARISON_COLUMNS)],
                         family=("entry",) + paired.FAMILY)
