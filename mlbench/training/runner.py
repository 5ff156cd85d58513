"""``mlbench run``: dataset -> split -> preprocess/cache -> train -> predictions -> ensembles -> metrics.

The run is a sequence of stage functions with explicit inputs and outputs (each testable alone);
:func:`run` calls them in order. Every file lands in the run directory through
:class:`mlbench.results.rundir.RunDir`. Running the same command again resumes: finished stages are
reused and a backbone in training continues from its last finished epoch.

Everything a user can get wrong (plugin names, options, paths, the device, a run directory that
holds another recipe) is checked by :func:`plan_run` before any expensive stage starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import inspect
import os
import platform
import subprocess
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

import mlbench
from mlbench.foundations.errors import UserError
from mlbench.foundations.paths import is_inside
from mlbench.training import checkpoint
from mlbench.results import leaderboard, predictions, thresholds
from mlbench.models.backbones import BackboneNameError, check_timm_model, timm_backbone
from mlbench.models.weights import Weights, WeightsError, locate as locate_weights
from mlbench.contracts.benchmark import Benchmark, Recipe, with_data_labels
from mlbench.data import DataSource, Records
from mlbench.data.datasetoptions import check_dataset_options, label_options, read_dataset, unknown_cells_reason
from mlbench.data.imagepaths import OUTSIDE_ROOT
from mlbench.data.splits import (SPLITS, BenchmarkSplit, SplitError, assert_patient_disjoint, split_benchmark,
                                  split_hash, split_labels, split_table)
from mlbench.data.canonical import describe as describe_label_file
from mlbench.demo import is_synthetic, read_source_record, write_source_record
from mlbench.training.distributed import Group, from_environment, shutdown
from mlbench.foundations.io import read_json, sha256_file, write_bytes, write_json
from mlbench.results.metrics import MetricWarning
from mlbench.preprocessing.cache import Cache, build_cache
from mlbench.training.progress import Reporter
from mlbench.foundations.options import OPTION_FLAGS, SEED_MAX, OptionError, check_factory_options, shown
from mlbench.contracts.registry import LazyFactory, PluginError, Registry, get_registry
from mlbench.results.rescoring import score_entries, write_replicates
from mlbench.results.rundir import SPLIT_KEY_COLUMNS, RunDir, RunDirError, identity_differences, recipe_from_dict
from mlbench.training.adjusting import NO_ADJUSTER, adjust_backbones, head_from_record, head_record
from mlbench.training.stages import build_phases
from mlbench.training.trackers import (TrackerError, Trackers, check_trackers, entry_metrics, flat_params,
                                      open_trackers)
from mlbench.training.loop import accepted_options, backbone_plugin, build_backbone, device_name, on_device, pick_device, predict, train

BOOTSTRAP_SEED = 0
EVAL_SPLITS = ("val", "test")


class RunError(UserError):
    """The run cannot proceed (the message says what to fix)."""


@dataclass
class RunOptions:
    """Everything ``mlbench run`` can be told. None means: the benchmark's recipe decides."""

    benchmark: str
    out: Path | None = None  # default: runs/BENCHMARK-VARIANT[-demo]
    csv: Path | None = None
    images: Path | None = None
    demo: bool = False
    demo_dir: Path | None = None
    cache: Path | None = None
    backbones: Sequence[str] | None = None
    loss: str | None = None
    ensembles: Sequence[str] | None = None
    crop: bool | None = None
    augment: bool | None = None
    pretrained: bool | None = None  # None: the recipe's; False trains every backbone from scratch
    max_epochs: int | None = None
    image_size: int | None = None
    seed: int | None = None
    demo_options: dict[str, Any] | None = None  # passed to the dataset's write_demo (e.g. n_patients)
    dataset_options: dict[str, Any] | None = None  # --dataset-option: the options the dataset declares
    loss_options: dict[str, Any] | None = None
    sampler: str | None = None
    sampler_options: dict[str, Any] | None = None
    threshold_rule: str | None = None  # "fixed" (the paper's 0.5) or "val-f1" (adds *_tuned rows)
    schedule: str | None = None  # a schedule plugin: the stages of training (crt, drw, ...)
    schedule_options: dict[str, Any] | None = None
    adjuster: str | None = None  # a post-hoc adjuster plugin fitted on validation outputs (temperature, ...)
    adjuster_options: dict[str, Any] | None = None
    profile: str | None = None  # the scoring profile tables are ordered by (default: the benchmark's)
    # A run directory whose recipe trains as this one (it differs only after training: adjuster, threshold
    # rule), or whose schedule's stages begin this one's: its finished backbones are copied instead of
    # trained again, or training resumes after the stages they share (mlbench grid sets it).
    training_twin: Path | None = None
    backbone_options: dict[str, dict[str, Any]] | None = None  # backbone name -> factory options
    device: str = "auto"
    workers: int | None = None
    only_backbones: Sequence[str] | None = None
    ensemble_only: bool = False
    n_boot: int = 1000  # patient-bootstrap replicates for the 95% CIs (0: no intervals)
    compile: bool = False  # torch.compile the training step (a speed option; results are the same model)
    progress: bool | str = "auto"  # auto (bars on a terminal, lines elsewhere), bars, lines, quiet
    # Experiment trackers (tracker plugins) receiving the curves, metrics and recipe: not the run's identity.
    trackers: Sequence[str] = ()
    # A whole recipe in place of the benchmark's (``mlbench reproduce``: a bundle's, fields RunOptions
    # cannot name such as lr and patience included); the options above still override it.
    recipe: Recipe | None = None


@dataclass
class RunResult:
    run_dir: Path
    leaderboard: pd.DataFrame | None
    manifest: dict[str, Any]
    is_main: bool = True  # False on the other ranks of a torchrun job (they write nothing)


@dataclass
class RunPlan:
    """What :func:`plan_run` checked: everything the stages need that costs nothing to know."""

    options: RunOptions
    registry: Registry
    benchmark: Benchmark
    recipe: Recipe
    rundir: RunDir
    device: torch.device
    group: Group
    reporter: Reporter
    identity: dict[str, Any] = field(default_factory=dict)  # the run's identity less what the data says
    versions: dict[str, Any] = field(default_factory=dict)  # mlbench, torch, timm, python, each plugin used

    def stored(self) -> dict[str, Any]:
        """What plan.json holds: everything a job needs to rebuild this plan without checking it again."""
        options = {f.name: getattr(self.options, f.name) for f in dataclasses.fields(self.options)}
        options.update(out=str(self.rundir.path), only_backbones=None, ensemble_only=False,
                       recipe=None if self.options.recipe is None else self.options.recipe.to_dict())
        for name in PATH_OPTIONS:
            options[name] = None if options[name] is None else str(Path(options[name]).resolve())
        return {"benchmark": self.benchmark.name, "benchmark_version": self.benchmark.version,
                "recipe": self.recipe.to_dict(), "identity": self.identity, "versions": self.versions,
                "options": _plain(options)}


PATH_OPTIONS = ("csv", "images", "demo_dir", "cache", "training_twin")  # RunOptions' paths besides out


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: plan.json's form of the options."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass
class Prepared:
    """The output of the data, split and preprocess stages: what training and scoring read."""

    split: BenchmarkSplit
    cache: Cache
    usable: np.ndarray  # per image of split.frame: True when preprocessing could use it

    @property
    def frame(self) -> pd.DataFrame:
        return self.split.frame

    @property
    def Y(self) -> np.ndarray:
        return self.split.Y

    def rows(self, subset: str) -> np.ndarray:
        return np.flatnonzero((self.split.splits == subset) & self.usable)

    def known(self, subset: str) -> np.ndarray | None:
        """The subset's known-mask (False at unknown cells), or None when every cell of it is known."""
        return self.split.known_rows(self.rows(subset))

    def ids(self, subset: str) -> list[str]:
        return self.frame["image_id"].astype(str).iloc[self.rows(subset)].tolist()


