"""The embedded demo: a deterministic synthetic corpus in PadChest's own format.

Real PadChest images cannot ship, so every feature also runs on this corpus. It is written exactly
as PadChest is laid out (a label CSV with PadChest's columns, 16-bit grayscale PNGs with 12-bit
values under numbered ``ImageDir`` folders), so the demo goes through the real PadChest reader.

What is realistic
    Label sets are sampled from the real PA label sets of the public CSV (``demo_labelsets.json``,
    a count table derived by ``benchmarks/padchest/tools/derive_demo_labelsets.py``), so per-label
    prevalence and co-occurrence follow the real PA data, imbalance included (normal 37%, supra
    aortic elongation 1.1%). Rows carry PadChest's quirks: 1-4 images per patient, lateral and AP
    projections beside PA, a few NaN ``Labels``, stray spaces inside list items, labels outside the
    benchmark's 35 (``consolidation``, ``exclude``, ...), images whose only findings are outside
    the 35, and ``n_corrupt`` truncated PNGs.

What is synthetic
    The images. Each frontal film shows a body, two dark lung fields, a heart shadow, an aortic
    knob, diaphragm domes, spine, clavicles, ribs and noise, with per-image jitter of position,
    scale, densities and exposure. Every one of the 35 labels has a drawn signature at a plausible
    place; ``normal`` draws nothing. Laterals are drawn as side views without findings (the
    benchmark keeps PA only). Sizes and contrasts are tuned to be learnable after the demo's lung
    crop at 64 px, not to look like a radiograph. Sides below are the patient's.

    Changes of anatomy: COPD signs (darker, longer lungs over flat domes), cardiomegaly (heart
    about 1.6 times as wide), aortic elongation (aortic knob 2.5 times larger), scoliosis (S-shaped
    spine crossing into the lung fields), hemidiaphragm elevation (one dome raised and peaked),
    volume loss (one lung smaller: apex lower, lateral wall in).

    Drawn marks: pleural effusion (basal opacity with a meniscus, one or both sides),
    costophrenic angle blunting (dense wedge in the lateral angle), pneumonia (patchy cluster,
    lower-mid zone), infiltrates (hazy blob, right mid zone), alveolar pattern (dense perihilar
    "bat wings"), interstitial pattern (net of short lines, both lower zones), increased density
    (veil over the upper half of one lung), laminar atelectasis (thin horizontal plate, lower
    zone), fibrotic band (oblique band towards the hilum), nodule (round opacity), calcified
    granuloma (tiny, very dense dot), pseudonodule (faint nipple shadows, both lower lateral zones),
    bronchiectasis (cluster of ring shadows, lower medial zone), air trapping (hyperlucent
    thin-walled region, left lower zone), apical pleural thickening (dense apical cap), vascular
    hilar enlargement (lobulated masses at both hila), aortic atheromatosis (dense arc on the
    knob), supra aortic elongation (bulge of the right upper mediastinum), hiatal hernia
    (retrocardiac gas bubble with an air-fluid level), kyphosis (dense, widened upper thoracic
    spine), vertebral degenerative changes (spurs off the lower thoracic spine), vertebral
    anterior compression (one flat, dense mid-thoracic vertebra), callus rib fracture (dense
    spindle on a lateral rib), pacemaker (box under the left clavicle with a lead to the heart),
    sternotomy (wire loops along the midline), suture material (a line of clips, upper zone).

    Not visible on a real film, so given an arbitrary but learnable mark: unchanged (a thick
    ring, right upper zone) and chronic changes (a cross-hatched square, left upper zone). Their
    heatmap scores mean something only on this corpus.

Files written in ``out_dir``
    ``PADCHEST_demo_labels.csv``   PadChest's columns after an unnamed index column
    ``images/<ImageDir>/<ImageID>`` 16-bit PNGs (``DataSource.images`` is ``out_dir/images``)
    ``findings.csv``               image_id, label, x0, y0, x1, y1: each drawn finding's box
    ``lungs.csv``                  image_id, side, x0, y0, x1, y1: each frontal lung field
    ``mlbench-demo.json``          the marker that makes the reader label the data ``synthetic``
Boxes are in image pixels with exclusive ends; ``side`` is the patient's side (in a PA film the
patient's right lung is on the image's left).

The same (seed, parameters) gives byte-identical files: everything random comes from seeded numpy
Generators (one stream per image, so the number of threads does not matter), nothing reads the
clock, the PNG compression settings are fixed, and pixels are computed in float64 before 12-bit
quantisation, so a last-bit difference between CPUs' maths routines would have to fall within
about 1e-13 of a rounding boundary to change a pixel. The PNG bytes come from OpenCV's bundled
zlib: a different OpenCV build may compress differently (same pixels, other bytes).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from mlbench import io
from mlbench.data import DataSource
from mlbench.demo import mark_synthetic
from mlbench_padchest.labels import SPECIFIC_LABELS

GENERATOR_VERSION = "1"
CSV_NAME = "PADCHEST_demo_labels.csv"
IMAGES_DIR = "images"
FINDINGS_NAME = "findings.csv"
LUNGS_NAME = "lungs.csv"
LABELSETS_FILE = "demo_labelsets.json"

# PadChest's CSV columns, in its order (after the unnamed index column).
PADCHEST_COLUMNS: tuple[str, ...] = (
    "ImageID", "ImageDir", "StudyDate_DICOM", "StudyID", "PatientID", "PatientBirth",
    "PatientSex_DICOM", "ViewPosition_DICOM", "Projection", "MethodProjection", "Pediatric",
    "Modality_DICOM", "Manufacturer_DICOM", "PhotometricInterpretation_DICOM",
    "PixelRepresentation_DICOM", "PixelAspectRatio_DICOM", "SpatialResolution_DICOM",
    "BitsStored_DICOM", "WindowCenter_DICOM", "WindowWidth_DICOM", "Rows_DICOM", "Columns_DICOM",
    "XRayTubeCurrent_DICOM", "Exposure_DICOM", "ExposureInuAs_DICOM", "ExposureTime",
    "RelativeXRayExposure_DICOM", "ReportID", "Report", "MethodLabel", "Labels", "Localizations",
    "LabelsLocalizationsBySentence", "labelCUIS", "LocalizationsCUIS",
)

# Real PadChest labels outside padchest-specific's 35, used for the rows the mapping must drop.
OUTSIDE_LABELS: tuple[str, ...] = (
    "consolidation", "emphysema", "hilar enlargement", "metal", "nipple shadow", "atelectasis",
    "goiter", "pulmonary fibrosis", "suboptimal study", "exclude",
)

# Fixed, because they change the bytes. Huffman-only: noise defeats deflate's matching anyway,
# and it is the fastest and smallest choice for these films.
PNG_COMPRESSION = 1
PNG_STRATEGY = cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY
MAX_12BIT = 4095
DEFAULT_PATIENTS = 1500  # about 2,000 PA images with benchmark labels


# --------------------------------------------------------------------------------------------
# Label sets


@dataclass(frozen=True)
class LabelSetTable:
    """The real PA label sets: frequent sets with their counts, plus a remainder of rare sets
    summarised by set size, per-label counts and pair counts (sampled label by label)."""

    labels: tuple[str, ...]
    sets: tuple[tuple[int, ...], ...]
    set_counts: np.ndarray
    remainder_images: int
    remainder_sizes: np.ndarray  # images with 1, 2, ... labels
    remainder_label_counts: np.ndarray
    remainder_pair_counts: np.ndarray  # (labels, labels), symmetric, zero diagonal


@lru_cache(maxsize=1)
def load_label_sets() -> LabelSetTable:
    """Load the packaged ``demo_labelsets.json`` and check it matches the benchmark's labels."""
    text = resources.files("mlbench_padchest").joinpath(LABELSETS_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    if raw.get("format") != "mlbench-padchest-demo-labelsets" or raw.get("version") != 1:
        raise ValueError(f"{LABELSETS_FILE}: unknown format {raw.get('format')!r} version {raw.get('version')!r}")
    if tuple(raw["labels"]) != SPECIFIC_LABELS:
        raise ValueError(f"{LABELSETS_FILE}: its labels differ from mlbench_padchest.labels.SPECIFIC_LABELS; "
                         "rerun benchmarks/padchest/tools/derive_demo_labelsets.py")
    remainder = raw["remainder"]
    pairs = np.zeros((len(SPECIFIC_LABELS),) * 2, dtype=np.float64)
    for i, j, n in remainder["pair_counts"]:
        pairs[i, j] = pairs[j, i] = n
    return LabelSetTable(
        labels=tuple(raw["labels"]),
        sets=tuple(tuple(s) for s, _ in raw["sets"]),
        set_counts=np.array([n for _, n in raw["sets"]], dtype=np.float64),
        remainder_images=int(remainder["n_images"]),
        remainder_sizes=np.array(remainder["size_counts"], dtype=np.float64),
        remainder_label_counts=np.array(remainder["label_counts"], dtype=np.float64),
        remainder_pair_counts=pairs,
    )


def sample_label_sets(n: int, rng: np.random.Generator | int = 0) -> list[tuple[str, ...]]:
    """Draw ``n`` label sets (tuples of SPECIFIC_LABELS, possibly empty) as the real PA data has them.

    A frequent real set is drawn with its real frequency; with the remainder's share, a set is
    built instead: its size from the remainder's sizes, its first label from the remainder's label
    counts, each further label in proportion to how often it co-occurs there with the labels
    already drawn. An empty tuple means an image whose findings all lie outside the 35.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    table = load_label_sets()
    weights = np.append(table.set_counts, table.remainder_images)
    picks = rng.choice(len(weights), size=n, p=weights / weights.sum())
    size_p = table.remainder_sizes / table.remainder_sizes.sum()
    label_p = table.remainder_label_counts / table.remainder_label_counts.sum()
    out: list[tuple[str, ...]] = []
    for pick in picks:
        if pick < len(table.sets):
            indices: Sequence[int] = table.sets[pick]
        else:
            indices = sorted(_remainder_set(table, rng, size_p, label_p))
        out.append(tuple(table.labels[j] for j in indices))
    return out


def _remainder_set(table: LabelSetTable, rng: np.random.Generator, size_p: np.ndarray, label_p: np.ndarray) -> list[int]:
    size = 1 + int(rng.choice(len(size_p), p=size_p))
    chosen = [int(rng.choice(len(label_p), p=label_p))]
    while len(chosen) < size:
        weights = table.remainder_pair_counts[chosen].sum(axis=0)
        weights[chosen] = 0.0
        if weights.sum() == 0:  # nothing co-occurs with these: fall back to plain frequency
            weights = table.remainder_label_counts.copy()
            weights[chosen] = 0.0
        chosen.append(int(rng.choice(len(weights), p=weights / weights.sum())))
    return chosen


# --------------------------------------------------------------------------------------------
# Anatomy of one frontal film


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Chest:
    """Geometry of one synthetic frontal chest, in pixels (x right, y down)."""

    size: int
    cx: float  # body midline
    scale: float
    lung_cx: tuple[float, float]  # (patient right = image left, patient left = image right)
    lung_cy: tuple[float, float]
    lung_ax: tuple[float, float]  # half widths
    lung_ay: tuple[float, float]  # half heights
    dome_base: tuple[float, float]  # y of each costophrenic angle
    dome_height: tuple[float, float]  # how far each dome rises above its angle
    heart: tuple[float, float, float, float]  # cx, cy, half width, half height
    knob: tuple[float, float, float]  # aortic knob cx, cy, radius
    spine_halfwidth: float
    scoliosis: float  # lateral amplitude of the spine's S-curve (0 = straight)
    lung_density: float
    body_density: float

    def unit(self) -> float:
        """The length that findings scale with: a tenth of the film, times the chest's scale."""
        return 0.1 * self.size * self.scale

    def lung_box(self, side: int) -> Box:
        top = self.lung_cy[side] - self.lung_ay[side]
        bottom = self.dome_base[side]
        return _clip_box(self.lung_cx[side] - self.lung_ax[side], top,
                         self.lung_cx[side] + self.lung_ax[side], bottom, self.size)

    def spine_x(self, y: np.ndarray | float) -> np.ndarray | float:
        top, bottom = 0.12 * self.size, 0.95 * self.size
        # np.sin runs on a row or column of coordinates, never the whole film
        phase = np.clip((np.asarray(y, dtype=np.float64) - top) / (bottom - top), 0.0, 1.0)
        return self.cx + self.scoliosis * np.sin(3 * np.pi * phase)


def _clip_box(x0: float, y0: float, x1: float, y1: float, size: int) -> Box:
    ix0, iy0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    ix1, iy1 = min(size, int(math.ceil(x1))), min(size, int(math.ceil(y1)))
    return ix0, iy0, max(ix1, ix0 + 1), max(iy1, iy0 + 1)


def _random_chest(size: int, rng: np.random.Generator) -> Chest:
    s = rng.uniform(0.92, 1.04)
    cx = size * (0.5 + rng.normal(0, 0.012))
    cy = size * (0.47 + rng.normal(0, 0.01))
    ax, ay = 0.145 * size * s, 0.30 * size * s
    offset = 0.19 * size * s
    base = cy + 0.27 * size * s
    return Chest(
        size=size, cx=cx, scale=s,
        lung_cx=(cx - offset, cx + offset), lung_cy=(cy, cy + 0.01 * size),
        lung_ax=(ax * rng.uniform(0.96, 1.04), ax * rng.uniform(0.96, 1.04)), lung_ay=(ay, ay),
        dome_base=(base, base + 0.012 * size),
        dome_height=(0.075 * size * s, 0.065 * size * s),
        heart=(cx + 0.045 * size * s, cy + 0.15 * size * s, 0.115 * size * s * rng.uniform(0.95, 1.05),
               0.095 * size * s),
        knob=(cx + 0.06 * size * s, cy - 0.16 * size * s, 0.03 * size * s),
        spine_halfwidth=0.032 * size * s,
        scoliosis=0.0,
        lung_density=rng.uniform(0.2, 0.26),
        body_density=rng.uniform(0.52, 0.6),
    )


class Canvas:
    """A float64 film being drawn, with coordinate grids and the lung mask of its chest."""

    def __init__(self, chest: Chest) -> None:
        self.chest = chest
        n = chest.size
        # a row and a column of coordinates: expressions in both broadcast to the full film
        self.x = np.arange(n, dtype=np.float64)[None, :]
        self.y = np.arange(n, dtype=np.float64)[:, None]
        self.lungs = [self._lung_mask(side) for side in (0, 1)]
        self.image = np.zeros((n, n), dtype=np.float64)

    def _lung_mask(self, side: int) -> np.ndarray:
        c = self.chest
        inside = ((self.x - c.lung_cx[side]) / c.lung_ax[side]) ** 2 + ((self.y - c.lung_cy[side]) / c.lung_ay[side]) ** 2 <= 1
        # the dome: highest at the lung's middle, down to the costophrenic angle at its edges
        rel = np.clip((self.x - c.lung_cx[side]) / c.lung_ax[side], -1, 1)
        dome_y = c.dome_base[side] - c.dome_height[side] * (1 - rel ** 2)
        return inside & (self.y < dome_y)

    def ellipse(self, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
        return ((self.x - cx) / ax) ** 2 + ((self.y - cy) / ay) ** 2 <= 1

    def blob(self, cx: float, cy: float, radius: float) -> np.ndarray:
        """A soft round opacity (Gaussian profile), 1 at its centre."""
        return np.exp(-(((self.x - cx) ** 2 + (self.y - cy) ** 2) / (2 * radius ** 2)))

    def layer(self) -> np.ndarray:
        return np.zeros_like(self.image)


def _thickness(chest: Chest, fraction: float) -> int:
    return max(1, int(round(fraction * chest.size)))


def _line(layer: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], value: float, thickness: int) -> None:
    cv2.line(layer, (int(round(p0[0])), int(round(p0[1]))), (int(round(p1[0])), int(round(p1[1]))), value, thickness)


_RIB_STEPS = (0.05, 0.12, 0.19, 0.26, 0.33, 0.4)  # along a rib, in fractions of the film's width


def _render_frontal(chest: Chest, rng: np.random.Generator) -> Canvas:
    """Draw the normal anatomy of ``chest`` (no findings)."""
    c, canvas = chest, Canvas(chest)
    n = c.size
    image = canvas.image
    image[:] = 0.05  # air around the patient
    torso = np.array([
        # neck, then shoulders above the lung apices: the crop's top rows are body, not air
        [c.cx - 0.07 * n, 0], [c.cx + 0.07 * n, 0], [c.cx + 0.1 * n, 0.03 * n],
        [c.cx + 0.45 * n * c.scale, 0.07 * n], [c.cx + 0.47 * n * c.scale, 0.3 * n], [c.cx + 0.43 * n * c.scale, n],
        [c.cx - 0.43 * n * c.scale, n], [c.cx - 0.47 * n * c.scale, 0.3 * n], [c.cx - 0.45 * n * c.scale, 0.07 * n],
        [c.cx - 0.1 * n, 0.03 * n],
    ], dtype=np.int32)
    cv2.fillPoly(image, [torso], c.body_density)
    for lung in canvas.lungs:
        image[lung] = c.lung_density
    # below the domes: liver and stomach, a little denser than the rest of the body
    below = (canvas.y > np.minimum(c.dome_base[0], c.dome_base[1]) - 0.02 * n) & (image > 0.3)
    image[below & ~canvas.lungs[0] & ~canvas.lungs[1]] = c.body_density + 0.04
    hx, hy, hax, hay = c.heart
    kx, ky, kr = c.knob
    mediastinum = canvas.ellipse(hx, hy, hax, hay) | canvas.ellipse(kx, ky, kr, kr)
    image[mediastinum] = c.body_density + 0.02
    # findings of the lung are drawn where the lung shows, not over the heart
    canvas.lungs = [lung & ~mediastinum for lung in canvas.lungs]
    # trachea: a darker column of air above the carina
    trachea = (np.abs(canvas.x - c.cx) < 0.014 * n) & (canvas.y < c.lung_cy[0] - 0.08 * n)
    image[trachea] = c.body_density - 0.12
    # spine: vertebral bodies with darker disc spaces, following the spine's curve
    spine_x = c.spine_x(canvas.y)
    spine = (np.abs(canvas.x - spine_x) < c.spine_halfwidth) & (canvas.y > 0.1 * n)
    discs = np.mod(canvas.y, 0.045 * n * c.scale) < 0.008 * n
    image[spine] += 0.1
    image[spine & discs] -= 0.06
    # clavicles and ribs: bone adds density wherever it lies
    bones = canvas.layer()
    for sign in (-1, 1):
        _line(bones, (c.cx + sign * 0.05 * n, 0.17 * n * c.scale + 0.02 * n), (c.cx + sign * 0.36 * n * c.scale, 0.12 * n),
              0.12, _thickness(c, 0.022))
        for k in range(8):
            y0 = c.lung_cy[0] - c.lung_ay[0] + (0.05 + 0.072 * k) * n * c.scale
            points = [(c.cx + sign * t * n * c.scale, y0 + 0.05 * n * (t - 0.05) ** 1.5) for t in _RIB_STEPS]
            cv2.polylines(bones, [np.array(points, dtype=np.int32)], False, 0.05, _thickness(c, 0.012))
    image += bones * (image > 0.1)
    # mottled soft tissue, so no two films share a background
    coarse = rng.normal(0.0, 0.02, size=(6, 6))
    image += cv2.resize(coarse, (n, n), interpolation=cv2.INTER_CUBIC) * (image > 0.1)
    return canvas


# --------------------------------------------------------------------------------------------
# Findings: each draws onto the canvas (or changes the chest before rendering) and returns its box


def _side(rng: np.random.Generator) -> int:
    return int(rng.integers(2))


def _box_of(layer: np.ndarray, fraction: float = 0.2) -> Box:
    """Bounding box of where ``layer`` reaches ``fraction`` of its peak."""
    strength = np.abs(layer)
    return _mask_box(strength >= fraction * strength.max())


def _add(canvas: Canvas, layer: np.ndarray) -> Box:
    canvas.image += layer
    return _box_of(layer)


# Findings that change the chest's geometry before it is drawn.
ShapeChange = Callable[[Chest, np.random.Generator], tuple[Chest, Callable[[Chest], Box]]]


def _copd(c: Chest, rng: np.random.Generator):
    # hyperinflation: darker, longer lungs over flattened domes
    changed = replace(c, lung_density=c.lung_density * 0.55, lung_ay=tuple(a * 1.06 for a in c.lung_ay),
                      dome_base=tuple(b + 0.02 * c.size for b in c.dome_base),
                      dome_height=tuple(h * 0.25 for h in c.dome_height))
    return changed, lambda ch: _union(ch.lung_box(0), ch.lung_box(1))


def _cardiomegaly(c: Chest, rng: np.random.Generator):
    hx, hy, hax, hay = c.heart
    grow = rng.uniform(1.55, 1.7)
    changed = replace(c, heart=(hx + 0.2 * hax * (grow - 1), hy, hax * grow, hay * 1.2))
    return changed, lambda ch: _clip_box(ch.heart[0] - ch.heart[2], ch.heart[1] - ch.heart[3],
                                         ch.heart[0] + ch.heart[2], ch.heart[1] + ch.heart[3], ch.size)


def _aortic_elongation(c: Chest, rng: np.random.Generator):
    kx, ky, kr = c.knob
    changed = replace(c, knob=(kx + 1.1 * kr, ky - 0.4 * kr, kr * rng.uniform(2.4, 2.7)))
    return changed, lambda ch: _clip_box(ch.knob[0] - ch.knob[2], ch.knob[1] - ch.knob[2],
                                         ch.knob[0] + ch.knob[2], ch.knob[1] + ch.knob[2], ch.size)


def _scoliosis(c: Chest, rng: np.random.Generator):
    changed = replace(c, scoliosis=float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.12) * c.size),
                      spine_halfwidth=c.spine_halfwidth * 1.5)

    def box(ch: Chest) -> Box:
        return _clip_box(ch.cx - abs(ch.scoliosis) - ch.spine_halfwidth, 0.12 * ch.size,
                         ch.cx + abs(ch.scoliosis) + ch.spine_halfwidth, 0.95 * ch.size, ch.size)
    return changed, box


