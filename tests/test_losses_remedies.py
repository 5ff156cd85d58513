"""class-balanced and distribution-balanced losses: hand-computed values, degenerate cases, gradients."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mlbench.models.losses import class_balanced, class_balanced_weights, distribution_balanced
from mlbench.contracts.registry import build_registry


def bce_cells(logits, targets):
    return nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def test_class_balanced_weights_by_hand():
    # beta 0.5: counts 1 and 2 give 0.5 / 0.5 = 1 and 0.5 / 0.75 = 2/3; scaled to sum 2 -> 1.2, 0.8
    assert class_balanced_weights([1, 2], 10, beta=0.5).tolist() == pytest.approx([1.2, 0.8])
    # beta 0.999, counts 100 and 1000: effective numbers (1 - 0.999^n) / 0.001
    e = [(1 - 0.999**n) / 0.001 for n in (100, 1000)]
    raw = [1 / x for x in e]
    expected = [2 * r / sum(raw) for r in raw]
    assert class_balanced_weights([100, 1000], 5000).tolist() == pytest.approx(expected, rel=1e-6)


def test_class_balanced_beta_zero_is_plain_bce_and_absent_labels_weigh_one():
    assert class_balanced_weights([5, 50, 500], 1000, beta=0.0).tolist() == pytest.approx([1, 1, 1])
    weights = class_balanced_weights([3, 30, 0], 100, beta=0.9)
    assert weights[2] == 1.0 and float(weights.sum()) == pytest.approx(3.0)
    assert weights[0] > weights[1]


def test_class_balanced_loss_is_weighted_bce_per_label():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 3), (torch.rand(6, 3) < 0.4).float()
    loss = class_balanced([4, 40, 400], 1000, beta=0.99)
    w = class_balanced_weights([4, 40, 400], 1000, beta=0.99)
    assert float(loss(logits, targets)) == pytest.approx(float((bce_cells(logits, targets) * w).mean()), rel=1e-6)
    plain = class_balanced([4, 40, 400], 1000, beta=0.0)
    assert float(plain(logits, targets)) == pytest.approx(
        float(nn.functional.binary_cross_entropy_with_logits(logits, targets)), rel=1e-6)


def test_distribution_balanced_reduces_to_bce():
    # beta 0 makes the smoothed weight alpha + sigmoid(0) = alpha + 0.5: alpha 0.5 gives weight 1;
    # kappa 0 removes the prior bias and lambda 1 the negative sharpening: plain BCE is left.
    torch.manual_seed(1)
    logits, targets = torch.randn(8, 4) * 3, (torch.rand(8, 4) < 0.3).float()
    targets[:, 0] = 1  # every image carries a label (an unlabelled one weighs alpha + 1 instead)
    loss = distribution_balanced([10, 20, 30, 40], 100, alpha=0.5, beta=0.0, lam=1.0, kappa=0.0)
    assert float(loss(logits, targets)) == pytest.approx(
        float(nn.functional.binary_cross_entropy_with_logits(logits, targets)), rel=1e-6)


def test_distribution_balanced_rebalancing_weight_by_hand():
    loss = distribution_balanced([10, 40, 50], 100)  # alpha 0.1, beta 10, mu 0.2
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    w = loss.rebalancing_weight(targets)
    # image 0 carries labels 0 and 1: P_I = 1/10 + 1/40 = 0.125; r = (1/n_i) / 0.125
    r = [0.1 / 0.125, 0.025 / 0.125, 0.02 / 0.125]
    expected = [0.1 + 1 / (1 + math.exp(-10 * (x - 0.2))) for x in r]
    assert w[0].tolist() == pytest.approx(expected, rel=1e-6)
    assert w[1].tolist() == pytest.approx([1.1, 1.1, 1.1])  # no positive: never drawn, alpha + 1


def test_distribution_balanced_ntr_by_hand():
    # one label, prior p = 20 / 100; kappa 0.05, lambda 2: nu = 0.05 * log(0.25) / 2
    loss = distribution_balanced([20], 100, alpha=0.5, beta=0.0)  # weight exactly 1
    nu = 0.05 * math.log(0.2 / 0.8) / 2
    z = 0.7
    pos = float(loss(torch.tensor([[z]]), torch.tensor([[1.0]])))
    neg = float(loss(torch.tensor([[z]]), torch.tensor([[0.0]])))
    assert pos == pytest.approx(math.log1p(math.exp(-(z + nu))), rel=1e-6)
    # the negative image carries no label: weight alpha + 1 = 1.5
    assert neg == pytest.approx(1.5 * math.log1p(math.exp(2 * (z + nu))) / 2, rel=1e-6)


@pytest.mark.parametrize("name", ["class-balanced", "distribution-balanced"])
def test_registered_finite_gradients_on_extremes_and_shape_errors(name):
    import mlbench.plugins.losses

    registry = build_registry(entry_points=False, plugins=[mlbench.plugins.losses])
    counts = [700, 30, 2, 0]
    loss = registry.create("loss", name, label_counts=counts, n_samples=1000)
    targets = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
    for scale in (1.0, 60.0):
        logits = (torch.randn(3, 4) * scale).requires_grad_(True)
        value = loss(logits, targets)
        value.backward()
        assert value.dim() == 0 and torch.isfinite(value)
        assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        loss(torch.zeros(3, 4), torch.zeros(3, 3))


def test_option_mistakes_are_one_line_errors():
    with pytest.raises(ValueError, match="beta must lie in"):
        class_balanced([1, 2], 10, beta=1.0)
    with pytest.raises(ValueError, match="label_counts must lie"):
        class_balanced([1, 20], 10)
    with pytest.raises(ValueError, match="lam"):
        distribution_balanced([1, 2], 10, lam=0)
    with pytest.raises(ValueError, match="n_samples"):
        distribution_balanced([0], 0)


def test_distribution_balanced_weighs_rare_label_positives_up():
    # an image carrying a frequent and a rare label: the rare label's cell gets the larger weight
    loss = distribution_balanced([900, 10], 1000)
    w = loss.rebalancing_weight(torch.tensor([[1.0, 1.0]]))
    assert float(w[0, 1]) > float(w[0, 0])
    assert np.isclose(float(w[0, 1]), 0.1 + 1 / (1 + math.exp(-10 * ((1 / 10) / (1 / 900 + 1 / 10) - 0.2))))
