"""``mlbench reproduce BUNDLE --csv LABELFILE --images DIR --out RUN_DIR``: train a bundle's recipe again, compare.

A run bundle records the whole recipe of its run (:mod:`mlbench.judging.bundle`). A keeper re-runs
that recipe on their own copy of the data and asks whether the same numbers come out, not
bit for bit (another GPU, another torch) but within the test split's own sampling noise:

1. refuse, before anything is trained, a bundle that cannot be re-run here: an external one (no
   recipe), one whose benchmark is not installed at its version, or one whose plugins are not
   installed at the versions its environment records; then everything ``mlbench run`` checks
   (:func:`mlbench.training.runner.plan_run`), the split the keeper's label file gives (the run's
   split hash) and the bundle's test predictions (they must cover that split);
2. run the bundle's recipe, exactly: :class:`~mlbench.training.runner.RunOptions` carries the whole
   recipe (``recipe=``), so fields no option names (lr, patience, head units ...) are the run's
   too; a second invocation on the same ``--out`` resumes;
3. compare the reproduction with the bundle's predictions on the same test patients: paired
   patient-bootstrap differences, reproduction minus bundle (:func:`mlbench.results.rescoring.compare_stored`).
   A macro metric (AUC, AUPRC, F1) is *reproduced* when 0 lies in the 95% interval of its
   difference; the bundle is reproduced when every entry's macro AUC is.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from mlbench.contracts.registry import PluginError, Registry, get_registry
from mlbench.data import DataSource
from mlbench.demo import is_synthetic
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import write_json
from mlbench.foundations.paths import shown
from mlbench.judging import submit
from mlbench.judging.bundle import ENVIRONMENT, Bundle, distribution_files, open_bundle
from mlbench.judging.verify import lay_out
from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.results.metrics import MetricWarning
from mlbench.results.rescoring import StoredRun, StoredRunError, bootstrap_settings, compare_stored, load_stored_run
from mlbench.results.rundir import MANIFEST, RunDir, RunDirError, recipe_from_dict
from mlbench.training.runner import (INT_RANGES, RunOptions, check_int, plan_run, plugin_versions, plugins_used,
                                     run)

FORMAT = "mlbench-reproduction"
FORMAT_VERSION = 1
DEFAULT_N_BOOT = 1000
METRICS = ("auc", "auprc", "f1")
DECIDING_METRIC = "auc"  # the bundle is reproduced when every entry's macro value of this metric is
REPRODUCED, NOT_REPRODUCED, UNDEFINED = "reproduced", "not reproduced", "undefined"
SOFTWARE = ("python", "torch", "timm", "mlbench")


class ReproduceError(UserError):
    """The bundle cannot be reproduced here, or the keeper's command is wrong (one line saying which)."""


@dataclass
class Plan:
    """What :func:`plan_reproduction` checked: the bundle, the re-run's options and the keeper's split."""

    bundle: Bundle
    options: RunOptions
    split: Any  # mlbench.data.splits.BenchmarkSplit from the keeper's label file
    notes: list[str] = field(default_factory=list)


@dataclass
class Reproduction:
    """What ``reproduce`` found. ``rows``: per entry and macro metric, the paired difference
    (reproduction - bundle) with its 95% CI and verdict; ``max_abs_difference``: per entry, the largest
    |p_reproduction - p_bundle| over the test images and labels."""

    bundle: Path
    bundle_sha256: str
    run_dir: Path
    benchmark: str
    benchmark_version: str
    run_id: str  # the bundle's run
    reproduction_run_id: str
    n_test: int
    n_boot: int
    seed: int
    rows: pd.DataFrame
    max_abs_difference: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        deciding = self.rows[self.rows["metric"] == DECIDING_METRIC]
        return len(deciding) > 0 and bool((deciding["verdict"] == REPRODUCED).all())

    @property
    def failures(self) -> list[str]:
        """One line per entry whose macro AUC was not reproduced."""
        out = []
        for r in self.rows[(self.rows["metric"] == DECIDING_METRIC) & (self.rows["verdict"] != REPRODUCED)].itertuples():
            out.append(f"{r.entry} macro {DECIDING_METRIC}: {r.verdict} (difference {r.difference:+.4f}, 95% CI "
                       f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}])")
        return out

    def as_dict(self) -> dict[str, Any]:
        rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
                for row in self.rows.to_dict(orient="records")]
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "bundle": str(self.bundle),
                "bundle_sha256": self.bundle_sha256, "run_dir": str(self.run_dir), "benchmark": self.benchmark,
                "benchmark_version": self.benchmark_version, "run_id": self.run_id,
                "reproduction_run_id": self.reproduction_run_id, "reproduced": self.reproduced,
                "n_test": self.n_test, "bootstrap": {"n_boot": self.n_boot, "seed": self.seed, "paired": True},
                "difference": "reproduction minus bundle", "rows": rows,
                "max_abs_difference": self.max_abs_difference, "notes": list(self.notes)}

    def write(self, path: str | Path) -> Path:
        write_json(path, self.as_dict())
        return Path(path)


