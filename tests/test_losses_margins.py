"""ldam, logit-adjusted-bce, the label_weights option of every built-in loss, effective_number_weights."""

import math

import pytest
import torch
from torch import nn

from mlbench.contracts.registry import get_registry
from mlbench.foundations.options import OptionError
from mlbench.models.losses import (class_balanced, distribution_balanced, effective_number_weights, ldam,
                                   logit_adjusted_bce, plain_bce, weighted_bce)

COUNTS, N = [400, 40, 4, 0], 1000
LOSSES = {"bce": plain_bce, "weighted-bce": weighted_bce, "class-balanced": class_balanced,
          "distribution-balanced": distribution_balanced, "ldam": ldam, "logit-adjusted-bce": logit_adjusted_bce}


def batch(seed=0, rows=6):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, len(COUNTS), generator=generator) * 2
    targets = (torch.rand(rows, len(COUNTS), generator=generator) < 0.4).float()
    targets[0] = 1  # every label has a positive and (row 1) a negative in the batch
    targets[1] = 0
    return logits, targets


def softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def bce_by_hand(z, y):
    return y * softplus(-z) + (1 - y) * softplus(z)


def test_ldam_margins_follow_inverse_fourth_root_scaled_to_max_margin():
    counts = [1000, 100, 16, 3, 0]
    loss = ldam(counts, 2000, max_margin=0.3)
    constant = 0.3 * 3 ** 0.25  # the rarest present label (3 positives) gets the largest margin
    expected = [constant / n ** 0.25 for n in counts[:-1]] + [0.3]  # no positive: max_margin
    assert loss.margins.dtype == torch.float32
    assert loss.margins.tolist() == pytest.approx(expected, rel=1e-6)
    assert max(loss.margins.tolist()) == pytest.approx(0.3)
    assert ldam([0, 0], 5).margins.tolist() == pytest.approx([0.5, 0.5])  # default max_margin


def test_ldam_equals_hand_computation():
    loss = ldam([16, 1], 20, max_margin=0.4, scale=2.0)
    delta = [0.4 / 16 ** 0.25, 0.4]  # C = 0.4 * 1^(1/4)
    logits = [[0.3, -1.2], [1.5, 0.7]]
    targets = [[1.0, 0.0], [0.0, 1.0]]
    cells = [bce_by_hand(2.0 * (z - d * y), y) for zr, yr in zip(logits, targets)
             for z, y, d in zip(zr, yr, delta)]
    value = float(loss(torch.tensor(logits), torch.tensor(targets)))
    assert value == pytest.approx(sum(cells) / 4, rel=1e-6)


def test_ldam_penalises_a_rare_labels_positive_more():
    loss = ldam([900, 9], 1000)
    logits, targets = torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1.0]])
    cells = nn.functional.binary_cross_entropy_with_logits(
        logits - loss.margins * targets, targets, reduction="none")[0]
    assert float(cells[1]) > float(cells[0])
    # and the full loss sees it: the same positive logit costs more on the rare label
    rare = float(loss(torch.tensor([[5.0, 1.0]]), torch.tensor([[0.0, 1.0]])))
    frequent = float(loss(torch.tensor([[1.0, -5.0]]), torch.tensor([[1.0, 0.0]])))
    assert rare > frequent


def test_logit_adjusted_tau_zero_is_exactly_bce():
    logits, targets = batch(1)
    assert torch.equal(logit_adjusted_bce(COUNTS, N, tau=0.0)(logits, targets), plain_bce(COUNTS, N)(logits, targets))


