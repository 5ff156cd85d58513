"""Batched multilabel Grad-CAM vs one pytorch-grad-cam call per (model, image, label).

Both paths make the same maps (the script checks it) for M models x B images x K labels:

- batched (mlbench's ``gradcam``): per model, one forward pass of the batch, then one backward
  pass per label through the kept graph; maps upsampled on the device.
- per-pair (the library as usually called): ``GradCAM(model, [layer])(image, [target])`` for each
  (model, image, label): M x B x K forward and backward passes of a single image.

Run: ``python perf/bench_explain.py`` (the demo's three backbones at 64 px, 16 images,
4 labels), or e.g. ``--backbones efficientnet_b0 --size 224 --images 8`` for a paper backbone.
It prints both times (best of ``--repeats``), the ratio and the machine. Models have random
weights: timing does not depend on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mlbench.models.backbones import timm_backbone
from mlbench.explainers.gradcam import GradCAMExplainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402


def machine(device: torch.device) -> str:
    """The device used, then the host as every benchmark script names it (perf/_machine.py)."""
    where = f"cuda: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "cpu"
    return f"{where} on {describe_machine()}"


def best_time(fn, repeats: int, device: torch.device) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, result


@dataclass
class GradcamTimes:
    """Best-of-``repeats`` seconds of both paths over the same models, images and labels."""

    models: list[str]
    target_layers: list[str]
    images: int
    labels: int
    size: int
    batched_s: float
    per_pair_s: float
    max_gap: float  # largest |batched - per-pair| difference over every map (both min-max scaled)

    @property
    def maps(self) -> int:
        return len(self.models) * self.images * self.labels

    @property
    def speedup(self) -> float:
        return self.per_pair_s / self.batched_s


def spread_labels(num_labels: int, count: int) -> list[int]:
    """``count`` label indices spread over ``num_labels`` outputs."""
    return list(range(0, num_labels, max(1, num_labels // count)))[:count]


def time_gradcam(models: list[torch.nn.Module], names: list[str], images: torch.Tensor, labels: list[int],
                 repeats: int, device: torch.device) -> GradcamTimes:
    """Time mlbench's batched Grad-CAM and the per-(model, image, label) library calls on the same input."""
    # minmax: the library's scaling, so the two paths' maps can be compared number for number
    batched = GradCAMExplainer(normalize="minmax")
    per_pair = GradCAMExplainer(normalize="minmax", strategy="per-pair")
    batched.explain(models, images[:1], labels[:1])  # warm-up; also finds and caches the layers
    t_batched, fast = best_time(lambda: batched.explain(models, images, labels), repeats, device)
    t_pairs, slow = best_time(lambda: per_pair.explain(models, images, labels), repeats, device)
    gap = float((fast.heatmaps - slow.heatmaps).abs().max())
    return GradcamTimes(list(names), list(fast.target_layers), len(images), len(labels), images.shape[-1],
                        t_batched, t_pairs, gap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="mobilenetv3_small_050,resnet10t,mobilenetv3_small_075")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--labels", type=int, default=4, help="labels explained per image")
    parser.add_argument("--num-labels", type=int, default=35, help="model outputs (padchest-specific: 35)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a busy 2-core box)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    names = [n.strip() for n in args.backbones.split(",") if n.strip()]
    models = [timm_backbone(args.num_labels, 1, False, model_name=n).to(device).eval() for n in names]
    images = torch.rand(args.images, 1, args.size, args.size, device=device)
    t = time_gradcam(models, names, images, spread_labels(args.num_labels, args.labels), args.repeats, device)

    print(f"machine: {machine(device)}")
    print(f"models: {', '.join(f'{m} [{layer}]' for m, layer in zip(t.models, t.target_layers))}")
    print(f"{len(t.models)} models x {t.images} images x {t.labels} labels = {t.maps} maps at {t.size} px")
    print(f"batched (mlbench gradcam):            {t.batched_s:8.3f} s  ({1000 * t.batched_s / t.maps:7.2f} ms/map)")
    print(f"per (image, label) pytorch-grad-cam:  {t.per_pair_s:8.3f} s  ({1000 * t.per_pair_s / t.maps:7.2f} ms/map)")
    print(f"speed-up: {t.speedup:.1f}x   max |batched - per-pair| map difference: {t.max_gap:.2e}")


if __name__ == "__main__":
    main()