def _hemidiaphragm_elevation(c: Chest, rng: np.random.Generator):
    side = _side(rng)
    lift = rng.uniform(0.16, 0.18) * c.size
    bases = list(c.dome_base)
    bases[side] -= lift
    heights = list(c.dome_height)
    heights[side] *= 1.6
    changed = replace(c, dome_base=tuple(bases), dome_height=tuple(heights))

    def box(ch: Chest) -> Box:
        top = ch.dome_base[side] - ch.dome_height[side]
        return _clip_box(ch.lung_cx[side] - ch.lung_ax[side], top, ch.lung_cx[side] + ch.lung_ax[side],
                         ch.dome_base[side] + lift, ch.size)
    return changed, box


def _volume_loss(c: Chest, rng: np.random.Generator):
    # one lung smaller: its apex drops and its lateral wall comes in
    side = _side(rng)
    ax, ay, cy, lcx = list(c.lung_ax), list(c.lung_ay), list(c.lung_cy), list(c.lung_cx)
    shrink_y = rng.uniform(0.22, 0.26) * ay[side]
    shrink_x = rng.uniform(0.28, 0.32) * ax[side]
    ay[side] -= shrink_y / 2
    cy[side] += shrink_y / 2
    ax[side] -= shrink_x / 2
    lcx[side] += (shrink_x / 2) * (1 if side == 0 else -1)
    changed = replace(c, lung_ax=tuple(ax), lung_ay=tuple(ay), lung_cy=tuple(cy), lung_cx=tuple(lcx))
    return changed, lambda ch: c.lung_box(side)


