"""Scoring heatmaps against where findings really are, and writing the scores as leaderboard rows.

Coordinates: a heatmap is (S, S) over the model's input, which is the image's crop box
(x0, y0, x1, y1 in original pixels, exclusive ends) stretched to S x S. A box in original pixels
maps to input pixels by ``(x - x0) * S / (x1 - x0)`` (and the same for y). Pixel (i, j) of the map
covers [j, j + 1) x [i, i + 1); it is inside a box when its centre is.

Metrics, per (image, finding with a box), on the ensemble's mean map:

- ``cam_pointing`` — the pointing game (Zhang et al. 2018): a hit when the map's maximum lies in the
  finding's box grown by ``tolerance`` pixels on every side. The tolerance is the original 15 px at
  224 px, scaled with the input size (4.3 px at 64 px). Ties for the maximum are resolved by their
  centroid. An all-zero map (no positive evidence anywhere) is a miss.
  Its chance level (a random peak) is the grown box's share of the map: ``cam_scores.csv`` and
  ``explain.json`` report it beside the hit rate (``pointing_chance``).
- ``cam_mass_in_box`` — the share of the map's total mass inside the box (no tolerance). Random
  maps score the box's share of the image; an all-zero map has no mass and is skipped (counted).
- ``cam_mass_in_lungs`` — the share inside the union of the lung-field boxes, where they are known
  (the demo corpus writes them).

Leaderboard rows (entry = the explainer's name, entry_kind ``explainer``): one per label and
metric, plus ``__global__`` pooled over every scored finding (a micro mean: the acceptance
figure "hit rate over all findings"); ``n_positive`` is the number of findings scored; the 95%
interval is a bootstrap over patients (1000 resamples, seed 0).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from mlbench.results import leaderboard
from mlbench.foundations.missing import is_unknown

POINTING_TOLERANCE_AT_224 = 15.0
CAM_PREFIX = "cam_"
BOX_COLUMNS = ("x0", "y0", "x1", "y1")
BOOTSTRAP_RESAMPLES = 1000

Box = tuple[float, float, float, float]


def default_tolerance(size: int) -> float:
    """The pointing-game tolerance in input pixels: 15 px at 224 px, scaled with ``size``."""
    return POINTING_TOLERANCE_AT_224 * size / 224.0


def box_to_input(box: Sequence[float], crop: Sequence[float], size: int) -> Box | None:
    """Map ``box`` (original pixels) into the (size x size) input made from ``crop``; None if outside it."""
    bx0, by0, bx1, by1 = (float(v) for v in box)
    cx0, cy0, cx1, cy1 = (float(v) for v in crop)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f"crop box {tuple(crop)} is empty")
    sx, sy = size / (cx1 - cx0), size / (cy1 - cy0)
    x0, x1 = np.clip([(bx0 - cx0) * sx, (bx1 - cx0) * sx], 0, size)
    y0, y1 = np.clip([(by0 - cy0) * sy, (by1 - cy0) * sy], 0, size)
    if x1 <= x0 or y1 <= y0:
        return None
    return float(x0), float(y0), float(x1), float(y1)


def _centres(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) + 0.5


def box_mask(shape: tuple[int, int], boxes: Iterable[Box]) -> np.ndarray:
    """Pixels whose centre lies in any of ``boxes`` (input pixels, exclusive ends)."""
    h, w = shape
    ys, xs = _centres(h)[:, None], _centres(w)[None, :]
    mask = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return mask


def peak(heatmap: np.ndarray) -> tuple[float, float] | None:
    """(x, y) of the map's maximum in input pixels (pixel centres; ties: their centroid); None if all zero."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    top = heatmap.max()
    if not top > 0:
        return None
    ys, xs = np.nonzero(heatmap >= top * (1 - 1e-6))
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def pointing_hit(heatmap: np.ndarray, box: Box, tolerance: float) -> bool:
    """Whether the map's maximum lies in ``box`` grown by ``tolerance`` pixels."""
    where = peak(heatmap)
    if where is None:
        return False
    x, y = where
    x0, y0, x1, y1 = box
    return (x0 - tolerance <= x <= x1 + tolerance) and (y0 - tolerance <= y <= y1 + tolerance)


def pointing_chance(box: Box, shape: tuple[int, int], tolerance: float) -> float:
    """The hit rate of a peak placed uniformly at random: the grown box's share of the map."""
    h, w = shape
    x0, y0, x1, y1 = box
    width = min(w, x1 + tolerance) - max(0.0, x0 - tolerance)
    height = min(h, y1 + tolerance) - max(0.0, y0 - tolerance)
    return float(max(0.0, width) * max(0.0, height) / (w * h))


