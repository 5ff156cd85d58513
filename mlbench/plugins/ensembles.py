"""Registers the built-in ensembles (implemented in :mod:`mlbench.models.ensembles`)."""

from mlbench.contracts.hookspecs import hookimpl
from mlbench.contracts.registry import LazyFactory

IMPLEMENTATION = "mlbench.models.ensembles"


@hookimpl
def register_ensembles(register):
    register("ctp", LazyFactory(f"{IMPLEMENTATION}:CombineThenPredict"),
             summary="Combine then predict: mean probability (paper)")
    register("ptc-lw", LazyFactory(f"{IMPLEMENTATION}:LabelwiseVote"),
             summary="Predict then combine: label-wise majority vote (paper)")
    register("ptc-mode", LazyFactory(f"{IMPLEMENTATION}:ModeOfLabelSets"),
             summary="Predict then combine: most frequent label set (paper)")
