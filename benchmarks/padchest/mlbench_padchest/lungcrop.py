"""The paper's segmentation-based crop: keep the two lungs and the area under them.

Liz et al. (2023, section 3.2) segment the lungs with a U-Net, clean the mask (flood-fill holes,
drop small components, separate lungs stuck together, keep the two lungs), crop to the lungs plus
everything below them down to the lower edge of the image, and resize to 224 x 224. Their U-Net
weights were never published, so the default segmenter here is weight-free
(:class:`~mlbench_padchest.segmenters.ThresholdSegmenter`); a network from a local file plugs in
with ``segmenter="torch", weights=PATH``. When no plausible pair of lungs is found the crop falls
back to the whole image and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mlbench import area_downscale, normalize_intensity, Preprocessed, resize_square
from mlbench_padchest.segmenters import Segmenter, make_segmenter

PREPROCESSOR_NAME = "padchest-lung-crop"


@dataclass(frozen=True)
class Region:
    """One connected component of a lung mask, in working-image pixels (exclusive ends)."""

    x0: int
    y0: int
    x1: int
    y1: int
    area: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def center_x(self) -> float:
        return (self.x0 + self.x1) / 2


@dataclass(frozen=True)
class LungLocation:
    """Where the lungs are: ``box`` in the input's pixels (exclusive ends), or a fallback and why."""

    box: tuple[int, int, int, int]
    fallback: bool
    reason: str = ""
    lungs: tuple[Region, Region] | None = None  # in working pixels, for figures and debugging


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Flood-fill the background from outside the image; whatever it cannot reach is a hole."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask.astype(np.uint8)
    flood_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(padded, flood_mask, (0, 0), 2)
    return padded[1:-1, 1:-1] != 2


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected labels and their (x, y, width, height, area) rows; row 0 is the background."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats


