"""Synthetic chest films: the painter every dataset's demo corpus draws with.

A demo corpus stands in for data that cannot ship; its images are drawn here and written in the
dataset's own format by that dataset's plugin. This module knows anatomy and findings, never a
dataset: a plugin maps its own label names to the painters below and calls :func:`draw_frontal`.

A frontal film shows a body, two dark lung fields, a heart shadow, an aortic knob, diaphragm
domes, spine, clavicles, ribs and noise, with per-image jitter of position, scale, densities and
exposure. A finding is either a *shape change* (``ShapeChange``: alters the chest's geometry before
it is drawn, e.g. :func:`enlarged_heart`) or a *painter* (``Draw``: adds a layer to the drawn film
and returns its box, e.g. :func:`nodule`). Sizes and contrasts are tuned to be learnable at 64 px,
not to look like a radiograph. Sides are the patient's (in a PA film the patient's right lung is
on the image's left); boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive ends.

Everything random comes from the numpy Generator passed in, and pixels are computed in float64
before quantisation, so the same generator state gives the same film on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

MAX_12BIT = 4095
# Fixed, because they change the bytes. Huffman-only: noise defeats deflate's matching anyway,
# and it is the fastest and smallest choice for these films.
PNG_COMPRESSION = 1
PNG_STRATEGY = cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY


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
        return clip_box(self.lung_cx[side] - self.lung_ax[side], top,
                         self.lung_cx[side] + self.lung_ax[side], bottom, self.size)

    def spine_x(self, y: np.ndarray | float) -> np.ndarray | float:
        top, bottom = 0.12 * self.size, 0.95 * self.size
        # np.sin runs on a row or column of coordinates, never the whole film
        phase = np.clip((np.asarray(y, dtype=np.float64) - top) / (bottom - top), 0.0, 1.0)
        return self.cx + self.scoliosis * np.sin(3 * np.pi * phase)


def clip_box(x0: float, y0: float, x1: float, y1: float, size: int) -> Box:
    ix0, iy0 = max(0, int(math.floor(x0))), max(0, int(math.floor(y0)))
    ix1, iy1 = min(size, int(math.ceil(x1))), min(size, int(math.ceil(y1)))
    return ix0, iy0, max(ix1, ix0 + 1), max(iy1, iy0 + 1)


def random_chest(size: int, rng: np.random.Generator) -> Chest:
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


def thickness(chest: Chest, fraction: float) -> int:
    return max(1, int(round(fraction * chest.size)))


def line(layer: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], value: float, thickness: int) -> None:
    cv2.line(layer, (int(round(p0[0])), int(round(p0[1]))), (int(round(p1[0])), int(round(p1[1]))), value, thickness)


_RIB_STEPS = (0.05, 0.12, 0.19, 0.26, 0.33, 0.4)  # along a rib, in fractions of the film's width


def render_frontal(chest: Chest, rng: np.random.Generator) -> Canvas:
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
        line(bones, (c.cx + sign * 0.05 * n, 0.17 * n * c.scale + 0.02 * n), (c.cx + sign * 0.36 * n * c.scale, 0.12 * n),
              0.12, thickness(c, 0.022))
        for k in range(8):
            y0 = c.lung_cy[0] - c.lung_ay[0] + (0.05 + 0.072 * k) * n * c.scale
            points = [(c.cx + sign * t * n * c.scale, y0 + 0.05 * n * (t - 0.05) ** 1.5) for t in _RIB_STEPS]
            cv2.polylines(bones, [np.array(points, dtype=np.int32)], False, 0.05, thickness(c, 0.012))
    image += bones * (image > 0.1)
    # mottled soft tissue, so no two films share a background
    coarse = rng.normal(0.0, 0.02, size=(6, 6))
    image += cv2.resize(coarse, (n, n), interpolation=cv2.INTER_CUBIC) * (image > 0.1)
    return canvas


# --------------------------------------------------------------------------------------------
# Findings: each draws onto the canvas (or changes the chest before rendering) and returns its box


def random_side(rng: np.random.Generator) -> int:
    return int(rng.integers(2))


def box_of(layer: np.ndarray, fraction: float = 0.2) -> Box:
    """Bounding box of where ``layer`` reaches ``fraction`` of its peak."""
    strength = np.abs(layer)
    return mask_box(strength >= fraction * strength.max())


def add_layer(canvas: Canvas, layer: np.ndarray) -> Box:
    canvas.image += layer
    return box_of(layer)


# Findings that change the chest's geometry before it is drawn.
ShapeChange = Callable[[Chest, np.random.Generator], tuple[Chest, Callable[[Chest], Box]]]


def hyperinflation(c: Chest, rng: np.random.Generator):
    # hyperinflation: darker, longer lungs over flattened domes
    changed = replace(c, lung_density=c.lung_density * 0.55, lung_ay=tuple(a * 1.06 for a in c.lung_ay),
                      dome_base=tuple(b + 0.02 * c.size for b in c.dome_base),
                      dome_height=tuple(h * 0.25 for h in c.dome_height))
    return changed, lambda ch: union(ch.lung_box(0), ch.lung_box(1))


def enlarged_heart(c: Chest, rng: np.random.Generator):
    hx, hy, hax, hay = c.heart
    grow = rng.uniform(1.55, 1.7)
    changed = replace(c, heart=(hx + 0.2 * hax * (grow - 1), hy, hax * grow, hay * 1.2))
    return changed, lambda ch: clip_box(ch.heart[0] - ch.heart[2], ch.heart[1] - ch.heart[3],
                                         ch.heart[0] + ch.heart[2], ch.heart[1] + ch.heart[3], ch.size)


def elongated_aorta(c: Chest, rng: np.random.Generator):
    kx, ky, kr = c.knob
    changed = replace(c, knob=(kx + 1.1 * kr, ky - 0.4 * kr, kr * rng.uniform(2.4, 2.7)))
    return changed, lambda ch: clip_box(ch.knob[0] - ch.knob[2], ch.knob[1] - ch.knob[2],
                                         ch.knob[0] + ch.knob[2], ch.knob[1] + ch.knob[2], ch.size)


def scoliosis(c: Chest, rng: np.random.Generator):
    changed = replace(c, scoliosis=float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.12) * c.size),
                      spine_halfwidth=c.spine_halfwidth * 1.5)

    def box(ch: Chest) -> Box:
        return clip_box(ch.cx - abs(ch.scoliosis) - ch.spine_halfwidth, 0.12 * ch.size,
                         ch.cx + abs(ch.scoliosis) + ch.spine_halfwidth, 0.95 * ch.size, ch.size)
    return changed, box


def raised_hemidiaphragm(c: Chest, rng: np.random.Generator):
    side = random_side(rng)
    lift = rng.uniform(0.16, 0.18) * c.size
    bases = list(c.dome_base)
    bases[side] -= lift
    heights = list(c.dome_height)
    heights[side] *= 1.6
    changed = replace(c, dome_base=tuple(bases), dome_height=tuple(heights))

    def box(ch: Chest) -> Box:
        top = ch.dome_base[side] - ch.dome_height[side]
        return clip_box(ch.lung_cx[side] - ch.lung_ax[side], top, ch.lung_cx[side] + ch.lung_ax[side],
                         ch.dome_base[side] + lift, ch.size)
    return changed, box


def volume_loss(c: Chest, rng: np.random.Generator):
    # one lung smaller: its apex drops and its lateral wall comes in
    side = random_side(rng)
    ax, ay, cy, lcx = list(c.lung_ax), list(c.lung_ay), list(c.lung_cy), list(c.lung_cx)
    shrink_y = rng.uniform(0.22, 0.26) * ay[side]
    shrink_x = rng.uniform(0.28, 0.32) * ax[side]
    ay[side] -= shrink_y / 2
    cy[side] += shrink_y / 2
    ax[side] -= shrink_x / 2
    lcx[side] += (shrink_x / 2) * (1 if side == 0 else -1)
    changed = replace(c, lung_ax=tuple(ax), lung_ay=tuple(ay), lung_cy=tuple(cy), lung_cx=tuple(lcx))
    return changed, lambda ch: c.lung_box(side)


def union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def lung_point(canvas: Canvas, side: int, fx: float, fy: float) -> tuple[float, float]:
    """A point of a lung: fx from medial (0) to lateral (1), fy from apex (0) to base (1)."""
    c = canvas.chest
    lateral = -1 if side == 0 else 1
    x = c.lung_cx[side] + lateral * (fx - 0.5) * 2 * c.lung_ax[side] * 0.85
    top = c.lung_cy[side] - c.lung_ay[side]
    y = top + fy * (c.dome_base[side] - top)
    return x, y


def air_trapping(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a hyperlucent, thin-walled region in the lower lateral left lung
    c, u = canvas.chest, canvas.chest.unit()
    x, y = lung_point(canvas, 1, rng.uniform(0.65, 0.75), rng.uniform(0.55, 0.62))
    r = 0.75 * u
    layer = canvas.layer()
    inner = canvas.ellipse(x, y, r, r * 0.8)
    rim = canvas.ellipse(x, y, r * 1.15, r * 0.95) & ~inner
    layer[inner] = -0.7 * c.lung_density
    layer[rim] = 0.3
    return add_layer(canvas, layer)


def costophrenic_blunting(canvas: Canvas, rng: np.random.Generator) -> Box:
    # the lateral costophrenic angle filled by a small dense triangle
    c, u = canvas.chest, canvas.chest.unit()
    side = random_side(rng)
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
    return add_layer(canvas, layer)


def pleural_effusion(canvas: Canvas, rng: np.random.Generator) -> Box:
    # basal opacity whose upper edge (meniscus) climbs towards the chest wall; one side or both
    c = canvas.chest
    sides = [0, 1] if rng.random() < 0.3 else [random_side(rng)]
    layer = canvas.layer()
    for side in sides:
        lateral = -1 if side == 0 else 1
        top = c.lung_cy[side] - c.lung_ay[side]
        level = c.dome_base[side] - rng.uniform(0.26, 0.32) * (c.dome_base[side] - top)
        rel = np.clip((canvas.x - c.lung_cx[side]) * lateral / c.lung_ax[side], -1, 1)
        meniscus = level - 0.06 * c.size * (rel + 1) ** 2 / 4
        fluid = canvas.lungs[side] & (canvas.y > meniscus)
        layer[fluid] = 0.2
    return add_layer(canvas, layer)


def pneumonia(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a patchy cluster of soft opacities in one lower-mid zone
    u = canvas.chest.unit()
    side = random_side(rng)
    x0, y0 = lung_point(canvas, side, rng.uniform(0.45, 0.6), rng.uniform(0.5, 0.6))
    layer = canvas.layer()
    for _ in range(7):
        layer += 0.1 * canvas.blob(x0 + rng.normal(0, 0.45 * u), y0 + rng.normal(0, 0.35 * u), 0.28 * u)
    layer = np.minimum(layer, 0.2) * canvas.lungs[side]
    return add_layer(canvas, layer)


def interstitial_pattern(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a reticular net of short lines over both lower lateral zones
    c = canvas.chest
    layer = canvas.layer()
    t = thickness(c, 0.012)
    for side in (0, 1):
        for _ in range(14):
            x, y = lung_point(canvas, side, rng.uniform(0.45, 0.95), rng.uniform(0.55, 0.85))
            angle = rng.uniform(0, np.pi)
            length = rng.uniform(0.03, 0.05) * c.size
            dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
            line(layer, (x - dx, y - dy), (x + dx, y + dy), 0.2, t)
    layer *= canvas.lungs[0] | canvas.lungs[1]
    return add_layer(canvas, layer)


def infiltrate(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a hazy, ill-defined opacity in the right mid zone
    u = canvas.chest.unit()
    x, y = lung_point(canvas, 0, rng.uniform(0.5, 0.6), rng.uniform(0.38, 0.46))
    layer = 0.16 * canvas.blob(x, y, 0.55 * u) * canvas.lungs[0]
    return add_layer(canvas, layer)


def laminar_atelectasis(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a thin horizontal plate in a lower zone
    c = canvas.chest
    side = random_side(rng)
    x, y = lung_point(canvas, side, 0.5, rng.uniform(0.62, 0.7))
    half = 0.085 * c.size * c.scale
    layer = canvas.layer()
    line(layer, (x - half, y), (x + half, y + rng.uniform(-2, 2)), 0.35, thickness(c, 0.018))
    return add_layer(canvas, layer)


def vertebral_osteophytes(canvas: Canvas, rng: np.random.Generator) -> Box:
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
    return add_layer(canvas, layer)


def kyphosis(canvas: Canvas, rng: np.random.Generator) -> Box:
    # synthetic PA sign: the upper thoracic spine widened and dense where the vertebrae overlap
    c = canvas.chest
    layer = canvas.layer()
    top = c.lung_cy[0] - c.lung_ay[0]
    ys = canvas.y
    band = (ys > top) & (ys < top + 0.16 * c.size) & (np.abs(canvas.x - c.spine_x(ys)) < c.spine_halfwidth * 1.9)
    layer[band] = 0.2
    return add_layer(canvas, layer)


def apical_pleural_thickening(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a dense cap over the lung apex, one side or both
    c = canvas.chest
    sides = [0, 1] if rng.random() < 0.5 else [random_side(rng)]
    layer = canvas.layer()
    for side in sides:
        top = c.lung_cy[side] - c.lung_ay[side]
        cap = canvas.lungs[side] & (canvas.y < top + rng.uniform(0.11, 0.12) * c.size)
        layer[cap] = 0.24  # denser would hide the apex from the lung crop
    return add_layer(canvas, layer)


def hilar_enlargement(canvas: Canvas, rng: np.random.Generator) -> Box:
    # both hila enlarged: lobulated dense masses beside the mediastinum
    u = canvas.chest.unit()
    layer = canvas.layer()
    for side in (0, 1):
        x, y = lung_point(canvas, side, 0.12, 0.45)
        for dx, dy in ((0, 0), (0.3, 0.35), (0.1, -0.4)):
            lateral = -1 if side == 0 else 1
            layer += 0.22 * canvas.blob(x + lateral * dx * u, y + dy * u, 0.3 * u)
    return add_layer(canvas, np.minimum(layer, 0.3))


def fibrotic_band(canvas: Canvas, rng: np.random.Generator) -> Box:
    # an oblique dense band from the lateral upper zone towards the hilum
    c = canvas.chest
    side = random_side(rng)
    p0 = lung_point(canvas, side, rng.uniform(0.8, 0.9), rng.uniform(0.2, 0.26))
    p1 = lung_point(canvas, side, rng.uniform(0.3, 0.38), rng.uniform(0.42, 0.48))
    layer = canvas.layer()
    line(layer, p0, p1, 0.3, thickness(c, 0.024))
    return add_layer(canvas, layer)


def nodule(canvas: Canvas, rng: np.random.Generator) -> Box:
    # one well-defined round opacity in a lung
    u = canvas.chest.unit()
    side = random_side(rng)
    x, y = lung_point(canvas, side, rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.6))
    r = rng.uniform(0.5, 0.6) * u
    layer = canvas.layer()
    layer[canvas.ellipse(x, y, r, r)] = 0.38
    return add_layer(canvas, layer)


def calcified_granuloma(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a tiny, very dense dot (calcium) in a lung
    u = canvas.chest.unit()
    side = random_side(rng)
    x, y = lung_point(canvas, side, rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.65))
    r = rng.uniform(0.19, 0.22) * u
    layer = canvas.layer()
    layer[canvas.ellipse(x, y, r, r)] = 0.7
    return add_layer(canvas, layer)


def rib_callus(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a dense spindle on a rib at the lateral chest wall
    u = canvas.chest.unit()
    side = random_side(rng)
    x, y = lung_point(canvas, side, 1.0, rng.uniform(0.3, 0.6))
    layer = canvas.layer()
    angle = 25 if side == 0 else -25
    cv2.ellipse(layer, (int(round(x)), int(round(y))), (int(round(0.7 * u)), int(round(0.32 * u))), angle, 0, 360, 0.45, -1)
    return add_layer(canvas, layer)


def pacemaker(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a generator box below the left clavicle with a lead running to the heart
    c, u = canvas.chest, canvas.chest.unit()
    x = c.cx + rng.uniform(0.24, 0.28) * c.size * c.scale
    y = c.lung_cy[1] - c.lung_ay[1] + rng.uniform(0.06, 0.09) * c.size
    w, h = 0.45 * u, 0.32 * u
    layer = canvas.layer()
    cv2.rectangle(layer, (int(x - w), int(y - h)), (int(x + w), int(y + h)), 0.6, -1)
    hx, hy, hax, hay = c.heart
    lead = [(x - w, y), (c.cx + 0.02 * c.size, hy - 0.6 * hay), (hx - 0.1 * hax, hy + 0.2 * hay)]
    cv2.polylines(layer, [np.array(lead, dtype=np.int32)], False, 0.45, thickness(c, 0.01))
    return add_layer(canvas, layer)


def aortic_atheromatosis(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a thin, very dense arc of calcium along the aortic knob
    c = canvas.chest
    kx, ky, kr = c.knob
    layer = canvas.layer()
    cv2.ellipse(layer, (int(round(kx)), int(round(ky))), (int(round(kr * 1.15)), int(round(kr * 1.15))), 0, 150, 390, 0.6,
                thickness(c, 0.018))
    return add_layer(canvas, layer)


def sternotomy_wires(canvas: Canvas, rng: np.random.Generator) -> Box:
    # cerclage wires stacked along the midline
    c, u = canvas.chest, canvas.chest.unit()
    layer = canvas.layer()
    top = c.lung_cy[0] - 0.15 * c.size
    for k in range(5):
        y = top + k * 0.055 * c.size * c.scale
        cv2.ellipse(layer, (int(round(c.cx)), int(round(y))), (int(round(0.28 * u)), int(round(0.12 * u))), 0, 0, 360, 0.5,
                    thickness(c, 0.01))
    return add_layer(canvas, layer)


def bronchiectasis(canvas: Canvas, rng: np.random.Generator) -> Box:
    # thick-walled ring shadows in one lower medial zone
    c, u = canvas.chest, canvas.chest.unit()
    side = random_side(rng)
    layer = canvas.layer()
    x0, y0 = lung_point(canvas, side, rng.uniform(0.35, 0.45), rng.uniform(0.58, 0.66))
    for _ in range(5):
        x, y = x0 + rng.normal(0, 0.35 * u), y0 + rng.normal(0, 0.3 * u)
        cv2.circle(layer, (int(round(x)), int(round(y))), int(round(0.2 * u)), 0.4, thickness(c, 0.014))
    return add_layer(canvas, layer)


def hiatal_hernia(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a retrocardiac gas bubble with an air-fluid level just above the diaphragm
    c, u = canvas.chest, canvas.chest.unit()
    hx, hy, hax, hay = c.heart
    x, y, r = c.cx + 0.02 * c.size, hy + 0.3 * hay, 0.6 * u
    layer = canvas.layer()
    disc = canvas.ellipse(x, y, r, r * 0.85)
    layer[disc & (canvas.y < y)] = -0.4
    layer[disc & (canvas.y >= y)] = 0.12
    return add_layer(canvas, layer)


def nipple_shadows(canvas: Canvas, rng: np.random.Generator) -> Box:
    # nipple shadows: faint symmetric round opacities over both lower lateral zones
    u = canvas.chest.unit()
    fy = rng.uniform(0.66, 0.72)
    layer = canvas.layer()
    for side in (0, 1):
        x, y = lung_point(canvas, side, 0.72, fy)
        layer[canvas.ellipse(x, y, 0.38 * u, 0.38 * u)] = 0.3
    return add_layer(canvas, layer)


def alveolar_pattern(canvas: Canvas, rng: np.random.Generator) -> Box:
    # confluent opacities spreading out from both hila ("bat wings")
    u = canvas.chest.unit()
    layer = canvas.layer()
    for side in (0, 1):
        x, y = lung_point(canvas, side, 0.35, 0.4)
        layer += 0.3 * canvas.blob(x, y, 0.6 * u)
    return add_layer(canvas, np.minimum(layer, 0.28) * (canvas.lungs[0] | canvas.lungs[1]))


def increased_density(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a uniform veil over the upper half of one lung
    c = canvas.chest
    side = random_side(rng)
    top = c.lung_cy[side] - c.lung_ay[side]
    layer = canvas.layer()
    layer[canvas.lungs[side] & (canvas.y < top + 0.45 * (c.dome_base[side] - top))] = 0.19
    return add_layer(canvas, layer)


def vertebral_compression(canvas: Canvas, rng: np.random.Generator) -> Box:
    # one flattened, dense vertebra in the mid thoracic spine
    c = canvas.chest
    y = c.lung_cy[0] + rng.uniform(-0.04, 0.0) * c.size
    x = float(c.spine_x(y))
    layer = canvas.layer()
    w, h = c.spine_halfwidth * 1.5, 0.016 * c.size
    cv2.rectangle(layer, (int(x - w), int(y - h)), (int(x + w), int(y + h)), 0.38, -1)
    return add_layer(canvas, layer)


def suture_clips(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a line of surgical clips across one upper zone
    u = canvas.chest.unit()
    side = random_side(rng)
    p0 = np.array(lung_point(canvas, side, 0.35, rng.uniform(0.18, 0.22)))
    p1 = np.array(lung_point(canvas, side, 0.85, rng.uniform(0.32, 0.38)))
    layer = canvas.layer()
    for t in np.linspace(0, 1, 6):
        x, y = p0 + t * (p1 - p0)
        cv2.rectangle(layer, (int(x - 0.12 * u), int(y - 0.05 * u)), (int(x + 0.12 * u), int(y + 0.05 * u)), 0.55, -1)
    return add_layer(canvas, layer)


def supra_aortic_widening(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a widened upper mediastinum on the right, above the aortic knob
    c, u = canvas.chest, canvas.chest.unit()
    x = c.cx - rng.uniform(0.06, 0.075) * c.size * c.scale
    y = c.lung_cy[0] - c.lung_ay[0] + 0.12 * c.size
    layer = canvas.layer()
    layer[canvas.ellipse(x, y, 0.55 * u, 0.8 * u) & (canvas.x < c.cx)] = 0.28
    return add_layer(canvas, layer)


def mass(canvas: Canvas, rng: np.random.Generator) -> Box:
    # a large lobulated opacity in one lung, about three times a nodule's width
    u = canvas.chest.unit()
    side = random_side(rng)
    x, y = lung_point(canvas, side, rng.uniform(0.4, 0.7), rng.uniform(0.3, 0.55))
    r = rng.uniform(1.1, 1.3) * u
    layer = canvas.layer()
    for dx, dy in ((0.0, 0.0), (0.45, 0.25), (-0.35, 0.3)):
        layer[canvas.ellipse(x + dx * r, y + dy * r, 0.75 * r, 0.7 * r)] = 0.3
    return add_layer(canvas, layer)


def pneumothorax(canvas: Canvas, rng: np.random.Generator) -> Box:
    # air between lung and chest wall: a dark band without markings along the lateral upper lung,
    # bounded by the thin bright line of the collapsed lung's edge
    c = canvas.chest
    side = random_side(rng)
    lateral = -1 if side == 0 else 1
    edge = c.lung_cx[side] + lateral * rng.uniform(0.2, 0.35) * c.lung_ax[side]
    top = c.lung_cy[side] - c.lung_ay[side]
    upper = canvas.y < top + rng.uniform(0.6, 0.7) * (c.dome_base[side] - top)
    beyond = (canvas.x - edge) * lateral
    layer = canvas.layer()
    layer[canvas.lungs[side] & upper & (beyond > 0)] = -0.8 * c.lung_density
    layer[canvas.lungs[side] & upper & (np.abs(beyond) <= max(1.0, 0.008 * c.size))] = 0.3
    return add_layer(canvas, layer)


def mask_box(mask: np.ndarray) -> Box:
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def draw_lateral(size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one lateral film: a side view (one lung field, heart in front, spine behind)."""
    chest = random_chest(size, rng)
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
    return expose(image, rng)


