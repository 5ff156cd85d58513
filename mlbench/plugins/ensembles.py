"""Registers the built-in ensembles (implemented in :mod:`mlbench.ensembles`)."""

from mlbench.hookspecs import hookimpl
from mlbench.registry import LazyFactory

IMPLEMENTATION = "mlbench.ensembles"


@hookimpl
def register_ensembles(register):
    register("ctp", LazyFactory(f"{IMPLEMENTATION}:CombineThenPredict"),
             summary="Combine then predict: mean probability (paper)")
    register("ptc-lw", LazyFactory(f"{IMPLEMENTATION}:LabelwiseVote"),
             summary="Predict then combine: label-wise majority vote (paper)")
    register("ptc-mode", LazyFactory(f"{IMPLEMENTATION}:ModeOfLabelSets"),
             summary="Predict then combine: most frequent label set (paper)")