def test_logit_adjusted_tau_one_is_bce_of_shifted_logits():
    counts, n = [10, 250], 1000
    loss = logit_adjusted_bce(counts, n)
    shift = [math.log(0.01 / 0.99), math.log(0.25 / 0.75)]
    logits, targets = [[0.5, -0.2], [2.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]
    cells = [bce_by_hand(z + s, y) for zr, yr in zip(logits, targets) for z, y, s in zip(zr, yr, shift)]
    assert loss.adjustment.tolist() == pytest.approx(shift, rel=1e-6)
    assert float(loss(torch.tensor(logits), torch.tensor(targets))) == pytest.approx(sum(cells) / 4, rel=1e-6)


def test_logit_adjusted_clips_absent_and_universal_labels():
    loss = logit_adjusted_bce([0, 100, 50], 100, tau=2.0)
    clipped = 0.5 / 100
    expected = [2 * math.log(clipped / (1 - clipped)), 2 * math.log((1 - clipped) / clipped), 0.0]
    assert loss.adjustment.tolist() == pytest.approx(expected, rel=1e-6, abs=1e-7)
    logits = torch.zeros(2, 3, requires_grad=True)
    value = loss(logits, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_label_weights_none_and_ones_change_nothing(name):
    logits, targets = batch(2)
    plain = LOSSES[name](COUNTS, N)(logits, targets)
    assert torch.equal(LOSSES[name](COUNTS, N, label_weights=None)(logits, targets), plain)
    ones = LOSSES[name](COUNTS, N, label_weights=[1.0] * len(COUNTS))(logits, targets)
    torch.testing.assert_close(ones, plain, rtol=1e-6, atol=0)


def cells_by_hand(name, logits, targets):
    """Each loss's per-cell terms from its closed form (defaults), for COUNTS and N."""
    z, y = logits, targets
    counts = torch.tensor(COUNTS, dtype=torch.float32)

    def bce(shifted, pos_weight=1.0):
        return y * pos_weight * nn.functional.softplus(-shifted) + (1 - y) * nn.functional.softplus(shifted)

    if name == "bce":
        return bce(z)
    if name == "weighted-bce":
        return bce(z, torch.where(counts > 0, (N - counts) / counts.clamp(min=1), torch.ones(4)))
    if name == "class-balanced":
        return bce(z) * torch.tensor(effective_number_weights(COUNTS, 0.999))
    if name == "ldam":
        margins = torch.tensor([0.5 * (4 / n) ** 0.25 for n in COUNTS[:-1]] + [0.5])
        return bce(z - margins * y)
    prior = (counts / N).clamp(0.5 / N, 1 - 0.5 / N)
    if name == "logit-adjusted-bce":
        return bce(z + torch.log(prior / (1 - prior)))
    shifted = z + 0.05 * torch.log(prior / (1 - prior)) / 2  # distribution-balanced: kappa 0.05, lambda 2
    weight = distribution_balanced(COUNTS, N).rebalancing_weight(y)
    return weight * (y * nn.functional.softplus(-shifted) + (1 - y) * nn.functional.softplus(2 * shifted) / 2)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_label_weights_multiply_each_labels_term(name):
    logits, targets = batch(3)
    cells = cells_by_hand(name, logits, targets)
    torch.testing.assert_close(LOSSES[name](COUNTS, N)(logits, targets), cells.mean(), rtol=1e-5, atol=0)
    weights = torch.tensor([2.0, 0.0, 0.5, 3.0])
    weighted = LOSSES[name](COUNTS, N, label_weights=weights.tolist())(logits, targets)
    torch.testing.assert_close(weighted, (cells * weights).mean(), rtol=1e-5, atol=0)
    assert torch.is_tensor(weighted) and weighted.dim() == 0


def test_label_weights_compose_with_class_balanced_by_multiplication():
    # what deferred re-weighting relies on: the loss's own weighting stays, label_weights multiplies it
    logits, targets = batch(4)
    cells = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    weights = torch.tensor([2.0, 0.0, 1.0, 1.0])
    own = torch.tensor(effective_number_weights(COUNTS, 0.999))
    balanced = class_balanced(COUNTS, N, label_weights=weights.tolist())(logits, targets)
    torch.testing.assert_close(balanced, (cells * own * weights).mean())


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("wrong", [[1.0, 1.0], [1.0, -1.0, 1.0, 1.0], [1.0, float("nan"), 1.0, 1.0],
                                   [1.0, float("inf"), 1.0, 1.0], [1.0, "a", 1.0, 1.0], [True, 1, 1, 1],
                                   "1111", 2.0, {"a": 1}])
def test_wrong_label_weights_are_one_line_option_errors(name, wrong):
    with pytest.raises(OptionError, match=r"label_weights must be a list of 4 non-negative finite numbers") as error:
        LOSSES[name](COUNTS, N, label_weights=wrong)
    assert "\n" not in str(error.value) and str(error.value).startswith(f"{name}: ")


def test_new_loss_options_are_checked():
    for call, key in ((lambda: ldam([1], 2, max_margin=0), "max_margin"), (lambda: ldam([1], 2, scale=-1), "scale"),
                      (lambda: ldam([1], 2, scale=float("nan")), "scale"),
                      (lambda: logit_adjusted_bce([1], 2, tau=-0.1), "tau")):
        with pytest.raises(OptionError, match=key):
            call()


def test_effective_number_weights_sum_to_labels_and_fall_with_n():
    counts = [1, 10, 100, 1000, 10000]
    weights = effective_number_weights(counts)
    assert isinstance(weights, list) and all(isinstance(w, float) for w in weights)
    assert sum(weights) == pytest.approx(len(counts))
    assert all(a > b for a, b in zip(weights, weights[1:]))
    raw = [(1 - 0.9999) / (1 - 0.9999 ** n) for n in counts]  # Cui et al.'s closed form, beta 0.9999
    assert weights == pytest.approx([len(counts) * r / sum(raw) for r in raw], rel=1e-9)
    with_absent = effective_number_weights([3, 0, 30], beta=0.9)
    assert with_absent[1] == 1.0 and sum(with_absent) == pytest.approx(3.0)
    # the same numbers class-balanced trains with
    assert class_balanced([3, 0, 30], 50, beta=0.9).weight.tolist() == pytest.approx(with_absent, rel=1e-6)
    with pytest.raises(OptionError, match="beta"):
        effective_number_weights([1, 2], beta=1.0)


def test_new_losses_build_through_the_registry_and_on_planner_dummies():
    registry = get_registry()
    margins = registry.create("loss", "ldam", label_counts=[81, 1], n_samples=100, max_margin=0.3).margins
    assert margins.tolist() == pytest.approx([0.1, 0.3], rel=1e-6)
    adjusted = registry.create("loss", "logit-adjusted-bce", label_counts=[10, 50], n_samples=100, tau=0.5)
    assert adjusted.adjustment.tolist() == pytest.approx([0.5 * math.log(0.1 / 0.9), 0.0], abs=1e-7)
    for name in ("ldam", "logit-adjusted-bce"):
        dummy = registry.create("loss", name, label_counts=[1, 1, 1], n_samples=2, label_weights=[1, 2, 3])
        value = dummy(torch.zeros(2, 3), torch.eye(2, 3))
        assert value.dim() == 0 and torch.isfinite(value)
