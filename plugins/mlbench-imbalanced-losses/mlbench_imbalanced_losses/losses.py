"""Focal loss and asymmetric loss for multilabel logits of shape (batch, labels).

Both reduce to the mean binary cross-entropy when their focusing parameters are zero, so a run
with them differs from plain BCE only by what the options switch on. Each factory has mlbench's
loss shape, ``factory(label_counts, n_samples, **options) -> nn.Module``; the module is called as
``loss(logits, targets)`` and returns the mean over all (sample, label) cells.

Both take mlbench's mask of unknown cells, ``loss(logits, targets, known=mask)`` (bool, False where a
label is unknown): a masked cell adds nothing and moves no gradient, and the mean is over the known
cells. Without ``known`` they are exactly the losses above.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _masked(name: str, cells: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
    """The mean over all cells, or over the known ones (a masked cell contributes nothing, not even a gradient)."""
    if known is None:
        return cells.mean()
    if known.shape != cells.shape:
        raise ValueError(f"{name}: known shape {tuple(known.shape)} and targets shape {tuple(cells.shape)} differ")
    known = known.to(cells.device, torch.bool)
    return torch.where(known, cells, torch.zeros_like(cells)).sum() / known.sum().clamp(min=1).to(cells.dtype)


def _targets(targets: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
    """Targets as floats, masked cells set to 0 (what they held is never read)."""
    targets = targets.float()
    if known is None or known.shape != targets.shape:
        return targets
    return torch.where(known.to(targets.device, torch.bool), targets, torch.zeros_like(targets))


def _check_inputs(name: str, num_labels: int, logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.shape != targets.shape:
        raise ValueError(f"{name}: logits shape {tuple(logits.shape)} and targets shape "
                         f"{tuple(targets.shape)} differ; expected both (batch, labels)")
    if logits.ndim != 2 or logits.shape[1] != num_labels:
        raise ValueError(f"{name}: built for {num_labels} labels, expected (batch, {num_labels}) tensors, "
                         f"got shape {tuple(logits.shape)}")


class FocalLoss(nn.Module):
    """Sigmoid focal loss, Lin et al. 2017 (RetinaNet), per label.

    ``-alpha_t * (1 - p_t) ** gamma * log(p_t)``, where ``p_t`` is the probability given to the
    true value of the cell. ``gamma`` down-weights cells the model already gets right; ``alpha``
    weighs positives (``alpha``) against negatives (``1 - alpha``); ``None`` weighs them equally.
    """

    def __init__(self, num_labels: int, gamma: float = 2.0, alpha: float | None = 0.25) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal: gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"focal: alpha must lie in [0, 1] or be None, got {alpha}")
        self.num_labels, self.gamma, self.alpha = num_labels, float(gamma), alpha

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        _check_inputs("focal", self.num_labels, logits, targets)
        logits, targets = logits.float(), _targets(targets, known)
        cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        loss = cross_entropy
        if self.gamma > 0:  # skipped at 0: pow(0, 0) has no useful gradient
            p = torch.sigmoid(logits)
            p_true = p * targets + (1 - p) * (1 - targets)
            loss = loss * (1 - p_true) ** self.gamma
        if self.alpha is not None:
            loss = loss * (self.alpha * targets + (1 - self.alpha) * (1 - targets))
        return _masked("focal", loss, known)


class AsymmetricLoss(nn.Module):
    """Asymmetric loss (ASL), Ridnik et al. 2021, per label.

    Positives: ``-(1 - p) ** gamma_pos * log(p)``. Negatives use a shifted probability
    ``p_m = max(p - clip, 0)``: ``-p_m ** gamma_neg * log(1 - p_m)``. A large ``gamma_neg`` and the
    margin ``clip`` discard easy negatives, which dominate imbalanced multilabel data.
    """

    def __init__(self, num_labels: int, gamma_neg: float = 4.0, gamma_pos: float = 1.0, clip: float = 0.05) -> None:
        super().__init__()
        if gamma_neg < 0 or gamma_pos < 0:
            raise ValueError(f"asl: gamma_neg and gamma_pos must be >= 0, got {gamma_neg} and {gamma_pos}")
        if not 0.0 <= clip < 1.0:
            raise ValueError(f"asl: clip must lie in [0, 1), got {clip}")
        self.num_labels = num_labels
        self.gamma_neg, self.gamma_pos, self.clip = float(gamma_neg), float(gamma_pos), float(clip)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        _check_inputs("asl", self.num_labels, logits, targets)
        logits, targets = logits.float(), _targets(targets, known)
        p = torch.sigmoid(logits)
        log_p = F.logsigmoid(logits)
        if self.clip > 0:
            p_neg = (p - self.clip).clamp(min=0)
            log_one_minus_p_neg = torch.log1p(-p_neg)  # 1 - p_neg >= clip > 0: finite
        else:
            p_neg, log_one_minus_p_neg = p, F.logsigmoid(-logits)
        positive, negative = -log_p, -log_one_minus_p_neg
        if self.gamma_pos > 0:
            positive = positive * (1 - p) ** self.gamma_pos
        if self.gamma_neg > 0:
            negative = negative * p_neg ** self.gamma_neg
        return _masked("asl", targets * positive + (1 - targets) * negative, known)


def focal(label_counts: Sequence[int], n_samples: int, gamma: float = 2.0, alpha: float | None = 0.25) -> nn.Module:
    """mlbench loss factory for :class:`FocalLoss` (the label counts fix only the label count)."""
    return FocalLoss(len(list(label_counts)), gamma=gamma, alpha=alpha)


def asl(label_counts: Sequence[int], n_samples: int, gamma_neg: float = 4.0, gamma_pos: float = 1.0,
        clip: float = 0.05) -> nn.Module:
    """mlbench loss factory for :class:`AsymmetricLoss` (defaults: the paper's multilabel setting)."""
    return AsymmetricLoss(len(list(label_counts)), gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip)
