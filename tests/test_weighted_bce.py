"""Weighted BCE: the documented inverse-frequency formula."""

import pytest
import torch

from mlbench.models.losses import inverse_frequency_pos_weight, weighted_bce


def test_pos_weight_formula():
    w = inverse_frequency_pos_weight([10, 50, 0], n_samples=100)
    torch.testing.assert_close(w, torch.tensor([9.0, 1.0, 1.0]))


def test_weighted_loss_matches_manual_computation():
    logits = torch.tensor([[2.0, -1.0], [-0.5, 0.3]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = weighted_bce([1, 3], n_samples=4)(logits, targets)
    w = torch.tensor([3.0, 1 / 3])
    p = torch.sigmoid(logits)
    manual = -(w * targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).mean()
    torch.testing.assert_close(loss, manual)


def test_bad_counts_and_shapes_are_errors():
    with pytest.raises(ValueError, match="label_counts must lie in"):
        weighted_bce([5], n_samples=3)
    with pytest.raises(ValueError, match="logits .* and targets .* differ"):
        weighted_bce([1], n_samples=3)(torch.zeros(2, 1), torch.zeros(2, 2))