# -- the checks before any training ---------------------------------------------------------------------
def check_files(csv: Path, images: Path, json_file: Path | None) -> None:
    if not Path(csv).is_file():
        raise ReproduceError(f"--csv {csv}: no such file; expected the benchmark's label file")
    if not Path(images).is_dir():
        raise ReproduceError(f"--images {images}: no such folder; expected the folder the label file's image "
                             "paths are relative to")
    if json_file is not None and Path(json_file).is_dir():
        raise ReproduceError(f"--json {json_file}: is a folder; expected a file name to write the comparison to")


def check_benchmark(bundle: Bundle, registry: Registry) -> Any:
    """The bundle's benchmark, installed at the bundle's version."""
    m = bundle.manifest
    try:
        bench = registry.create("benchmark", m["benchmark"])
    except PluginError:
        raise ReproduceError(f"{bundle.path}: the run's benchmark {shown(m['benchmark'])} is not installed here; "
                             "install its plugin to reproduce it") from None
    if bench.version != m["benchmark_version"]:
        raise ReproduceError(f"{bundle.path}: the run used {bench.name} version {shown(m['benchmark_version'])}, "
                             f"installed here is {bench.version}; install that version to reproduce it")
    return bench


def check_plugins(bundle: Bundle, registry: Registry, used: dict[str, list[str]]) -> list[str]:
    """Every plugin the environment records, installed here from the same distribution at the same version,
    and every plugin the recipe uses among them; returns notes on same-version files that differ."""
    where = f"{bundle.path}: {ENVIRONMENT}"
    recorded: dict[tuple[str, str], dict[str, Any]] = {}
    for i, record in enumerate(bundle.environment["plugins"], start=1):
        if not all(isinstance(record.get(k), str) for k in ("kind", "name")) or not all(
                record.get(k) is None or isinstance(record.get(k), str) for k in ("distribution", "version")):
            raise ReproduceError(f"{where}: plugin {i} is not {{kind, name, distribution, version}} as strings")
        recorded[(record["kind"], record["name"])] = record
    notes, hashed = [], {}
    for (kind, name), record in recorded.items():
        want = f"{record['distribution']}=={record['version']}"
        try:
            entry = registry.get(kind, name)
        except PluginError:
            raise ReproduceError(f"{where}: the run used {kind} {shown(name)} from {shown(want)}, which is not "
                                 f"installed here; install {shown(want)} to reproduce it") from None
        if (entry.package, entry.version) != (record["distribution"], record["version"]):
            raise ReproduceError(f"{where}: the run used {kind} {shown(name)} from {shown(want)}, installed here "
                                 f"is {entry.package or entry.plugin}=={entry.version or 'unknown'}; install {shown(want)} to reproduce it")
        if record.get("files_sha256") is not None and entry.package is not None:
            if entry.package not in hashed:
                hashed[entry.package] = distribution_files(entry.package)[0]
            if hashed[entry.package] != record["files_sha256"]:
                notes.append(f"{entry.package} {entry.version} is installed, but its files differ from the run's "
                             "(an edited or rebuilt install): results may differ")
    for kind, names in used.items():
        for name in names:
            if (kind, name) not in recorded:
                raise ReproduceError(f"{where}: records no version of {kind} {shown(name)}, which the run's recipe "
                                     "uses; expected every plugin of the run")
    return sorted(set(notes))


