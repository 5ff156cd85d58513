"""A recipe's post-hoc adjuster applied to a run: fitted on each backbone's validation outputs, applied to
its validation and test outputs, before the ensembles combine them and thresholds are tuned.

Each backbone gets its own fit (its own temperature, its own head), so an ensemble combines
adjusted models. The raw outputs stay in each backbone's folder; the run's predictions.parquet
holds the adjusted ones, and the manifest records every fit.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from torch import nn

from mlbench.contracts.benchmark import Recipe
from mlbench.contracts.registry import Registry
from mlbench.models.adjusters import HeadStats, find_head, head_stats

NO_ADJUSTER = "none"


def head_record(model: nn.Module, num_labels: int) -> dict[str, list[float]] | None:
    """The classification head's per-label weight norms and biases (what ``tau-norm`` needs), or None."""
    try:
        stats = head_stats(find_head(model, num_labels))
    except ValueError:
        return None
    return {"weight_norm": [float(v) for v in stats.weight_norm], "bias": [float(v) for v in stats.bias]}


def head_from_record(record: Any, num_labels: int) -> HeadStats | None:
    """A head record read back from a backbone's done file; anything else is no head."""
    if not isinstance(record, dict):
        return None
    norms, bias = record.get("weight_norm"), record.get("bias")
    if not (isinstance(norms, list) and isinstance(bias, list) and len(norms) == len(bias) == num_labels):
        return None
    try:
        return HeadStats(weight_norm=np.asarray(norms, dtype=np.float64), bias=np.asarray(bias, dtype=np.float64))
    except (TypeError, ValueError):
        return None


def adjust_backbones(registry: Registry, recipe: Recipe, probs: dict[str, np.ndarray], y_val: np.ndarray,
                     train_counts: Sequence[int], n_train: int, heads: Sequence[HeadStats | None]
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``probs[split]`` (backbones, images, labels) with the recipe's adjuster applied per backbone, and the
    manifest's record of the fits ({} without an adjuster)."""
    if recipe.adjuster == NO_ADJUSTER:
        return probs, {}
    adjusted = {split: np.empty_like(values, dtype=np.float64) for split, values in probs.items()}
    fits = {}
    for i, backbone in enumerate(recipe.backbones):
        adjuster = registry.create("adjuster", recipe.adjuster, val_probs=probs["val"][i], val_targets=y_val,
                                   label_counts=list(train_counts), n_samples=n_train, head=heads[i],
                                   **dict(recipe.adjuster_options))
        for split, values in probs.items():
            adjusted[split][i] = np.clip(adjuster.apply(values[i]), 0.0, 1.0)
        fits[backbone] = adjuster.fitted()
    return adjusted, {"name": recipe.adjuster, "options": dict(recipe.adjuster_options), "fitted_on": "val",
                      "per_backbone": fits}


def refit_run_adjusters(rundir: Any, registry: Registry, recipe: Recipe, labels: Sequence[str]) -> list | None:
    """The adjusters a finished run fitted, fitted again from what it stored: each backbone's raw validation
    outputs (its folder's predictions), the split's validation labels and training counts, and its head.
    The fit is deterministic, so new images (``mlbench predict``) are adjusted as the run's test images were.
    None when the recipe has no adjuster."""
    from mlbench.results import predictions

    if recipe.adjuster == NO_ADJUSTER:
        return None
    from mlbench.foundations.io import read_json

    split = rundir.split()
    usable = ~split["image_id"].astype(str).isin(rundir.skips("preprocess"))
    val = split[(split["split"] == "val") & usable]
    train = split[(split["split"] == "train") & usable]
    ids, y_val = val["image_id"].astype(str).tolist(), val[list(labels)].to_numpy(dtype=np.uint8)
    counts = train[list(labels)].to_numpy().sum(axis=0).astype(int).tolist()
    fitted = []
    for backbone in recipe.backbones:
        frame = predictions.read(rundir.backbone_predictions(backbone),
                                 [predictions.Coverage("val", ids, [backbone], list(labels))])
        done = rundir.backbone_done(backbone)
        head = head_from_record(read_json(done).get("head"), len(labels)) if done.is_file() else None
        fitted.append(registry.create("adjuster", recipe.adjuster, val_probs=predictions.wide(frame, backbone, ids,
                                                                                             list(labels)),
                                      val_targets=y_val, label_counts=counts, n_samples=len(train), head=head,
                                      **dict(recipe.adjuster_options)))
    return fitted
