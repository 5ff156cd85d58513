"""Built-in losses: the paper's weighted binary cross-entropy with logits, re-weightings and margins.

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
- ``ldam``: Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss"
  (NeurIPS 2019), one sigmoid per label (see :class:`LDAMLoss`).
- ``logit-adjusted-bce``: Menon et al., "Long-tail learning via logit adjustment" (ICLR 2021),
  the loss form with each label's log prior odds (see :class:`LogitAdjustedBCE`).

Every built-in loss takes ``label_weights``: one non-negative factor per label that multiplies
label j's loss term on top of the loss's own weighting. It is what deferred re-weighting (the
``drw`` schedule) sets from its switch epoch on; None, the default, changes nothing.

Unknown cells (partial labels). Every built-in module is called as ``loss(logits, targets,
known=None)``; ``known`` is a bool tensor like ``targets``, False where the cell's label is unknown.
A masked cell contributes nothing and moves no gradient (its target is never read: flipping it
changes neither the loss nor any gradient), and the loss is the mean over the known cells (0, with
a zero gradient, for a batch with none). With ``known=None`` each loss is exactly what it was. A
loss declares mask support by naming ``known`` in its ``forward`` (:func:`takes_known`); its factory
may take ``known_counts`` (known cells per label on the training split, default ``n_samples`` for
every label), which is where the built-ins that use a label's frequency take it:
``weighted-bce``'s pos_weight is (K_j - P_j) / P_j and the priors of ``distribution-balanced`` and
``logit-adjusted-bce`` are P_j / K_j, K_j label j's known cells. ``class-balanced`` and ``ldam`` use
positive counts only, which unknown cells do not change.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from mlbench.foundations.options import OptionError, check_number, is_number, shown


def check_label_weights(label_weights: Any, n_labels: int, who: str) -> torch.Tensor | None:
    """``label_weights`` as a float tensor of ``n_labels`` factors, None left as None (no weighting at all,
    so the loss stays bit-identical to one without the option); anything else is one OptionError."""
    if label_weights is None:
        return None
    values = label_weights.tolist() if hasattr(label_weights, "tolist") else label_weights
    ok = (isinstance(values, Sequence) and not isinstance(values, (str, bytes, Mapping))
          and len(values) == n_labels
          and all(is_number(v) and math.isfinite(v) and v >= 0 for v in values))
    if not ok:
        raise OptionError(f"{who}: label_weights must be a list of {n_labels} non-negative finite numbers "
                          f"(one per label), got {shown(values)}")
    return torch.tensor([float(v) for v in values], dtype=torch.float32)


# -- unknown cells ---------------------------------------------------------------------------------
def takes_known(loss: Any) -> bool:
    """Whether a loss module declares mask support: its ``forward`` (or call) names a ``known`` parameter."""
    target = getattr(loss, "forward", loss)
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return "known" in params and params["known"].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                          inspect.Parameter.KEYWORD_ONLY)


def check_known_counts(known_counts: Sequence[int] | None, label_counts: Sequence[int], n_samples: int,
                       who: str) -> torch.Tensor:
    """Known cells per label (float64): ``n_samples`` each when None; each must lie in [positives, n_samples]."""
    counts = torch.as_tensor(list(label_counts), dtype=torch.float64)
    if known_counts is None:
        return torch.full_like(counts, float(n_samples))
    cells = torch.as_tensor(list(known_counts), dtype=torch.float64)
    if cells.shape != counts.shape or not torch.isfinite(cells).all() or (cells < counts).any() \
            or (cells > n_samples).any():
        raise ValueError(f"{who}: known_counts must give one count per label in [its positives, n_samples="
                         f"{n_samples}], got {cells.tolist()} for positives {counts.tolist()}")
    return cells


def masked_mean(per_cell: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """The mean of ``per_cell`` over the known cells; a masked cell adds nothing, not even a gradient."""
    known = known.to(per_cell.device, torch.bool)
    total = torch.where(known, per_cell, torch.zeros_like(per_cell)).sum()
    return total / known.sum().clamp(min=1).to(per_cell.dtype)


def _known_targets(targets: torch.Tensor, known: torch.Tensor | None, who: str) -> torch.Tensor:
    """Targets with every masked cell set to 0, so no loss reads what an unknown cell holds."""
    targets = targets.float()
    if known is None:
        return targets
    if known.shape != targets.shape:
        raise ValueError(f"{who}: known {tuple(known.shape)} and targets {tuple(targets.shape)} differ")
    return torch.where(known.to(targets.device, torch.bool), targets, torch.zeros_like(targets))


class KnownTargets(nn.Module):
    """The training loop's view of a mask-taking loss: targets arrive as floats with NaN at unknown cells
    (they index, move and mix like any targets; a mixed cell is known where both of its cells are), and
    the wrapped loss is called with those cells as 0 and ``known`` False there."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        if not takes_known(loss):
            raise ValueError(f"{type(loss).__name__}: its forward takes no 'known' mask; it cannot train on unknown cells")
        self.loss = loss

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        known = ~torch.isnan(targets)
        return self.loss(logits, torch.nan_to_num(targets, nan=0.0), known=known)


