"""mlbench: plugin-based benchmarks for imbalanced multilabel image datasets."""

from mlbench.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "hookspec"]
