"""The plugin's losses: the math, the mlbench contract, and its registration."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mlbench.contracts.registry import build_registry
from mlbench_imbalanced_losses import asl, focal

torch.set_num_threads(1)
LABEL_COUNTS = [30, 5, 1]  # three labels, from frequent to rare
N_SAMPLES = 40


@pytest.fixture()
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 3, generator=generator) * 3
    targets = (torch.rand(16, 3, generator=generator) < 0.3).float()
    return logits, targets


def test_focal_without_focusing_is_bce(batch):
    logits, targets = batch
    loss = focal(LABEL_COUNTS, N_SAMPLES, gamma=0.0, alpha=None)
    assert torch.allclose(loss(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))


def test_asl_without_focusing_or_margin_is_bce(batch):
    logits, targets = batch
    loss = asl(LABEL_COUNTS, N_SAMPLES, gamma_neg=0.0, gamma_pos=0.0, clip=0.0)
    assert torch.allclose(loss(logits, targets), F.binary_cross_entropy_with_logits(logits, targets))


def test_focal_matches_the_formula_on_one_cell():
    # p = sigmoid(1) for a positive cell: -alpha * (1 - p)^gamma * log(p)
    p = 1 / (1 + math.exp(-1.0))
    expected = -0.25 * (1 - p) ** 2 * math.log(p)
    got = focal([1], 2, gamma=2.0, alpha=0.25)(torch.tensor([[1.0]]), torch.tensor([[1.0]]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_asl_matches_the_formula_on_one_negative_cell():
    # p = sigmoid(0.5), shifted by the margin: -(p - m)^gamma_neg * log(1 - (p - m))
    p, margin = 1 / (1 + math.exp(-0.5)), 0.05
    expected = -((p - margin) ** 4) * math.log(1 - (p - margin))
    got = asl([1], 2, gamma_neg=4.0, gamma_pos=1.0, clip=margin)(torch.tensor([[0.5]]), torch.tensor([[0.0]]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_asl_margin_discards_easy_negatives():
    # A negative with p below the margin costs nothing.
    easy = torch.tensor([[-4.0]])  # sigmoid(-4) = 0.018 < 0.05
    assert asl([1], 2)(easy, torch.zeros(1, 1)).item() == 0.0


def test_focusing_lowers_the_weight_of_easy_cells():
    confident_right = torch.tensor([[4.0]])
    target = torch.ones(1, 1)
    bce = F.binary_cross_entropy_with_logits(confident_right, target)
    assert focal([1], 2, gamma=2.0, alpha=None)(confident_right, target) < bce / 100


@pytest.mark.parametrize("make", [
    lambda: focal(LABEL_COUNTS, N_SAMPLES),
    lambda: focal(LABEL_COUNTS, N_SAMPLES, gamma=0.0, alpha=None),
    lambda: asl(LABEL_COUNTS, N_SAMPLES),
    lambda: asl(LABEL_COUNTS, N_SAMPLES, gamma_neg=0.0, gamma_pos=0.0, clip=0.0),
])
def test_scalar_with_finite_gradients_even_at_extreme_logits(make):
    logits = torch.tensor([[30.0, -30.0, 0.0], [-30.0, 30.0, 1e-3]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    value = make()(logits, targets)
    assert value.shape == () and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("make", [focal, asl])
def test_mismatched_shapes_are_named(make):
    loss = make(LABEL_COUNTS, N_SAMPLES)
    with pytest.raises(ValueError, match=r"logits shape \(4, 3\) and targets shape \(4, 2\) differ"):
        loss(torch.zeros(4, 3), torch.zeros(4, 2))


@pytest.mark.parametrize("make", [focal, asl])
def test_wrong_label_count_is_named(make):
    loss = make(LABEL_COUNTS, N_SAMPLES)
    with pytest.raises(ValueError, match=r"built for 3 labels, expected \(batch, 3\) tensors, got shape \(4, 5\)"):
        loss(torch.zeros(4, 5), torch.zeros(4, 5))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="focal: gamma must be >= 0"):
        focal(LABEL_COUNTS, N_SAMPLES, gamma=-1)
    with pytest.raises(ValueError, match="focal: alpha must lie in"):
        focal(LABEL_COUNTS, N_SAMPLES, alpha=1.5)
    with pytest.raises(ValueError, match=r"asl: clip must lie in \[0, 1\)"):
        asl(LABEL_COUNTS, N_SAMPLES, clip=1.0)


def test_registered_through_the_entry_point():
    """Installed, the package's entry point brings both losses into mlbench's registry."""
    registry = build_registry()
    for name in ("focal", "asl"):
        entry = registry.get("loss", name)
        assert entry.plugin == "imbalanced_losses"
        assert entry.package == "mlbench-imbalanced-losses"
        loss = registry.create("loss", name, label_counts=LABEL_COUNTS, n_samples=N_SAMPLES)
        assert torch.isfinite(loss(torch.zeros(2, 3), torch.ones(2, 3)))