# -- the paper's weighted BCE ------------------------------------------------------------------------
def inverse_frequency_pos_weight(label_counts: Sequence[int], n_samples: int, max_weight: float | None = None,
                                 known_counts: Sequence[int] | None = None) -> torch.Tensor:
    """pos_weight_j = (N - P_j) / P_j: positives of label j weigh as much, in total, as its negatives.

    This is the weighting of TensorFlow's ``weighted_cross_entropy_with_logits`` the paper used,
    with weights from inverse label frequency on the training split. A label with no positive
    gets weight 1 (nothing to up-weight). ``max_weight`` optionally caps extreme ratios.
    ``known_counts``: with unknown cells, N is per label its known cells K_j: (K_j - P_j) / P_j.
    """
    counts = torch.as_tensor(list(label_counts), dtype=torch.float64)
    if n_samples <= 0:
        raise ValueError(f"weighted-bce: n_samples must be positive, got {n_samples}")
    if (counts < 0).any() or (counts > n_samples).any():
        raise ValueError(f"weighted-bce: label_counts must lie in [0, n_samples={n_samples}], got {counts.tolist()}")
    total = n_samples if known_counts is None else check_known_counts(known_counts, label_counts, n_samples,
                                                                       "weighted-bce")
    weight = torch.where(counts > 0, (total - counts) / counts.clamp(min=1), torch.ones_like(counts))
    weight = weight.clamp(min=1e-3)
    max_weight = check_number(max_weight, "weighted-bce", "max_weight", 0, low_open=True, none=True)
    if max_weight is not None:
        weight = weight.clamp(max=max_weight)
    return weight.float()


