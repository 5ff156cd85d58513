"""Built-in preprocessor: the whole image, resized (the paper's no-crop setting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlbench.preprocessing import Preprocessed
from mlbench.preprocessing.images import normalize_intensity, resize_square


class Resize:
    """Keep the whole image and resize it to ``size`` x ``size``."""

    def __init__(self, size: int = 224) -> None:
        if int(size) < 8:
            raise ValueError(f"resize: size must be >= 8 pixels, got {size}")
        self.size = int(size)

    def config(self) -> dict[str, Any]:
        return {"preprocessor": "resize", "size": self.size}

    def __call__(self, image: np.ndarray) -> Preprocessed:
        h, w = image.shape
        return Preprocessed(resize_square(normalize_intensity(image), self.size), (0, 0, w, h), "resize")
