"""Preprocessors turn one decoded X-ray into the fixed-size image a model trains on.

A preprocessor plugin registers ``factory(size, **options) -> Preprocessor``. The runner calls it
once per image while building the cache (:mod:`mlbench.preprocessing.cache`); training never
decodes a PNG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Preprocessed:
    """``image``: (size, size) float32 in [0, 1]. ``box``: the region kept, (x0, y0, x1, y1) in
    the input's pixels, exclusive ends. ``fallback``: the preprocessor could not do its job and
    kept the whole image; ``reason`` says why."""

    image: np.ndarray
    box: tuple[int, int, int, int]
    method: str
    fallback: bool = False
    reason: str = ""


@runtime_checkable
class Preprocessor(Protocol):
    """``config()`` returns everything that changes the output (it keys the cache), JSON-friendly."""

    def config(self) -> dict[str, Any]: ...

    def __call__(self, image: np.ndarray) -> Preprocessed: ...