def expose(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


Draw = Callable[["Canvas", np.random.Generator], Box]


def draw_frontal(findings: Sequence[str], size: int, rng: np.random.Generator, *,
                 shape_changes: Mapping[str, ShapeChange], painters: Mapping[str, Draw],
                 ) -> tuple[np.ndarray, dict[str, Box], dict[str, Box]]:
    """Draw one frontal (PA or AP) film carrying ``findings``.

    Each finding must name a shape change or a painter (a dataset's own label names, mapped by its
    plugin). Shape changes apply in the order given, then the film is drawn, then painters run in
    the order given. Returns the 12-bit uint16 image, each finding's box and the two lung boxes
    (``right``/``left``, the patient's sides).
    """
    unknown = [f for f in findings if f not in shape_changes and f not in painters]
    if unknown:
        raise ValueError(f"draw_frontal: no shape change or painter for {unknown}")
    chest = random_chest(size, rng)
    box_of_shape: dict[str, Callable[[Chest], Box]] = {}
    for finding in findings:
        if finding in shape_changes:
            chest, box_of_shape[finding] = shape_changes[finding](chest, rng)
    canvas = render_frontal(chest, rng)
    boxes = {finding: fn(chest) for finding, fn in box_of_shape.items()}
    for finding in findings:
        if finding in painters:
            boxes[finding] = painters[finding](canvas, rng)
    lungs = {"right": mask_box(canvas.lungs[0]), "left": mask_box(canvas.lungs[1])}
    return expose(canvas.image, rng), boxes, lungs


def to_8bit(image: np.ndarray) -> np.ndarray:
    """A 12-bit film as 8-bit grayscale (the top 8 of its 12 bits)."""
    return (np.asarray(image, dtype=np.uint16) >> 4).astype(np.uint8)


def encode_png(image: np.ndarray, where: str) -> bytes:
    """PNG bytes of a uint8 or uint16 grayscale film, with the fixed compression settings."""
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION,
                                          cv2.IMWRITE_PNG_STRATEGY, PNG_STRATEGY])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {where} as PNG")
    return data.tobytes()
