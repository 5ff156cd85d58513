"""From a dataset's raw findings to a benchmark's 0/1 label matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlbench.contracts.benchmark import Benchmark
from mlbench.data import RECORD_COLUMNS, Records, Skip


def label_matrix(records: Records, benchmark: Benchmark) -> tuple[pd.DataFrame, np.ndarray, list[Skip]]:
    """Map each image's findings to the benchmark's labels.

    Returns the kept images (RECORD_COLUMNS and any extra columns the reader gave), the
    (n_images, n_labels) uint8 matrix in the benchmark's label order, and one Skip per image left
    with no benchmark label (the paper drops them, Section 3.1).
    """
    index = {label: j for j, label in enumerate(benchmark.labels)}
    rows: list[list[int]] = []
    keep: list[bool] = []
    skipped: list[Skip] = []
    for image_id, findings in zip(records.frame["image_id"], records.frame["findings"]):
        targets = benchmark.targets(findings)
        unknown = [t for t in targets if t not in index]
        if unknown:
            raise ValueError(
                f"benchmark '{benchmark.name}': targets() returned labels outside its label set: {unknown}")
        if not targets and not benchmark.keep_unlabelled:
            keep.append(False)
            skipped.append(Skip(str(image_id), "no_benchmark_label",
                                "none of its findings is a benchmark label"))
            continue
        keep.append(True)
        rows.append([index[t] for t in targets])
    frame = records.frame.loc[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    Y = np.zeros((len(rows), len(benchmark.labels)), dtype=np.uint8)
    for i, cols in enumerate(rows):
        Y[i, cols] = 1
    assert all(c in frame.columns for c in RECORD_COLUMNS)
    return frame, Y, skipped
