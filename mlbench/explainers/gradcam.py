"""Grad-CAM for multilabel models, batched over images and labels.

Grad-CAM (Selvaraju et al. 2017) weighs the target layer's activations A (B, C, h, w) by the
spatial mean of the gradient of one label's logit with respect to A, sums over channels and keeps
the positive part: ``relu(sum_c mean_hw(dy/dA)_c * A_c)``. Two gradient-weighted relatives use the
same forward and backward passes (option ``method``): HiResCAM (Draelos & Carin 2020) multiplies
gradient and activation element-wise, ``relu(sum_c dy/dA_c * A_c)``, which keeps the map faithful
to the logit at the layer's resolution; LayerCAM (Jiang et al. 2021) keeps only positive gradients,
``relu(sum_c relu(dy/dA_c) * A_c)``. pytorch-grad-cam computes the same maps (GradCAM, HiResCAM,
LayerCAM),
but one target per image and one forward pass per call, so K labels of B images cost B x K forward
and backward passes when called per (image, label) — or K calls with every image of the batch
given the same target, the library's batch-target rule (target i goes to image i).

Here each model runs one forward pass per image batch; the activations stay in the graph and each
requested label gets one backward pass of its logit summed over the batch (models are in eval
mode, so images do not interact and the sum's gradient on image i is image i's own). Maps are
upsampled on the models' device (bilinear, half-pixel centres, as OpenCV's resize in the library)
and normalised by ``normalize``:

- ``"max"`` (default): each map divided by its maximum, so 0 means no evidence and every model's
  map peaks at 1; an all-zero map stays zero.
- ``"minmax"``: (map - min) / (max - min), pytorch-grad-cam's scaling (used to compare with it).

``strategy="per-pair"`` is the reference: one pytorch-grad-cam ``GradCAM`` call per (model, image,
label) — slow, kept for checks and for ``perf/bench_explain.py``.
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mlbench.explainers import ExplainError, Explanation
from mlbench.explainers.target_layer import DEFAULT_MIN_MAP_SIZE, TargetLayer, find_target_layer

NORMALIZATIONS = ("max", "minmax")
STRATEGIES = ("batched", "per-pair")
METHODS = ("gradcam", "hirescam", "layercam")


def class_activation_map(activations: torch.Tensor, grads: torch.Tensor, method: str = "gradcam") -> torch.Tensor:
    """(B, C, h, w) activations and their gradients -> (B, h, w) map, as the module docstring defines."""
    if method == "gradcam":
        weighted = grads.mean(dim=(2, 3), keepdim=True) * activations
    elif method == "hirescam":
        weighted = grads * activations
    elif method == "layercam":
        weighted = F.relu(grads) * activations
    else:
        raise ExplainError(f"method must be one of {METHODS}, got {method!r}")
    return F.relu(weighted.sum(dim=1))


def normalize_maps(maps: torch.Tensor, how: str = "max") -> torch.Tensor:
    """Scale each (..., H, W) map to [0, 1] as the module docstring describes."""
    flat = maps.flatten(-2)
    if how == "max":
        top = flat.amax(dim=-1, keepdim=True)
        out = torch.where(top > 0, flat / top.clamp_min(torch.finfo(flat.dtype).tiny), torch.zeros_like(flat))
    elif how == "minmax":
        low = flat.amin(dim=-1, keepdim=True)
        span = flat.amax(dim=-1, keepdim=True) - low
        out = torch.where(span > 0, (flat - low) / span.clamp_min(torch.finfo(flat.dtype).tiny), torch.zeros_like(flat))
    else:
        raise ExplainError(f"normalize must be one of {NORMALIZATIONS}, got {how!r}")
    return out.view_as(maps)


def check_images(images: Any) -> torch.Tensor:
    """Images must be a float tensor (B, C, H, W) with values in [0, 1]."""
    if not isinstance(images, torch.Tensor):
        raise ExplainError(f"images must be a torch.Tensor (B, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[0] == 0:
        raise ExplainError(f"images must have shape (B, C, H, W) with B >= 1, got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ExplainError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
    low, high = float(images.min()), float(images.max())
    if low < -1e-4 or high > 1 + 1e-4:
        raise ExplainError(f"images must lie in [0, 1] (the models normalise internally), got values in "
                           f"[{low:.3f}, {high:.3f}]")
    return images


def check_labels(labels: Sequence[int], n_outputs: int) -> tuple[int, ...]:
    labels = tuple(int(label) for label in labels)
    if not labels:
        raise ExplainError("labels: give at least one label index to explain")
    bad = [label for label in labels if not 0 <= label < n_outputs]
    if bad:
        raise ExplainError(f"labels {bad} are outside the model's {n_outputs} outputs (0..{n_outputs - 1})")
    return labels


class GradCAMExplainer:
    """Grad-CAM explainer (the ``gradcam`` plugin); ``explain`` follows :class:`mlbench.explainers.Explainer`.

    Options: ``method`` (``gradcam`` | ``hirescam`` | ``layercam``), ``target_layer`` (a module
    name used for every model; a model may instead carry ``cam_target_layer``), ``min_map_size``
    (the small-input rule of :mod:`mlbench.explainers.target_layer`), ``normalize`` (``max`` |
    ``minmax``), ``strategy`` (``batched`` | ``per-pair``), ``batch_size`` (images per forward
    pass; default: all given).
    """

    def __init__(self, method: str = "gradcam", target_layer: str | None = None,
                 min_map_size: int = DEFAULT_MIN_MAP_SIZE, normalize: str = "max", strategy: str = "batched",
                 batch_size: int | None = None) -> None:
        if method not in METHODS:
            raise ExplainError(f"explainer method must be one of {METHODS}, got {method!r}")
        if normalize not in NORMALIZATIONS:
            raise ExplainError(f"gradcam: normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        if strategy not in STRATEGIES:
            raise ExplainError(f"gradcam: strategy must be one of {STRATEGIES}, got {strategy!r}")
        if batch_size is not None and int(batch_size) < 1:
            raise ExplainError(f"gradcam: batch_size must be at least 1, got {batch_size}")
        self.method = method
        self.target_layer_name = target_layer
        self.min_map_size = int(min_map_size)
        self.normalize = normalize
        self.strategy = strategy
        self.batch_size = int(batch_size) if batch_size else None
        # The layer search runs a forward pass: do it once per model and input shape.
        self._layers: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, TargetLayer]]" = weakref.WeakKeyDictionary()

    def target_layer(self, model: nn.Module, image_shape: tuple[int, int, int]) -> TargetLayer:
        """The layer maps of ``model`` come from on (C, H, W) images (cached)."""
        per_model = self._layers.setdefault(model, {})
        key = tuple(image_shape)
        if key not in per_model:
            per_model[key] = find_target_layer(model, key, override=self.target_layer_name,
                                               min_map_size=self.min_map_size)
        return per_model[key]

    def explain(self, models: Sequence[nn.Module], images: torch.Tensor, labels: Sequence[int]) -> Explanation:
        """Heatmaps (M, B, K, H, W) and probabilities (M, B, K); see :mod:`mlbench.explainers`."""
        if not models:
            raise ExplainError("explain: give at least one model")
        images = check_images(images)
        layers = [self.target_layer(model, tuple(images.shape[1:])) for model in models]
        run = self._batched if self.strategy == "batched" else self._per_pair
        step = self.batch_size or images.shape[0]
        maps, probs = [], []
        for model, layer in zip(models, layers):
            chunks = [run(model, layer, images[i:i + step], labels) for i in range(0, images.shape[0], step)]
            maps.append(torch.cat([c[0] for c in chunks]))
            probs.append(torch.cat([c[1] for c in chunks]))
        return Explanation(torch.stack(maps), torch.stack(probs), tuple(int(label) for label in labels),
                           tuple(layer.name for layer in layers),
                           {"method": self.method, "strategy": self.strategy, "normalize": self.normalize,
                            "layer_rules": [layer.rule for layer in layers],
                            "map_sizes": [list(layer.map_size) if layer.map_size else None for layer in layers]})

    def _batched(self, model: nn.Module, layer: TargetLayer, images: torch.Tensor,
                 labels: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        captured: list[torch.Tensor] = []
        handle = layer.module.register_forward_hook(lambda module, inputs, output: captured.append(output))
        was_training = model.training
        try:
            model.eval()
            with torch.enable_grad():
                # A leaf that needs grad keeps the graph alive even when every weight is frozen.
                x = images.detach().clone().requires_grad_(True)
                logits = model(x)
                if not captured:
                    raise ExplainError(f"target layer '{layer.name}' did not run in {type(model).__name__}'s "
                                       f"forward pass; choose another with target_layer=...")
                activations = captured[-1]
                if not isinstance(activations, torch.Tensor) or activations.dim() != 4:
                    raise ExplainError(f"target layer '{layer.name}' must output a (B, C, h, w) tensor, got "
                                       f"{getattr(activations, 'shape', type(activations).__name__)}")
                labels = check_labels(labels, logits.shape[1])
                cams = []
                for j, label in enumerate(labels):
                    (grads,) = torch.autograd.grad(logits[:, label].sum(), activations,
                                                   retain_graph=j < len(labels) - 1)
                    cams.append(class_activation_map(activations, grads, self.method).detach())
                probs = torch.sigmoid(logits[:, list(labels)].detach().float())
        finally:
            handle.remove()
            model.train(was_training)
        cam = torch.stack(cams, dim=1).float()  # (B, K, h, w)
        maps = F.interpolate(cam, size=tuple(images.shape[2:]), mode="bilinear", align_corners=False)
        return normalize_maps(maps, self.normalize), probs

    def _per_pair(self, model: nn.Module, layer: TargetLayer, images: torch.Tensor,
                  labels: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The library, one call per (image, label): a reference for checks and benchmarks."""
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        library_class = {"gradcam": pytorch_grad_cam.GradCAM, "hirescam": pytorch_grad_cam.HiResCAM,
                         "layercam": pytorch_grad_cam.LayerCAM}[self.method]

        was_training = model.training
        cam = None
        try:
            with torch.no_grad():
                labels = check_labels(labels, model.eval()(images[:1]).shape[1])
            cam = library_class(model=model, target_layers=[layer.module])
            maps = torch.zeros((images.shape[0], len(labels), *images.shape[2:]), device=images.device)
            probs = torch.zeros((images.shape[0], len(labels)), device=images.device)
            for i in range(images.shape[0]):
                for j, label in enumerate(labels):
                    one = cam(input_tensor=images[i:i + 1], targets=[ClassifierOutputTarget(int(label))])
                    maps[i, j] = torch.from_numpy(one[0]).to(images.device)
                    probs[i, j] = torch.sigmoid(cam.outputs[0, int(label)].detach().float())
        finally:
            if cam is not None:
                cam.activations_and_grads.release()
            model.train(was_training)
            model.zero_grad(set_to_none=True)  # the library's backward fills .grad of every weight
        return normalize_maps(maps, self.normalize), probs
