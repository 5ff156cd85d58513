"""Explainer plugins: heatmaps that show where a multilabel model looks for each label.

An explainer plugin registers ``factory(**options) -> Explainer``: an object with

    explain(models, images, labels) -> Explanation

- ``models``: a sequence of M ``torch.nn.Module`` mapping (B, C, S, S) images in [0, 1] to logits
  (B, L); any module works (a timm-based backbone or not).
- ``images``: a float tensor (B, C, S, S) in [0, 1] on the models' device.
- ``labels``: the K label indices (columns of the logits) to explain, the same for every image.

and returning an :class:`Explanation` whose ``heatmaps`` are (M, B, K, S, S) float32 in [0, 1],
each (model, image, label) map divided by its own maximum (an all-zero map stays zero), so every
model weighs the same when maps are averaged, and whose ``probabilities`` are the (M, B, K)
sigmoids of the models' logits. The built-in explainer is ``gradcam``
(:mod:`mlbench.explainers.gradcam`). This module stays light: heavy code (torch internals,
pytorch-grad-cam, matplotlib) is imported only when an explainer is created or used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

from mlbench.foundations.errors import UserError

if TYPE_CHECKING:
    import torch


class ExplainError(UserError, ValueError):
    """The explanation cannot be made as asked (the message names the label, file or shape at fault)."""


@dataclass
class Explanation:
    """Heatmaps and probabilities for M models x B images x K labels (shapes in the module docstring).

    ``target_layers`` names, per model, the layer the maps come from (for the record).
    """

    heatmaps: "torch.Tensor"  # (M, B, K, S, S) float32 in [0, 1], each map / its max
    probabilities: "torch.Tensor"  # (M, B, K) sigmoid of the logits
    labels: tuple[int, ...]
    target_layers: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m, b, k = self.heatmaps.shape[:3]
        if tuple(self.probabilities.shape) != (m, b, k) or len(self.labels) != k:
            raise ExplainError(f"explanation: heatmaps {tuple(self.heatmaps.shape)}, probabilities "
                               f"{tuple(self.probabilities.shape)} and {len(self.labels)} labels do not agree")

    @property
    def n_models(self) -> int:
        return int(self.heatmaps.shape[0])

    def ensemble_maps(self, weights: "torch.Tensor | None" = None) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Mean and per-pixel standard deviation across models, each (B, K, S, S).

        ``weights`` (M, B, K) of 0/1 chooses which models enter each (image, label) map (e.g. only
        the models that agree with the ensemble); a map with no chosen model uses every model, so
        a map is never empty. The std is the population std (a single model gives zeros).
        """
        maps = self.heatmaps
        if weights is None:
            return maps.mean(dim=0), maps.std(dim=0, unbiased=False)
        w = weights.to(maps.dtype)
        w = w.where(w.sum(dim=0, keepdim=True) > 0, w.new_ones(()))  # nobody chosen -> everybody
        w = w[..., None, None]
        total = w.sum(dim=0)
        mean = (w * maps).sum(dim=0) / total
        var = (w * (maps - mean) ** 2).sum(dim=0) / total
        return mean, var.clamp_min(0).sqrt()


@runtime_checkable
class Explainer(Protocol):
    """What an explainer factory returns (see the module docstring for shapes)."""

    def explain(self, models: Sequence["torch.nn.Module"], images: "torch.Tensor",
                labels: Sequence[int]) -> Explanation: ...