def _on(tensor: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(like.device)


class WeightedBCEWithLogits(nn.Module):
    """BCE with logits, positives of each label up-weighted by ``pos_weight``, each label's terms
    multiplied by ``label_weights`` (None: not at all)."""

    def __init__(self, pos_weight: torch.Tensor, label_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.register_buffer("label_weights", label_weights)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        if logits.shape != targets.shape:
            raise ValueError(f"weighted-bce: logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
        if known is None:
            return nn.functional.binary_cross_entropy_with_logits(
                logits.float(), targets.float(), weight=_on(self.label_weights, logits),
                pos_weight=self.pos_weight.to(logits.device))
        per_cell = nn.functional.binary_cross_entropy_with_logits(
            logits.float(), _known_targets(targets, known, "weighted-bce"), weight=_on(self.label_weights, logits),
            pos_weight=self.pos_weight.to(logits.device), reduction="none")
        return masked_mean(per_cell, known)


def weighted_bce(label_counts: Sequence[int], n_samples: int, max_weight: float | None = None,
                 label_weights: Sequence[float] | None = None,
                 known_counts: Sequence[int] | None = None) -> nn.Module:
    pos_weight = inverse_frequency_pos_weight(label_counts, n_samples, max_weight, known_counts)
    return WeightedBCEWithLogits(pos_weight, check_label_weights(label_weights, pos_weight.numel(), "weighted-bce"))


def plain_bce(label_counts: Sequence[int], n_samples: int, label_weights: Sequence[float] | None = None,
              known_counts: Sequence[int] | None = None) -> nn.Module:
    """Unweighted BCE: the baseline that shows what the weighting buys."""
    n_labels = len(list(label_counts))
    check_known_counts(known_counts, label_counts, n_samples, "bce")
    return WeightedBCEWithLogits(torch.ones(n_labels), check_label_weights(label_weights, n_labels, "bce"))


def _counts(label_counts: Sequence[int], n_samples: int | None, who: str) -> torch.Tensor:
    """One count per label as float64; with ``n_samples`` None there is no upper bound to check."""
    counts = torch.as_tensor(list(label_counts), dtype=torch.float64)
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"{who}: label_counts must be one count per label, got {list(label_counts)}")
    if n_samples is None:
        if not torch.isfinite(counts).all() or (counts < 0).any():
            raise ValueError(f"{who}: label_counts must be non-negative counts, got {counts.tolist()}")
        return counts
    if n_samples <= 0:
        raise ValueError(f"{who}: n_samples must be positive, got {n_samples}")
    if not torch.isfinite(counts).all() or (counts < 0).any() or (counts > n_samples).any():
        raise ValueError(f"{who}: label_counts must lie in [0, n_samples={n_samples}], got {counts.tolist()}")
    return counts


def _check_shapes(logits: torch.Tensor, targets: torch.Tensor, n_labels: int, who: str) -> None:
    if logits.shape != targets.shape or logits.dim() != 2 or logits.shape[1] != n_labels:
        raise ValueError(f"{who}: logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must both be "
                         f"(batch, {n_labels})")


def _inverse_effective_numbers(counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Cui et al.'s (1 - beta) / (1 - beta^n) per label (float64), scaled so the weights sum to the number
    of labels. A label with no positive has no effective number (its weight would be infinite): it is
    left out of the scaling and weighs 1, as in plain BCE, so the sum is still the number of labels."""
    present = counts > 0
    raw = (1 - beta) / (1 - torch.pow(torch.tensor(float(beta), dtype=torch.float64), counts.clamp(min=1)))
    weight = torch.ones_like(counts)
    if present.any():
        weight[present] = raw[present] * present.sum() / raw[present].sum()
    return weight


def effective_number_weights(label_counts: Sequence[int], beta: float = 0.9999) -> list[float]:
    """Class-balanced weights (Cui et al. 2019), one per label, summing to the number of labels; a label
    with no positive weighs 1. The ``drw`` schedule's default deferred ``label_weights``."""
    counts = _counts(label_counts, None, "effective_number_weights")
    beta = check_number(beta, "effective_number_weights", "beta", 0, 1, high_open=True)
    return _inverse_effective_numbers(counts, beta).tolist()


def class_balanced_weights(label_counts: Sequence[int], n_samples: int, beta: float = 0.999) -> torch.Tensor:
    """Cui et al.'s weight per label (see :func:`effective_number_weights`) as a float tensor."""
    counts = _counts(label_counts, n_samples, "class-balanced")
    beta = check_number(beta, "class-balanced", "beta", 0, 1, high_open=True)
    return _inverse_effective_numbers(counts, beta).float()


class ClassBalancedBCE(nn.Module):
    """BCE with logits, label j's terms (positive and negative) multiplied by ``weight[j]`` and, when
    given, by ``label_weights[j]``."""

    def __init__(self, weight: torch.Tensor, label_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("label_weights", label_weights)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(logits, targets, self.weight.numel(), "class-balanced")
        per_cell = nn.functional.binary_cross_entropy_with_logits(
            logits.float(), _known_targets(targets, known, "class-balanced"), reduction="none")
        weight = self.weight.to(logits.device)
        if self.label_weights is not None:
            weight = weight * self.label_weights.to(logits.device)
        return (per_cell * weight).mean() if known is None else masked_mean(per_cell * weight, known)


def class_balanced(label_counts: Sequence[int], n_samples: int, beta: float = 0.999,
                   label_weights: Sequence[float] | None = None,
                   known_counts: Sequence[int] | None = None) -> nn.Module:
    """Effective numbers count positives only: unknown cells change no weight (``known_counts`` is checked)."""
    weight = class_balanced_weights(label_counts, n_samples, beta)
    check_known_counts(known_counts, label_counts, n_samples, "class-balanced")
    return ClassBalancedBCE(weight, check_label_weights(label_weights, weight.numel(), "class-balanced"))


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
    universal) label gets a finite weight and bias. ``label_weights``, when given, multiplies w
    per label. With unknown cells N is per label its known cells (``cells``), and an image's draw
    probability P_I sums over its known positives only.
    """

    def __init__(self, counts: torch.Tensor, n_samples: int, alpha: float, beta: float, mu: float,
                 lam: float, kappa: float, label_weights: torch.Tensor | None = None,
                 cells: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("label_weights", label_weights)
        if cells is None:
            clamped = counts.clamp(min=0.5, max=n_samples - 0.5)
            prior = clamped / n_samples
        else:  # per label: its positives among its known cells
            cells = cells.clamp(min=1.0)
            clamped = torch.minimum(counts.clamp(min=0.5), cells - 0.5).clamp(min=0.5)
            prior = clamped / cells
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

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(logits, targets, self.bias.numel(), "distribution-balanced")
        # masked cells are 0 here, so they are no positive of the image's draw probability either
        targets = _known_targets(targets, known, "distribution-balanced")
        shifted = logits.float() + self.bias.to(logits.device)
        weight = self.rebalancing_weight(targets)
        if self.label_weights is not None:
            weight = weight * self.label_weights.to(logits.device)
        positive = nn.functional.softplus(-shifted)  # -log sigmoid(z + nu)
        negative = nn.functional.softplus(self.lam * shifted) / self.lam
        per_cell = weight * (targets * positive + (1 - targets) * negative)
        return per_cell.mean() if known is None else masked_mean(per_cell, known)


def distribution_balanced(label_counts: Sequence[int], n_samples: int, alpha: float = 0.1, beta: float = 10.0,
                          mu: float = 0.2, lam: float = 2.0, kappa: float = 0.05,
                          label_weights: Sequence[float] | None = None,
                          known_counts: Sequence[int] | None = None) -> nn.Module:
    """Defaults: the paper's (smoothing alpha 0.1, beta 10, mu 0.2; NTR lambda 2, kappa 0.05)."""
    who = "distribution-balanced"
    # Negative alpha, beta or kappa would turn the weights or the prior bias around; lambda divides.
    alpha, beta, kappa = (check_number(v, who, k, 0) for k, v in (("alpha", alpha), ("beta", beta), ("kappa", kappa)))
    mu, lam = check_number(mu, who, "mu"), check_number(lam, who, "lam", 0, low_open=True)
    counts = _counts(label_counts, n_samples, who)
    cells = None if known_counts is None else check_known_counts(known_counts, label_counts, n_samples, who)
    return DistributionBalancedLoss(counts, n_samples, alpha, beta, mu, lam, kappa,
                                    check_label_weights(label_weights, counts.numel(), who), cells)


def _ldam_margins(counts: torch.Tensor, max_margin: float) -> torch.Tensor:
    """Delta_j = C / n_j^(1/4), C chosen so the rarest present label's margin is ``max_margin``; a label
    with no positive has no n to scale by and gets ``max_margin`` (it is as rare as a label can be)."""
    present = counts > 0
    if not present.any():
        return torch.full_like(counts, max_margin).float()
    constant = max_margin * counts[present].min() ** 0.25
    return torch.where(present, constant / counts.clamp(min=1) ** 0.25, torch.full_like(counts, max_margin)).float()


class LDAMLoss(nn.Module):
    """Cao et al. 2019's label-distribution-aware margin, one sigmoid per label:
    BCE with logits of ``scale * (z - margins * y)`` against y.

    The margin is taken off the logit of positives only, so a rare label's positives must clear a
    larger margin than a frequent label's before their loss falls. Our adaptation: the paper is a
    softmax over classes with s = 30 on normalised (cosine) logits; mlbench's heads give raw logits,
    one sigmoid per label, so the margin is per label and ``scale`` defaults to 1. The margin is a
    training device only: predictions use the raw logits.
    """

    def __init__(self, margins: torch.Tensor, scale: float, label_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("margins", margins)
        self.register_buffer("label_weights", label_weights)
        self.scale = scale

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(logits, targets, self.margins.numel(), "ldam")
        targets = _known_targets(targets, known, "ldam")
        adjusted = self.scale * (logits.float() - self.margins.to(logits.device) * targets)
        if known is None:
            return nn.functional.binary_cross_entropy_with_logits(adjusted, targets,
                                                                  weight=_on(self.label_weights, logits))
        per_cell = nn.functional.binary_cross_entropy_with_logits(adjusted, targets, weight=_on(self.label_weights, logits),
                                                                  reduction="none")
        return masked_mean(per_cell, known)


def ldam(label_counts: Sequence[int], n_samples: int, max_margin: float = 0.5, scale: float = 1.0,
         label_weights: Sequence[float] | None = None, known_counts: Sequence[int] | None = None) -> nn.Module:
    """Defaults: the paper's largest margin 0.5; scale 1 (see :class:`LDAMLoss`). Margins count positives
    only: unknown cells change none (``known_counts`` is checked)."""
    max_margin = check_number(max_margin, "ldam", "max_margin", 0, low_open=True)
    scale = check_number(scale, "ldam", "scale", 0, low_open=True)
    counts = _counts(label_counts, n_samples, "ldam")
    check_known_counts(known_counts, label_counts, n_samples, "ldam")
    return LDAMLoss(_ldam_margins(counts, max_margin), scale, check_label_weights(label_weights, counts.numel(), "ldam"))


class LogitAdjustedBCE(nn.Module):
    """Menon et al. 2021's logit-adjusted loss for one sigmoid per label: BCE with logits of
    ``z + tau * log(pi_j / (1 - pi_j))`` against y, pi_j = n_j / N the label's training prior.

    The softmax form adds tau * log(prior) per class; with a sigmoid per label the prior is that
    of a two-way choice, so its log odds are added. A rare label's logit is pushed down while
    training, so the model learns to raise it, and predictions use the raw logits. pi is clipped
    to [0.5 / N, 1 - 0.5 / N] so a label with no (or only) positives gets a finite shift.
    """

    def __init__(self, adjustment: torch.Tensor, label_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("adjustment", adjustment)
        self.register_buffer("label_weights", label_weights)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, known: torch.Tensor | None = None) -> torch.Tensor:
        _check_shapes(logits, targets, self.adjustment.numel(), "logit-adjusted-bce")
        shifted = logits.float() + self.adjustment.to(logits.device)
        if known is None:
            return nn.functional.binary_cross_entropy_with_logits(shifted, targets.float(),
                                                                  weight=_on(self.label_weights, logits))
        per_cell = nn.functional.binary_cross_entropy_with_logits(
            shifted, _known_targets(targets, known, "logit-adjusted-bce"), weight=_on(self.label_weights, logits),
            reduction="none")
        return masked_mean(per_cell, known)


def logit_adjusted_bce(label_counts: Sequence[int], n_samples: int, tau: float = 1.0,
                       label_weights: Sequence[float] | None = None,
                       known_counts: Sequence[int] | None = None) -> nn.Module:
    """Default tau 1: the paper's, its consistent choice for the balanced error. With unknown cells the
    prior is a label's positives among its known cells (clipped to [0.5 / K_j, 1 - 0.5 / K_j])."""
    tau = check_number(tau, "logit-adjusted-bce", "tau", 0)
    counts = _counts(label_counts, n_samples, "logit-adjusted-bce")
    if known_counts is None:
        prior = (counts / n_samples).clamp(min=0.5 / n_samples, max=1 - 0.5 / n_samples)
    else:
        cells = check_known_counts(known_counts, label_counts, n_samples, "logit-adjusted-bce").clamp(min=1.0)
        prior = torch.minimum(torch.maximum(counts / cells, 0.5 / cells), 1 - 0.5 / cells)
    adjustment = (tau * torch.log(prior / (1 - prior))).float()
    return LogitAdjustedBCE(adjustment, check_label_weights(label_weights, counts.numel(), "logit-adjusted-bce"))
