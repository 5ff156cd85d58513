"""Losses for imbalanced multilabel data, registered with mlbench: ``focal`` and ``asl``.

This module is the plugin: the ``mlbench`` entry point names it, and mlbench calls the
``register_losses`` hook below once, at start-up. It stays light: mlbench imports every plugin
module to build its registry (also for commands that train nothing, such as ``mlbench
leaderboard show``), so the factories name ``mlbench_imbalanced_losses.losses`` and torch is
imported only when a loss is built. ``from mlbench_imbalanced_losses import focal`` still works:
the names below are imported on first use.
"""

from mlbench import hookimpl, LazyFactory

__version__ = "0.1.0"
__all__ = ["AsymmetricLoss", "FocalLoss", "asl", "focal", "register_losses"]
IMPLEMENTATION = "mlbench_imbalanced_losses.losses"
_LAZY_NAMES = frozenset({"AsymmetricLoss", "FocalLoss", "asl", "focal"})


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        from mlbench_imbalanced_losses import losses

        return getattr(losses, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_losses(register):
    register("focal", LazyFactory(f"{IMPLEMENTATION}:focal"),
             summary="Sigmoid focal loss (Lin et al. 2017); options gamma, alpha")
    register("asl", LazyFactory(f"{IMPLEMENTATION}:asl"),
             summary="Asymmetric loss (Ridnik et al. 2021); options gamma_neg, gamma_pos, clip")
