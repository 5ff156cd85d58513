"""Built-in backbones: any timm model with the paper's classifier head.

A backbone plugin registers ``factory(num_labels, in_chans, pretrained, **options) -> nn.Module``
mapping (batch, in_chans, H, W) images in [0, 1] to logits (batch, num_labels).
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from mlbench.foundations.errors import UserError


class BackboneNameError(UserError, ValueError):
    """A backbone names a model its library does not have (the message says which, and the closest)."""


def check_timm_model(model_name: str) -> None:
    """Refuse a name timm has no model for, with the closest names; asks timm's model list only (no build).

    A name with a source (``hf-hub:ORG/NAME``, ``local-dir:PATH``) is resolved by timm when the
    model is built, so it is not checked here. A pretrained tag (``convnext_tiny.fb_in1k``) is.
    """
    import timm
    from timm.models import parse_model_name

    source, name = parse_model_name(model_name)
    if source or timm.is_model(name):
        return
    known = timm.list_models()
    close = difflib.get_close_matches(name.split(".")[0], known, n=3, cutoff=0.6)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise BackboneNameError(f"timm has no model '{model_name}'{hint} (timm.list_models() lists all {len(known)})")


def freeze_first_convs(model: nn.Module, fraction: float) -> int:
    """Freeze the first ``fraction`` of the model's conv layers (in definition order); return how many.

    The paper freezes the first 10%: they detect generic edges and textures.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"freeze_fraction must lie in [0, 1], got {fraction}")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    n = math.floor(len(convs) * fraction + 0.5)
    for conv in convs[:n]:
        for p in conv.parameters():
            p.requires_grad_(False)
    return n


class TimmClassifier(nn.Module):
    """timm feature extractor -> dense head (ReLU + dropout per hidden layer) -> logits.

    Input normalisation lives inside the module (pretrained mean/std, averaged over RGB for one
    channel), so every consumer (training, prediction, Grad-CAM) feeds plain [0, 1] images.
    """

    def __init__(self, model_name: str, num_labels: int, in_chans: int = 1, pretrained: bool = False,
                 head_units: Sequence[int] = (512, 512), dropout: float = 0.2, freeze_fraction: float = 0.1,
                 weights: str | Path | None = None, **timm_options: Any) -> None:
        super().__init__()
        import timm

        if weights is not None:
            if not Path(weights).is_file():
                raise FileNotFoundError(f"backbone '{model_name}': weights file {weights} does not exist")
            # Local ImageNet weights: timm loads them, re-initialises the classifier and adapts the stem.
            timm_options["pretrained_cfg_overlay"] = dict(file=str(weights))
            pretrained = True
        self.model_name = model_name
        self.backbone = timm.create_model(model_name, pretrained=pretrained, in_chans=in_chans, num_classes=0,
                                          **timm_options)
        cfg = getattr(self.backbone, "pretrained_cfg", {}) or {}
        mean = torch.tensor(cfg.get("mean", (0.5,) * 3), dtype=torch.float32)
        std = torch.tensor(cfg.get("std", (0.5,) * 3), dtype=torch.float32)
        if in_chans != len(mean):
            mean, std = mean.mean().repeat(in_chans), std.mean().repeat(in_chans)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)
        layers: list[nn.Module] = []
        # Models with a pre-logits layer (MobileNetV3's conv_head) output head_hidden_size features.
        width = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        for units in head_units:
            layers += [nn.Linear(width, units), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = units
        layers.append(nn.Linear(width, num_labels))
        self.head = nn.Sequential(*layers)
        self.frozen_convs = freeze_first_convs(self.backbone, freeze_fraction)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        return self.head(self.backbone(x))


def timm_backbone(num_labels: int, in_chans: int = 1, pretrained: bool = False, *, model_name: str,
                  **options: Any) -> TimmClassifier:
    """Any timm model by name (``--backbones timm:NAME`` on the command line)."""
    check_timm_model(model_name)
    return TimmClassifier(model_name, num_labels, in_chans=in_chans, pretrained=pretrained, **options)


# A timm ResNet narrowed for training from scratch on a CPU: its own stage widths (``channels``, timm's
# are 64-512) behind a 16-wide stem. At 64 px the full-width stem's convolutions dominate a small
# model's step; narrowed, a step costs about a third of resnet10t's and, from scratch on the demo, it
# learns as well. No published weights have these shapes.
SLIM_STEM_WIDTH = 16


def slim_resnet(num_labels: int, in_chans: int = 1, pretrained: bool = False, *, model_name: str,
                channels: Sequence[int], **options: Any) -> TimmClassifier:
    """timm ResNet ``model_name`` with stage widths ``channels`` and a :data:`SLIM_STEM_WIDTH` stem, from scratch."""
    if pretrained:  # plan_run refuses it first (has_pretrained_weights); a direct call is refused here
        raise ValueError(f"slim {model_name}: no pretrained weights exist at its widths; train it from scratch")
    check_timm_model(model_name)
    return TimmClassifier(model_name, num_labels, in_chans=in_chans, pretrained=False, channels=tuple(channels),
                          stem_width=SLIM_STEM_WIDTH, **options)


# Read by plan_run: a backbone whose factory says it has no pretrained weights is refused, in one line,
# when a run asks for them (a third-party factory may set the same attribute).
slim_resnet.has_pretrained_weights = False  # type: ignore[attr-defined]