def software_notes(bundle: Bundle, registry: Registry) -> list[str]:
    """The run's python, torch, timm and mlbench against this machine's (a difference is a note: the
    comparison's intervals are what judge it)."""
    versions = bundle.manifest.get("versions") if isinstance(bundle.manifest.get("versions"), dict) else {}
    here = plugin_versions(registry, {})
    return [f"the run used {name} {shown(versions[name])}, installed here is {here[name]}"
            for name in SOFTWARE if name in versions and versions[name] != here[name]]


def plan_reproduction(path: str | Path, csv: str | Path, images: str | Path, out: str | Path, *,
                      device: str = "auto", workers: int | None = None, progress: bool | str = "auto",
                      json_file: str | Path | None = None, registry: Registry | None = None) -> Plan:
    """Every check that costs no training, cheapest first (module docstring); the re-run's options."""
    csv, images, out = Path(csv), Path(images), Path(out)
    check_files(csv, images, None if json_file is None else Path(json_file))
    registry = registry or get_registry()
    bundle = open_bundle(path)
    if bundle.kind != "run":
        raise ReproduceError(f"{bundle.path}: is an external bundle (predictions made outside mlbench): it records "
                             "no recipe to run again; score it with mlbench score instead")
    bench = check_benchmark(bundle, registry)
    try:
        recipe = recipe_from_dict(bundle.manifest.get("recipe"), f"{bundle.path}: {MANIFEST}")
    except RunDirError as exc:
        raise ReproduceError(str(exc)) from None
    notes = check_plugins(bundle, registry, plugins_used(bench, recipe))
    notes += software_notes(bundle, registry)
    n_boot, _ = _bootstrap(bundle)
    # The recipe whole, and the run's bootstrap: the reproduction's own rows are made as the bundle's were.
    try:
        dataset_options = submit.run_dataset_options(bundle.manifest, f"{bundle.path}: {MANIFEST}")
    except UserError as exc:
        raise ReproduceError(str(exc)) from None
    options = RunOptions(benchmark=bench.name, out=out, csv=csv, images=images, recipe=recipe, n_boot=n_boot,
                         device=device, workers=workers, progress=progress, dataset_options=dataset_options or None)
    plan_run(options, registry)  # names, options, device and --out, as `mlbench run` checks them
    split = submit.canonical_split(bench.name, DataSource(csv, images), registry, dataset_options)
    claimed = bundle.manifest.get("split_hash")
    if claimed != split.summary["split_hash"]:
        raise ReproduceError(f"--csv {csv}: gives split {split.summary['split_hash'][:12]}..., the bundle's run "
                             f"used {str(claimed)[:12]}...; reproduce on the label file the run was made on")
    if is_synthetic(split.summary.get("dataset_kind")):
        notes.append("SYNTHETIC DEMO DATA: the reproduction exercises the method, it says nothing about real data")
    return Plan(bundle, options, split, notes)


def _bootstrap(bundle: Bundle) -> tuple[int, int]:
    where = f"{bundle.path}: {MANIFEST}: bootstrap"
    try:
        n_boot, seed = bootstrap_settings(bundle.manifest)
    except (TypeError, ValueError, AttributeError):
        raise ReproduceError(f"{where}: expected n_boot and seed as integers") from None
    return check_int(n_boot, *INT_RANGES["n_boot"], f"{where}.n_boot"), seed


def stored_bundle(plan: Plan) -> StoredRun:
    """The bundle's run as a run directory in a scratch folder, with the keeper's split, read back: its test
    predictions must cover that split (checked before any training)."""
    with tempfile.TemporaryDirectory(prefix="mlbench-reproduce-") as scratch:
        rundir = lay_out(plan.bundle, RunDir(Path(scratch) / "bundle"), plan.split)
        try:
            return load_stored_run(rundir.path)
        except StoredRunError as exc:
            raise ReproduceError(f"{plan.bundle.path}: its test predictions do not cover the split of --csv "
                                 f"{plan.options.csv}: {exc.problems[0]}") from None


