"""Built-in loss: the paper's weighted binary cross-entropy with logits.

A loss plugin registers ``factory(label_counts, n_samples, **options) -> nn.Module`` and is
called as ``loss(logits, targets)`` with float tensors of shape (batch, labels).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mlbench import hookimpl


def inverse_frequency_pos_weight(label_counts: Sequence[int], n_samples: int, max_weight: float | None = None) -> torch.Tensor:
    """pos_weight_j = (N - P_j) / P_j: positives of label j weigh as much, in total, as its negatives.

    This is the weighting of TensorFlow's ``weighted_cross_entropy_with_logits`` the paper used,
    with weights from inverse label frequency on the training split. A label with no positive
    gets weight 1 (nothing to up-weight). ``max_weight`` optionally caps extreme ratios.
    """
    counts = torch.as_tensor(list(label_counts), dtype=torch.float64)
    if n_samples <= 0:
        raise ValueError(f"weighted-bce: n_samples must be positive, got {n_samples}")
    if (counts < 0).any() or (counts > n_samples).any():
        raise ValueError(f"weighted-bce: label_counts must lie in [0, n_samples={n_samples}], got {counts.tolist()}")
    weight = torch.where(counts > 0, (n_samples - counts) / counts.clamp(min=1), torch.ones_like(counts))
    weight = weight.clamp(min=1e-3)
    if max_weight is not None:
        weight = weight.clamp(max=float(max_weight))
    return weight.float()


class WeightedBCEWithLogits(nn.Module):
    """BCE with logits, positives of each label up-weighted by ``pos_weight``."""

    def __init__(self, pos_weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.shape != targets.shape:
            raise ValueError(f"weighted-bce: logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
        return nn.functional.binary_cross_entropy_with_logits(
            logits.float(), targets.float(), pos_weight=self.pos_weight.to(logits.device))


def weighted_bce(label_counts: Sequence[int], n_samples: int, max_weight: float | None = None) -> nn.Module:
    return WeightedBCEWithLogits(inverse_frequency_pos_weight(label_counts, n_samples, max_weight))


def plain_bce(label_counts: Sequence[int], n_samples: int) -> nn.Module:
    """Unweighted BCE: the baseline that shows what the weighting buys."""
    return WeightedBCEWithLogits(torch.ones(len(list(label_counts))))


@hookimpl
def register_losses(register):
    register("weighted-bce", weighted_bce, summary="BCE with logits, pos_weight = (N - P) / P per label (paper)")
    register("bce", plain_bce, summary="Unweighted BCE with logits")
