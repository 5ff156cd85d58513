"""Registers the built-in losses (implemented in :mod:`mlbench.models.losses`).

Every one takes ``label_weights`` (a factor per label, multiplying its loss term), which the
``drw`` schedule sets from its switch epoch on.
"""

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
    register("ldam", LazyFactory(f"{IMPLEMENTATION}:ldam"),
             summary="Label-distribution-aware margin (Cao et al. 2019), one sigmoid per label: positives' "
                     "logits less C / n^(1/4); options max_margin (0.5), scale (1.0)")
    register("logit-adjusted-bce", LazyFactory(f"{IMPLEMENTATION}:logit_adjusted_bce"),
             summary="Logit-adjusted BCE (Menon et al. 2021): logits plus tau * log prior odds while training; "
                     "option tau (1.0)")
