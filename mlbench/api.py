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
belongs, a negative count all raise :class:`ArgumentError` (a :class:`~mlbench.errors.UserError`)
with one line naming the function, the argument, the value's type and what was expected. Names
(plugins, benchmarks, labels) are then checked by the library, with the same one-line errors the
commands print.

The names end in ``_run``/``_report`` because ``mlbench.compare``, ``mlbench.submit`` and
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

from mlbench.errors import UserError
from mlbench.progress import MODES
from mlbench.rundir import RunDir

if TYPE_CHECKING:
    import pandas as pd

    from mlbench.compare import Comparison, PairedComparison
    from mlbench.runner import RunResult
    from mlbench.submit import SubmitResult

__all__ = ["ARGUMENTS", "ArgumentError", "RunDir", "compare_run", "list_plugins", "run_benchmark",
           "show_leaderboard", "submit_run", "write_report"]
PUBLISHED = "published"
SHOWN_CHARS = 40  # a value longer than this is cut in a message


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
    """The one message shape: ``run_benchmark: max_epochs='1' (str); expected an int >= 1``."""
    return ArgumentError(f"{function}: {name}={shown(value)} ({type(value).__name__}); expected {expected}")


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
    from mlbench.registry import Registry

    return isinstance(value, Registry)


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
REGISTRY = Constraint("an mlbench.registry.Registry", is_registry)

# The fields of mlbench.runner.RunOptions run_benchmark takes (tests check that none is missing).
RUN_OPTIONS: dict[str, Constraint] = {
    "out": optional(PATH), "csv": optional(PATH), "images": optional(PATH), "demo": BOOL,
    "demo_dir": optional(PATH), "cache": optional(PATH),
    "backbones": optional(NAMES), "loss": optional(NAME), "ensembles": optional(NAMES),
    "crop": optional(BOOL), "augment": optional(BOOL),
    "max_epochs": optional(integer(1)), "image_size": optional(integer(16)), "seed": optional(integer(0)),
    "demo_options": optional(OPTIONS), "loss_options": optional(OPTIONS),
    "sampler": optional(NAME), "sampler_options": optional(OPTIONS), "threshold_rule": optional(NAME),
    "backbone_options": optional(BACKBONE_OPTIONS), "device": NAME, "workers": optional(integer(1)),
    "only_backbones": optional(NAMES), "ensemble_only": BOOL, "n_boot": integer(0), "compile": BOOL,
    "progress": PROGRESS,
}
# Every public function's arguments, by name. The library checks what needs a file or the registry.
ARGUMENTS: dict[str, dict[str, Constraint]] = {
    "run_benchmark": {"benchmark": NAME, **RUN_OPTIONS},
    "compare_run": {"run_dir": PATH, "against": AGAINST, "variant": optional(NAME), "metric": NAME,
                    "leaderboard_file": optional(PATH), "n_boot": integer(1), "seed": integer(0)},
    "submit_run": {"run_dir": PATH, "leaderboard": optional(PATH), "csv": optional(PATH), "images": optional(PATH),
                   "registry": optional(REGISTRY)},
    "list_plugins": {"kind": optional(NAME)},
    "show_leaderboard": {"benchmark": NAME, "label": optional(NAME), "metric": NAME, "variant": optional(NAME),
                         "source": optional(NAME), "file": optional(PATH)},
    "write_report": {"path": PATH, "out": PATH, "against": REPORT_AGAINST, "explain_dirs": optional(PATHS),
                     "force": BOOL},
}
# compare_run options that only a comparison with the published board uses.
PUBLISHED_ONLY = ("variant", "metric", "leaderboard_file")


