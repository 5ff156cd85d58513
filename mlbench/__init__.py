"""mlbench: plugin-based benchmarks for imbalanced multilabel image datasets.

The public Python API (:mod:`mlbench.api`), one call per thing the command line does::

    import mlbench
    result = mlbench.run_benchmark("padchest-specific", demo=True)
    mlbench.compare_run(result.run_dir).rows

Its names load on first use (module ``__getattr__``): ``import mlbench`` imports no torch, so a
plugin module that only needs ``hookimpl`` stays cheap to load.
"""

from mlbench.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

# The public API: name -> the module that defines it (imported on first access).
API = {
    "run_benchmark": "mlbench.api",
    "compare_run": "mlbench.api",
    "submit_run": "mlbench.api",
    "list_plugins": "mlbench.api",
    "show_leaderboard": "mlbench.api",
    "write_report": "mlbench.api",
    "ArgumentError": "mlbench.api",
    "RunDir": "mlbench.rundir",
}

__all__ = ["__version__", "hookimpl", "hookspec", *API]


def __getattr__(name: str):
    if name not in API:
        raise AttributeError(f"module 'mlbench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(API[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))
