"""Built-in preprocessor: the whole image, resized (the paper's no-crop setting)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlbench.preprocessing import Preprocessed
from mlbench.preprocessing.images import normalize_intensity, resize_square


class Resize:
    """Keep the whole image and resize it to ``size`` x ``size``.

    ``auto_invert``: flip a film whose lungs look brighter than its body (a MONOCHROME1 export), as
    chest X-ray readers need; False for photographs and other images, which that test would misread.
    """

    def __init__(self, size: int = 224, auto_invert: bool = True) -> None:
        if int(size) < 8:
            raise ValueError(f"resize: size must be >= 8 pixels, got {size}")
        if not isinstance(auto_invert, bool):
            raise ValueError(f"resize: auto_invert must be true or false, got {auto_invert!r}")
        self.size = int(size)
        self.auto_invert = auto_invert

    def config(self) -> dict[str, Any]:
        # The default stays out of the config: caches built before the option keep their key.
        return {"preprocessor": "resize", "size": self.size, **({} if self.auto_invert else {"auto_invert": False})}

    def __call__(self, image: np.ndarray) -> Preprocessed:
        h, w = image.shape
        return Preprocessed(resize_square(normalize_intensity(image), self.size), (0, 0, w, h), "resize")
