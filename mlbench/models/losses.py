"""Built-in losses: the paper's weighted binary cross-entropy with logits, and two re-weightings.

A loss plugin registers ``factory(label_counts, n_samples, **options) -> nn.Module`` and is
called as ``loss(logits, targets)`` with float tensors of shape (batch, labels).

- ``weighted-bce`` (the paper's) and ``bce``.
- ``class-balanced``: Cui et al., "Class-Balanced Loss Based on Effective Number of Samples"
  (CVPR 2019). Label j's weight is the inverse effective number of its positives,
  (1 - beta) / (1 - beta^n_j), scaled so the weights sum to the number of labels, and multiplies
  label j's whole BCE term (positives and negatives, per label).
- ``distribution-balanced``: Wu et al., "Distribution-Balanced Loss for Multi-Label
  Classification in Long-Tailed Datasets" (ECCV 2020): re-balanced weighting times a
  negative-tolerant BCE (see :class:`DistributionBalancedLoss`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mlbench.foundations.options import check_number


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
    max_weight = check_number(max_weight, "weighted-bce", "max_weight", 0, low_open=True, none=True)
    if max_weight is not None:
        weight = weight.clamp(max=max_weight)
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


def _counts(label_counts: Sequence[int], n_samples: int, who: str) -> torch.Tensor:
    counts = torch.as_tensor(list(label_counts), dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"{who}: label_counts must be one count per label, got {list(label_counts)}")
    if n_samples <= 0:
        raise ValueError(f"{who}: n_samples must be positive, got {n_samples}")
    if (counts < 0).any() or (counts > n_samples).any():
        raise ValueError(f"{who}: label_counts must lie in [0, n_samples={n_samples}], got {counts.tolist()}")
    return counts


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor, n_labels: int, who: str) -> None:
    if logits.shape != targets.shape or logits.dim() != 2 or logits.shape[1] != n_labels:
        raise ValueError(f"{who}: logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must both be "
                         f"(batch, {n_labels})")


def class_balanced_weights(label_counts: Sequence[int], n_samples: int, beta: float = 0.999) -> torch.Tensor:
    """Cui et al.'s weight per label: (1 - beta) / (1 - beta^n), summing to the number of labels.

    A label with no positive has no effective number (its weight would be infinite): it is left
    out of the scaling and weighs 1, as in plain BCE.
    """
    counts = _counts(label_counts, n_samples, "class-balanced")
    beta = check_number(beta, "class-balanced", "beta", 0, 1, high_open=True)
    present = counts > 0
    raw = (1 - beta) / (1 - torch.pow(torch.tensor(float(beta), dtype=torch.float64), counts.clamp(min=1)))
    weight = torch.ones_like(counts)
    if present.any():
        weight[present] = raw[present] * present.sum() / raw[present].sum()
    return weight.float()


class ClassBalancedBCE(nn.Module):
    """BCE with logits, label j's terms (positive and negative) multiplied by ``weight[j]``."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, targets, self.weight.numel(), "class-balanced")
        per_cell = nn.functional.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
        return (per_cell * self.weight.to(logits.device)).mean()


def class_balanced(label_counts: Sequence[int], n_samples: int, beta: float = 0.999) -> nn.Module:
    return ClassBalancedBCE(class_balanced_weights(label_counts, n_samples, beta))


class DistributionBalancedLoss(nn.Module):
    """Wu et al. 2020: re-balanced weighting (R) times negative-tolerant regularisation (NTR).

    R: under class-aware sampling, image k is drawn for label i with probability proportional to
    P_C(i) = 1 / n_i, while it is drawn at all with P_I(k) = sum over its positive labels j of
    1 / n_j; the ratio r_ki = P_C(i) / P_I(k) is smoothed to w_ki = alpha + sigmoid(beta (r_ki - mu)).
    It depends on the image's labels, so it is computed per batch from the targets. An image with
    no positive is never drawn by class-aware sampling (r is infinite): it gets w = alpha + 1.

    NTR: a class-prior bias nu_i = kappa * log(p_i / (1 - p_i)) / lambda with p_i = n_i / N is
    added to the logits (so the optimum starts near the prior rather than at logit 0), and the
    negative term is sharpened by lambda and scaled down by 1 / lambda:
    loss_ki = w_ki [y log(1 + e^-(z + nu)) + (1 - y) / lambda log(1 + e^(lambda (z + nu)))],
    averaged over all cells. This follows the authors' released code (ResampleLoss), which places
    the 1 / lambda of the bias there. Counts are clamped to [0.5, N - 0.5] so an absent (or
    universal) label gets a finite weight and bias.
    """

    def __init__(self, counts: torch.Tensor, n_samples: int, alpha: float, beta: float, mu: float,
                 lam: float, kappa: float) -> None:
        super().__init__()
        clamped = counts.clamp(min=0.5, max=n_samples - 0.5)
        prior = clamped / n_samples
        self.register_buffer("inverse_frequency", (1.0 / clamped).float())
        self.register_buffer("bias", (kappa * torch.log(prior / (1 - prior)) / lam).float())
        self.alpha, self.beta, self.mu, self.lam = alpha, beta, mu, lam

    def rebalancing_weight(self, targets: torch.Tensor) -> torch.Tensor:
        """The smoothed weight w (batch, labels) of the class docstring."""
        inverse = self.inverse_frequency.to(targets.device)
        drawn = (targets.float() * inverse).sum(dim=1, keepdim=True)
        ratio = inverse / drawn.clamp(min=torch.finfo(torch.float32).tiny)
        smoothed = self.alpha + torch.sigmoid(self.beta * (ratio - self.mu))
        return torch.where(drawn > 0, smoothed, torch.full_like(smoothed, self.alpha + 1.0))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, targets, self.bias.numel(), "distribution-balanced")
        targets = targets.float()
        shifted = logits.float() + self.bias.to(logits.device)
        weight = self.rebalancing_weight(targets)
        positive = nn.functional.softplus(-shifted)  # -log sigmoid(z + nu)
        negative = nn.functional.softplus(self.lam * shifted) / self.lam
        return (weight * (targets * positive + (1 - targets) * negative)).mean()


def distribution_balanced(label_counts: Sequence[int], n_samples: int, alpha: float = 0.1, beta: float = 10.0,
                          mu: float = 0.2, lam: float = 2.0, kappa: float = 0.05) -> nn.Module:
    """Defaults: the paper's (smoothing alpha 0.1, beta 10, mu 0.2; NTR lambda 2, kappa 0.05)."""
    who = "distribution-balanced"
    # Negative alpha, beta or kappa would turn the weights or the prior bias around; lambda divides.
    alpha, beta, kappa = (check_number(v, who, k, 0) for k, v in (("alpha", alpha), ("beta", beta), ("kappa", kappa)))
    mu, lam = check_number(mu, who, "mu"), check_number(lam, who, "lam", 0, low_open=True)
    counts = _counts(label_counts, n_samples, who)
    return DistributionBalancedLoss(counts, n_samples, alpha, beta, mu, lam, kappa)
