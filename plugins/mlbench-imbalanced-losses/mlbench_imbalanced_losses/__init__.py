"""Losses for imbalanced multilabel data, registered with mlbench: ``focal`` and ``asl``.

This module is the plugin: the ``mlbench`` entry point names it, and mlbench calls the
``register_losses`` hook below once, at start-up.
"""

from mlbench import hookimpl

from mlbench_imbalanced_losses.losses import AsymmetricLoss, FocalLoss, asl, focal

__version__ = "0.1.0"
__all__ = ["AsymmetricLoss", "FocalLoss", "asl", "focal", "register_losses"]


@hookimpl
def register_losses(register):
    register("focal", focal, summary="Sigmoid focal loss (Lin et al. 2017); options gamma, alpha")
    register("asl", asl, summary="Asymmetric loss (Ridnik et al. 2021); options gamma_neg, gamma_pos, clip")
