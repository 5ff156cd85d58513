"""mlbench from Python: each thing the command line does, in one call.

    >>> import mlbench
    >>> result = mlbench.run_benchmark("padchest-specific", demo=True)     # = mlbench run ... --demo
    >>> mlbench.compare_run(result.run_dir).beats()                         # = mlbench compare RUN_DIR
    >>> mlbench.show_leaderboard("padchest-specific")                       # = mlbench leaderboard show
    >>> mlbench.list_plugins("loss")                                        # = mlbench plugins

``import mlbench`` stays light: these names load on first use, and each function imports only
what it needs (reading and comparing leaderboards imports no torch). The calls work from a plain
script (no ``if __name__ == "__main__":`` needed: nothing re-imports the caller's script), a
notebook, ``python -c`` or stdin.

Every argument is checked against one table (:data:`ARGUMENTS`) before any work: a wrong type, a
sequence given as one comma-joined str, a mapping given as ``"key=value"``, a bool where a number
belongs, a negative count all raise :class:`ArgumentError` (a :class:`~mlbench.foundations.errors.UserError`)
with one line naming the function, the argument, the value's type and what was expected. Names
(plugins, benchmarks, labels) are then checked by the library, with the same one-line errors the
commands print.

The names end in ``_run``/``_report`` because ``mlbench.judging.compare``, ``mlbench.judging.submit`` and
``mlbench.report`` are the library's modules: a function under the same name on the package would
be replaced by the module as soon as anything imports it.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mlbench.foundations.errors import UserError
from mlbench.foundations.options import OPTION_FLAGS, SEED_MAX
from mlbench.training.progress import MODES

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mlbench.judging.compare import Comparison, PairedComparison
    from mlbench.conformance import ConformanceReport
    from mlbench.data import DataSource
    from mlbench.data.inspect import LabelTree
    from mlbench.explainers.pipeline import ExplainReport
    from mlbench.grid.cells import GridResult
    from mlbench.grid.status import CellStatus
    from mlbench.preprocessing.crop_files import CropReport
    from mlbench.training.runner import RunResult
    from mlbench.judging.submit import SubmitResult
    from mlbench.judging.bundle import Bundle
    from mlbench.judging.score import ScoreResult
    from mlbench.training.predict import PredictResult
    from mlbench.judging.board import AddResult, Board, BuildResult
    from mlbench.judging.verify import Verdict
    from mlbench.judging.reproduce import Reproduction
    from mlbench.judging.external_validation import EvaluationResult

__all__ = ["ARGUMENTS", "ArgumentError", "GridStatus", "RunDir", "compare_run", "crop_images", "explain_images",
           "grid_status", "inspect_dataset", "label_tree", "list_plugins", "preprocess_images", "run_benchmark",
           "run_grid", "show_leaderboard", "split_dataset", "submit_run", "test_plugin", "write_demo_data",
           "write_report", "bundle_run", "score_predictions", "predict_images", "verify_bundle", "init_board",
           "add_to_board", "build_board", "reproduce_bundle", "run_config", "evaluate_run"]
PUBLISHED = "published"
EXECUTORS = ("inline", "local", "slurm")
SPLIT_NAMES = ("train", "val", "test")
SHOWN_CHARS = 40  # a value longer than this is cut in a message


def __getattr__(name: str) -> Any:
    # RunDir loads on first use: its module imports pandas, which `mlbench leaderboard show` never needs.
    if name == "RunDir":
        from mlbench.results.rundir import RunDir

        return RunDir
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ArgumentError(UserError, TypeError, ValueError):
    """A Python API function was given an argument it cannot use (one line: the function, the
    argument, the value's type, what was expected). Also a TypeError and a ValueError, as Python's
    own argument errors are."""


# -- the constraints --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Constraint:
    """What one argument accepts: ``expected`` (said in the error), ``accepts`` (the test) and
    ``convert`` (the accepted value as the library takes it: a Path, a tuple, a dict)."""

    expected: str
    accepts: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda value: value


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def argument_error(function: str, name: str, value: Any, expected: str) -> ArgumentError:
    """The one message shape: ``run_benchmark: max_epochs='1' (str); expected an int >= 1 (--epochs ...)``."""
    option = f" ({OPTION_FLAGS[name]} on the command line)" if name in OPTION_FLAGS else ""
    return ArgumentError(f"{function}: {name}={shown(value)} ({type(value).__name__}); expected {expected}{option}")


def optional(c: Constraint) -> Constraint:
    return Constraint(f"{c.expected}, or None", lambda v: v is None or c.accepts(v),
                      lambda v: None if v is None else c.convert(v))


def is_path(value: Any) -> bool:
    if not isinstance(value, (str, os.PathLike)):
        return False
    try:
        text = os.fspath(value)
    except TypeError:
        return False
    return isinstance(text, str) and text.strip() != "" and "\0" not in text  # bytes paths are not ours


def integer(low: int) -> Constraint:
    # bool is an int to Python, never a count here: max_epochs=True is a mistake.
    return Constraint(f"an int >= {low}",
                      lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low, int)


def is_name(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def is_names(value: Any) -> bool:
    if isinstance(value, str):  # one name; a comma-joined list is the command line's spelling, not Python's
        return is_name(value) and "," not in value
    return isinstance(value, (list, tuple)) and all(is_name(v) for v in value)


def as_names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def is_paths(value: Any) -> bool:
    return is_path(value) or (isinstance(value, (list, tuple)) and all(is_path(v) for v in value))


def as_paths(value: Any) -> list[Path]:
    return [Path(value)] if is_path(value) else [Path(v) for v in value]


def is_options(value: Any) -> bool:
    return isinstance(value, Mapping) and all(is_name(k) for k in value)


def is_backbone_options(value: Any) -> bool:
    return is_options(value) and all(is_options(v) for v in value.values())


def is_registry(value: Any) -> bool:
    from mlbench.contracts.registry import Registry

    return isinstance(value, Registry)


def is_recipe(value: Any) -> bool:
    from mlbench.contracts.benchmark import Recipe

    return isinstance(value, Recipe)


PATH = Constraint("a path (str or os.PathLike)", is_path, lambda v: Path(v))
BOOL = Constraint("True or False", lambda v: isinstance(v, bool))
NAME = Constraint("a non-empty str", is_name)
NAMES = Constraint("a tuple or list of names, e.g. ('resnet10t', 'densenet201') (one name alone is a str "
                   "without commas)", is_names, as_names)
PATHS = Constraint("a list of folders (str or os.PathLike), or one folder", is_paths, as_paths)
OPTIONS = Constraint("a dict of option name to value, e.g. {'percentage': 25}", is_options, dict)
BACKBONE_OPTIONS = Constraint("a dict of backbone name to a dict of its options, e.g. "
                              "{'densenet201': {'weights': 'w.safetensors'}}", is_backbone_options,
                              lambda v: {k: dict(o) for k, o in v.items()})
PROGRESS = Constraint(f"True, False or one of {', '.join(map(repr, MODES))}",
                      lambda v: isinstance(v, bool) or (isinstance(v, str) and v in MODES))
AGAINST = Constraint(f"{PUBLISHED!r} or a run directory (str or os.PathLike)",
                     lambda v: v == PUBLISHED or is_path(v), lambda v: v if v == PUBLISHED else Path(v))
REPORT_AGAINST = Constraint(f"{PUBLISHED!r} or None", lambda v: v is None or v == PUBLISHED)
REGISTRY = Constraint("an mlbench.contracts.registry.Registry", is_registry)
RECIPE = Constraint("an mlbench.contracts.benchmark.Recipe", is_recipe)
# run_benchmark's recipe: a whole Recipe, or a dict of fields replacing the benchmark's (or demo) recipe's.
RECIPE_OR_FIELDS = Constraint("an mlbench.contracts.benchmark.Recipe or a dict of its fields, e.g. {'lr': 0.01}",
                              lambda v: is_recipe(v) or is_options(v))
CALLBACK = Constraint("a callable", callable)
EXECUTOR = Constraint(f"one of {', '.join(map(repr, EXECUTORS))}", lambda v: v in EXECUTORS)
RESOURCES = Constraint("a dict of mlbench.execution.executors.Resources fields, e.g. {'gpus_per_node': 1}", is_options, dict)
SEED = Constraint(f"an int from 0 to {SEED_MAX}", lambda v: integer(0).accepts(v) and v <= SEED_MAX, int)
SEEDS = Constraint(f"a tuple or list of ints from 0 to {SEED_MAX}, e.g. (0, 1)",
                   lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(SEED.accepts(s) for s in v),
                   lambda v: [int(s) for s in v])
SPLIT_NAME = Constraint(f"one of {', '.join(map(repr, SPLIT_NAMES))}", lambda v: v in SPLIT_NAMES)
NUMBER = Constraint("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), float)
INT = Constraint("an int",  # a range the plugin checks (crop_images' size)
                 lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool), int)
BITS = Constraint("8 or 16", lambda v: v in (8, 16) and not isinstance(v, bool), int)
SCOPED_OPTIONS = Constraint("a dict of '[BACKBONE.]KEY' to value, e.g. {'densenet201.weights': 'w.pt', "
                            "'drop_rate': 0.1}", is_options, dict)

# The fields of mlbench.training.runner.RunOptions run_benchmark takes (tests check that none is missing).
RUN_OPTIONS: dict[str, Constraint] = {
    "out": optional(PATH), "csv": optional(PATH), "images": optional(PATH), "demo": BOOL,
    "demo_dir": optional(PATH), "cache": optional(PATH),
    "backbones": optional(NAMES), "loss": optional(NAME), "ensembles": optional(NAMES),
    "crop": optional(BOOL), "augment": optional(BOOL), "pretrained": optional(BOOL),
    "max_epochs": optional(integer(1)), "image_size": optional(integer(16)), "seed": optional(SEED),
    "demo_options": optional(OPTIONS), "loss_options": optional(OPTIONS), "dataset_options": optional(OPTIONS),
    "sampler": optional(NAME), "sampler_options": optional(OPTIONS), "threshold_rule": optional(NAME),
    "schedule": optional(NAME), "schedule_options": optional(OPTIONS), "adjuster": optional(NAME),
    "adjuster_options": optional(OPTIONS), "profile": optional(NAME), "training_twin": optional(PATH),
    "backbone_options": optional(BACKBONE_OPTIONS), "device": NAME, "workers": optional(integer(1)),
    "only_backbones": optional(NAMES), "ensemble_only": BOOL, "n_boot": integer(0), "compile": BOOL,
    "progress": PROGRESS, "recipe": optional(RECIPE_OR_FIELDS), "trackers": optional(NAMES),
}
# How work is run and watched: run_benchmark and run_grid take the same.
EXECUTION: dict[str, Constraint] = {"executor": EXECUTOR, "resources": optional(RESOURCES), "wait": BOOL,
                                    "say": optional(CALLBACK)}
# A board keeper's files and settings: verify_bundle and add_to_board take the same.
KEEPER: dict[str, Constraint] = {"bundle": PATH, "csv": PATH, "images": optional(PATH), "labels": optional(PATH),
                                 "sample": integer(0), "tolerance": NUMBER}
# Every public function's arguments, by name. The library checks what needs a file or the registry.
ARGUMENTS: dict[str, dict[str, Constraint]] = {
    "run_benchmark": {"benchmark": NAME, **RUN_OPTIONS, "scoped_backbone_options": optional(SCOPED_OPTIONS),
                      **EXECUTION},
    "run_grid": {"benchmark": NAME, "remedies": NAMES, "out": PATH, "backbones": optional(NAMES), "seeds": SEEDS,
                 "demo": BOOL, "csv": optional(PATH), "images": optional(PATH), "max_epochs": optional(integer(1)),
                 "image_size": optional(integer(16)), "ensembles": optional(NAMES), "n_boot": integer(1),
                 "pretrained": optional(BOOL), "dataset_options": optional(OPTIONS),
                 "device": NAME, "workers": optional(integer(1)), "progress": PROGRESS,
                 "trackers": optional(NAMES), **EXECUTION},
    "grid_status": {"grid_dir": PATH},
    "write_demo_data": {"benchmark": NAME, "out": PATH, "seed": SEED, "options": optional(OPTIONS)},
    "preprocess_images": {"benchmark": NAME, "csv": PATH, "images": PATH, "cache": PATH, "crop": BOOL,
                          "size": optional(integer(16)), "workers": optional(integer(1)),
                          "dataset_options": optional(OPTIONS)},
    "inspect_dataset": {"dataset": NAME, "csv": optional(PATH), "images": optional(PATH),
                        "dataset_options": optional(OPTIONS)},
    "split_dataset": {"benchmark": NAME, "csv": PATH, "out": PATH, "images": optional(PATH),
                      "seed": optional(SEED), "dataset_options": optional(OPTIONS)},
    "label_tree": {"dataset": optional(NAME), "label": optional(NAME)},
    "crop_images": {"inputs": PATHS, "out": PATH, "size": INT, "preprocessor": optional(NAME),
                    "segmenter": optional(NAME), "weights": optional(PATH), "options": optional(OPTIONS),
                    "invert": optional(BOOL), "bits": BITS, "on_progress": optional(CALLBACK)},
    "explain_images": {"run_dir": PATH, "out": PATH, "images": optional(PATHS), "split": optional(SPLIT_NAME),
                       "limit": optional(integer(1)), "labels": optional(NAMES), "threshold": optional(NUMBER),
                       "ensemble": NAME, "device": NAME, "batch_size": integer(1), "agreeing_only": BOOL,
                       "score": BOOL, "boxes": optional(PATH), "lungs": optional(PATH), "explainer": optional(NAME),
                       "explainer_options": optional(OPTIONS), "cache": optional(PATH), "csv": optional(PATH),
                       "image_root": optional(PATH)},
    "test_plugin": {"plugin": NAME},
    "compare_run": {"run_dir": PATH, "against": AGAINST, "variant": optional(NAME), "metric": optional(NAME),
                    "profile": optional(NAME),
                    "leaderboard_file": optional(PATH), "n_boot": integer(1), "seed": SEED,
                    "json_file": optional(PATH), "png_file": optional(PATH), "png_entry": optional(NAME)},
    "submit_run": {"run_dir": PATH, "leaderboard": optional(PATH), "csv": optional(PATH), "images": optional(PATH),
                   "registry": optional(REGISTRY)},
    "list_plugins": {"kind": optional(NAME), "errors": BOOL},
    "show_leaderboard": {"benchmark": NAME, "label": optional(NAME), "metric": optional(NAME),
                         "profile": optional(NAME), "variant": optional(NAME),
                         "source": optional(NAME), "file": optional(PATH), "arrow": BOOL},
    "write_report": {"path": PATH, "out": PATH, "against": REPORT_AGAINST, "explain_dirs": optional(PATHS),
                     "force": BOOL, "on_note": optional(CALLBACK)},
    "bundle_run": {"run_dir": optional(PATH), "out": PATH, "with_checkpoints": BOOL, "predictions": optional(PATH),
                   "benchmark": optional(NAME), "describe": optional(NAME)},
    "score_predictions": {"file": PATH, "benchmark": NAME, "csv": PATH, "images": optional(PATH), "n_boot": integer(0),
                          "seed": SEED, "against": REPORT_AGAINST, "metric": NAME, "variant": optional(NAME),
                          "json_file": optional(PATH), "registry": optional(REGISTRY)},
    "predict_images": {"run_dir": PATH, "images": PATH, "out": PATH, "list_file": optional(PATH), "device": NAME,
                       "batch_size": optional(integer(1)), "workers": optional(integer(1)), "progress": PROGRESS},
    "verify_bundle": {**KEEPER, "synthetic": BOOL, "verdict_file": optional(PATH)},
    "init_board": {"folder": PATH, "benchmark": NAME, "csv": optional(PATH), "synthetic": BOOL,
                   "profile": optional(NAME)},
    "add_to_board": {"folder": PATH, **KEEPER, "check_only": BOOL},
    "build_board": {"folder": PATH, "csv": optional(PATH), "images": optional(PATH)},
    "run_config": {"run_dir": PATH},
    "evaluate_run": {"run_dir": PATH, "on": NAME, "csv": optional(PATH), "images": optional(PATH), "demo": BOOL,
                     "demo_options": optional(OPTIONS), "dataset_options": optional(OPTIONS), "device": NAME,
                     "batch_size": optional(integer(1)), "workers": optional(integer(1)), "progress": PROGRESS},
    "reproduce_bundle": {"bundle": PATH, "csv": PATH, "images": PATH, "out": PATH, "n_boot": integer(1), "seed": SEED,
                         "json_file": optional(PATH), "device": NAME, "workers": optional(integer(1)),
                         "progress": PROGRESS, **EXECUTION},
}
# compare_run options that only a comparison with the published board uses.
PUBLISHED_ONLY = ("variant", "metric", "leaderboard_file", "png_file", "png_entry")


# Each function's positional parameters: never offered as an option name in an "unknown option" message.
POSITIONAL = {"run_benchmark": ("benchmark",), "compare_run": ("run_dir",), "submit_run": ("run_dir",),
              "write_report": ("path", "out"), "run_grid": ("benchmark",), "grid_status": ("grid_dir",),
              "write_demo_data": ("benchmark", "out"), "preprocess_images": ("benchmark",),
              "inspect_dataset": ("dataset",), "split_dataset": ("benchmark",), "crop_images": ("inputs",),
              "explain_images": ("run_dir",), "test_plugin": ("plugin",), "bundle_run": ("run_dir", "out"),
              "score_predictions": ("file",), "predict_images": ("run_dir",), "verify_bundle": ("bundle",),
              "init_board": ("folder", "benchmark"), "add_to_board": ("folder", "bundle"), "build_board": ("folder",),
              "reproduce_bundle": ("bundle",),
              "run_config": ("run_dir",), "evaluate_run": ("run_dir",)}


def validate(function: str, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` checked against ``ARGUMENTS[function]`` and converted; an ArgumentError otherwise."""
    table = ARGUMENTS[function]
    out = {}
    for name, value in given.items():
        if name not in table:
            names = [n for n in table if n not in POSITIONAL.get(function, ())]
            raise ArgumentError(f"{function}: unknown option '{name}'; expected one of {', '.join(names)}")
        constraint = table[name]
        if not constraint.accepts(value):
            raise argument_error(function, name, value, constraint.expected)
        out[name] = constraint.convert(value)
    return out


# -- the API ----------------------------------------------------------------------------------------
def run_benchmark(benchmark: str, **options: Any) -> RunResult:
    """Run (or resume) ``benchmark`` end to end, as ``mlbench run`` does; return its :class:`RunResult`.

    ``options`` are the fields of :class:`mlbench.training.runner.RunOptions` (``demo``, ``csv``, ``images``,
    ``out``, ``backbones``, ``max_epochs``, ``image_size``, ``n_boot``, ...); leave one out and the
    benchmark's recipe decides. ``result.leaderboard`` is the run's long-format leaderboard.
    Besides them: ``scoped_backbone_options`` (``--backbone-option``'s form: a key ``BACKBONE.KEY``
    goes to that backbone, a plain ``KEY`` to every backbone of the run; ``backbone_options`` wins),
    and ``executor`` ("inline", "local" or "slurm": one job per backbone, then the ensembles job)
    with ``resources`` (:class:`mlbench.execution.executors.Resources` fields), ``wait`` (False: SLURM only,
    raises :class:`mlbench.execution.executors.JobsSubmitted` once queued) and ``say`` (the jobs' news).

        >>> mlbench.run_benchmark("padchest-specific", demo=True, backbones=("resnet10t",), max_epochs=1)
    """
    table = ARGUMENTS["run_benchmark"]
    checked = validate("run_benchmark", {k: v for k, v in {"benchmark": benchmark, **options}.items() if k in table})
    from mlbench.training.runner import RunOptions

    # A RunOptions field without a row in the table passes unchecked (a test keeps the table complete).
    fields = [f.name for f in dataclasses.fields(RunOptions) if f.name != "benchmark"]
    unknown = [k for k in options if k not in table and k not in fields]
    if unknown:
        names = fields + [k for k in table if k not in RUN_OPTIONS and k != "benchmark"]
        raise ArgumentError(f"run_benchmark: unknown option '{unknown[0]}'; expected one of {', '.join(names)}")
    checked.update({k: v for k, v in options.items() if k not in table})
    scoped = checked.pop("scoped_backbone_options", None)
    execution = {k: checked.pop(k) for k in EXECUTION if k in checked}
    executor = execution.get("executor", "inline")
    if not execution.get("wait", True):  # before any work: one line naming the executor
        from mlbench.execution.executors import check_wait

        check_wait(executor, wait=False)
    if isinstance(checked.get("recipe"), Mapping):
        checked["recipe"] = recipe_with(benchmark, checked["recipe"], demo=checked.get("demo", False))
    opts = RunOptions(**checked)
    if scoped:
        opts.backbone_options = backbone_options_of(opts, scoped)
    if executor == "inline":
        from mlbench.training.runner import run

        return run(opts)
    from mlbench.execution.executors import run_with_executor  # one submitit job per backbone, then the ensembles job

    return run_with_executor(opts, executor, execution.get("say") or (lambda _: None),
                             wait=execution.get("wait", True), **(execution.get("resources") or {}))


def recipe_with(benchmark: str, fields: Mapping[str, Any], *, demo: bool) -> Any:
    """The benchmark's recipe (its demo recipe with ``demo``) with ``fields`` replaced: a Recipe."""
    import dataclasses as dc

    from mlbench.contracts.benchmark import Recipe
    from mlbench.contracts.registry import get_registry
    from mlbench.results.rundir import recipe_from_dict

    names = {f.name for f in dc.fields(Recipe)}
    unknown = [k for k in fields if k not in names]
    if unknown:
        raise ArgumentError(f"run_benchmark: recipe field '{unknown[0]}' is unknown; expected one of "
                            f"{', '.join(sorted(names))}")
    bench = get_registry().create("benchmark", benchmark)
    base = bench.demo_recipe if demo else bench.recipe
    return recipe_from_dict({**base.to_dict(), **fields}, "run_benchmark: recipe")


def backbone_options_of(opts: Any, scoped: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"BACKBONE.KEY": v, "KEY": v}`` as per-backbone options: a plain KEY for every backbone the
    run trains (its recipe, after the options' overrides); ``opts.backbone_options`` keep precedence."""
    from mlbench.foundations.options import OptionError
    from mlbench.contracts.registry import get_registry
    from mlbench.training.runner import make_recipe

    in_run = make_recipe(get_registry().create("benchmark", opts.benchmark), opts).backbones
    out: dict[str, dict[str, Any]] = {}
    for key, value in scoped.items():
        scope, dot, name = key.rpartition(".")
        if dot and not (name and scope):
            raise OptionError(f"--backbone-option {key}=...: expected [BACKBONE.]KEY=VALUE")
        for target in ([scope] if dot else in_run):
            out.setdefault(target, {})[name] = value
    for backbone, given in (opts.backbone_options or {}).items():
        out.setdefault(backbone, {}).update(given)
    return out


def run_grid(benchmark: str, remedies: Any, out: str | Path, **options: Any) -> GridResult:
    """Every remedy x seed as an ordinary run directory under ``out``, each remedy compared with the
    first (``mlbench grid BENCHMARK --remedies ... --out ...``); return the :class:`GridResult`.

    ``options``: ``backbones``, ``seeds`` ((0,)), ``demo``, ``csv``, ``images``, ``max_epochs``,
    ``image_size``, ``ensembles``, ``n_boot`` (1000), ``device`` ("auto"), ``workers``, ``progress``,
    ``trackers`` (every cell's experiment trackers, e.g. ``("tensorboard",)``; not the grid's identity),
    and ``executor``, ``resources``, ``wait``, ``say`` as in :func:`run_benchmark`.

        >>> mlbench.run_grid("padchest-specific", ("uniform", "ml-ros"), "grids/g", demo=True, max_epochs=1)
    """
    checked = validate("run_grid", {"benchmark": benchmark, "remedies": remedies, "out": out, **options})
    from mlbench.grid import cells as grid

    execution = {k: checked.pop(k) for k in EXECUTION if k in checked}
    executor, wait = execution.get("executor", "inline"), execution.get("wait", True)
    say = execution.get("say") or (lambda _: None)
    if not wait:
        from mlbench.execution.executors import check_wait

        check_wait(executor, wait=False)
    n_boot, device = checked.pop("n_boot", 1000), checked.pop("device", "auto")
    # The cells' overrides: part of the grid's identity, so the same for the command and for Python.
    run_options: dict[str, Any] = {"n_boot": n_boot, "device": device}
    for key in ("max_epochs", "image_size", "workers", "ensembles", "pretrained", "dataset_options"):
        value = checked.pop(key, None)
        if value is not None:
            run_options[key] = list(value) if key == "ensembles" else value
    backbones = checked.pop("backbones", None)
    spec = grid.GridSpec(benchmark=checked.pop("benchmark"), out=checked["out"], remedies=list(checked.pop("remedies")),
                         backbones=list(backbones) if backbones else None, seeds=checked.pop("seeds", [0]),
                         demo=checked.pop("demo", False), csv=checked.pop("csv", None),
                         images=checked.pop("images", None), run_options=run_options, n_boot=n_boot,
                         progress=checked.pop("progress", "auto"), trackers=checked.pop("trackers", None) or ())
    if executor == "inline":
        execute = grid.run_inline
    else:
        from mlbench.execution.executors import submitit_executor

        execute = submitit_executor(executor, checked["out"], say, wait=wait, **(execution.get("resources") or {}))
    return grid.run_grid(spec, executor=execute, say=say)


@dataclass
class GridStatus:
    """``mlbench grid status``: each cell's state, the counts by state, the command that resumes the
    interrupted cells (None when none is), and whether sacct told the SLURM jobs' states."""

    grid_dir: Path
    cells: list[CellStatus]
    counts: dict[str, int]
    resume: str | None
    sacct: bool


def grid_status(grid_dir: str | Path) -> GridStatus:
    """Every cell of a grid directory: done, running, pending, interrupted or failed (``mlbench grid status``).

        >>> mlbench.grid_status("grids/g").counts
    """
    grid_dir = validate("grid_status", {"grid_dir": grid_dir})["grid_dir"]
    from mlbench.grid import status as gridstatus
    from mlbench.execution.executors import slurm_job_states
    from mlbench.grid.cells import resume_command
    from mlbench.results.griddir import GridDir

    spec = GridDir(grid_dir).spec()  # a corrupt spec: one line, before sacct is asked anything
    job_states = slurm_job_states(grid_dir)
    cells = gridstatus.grid_status(grid_dir, job_states=job_states)
    counts = {s: sum(c.state == s for c in cells) for s in gridstatus.STATES}
    resume = resume_command(grid_dir, spec) if counts["interrupted"] else None
    return GridStatus(grid_dir, cells, counts, resume, job_states is not None)


def write_demo_data(benchmark: str, out: str | Path, *, seed: int = 0,
                    options: Mapping[str, Any] | None = None) -> DataSource:
    """Write ``benchmark``'s synthetic demo corpus (its dataset's own format) into ``out``
    (``mlbench demo-data OUT --benchmark ...``), as a run with ``demo=True`` does; a folder that
    already holds a complete corpus is reused. ``options`` go to the dataset's ``write_demo``.

        >>> mlbench.write_demo_data("padchest-specific", "demo", options={"n_patients": 50}).csv
    """
    checked = validate("write_demo_data", {"benchmark": benchmark, "out": out, "seed": seed, "options": options})
    from mlbench.demo import DemoCorpusError, read_source_record, write_source_record
    from mlbench.contracts.registry import get_registry

    registry = get_registry()
    bench = registry.create("benchmark", checked["benchmark"])
    dataset = registry.create("dataset", bench.dataset)
    if not hasattr(dataset, "write_demo"):
        raise DemoCorpusError(f"dataset '{bench.dataset}' has no demo corpus")
    out = checked["out"]
    if out.exists() and not out.is_dir():
        raise DemoCorpusError(f"{out}: is a file; expected a folder for the demo corpus")
    written = read_source_record(out)
    if written is not None:
        return written
    source = dataset.write_demo(out, seed=checked["seed"], **{**dict(bench.demo_options), **(checked["options"] or {})})
    write_source_record(out, source)
    return source


def preprocess_images(benchmark: str, csv: str | Path, images: str | Path, cache: str | Path, *, crop: bool = True,
                      size: int | None = None, workers: int | None = None,
                      dataset_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Decode, crop and resize every image of ``benchmark`` once into ``cache`` (``mlbench preprocess``);
    resumable. Returns the summary: ``path``, ``ok``, ``skipped``, ``manifest``.

        >>> mlbench.preprocess_images("padchest-specific", "labels.csv", "images", "cache", size=224)["ok"]
    """
    checked = validate("preprocess_images", {"benchmark": benchmark, "csv": csv, "images": images, "cache": cache,
                                             "crop": crop, "size": size, "workers": workers,
                                             "dataset_options": dataset_options})
    from mlbench.data import DataSource
    from mlbench.training.runner import preprocess

    return preprocess(checked["benchmark"], DataSource(checked["csv"], checked["images"]), checked["cache"],
                      crop=checked["crop"], size=checked["size"], workers=checked["workers"],
                      dataset_options=checked["dataset_options"])


def data_source(csv: Path, images: Path | None) -> DataSource:
    """A label file and its image root (default: the label file's folder)."""
    from mlbench.data import DataSource

    return DataSource(csv, images if images is not None else csv.parent)


def inspect_dataset(dataset: str, csv: str | Path | None = None, *, images: str | Path | None = None,
                    dataset_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The validation report of ``mlbench datasets inspect DATASET --csv ...``: rows, skips by reason,
    splits and imbalance of every benchmark of the dataset (images are not opened), the options it
    declares (``dataset_options`` set them), as plain data. Without ``csv``: only ``dataset`` and ``options``.

        >>> mlbench.inspect_dataset("padchest", "labels.csv")["images_kept"]
    """
    checked = validate("inspect_dataset", {"dataset": dataset, "csv": csv, "images": images,
                                           "dataset_options": dataset_options})
    from mlbench.data import inspect

    if checked["csv"] is None:
        return inspect.dataset_options_report(checked["dataset"], options=checked["dataset_options"])
    return inspect.inspect_dataset(checked["dataset"], data_source(checked["csv"], checked["images"]),
                                   options=checked["dataset_options"])


def split_dataset(benchmark: str, csv: str | Path, out: str | Path, *, images: str | Path | None = None,
                  seed: int | None = None, dataset_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``benchmark``'s patient-grouped split written to ``out`` (split.parquet, labels.json,
    summary.json), as ``mlbench split``; returns the summary (sizes, hash, timings, files).

        >>> mlbench.split_dataset("padchest-specific", "labels.csv", "split")["split_hash"]
    """
    checked = validate("split_dataset", {"benchmark": benchmark, "csv": csv, "out": out, "images": images,
                                         "seed": seed, "dataset_options": dataset_options})
    from mlbench.data import inspect

    return inspect.split_to_dir(checked["benchmark"], data_source(checked["csv"], checked["images"]), checked["out"],
                                seed=checked["seed"], options=checked["dataset_options"])


def label_tree(dataset: str | None = None, label: str | None = None) -> LabelTree:
    """A dataset's label tree (default: the one dataset with a tree), or the subtree under ``label``
    (matched case-insensitively), as ``mlbench labels tree [LABEL]``.

        >>> mlbench.label_tree(label="pneumonia").parents
    """
    checked = validate("label_tree", {"dataset": dataset, "label": label})
    from mlbench.data import inspect

    return inspect.label_tree(checked["dataset"], checked["label"])


def crop_images(inputs: Any, out: str | Path, **options: Any) -> CropReport:
    """Crop chest films (files or folders) to the lungs: PNGs and ``out/crops.csv`` (``mlbench crop``).

    ``options``: ``size`` (224), ``preprocessor`` (default: the one registered besides resize),
    ``segmenter``, ``weights`` (implies the torch segmenter), ``options`` (the preprocessor's),
    ``invert`` (None: detect), ``bits`` (16), ``on_progress(done, total)``. An input that does not
    exist is a skip (``report.missing``); no image at all is a CropError.

        >>> mlbench.crop_images(["films/"], "crops", size=512).n_cropped
    """
    checked = validate("crop_images", {"inputs": inputs, "out": out, **options})
    from mlbench.preprocessing import crop_files as cropping
    from mlbench.contracts.registry import get_registry

    chosen = cropping.make_cropper(get_registry(), checked.get("preprocessor"),
                                   size=checked.get("size", cropping.DEFAULT_SIZE), segmenter=checked.get("segmenter"),
                                   weights=checked.get("weights"), options=checked.get("options"))
    inputs, out = checked["inputs"], checked["out"]
    found, missing = cropping.find_images(inputs, exclude=out)
    if not found:
        named = "; ".join(f"{s.item}: {s.detail}" for s in missing) or ", ".join(map(str, inputs))
        raise cropping.CropError(f"no .png/.jpg/.jpeg image to crop in {named}")
    total, done = len(found), 0
    on_progress = checked.get("on_progress")

    def advance(_: Path) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    return cropping.crop_files(inputs, out, chosen, invert=checked.get("invert"), bits=checked.get("bits", 16),
                               on_image=advance)


def explain_images(run_dir: str | Path, out: str | Path, **options: Any) -> ExplainReport:
    """Grad-CAM panels, uncertainty maps and heatmap scores of a trained run (``mlbench explain``).

    ``options`` are the fields of :class:`mlbench.explainers.pipeline.ExplainRequest`: ``images``
    (files) or ``split`` ("test"; ``limit``), ``labels``, ``threshold``, ``ensemble``, ``device``,
    ``explainer``, ``explainer_options``, ``score``, ``boxes``, ``lungs``, ``cache``, ``csv``, ...

        >>> mlbench.explain_images("runs/padchest-specific-crop+aug", "explain", split="test", limit=8)
    """
    checked = validate("explain_images", {"run_dir": run_dir, "out": out, **options})
    from mlbench.explainers.pipeline import ExplainRequest, explain_run

    images, split, limit = checked.get("images") or [], checked.get("split"), checked.get("limit")
    if limit is not None and split is None:
        raise argument_error("explain_images", "limit", limit, "limit with split (at most this many of the split)")
    if bool(images) == (split is not None):
        raise argument_error("explain_images", "images", options.get("images"), "image files or split, one of them")
    checked["images"] = images
    if checked.get("explainer_options") is None:
        checked.pop("explainer_options", None)
    return explain_run(ExplainRequest(**checked))


def test_plugin(plugin: str) -> ConformanceReport:
    """Every item ``plugin`` (an entry-point name) registers, exercised on CPU against its contract
    (``mlbench plugins test PLUGIN``); ``report.passed`` is the verdict.

        >>> mlbench.test_plugin("mlbench-builtin").counts()
    """
    plugin = validate("test_plugin", {"plugin": plugin})["plugin"]
    from mlbench.conformance import check_plugin

    return check_plugin(plugin)


test_plugin.__test__ = False  # pytest: an API function, not a test


def compare_run(run_dir: str | Path, against: str | Path = PUBLISHED,
                **options: Any) -> Comparison | PairedComparison:
    """Per-label deltas of a run against its benchmark's published rows (``mlbench compare RUN_DIR``),
    or, with ``against=RUN_A``, paired patient-bootstrap differences ``run_dir`` minus ``RUN_A`` on
    their shared test images (``mlbench compare RUN_DIR --against RUN_A``).

    ``options``: ``variant``, ``metric`` (default: the scoring profile's primary), ``profile`` (default the run's),
    ``leaderboard_file``, ``png_file`` (per-label
    bars) with ``png_entry`` (against the published board only), ``n_boot``, ``seed``, ``json_file``
    (the comparison also written as JSON). Against the board: ``.rows`` is a DataFrame, ``.beats()``
    the labels whose published value lies below the run's 95% CI. Against a run: ``.rows`` holds
    every metric and scope (macro, frequency group, label) with its CI, p-value and verdict.

        >>> mlbench.compare_run("runs/padchest-specific-crop+aug", metric="auprc").rows
        >>> mlbench.compare_run("runs/ml-ros", against="runs/uniform").rows
    """
    checked = validate("compare_run", {"run_dir": run_dir, "against": against, **options})
    from mlbench.judging import compare

    run_b, run_a = checked.pop("run_dir"), checked.pop("against")
    json_file = checked.pop("json_file", None)
    if run_a == PUBLISHED:
        png_file, png_entry = checked.pop("png_file", None), checked.pop("png_entry", None)
        result = compare.compare_run(run_b, against=PUBLISHED, **checked)
        if png_file is not None:
            compare.plot_comparison(result, png_file, png_entry)
    else:
        if not run_a.is_dir():
            raise argument_error("compare_run", "against", against, f"{AGAINST.expected}; no such folder")
        extra = [name for name in PUBLISHED_ONLY if name in checked]
        if extra:
            raise argument_error("compare_run", extra[0], checked[extra[0]],
                                 f"no {extra[0]} with against=RUN_DIR (it applies to against={PUBLISHED!r}; a "
                                 "comparison of two runs holds every metric)")
        result = compare.compare_runs(run_a, run_b, **checked)
    if json_file is not None:
        from mlbench.foundations.io import write_json

        write_json(json_file, comparison_record(result))
    return result


def comparison_record(result: Comparison | PairedComparison) -> dict[str, Any]:
    """A comparison as plain JSON data (what ``compare --json`` writes): its facts and every row."""
    import json

    rows = json.loads(result.rows.to_json(orient="records"))
    if hasattr(result, "run_a"):  # two runs
        return {"run_a": result.run_a, "run_b": result.run_b, "notes": result.notes, "rows": rows}
    return {"run_id": result.run_id, "benchmark": result.benchmark, "metric": result.metric,
            "run_variant": result.run_variant, "published_variant": result.published_variant,
            "dataset_kind": result.dataset_kind, "comparable": result.comparable, "ci_source": result.ci_source,
            "notes": result.notes, "rows": rows,
            "external": [{"scope": e.scope, "metric": e.metric, "entry": e.entry, "n_images": e.n_images,
                          "notes": e.notes, "not_shared": e.not_shared,
                          "rows": json.loads(e.rows.to_json(orient="records"))} for e in result.external]}


def submit_run(run_dir: str | Path, leaderboard: str | Path | None = None, *, csv: str | Path | None = None,
               images: str | Path | None = None, **options: Any) -> SubmitResult:
    """Validate a run (split, coverage, every metric recomputed) and append it to ``leaderboard``
    (default: ``leaderboards/BENCHMARK.parquet``), as ``mlbench submit`` does. ``csv`` and ``images``
    say where the dataset lives now if it moved since the run. Raises ``SubmissionError`` listing
    every problem.

        >>> mlbench.submit_run("runs/padchest-specific-crop+aug", "my-board.parquet")
    """
    checked = validate("submit_run", {"run_dir": run_dir, "leaderboard": leaderboard, "csv": csv, "images": images,
                                      **options})
    from mlbench.judging import submit
    from mlbench.data import DataSource

    if (csv is None) != (images is None):
        given, value = ("csv", csv) if images is None else ("images", images)
        raise argument_error("submit_run", given, value, "csv and images together (where the dataset lives now)")
    csv, images = checked.pop("csv"), checked.pop("images")
    source = DataSource(csv, images) if csv is not None else None
    return submit.submit_run(checked.pop("run_dir"), checked.pop("leaderboard"), source=source, **checked)


def list_plugins(kind: str | None = None, *, errors: bool = False) -> list[dict[str, Any]]:
    """Every registered item (kind, name, plugin, package, version, summary), as ``mlbench plugins``.

    ``kind`` keeps one kind: dataset, loss, backbone, ensemble, explainer, preprocessor, sampler or
    benchmark. ``errors=True`` adds one row of kind ``"error"`` per plugin that failed to load
    (plugin, package, error), as ``mlbench plugins --json`` lists them.

        >>> [p["name"] for p in mlbench.list_plugins("ensemble")]
    """
    checked = validate("list_plugins", {"kind": kind, "errors": errors})
    kind = checked["kind"]
    from mlbench.contracts.registry import KINDS, PluginError, get_registry

    if kind is not None and kind not in KINDS:
        raise PluginError(f"list_plugins: unknown kind '{kind}'; expected one of {', '.join(KINDS)}")
    registry = get_registry()
    rows = [entry.as_dict() for entry in registry.entries() if kind is None or entry.kind == kind]
    if checked["errors"]:
        rows += [{"plugin": e.plugin, "package": e.package, "error": e.message, "kind": "error", "name": None,
                  "version": None} for e in registry.errors]
    return rows


def show_leaderboard(benchmark: str, *, label: str | None = None, metric: str | None = None,
                     profile: str | None = None, variant: str | None = None, source: str | None = None,
                     file: str | Path | None = None, arrow: bool = False) -> pd.DataFrame | pa.Table:
    """The rows ``mlbench leaderboard show`` prints: one label (default ``__global__``) and metric (default the
    scoring profile's primary: ``profile``, else the benchmark's), best first, from ``file``, else your
    ``leaderboards/BENCHMARK.parquet``, else the published board (``rows.attrs["file"]`` names the one read,
    ``attrs["metric"]`` the metric shown, ``attrs["profile"]`` the profile ranking them).

    ``arrow=True``: the same rows as a pyarrow Table, read without importing pandas (what the command prints);
    its schema metadata holds ``file``, ``metric`` and ``profile`` (the profile's name) as UTF-8.

        >>> mlbench.show_leaderboard("padchest-specific", label="cardiomegaly")[["entry", "value"]]
    """
    checked = validate("show_leaderboard", {"benchmark": benchmark, "label": label, "metric": metric,
                                            "profile": profile, "variant": variant, "source": source, "file": file,
                                            "arrow": arrow})
    from mlbench.results import leaderboard, profiles

    path = leaderboard.find_board(checked["benchmark"], checked["file"])
    scoring = profiles.profile_of({}, checked["benchmark"], chosen=checked["profile"])
    board = leaderboard.board_table(checked["benchmark"], path)
    chosen = {k: checked[k] for k in ("label", "metric", "variant", "source")}
    if checked["arrow"]:
        rows = profiles.shown_table(board, scoring, **chosen)
        return rows.replace_schema_metadata({"file": str(path), "metric": chosen["metric"] or scoring.primary,
                                             "profile": scoring.name})
    rows = profiles.shown_rows(board.to_pandas(), scoring, **chosen)
    rows.attrs["file"] = str(path)  # the board the rows came from (the command's title names it)
    return rows


def write_report(path: str | Path, out: str | Path, **options: Any) -> Path:
    """Write the self-contained HTML report of a run or grid directory (``mlbench report``); return ``out``.

    ``options``: ``against="published"``, ``explain_dirs=[...]``, ``force=True`` (replace a file at
    ``out`` that is not an mlbench report; a run or grid directory's own files are never replaced),
    ``on_note`` (called with each note on what the report leaves out).

        >>> mlbench.write_report("runs/padchest-specific-crop+aug", "report.html", against="published")
    """
    checked = validate("write_report", {"path": path, "out": out, **options})
    from mlbench import report

    return report.write_report(checked.pop("path"), checked.pop("out"), **checked)


def bundle_run(run_dir: str | Path | None, out: str | Path, *, with_checkpoints: bool = False,
               predictions: str | Path | None = None, benchmark: str | None = None,
               describe: str | None = None) -> Bundle:
    """The submission bundle of a finished run written to ``out`` (``mlbench bundle RUN_DIR --out FILE``), then
    opened back as a keeper would (:func:`mlbench.judging.bundle.open_bundle`), so what comes back was read, not
    assumed. ``with_checkpoints``: also each backbone's best weights.

    ``predictions`` (with ``run_dir=None``): an *external* bundle of a predictions file written outside mlbench
    (docs/leaderboard.md, "Predictions from any framework") for ``benchmark``, ``describe`` saying how it was made.

        >>> from mlbench.api import bundle_run
        >>> bundle_run("runs/padchest-specific-crop+aug", "submission.zip").sha256
        >>> bundle_run(None, "theirs.zip", predictions="preds.csv", benchmark="padchest-specific",
        ...            describe="a DenseNet-121 trained in JAX").kind
    """
    checked = validate("bundle_run", {"run_dir": run_dir, "out": out, "with_checkpoints": with_checkpoints,
                                      "predictions": predictions, "benchmark": benchmark, "describe": describe})
    from mlbench.judging import bundle

    if checked["predictions"] is None:
        if checked["run_dir"] is None:
            raise argument_error("bundle_run", "run_dir", None, "a run directory, or predictions=FILE")
        written = bundle.write_bundle(checked["run_dir"], checked["out"], with_checkpoints=checked["with_checkpoints"])
        return bundle.open_bundle(written)
    for name in ("benchmark", "describe"):
        if checked[name] is None:
            raise argument_error("bundle_run", name, None, "a non-empty str (predictions= needs benchmark= and "
                                 "describe=)")
    if checked["run_dir"] is not None or checked["with_checkpoints"]:
        raise argument_error("bundle_run", "predictions", predictions, "no run_dir and no with_checkpoints (an "
                             "external bundle has neither)")
    from mlbench.contracts.registry import get_registry
    from mlbench.results.external import read_external

    bench = get_registry().create("benchmark", checked["benchmark"])
    written = bundle.write_external_bundle(read_external(checked["predictions"]), benchmark=bench.name,
                                           benchmark_version=bench.version, describe=checked["describe"],
                                           out=checked["out"])
    return bundle.open_bundle(written)


def score_predictions(file: str | Path, benchmark: str, csv: str | Path, *, images: str | Path | None = None,
                      n_boot: int = 1000, seed: int = 0, against: str | None = None, **options: Any) -> ScoreResult:
    """Score a predictions file from any framework (docs/leaderboard.md, "Predictions from any framework")
    against ``benchmark`` on the label file ``csv``, as ``mlbench score FILE`` does: the split recomputed
    as a run computes it, coverage checked, every entry scored by a run's scoring loop into leaderboard
    rows (``result.rows``) with patient-bootstrap CIs (``n_boot``, ``seed``).

    ``images``: the image folder (then test images the file lacks are accepted when unreadable).
    ``against="published"``: ``result.comparison`` holds the comparison with the benchmark's published
    board (``metric``, default auc; ``variant``, default the benchmark recipe's), or ``result.notes``
    says it has none. ``json_file``: the rows (and comparison) also written as JSON.

        >>> mlbench.score_predictions("preds.csv", "padchest-specific", "labels.csv", images="images").rows
    """
    checked = validate("score_predictions", {"file": file, "benchmark": benchmark, "csv": csv, "images": images,
                                             "n_boot": n_boot, "seed": seed, "against": against, **options})
    json_file = checked.get("json_file")
    if json_file is not None and json_file.is_dir():  # refused before the work, as writing it would be after
        from mlbench.foundations.io import OutputPathError

        raise OutputPathError(f"{json_file}: is a folder; expected a file name to write the scores to")
    if checked["against"] == PUBLISHED and checked["n_boot"] == 0:
        raise argument_error("score_predictions", "n_boot", n_boot, "an int >= 1 with against='published' (its "
                             "verdicts come from the intervals)")
    for name in ("metric", "variant"):
        if name in checked and checked["against"] != PUBLISHED:
            raise argument_error("score_predictions", name, checked[name], f"no {name} without against='published'")
    from mlbench.judging import score

    result = score.score_predictions(checked["file"], checked["benchmark"], checked["csv"], images=checked["images"],
                                     n_boot=checked["n_boot"], seed=checked["seed"], registry=checked.get("registry"))
    if checked["against"] == PUBLISHED:
        score.compare_with_published(result, metric=checked.get("metric", "auc"), variant=checked.get("variant"),
                                     registry=checked.get("registry"))
    if json_file is not None:
        from mlbench.foundations.io import write_json

        write_json(json_file, score_record(result))
    return result


def score_record(result: ScoreResult) -> dict[str, Any]:
    """A scoring as plain JSON data (what ``score --json`` writes): the file, what it was scored on, every row."""
    import json

    return {"file": str(result.file), "sha256": result.sha256, "run_id": result.run_id, "benchmark": result.benchmark,
            "dataset_kind": result.dataset_kind, "split_hash": result.split_hash, "entries": result.entries,
            "n_test": result.n_test, "left_out": [s.as_dict() for s in result.left_out],
            "train_unreadable": len(result.train_unreadable), "tuned": result.tuned, "notes": result.notes,
            "rows": json.loads(result.rows.to_json(orient="records")),
            "comparison": comparison_record(result.comparison) if result.comparison is not None else None}


def predict_images(run_dir: str | Path, *, images: str | Path, out: str | Path, **options: Any) -> PredictResult:
    """Run a trained run's models on images without labels (``mlbench predict RUN_DIR --images DIR --out FILE``):
    every backbone and ensemble of the run as an entry of ``out``, a predictions file ``mlbench score`` reads.

    ``options``: ``list_file`` (only the images it names, one path relative to ``images`` per line),
    ``device`` ("auto"), ``batch_size``, ``workers`` (image-preparing threads), ``progress``. Resumable:
    finished chunks wait in ``OUT.parts/``; unreadable images are listed in ``OUT.skipped.csv``.

        >>> mlbench.predict_images("runs/padchest-specific-crop+aug", images="new-films", out="preds.csv").n_images
    """
    checked = validate("predict_images", {"run_dir": run_dir, "images": images, "out": out, **options})
    from mlbench.training import predict

    return predict.predict_images(checked.pop("run_dir"), checked.pop("images"), checked.pop("out"), **checked)


def verify_bundle(bundle: str | Path, *, csv: str | Path, **options: Any) -> Verdict:
    """A keeper's check of a submission bundle (``mlbench verify BUNDLE --csv LABELFILE``), believing nothing it
    says: canonical label file, split, coverage, ensembles and every metric recomputed; with ``images`` the
    claimed skips and a seeded ``sample`` of test images re-inferred with the bundle's weights (``tolerance``).
    ``labels``: sealed test labels (a private label file). ``synthetic``: accept a demo corpus. Never raises for
    the bundle's faults: ``verdict.accepted``, ``verdict.failures`` (one line per failed check). ``verdict_file``:
    also written as JSON.

        >>> mlbench.verify_bundle("submission.zip", csv="PADCHEST_..._160K_01.02.19.csv.gz").accepted
    """
    checked = validate("verify_bundle", {"bundle": bundle, "csv": csv, **options})
    from mlbench.judging.verify import Keeper, verify_bundle as verify

    path, verdict_file = checked.pop("bundle"), checked.pop("verdict_file", None)
    keeper = Keeper(checked.pop("csv"), checked.pop("images", None), checked.pop("labels", None),
                    allow_synthetic=checked.pop("synthetic", False), **checked)  # sample, tolerance
    verdict = verify(path, keeper)
    if verdict_file is not None:
        verdict.write(verdict_file)
    return verdict


def init_board(folder: str | Path, benchmark: str, **options: Any) -> Board:
    """Lay out a board repository (``mlbench board init FOLDER --benchmark B``): pinned to the benchmark's
    canonical label files, or to ``csv`` (a benchmark without pins; with ``synthetic=True``, a demo corpus).

        >>> mlbench.init_board("padchest-board", "padchest-specific")
    """
    checked = validate("init_board", {"folder": folder, "benchmark": benchmark, **options})
    from mlbench.judging import board

    return board.init_board(checked.pop("folder"), checked.pop("benchmark"), **checked)


def add_to_board(folder: str | Path, bundle: str | Path, *, csv: str | Path, **options: Any) -> AddResult:
    """Verify ``bundle`` and file it on the board in ``folder`` (``mlbench board add``); ``check_only`` files
    nothing. Raises ``BoardError`` naming every failed check.

        >>> mlbench.add_to_board("padchest-board", "submission.zip", csv="labels.csv.gz", images="images")
    """
    checked = validate("add_to_board", {"folder": folder, "bundle": bundle, "csv": csv, **options})
    from mlbench.judging import board

    return board.add_submission(checked.pop("folder"), checked.pop("bundle"), checked.pop("csv"), **checked)


def build_board(folder: str | Path, **options: Any) -> BuildResult:
    """Rebuild ``folder/board.parquet`` from its submissions (``mlbench board build``): deterministic; a
    submission whose verdict no longer holds drops out (``result.dropped``). ``csv``: re-verify every bundle.

        >>> mlbench.build_board("padchest-board").rows
    """
    checked = validate("build_board", {"folder": folder, **options})
    from mlbench.judging import board

    return board.build_board(checked.pop("folder"), **checked)


def reproduce_bundle(bundle: str | Path, *, csv: str | Path, images: str | Path, out: str | Path,
                     **options: Any) -> Reproduction:
    """Train a run bundle's recipe again on the keeper's ``csv`` and ``images`` into ``out`` and compare
    (``mlbench reproduce BUNDLE --csv ... --images ... --out RUN_DIR``): paired patient-bootstrap
    differences of every entry's macro AUC, AUPRC and F1, reproduction minus bundle, on the same test
    patients; ``result.reproduced`` when 0 lies in every entry's macro AUC interval.

    Refused in one line before any training: an external bundle, a benchmark or plugin not installed
    at the run's version, a label file giving another split. A second call on the same ``out`` resumes.
    ``options``: ``n_boot`` (1000) and ``seed`` (0) of the comparison, ``json_file``, ``device``,
    ``workers``, ``progress``, and ``executor``, ``resources``, ``wait``, ``say`` as in :func:`run_benchmark`.

        >>> mlbench.reproduce_bundle("submission.zip", csv="labels.csv", images="images", out="runs/again").reproduced
    """
    checked = validate("reproduce_bundle", {"bundle": bundle, "csv": csv, "images": images, "out": out, **options})
    execution = {k: checked.pop(k) for k in EXECUTION if k in checked}
    executor, wait = execution.get("executor", "inline"), execution.get("wait", True)
    if not wait:  # before any work: one line naming the executor
        from mlbench.execution.executors import check_wait

        check_wait(executor, wait=False)
    execute = None  # inline: mlbench.training.runner.run
    if executor != "inline":
        import functools

        from mlbench.execution.executors import run_with_executor  # one job per backbone, then the ensembles job

        execute = functools.partial(run_with_executor, kind=executor, say=execution.get("say") or (lambda _: None),
                                    wait=wait, **(execution.get("resources") or {}))
    from mlbench.judging import reproduce

    return reproduce.reproduce_bundle(checked.pop("bundle"), checked.pop("csv"), checked.pop("images"),
                                      checked.pop("out"), execute=execute, **checked)


def run_config(run_dir: str | Path) -> str:
    """The plan of a run as a config file (TOML text) for ``mlbench run BENCHMARK --config FILE``.

    The run's options that say where its data is and how it ran (``demo``, ``demo-option``, ``csv``,
    ``images``, ``device``, ``workers``, ``bootstrap``, ``compile``), and its whole recipe as a
    ``[recipe]`` table: planning ``mlbench run`` with the file gives the same identity. Read from
    plan.json, or the manifest's recipe for a run without one (``mlbench config RUN_DIR``).

        >>> print(mlbench.run_config("runs/padchest-specific-crop+aug-demo"))
    """
    checked = validate("run_config", {"run_dir": run_dir})
    from mlbench.demo import is_synthetic
    from mlbench.foundations.config import dumps, value_text
    from mlbench.results.rundir import RunDir, RunDirError, recipe_from_dict

    rundir = RunDir(checked["run_dir"])
    if rundir.plan_file.is_file():
        stored, where = rundir.read_plan(), str(rundir.plan_file)
        options, benchmark = stored.get("options"), stored.get("benchmark")
        if not isinstance(options, dict) or not isinstance(benchmark, str):
            raise RunDirError(f"{where}: no benchmark and options; expected the plan `mlbench run` writes")
        recipe = recipe_from_dict(stored.get("recipe"), where)
    else:
        manifest, where = rundir.manifest(), str(rundir.manifest_file)
        benchmark = (manifest.get("identity") or {}).get("benchmark") or manifest.get("benchmark")
        if not isinstance(benchmark, str):
            raise RunDirError(f"{where}: names no benchmark; expected the manifest of a run")
        recipe = rundir.recipe()
        options = {"demo": is_synthetic(manifest.get("dataset_kind"))}
    demo = bool(options.get("demo"))
    top: dict[str, Any] = {"demo": True} if demo else {}
    comments = {}
    if demo:
        top["demo-option"] = options.get("demo_options") or None
        comments["demo"] = "the run used the synthetic demo corpus: no csv or images"
    else:
        top.update(csv=options.get("csv"), images=options.get("images"))
        comments["csv"] = "the data the run read"
    if options.get("dataset_options"):  # they shape the data, and are part of the identity
        top["dataset-option"] = options["dataset_options"]
    for key, name in (("device", "device"), ("workers", "workers"), ("bootstrap", "n_boot")):
        top[key] = options.get(name)
    if options.get("compile"):
        top["compile"] = True
    fields = {k: v for k, v in recipe.to_dict().items() if k != "variant"}
    header = (f"mlbench run {benchmark} --config THIS_FILE\n"
              f"The plan of {rundir.path} (variant {recipe.variant}), from {Path(where).name}.\n"
              f"out = {value_text(str(rundir.path))} resumes that run; left out, the run goes to the default folder.")
    comments["recipe"] = ("The run's whole recipe (only a config file sets it); options such as epochs or "
                          "backbones\ngiven as well replace its fields.")
    try:
        return dumps(top, {"recipe": fields}, header=header, comments=comments)
    except ValueError as exc:
        raise RunDirError(f"{where}: the plan holds a value a config file cannot write ({exc})") from None


def evaluate_run(run_dir: str | Path, *, on: str, **options: Any) -> EvaluationResult:
    """Score a finished run on another benchmark's test split for the labels they share (``mlbench evaluate
    RUN_DIR --on BENCHMARK``): leaderboard rows of scope ``external:BENCHMARK`` with 95% CIs, written under
    ``RUN_DIR/external/BENCHMARK/``.

    ``options``: ``csv`` and ``images`` (BENCHMARK's label file and image folder) or ``demo=True`` (its demo
    corpus, with ``demo_options``); ``dataset_options``, ``device``, ``batch_size``, ``workers``, ``progress``.
    ``result.leaderboard`` holds the rows, ``result.shared`` the label pairs, ``result.not_shared`` the run's other
    labels with why. Resumable; a finished evaluation with the same inputs is reused.

        >>> mlbench.evaluate_run("runs/padchest-specific-crop+aug", on="nih-cxr14", csv="Data_Entry_2017_v2020.csv",
        ...                      images="NIH/").leaderboard
    """
    checked = validate("evaluate_run", {"run_dir": run_dir, "on": on, **options})
    from mlbench.judging import external_validation

    return external_validation.evaluate_run(checked.pop("run_dir"), checked.pop("on"), **checked)
