"""From a dataset's raw findings to a benchmark's 0/1 label matrix and, when some cells are unknown, its known-mask.

Unknown cells are a bool mask *beside* the 0/1 matrix, not NaN in a float matrix: the matrix stays
uint8 everywhere (split.parquet's columns, stratification, positive counts are plain sums, since an
unknown cell holds 0 and so is never a positive), a dataset without unknown cells carries no mask at
all (``known is None``) and runs exactly the code it always ran, and no sum can turn NaN by accident.
Each consumer that must leave unknown cells out (losses, metrics, imbalance measures, samplers) takes
the mask explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlbench.contracts.benchmark import Benchmark
from mlbench.data import RECORD_COLUMNS, UNKNOWN_COLUMN, Records, Skip


@dataclass
class LabelMatrix:
    """The kept images, their (n_images, n_labels) uint8 0/1 matrix (0 at unknown cells) and the known-mask
    (bool, True where the cell is known; None when every cell is), and one Skip per image left out."""

    frame: pd.DataFrame
    Y: np.ndarray
    known: np.ndarray | None
    skipped: list[Skip]


def label_matrices(records: Records, benchmark: Benchmark) -> LabelMatrix:
    """Map each image's findings (and unknown findings, :data:`mlbench.data.UNKNOWN_COLUMN`) to the benchmark's labels.

    A label that is a target of a positive finding is a known positive even when an unknown finding
    maps to it too; any other target of the unknown findings is an unknown cell. An image with no
    benchmark label is dropped (the paper drops them, Section 3.1) unless the benchmark keeps
    unlabelled images; an image whose every cell is unknown says nothing and is dropped too.
    """
    index = {label: j for j, label in enumerate(benchmark.labels)}
    has_unknown = UNKNOWN_COLUMN in records.frame.columns
    unknown_findings = records.frame[UNKNOWN_COLUMN] if has_unknown else [()] * len(records.frame)
    rows: list[list[int]] = []
    unknown_rows: list[list[int]] = []
    keep: list[bool] = []
    skipped: list[Skip] = []
    for image_id, findings, unsure in zip(records.frame["image_id"], records.frame["findings"], unknown_findings):
        targets = benchmark.targets(findings)
        unknown = sorted(benchmark.targets(unsure) - set(targets)) if unsure else []
        outside = [t for t in list(targets) + unknown if t not in index]
        if outside:
            raise ValueError(
                f"benchmark '{benchmark.name}': targets() returned labels outside its label set: {outside}")
        if not targets and not benchmark.keep_unlabelled:
            keep.append(False)
            skipped.append(Skip(str(image_id), "no_benchmark_label",
                                "none of its findings is a benchmark label"))
            continue
        if unknown and len(unknown) == len(index) and not targets:
            keep.append(False)
            skipped.append(Skip(str(image_id), "no_known_label", "every benchmark label of it is unknown"))
            continue
        keep.append(True)
        rows.append([index[t] for t in targets])
        unknown_rows.append([index[t] for t in unknown])
    frame = records.frame.loc[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    Y = np.zeros((len(rows), len(benchmark.labels)), dtype=np.uint8)
    for i, cols in enumerate(rows):
        Y[i, cols] = 1
    known = None
    if any(unknown_rows):
        known = np.ones(Y.shape, dtype=bool)
        for i, cols in enumerate(unknown_rows):
            known[i, cols] = False
    assert all(c in frame.columns for c in RECORD_COLUMNS)
    return LabelMatrix(frame, Y, known, skipped)


def label_matrix(records: Records, benchmark: Benchmark) -> tuple[pd.DataFrame, np.ndarray, list[Skip]]:
    """(kept images, 0/1 matrix, skips) of :func:`label_matrices`, for callers that read no unknown cells
    (an unknown cell is 0 in the matrix: not a positive)."""
    out = label_matrices(records, benchmark)
    return out.frame, out.Y, out.skipped


def known_counts(known: np.ndarray | None, n_rows: int, n_labels: int) -> np.ndarray:
    """Known cells per label (int64): ``n_rows`` for every label when ``known`` is None."""
    if known is None:
        return np.full(n_labels, n_rows, dtype=np.int64)
    known = np.asarray(known, dtype=bool)
    if known.shape != (n_rows, n_labels):
        raise ValueError(f"known has shape {known.shape}; expected ({n_rows}, {n_labels})")
    return known.sum(axis=0).astype(np.int64)


def check_known(known: np.ndarray | None, shape: tuple[int, ...], who: str) -> np.ndarray | None:
    """``known`` as a bool array of ``shape``, or None when it is None or every cell is known (the plain path)."""
    if known is None:
        return None
    known = np.asarray(known)
    if known.shape != tuple(shape) or not (known.dtype == bool or np.isin(known, (0, 1)).all()):
        raise ValueError(f"{who}: known must be a 0/1 (bool) mask of shape {tuple(shape)}, got {known.dtype} "
                         f"{known.shape}")
    known = known.astype(bool, copy=False)
    return None if known.all() else known