# -- the reproduction --------------------------------------------------------------------------------------
def reproduce_bundle(path: str | Path, csv: str | Path, images: str | Path, out: str | Path, *,
                     execute: Callable[[RunOptions], Any] | None = None, n_boot: int = DEFAULT_N_BOOT, seed: int = 0,
                     device: str = "auto", workers: int | None = None, progress: bool | str = "auto",
                     json_file: str | Path | None = None, registry: Registry | None = None) -> Reproduction:
    """Check, re-run the bundle's recipe into ``out`` (``execute(options)``, default :func:`runner.run`), compare.

    ``n_boot`` and ``seed``: the comparison's paired bootstrap. ``json_file``: the comparison also written there."""
    plan = plan_reproduction(path, csv, images, out, device=device, workers=workers, progress=progress,
                             json_file=json_file, registry=registry)
    claimed = stored_bundle(plan)
    result = (execute or (lambda options: run(options, registry)))(plan.options)
    reproduction = compare(plan, claimed, Path(result.run_dir), n_boot=n_boot, seed=seed)
    if json_file is not None:
        reproduction.write(json_file)
    return reproduction


def compare(plan: Plan, claimed: StoredRun, run_dir: Path, *, n_boot: int, seed: int) -> Reproduction:
    """The reproduction in ``run_dir`` against the bundle's stored run, on the same test images."""
    bundle = plan.bundle
    rundir = RunDir(run_dir)
    m = rundir.manifest()
    if m.get("split_hash") != bundle.manifest.get("split_hash"):  # plan_reproduction checked the label file
        raise ReproduceError(f"{run_dir}: the reproduction's split {str(m.get('split_hash'))[:12]}... is not the "
                             "bundle's; choose a new --out")
    reproduced = load_stored_run(run_dir, rundir.split())
    if reproduced.test_ids != claimed.test_ids:
        differ = sorted(set(reproduced.test_ids) ^ set(claimed.test_ids))
        raise ReproduceError(f"{run_dir}: the reproduction scored {len(reproduced.test_ids)} test images, the "
                             f"bundle {len(claimed.test_ids)} ({len(differ)} differ, e.g. {submit.examples(differ)}):"
                             " some images are unreadable here or were claimed unusable; a paired comparison "
                             "needs the same ones")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)  # a label without test positives is NaN by design
        try:
            compared = compare_stored(claimed, reproduced, n_boot=n_boot, seed=seed)
        except StoredRunError as exc:
            raise ReproduceError(f"{run_dir}: {exc.problems[0]}") from None
    rows = []
    for entry, differences in compared.items():
        table = differences.table
        for metric in METRICS:
            macro = table[(table["scope"] == "macro") & (table["name"] == GLOBAL_LABEL) & (table["metric"] == metric)]
            r = macro.iloc[0]
            low, high = float(r["ci_low"]), float(r["ci_high"])
            verdict = UNDEFINED if not (math.isfinite(low) and math.isfinite(high)) else \
                REPRODUCED if low <= 0 <= high else NOT_REPRODUCED
            rows.append({"entry": entry, "entry_kind": claimed.entries[entry], "metric": metric,
                         "difference": float(r["difference"]), "ci_low": low, "ci_high": high,
                         "p_value": float(r["p_value"]), "verdict": verdict})
    largest = {entry: float(np.abs(reproduced.scores[entry].astype(np.float64)
                                   - claimed.scores[entry].astype(np.float64)).max(initial=0.0))
               for entry in compared}
    notes = list(plan.notes)
    trained_on, here = bundle.manifest.get("device"), m.get("device")
    if trained_on != here:
        notes.append(f"the run trained on {shown(trained_on)}, the reproduction on {here}: equal weights are not "
                     "expected, the intervals judge the difference")
    missing = [e for e in claimed.entries if e not in compared]
    if missing:
        notes.append(f"entries of the bundle the reproduction lacks: {', '.join(missing)}")
    notes.append(f"differences are the reproduction minus the bundle on their {len(claimed.test_ids)} shared test "
                 f"images; intervals resample the same patients for both ({n_boot} replicates, seed {seed})")
    return Reproduction(bundle=bundle.path, bundle_sha256=bundle.sha256, run_dir=rundir.path,
                        benchmark=str(bundle.manifest["benchmark"]),
                        benchmark_version=str(bundle.manifest["benchmark_version"]),
                        run_id=str(bundle.manifest.get("run_id", "")), reproduction_run_id=str(m.get("run_id", "")),
                        n_test=len(claimed.test_ids), n_boot=n_boot, seed=seed, rows=pd.DataFrame(rows),
                        max_abs_difference=largest, notes=notes)
