"""Registers the built-in preprocessor (implemented in :mod:`mlbench.preprocessing.resize`)."""

from mlbench.contracts.hookspecs import hookimpl
from mlbench.contracts.registry import LazyFactory


@hookimpl
def register_preprocessors(register):
    register("resize", LazyFactory("mlbench.preprocessing.resize:Resize"),
             summary="Whole image resized to the benchmark size (no crop)")
