"""Which layer a class-activation map is read from, found per model without a table of names.

The rule, in order (the first that applies wins):

1. An explicit choice: the explainer option ``target_layer="name"`` or a ``cam_target_layer``
   attribute on the model (a module name or the module itself). A plugin overrides the rule this way.
2. The model's final feature map: one forward pass of a single blank image at the size being
   explained, with a hook on every module, finds the last module output that is 4-D with a spatial
   size above 1 x 1 (global pooling and 1 x 1 heads are not feature maps). Several modules can
   return that same tensor (a stage container, its last block, an activation inside it); the
   layer is the one named in timm's ``feature_info`` metadata if there is one, otherwise the
   outermost that is not a plain container (``nn.Sequential``/``ModuleList``/``ModuleDict``). For
   the paper's five backbones this gives ``features.norm5`` (DenseNet-201), ``bn2``
   (EfficientNet-B0), ``Mixed_7c`` (Inception-V3), ``conv2d_7b`` (Inception-ResNet-V2) and
   ``act4`` (Xception). A model without ``feature_info`` gets the same rule (its fallback).
3. Small inputs: when that final map is smaller than ``min_map_size`` (default 5, the coarsest
   map of the paper's setting: Inception's 5 x 5 at 224 px) on its shorter side, and the model has
   timm ``feature_info``, the layer is the last ``feature_info`` stage whose map reaches it. At
   64 px most timm models end at 2 x 2 and their stride-16 stage is 4 x 4, so the stride-8 stage
   (8 x 8) is used; on the demo this raises the ensemble's pointing game from 0.03 (2 x 2) to 0.61
   (docs/explain.md has the figures). Stages are timm's own stage outputs (whole blocks).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mlbench.explainers import ExplainError

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# The coarsest map of the paper's setting (Inception's 5 x 5 at 224 px): every paper backbone keeps
# its final layer at 224 px, while 64 px demo models move to their 8 x 8 stride-8 stage.
DEFAULT_MIN_MAP_SIZE = 5


@dataclass(frozen=True)
class TargetLayer:
    """The chosen layer: its dotted ``name`` in the model, the module, its map (h, w) and why."""

    name: str
    module: nn.Module
    map_size: tuple[int, int] | None
    rule: str


def feature_stages(model: nn.Module) -> list[str]:
    """Dotted names (in ``model``) of the stage outputs timm lists in ``feature_info``; [] if none.

    The metadata may sit on a submodule (mlbench's TimmClassifier keeps the timm model at
    ``.backbone``), so the first module carrying it is used and its names are prefixed.
    """
    for prefix, module in model.named_modules():
        info = getattr(module, "feature_info", None)
        entries = getattr(info, "info", info)  # timm's FeatureInfo (features_only) or a plain list
        if isinstance(entries, (list, tuple)) and entries and all(isinstance(e, dict) and "module" in e
                                                                  for e in entries):
            return [f"{prefix}.{e['module']}" if prefix else str(e["module"]) for e in entries]
    return []


def _named(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        parent = name
        while parent and parent not in modules:  # the deepest part of the name that exists
            parent = parent.rpartition(".")[0]
        children = [f"{parent}.{c}" if parent else c for c, _ in modules[parent].named_children()]
        close = difflib.get_close_matches(name, [n for n in modules if n], n=4) + children[:12]
        hint = f"; similar names: {list(dict.fromkeys(close))}" if close else ""
        raise ExplainError(f"target layer '{name}' is not a module of {type(model).__name__}{hint}")
    return modules[name]


def _explicit(model: nn.Module, choice: Any, source: str) -> TargetLayer:
    if isinstance(choice, nn.Module):
        for name, module in model.named_modules():
            if module is choice:
                return TargetLayer(name, module, None, source)
        raise ExplainError(f"{source}: the module given is not part of {type(model).__name__}")
    if not isinstance(choice, str) or not choice:
        raise ExplainError(f"{source}: expected a module name (str) or a module, got {choice!r}")
    return TargetLayer(choice, _named(model, choice), None, source)


@dataclass
class _Trace:
    """What one forward pass tells: every module's 4-D output size and the final map's producers."""

    sizes: dict[str, tuple[int, int]]
    final: list[str]  # modules returning the final map's tensor, innermost first


def trace_feature_maps(model: nn.Module, image_shape: tuple[int, int, int]) -> _Trace:
    """Run one blank image of ``image_shape`` (C, H, W) through ``model`` with a hook on every module."""
    sizes: dict[str, tuple[int, int]] = {}
    final: list[str] = []
    last: list[torch.Tensor] = []  # the final map so far (a reference keeps its identity unique)
    modules = dict(model.named_modules())

    def hook(name: str):
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                return
            sizes[name] = (int(output.shape[2]), int(output.shape[3]))
            if min(output.shape[2], output.shape[3]) <= 1:
                return
            if last and output is last[0]:
                final.append(name)
            else:
                last[:] = [output]
                final[:] = [name]
        return record

    try:
        param = next(model.parameters())
        device, dtype = param.device, param.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items() if n]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *image_shape), device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return _Trace(sizes, final)


def find_target_layer(model: nn.Module, image_shape: tuple[int, int, int], *, override: Any = None,
                      min_map_size: int = DEFAULT_MIN_MAP_SIZE) -> TargetLayer:
    """The layer Grad-CAM reads for ``model`` on images of ``image_shape`` (C, H, W); see the module rule."""
    if override is not None:
        return _explicit(model, override, "explainer option target_layer")
    if getattr(model, "cam_target_layer", None) is not None:
        return _explicit(model, model.cam_target_layer, f"{type(model).__name__}.cam_target_layer")
    trace = trace_feature_maps(model, image_shape)
    if not trace.final:
        raise ExplainError(
            f"{type(model).__name__} has no layer with a spatial feature map (4-D output larger than 1 x 1) "
            f"on {image_shape[1]} x {image_shape[2]} images; give the explainer option target_layer='module.name' "
            f"or set a cam_target_layer attribute on the model")
    modules = dict(model.named_modules())
    stages = feature_stages(model)
    named = [n for n in trace.final if n in stages]
    plain = [n for n in trace.final if not isinstance(modules[n], CONTAINERS)]
    name = (named or plain or trace.final)[-1]
    size = trace.sizes[name]
    rule = "final feature map" + (" (a timm feature_info stage)" if named else "")
    if min(size) < min_map_size and stages:
        big_enough = [s for s in stages if s in trace.sizes and min(trace.sizes[s]) >= min_map_size]
        if big_enough:
            name = big_enough[-1]
            size = trace.sizes[name]
            rule = f"last feature_info stage with a map of at least {min_map_size} x {min_map_size}"
    return TargetLayer(name, modules[name], size, rule)
