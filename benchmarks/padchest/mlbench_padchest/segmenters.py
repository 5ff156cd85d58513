"""Lung segmenters: each proposes candidate lung masks for one chest X-ray.

A segmenter sees the X-ray at the crop's working resolution (float32 in [0, 1], long side
``WORKING_SIZE``) and returns one or more candidate binary masks of the same shape. It does not
have to be right: :mod:`mlbench_padchest.lungcrop` cleans every candidate with the paper's
post-processing and keeps the most plausible pair of lungs.

Two implementations:

- ``threshold`` (the default, weight-free): the lungs are the dark regions inside the brighter
  body. After percentile normalisation and CLAHE it thresholds at several intensity levels and
  offers each level's enclosed dark regions as a candidate.
- ``torch``: any lung-segmentation network in a local file, e.g. a U-Net such as the paper's:
  a ``torch.export`` program (``torch.export.save``, file name ending ``.pt2``) or a TorchScript
  module (``torch.jit.save``, any other name). Either format carries its own architecture, so no
  model code or download is needed. It maps (1, 1, S, S) float in [0, 1] to (1, K, S, S) lung
  logits or probabilities; the union of the ``lung_channels`` is the mask.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from mlbench import normalize_intensity


@runtime_checkable
class Segmenter(Protocol):
    """Proposes lung masks. ``config()`` holds everything that changes the masks (it keys the cache)."""

    name: str

    def config(self) -> dict[str, Any]: ...

    def masks(self, image: np.ndarray) -> list[np.ndarray]: ...


def _without_border_regions(mask: np.ndarray, border: int) -> np.ndarray:
    """Drop regions within ``border`` pixels of the image edge: dark there is the air around the patient.

    (Not only the outermost row: many films have a thin bright frame line.)
    """
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
    b = border + 1
    edge = np.concatenate([labels[:b].ravel(), labels[-b:].ravel(), labels[:, :b].ravel(), labels[:, -b:].ravel()])
    touches = np.zeros(n, bool)
    touches[edge] = True
    touches[0] = True  # label 0 is the background of the mask
    return ~touches[labels]


class ThresholdSegmenter:
    """Weight-free lung candidates: enclosed dark regions at several intensity levels.

    ``levels`` are percentiles of the equalised image; no single level suits every exposure, so
    each becomes a candidate and the post-processing picks the most lung-like pair.
    """

    name = "threshold"

    def __init__(self, levels: Sequence[float] = (10, 17, 24, 31, 38, 45, 52, 60),
                 clahe_clip: float = 2.0, opening: float = 0.015) -> None:
        self.levels = tuple(float(q) for q in levels)
        if not self.levels or not all(0 < q < 100 for q in self.levels):
            raise ValueError(f"threshold segmenter: levels must be percentiles in (0, 100), got {levels!r}")
        self.clahe_clip = float(clahe_clip)
        self.opening = float(opening)

    def config(self) -> dict[str, Any]:
        return {"segmenter": self.name, "levels": list(self.levels), "clahe_clip": self.clahe_clip,
                "opening": self.opening}

    def masks(self, image: np.ndarray) -> list[np.ndarray]:
        equalised = self.equalise(image)
        # An opening cuts the thin bridges (between the ribs, along the neck) that join a lung to
        # the air outside the body; its radius scales with the image.
        radius = max(1, round(self.opening * max(image.shape)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        # Levels are percentiles of the central window, where the lungs are, so that the air around
        # a thin patient does not push every level below the lungs' intensity.
        h, w = equalised.shape
        centre = equalised[h // 5:h - h // 5, w // 5:w - w // 5]
        border = max(1, round(0.015 * max(h, w)))
        candidates = []
        for level in np.percentile(centre, self.levels):
            dark = cv2.morphologyEx((equalised < level).astype(np.uint8), cv2.MORPH_OPEN, kernel)
            candidates.append(_without_border_regions(dark, border))
        return candidates

    def equalise(self, image: np.ndarray) -> np.ndarray:
        """Percentile-normalise, CLAHE, then blur away rib edges and noise."""
        as_bytes = (normalize_intensity(image, 1.0, 99.0) * 255).astype(np.uint8)
        # Coarse tiles and a wide blur: the lung field should read as one dark region, not as ribs.
        clahe = cv2.createCLAHE(clipLimit=self.clahe_clip, tileGridSize=(4, 4))
        sigma = max(image.shape) / 85
        return cv2.GaussianBlur(clahe.apply(as_bytes), (0, 0), sigma)


class TorchSegmenter:
    """Lung masks from a network in a local file: ``.pt2`` (torch.export) or TorchScript.

    The network gets (1, 1, ``input_size``, ``input_size``) float32 in [0, 1] (percentile-normalised;
    an exported program must have been exported with that shape) and returns (1, K, S, S) logits
    (``output="logits"``) or probabilities (``"probabilities"``); channels ``lung_channels`` are
    summed into the lung mask, thresholded at ``threshold``.
    """

    name = "torch"

    def __init__(self, weights: str | Path | None = None, *, input_size: int = 256,
                 lung_channels: Sequence[int] = (0,), output: str = "logits", threshold: float = 0.5,
                 device: str = "cpu") -> None:
        if weights is None:
            raise ValueError("torch segmenter: pass weights=PATH to a TorchScript lung-segmentation model")
        self.weights = Path(weights)
        if not self.weights.is_file():
            raise FileNotFoundError(f"torch segmenter: weights file {self.weights} does not exist")
        if output not in ("logits", "probabilities"):
            raise ValueError(f"torch segmenter: output must be 'logits' or 'probabilities', got {output!r}")
        if int(input_size) < 16:
            raise ValueError(f"torch segmenter: input_size must be >= 16, got {input_size}")
        self.input_size, self.output, self.threshold = int(input_size), output, float(threshold)
        self.lung_channels = tuple(int(c) for c in lung_channels)
        self.device = device
        self.weights_sha256 = hashlib.sha256(self.weights.read_bytes()).hexdigest()
        import torch

        try:
            if self.weights.suffix == ".pt2":
                self.model = torch.export.load(str(self.weights)).module().to(device)
            else:
                with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.x but still loads
                    warnings.simplefilter("ignore", FutureWarning)
                    self.model = torch.jit.load(str(self.weights), map_location=device).eval()
        except Exception as exc:  # torch raises assorted error types with long traces
            kind = "torch.export program" if self.weights.suffix == ".pt2" else "TorchScript model"
            raise ValueError(f"torch segmenter: {self.weights} is not a {kind} ({exc})") from exc

    def config(self) -> dict[str, Any]:
        # The file's hash, not its path, decides whether cached crops are still valid.
        return {"segmenter": self.name, "weights_sha256": self.weights_sha256, "input_size": self.input_size,
                "lung_channels": list(self.lung_channels), "output": self.output, "threshold": self.threshold}

    def masks(self, image: np.ndarray) -> list[np.ndarray]:
        import torch

        h, w = image.shape
        square = cv2.resize(normalize_intensity(image, 1.0, 99.0), (self.input_size, self.input_size),
                            interpolation=cv2.INTER_AREA)
        with torch.inference_mode():
            out = self.model(torch.from_numpy(square)[None, None].to(self.device))
        if not isinstance(out, torch.Tensor) or out.ndim != 4 or out.shape[0] != 1:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"torch segmenter: {self.weights} must return (1, K, S, S), got {got}")
        if max(self.lung_channels) >= out.shape[1]:
            raise ValueError(f"torch segmenter: lung_channels {self.lung_channels} but the model returns "
                             f"{out.shape[1]} channel(s)")
        scores = out[0, list(self.lung_channels)].float()
        probs = torch.sigmoid(scores) if self.output == "logits" else scores
        lung = probs.sum(0).clamp(0, 1).cpu().numpy().astype(np.float32)
        lung = cv2.resize(lung, (w, h), interpolation=cv2.INTER_LINEAR)
        return [lung >= self.threshold]


SEGMENTERS: dict[str, Callable[..., Segmenter]] = {
    "threshold": ThresholdSegmenter,
    "torch": TorchSegmenter,
}


def make_segmenter(name: str | Segmenter, **options: Any) -> Segmenter:
    """Build a segmenter by name (``threshold`` or ``torch``), or pass an object through."""
    if not isinstance(name, str):
        if not isinstance(name, Segmenter):
            raise TypeError(f"segmenter must be a name or a Segmenter object, got {type(name).__name__}")
        return name
    try:
        factory = SEGMENTERS[name]
    except KeyError:
        raise ValueError(f"unknown segmenter {name!r}; expected one of {sorted(SEGMENTERS)}") from None
    try:
        return factory(**options)
    except TypeError as exc:  # an option this segmenter does not take
        raise ValueError(f"segmenter {name!r}: {exc}") from exc