# -- the recipe and the plan ----------------------------------------------------------------------
def make_recipe(bench: Benchmark, opts: RunOptions) -> Recipe:
    """The benchmark's recipe (or demo recipe) with the options' overrides applied."""
    recipe = opts.recipe if opts.recipe is not None else bench.demo_recipe if opts.demo else bench.recipe
    changes: dict[str, Any] = {}
    for field_name, value in (("backbones", opts.backbones), ("loss", opts.loss), ("ensembles", opts.ensembles),
                              ("crop", opts.crop), ("augment", opts.augment), ("pretrained", opts.pretrained),
                              ("max_epochs", opts.max_epochs),
                              ("image_size", opts.image_size), ("seed", opts.seed), ("sampler", opts.sampler),
                              ("threshold_rule", opts.threshold_rule), ("schedule", opts.schedule),
                              ("adjuster", opts.adjuster)):
        if value is not None:
            changes[field_name] = tuple(value) if isinstance(value, (list, tuple)) else value
    if opts.loss_options:
        changes["loss_options"] = {**dict(recipe.loss_options), **opts.loss_options}
    for kind in ("sampler", "schedule", "adjuster"):
        extra = getattr(opts, f"{kind}_options")
        if extra:
            changes[f"{kind}_options"] = {**dict(getattr(recipe, f"{kind}_options")), **extra}
    if opts.backbone_options:
        merged = {k: dict(v) for k, v in recipe.backbone_options.items()}
        for name, extra in opts.backbone_options.items():
            merged[name] = {**merged.get(name, {}), **extra}
        changes["backbone_options"] = merged
    return recipe.replace(**changes)


def default_out(benchmark: str, recipe: Recipe, demo: bool) -> Path:
    return Path("runs") / f"{benchmark}-{recipe.variant}{'-demo' if demo else ''}"


def plan_run(opts: RunOptions, registry: Registry | None = None) -> RunPlan:
    """Check every name, option and path of ``opts``; raise RunError/PluginError before any work."""
    registry = registry or get_registry()
    bench: Benchmark = registry.create("benchmark", opts.benchmark)
    recipe = make_recipe(bench, opts)
    if not recipe.backbones:
        raise RunError("--backbones: expected at least one backbone")
    check_ranges(opts, bench, recipe)
    # The checks below build plugins on dummy inputs; a benchmark whose labels the data chooses gets two.
    n_labels = len(bench.labels) or 2
    rundir = RunDir(opts.out if opts.out is not None else default_out(bench.name, recipe, opts.demo))
    registry.get("dataset", bench.dataset)
    # The dataset's declared options, checked before any data work; all of them enter the identity.
    dataset_options = check_dataset_options(registry, bench.dataset, opts.dataset_options)
    unknown_why = unknown_cells_reason(registry, bench.dataset, dataset_options)
    registry.get("preprocessor", recipe.active_preprocessor)
    for name in recipe.backbones:
        _check_backbone_name(registry, name)
    for name in recipe.ensembles:
        registry.get("ensemble", name)
    # A loss built on dummy counts catches unknown or ill-typed --loss-option values now, not after preprocessing.
    _check_plugin_options(registry, "loss", recipe.loss, recipe.loss_options, "--loss-option",
                          label_counts=[1] * n_labels, n_samples=2)
    # Likewise a sampler built on a tiny dummy label matrix checks its name and --sampler-option values.
    _check_plugin_options(registry, "sampler", recipe.sampler, recipe.sampler_options, "--sampler-option",
                          labels=_dummy_labels(n_labels), seed=0)
    if recipe.threshold_rule not in thresholds.RULES:
        raise RunError(f"--thresholds {recipe.threshold_rule}: expected one of {', '.join(thresholds.RULES)}")
    _check_backbone_options(registry, recipe)
    _check_schedule(registry, recipe, n_labels)
    _check_adjuster(registry, recipe, n_labels)
    check_trackers(registry, list(opts.trackers or ()))  # a missing package: one line, before any data work
    if unknown_why is not None:
        check_unknown_cells(registry, recipe, n_labels, unknown_why)
    if opts.profile is not None:
        from mlbench.results.profiles import get_profile

        get_profile(opts.profile)
    unknown = [b for b in (opts.only_backbones or ()) if b not in recipe.backbones]
    if unknown:
        raise RunError(f"--only-backbone {', '.join(unknown)}: not in this run's backbones "
                       f"{', '.join(recipe.backbones)}")
    if opts.demo:
        if not hasattr(registry.create("dataset", bench.dataset), "write_demo"):
            raise RunError(f"--demo: dataset '{bench.dataset}' has no demo corpus (no write_demo method)")
    elif not opts.ensemble_only:
        if opts.csv is None or opts.images is None:
            raise RunError("--csv and --images: give the dataset's label file and image folder, or --demo")
        if not Path(opts.csv).is_file():
            raise RunError(f"--csv {opts.csv}: no such file")
        if not Path(opts.images).is_dir():
            raise RunError(f"--images {opts.images}: no such folder")
    if rundir.path.exists() and not rundir.path.is_dir():
        raise RunError(f"--out {rundir.path}: is a file; expected a run directory")
    if opts.ensemble_only and not rundir.exists():
        raise RunError(f"--ensemble-only {rundir.path}: not a run directory (no {rundir.manifest_file.name}); "
                       "expected the RUN_DIR whose backbones were trained with --only-backbone")
    if not opts.ensemble_only:
        pretrained_weights(registry, recipe)  # before any data work: a missing file is one line now
    identity = {"benchmark": bench.name, "benchmark_version": bench.version, "variant": recipe.variant,
                "recipe": recipe.to_dict(), **({"dataset_options": dataset_options} if dataset_options else {})}
    _check_same_run(rundir, identity)
    group, device_name = from_environment(opts.device)
    device = pick_device(device_name)
    reporter = Reporter(opts.progress if group.is_main else "quiet")
    return RunPlan(opts, registry, bench, recipe, rundir, device, group, reporter, identity,
                   plugin_versions(registry, plugins_used(bench, recipe)))


