"""Registers the built-in losses (implemented in :mod:`mlbench.models.losses`)."""

from mlbench.contracts.hookspecs import hookimpl
from mlbench.contracts.registry import LazyFactory

IMPLEMENTATION = "mlbench.models.losses"


@hookimpl
def register_losses(register):
    register("weighted-bce", LazyFactory(f"{IMPLEMENTATION}:weighted_bce"),
             summary="BCE with logits, pos_weight = (N - P) / P per label (paper)")
    register("bce", LazyFactory(f"{IMPLEMENTATION}:plain_bce"), summary="Unweighted BCE with logits")
    register("class-balanced", LazyFactory(f"{IMPLEMENTATION}:class_balanced"),
             summary="BCE weighted per label by the inverse effective number of samples (Cui et al. 2019); "
                     "option beta (0.999)")
    register("distribution-balanced", LazyFactory(f"{IMPLEMENTATION}:distribution_balanced"),
             summary="Distribution-balanced loss (Wu et al. 2020): re-balanced weights + negative-tolerant "
                     "regularisation; options alpha, beta, mu, lam, kappa")
