"""Decoding X-ray files into float32 grayscale arrays in [0, 1] without losing 16-bit range."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageReadError(Exception):
    """The file is missing, truncated or not an image; ``reason`` is a short code for manifests."""

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")


def read_grayscale(path: str | Path) -> np.ndarray:
    """Read a PNG/JPEG as (H, W) float32 in [0, 1], scaled by the file's bit depth."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "missing_file")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ImageReadError(path, "unreadable_image", "the decoder could not read this file (truncated or not an image)")
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
    scale = float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else 1.0
    return image.astype(np.float32) / scale


def normalize_intensity(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Stretch the [low, high] percentiles to [0, 1]: detectors use very different value ranges."""
    lo, hi = np.percentile(image, [low, high])
    if hi - lo < 1e-6:
        return np.zeros_like(image, dtype=np.float32)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
