"""mlbench from Python: each thing the command line does, in one call.

    >>> import mlbench
    >>> result = mlbench.run_benchmark("padchest-specific", demo=True)     # = mlbench run ... --demo
    >>> mlbench.compare_run(result.run_dir).beats()                         # = mlbench compare RUN_DIR
    >>> mlbench.show_leaderboard("padchest-specific")                       # = mlbench leaderboard show
    >>> mlbench.list_plugins("loss")                                        # = mlbench plugins

``import mlbench`` stays light: these names load on first use, and each function imports only
what it needs (reading and comparing leaderboards imports no torch).

The names end in ``_run``/``_report`` because ``mlbench.compare``, ``mlbench.submit`` and
``mlbench.report`` are the library's modules: a function under the same name on the package would
be replaced by the module as soon as anything imports it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbench.rundir import RunDir

if TYPE_CHECKING:
    import pandas as pd

    from mlbench.compare import Comparison
    from mlbench.runner import RunResult
    from mlbench.submit import SubmitResult

__all__ = ["RunDir", "compare_run", "list_plugins", "run_benchmark", "show_leaderboard", "submit_run",
           "write_report"]
# RunOptions fields that name files or folders: a str is accepted for them.
PATH_OPTIONS = ("out", "csv", "images", "demo_dir", "cache")


def run_benchmark(benchmark: str, **options: Any) -> RunResult:
    """Run (or resume) ``benchmark`` end to end, as ``mlbench run`` does; return its :class:`RunResult`.

    ``options`` are the fields of :class:`mlbench.runner.RunOptions` (``demo``, ``csv``, ``images``,
    ``out``, ``backbones``, ``max_epochs``, ``image_size``, ``n_boot``, ...); leave one out and the
    benchmark's recipe decides. ``result.leaderboard`` is the run's long-format leaderboard.

        >>> mlbench.run_benchmark("padchest-specific", demo=True, backbones=("resnet10t",), max_epochs=1)
    """
    from mlbench.runner import RunError, RunOptions, run

    fields = [f.name for f in dataclasses.fields(RunOptions) if f.name != "benchmark"]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise RunError(f"run_benchmark: unknown option '{unknown[0]}'; expected one of {', '.join(fields)}")
    for name in PATH_OPTIONS:
        if isinstance(options.get(name), str):
            options[name] = Path(options[name])
    for name in ("backbones", "ensembles", "only_backbones"):
        if isinstance(options.get(name), str):  # one name, not its letters
            options[name] = (options[name],)
    return run(RunOptions(benchmark=benchmark, **options))


def compare_run(run_dir: str | Path, against: str = "published", **options: Any) -> Comparison:
    """Per-label deltas of a run against its benchmark's published rows (``mlbench compare``).

    ``options``: ``variant``, ``metric`` ("auc"), ``leaderboard_file``, ``n_boot``, ``seed``.
    ``.rows`` is a DataFrame; ``.beats()`` the labels whose published value lies below the run's 95% CI.

        >>> mlbench.compare_run("runs/padchest-specific-crop+aug", metric="auprc").rows
    """
    from mlbench import compare

    return compare.compare_run(run_dir, against=against, **options)


def submit_run(run_dir: str | Path, leaderboard: str | Path | None = None, *, csv: str | Path | None = None,
               images: str | Path | None = None, **options: Any) -> SubmitResult:
    """Validate a run (split, coverage, every metric recomputed) and append it to ``leaderboard``
    (default: ``leaderboards/BENCHMARK.parquet``), as ``mlbench submit`` does. ``csv`` and ``images``
    say where the dataset lives now if it moved since the run. Raises ``SubmissionError`` listing
    every problem.

        >>> mlbench.submit_run("runs/padchest-specific-crop+aug", "my-board.parquet")
    """
    from mlbench import submit
    from mlbench.data import DataSource

    if (csv is None) != (images is None):
        raise submit.SubmissionError(["give csv and images together (where the dataset lives now)"])
    source = DataSource(Path(csv), Path(images)) if csv is not None else None
    return submit.submit_run(run_dir, leaderboard, source=source, **options)


def list_plugins(kind: str | None = None) -> list[dict[str, Any]]:
    """Every registered item (kind, name, plugin, package, version, summary), as ``mlbench plugins``.

    ``kind`` keeps one kind: dataset, loss, backbone, ensemble, explainer, preprocessor, sampler or
    benchmark.

        >>> [p["name"] for p in mlbench.list_plugins("ensemble")]
    """
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
    from mlbench import leaderboard

    path = leaderboard.find_board(benchmark, file)
    return leaderboard.select_rows(leaderboard.read(path).to_pandas(), label=label, metric=metric, variant=variant,
                                   source=source).reset_index(drop=True)


def write_report(path: str | Path, out: str | Path, **options: Any) -> Path:
    """Write the self-contained HTML report of a run or grid directory (``mlbench report``); return ``out``.

    ``options``: ``against="published"``, ``explain_dirs=[...]``.

        >>> mlbench.write_report("runs/padchest-specific-crop+aug", "report.html", against="published")
    """
    from mlbench import report

    return report.write_report(path, out, **options)