def load_plan(run_dir: str | Path, registry: Registry | None = None, *, only_backbones: Sequence[str] | None = None,
              ensemble_only: bool = False) -> RunPlan:
    """The plan a driving command stored in RUN_DIR (plan.json), for one of its jobs: nothing is checked again.

    The driver wrote plan.json just before it started the job, from its own command line."""
    rundir = RunDir(run_dir)
    stored = rundir.read_plan()
    where = str(rundir.plan_file)
    try:
        options = dict(stored["options"])
        for name in PATH_OPTIONS:
            options[name] = None if options[name] is None else Path(options[name])
        if options.get("recipe") is not None:
            options["recipe"] = recipe_from_dict(options["recipe"], where)
        opts = RunOptions(**{**options, "out": rundir.path, "only_backbones": only_backbones,
                             "ensemble_only": ensemble_only})
        name, version, identity, versions = (stored["benchmark"], stored["benchmark_version"], stored["identity"],
                                             stored["versions"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{where}: not the plan `mlbench run` writes ({type(exc).__name__})") from None
    registry = registry or get_registry()
    bench: Benchmark = registry.create("benchmark", name)
    if bench.version != version:
        raise RunError(f"{where} was planned with {bench.name} {version}, installed is {bench.version}")
    group, device_name = from_environment(opts.device)
    reporter = Reporter(opts.progress if group.is_main else "quiet")
    return RunPlan(opts, registry, bench, recipe_from_dict(stored["recipe"], where), rundir, pick_device(device_name),
                   group, reporter, identity, versions)


def store_plan(plan: RunPlan) -> None:
    """plan.json in the run directory: what every job of this run reads instead of planning again."""
    if plan.group.is_main:
        plan.rundir.write_plan(plan.stored())


# Inclusive ranges. Above the upper bounds a run would fail hours in: the cache holds size x size
# bytes per image (no chest film is wider than 4096 px), the bootstrap n_boot x patients counts,
# and preprocessing starts one process per worker.
INT_RANGES = {"max_epochs": (1, None), "patience": (1, None), "batch_size": (1, None), "image_size": (16, 4096),
              "seed": (0, SEED_MAX), "n_boot": (0, 100_000), "workers": (1, 1024)}
SEED_WHY = " (numpy's random generators take 0 <= seed < 2**32)"


def option_label(name: str) -> str:
    """``--seed (seed=)``: the flag and the run_benchmark() keyword of a RunOptions field."""
    return f"{OPTION_FLAGS[name]} ({name}=)" if name in OPTION_FLAGS else f"{name}="


def check_int(value: Any, low: int, high: int | None, label: str, why: str = "") -> int:
    """``value`` as an int in [low, high] (no upper bound when None), else one RunError naming ``label``."""
    if (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high)):
        return int(value)
    span = f"from {low} to {high}" if high is not None else f">= {low}"
    raise RunError(f"{label} {shown(value)}: expected an integer {span}{why}")


def check_seed(seed: Any, label: str = "--seed (seed=)") -> int:
    """A training seed every RNG it feeds accepts; ``label`` names the option (``--seeds`` for a grid)."""
    return check_int(seed, *INT_RANGES["seed"], label, SEED_WHY)


def check_ranges(opts: RunOptions, bench: Benchmark, recipe: Recipe) -> None:
    """Every number a run feeds to numpy, torch or the OS, in range before any work."""
    for name in ("seed", "max_epochs", "image_size", "patience", "batch_size"):
        if getattr(opts, name, None) is not None:
            label = option_label(name)
        else:  # the benchmark's own recipe says so
            label = f"benchmark {bench.name}: the {'demo ' if opts.demo else ''}recipe's {name}"
        check_int(getattr(recipe, name), *INT_RANGES[name], label, SEED_WHY if name == "seed" else "")
    for name in ("n_boot", "workers"):
        if getattr(opts, name) is not None:
            check_int(getattr(opts, name), *INT_RANGES[name], option_label(name))


def _check_plugin_options(registry: Registry, kind: str, name: str, values: Any, option: str, **dummy: Any) -> None:
    """Build plugin ``name`` on ``dummy`` inputs with the user's ``values``: any mistake is one line naming ``option``.

    The factory's own range checks speak first (they know the range); then its signature's: an
    unknown key, or a non-number or NaN/infinity where it takes a number (what a factory may let through).
    """
    factory, values = registry.get(kind, name).factory, dict(values)
    try:
        # A key mlbench passes itself would collide in the call: refused by the signature check first.
        check_factory_options(factory, {k: v for k, v in values.items() if k in dummy}, name, given=dummy)
        try:
            registry.create(kind, name, **dummy, **values)
        except PluginError as exc:
            if isinstance(exc.__cause__, OptionError):  # raised inside the factory, wrapped by the registry
                raise exc.__cause__ from None
            check_factory_options(factory, values, name, given=dummy)  # a clearer reason, when it finds one
            raise
        check_factory_options(factory, values, name, given=dummy)
    except OptionError as exc:
        raise OptionError(f"{option}: {exc}") from None


def check_unknown_cells(registry: Registry, recipe: Recipe, n_labels: int, why: str) -> None:
    """One RunError line when the recipe cannot train or score with unknown label cells (``why``: where they come from).

    The loss must take the mask (mlbench.models.losses.takes_known) and no post-hoc adjuster may be fitted:
    adjusters read the validation labels as 0/1 and have no mask yet."""
    from mlbench.models.losses import takes_known

    try:
        loss = registry.create("loss", recipe.loss, label_counts=[1] * n_labels, n_samples=2,
                               **dict(recipe.loss_options))
    except (PluginError, OptionError, TypeError, ValueError):  # its options are refused by their own check
        loss = None
    if loss is not None and not takes_known(loss):
        raise RunError(f"--loss {recipe.loss}: {why}, and loss '{recipe.loss}' takes no mask of unknown cells (its "
                       "forward names no 'known' parameter, docs/plugins.md); choose a loss that does, e.g. "
                       "weighted-bce, or a dataset option without unknown cells")
    if recipe.adjuster != NO_ADJUSTER:
        raise RunError(f"--adjuster {recipe.adjuster}: {why}, and post-hoc adjusters are fitted on 0/1 validation "
                       f"labels with no mask of unknown cells; use --adjuster {NO_ADJUSTER}")


def _implementation(factory: Any) -> Any:
    """The function behind a registered factory (lazy and partial wrappers removed)."""
    target = factory.resolve() if isinstance(factory, LazyFactory) else factory
    while isinstance(target, functools.partial):
        target = target.func
    return target


def _check_backbone_name(registry: Registry, name: str) -> None:
    """A backbone name resolves to a model: a registered backbone, or PLUGIN:MODEL whose model exists."""
    plugin, sep, model = name.partition(":")
    try:
        entry = registry.get("backbone", plugin)
    except PluginError as exc:
        close = difflib.get_close_matches(plugin, registry.names("backbone"), n=3)
        raise RunError(f"--backbones {name}: {exc}" + (f"; closest: {', '.join(close)}" if close else "")) from None
    try:
        params = inspect.signature(entry.factory).parameters
        implementation = _implementation(entry.factory)
    except (TypeError, ValueError):
        return
    except Exception as exc:  # noqa: BLE001 - a plugin whose module does not import: say which, not a traceback
        raise PluginError(f"backbone '{plugin}' from plugin '{entry.plugin}' ({entry.package}) cannot be loaded: "
                          f"{type(exc).__name__}: {exc}") from None
    takes = params.get("model_name")
    if sep and not model:
        raise RunError(f"--backbones {name}: expected {plugin}:MODEL_NAME")
    if not sep and takes is not None and takes.default is inspect.Parameter.empty:
        raise RunError(f"--backbones {name}: backbone '{plugin}' needs a model name; expected {plugin}:MODEL_NAME")
    if sep and takes is None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise RunError(f"--backbones {name}: backbone '{plugin}' takes no model name; expected {plugin}")
    model = model or _default_model(params)
    if model and implementation is timm_backbone:
        try:
            check_timm_model(model)  # timm's model list only: no build, no download
        except BackboneNameError as exc:
            raise RunError(f"--backbones {name}: {exc}") from None


def _default_model(params: Any) -> str:
    """The model a factory builds when the backbone name gives none: its ``model_name`` default."""
    takes = params.get("model_name")
    return takes.default if takes is not None and isinstance(takes.default, str) else ""


def timm_model_name(registry: Registry, name: str) -> str | None:
    """The timm model backbone ``name`` builds, or None when a plugin's own factory builds it."""
    plugin, _, model = name.partition(":")
    factory = registry.get("backbone", plugin).factory
    try:
        params = inspect.signature(factory).parameters
        implementation = _implementation(factory)
    except Exception:  # noqa: BLE001 - not introspectable: a plugin's own business
        return None
    return (model or _default_model(params) or None) if implementation is timm_backbone else None


def pretrained_weights(registry: Registry, recipe: Recipe) -> dict[str, Weights]:
    """Each pretrained backbone's weights, found on this machine or fetched now (WeightsError if neither)."""
    for name in recipe.backbones:
        if pretrained_for(recipe, name) and not has_pretrained_weights(registry, name):
            raise WeightsError(f"--backbones {name}: no pretrained weights exist for this backbone (its factory "
                               "says so); train it from scratch with --no-pretrained, or name backbones that have "
                               "them (e.g. --backbones resnet10t,resnet18)")
    return {name: locate_weights(name, timm_model_name(registry, name),
                                 recipe.backbone_options.get(name, {}).get("weights"))
            for name in recipe.backbones if pretrained_for(recipe, name)}


def has_pretrained_weights(registry: Registry, name: str) -> bool:
    """False when backbone ``name``'s factory says no pretrained weights exist for it (``has_pretrained_weights``)."""
    try:
        implementation = _implementation(registry.get("backbone", backbone_plugin(name)).factory)
    except Exception:  # noqa: BLE001 - not introspectable: a plugin's own business
        return True
    return getattr(implementation, "has_pretrained_weights", True) is not False


def weightless(recipe: Recipe) -> Recipe:
    """The recipe with no pretrained weights anywhere (a check on the meta device, or a checkpoint to load)."""
    options = {name: {k: v for k, v in opts.items() if k not in ("pretrained", "weights")}
               for name, opts in recipe.backbone_options.items()}
    return recipe.replace(pretrained=False, backbone_options=options)


def pretrained_for(recipe: Recipe, name: str) -> bool:
    """Whether backbone ``name`` starts from pretrained weights: a weights file or its own option, else the recipe's."""
    options = recipe.backbone_options.get(name, {})
    return options.get("weights") is not None or bool(options.get("pretrained", recipe.pretrained))


def _check_backbone_options(registry: Registry, recipe: Recipe) -> None:
    for name, options in recipe.backbone_options.items():
        if name not in recipe.backbones:
            raise RunError(f"--backbone-option {name}.{next(iter(options), 'KEY')}: backbone '{name}' is not in "
                           f"this run; its backbones are {', '.join(recipe.backbones)}")
        factory = registry.get("backbone", backbone_plugin(name)).factory
        unknown = sorted(set(options) - set(accepted_options(factory, dict(options))))
        if unknown:
            raise RunError(f"--backbone-option {name}.{unknown[0]}: backbone '{name}' takes no option "
                           f"'{unknown[0]}'")
        if "pretrained" in options and not isinstance(options["pretrained"], bool):
            raise RunError(f"--backbone-option {name}.pretrained={shown(options['pretrained'])}: expected true "
                           "or false")
        if options.get("pretrained") is False and options.get("weights") is not None:
            raise RunError(f"--backbone-option {name}.pretrained=false and {name}.weights: a weights file is "
                           "pretrained weights; give one of them")
        # A factory taking **options cannot say what it accepts: build it once, weightless, on the meta device.
        try:
            with torch.device("meta"):
                build_backbone(registry, name, 1, weightless(recipe))
        except PluginError as exc:
            raise RunError(f"--backbone-option {name}: {exc}") from None


def _dummy_labels(n_labels: int) -> np.ndarray:
    """A tiny training label matrix with every label present: what plan-time checks build plugins on."""
    return np.eye(4, n_labels, dtype=np.uint8) | 1


def _check_schedule(registry: Registry, recipe: Recipe, n_labels: int) -> None:
    """The schedule's options, each stage's sampler and loss options, and the head a stage needs: one line each."""
    from mlbench.training import stages as staging

    _check_plugin_options(registry, "schedule", recipe.schedule, recipe.schedule_options, "--schedule-option",
                          label_counts=[1] * n_labels, n_samples=2, max_epochs=recipe.max_epochs)
    try:
        stages = staging.schedule_stages(registry, recipe, [1] * n_labels, 2)
    except OptionError as exc:
        raise OptionError(f"--schedule-option: {exc}") from None
    where = f"--schedule {recipe.schedule}"
    for stage in stages:
        sampler, options = staging.stage_sampler(recipe, stage)
        try:
            _check_plugin_options(registry, "sampler", sampler, options, f"{where} (stage '{stage.name}')",
                                  labels=_dummy_labels(n_labels), seed=0)
        except PluginError as exc:
            raise RunError(f"{where}: stage '{stage.name}' draws with sampler '{sampler}': {exc}") from None
        if stage.mix_sampler is not None:
            try:
                _check_plugin_options(registry, "sampler", stage.mix_sampler, stage.mix_sampler_options,
                                      f"{where} (stage '{stage.name}')", labels=_dummy_labels(n_labels), seed=0)
            except PluginError as exc:
                raise RunError(f"{where}: stage '{stage.name}' mixes with sampler '{stage.mix_sampler}': {exc}") from None
        added = sorted(stage.loss_options)
        factory = registry.get("loss", recipe.loss).factory
        unknown = [k for k in added if k not in accepted_options(factory, {k: None for k in added})]
        if unknown:
            raise RunError(f"{where}: stage '{stage.name}' sets loss option {unknown[0]}, which loss "
                           f"'{recipe.loss}' does not take; expected a loss with a {unknown[0]} option "
                           "(every built-in loss has label_weights)")
        _check_plugin_options(registry, "loss", recipe.loss, staging.stage_loss_options(recipe, stage),
                              f"{where} (stage '{stage.name}')", label_counts=[1] * n_labels, n_samples=2)
    stage = staging.needs_head(stages)
    if stage is not None:
        _check_heads(registry, recipe, n_labels, f"{where}: stage '{stage.name}' trains the classification head")


def _check_heads(registry: Registry, recipe: Recipe, n_labels: int, why: str) -> None:
    """Every backbone ends in a linear layer with one output per label (built weightless on the meta device)."""
    from mlbench.models.adjusters import find_head

    for name in recipe.backbones:
        with torch.device("meta"):
            model = build_backbone(registry, name, n_labels, weightless(recipe))
        try:
            find_head(model, n_labels)
        except ValueError as exc:
            raise RunError(f"{why}, but backbone '{name}' has none ({exc})") from None


def _check_adjuster(registry: Registry, recipe: Recipe, n_labels: int) -> None:
    """The adjuster's name and options, fitted once on dummy validation outputs (with a dummy head)."""
    from mlbench.models.adjusters import HeadStats

    rng = np.random.default_rng(0)
    probs = rng.uniform(0.05, 0.95, size=(8, n_labels))
    head = HeadStats(weight_norm=np.ones(n_labels), bias=np.zeros(n_labels))
    _check_plugin_options(registry, "adjuster", recipe.adjuster, recipe.adjuster_options, "--adjuster-option",
                          val_probs=probs, val_targets=(probs > 0.5).astype(np.uint8), label_counts=[1] * n_labels,
                          n_samples=2, head=head)
    if registry.get("adjuster", recipe.adjuster).info.get("needs_head"):
        _check_heads(registry, recipe, n_labels, f"--adjuster {recipe.adjuster}: rescales the classification head")


def _check_same_run(rundir: RunDir, want: dict[str, Any]) -> None:
    """Refuse at once a RUN_DIR whose training began with another benchmark or recipe (the data is checked later)."""
    if not rundir.exists():
        return
    identity = rundir.manifest().get("identity", {})
    diff = identity_differences({k: identity.get(k) for k in want if k in identity}, {k: want[k] for k in identity
                                                                                       if k in want})
    # A run that failed before training started does not lock its directory: RunDir.start replaces it.
    rundir.refuse_other_run(diff)


# -- provenance -------------------------------------------------------------------------------------
def git_commit() -> str | None:
    root = Path(mlbench.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def plugins_used(bench: Benchmark, recipe: Recipe) -> dict[str, list[str]]:
    """Every plugin a run of ``recipe`` uses, by kind."""
    return {"benchmark": [bench.name], "dataset": [bench.dataset], "loss": [recipe.loss], "sampler": [recipe.sampler],
            "schedule": [recipe.schedule], "adjuster": [recipe.adjuster],
            "preprocessor": [recipe.active_preprocessor],
            "backbone": sorted({backbone_plugin(b) for b in recipe.backbones}), "ensemble": list(recipe.ensembles)}


def plugin_versions(registry: Registry, used: dict[str, Sequence[str]]) -> dict[str, Any]:
    plugins: dict[str, str] = {}
    for kind, names in used.items():
        for name in names:
            entry = registry.get(kind, name)
            plugins[f"{kind}:{name}"] = f"{entry.package or entry.plugin}=={entry.version or 'unknown'}"
    return {"mlbench": mlbench.__version__, "torch": torch.__version__, "timm": metadata.version("timm"),
            "python": platform.python_version(), "plugins": plugins}


# -- stages -------------------------------------------------------------------------------------------
def source_stage(plan: RunPlan) -> DataSource:
    """The dataset's files: the given CSV and folder, or the demo corpus (written once, then reused)."""
    opts, rundir = plan.options, plan.rundir
    if not opts.demo:
        return DataSource(csv=Path(opts.csv), images=Path(opts.images))
    demo_dir = Path(opts.demo_dir or rundir.default_demo_dir)
    written = read_source_record(demo_dir)
    if written is not None:
        return written
    dataset = plan.registry.create("dataset", plan.benchmark.dataset)
    options = {**dict(plan.benchmark.demo_options), **(opts.demo_options or {})}
    source = dataset.write_demo(demo_dir, seed=plan.recipe.seed, **options)
    write_source_record(demo_dir, source)
    return source


def data_stage(plan: RunPlan, source: DataSource) -> Records:
    """Read the dataset (with the options planned): every usable image with its findings, every row skipped and why."""
    return read_dataset(plan.registry, plan.benchmark.dataset, source, plan.identity.get("dataset_options"))


def split_stage(plan: RunPlan, source: DataSource, records: Records) -> BenchmarkSplit:
    """Map findings to the benchmark's labels and split by patient (the one canonical split function)."""
    try:
        split = split_benchmark(records, plan.benchmark)
    except SplitError as exc:
        raise RunError(f"{source.csv}: {exc}") from None
    assert_patient_disjoint(split.frame["patient_id"].astype(str).tolist(), split.splits)
    plan.benchmark = with_data_labels(plan.benchmark, split.labels)  # labels the data chose, for the stages after
    if split.known is not None:  # a dataset that did not declare them: refused before any image is decoded
        check_unknown_cells(plan.registry, plan.recipe, len(split.labels),
                            f"{source.csv}: {int((~split.known).sum())} label cells are unknown")
    return split


def data_identity(plan: RunPlan, kind: str, csv_sha256: str) -> dict[str, Any]:
    """The run's identity: the plan's, and what the label file is (its kind and sha256)."""
    return {**plan.identity, "dataset_kind": kind, "csv_sha256": csv_sha256}


def start_manifest(plan: RunPlan, records: Records, source: DataSource, split: BenchmarkSplit) -> dict[str, Any]:
    bench, recipe, rundir = plan.benchmark, plan.recipe, plan.rundir
    identity = data_identity(plan, records.kind, records.source_sha256)
    now = datetime.now(timezone.utc)
    fields = {**identity, "run_id": f"{bench.name}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
              "created_at": now.isoformat(timespec="seconds"), "seed": recipe.seed,
              "backbones": list(recipe.backbones), "loss": recipe.loss, "ensembles": list(recipe.ensembles),
              "pretrained": {b: pretrained_for(recipe, b) for b in recipe.backbones},
              "weights": {b: w.record() for b, w in pretrained_weights(plan.registry, recipe).items()},
              "versions": plan.versions, "git_commit": git_commit(), "device": device_name(plan.device),
              "source": {"csv": rundir.stored_path(source.csv), "images": rundir.stored_path(source.images)},
              "canonical": canonical_record(bench, records, source), "schedule": schedule_record(plan),
              "scoring_profile": plan.options.profile or getattr(bench, "scoring_profile", "paper")}
    if "dataset_options" in identity:  # what the reader was told and what it counted (nothing lost silently)
        fields["dataset"] = {"options": identity["dataset_options"], "label_options": dict(records.label_options),
                             "labels": list(split.labels), **records.facts}
    rundir.start(identity, fields)
    rundir.record_skips("data", list(records.skipped) + list(split.skipped))
    digest = split.summary["split_hash"]
    rundir.write_split(split_table(split.frame, split.Y, split.splits, bench.labels, split.known))
    write_image_paths(rundir, split, source)
    unknown = {} if split.known is None else {"unknown_cells": {s: int((~split.known[split.splits == s]).sum())
                                                                for s in SPLITS}}
    return rundir.update_manifest(lambda m: m.update(split_hash=digest, n_images={
        s: int((split.splits == s).sum()) for s in SPLITS}, **unknown))


def schedule_record(plan: RunPlan) -> dict[str, Any]:
    """The recipe's schedule and its stages as planned (each backbone's done file says how each went)."""
    from mlbench.training.stages import schedule_stages

    recipe = plan.recipe
    stages = schedule_stages(plan.registry, recipe, [1] * len(plan.benchmark.labels), 2)
    return {"name": recipe.schedule, "options": _plain(dict(recipe.schedule_options)),
            "stages": [s.describe() for s in stages]}


def canonical_record(bench: Benchmark, records: Records, source: DataSource) -> dict[str, Any]:
    """Which of the benchmark's canonical releases the label file is, from its content; a demo corpus
    is never one, whatever its content or marker file."""
    record = describe_label_file(bench, source.csv)
    if is_synthetic(records.kind):
        record.update(canonical=False, release=None)
    return record


def write_image_paths(rundir: RunDir, split: BenchmarkSplit, source: DataSource) -> None:
    """Each split image's path relative to the image root, for a resume's preprocess stage.

    A dataset that placed an image outside the root leaves no file: such a run re-reads its label file."""
    rundir.image_paths_file.unlink(missing_ok=True)  # the split just written is not the old file's
    prefix = os.path.realpath(source.images).rstrip(os.sep) + os.sep
    paths = split.frame["image_path"].astype(str)
    if len(paths) and paths.str.startswith(prefix).all():
        rundir.write_image_paths(split.frame["image_id"].astype(str).tolist(),
                                 paths.str.slice(len(prefix)).tolist())


def stored_split(plan: RunPlan, source: DataSource) -> BenchmarkSplit | None:
    """The split an earlier invocation wrote, when the plan and the label file's sha256 are unchanged; else None.

    split.parquet and image-paths.parquet are read back instead of reading the label file and
    splitting again; a split whose hash is not the manifest's is computed again."""
    rundir, labels = plan.rundir, list(plan.benchmark.labels)
    if not (rundir.exists() and rundir.split_file.is_file() and rundir.image_paths_file.is_file()):
        return None
    if plan.benchmark.labels_from_data:  # the labels the data chose are the stored split's own
        labels = [c for c in rundir.split().columns if c not in SPLIT_KEY_COLUMNS]
    m = rundir.manifest()
    stored = m.get("identity")
    if not isinstance(stored, dict) or identity_differences(
            stored, data_identity(plan, stored.get("dataset_kind"), sha256_file(source.csv))):
        return None
    frame = rundir.split()
    if [c for c in frame.columns if c not in SPLIT_KEY_COLUMNS] != labels:
        return None
    ids, splits = frame["image_id"].tolist(), frame["split"].to_numpy()
    chosen = label_options(plan.registry, plan.benchmark.dataset, plan.identity.get("dataset_options") or {})
    if split_hash(ids, splits.tolist(), chosen) != m.get("split_hash"):
        return None
    paths = rundir.image_paths(source.images)
    if paths["image_id"].tolist() != ids:
        return None
    keys = frame[["image_id", "patient_id"]].assign(image_path=paths["image_path"].to_numpy())
    Y, known = split_labels(frame, labels)  # nulls are unknown cells
    return BenchmarkSplit(keys, Y, splits, tuple(labels), {"split_hash": m["split_hash"]}, [], {}, known)


def preprocess_stage(plan: RunPlan, split: BenchmarkSplit,
                     source: DataSource | None = None) -> tuple[Cache, np.ndarray]:
    """Decode, crop and resize every image once into the cache; return it and the usable-image mask.

    ``source``: where the images are; a path that has become a link out of its folder is refused."""
    recipe, rundir, group = plan.recipe, plan.rundir, plan.group
    preprocessor = plan.registry.create("preprocessor", recipe.active_preprocessor, size=recipe.image_size,
                                        **dict(recipe.preprocessor_options))
    items = split.frame[["image_id", "image_path"]]
    ids = split.frame["image_id"].astype(str).tolist()
    cache_dir = Path(plan.options.cache or rundir.default_cache)
    if group.is_main:
        with plan.reporter.bars() as progress:
            cache = build_cache(items, preprocessor, recipe.image_size, cache_dir, workers=plan.options.workers,
                                progress=progress, image_root=source.images if source is not None else None)
    group.barrier()
    if not group.is_main:  # everything is cached now: this only opens it
        cache = build_cache(items, preprocessor, recipe.image_size, cache_dir, workers=1,
                            image_root=source.images if source is not None else None)
    skips = cache.skipped(ids)
    if group.is_main:
        rundir.write_preprocess_manifest(cache, ids)
        rundir.record_skips("preprocess", skips)
        config = {"path": rundir.stored_path(cache.root), "config": read_json(cache.root / "config.json")}
        rundir.update_manifest(lambda m: m.update(cache=config))
    unusable = {s.item for s in skips}
    if len(ids) and len(unusable) >= len(ids):
        reasons = ", ".join(f"{r} {n}" for r, n in Counter(s.reason for s in skips).most_common())
        raise RunError(f"--images {source_images(plan)}: none of the {len(ids)} images could be used ({reasons}, "
                       f"e.g. {skips[0].item}); expected the folder the label file's image paths are relative to")
    return cache, ~split.frame["image_id"].astype(str).isin(unusable).to_numpy()


def source_images(plan: RunPlan) -> str:
    return str(plan.options.images) if plan.options.images is not None else "(the demo corpus)"


def train_stage(plan: RunPlan, prepared: Prepared, name: str, trackers: Trackers | None = None) -> None:
    """Train one backbone (resuming its last epoch) and store its val/test predictions; a no-op when done.

    ``trackers`` receive each epoch (a finished backbone's stored history, for trackers named after it trained)."""
    rundir, recipe, bench, group = plan.rundir, plan.recipe, plan.benchmark, plan.group
    if rundir.backbone_predictions(name).exists():
        track_history(plan, trackers, name)
        return
    started = time.perf_counter()
    train_rows = prepared.rows("train")
    if len(train_rows) == 0:
        raise RunError("the training split is empty")
    if group.is_main and copy_twin_training(plan, name, prepared.Y[train_rows]):
        track_history(plan, trackers, name)
        return
    phases = build_phases(plan.registry, recipe, prepared.Y[train_rows], prepared.known("train"))
    torch.manual_seed(recipe.seed)
    model = build_backbone(plan.registry, name, len(bench.labels), recipe)
    # Read in place from the memory-mapped shards: every process on the machine shares one copy.
    images = {s: prepared.cache.images(prepared.ids(s)) for s in SPLITS}
    targets = {s: torch.from_numpy(prepared.Y[prepared.rows(s)]) for s in SPLITS}
    if prepared.split.known is not None:  # unknown cells travel as NaN targets to the masking loss (KnownTargets)
        targets = {s: torch.from_numpy(np.where(prepared.split.known[prepared.rows(s)],
                                                prepared.Y[prepared.rows(s)], np.nan).astype(np.float32))
                   for s in SPLITS}
    augmenter_factory = None
    if recipe.augment:
        from mlbench.preprocessing.augment import Augmenter

        augmenter_factory = Augmenter
    plan.reporter.say(f"train {name}: {len(train_rows)} training images, up to {recipe.max_epochs} epochs")
    with plan.reporter.bars() as progress:
        state = train(model, phases[0].loss_fn, recipe, train_images=images["train"], train_targets=targets["train"],
                      val_images=images["val"], val_targets=targets["val"], checkpoint_dir=rundir.backbone_dir(name),
                      device=plan.device, augmenter_factory=augmenter_factory, progress=progress, name=name,
                      group=group, compile=plan.options.compile, phases=phases,
                      on_epoch=None if trackers is None else functools.partial(trackers.epoch, name))
    if not group.is_main:
        return
    tables = []
    for subset in EVAL_SPLITS:
        ids = prepared.ids(subset)
        probs = predict(model, images[subset], plan.device, batch_size=recipe.batch_size * 4)
        tables.append(predictions.to_table(ids, [subset] * len(ids), name, bench.labels, probs))
    predictions.write(rundir.backbone_predictions(name), tables)
    write_json(rundir.backbone_done(name), {"best_epoch": state.best_epoch, "epochs": state.epoch,
                                            "best_val_loss": state.best_val_loss, "stages": state.stages,
                                            "head": head_record(model, len(bench.labels)),
                                            "device": device_name(plan.device)})
    rundir.record_stage(f"train:{name}", time.perf_counter() - started)


def track_history(plan: RunPlan, trackers: Trackers | None, name: str) -> None:
    """A trained backbone's stored epochs to the trackers that have not received them (named after it trained)."""
    if trackers is None:
        return
    path = plan.rundir.history_file(name)
    try:
        stored = read_json(path) if path.is_file() else {}
    except (OSError, ValueError):  # an unreadable history leaves the trackers without it, not the run
        return
    trackers.history(name, stored.get("history") if isinstance(stored, dict) else None)


# What a recipe changes only after training: two recipes equal but for these train the same models.
AFTER_TRAINING = {"adjuster": "none", "adjuster_options": {}, "threshold_rule": "fixed"}


def training_identity(recipe: Recipe) -> dict[str, Any]:
    """The part of a recipe that decides the trained weights (the rest acts on their outputs)."""
    return recipe.replace(**AFTER_TRAINING).to_dict()


def shares_training(twin: Recipe, mine: Recipe, registry: Registry, counts: Sequence[int], n_train: int) -> str | None:
    """``"all"`` when ``twin`` trains exactly as ``mine``; ``"stages"`` when it differs only in its schedule, whose
    stages (on these training counts) are the first of ``mine``'s; None otherwise."""
    if training_identity(twin) == training_identity(mine):
        return "all"
    unscheduled = {"schedule": "standard", "schedule_options": {}}
    if training_identity(twin.replace(**unscheduled)) != training_identity(mine.replace(**unscheduled)):
        return None
    from mlbench.training.stages import schedule_stages

    theirs, ours = (schedule_stages(registry, r, counts, n_train) for r in (twin, mine))
    return "stages" if len(theirs) < len(ours) and tuple(ours[:len(theirs)]) == tuple(theirs) else None


def copy_twin_training(plan: RunPlan, name: str, train_labels: np.ndarray) -> bool:
    """Backbone ``name`` from the run's training twin, when the twin trained it on the same label file, split and
    usable images: copied whole when it trained the same recipe (True: nothing to train), or its checkpoints
    copied when its schedule's stages begin this one's (False: training resumes after them)."""
    if plan.options.training_twin is None or plan.rundir.last_checkpoint(name).exists():
        return False
    # Only a sibling cell of the same grid (GRID/cells/REMEDY/seed-N): a stored path leads nowhere else.
    cells = plan.rundir.path.resolve().parent.parent
    if not is_inside(plan.options.training_twin, cells) or Path(plan.options.training_twin).resolve() == \
            plan.rundir.path.resolve():
        return False
    twin = RunDir(plan.options.training_twin)
    try:
        theirs, mine = twin.manifest(), plan.rundir.manifest()
        same_data = (all(theirs.get(k) == mine.get(k) for k in ("csv_sha256", "split_hash", "benchmark_version"))
                     and twin.skips("preprocess") == plan.rundir.skips("preprocess"))
        shared = same_data and shares_training(recipe_from_dict(theirs.get("recipe"), str(twin.manifest_file)),
                                               plan.recipe, plan.registry, train_labels.sum(axis=0).tolist(),
                                               len(train_labels))
    except (RunDirError, OSError, ValueError):
        return False
    source = twin.backbone(name)
    if not shared or not (source.done.is_file() and source.predictions.is_file()):
        return False
    target = plan.rundir.backbone(name)
    # Whole: the predictions last, as their presence marks a backbone trained. Stages: the checkpoints,
    # whose state says which stages are done, so training resumes at the first stage the twin lacks.
    files = (source.best, source.last, source.history, source.done, source.predictions) if shared == "all" else (
        source.best, source.last)
    if not all(is_inside(path, cells) for path in files):  # a link out of the grid: train here instead
        return False
    for path in files:
        if path.is_file():
            write_bytes(target.folder / path.name, path.read_bytes())
    key = "training_copied_from" if shared == "all" else "training_resumed_from"
    plan.rundir.update_manifest(lambda m: m.setdefault(key, {}).update({name: theirs.get("run_id")}))
    plan.reporter.say(f"train {name}: {'copied from' if shared == 'all' else 'first stages copied from'} "
                      f"{twin.path.name}, which trains them alike")
    return shared == "all"


@dataclass
class Entry:
    """One backbone's or ensemble's scores: test scores and 0/1 decisions, and validation scores."""

    name: str
    kind: str  # backbone or ensemble
    scores: np.ndarray  # test (images, labels)
    decided: np.ndarray  # test decisions at the recipe's threshold
    val_scores: np.ndarray


@dataclass
class Combined:
    """Every entry, backbones first then ensembles, in recipe order."""

    entries: list[Entry] = field(default_factory=list)


def ensemble_stage(plan: RunPlan, prepared: Prepared) -> Combined:
    """The ensembles from the stored per-backbone predictions; predictions.parquet with every entry."""
    rundir, recipe, labels = plan.rundir, plan.recipe, list(plan.benchmark.labels)
    missing = [b for b in recipe.backbones if not rundir.backbone_predictions(b).exists()]
    if missing:
        raise RunError(f"{rundir.path}: backbones {', '.join(missing)} have no predictions yet; train them first")
    frames = [predictions.read(rundir.backbone_predictions(b),  # a job's output: checked like any predictions file
                               [predictions.Coverage(s, prepared.ids(s), [b], labels) for s in EVAL_SPLITS])
              for b in recipe.backbones]
    probs = {s: np.stack([predictions.wide(f, b, prepared.ids(s), labels) for f, b in zip(frames, recipe.backbones)])
             for s in EVAL_SPLITS}
    if recipe.adjuster == NO_ADJUSTER:
        tables = [predictions.from_frame(f) for f in frames]
    else:  # each backbone fitted on its own validation outputs; its raw outputs stay in its folder
        probs = _adjusted(plan, prepared, probs)
        tables = [predictions.to_table(prepared.ids(s), [s] * len(prepared.ids(s)), b, labels, probs[s][i])
                  for i, b in enumerate(recipe.backbones) for s in EVAL_SPLITS]
    test, val = probs["test"], probs["val"]
    combined = Combined([
        Entry(b, "backbone", test[i], (test[i] >= recipe.threshold).astype(np.uint8), val[i])
        for i, b in enumerate(recipe.backbones)])
    for name in recipe.ensembles:
        ensemble = plan.registry.create("ensemble", name, threshold=recipe.threshold)
        combined_scores = {}
        for subset in EVAL_SPLITS:
            combined_scores[subset] = ensemble.combine(probs[subset])
            ids = prepared.ids(subset)
            tables.append(predictions.to_table(ids, [subset] * len(ids), name, labels, combined_scores[subset][0]))
        scores, decided = combined_scores["test"]
        combined.entries.append(Entry(name, "ensemble", scores, decided, combined_scores["val"][0]))
    predictions.write(rundir.predictions_file, tables)
    return combined


def _adjusted(plan: RunPlan, prepared: Prepared, probs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The recipe's adjuster applied to every backbone's outputs; the fits recorded in the manifest."""
    rundir, n_labels = plan.rundir, len(plan.benchmark.labels)
    heads = [head_from_record(read_json(rundir.backbone_done(b)).get("head"), n_labels)
             if rundir.backbone_done(b).is_file() else None for b in plan.recipe.backbones]
    train_rows = prepared.rows("train")
    adjusted, record = adjust_backbones(plan.registry, plan.recipe, probs, prepared.Y[prepared.rows("val")],
                                        prepared.Y[train_rows].sum(axis=0).astype(int).tolist(), len(train_rows),
                                        heads)
    rundir.update_manifest(lambda m: m.update(adjuster=record))
    return adjusted


def metrics_stage(plan: RunPlan, prepared: Prepared, combined: Combined) -> pd.DataFrame:
    """Per-label and global metrics with patient-bootstrap 95% CIs on the test split: leaderboard.parquet."""
    rundir, labels = plan.rundir, list(plan.benchmark.labels)
    test_rows = prepared.rows("test")
    y = prepared.Y[test_rows]
    patients = prepared.frame["patient_id"].astype(str).to_numpy()[test_rows]
    train_counts = prepared.Y[prepared.rows("train")].sum(axis=0)  # an unknown cell is 0: known positives
    y_val = prepared.Y[prepared.rows("val")]
    tuned = plan.recipe.threshold_rule == "val-f1"
    m = rundir.manifest()
    base = rundir.provenance(m)
    kinds = {e.name: e.kind for e in combined.entries}
    rows = []
    kept = {}  # each entry's replicates: a grid's comparison reuses them instead of computing them again
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetricWarning)
        # The one scoring loop: rescoring recomputes a stored run's rows with the same function.
        scored, fitted = score_entries([(e.name, e.kind, e.scores, e.decided, e.val_scores) for e in combined.entries],
                                       y, patients, labels, train_counts=train_counts, n_boot=plan.options.n_boot,
                                       seed=BOOTSTRAP_SEED, threshold_rule=plan.recipe.threshold_rule, y_val=y_val,
                                       known=prepared.known("test"), known_val=prepared.known("val"), replicates=kept)
    if kept:
        write_replicates(rundir.path, kept, n_boot=plan.options.n_boot, seed=BOOTSTRAP_SEED)
        for row in scored:
            name = row["entry"]
            wall = m["stages"].get(f"train:{name}", {}).get("seconds") if kinds[name] == "backbone" else None
            rows.append({**base, "entry": name, "entry_kind": row["entry_kind"], "label": row["label"],
                         "metric": row["metric"], "value": row["value"], "ci_low": row["ci_low"],
                         "ci_high": row["ci_high"], "n_positive": row["n_positive"], "wall_time_s": wall})
    notes = sorted({str(w.message) for w in caught if issubclass(w.category, MetricWarning)})
    for note in notes:  # once per label, not once per entry
        warnings.warn(note, MetricWarning, stacklevel=2)
    rundir.update_manifest(lambda m: m.update(metric_warnings=notes, bootstrap={
        "n_boot": plan.options.n_boot, "seed": BOOTSTRAP_SEED, "resampled": "patients"}, thresholds={
        "rule": plan.recipe.threshold_rule, "fixed": plan.recipe.threshold,
        **({"fitted_on": "val", "objective": "f1_pos", "per_entry": fitted} if tuned else {})}))
    table = leaderboard.to_table(rows)
    rundir.write_leaderboard(table)
    return table.to_pandas()


def _timed(plan: RunPlan, name: str, work, *args):
    """Run one stage, say so, and record its wall time in the manifest (rank 0)."""
    plan.reporter.say(f"stage {name}")
    started = time.perf_counter()
    out = work(*args)
    if plan.group.is_main and plan.rundir.exists():
        plan.rundir.record_stage(name, time.perf_counter() - started)
    return out


def prepare(plan: RunPlan) -> Prepared:
    """Data, split and cache: everything training needs. Under torchrun rank 0 writes, the others wait.

    The data and split stages run once: a resume with the same plan and label file (sha256) reads
    the stored split back (:func:`stored_split`)."""
    if plan.group.is_main:
        source = source_stage(plan)
    plan.group.barrier()
    if not plan.group.is_main:
        source = source_stage(plan)  # finds the corpus rank 0 wrote
    if plan.group.is_main:
        split = stored_split(plan, source)
        if split is not None:
            plan.reporter.say("stage data, split: reused (same plan, same label file)")
        else:
            plan.reporter.say("stage data")
            started = time.perf_counter()
            records = data_stage(plan, source)
            data_seconds = time.perf_counter() - started
            plan.reporter.say("stage split")
            started = time.perf_counter()
            split = split_stage(plan, source, records)
            start_manifest(plan, records, source, split)
            plan.rundir.record_stage("data", data_seconds)
            plan.rundir.record_stage("split", time.perf_counter() - started)
    plan.group.barrier()
    if not plan.group.is_main:  # rank 0 has written the split; read it (or split alike when it left no paths)
        split = stored_split(plan, source) or split_stage(plan, source, data_stage(plan, source))
    plan.benchmark = with_data_labels(plan.benchmark, split.labels)  # labels the data chose, for every stage after
    cache, usable = _timed(plan, "preprocess", preprocess_stage, plan, split, source)
    return Prepared(split, cache, usable)


def run(opts: RunOptions, registry: Registry | None = None, *, job: bool = False) -> RunResult:
    """Run (or resume) a benchmark end to end; see the module docstring for what lands where.

    Rank 0 holds the run directory's writer lock (:mod:`mlbench.foundations.dirlock`) and its tasks' locks
    (``train:BACKBONE`` for each backbone it trains, ``ensembles``); a second writer refuses at once.
    ``job=True``: one job of a run an executor drives, whose driver holds the directory's lock; the
    job takes only its own tasks' locks. ``--only-backbone`` likewise leaves the directory's lock to
    the other backbones' runs.
    """
    return run_plan(plan_run(opts, registry), job=job)


def run_plan(plan: RunPlan, *, job: bool = False) -> RunResult:
    """:func:`run` of a plan already made (by :func:`plan_run`, or read back by :func:`load_plan` in a job)."""
    import contextlib

    from mlbench.foundations import dirlock

    opts = plan.options
    started = time.perf_counter()
    try:
        writer = contextlib.nullcontext()
        if plan.group.is_main:  # the other torchrun ranks write nothing
            trained = () if opts.ensemble_only else tuple(opts.only_backbones or plan.recipe.backbones)
            # The executor's task names (mlbench.execution.executors plans one job per task).
            tasks = [f"train:{b}" for b in trained] + ([] if opts.only_backbones else ["ensembles"])
            writer = dirlock.hold(plan.rundir.path, "run", whole=not (job or opts.only_backbones), tasks=tasks,
                                  role="job" if job else "command")
        with writer:
            if not job:  # a job reads the plan its driver stored
                store_plan(plan)
            return _run_stages(plan, started)
    finally:
        shutdown(plan.group)


def _run_stages(plan: RunPlan, started: float) -> RunResult:
    """The stages of :func:`run` in order, under its writer lock; the run's trackers open once the manifest is."""
    prepared = prepare(plan)
    trackers = run_trackers(plan)
    try:
        result = _stages_after_prepare(plan, started, prepared, trackers)
    except BaseException:
        if trackers is not None:
            with contextlib.suppress(TrackerError):  # the first failure is the one to report
                trackers.close()
        raise
    if trackers is not None:
        trackers.close()
    return result


def run_trackers(plan: RunPlan) -> Trackers | None:
    """The trackers the run names (rank 0 only), each told the recipe once; None when it names none.

    The manifest records each tracker used (plugin, package, its folder relative to the run) and what
    it received, so that a resume sends each epoch once and a tracker named later gets what it missed."""
    names = list(plan.options.trackers or ())
    if not names or not plan.group.is_main:
        return None
    rundir = plan.rundir
    m = rundir.manifest()
    run_id = m.get("run_id") if isinstance(m.get("run_id"), str) and m.get("run_id") else rundir.path.name

    def persist(tracker: str, what: str, key: str | None, value: Any) -> None:
        def change(m: dict[str, Any]) -> None:
            # One field at a time, merged: the jobs of one run (a backbone each) share the record.
            if not isinstance(m.get("trackers"), dict):
                m["trackers"] = {}
            if not isinstance(m["trackers"].get(tracker), dict):
                m["trackers"][tracker] = {}
            mine = m["trackers"][tracker]
            if key is None:
                mine[what] = value
            else:
                if not isinstance(mine.get(what), dict):
                    mine[what] = {}
                mine[what][key] = value
        rundir.update_manifest(change)

    with rundir.lock():  # two jobs of one run find (or start) the same tracker run, not one each
        trackers = open_trackers(plan.registry, names, folder_of=rundir.tracker_dir, run_id=run_id,
                                 benchmark=plan.benchmark.name, ledger=m.get("trackers"), persist=persist)
    for t in trackers.opened:  # its folder relative to the run: a moved run directory still names it
        used = {"plugin": t.entry.plugin, "package": f"{t.entry.package or t.entry.plugin}=={t.entry.version or '?'}",
                "folder": os.path.relpath(rundir.tracker_dir(t.name), rundir.path)}
        for what, value in used.items():
            persist(t.name, what, None, value)
    trackers.params(flat_params({"benchmark": plan.benchmark.name, "benchmark_version": plan.benchmark.version,
                                 "dataset_kind": m.get("dataset_kind"), **plan.recipe.to_dict()}))
    return trackers


def _stages_after_prepare(plan: RunPlan, started: float, prepared: Prepared, trackers: Trackers | None) -> RunResult:
    opts = plan.options
    if not opts.ensemble_only:
        for name in opts.only_backbones or plan.recipe.backbones:
            train_stage(plan, prepared, name, trackers)
            plan.group.barrier()  # rank 0 has written this backbone's predictions
    if not plan.group.is_main:
        return RunResult(plan.rundir.path, None, {}, is_main=False)
    table = None
    if not opts.only_backbones:
        combined = _timed(plan, "ensemble", ensemble_stage, plan, prepared)
        table = _timed(plan, "metrics", metrics_stage, plan, prepared, combined)
        if trackers is not None:
            trackers.metrics(entry_metrics(table, leaderboard.GLOBAL_LABEL))
    finished = {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")} if table is not None else {}
    m = plan.rundir.update_manifest(lambda m: m.update(
        wall_time_s=round(sum(s["seconds"] for s in m["stages"].values()), 3),
        last_invocation_s=round(time.perf_counter() - started, 3), **finished))
    return RunResult(plan.rundir.path, table, m)


def preprocess(benchmark: str, source: DataSource, cache_dir: Path, *, crop: bool = True, size: int | None = None,
               workers: int | None = None, registry: Registry | None = None,
               progress: bool | str = "auto", dataset_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill the cache with every image of ``benchmark`` (``mlbench preprocess``); resumable."""
    registry = registry or get_registry()
    bench: Benchmark = registry.create("benchmark", benchmark)
    recipe = bench.recipe.replace(crop=crop, **({"image_size": size} if size is not None else {}))
    records = read_dataset(registry, bench.dataset, source, dataset_options)
    split = split_benchmark(records, bench)
    preprocessor = registry.create("preprocessor", recipe.active_preprocessor, size=recipe.image_size,
                                   **dict(recipe.preprocessor_options))
    with Reporter(progress).bars() as bar:
        cache = build_cache(split.frame[["image_id", "image_path"]], preprocessor, recipe.image_size, cache_dir,
                            workers=workers, progress=bar, image_root=source.images)
    # Images the reader refused as links out of the image folder count as skipped here too.
    refused = [s for s in records.skipped if s.reason == OUTSIDE_ROOT]
    return cache.write_manifest(split.frame["image_id"].astype(str).tolist(), refused=refused)


@dataclass
class TrainedRun:
    """A finished run loaded back: what explainers and scorers need."""

    rundir: RunDir
    manifest: dict[str, Any]
    benchmark: Benchmark
    recipe: Recipe
    models: dict[str, torch.nn.Module]  # backbone name -> model in eval mode, best checkpoint
    split: pd.DataFrame  # split.parquet
    registry: Registry

    @property
    def run_dir(self) -> Path:
        return self.rundir.path

    @property
    def labels(self) -> tuple[str, ...]:
        return self.benchmark.labels

    def preprocessor(self):
        """The run's preprocessor (to prepare images that are not in the cache)."""
        return self.registry.create("preprocessor", self.recipe.active_preprocessor, size=self.recipe.image_size,
                                    **dict(self.recipe.preprocessor_options))

    def cache(self, given: str | Path | None = None) -> Cache:
        """The run's cache: ``given`` (the user's --cache), else the one stored inside the run directory."""
        return Cache.open(self.rundir.cache_path(given))

    def crops(self) -> pd.DataFrame:
        """Each image's crop box in original pixels (the run's preprocess manifest)."""
        return self.rundir.preprocess_manifest()


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu", registry: Registry | None = None) -> TrainedRun:
    """Rebuild every trained backbone of RUN_DIR from its best checkpoint (loaded with weights_only)."""
    rundir = RunDir(run_dir)
    registry = registry or get_registry()
    m = rundir.manifest()
    bench: Benchmark = registry.create("benchmark", m["benchmark"])
    if bench.version != m["benchmark_version"]:
        raise RunError(f"{rundir.path} was made with {bench.name} {m['benchmark_version']}, "
                       f"installed is {bench.version}")
    bench = with_data_labels(bench, [c for c in rundir.split().columns if c not in SPLIT_KEY_COLUMNS],
                             str(rundir.split_file))
    recipe = rundir.recipe()
    device = pick_device(str(device)) if not isinstance(device, torch.device) else device
    models = {}
    for name in recipe.backbones:
        best = rundir.best_checkpoint(name)
        if not best.exists():
            raise RunError(f"{best}: no such file; the run did not train backbone '{name}'")
        model = build_backbone(registry, name, len(bench.labels), weightless(recipe))  # the checkpoint's weights
        try:
            model.load_state_dict(checkpoint.load(best, device=device)["model"])
        except RuntimeError as exc:  # shapes or keys that do not fit the backbone
            raise checkpoint.CheckpointError(f"{best}: does not fit backbone '{name}' "
                                             f"({str(exc).splitlines()[0]})") from None
        models[name] = on_device(model, device).eval()
    return TrainedRun(rundir, m, bench, recipe, models, rundir.split(), registry)


