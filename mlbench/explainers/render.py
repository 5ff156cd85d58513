"""PNG panels: the X-ray with an ensemble heatmap over it, and the per-pixel uncertainty map.

The paper (Section 3.5, Figs. 9-11) overlays the averaged Grad-CAM map on the X-ray "with 10%
transparency" and titles it with the label, the ensemble's probability and how many models agree.
Here the overlay's opacity follows the map: 0.9 at the map's maximum (the paper's 10%
transparency) fading to 0 where the map is 0, so the film stays readable where the models see
nothing. Colour scale ``jet`` from 0 (blue) to 1 (red), fixed so panels compare with each other.
Matplotlib runs headless (the Agg canvas, no pyplot state); files go through :mod:`mlbench.foundations.io`.
"""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import Sequence

import numpy as np

from mlbench.foundations.io import write_bytes

PEAK_OPACITY = 0.9
HEATMAP_CMAP = "jet"
STD_CMAP = "magma"
STD_SCALE_MAX = 0.5
STD_COLUMNS = 4
PANEL_INCHES = 4.0
DPI = 100

Box = tuple[float, float, float, float]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    # Fixed layouts (no tight bounding box: it draws twice) and light compression: rendering, not
    # Grad-CAM, was most of an explain call's time with many labels per image.
    buffer = _io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def panel_title(label: str, probability: float, agreeing: int, n_models: int) -> str:
    """The paper's title: label, ensemble probability and inter-model agreement."""
    return f"{label} — p={probability:.2f} — {agreeing}/{n_models} models"


def _draw_boxes(axes, boxes: Sequence[Box], scale: tuple[float, float], color: str, label: str) -> None:
    from matplotlib.patches import Rectangle

    sx, sy = scale
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        axes.add_patch(Rectangle((x0 * sx - 0.5, y0 * sy - 0.5), (x1 - x0) * sx, (y1 - y0) * sy, fill=False,
                                 edgecolor=color, linewidth=1.5, linestyle="--", label=label if i == 0 else None))


def overlay_png(xray: np.ndarray, heatmap: np.ndarray, title: str, *, boxes: Sequence[Box] = (),
                box_label: str = "finding box") -> bytes:
    """One panel: ``xray`` (H, W) in [0, 1] with ``heatmap`` (h, w) stretched over it.

    The map is shown divided by its maximum: an ensemble mean of maps that peak in different places
    never reaches 1 and would fade out, while where the models disagree is the std map's job.
    ``boxes`` are in heatmap pixels (the model input's), drawn dashed for reference.
    """
    from matplotlib import colormaps

    xray = np.asarray(xray, dtype=np.float32)
    heat = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, None)
    heat = heat / heat.max() if heat.max() > 0 else heat
    h, w = xray.shape
    rgba = colormaps[HEATMAP_CMAP](heat)
    rgba[..., 3] = PEAK_OPACITY * heat
    figure = _figure(PANEL_INCHES + 0.9, PANEL_INCHES * h / w + 0.45)
    top = 1 - 0.4 / figure.get_figheight()
    axes = figure.add_axes((0.01, 0.01, PANEL_INCHES / figure.get_figwidth() - 0.02, top - 0.02))
    axes.imshow(xray, cmap="gray", vmin=0.0, vmax=1.0, interpolation="antialiased")
    shown = axes.imshow(rgba, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="bilinear")
    shown.set_cmap(HEATMAP_CMAP)
    shown.set_clim(0.0, 1.0)
    if boxes:
        _draw_boxes(axes, boxes, (w / heat.shape[1], h / heat.shape[0]), "lime", box_label)
        axes.legend(loc="lower right", fontsize=7, framealpha=0.6)
    axes.set_title(title, fontsize=10)
    axes.set_axis_off()
    bar = figure.add_axes((PANEL_INCHES / figure.get_figwidth() + 0.01, 0.1, 0.035, top - 0.2))
    figure.colorbar(shown, cax=bar, label="ensemble mean map / its maximum")
    return _png(figure)


def std_png(xray: np.ndarray, maps: Sequence[tuple[str, np.ndarray]], n_models: int) -> bytes:
    """The per-pixel standard deviation across models, one panel per explained label.

    The colour scale runs from 0 to 0.5, the largest std that maps in [0, 1] can have, so panels
    compare; the opacity follows the std (full from 0.25), so calm regions show the film.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    xray = np.asarray(xray, dtype=np.float32)
    n = max(1, len(maps))
    columns = min(n, STD_COLUMNS)
    rows = -(-n // columns)
    h, w = xray.shape
    figure = _figure(PANEL_INCHES * columns + 1.0, (PANEL_INCHES * h / w + 0.6) * rows)
    figure.subplots_adjust(left=0.01, right=1 - 1.0 / figure.get_figwidth(), bottom=0.01,
                           top=1 - 0.45 / figure.get_figheight(), wspace=0.04, hspace=0.6 / (PANEL_INCHES * h / w))
    for i, (label, std) in enumerate(maps):
        std = np.asarray(std, dtype=np.float32)
        rgba = colormaps[STD_CMAP](np.clip(std / STD_SCALE_MAX, 0.0, 1.0))
        rgba[..., 3] = PEAK_OPACITY * np.clip(std / (STD_SCALE_MAX / 2), 0.0, 1.0)
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.imshow(xray, cmap="gray", vmin=0.0, vmax=1.0)
        axes.imshow(rgba, extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="bilinear")
        axes.set_title(f"{label}\nstd across {n_models} models: max {float(std.max()):.2f}", fontsize=9)
        axes.set_axis_off()
    scale = ScalarMappable(Normalize(0.0, STD_SCALE_MAX), cmap=STD_CMAP)
    bar = figure.add_axes((1 - 0.85 / figure.get_figwidth(), 0.1, 0.25 / figure.get_figwidth(), 0.8))
    figure.colorbar(scale, cax=bar, label="std of the models' maps")
    return _png(figure)


def write_png(path: str | Path, data: bytes) -> None:
    write_bytes(path, data)