def mass_inside(heatmap: np.ndarray, mask: np.ndarray) -> float | None:
    """Share of the map's mass on ``mask``; None for a map without mass."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    total = heatmap.sum()
    if not total > 0:
        return None
    return float(heatmap[mask].sum() / total)


def read_boxes(path: str | Path, key: str = "label") -> pd.DataFrame:
    """Read a box sidecar: image_id, ``key`` (label or side), x0, y0, x1, y1 (original pixels)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such box file")
    frame = pd.read_csv(path, dtype={"image_id": str, key: str})
    missing = [c for c in ("image_id", key, *BOX_COLUMNS) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected image_id, {key}, x0, y0, x1, y1")
    coords = frame[list(BOX_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    bad = coords.isna().any(axis=1) | (coords["x1"] <= coords["x0"]) | (coords["y1"] <= coords["y0"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: row {row + 2} has an invalid box {frame.iloc[row][list(BOX_COLUMNS)].tolist()}; "
                         "expected numbers with x0 < x1 and y0 < y1")
    frame[list(BOX_COLUMNS)] = coords
    return frame


def bootstrap_ci(values: np.ndarray, groups: Sequence[Any], *, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> tuple[float | None, float | None]:
    """95% percentile interval of the pooled mean, resampling ``groups`` (patients) with replacement."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None, None
    codes, uniques = pd.factorize(pd.Series(list(groups), dtype=object))
    sums = np.bincount(codes, weights=values, minlength=len(uniques))
    counts = np.bincount(codes, minlength=len(uniques)).astype(np.float64)
    picks = np.random.default_rng(seed).integers(0, len(uniques), size=(resamples, len(uniques)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


METRIC_COLUMNS = {"cam_pointing": "hit", "cam_mass_in_box": "mass_in_box", "cam_mass_in_lungs": "mass_in_lungs"}


def summarize(scores: pd.DataFrame, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per label (benchmark order) and ``__global__``: metric, value, CI and count for each cam_ metric.

    ``scores`` has one row per scored finding: patient_id, label, hit, mass_in_box, mass_in_lungs.
    """
    out: list[dict[str, Any]] = []
    groups = [(label, scores[scores["label"] == label]) for label in labels] + [(leaderboard.GLOBAL_LABEL, scores)]
    for label, part in groups:
        for metric, column in METRIC_COLUMNS.items():
            if column not in part.columns:
                continue
            usable = part[part[column].notna()]
            if usable.empty:
                continue
            values = usable[column].astype(float).to_numpy()
            low, high = bootstrap_ci(values, usable["patient_id"].tolist())
            out.append({"label": label, "metric": metric, "value": float(values.mean()), "ci_low": low,
                        "ci_high": high, "n_positive": int(len(values))})
    return out


def leaderboard_rows(summary: Sequence[Mapping[str, Any]], *, explainer: str, plugin_version: str,
                     base: Mapping[str, Any], device: str, wall_time_s: float | None) -> list[dict[str, Any]]:
    """Complete leaderboard rows (every column) for the ``summarize`` output."""
    plugins = json.loads(base.get("plugin_versions") or "{}")
    plugins[f"explainer:{explainer}"] = plugin_version
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []
    for item in summary:
        row = {c: None for c in leaderboard.COLUMNS}
        row.update({k: v for k, v in base.items() if k in leaderboard.COLUMNS})
        row.update(entry=explainer, entry_kind="explainer", label=item["label"], metric=item["metric"],
                   value=item["value"], ci_low=item["ci_low"], ci_high=item["ci_high"],
                   n_positive=item["n_positive"], source="run", plugin_versions=json.dumps(plugins, sort_keys=True),
                   device=device, wall_time_s=wall_time_s, created_at=created,
                   schema_version=leaderboard.SCHEMA_VERSION)
        if not is_unknown(row["seed"]):
            row["seed"] = int(row["seed"])
        rows.append(row)
    return rows


def superseded_by(rows: Sequence[Mapping[str, Any]]):
    """The old rows a new explain replaces: this run's cam_ rows of the same explainer (a mask function)."""
    replaced = {(r["run_id"], r["entry"]) for r in rows}

    def mask(old: pa.Table) -> pa.Array:
        frame = old.select(["run_id", "entry", "entry_kind", "metric"]).to_pandas()
        stale = (frame["entry_kind"] == "explainer") & frame["metric"].str.startswith(CAM_PREFIX) & pd.Series(
            [(run, entry) in replaced for run, entry in zip(frame["run_id"], frame["entry"])], index=frame.index)
        return pa.array(stale.to_numpy(dtype=bool))

    return mask