# Each function's positional parameters: never offered as an option name in an "unknown option" message.
POSITIONAL = {"run_benchmark": ("benchmark",), "compare_run": ("run_dir",), "submit_run": ("run_dir",),
              "write_report": ("path", "out")}


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

    ``options`` are the fields of :class:`mlbench.runner.RunOptions` (``demo``, ``csv``, ``images``,
    ``out``, ``backbones``, ``max_epochs``, ``image_size``, ``n_boot``, ...); leave one out and the
    benchmark's recipe decides. ``result.leaderboard`` is the run's long-format leaderboard.

        >>> mlbench.run_benchmark("padchest-specific", demo=True, backbones=("resnet10t",), max_epochs=1)
    """
    table = ARGUMENTS["run_benchmark"]
    checked = validate("run_benchmark", {k: v for k, v in {"benchmark": benchmark, **options}.items() if k in table})
    from mlbench.runner import RunOptions, run

    # A RunOptions field without a row in the table passes unchecked (a test keeps the table complete).
    fields = [f.name for f in dataclasses.fields(RunOptions) if f.name != "benchmark"]
    unknown = [k for k in options if k not in table and k not in fields]
    if unknown:
        raise ArgumentError(f"run_benchmark: unknown option '{unknown[0]}'; expected one of {', '.join(fields)}")
    checked.update({k: v for k, v in options.items() if k not in table})
    return run(RunOptions(**checked))


def compare_run(run_dir: str | Path, against: str | Path = PUBLISHED,
                **options: Any) -> Comparison | PairedComparison:
    """Per-label deltas of a run against its benchmark's published rows (``mlbench compare RUN_DIR``),
    or, with ``against=RUN_A``, paired patient-bootstrap differences ``run_dir`` minus ``RUN_A`` on
    their shared test images (``mlbench compare RUN_DIR --against RUN_A``).

    ``options``: ``variant``, ``metric`` ("auc"), ``leaderboard_file`` (against the published board
    only), ``n_boot``, ``seed``. Against the board: ``.rows`` is a DataFrame, ``.beats()`` the labels
    whose published value lies below the run's 95% CI. Against a run: ``.rows`` holds every metric
    and scope (macro, frequency group, label) with its CI, p-value and verdict.

        >>> mlbench.compare_run("runs/padchest-specific-crop+aug", metric="auprc").rows
        >>> mlbench.compare_run("runs/ml-ros", against="runs/uniform").rows
    """
    checked = validate("compare_run", {"run_dir": run_dir, "against": against, **options})
    from mlbench import compare

    run_b, run_a = checked.pop("run_dir"), checked.pop("against")
    if run_a == PUBLISHED:
        return compare.compare_run(run_b, against=PUBLISHED, **checked)
    if not run_a.is_dir():
        raise argument_error("compare_run", "against", against, f"{AGAINST.expected}; no such folder")
    extra = [name for name in PUBLISHED_ONLY if name in checked]
    if extra:
        raise argument_error("compare_run", extra[0], checked[extra[0]],
                             f"no {extra[0]} with against=RUN_DIR (it applies to against={PUBLISHED!r}; a "
                             "comparison of two runs holds every metric)")
    return compare.compare_runs(run_a, run_b, **checked)


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
    from mlbench import submit
    from mlbench.data import DataSource

    if (csv is None) != (images is None):
        given, value = ("csv", csv) if images is None else ("images", images)
        raise argument_error("submit_run", given, value, "csv and images together (where the dataset lives now)")
    csv, images = checked.pop("csv"), checked.pop("images")
    source = DataSource(csv, images) if csv is not None else None
    return submit.submit_run(checked.pop("run_dir"), checked.pop("leaderboard"), source=source, **checked)


def list_plugins(kind: str | None = None) -> list[dict[str, Any]]:
    """Every registered item (kind, name, plugin, package, version, summary), as ``mlbench plugins``.

    ``kind`` keeps one kind: dataset, loss, backbone, ensemble, explainer, preprocessor, sampler or
    benchmark.

        >>> [p["name"] for p in mlbench.list_plugins("ensemble")]
    """
    kind = validate("list_plugins", {"kind": kind})["kind"]
    from mlbench.registry import KINDS, PluginError, get_registry

    if kind is not None and kind not in KINDS:
        raise PluginError(f"list_plugins: unknown kind '{kind}'; expected one of {', '.join(KINDS)}")
    return [entry.as_dict() for entry in get_registry().entries() if kind is None or entry.kind == kind]


def show_leaderboard(benchmark: str, *, label: str | None = None, metric: str = "auc", variant: str | None = None,
                     source: str | None = None, file: str | Path | None = None) -> pd.DataFrame:
    """The rows ``mlbench leaderboard show`` prints: one label (default ``__global__``) and metric,
    best first, from ``file``, else your ``leaderboards/BENCHMARK.parquet``, else the published board.

        >>> mlbench.show_leaderboard("padchest-specific", label="cardiomegaly")[["entry", "value"]]
    """
    checked = validate("show_leaderboard", {"benchmark": benchmark, "label": label, "metric": metric,
                                            "variant": variant, "source": source, "file": file})
    from mlbench import leaderboard

    path = leaderboard.find_board(checked["benchmark"], checked["file"])
    return leaderboard.select_rows(leaderboard.rows_of(checked["benchmark"], path), label=checked["label"],
                                   metric=checked["metric"], variant=checked["variant"],
                                   source=checked["source"]).reset_index(drop=True)


def write_report(path: str | Path, out: str | Path, **options: Any) -> Path:
    """Write the self-contained HTML report of a run or grid directory (``mlbench report``); return ``out``.

    ``options``: ``against="published"``, ``explain_dirs=[...]``, ``force=True`` (replace a file at
    ``out`` that is not an mlbench report; a run or grid directory's own files are never replaced).

        >>> mlbench.write_report("runs/padchest-specific-crop+aug", "report.html", against="published")
    """
    checked = validate("write_report", {"path": path, "out": out, **options})
    from mlbench import report

    return report.write_report(checked.pop("path"), checked.pop("out"), **checked)