SHAPE_CHANGES: dict[str, ShapeChange] = {
    "COPD signs": _copd,
    "cardiomegaly": _cardiomegaly,
    "aortic elongation": _aortic_elongation,
    "scoliosis": _scoliosis,
    "hemidiaphragm elevation": _hemidiaphragm_elevation,
    "volume loss": _volume_loss,
}


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _lung_point(canvas: Canvas, side: int, fx: float, fy: float) -> tuple[float, float]:
    """A point of a lung: fx from medial (0) to lateral (1), fy from apex (0) to base (1)."""
    c = canvas.chest
    lateral = -1 if side == 0 else 1
    x = c.lung_cx[side] + lateral * (fx - 0.5) * 2 * c.lung_ax[side] * 0.85
    top = c.lung_cy[side] - c.lung_ay[side]
    y = top + fy * (c.dome_base[side] - top)
    return x, y


def _air_trapping(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a hyperlucent, thin-walled region in the lower lateral left lung
    c, u = canvas.chest, canvas.chest.unit()
    x, y = _lung_point(canvas, 1, rng.uniform(0.65, 0.75), rng.uniform(0.55, 0.62))
    r = 0.75 * u
    layer = canvas.layer()
    inner = canvas.ellipse(x, y, r, r * 0.8)
    rim = canvas.ellipse(x, y, r * 1.15, r * 0.95) & ~inner
    layer[inner] = -0.7 * c.lung_density
    layer[rim] = 0.3
    return _add(canvas, layer)


def _unchanged(canvas: Canvas, rng: np.random.Generator) -> Box:
    # synthetic mark (not visible on a real film): a thick bright ring in the upper right lung
    u = canvas.chest.unit()
    x, y = _lung_point(canvas, 0, rng.uniform(0.55, 0.65), rng.uniform(0.3, 0.36))
    r = 0.6 * u
    layer = canvas.layer()
    layer[canvas.ellipse(x, y, r, r) & ~canvas.ellipse(x, y, 0.5 * r, 0.5 * r)] = 0.35
    return _add(canvas, layer)


def _chronic_changes(canvas: Canvas, rng: np.random.Generator) -> Box:
    # synthetic mark (not visible on a real film): a cross-hatched square in the upper left lung
    c, u = canvas.chest, canvas.chest.unit()
    x, y = _lung_point(canvas, 1, rng.uniform(0.45, 0.55), rng.uniform(0.26, 0.32))
    half = 0.6 * u
    layer = canvas.layer()
    t = _thickness(c, 0.01)
    for k in np.linspace(-half, half, 4):
        _line(layer, (x - half, y + k), (x + half, y + k), 0.22, t)
        _line(layer, (x + k, y - half), (x + k, y + half), 0.22, t)
    return _add(canvas, layer)


def _costophrenic_blunting(canvas: Canvas, rng: np.random.Generator) -> Box:
    # the lateral costophrenic angle filled by a small dense triangle
    c, u = canvas.chest, canvas.chest.unit()
    side = _side(rng)
    lateral = -1 if side == 0 else 1
    # the angle: the lung's lowest, most lateral point
    ys, xs = np.nonzero(canvas.lungs[side])
    corner = int(np.argmax(lateral * xs + ys))
    x_edge, y_base = xs[corner] + lateral * 2, ys[corner] + 2
    size = rng.uniform(1.1, 1.25) * u
    layer = canvas.layer()
    tri = np.array([[x_edge, y_base - 1.3 * size], [x_edge, y_base], [x_edge - lateral * 1.3 * size, y_base]], dtype=np.int32)
    cv2.fillPoly(layer, [tri], 1.0)
    layer *= canvas.lungs[side] * (c.body_density - c.lung_density)
    return _add(canvas, layer)


def _pleural_effusion(canvas: Canvas, rng: np.random.Generator) -> Box:
    # basal opacity whose upper edge (meniscus) climbs towards the chest wall; one side or both
    c = canvas.chest
    sides = [0, 1] if rng.random() < 0.3 else [_side(rng)]
    layer = canvas.layer()
    for side in sides:
        lateral = -1 if side == 0 else 1
        top = c.lung_cy[side] - c.lung_ay[side]
        level = c.dome_base[side] - rng.uniform(0.26, 0.32) * (c.dome_base[side] - top)
        rel = np.clip((canvas.x - c.lung_cx[side]) * lateral / c.lung_ax[side], -1, 1)
        meniscus = level - 0.06 * c.size * (rel + 1) ** 2 / 4
        fluid = canvas.lungs[side] & (canvas.y > meniscus)
        layer[fluid] = 0.2
    return _add(canvas, layer)


def _pneumonia(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a patchy cluster of soft opacities in one lower-mid zone
    u = canvas.chest.unit()
    side = _side(rng)
    x0, y0 = _lung_point(canvas, side, rng.uniform(0.45, 0.6), rng.uniform(0.5, 0.6))
    layer = canvas.layer()
    for _ in range(7):
        layer += 0.1 * canvas.blob(x0 + rng.normal(0, 0.45 * u), y0 + rng.normal(0, 0.35 * u), 0.28 * u)
    layer = np.minimum(layer, 0.2) * canvas.lungs[side]
    return _add(canvas, layer)


def _interstitial(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a reticular net of short lines over both lower lateral zones
    c = canvas.chest
    layer = canvas.layer()
    t = _thickness(c, 0.012)
    for side in (0, 1):
        for _ in range(14):
            x, y = _lung_point(canvas, side, rng.uniform(0.45, 0.95), rng.uniform(0.55, 0.85))
            angle = rng.uniform(0, np.pi)
            length = rng.uniform(0.03, 0.05) * c.size
            dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
            _line(layer, (x - dx, y - dy), (x + dx, y + dy), 0.2, t)
    layer *= canvas.lungs[0] | canvas.lungs[1]
    return _add(canvas, layer)


def _infiltrates(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a hazy, ill-defined opacity in the right mid zone
    u = canvas.chest.unit()
    x, y = _lung_point(canvas, 0, rng.uniform(0.5, 0.6), rng.uniform(0.38, 0.46))
    layer = 0.16 * canvas.blob(x, y, 0.55 * u) * canvas.lungs[0]
    return _add(canvas, layer)


def _laminar_atelectasis(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a thin horizontal plate in a lower zone
    c = canvas.chest
    side = _side(rng)
    x, y = _lung_point(canvas, side, 0.5, rng.uniform(0.62, 0.7))
    half = 0.085 * c.size * c.scale
    layer = canvas.layer()
    _line(layer, (x - half, y), (x + half, y + rng.uniform(-2, 2)), 0.35, _thickness(c, 0.018))
    return _add(canvas, layer)


def _vertebral_degenerative(canvas: Canvas, rng: np.random.Generator) -> Box:
    # osteophytes: bony spurs off both sides of the lower thoracic spine
    c = canvas.chest
    layer = canvas.layer()
    w = c.spine_halfwidth
    for k in range(5):
        y = c.lung_cy[0] + (0.04 + 0.045 * k) * c.size * c.scale
        sx = float(c.spine_x(y))
        for sign in (-1, 1):
            spur = np.array([[sx + sign * w * 0.8, y - 0.015 * c.size], [sx + sign * (w + 0.05 * c.size), y],
                             [sx + sign * w * 0.8, y + 0.015 * c.size]], dtype=np.int32)
            cv2.fillPoly(layer, [spur], 0.35)
    return _add(canvas, layer)


def _kyphosis(canvas: Canvas, rng: np.random.Generator) -> Box:
    # synthetic PA sign: the upper thoracic spine widened and dense where the vertebrae overlap
    c = canvas.chest
    layer = canvas.layer()
    top = c.lung_cy[0] - c.lung_ay[0]
    ys = canvas.y
    band = (ys > top) & (ys < top + 0.16 * c.size) & (np.abs(canvas.x - c.spine_x(ys)) < c.spine_halfwidth * 1.9)
    layer[band] = 0.2
    return _add(canvas, layer)


def _apical_thickening(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a dense cap over the lung apex, one side or both
    c = canvas.chest
    sides = [0, 1] if rng.random() < 0.5 else [_side(rng)]
    layer = canvas.layer()
    for side in sides:
        top = c.lung_cy[side] - c.lung_ay[side]
        cap = canvas.lungs[side] & (canvas.y < top + rng.uniform(0.11, 0.12) * c.size)
        layer[cap] = 0.24  # denser would hide the apex from the lung crop
    return _add(canvas, layer)


def _hilar_enlargement(canvas: Canvas, rng: np.random.Generator) -> Box:
    # both hila enlarged: lobulated dense masses beside the mediastinum
    c, u = canvas.chest, canvas.chest.unit()
    layer = canvas.layer()
    for side in (0, 1):
        x, y = _lung_point(canvas, side, 0.12, 0.45)
        for dx, dy in ((0, 0), (0.3, 0.35), (0.1, -0.4)):
            lateral = -1 if side == 0 else 1
            layer += 0.22 * canvas.blob(x + lateral * dx * u, y + dy * u, 0.3 * u)
    return _add(canvas, np.minimum(layer, 0.3))


def _fibrotic_band(canvas: Canvas, rng: np.random.Generator) -> Box:
    # an oblique dense band from the lateral upper zone towards the hilum
    c = canvas.chest
    side = _side(rng)
    p0 = _lung_point(canvas, side, rng.uniform(0.8, 0.9), rng.uniform(0.2, 0.26))
    p1 = _lung_point(canvas, side, rng.uniform(0.3, 0.38), rng.uniform(0.42, 0.48))
    layer = canvas.layer()
    _line(layer, p0, p1, 0.3, _thickness(c, 0.024))
    return _add(canvas, layer)


def _nodule(canvas: Canvas, rng: np.random.Generator) -> Box:
    # one well-defined round opacity in a lung
    c, u = canvas.chest, canvas.chest.unit()
    side = _side(rng)
    x, y = _lung_point(canvas, side, rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.6))
    r = rng.uniform(0.5, 0.6) * u
    layer = canvas.layer()
    layer[canvas.ellipse(x, y, r, r)] = 0.38
    return _add(canvas, layer)


def _calcified_granuloma(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a tiny, very dense dot (calcium) in a lung
    c, u = canvas.chest, canvas.chest.unit()
    side = _side(rng)
    x, y = _lung_point(canvas, side, rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.65))
    r = rng.uniform(0.19, 0.22) * u
    layer = canvas.layer()
    layer[canvas.ellipse(x, y, r, r)] = 0.7
    return _add(canvas, layer)


def _rib_callus(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a dense spindle on a rib at the lateral chest wall
    c, u = canvas.chest, canvas.chest.unit()
    side = _side(rng)
    x, y = _lung_point(canvas, side, 1.0, rng.uniform(0.3, 0.6))
    layer = canvas.layer()
    angle = 25 if side == 0 else -25
    cv2.ellipse(layer, (int(round(x)), int(round(y))), (int(round(0.7 * u)), int(round(0.32 * u))), angle, 0, 360, 0.45, -1)
    return _add(canvas, layer)


def _pacemaker(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a generator box below the left clavicle with a lead running to the heart
    c, u = canvas.chest, canvas.chest.unit()
    x = c.cx + rng.uniform(0.24, 0.28) * c.size * c.scale
    y = c.lung_cy[1] - c.lung_ay[1] + rng.uniform(0.06, 0.09) * c.size
    w, h = 0.45 * u, 0.32 * u
    layer = canvas.layer()
    cv2.rectangle(layer, (int(x - w), int(y - h)), (int(x + w), int(y + h)), 0.6, -1)
    hx, hy, hax, hay = c.heart
    lead = [(x - w, y), (c.cx + 0.02 * c.size, hy - 0.6 * hay), (hx - 0.1 * hax, hy + 0.2 * hay)]
    cv2.polylines(layer, [np.array(lead, dtype=np.int32)], False, 0.45, _thickness(c, 0.01))
    return _add(canvas, layer)


def _aortic_atheromatosis(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a thin, very dense arc of calcium along the aortic knob
    c = canvas.chest
    kx, ky, kr = c.knob
    layer = canvas.layer()
    cv2.ellipse(layer, (int(round(kx)), int(round(ky))), (int(round(kr * 1.15)), int(round(kr * 1.15))), 0, 150, 390, 0.6,
                _thickness(c, 0.018))
    return _add(canvas, layer)


def _sternotomy(canvas: Canvas, rng: np.random.Generator) -> Box:
    # cerclage wires stacked along the midline
    c, u = canvas.chest, canvas.chest.unit()
    layer = canvas.layer()
    top = c.lung_cy[0] - 0.15 * c.size
    for k in range(5):
        y = top + k * 0.055 * c.size * c.scale
        cv2.ellipse(layer, (int(round(c.cx)), int(round(y))), (int(round(0.28 * u)), int(round(0.12 * u))), 0, 0, 360, 0.5,
                    _thickness(c, 0.01))
    return _add(canvas, layer)


def _bronchiectasis(canvas: Canvas, rng: np.random.Generator) -> Box:
    # thick-walled ring shadows in one lower medial zone
    c, u = canvas.chest, canvas.chest.unit()
    side = _side(rng)
    layer = canvas.layer()
    x0, y0 = _lung_point(canvas, side, rng.uniform(0.35, 0.45), rng.uniform(0.58, 0.66))
    for _ in range(5):
        x, y = x0 + rng.normal(0, 0.35 * u), y0 + rng.normal(0, 0.3 * u)
        cv2.circle(layer, (int(round(x)), int(round(y))), int(round(0.2 * u)), 0.4, _thickness(c, 0.014))
    return _add(canvas, layer)


def _hiatal_hernia(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a retrocardiac gas bubble with an air-fluid level just above the diaphragm
    c, u = canvas.chest, canvas.chest.unit()
    hx, hy, hax, hay = c.heart
    x, y, r = c.cx + 0.02 * c.size, hy + 0.3 * hay, 0.6 * u
    layer = canvas.layer()
    disc = canvas.ellipse(x, y, r, r * 0.85)
    layer[disc & (canvas.y < y)] = -0.4
    layer[disc & (canvas.y >= y)] = 0.12
    return _add(canvas, layer)


def _pseudonodule(canvas: Canvas, rng: np.random.Generator) -> Box:
    # nipple shadows: faint symmetric round opacities over both lower lateral zones
    u = canvas.chest.unit()
    fy = rng.uniform(0.66, 0.72)
    layer = canvas.layer()
    for side in (0, 1):
        x, y = _lung_point(canvas, side, 0.72, fy)
        layer[canvas.ellipse(x, y, 0.38 * u, 0.38 * u)] = 0.3
    return _add(canvas, layer)


def _alveolar(canvas: Canvas, rng: np.random.Generator) -> Box:
    # confluent opacities spreading out from both hila ("bat wings")
    u = canvas.chest.unit()
    layer = canvas.layer()
    for side in (0, 1):
        x, y = _lung_point(canvas, side, 0.35, 0.4)
        layer += 0.3 * canvas.blob(x, y, 0.6 * u)
    return _add(canvas, np.minimum(layer, 0.28) * (canvas.lungs[0] | canvas.lungs[1]))


def _increased_density(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a uniform veil over the upper half of one lung
    c = canvas.chest
    side = _side(rng)
    top = c.lung_cy[side] - c.lung_ay[side]
    layer = canvas.layer()
    layer[canvas.lungs[side] & (canvas.y < top + 0.45 * (c.dome_base[side] - top))] = 0.19
    return _add(canvas, layer)


def _vertebral_compression(canvas: Canvas, rng: np.random.Generator) -> Box:
    # one flattened, dense vertebra in the mid thoracic spine
    c = canvas.chest
    y = c.lung_cy[0] + rng.uniform(-0.04, 0.0) * c.size
    x = float(c.spine_x(y))
    layer = canvas.layer()
    w, h = c.spine_halfwidth * 1.5, 0.016 * c.size
    cv2.rectangle(layer, (int(x - w), int(y - h)), (int(x + w), int(y + h)), 0.38, -1)
    return _add(canvas, layer)


def _suture_material(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a line of surgical clips across one upper zone
    c, u = canvas.chest, canvas.chest.unit()
    side = _side(rng)
    p0 = np.array(_lung_point(canvas, side, 0.35, rng.uniform(0.18, 0.22)))
    p1 = np.array(_lung_point(canvas, side, 0.85, rng.uniform(0.32, 0.38)))
    layer = canvas.layer()
    for t in np.linspace(0, 1, 6):
        x, y = p0 + t * (p1 - p0)
        cv2.rectangle(layer, (int(x - 0.12 * u), int(y - 0.05 * u)), (int(x + 0.12 * u), int(y + 0.05 * u)), 0.55, -1)
    return _add(canvas, layer)


def _supra_aortic_elongation(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a widened upper mediastinum on the right, above the aortic knob
    c, u = canvas.chest, canvas.chest.unit()
    x = c.cx - rng.uniform(0.06, 0.075) * c.size * c.scale
    y = c.lung_cy[0] - c.lung_ay[0] + 0.12 * c.size
    layer = canvas.layer()
    layer[canvas.ellipse(x, y, 0.55 * u, 0.8 * u) & (canvas.x < c.cx)] = 0.28
    return _add(canvas, layer)


Draw = Callable[[Canvas, np.random.Generator], Box]

DRAWN_FINDINGS: dict[str, Draw] = {
    "air trapping": _air_trapping,
    "unchanged": _unchanged,
    "chronic changes": _chronic_changes,
    "costophrenic angle blunting": _costophrenic_blunting,
    "pleural effusion": _pleural_effusion,
    "pneumonia": _pneumonia,
    "interstitial pattern": _interstitial,
    "infiltrates": _infiltrates,
    "laminar atelectasis": _laminar_atelectasis,
    "vertebral degenerative changes": _vertebral_degenerative,
    "kyphosis": _kyphosis,
    "apical pleural thickening": _apical_thickening,
    "vascular hilar enlargement": _hilar_enlargement,
    "fibrotic band": _fibrotic_band,
    "nodule": _nodule,
    "calcified granuloma": _calcified_granuloma,
    "callus rib fracture": _rib_callus,
    "pacemaker": _pacemaker,
    "aortic atheromatosis": _aortic_atheromatosis,
    "sternotomy": _sternotomy,
    "bronchiectasis": _bronchiectasis,
    "hiatal hernia": _hiatal_hernia,
    "pseudonodule": _pseudonodule,
    "alveolar pattern": _alveolar,
    "increased density": _increased_density,
    "vertebral anterior compression": _vertebral_compression,
    "suture material": _suture_material,
    "supra aortic elongation": _supra_aortic_elongation,
}

# Every benchmark label's synthetic signature: "normal" draws nothing.
SIGNATURES: tuple[str, ...] = ("normal",) + tuple(SHAPE_CHANGES) + tuple(DRAWN_FINDINGS)
assert sorted(SIGNATURES) == sorted(SPECIFIC_LABELS), "every specific label needs a signature"


def draw_frontal(labels: Sequence[str], size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Box], dict[str, Box]]:
    """Draw one frontal (PA or AP) film carrying ``labels``, a subset of SPECIFIC_LABELS.

    Returns the 12-bit uint16 image, each drawn finding's box and the two lung boxes
    (``right``/``left``, the patient's sides).
    """
    unknown = [label for label in labels if label not in SIGNATURES]
    if unknown:
        raise ValueError(f"draw_frontal: no synthetic signature for {unknown}; expected labels of SPECIFIC_LABELS")
    chest = _random_chest(size, rng)
    box_of_shape: dict[str, Callable[[Chest], Box]] = {}
    for label in labels:
        if label in SHAPE_CHANGES:
            chest, box_of_shape[label] = SHAPE_CHANGES[label](chest, rng)
    canvas = _render_frontal(chest, rng)
    boxes = {label: fn(chest) for label, fn in box_of_shape.items()}
    for label in labels:
        if label in DRAWN_FINDINGS:
            boxes[label] = DRAWN_FINDINGS[label](canvas, rng)
    lungs = {"right": _mask_box(canvas.lungs[0]), "left": _mask_box(canvas.lungs[1])}
    return _expose(canvas.image, rng), boxes, lungs


def _mask_box(mask: np.ndarray) -> Box:
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def draw_lateral(size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one lateral film: a side view (one lung field, heart in front, spine behind)."""
    chest = _random_chest(size, rng)
    canvas = Canvas(chest)
    n, c = size, chest
    image = canvas.image
    image[:] = 0.05
    image[canvas.ellipse(c.cx, 0.55 * n, 0.34 * n * c.scale, 0.6 * n)] = c.body_density
    image[canvas.ellipse(c.cx, c.lung_cy[0], 0.25 * n * c.scale, c.lung_ay[0])] = c.lung_density
    image[canvas.ellipse(c.cx - 0.1 * n, c.lung_cy[0] + 0.16 * n, 0.13 * n, 0.11 * n)] = c.body_density
    spine = np.abs(canvas.x - (c.cx + 0.24 * n * c.scale)) < 0.04 * n
    image[spine & (image > 0.1)] += 0.12
    image[(canvas.y > c.dome_base[0]) & (image > 0.1)] = c.body_density + 0.04
    return _expose(image, rng)


def _expose(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur (the film's unsharpness), noise and a per-image exposure curve, then 12-bit values."""
    n = image.shape[0]
    sigma = max(0.5, n / 256)
    # noise before the blur: grainy like a film, and it keeps the PNGs small
    film = cv2.GaussianBlur(image + rng.normal(0.0, 0.008, size=image.shape), (0, 0), sigma)
    linear = np.clip(np.rint(film * MAX_12BIT), 0, MAX_12BIT).astype(np.uint16)
    # the exposure curve as a 4096-entry table: cheaper than a power over every pixel
    gain, gamma = rng.uniform(0.85, 1.1), rng.uniform(0.85, 1.15)
    curve = np.clip(np.rint((np.arange(MAX_12BIT + 1) / MAX_12BIT) ** gamma * gain * MAX_12BIT), 0, MAX_12BIT)
    return curve.astype(np.uint16)[linear]


# --------------------------------------------------------------------------------------------
# The corpus


def _digits(rng: np.random.Generator, n: int) -> str:
    return str(int(rng.integers(1, 10))) + "".join(map(str, rng.integers(0, 10, size=n - 1)))


def _suffix(rng: np.random.Generator) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=6))


def _labels_text(findings: Sequence[str], rng: np.random.Generator) -> str:
    """PadChest's Labels cell: a Python list literal, sometimes with stray spaces in its items."""
    items = list(findings)
    if items and rng.random() < 0.08:
        k = int(rng.integers(len(items)))
        items[k] = " " + items[k] if rng.random() < 0.7 else items[k] + " "
    return repr(items)


def _plan_rows(n_patients: int, n_dirs: int, rng: np.random.Generator) -> list[dict]:
    """Patients, studies and images with their metadata and findings (no pixels yet)."""
    rows: list[dict] = []
    report_id = 4_000_000
    for p in range(n_patients):
        patient_id = _digits(rng, 38)
        birth = float(int(rng.normal(1953, 18)))
        sex = "M" if rng.random() < 0.5 else "F"
        image_dir = str(p * n_dirs // n_patients)
        n_images = 1 + int(rng.choice(4, p=[0.42, 0.36, 0.14, 0.08]))
        base_set = sample_label_sets(1, rng)[0]
        year = int(rng.integers(2009, 2017))
        while n_images > 0:
            # one study: a frontal film, often a lateral beside it, sharing one report
            study_id = _digits(rng, 38)
            report_id += int(rng.integers(1, 60))
            year = min(2017, year + int(rng.integers(0, 2)))
            date = f"{year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
            frontal = str(rng.choice(["PA", "AP", "AP_horizontal"], p=[0.9, 0.05, 0.05]))
            projections = [frontal]
            if n_images >= 2 and rng.random() < 0.45:
                projections.append("L")
            findings = base_set if rng.random() < 0.6 else sample_label_sets(1, rng)[0]
            findings = list(findings)
            if not findings:
                # the image's findings all lie outside the benchmark's 35: it will be dropped
                findings = list(rng.choice(OUTSIDE_LABELS, size=int(rng.integers(1, 3)), replace=False))
            elif rng.random() < 0.1:
                findings.insert(int(rng.integers(len(findings) + 1)), str(rng.choice(OUTSIDE_LABELS)))
            method = "Physician" if rng.random() < 0.27 else "RNN_model"
            for projection in projections:
                rows.append({
                    "ImageID": f"{study_id}_{_suffix(rng)}.png", "ImageDir": image_dir, "StudyDate_DICOM": date,
                    "StudyID": study_id, "PatientID": patient_id, "PatientBirth": birth,
                    "PatientSex_DICOM": sex, "Projection": projection, "ReportID": report_id,
                    "MethodLabel": method, "findings": [str(f) for f in findings],
                })
            n_images -= len(projections)
    return rows


_VIEW_POSITION = {"PA": "POSTEROANTERIOR", "L": "LATERAL", "AP": "ANTEROPOSTERIOR", "AP_horizontal": None}


def _csv_row(row: dict, image: np.ndarray, size: int, rng: np.random.Generator, labels_text: str | None) -> dict:
    lo, hi = np.percentile(image, [5, 95])
    cr = rng.random() < 0.9
    view = _VIEW_POSITION[row["Projection"]] if rng.random() < 0.6 else None
    return {
        "ImageID": row["ImageID"], "ImageDir": row["ImageDir"], "StudyDate_DICOM": row["StudyDate_DICOM"],
        "StudyID": row["StudyID"], "PatientID": row["PatientID"], "PatientBirth": row["PatientBirth"],
        "PatientSex_DICOM": row["PatientSex_DICOM"], "ViewPosition_DICOM": view, "Projection": row["Projection"],
        "MethodProjection": "Manual review of DICOM fields", "Pediatric": "No",
        "Modality_DICOM": "CR" if cr else "DX",
        "Manufacturer_DICOM": "ImagingDynamicsCompanyLtd" if cr else "PhilipsMedicalSystems",
        "PhotometricInterpretation_DICOM": "MONOCHROME2", "PixelRepresentation_DICOM": 0,
        "PixelAspectRatio_DICOM": None, "SpatialResolution_DICOM": None, "BitsStored_DICOM": 12,
        "WindowCenter_DICOM": float(round((lo + hi) / 2)), "WindowWidth_DICOM": float(round(hi - lo)),
        "Rows_DICOM": size, "Columns_DICOM": size,
        "XRayTubeCurrent_DICOM": None, "Exposure_DICOM": None, "ExposureInuAs_DICOM": None, "ExposureTime": None,
        "RelativeXRayExposure_DICOM": None, "ReportID": row["ReportID"],
        "Report": None if labels_text is None else "synthetic demo image; no report",
        "MethodLabel": row["MethodLabel"], "Labels": labels_text,
        "Localizations": None if labels_text is None else "[]",
        "LabelsLocalizationsBySentence": None if labels_text is None else repr([[f.strip() for f in row["findings"]]]),
        "labelCUIS": None if labels_text is None else "[]",
        "LocalizationsCUIS": None if labels_text is None else "[]",
    }


def _encode_png(image: np.ndarray, where: str) -> bytes:
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION,
                                          cv2.IMWRITE_PNG_STRATEGY, PNG_STRATEGY])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {where} as PNG")
    return data.tobytes()


def write_demo_corpus(out_dir: str | Path, *, seed: int = 0, n_patients: int = DEFAULT_PATIENTS,
                      image_size: int = 256, n_corrupt: int = 1, workers: int = 4) -> DataSource:
    """Write the synthetic PadChest-format corpus into ``out_dir`` and return its DataSource.

    ``n_patients`` patients get 1-4 images each; ``n_corrupt`` PA images are written truncated
    (a reader must skip and list them). ``workers`` threads draw and write images; the same
    arguments give the same bytes whatever ``workers`` is.
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be at least 1, got {n_patients}")
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 px (findings are drawn to scale), got {image_size}")
    if n_corrupt < 0:
        raise ValueError(f"n_corrupt must be 0 or more, got {n_corrupt}")
    out = Path(out_dir)
    plan_rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    n_dirs = min(n_patients, max(2, n_patients // 300))
    rows = _plan_rows(n_patients, n_dirs, plan_rng)

    # PadChest's quirks, placed by the plan's generator: a few NaN Labels, n_corrupt truncated PAs
    pa_rows = [i for i, r in enumerate(rows) if r["Projection"] == "PA"]
    n_nan = max(2, len(rows) // 400)
    nan_rows = set(plan_rng.choice(len(rows), size=min(n_nan, len(rows)), replace=False).tolist())
    candidates = [i for i in pa_rows if i not in nan_rows and set(rows[i]["findings"]) & set(SPECIFIC_LABELS)]
    if n_corrupt > len(candidates):
        raise ValueError(f"n_corrupt={n_corrupt} but the corpus has only {len(candidates)} labelled PA images")
    corrupt_rows = set(plan_rng.choice(candidates, size=n_corrupt, replace=False).tolist()) if n_corrupt else set()

    def make(i: int) -> tuple[dict, list, list]:
        # one generator per image: the bytes do not depend on the order threads run in
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, i]))
        row = rows[i]
        findings, lungs = [], []
        if row["Projection"] == "L":
            image = draw_lateral(image_size, rng)
        else:
            drawn = [] if i in nan_rows else [f for f in row["findings"] if f in SPECIFIC_LABELS]
            image, boxes, lung_boxes = draw_frontal(drawn, image_size, rng)
            findings = [(row["ImageID"], label, *box) for label, box in boxes.items()]
            lungs = [(row["ImageID"], side, *box) for side, box in lung_boxes.items()]
        data = _encode_png(image, row["ImageID"])
        if i in corrupt_rows:
            data = data[: len(data) // 3]  # truncated, as a couple of dozen real PadChest files are
        io.write_bytes(out / IMAGES_DIR / row["ImageDir"] / row["ImageID"], data)
        labels_text = None if i in nan_rows else _labels_text(row["findings"], rng)
        return _csv_row(row, image, image_size, rng, labels_text), findings, lungs

    # OpenCV and numpy release the GIL and each file waits on its fsync: threads overlap that
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        made = list(pool.map(make, range(len(rows))))
    csv_rows = [m[0] for m in made]
    finding_rows = [f for m in made for f in m[1]]
    lung_rows = [lung for m in made for lung in m[2]]

    frame = pd.DataFrame(csv_rows, columns=list(PADCHEST_COLUMNS))
    csv_path = out / CSV_NAME
    io.write_text(csv_path, frame.to_csv(index=True, lineterminator="\n"))
    io.write_text(out / FINDINGS_NAME, pd.DataFrame(finding_rows, columns=["image_id", "label", "x0", "y0", "x1", "y1"])
                  .to_csv(index=False, lineterminator="\n"))
    io.write_text(out / LUNGS_NAME, pd.DataFrame(lung_rows, columns=["image_id", "side", "x0", "y0", "x1", "y1"])
                  .to_csv(index=False, lineterminator="\n"))
    mark_synthetic(out, **{
        "generator": "mlbench_padchest.demo",
        "generator_version": GENERATOR_VERSION,
        "statement": "Synthetic data: drawn images in PadChest's format, not radiographs of any person. "
                     "Label sets follow the real PadChest PA label frequencies; images are drawn.",
        "seed": seed,
        "parameters": {"n_patients": n_patients, "image_size": image_size, "n_corrupt": n_corrupt},
        "counts": {"images": len(rows), "pa_images": len(pa_rows), "nan_labels": len(nan_rows), "corrupt": n_corrupt},
        "files": {"csv": CSV_NAME, "images": IMAGES_DIR, "findings": FINDINGS_NAME, "lungs": LUNGS_NAME},
    })
    return DataSource(csv=csv_path, images=out / IMAGES_DIR)