def separate_stuck_lungs(mask: np.ndarray, labels: np.ndarray, stats: np.ndarray, max_lung_width: float = 0.42,
                         waist: float = 0.35) -> np.ndarray | None:
    """Cut components that are two lungs joined above the heart; None when nothing needed a cut.

    A component wider than ``max_lung_width`` of the image whose column count, somewhere in its
    middle half, drops below ``waist`` of its fullest column is split at that narrowest column.
    """
    w = mask.shape[1]
    out = None
    for i in np.flatnonzero(stats[1:, 2] > max_lung_width * w) + 1:
        x, y, bw, bh, _ = stats[i]
        own = labels[y:y + bh, x:x + bw] == i
        columns = own.sum(axis=0)
        lo, hi = bw // 4, bw - bw // 4
        narrowest = np.flatnonzero(columns[lo:hi] == columns[lo:hi].min())
        cut = lo + int(narrowest[len(narrowest) // 2])  # the middle of the bridge
        if columns[cut] < waist * columns.max():
            out = mask.copy() if out is None else out
            gap = max(1, w // 100)
            c0, c1 = max(0, cut - gap), cut + gap + 1
            out[y:y + bh, x + c0:x + c1][own[:, c0:c1]] = False
    return out


def regions(stats: np.ndarray, min_area: int) -> list[Region]:
    """Components at least ``min_area`` pixels large, largest first."""
    found = [Region(int(x), int(y), int(x + bw), int(y + bh), int(a))
             for x, y, bw, bh, a in stats[1:] if a >= min_area]
    return sorted(found, key=lambda r: r.area, reverse=True)


def lung_pair_score(left: Region, right: Region, shape: tuple[int, int]) -> float:
    """How lung-like a pair is (their combined area), or 0 when the pair is anatomically implausible."""
    h, w = shape
    side_by_side = left.x1 - right.x0 < 0.25 * min(left.width, right.width)
    vertical_overlap = min(left.y1, right.y1) - max(left.y0, right.y0)
    level = vertical_overlap >= 0.4 * min(left.height, right.height)
    similar = min(left.area, right.area) >= 0.15 * max(left.area, right.area)
    # The mediastinum sits in the middle of the chest: the gap between the lungs is centred.
    outer = max(left.x1, right.x1) - min(left.x0, right.x0)
    outer_mid = (min(left.x0, right.x0) + max(left.x1, right.x1)) / 2
    centred = abs((left.x1 + right.x0) / 2 - outer_mid) <= 0.15 * outer
    tall = min(left.height, right.height) >= 0.18 * h
    upper = min(left.y0, right.y0) < 0.4 * h  # lungs start in the upper part of a frontal film
    wide = outer >= 0.35 * w
    if side_by_side and level and similar and centred and tall and upper and wide:
        return float(left.area + right.area)
    return 0.0


def mediastinum_contrast(image: np.ndarray, left: Region, right: Region) -> float:
    """Mean intensity between the lungs (mediastinum) minus the lungs' own, over their shared rows.

    On a chest film the mediastinum is much brighter than the lungs (by 0.11 or more on the
    percentile-normalised scale for every NIH test film that crops); dark blobs in noise or in a
    non-chest image seldom have a bright column between them.
    """
    y0, y1 = max(left.y0, right.y0), min(left.y1, right.y1)
    x0, x1 = left.x1, right.x0
    if x1 - x0 < 3:  # lungs cut apart: look at a few columns around the cut
        middle = (x0 + x1) // 2
        x0, x1 = middle - 2, middle + 3
    between = image[y0:y1, max(0, x0):x1]
    lungs = np.concatenate([image[y0:y1, r.x0:r.x1].ravel() for r in (left, right)])
    if between.size == 0 or lungs.size == 0:
        return 0.0
    return float(between.mean() - lungs.mean())


def best_lung_pair(mask: np.ndarray, min_area: int, image: np.ndarray | None = None, min_contrast: float = 0.09,
                   max_regions: int = 8) -> tuple[Region, Region] | None:
    """The paper's post-processing of one mask: fill holes, drop small parts, separate, keep two.

    Of the anatomically plausible pairs (:func:`lung_pair_score`) the largest wins; when the
    film ``image`` (percentile-normalised, same shape) is given, a pair must also have a brighter
    mediastinum between its lungs than the lungs themselves by ``min_contrast``.
    """
    filled = fill_holes(mask)
    labels, stats = components(filled)
    separated = separate_stuck_lungs(filled, labels, stats)
    if separated is not None:
        labels, stats = components(separated)
    found = regions(stats, min_area)[:max_regions]
    pairs = []
    for i, a in enumerate(found):
        for b in found[i + 1:]:
            left, right = (a, b) if a.center_x <= b.center_x else (b, a)
            score = lung_pair_score(left, right, mask.shape)
            if score > 0:
                pairs.append((score, left, right))
    for _, left, right in sorted(pairs, key=lambda p: p[0], reverse=True):
        if image is None or mediastinum_contrast(image, left, right) >= min_contrast:
            return left, right
    return None


def chest_wall_edges(image: np.ndarray, lungs: tuple[Region, Region], reach: float = 0.2) -> tuple[int, int]:
    """Columns of the chest wall beside the lungs (working pixels).

    Thresholded lungs miss their bright lateral rim (ribs over the lung), and the lower lobes
    reach further out than the upper ones. Along each row of the lungs, the brightest point within
    ``reach`` of the image width outward from the lung is the chest wall (ribs and soft tissue);
    the lung ends before it. An arm touching the chest can only push the edge further out: the
    crop may grow, a lung is not cut.
    """
    h, w = image.shape
    left, right = lungs
    top = min(left.y0, right.y0)
    lung_bottom = max(left.y1, right.y1)
    # Rows from the lower half of the lungs to a third below them, where the lungs are widest.
    band = image[(top + lung_bottom) // 2:min(h, lung_bottom + (lung_bottom - top) // 3)]
    span = max(2, round(reach * w))
    lo = max(0, left.x0 - span)
    row_left = lo + np.argmax(band[:, lo:left.x0 + 1][:, ::-1], axis=1)
    row_left = left.x0 - (row_left - lo)
    hi = min(w, right.x1 + span)
    row_right = right.x1 - 1 + np.argmax(band[:, right.x1 - 1:hi], axis=1)
    return int(np.percentile(row_left, 10)), int(np.ceil(np.percentile(row_right, 90))) + 1


class LungCrop:
    """Crop a chest X-ray to its lungs and the area below them, then resize to ``size`` x ``size``.

    ``segmenter``: ``"threshold"`` (weight-free, default), ``"torch"`` (``weights=PATH`` to a
    TorchScript model; see :class:`~mlbench_padchest.segmenters.TorchSegmenter`) or any object
    with the :class:`~mlbench_padchest.segmenters.Segmenter` protocol. Other keyword options go to
    the segmenter. ``margin``: padding around the lungs as a fraction of the lung box (the top
    gets three times as much: clavicles hide the apices). ``to_chest_wall``: widen the box sideways to
    the body's edge (:func:`chest_wall_edges`); turn it off for an accurate network's masks.
    ``min_lung_area``: components smaller than this fraction of the image are dropped.
    """

    def __init__(self, size: int = 224, segmenter: str | Segmenter = "threshold", *, margin: float = 0.07,
                 to_chest_wall: bool = True, min_lung_area: float = 0.01, working_size: int = 256,
                 **segmenter_options: Any) -> None:
        if int(size) < 8:
            raise ValueError(f"{PREPROCESSOR_NAME}: size must be >= 8 pixels, got {size}")
        if not 0 <= margin <= 0.5:
            raise ValueError(f"{PREPROCESSOR_NAME}: margin must be in [0, 0.5], got {margin}")
        if not 0 < min_lung_area < 0.5:
            raise ValueError(f"{PREPROCESSOR_NAME}: min_lung_area must be in (0, 0.5), got {min_lung_area}")
        if int(working_size) < 64:
            raise ValueError(f"{PREPROCESSOR_NAME}: working_size must be >= 64, got {working_size}")
        self.size, self.margin, self.to_chest_wall = int(size), float(margin), bool(to_chest_wall)
        self.min_lung_area, self.working_size = float(min_lung_area), int(working_size)
        self.segmenter = make_segmenter(segmenter, **segmenter_options)

    @property
    def method(self) -> str:
        return f"lung-crop:{self.segmenter.name}"

    def config(self) -> dict[str, Any]:
        return {"preprocessor": PREPROCESSOR_NAME, "size": self.size, "margin": self.margin,
                "to_chest_wall": self.to_chest_wall, "min_lung_area": self.min_lung_area,
                "working_size": self.working_size, **self.segmenter.config()}

    def locate(self, image: np.ndarray) -> LungLocation:
        """Find the crop box for ``image`` ((H, W) float in [0, 1]) in its own pixels."""
        if image.ndim != 2 or min(image.shape) < 16:
            raise ValueError(f"{PREPROCESSOR_NAME}: expected a 2-D image of at least 16 x 16 pixels, "
                             f"got shape {image.shape}")
        h, w = image.shape
        whole = (0, 0, w, h)
        scale = self.working_size / max(h, w)
        size = (max(16, round(w * scale)), max(16, round(h * scale)))
        small = cv2.resize(area_downscale(image.astype(np.float32, copy=False), *size), size,
                           interpolation=cv2.INTER_AREA)
        if not np.isfinite(small).all():  # area averaging carries any NaN or inf into the thumbnail
            return LungLocation(whole, True, "image has NaN or infinite pixels")
        if float(small.max() - small.min()) < 1e-4:
            return LungLocation(whole, True, "blank image (constant intensity)")
        min_area = max(4, int(self.min_lung_area * small.size))
        normalised = normalize_intensity(small, 1.0, 99.0)
        best, best_area = None, 0
        for mask in self.segmenter.masks(small):
            pair = best_lung_pair(mask, min_area, normalised)
            if pair is not None and pair[0].area + pair[1].area > best_area:
                best, best_area = pair, pair[0].area + pair[1].area
        if best is None:
            return LungLocation(whole, True, "no pair of lung-like regions found")
        x0, y0, x1 = self._working_box(best, normalised)
        fx, fy = w / small.shape[1], h / small.shape[0]
        box = (max(0, int(np.floor(x0 * fx))), max(0, int(np.floor(y0 * fy))), min(w, int(np.ceil(x1 * fx))), h)
        return LungLocation(box, False, "", best)

    def _working_box(self, lungs: tuple[Region, Region], normalised: np.ndarray) -> tuple[float, float, float]:
        """Left, top and right of the crop in working pixels; the bottom is always the film's edge."""
        x0, y0 = min(r.x0 for r in lungs), min(r.y0 for r in lungs)
        x1, y1 = max(r.x1 for r in lungs), max(r.y1 for r in lungs)
        pad_x, pad_y = self.margin * (x1 - x0), 3 * self.margin * (y1 - y0)
        x0, x1 = x0 - pad_x, x1 + pad_x
        if self.to_chest_wall:
            smooth = cv2.GaussianBlur(normalised, (0, 0), max(normalised.shape) / 128)
            wall_left, wall_right = chest_wall_edges(smooth, lungs)
            x0, x1 = min(x0, wall_left - pad_x), max(x1, wall_right + pad_x)
        return x0, y0 - pad_y, x1

    def __call__(self, image: np.ndarray) -> Preprocessed:
        found = self.locate(image)
        x0, y0, x1, y1 = found.box
        crop = resize_square(area_downscale(image[y0:y1, x0:x1], self.size, self.size), self.size)
        # Percentiles of the crop, not the film: the lungs get the full [0, 1] range.
        return Preprocessed(normalize_intensity(crop), found.box, self.method, found.fallback, found.reason)
