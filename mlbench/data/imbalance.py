"""Standard multilabel imbalance measures of a 0/1 label matrix.

Definitions of Charte et al. (Neurocomputing 163, 2015; "Dealing with difficult minority labels in
imbalanced multilabel data sets", Neurocomputing 326, 2019), computed as the R package mldr does:

- ``IRLbl(l) = max_k count(k) / count(l)``: 1 for the most frequent label, larger for rarer ones.
- ``MaxIR = max_l IRLbl(l)``, ``MeanIR = mean_l IRLbl(l)``.
- ``CVIR = sd(IRLbl) / MeanIR`` with the sample standard deviation (n - 1), as R's ``sd``.
- ``SCUMBLE``: the mean over instances of ``1 - geometric_mean(IRLbl of the instance's active
  labels) / arithmetic_mean(same)``; 0 for instances with fewer than two labels. High values mean
  rare labels mostly appear together with frequent ones.
- ``cardinality``: mean active labels per instance; ``density = cardinality / n_labels``.

Labels with no positive instance have no IRLbl; they are left out of every measure and listed in
``absent_labels`` (a split that lacks a label should say so, not report an infinite ratio).

Unknown cells (``known``, a bool mask beside the matrix, False where a label is unknown): each
label is counted on its known cells only, so a label's frequency is its prevalence among them,
``p(l) = count(l) / known(l)``, and ``IRLbl(l) = max_k p(k) / p(l)``, which is the count ratio
above when every cell is known. An unknown cell is never active (SCUMBLE, cardinality);
``density`` is the active cells' share of the known cells. Without a mask (or with every cell
known) every value is exactly the one the count formulas give.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from mlbench.data.labels import check_known


@dataclass(frozen=True)
class ImbalanceReport:
    """The measures of one label matrix; ``irlbl`` maps each present label to its IRLbl."""

    n_instances: int
    n_labels: int
    irlbl: dict[str, float]
    max_ir: float
    mean_ir: float
    cvir: float
    scumble: float
    cardinality: float
    density: float
    absent_labels: tuple[str, ...]

    def as_dict(self) -> dict:
        out = asdict(self)
        out["absent_labels"] = list(self.absent_labels)
        return out


def _as_matrix(Y: np.ndarray) -> np.ndarray:
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"label matrix must be 2-D (instances, labels), got shape {Y.shape}")
    if Y.size and not np.isin(Y, (0, 1)).all():
        raise ValueError("label matrix must hold only 0 and 1")
    return Y.astype(bool, copy=False)


def label_frequencies(Y: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """What IRLbl compares per label: positive counts, or with unknown cells the prevalence among known cells."""
    Y = _as_matrix(Y)
    known = check_known(known, Y.shape, "imbalance")
    counts = Y.sum(axis=0).astype(float)
    if known is None:
        return counts
    cells = known.sum(axis=0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cells > 0, (Y & known).sum(axis=0) / np.maximum(cells, 1), 0.0)


def irlbl(Y: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """IRLbl per label (NaN for a label with no positive instance); ``known``: the module docstring."""
    counts = label_frequencies(Y, known)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = counts.max(initial=0.0) / counts
    ratios[counts == 0] = np.nan
    return ratios


def scumble(Y: np.ndarray, known: np.ndarray | None = None) -> float:
    """Mean per-instance SCUMBLE over the labels present in ``Y`` (see the module docstring)."""
    Y = _as_matrix(Y)
    if Y.shape[0] == 0:
        return float("nan")
    ratios = np.nan_to_num(irlbl(Y, known), nan=1.0)
    active = Y.sum(axis=1)
    # log of IRLbl on active cells, 0 elsewhere: the row sum over active labels is the log-product.
    log_products = (Y * np.log(ratios)).sum(axis=1)
    sums = (Y * ratios).sum(axis=1)
    per_instance = np.zeros(Y.shape[0])
    many = active > 1
    geometric = np.exp(log_products[many] / active[many])
    arithmetic = sums[many] / active[many]
    per_instance[many] = 1.0 - geometric / arithmetic
    return float(per_instance.mean())


def imbalance_report(Y: np.ndarray, labels: Sequence[str], known: np.ndarray | None = None) -> ImbalanceReport:
    """Every measure of the module docstring for ``Y`` (instances x labels, 0/1) named by ``labels``;
    ``known``: False at unknown cells (None: every cell known)."""
    Y = _as_matrix(Y)
    if len(labels) != Y.shape[1]:
        raise ValueError(f"{len(labels)} label names for a matrix with {Y.shape[1]} columns")
    known = check_known(known, Y.shape, "imbalance_report")
    if known is not None:
        Y = Y & known  # an unknown cell is never active
    ratios = irlbl(Y, known)
    present = ~np.isnan(ratios)
    kept = ratios[present]
    n, n_labels = Y.shape
    cardinality = float(Y.sum() / n) if n else float("nan")
    cells = n * n_labels if known is None else int(known.sum())
    density = (cardinality / n_labels if known is None else float(Y.sum() / cells)) if n_labels and cells else \
        float("nan")
    if kept.size:
        mean_ir = float(kept.mean())
        max_ir = float(kept.max())
        cvir = float(kept.std(ddof=1) / mean_ir) if kept.size > 1 else 0.0
    else:
        mean_ir = max_ir = cvir = float("nan")
    return ImbalanceReport(
        n_instances=int(n),
        n_labels=int(n_labels),
        irlbl={label: float(r) for label, r, ok in zip(labels, ratios, present) if ok},
        max_ir=max_ir,
        mean_ir=mean_ir,
        cvir=cvir,
        scumble=scumble(Y[:, present], None if known is None else known[:, present]) if n else float("nan"),
        cardinality=cardinality,
        density=density,
        absent_labels=tuple(label for label, ok in zip(labels, present) if not ok),
    )


def imbalance_by_split(Y: np.ndarray, labels: Sequence[str], splits: np.ndarray,
                       known: np.ndarray | None = None) -> dict[str, ImbalanceReport]:
    """The report for the whole matrix (``all``) and for each split name in ``splits`` (train/val/test)."""
    splits = np.asarray(splits)
    reports = {"all": imbalance_report(Y, labels, known)}
    for name in ("train", "val", "test"):
        mask = splits == name
        if mask.any():
            reports[name] = imbalance_report(np.asarray(Y)[mask], labels,
                                             None if known is None else np.asarray(known)[mask])
    return reports
