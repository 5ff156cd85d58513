"""Patient-grouped multilabel stratified splits, their hash, and the split.parquet layout.

The method: aggregate each patient's labels (OR over their images), order patients by id, shuffle
them with ``numpy.random.RandomState(seed)``, assign them to train/val/test with the iterative
stratification of Sechidis et al. (2011) as implemented by iterative-stratification (``iterstrat``),
asked directly for three subsets, then give every image its patient's subset. Nothing depends on
row order, and RandomState's stream is fixed across numpy versions and machines, so the split is a
function of (content, fractions, seed). On PadChest's padchest-specific set (58,909 patients,
35 labels) this takes about half a second on one core.

A benchmark may pin its test set (``Benchmark.fixed_test``, e.g. a dataset's official test list):
those images are the test split, and only the other patients are stratified, into train and val
in the ratio of the first two fractions (:func:`split_images`).

A dataset made of several sources (its frame holds ``SOURCE_COLUMN``) is split one source at a time,
each with the benchmark's seed: a source of which ``fixed_test`` pins images gets those as its test
set and its other patients go to train and val; a source with none pinned is split by the
fractions. A merged benchmark thus keeps an official test list whole without leaving its other
sources without test images, and every source is stratified on its own label distribution.

Unknown label cells (a known-mask beside the 0/1 matrix, :mod:`mlbench.data.labels`) hold 0, so the
split stratifies on known positives; split.parquet writes them as nulls in their label's column
(:func:`split_table`, read back by :func:`split_labels`), and labels.json counts each label's known
cells beside its positives. Without unknown cells every file is byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from mlbench.contracts.benchmark import Benchmark, with_data_labels
from mlbench.data import SOURCE_COLUMN, STRATIFY_COLUMN, Records, Skip
from mlbench.data.labels import check_known, known_counts, label_matrices
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import write_json, write_parquet

SPLITS = ("train", "val", "test")
# The split folder's layout (what ``mlbench split`` writes; a run directory holds the same split
# file, and RunDir takes its name and key columns from here): one owner for the split's format.
SPLIT_FILE = "split.parquet"
LABELS_FILE = "labels.json"
SUMMARY_FILE = "summary.json"
SPLIT_KEY_COLUMNS = ("image_id", "patient_id", "split")  # the split file's columns before the labels


class SplitError(UserError, ValueError):
    """A split breaks one of its guarantees (e.g. a patient in two subsets) or has nothing to split."""


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    r = np.asarray(fractions, dtype=float)
    if r.shape != (3,) or (r < 0).any() or abs(r.sum() - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test) summing to 1, "
                         f"got {tuple(fractions)}")
    return r


def patient_labels(patient_ids: Sequence[str], Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(patients sorted by id, their OR-aggregated label rows) and, per image, its patient's index."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or len(patient_ids) != Y.shape[0]:
        raise ValueError(f"Y must be (n_images, n_labels) with one row per patient id; got {Y.shape} "
                         f"for {len(patient_ids)} ids")
    codes, patients = pd.factorize(pd.Series(patient_ids, dtype=str), sort=True)
    P = np.zeros((len(patients), Y.shape[1]), dtype=bool)
    np.logical_or.at(P, codes, Y.astype(bool))
    return P, codes


def patient_split(
    patient_ids: Sequence[str],
    Y: np.ndarray,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 0,
) -> np.ndarray:
    """"train"/"val"/"test" per image, stratified on patients' aggregated labels (module docstring)."""
    # Imported here: iterstrat pulls in scikit-learn, which most commands never need.
    from iterstrat.ml_stratifiers import IterativeStratification

    r = _check_fractions(fractions)
    P, codes = patient_labels(patient_ids, Y)
    n_patients = P.shape[0]
    if n_patients == 0:
        return np.array([], dtype=object)
    rng = np.random.RandomState(seed)
    order = np.arange(n_patients)
    rng.shuffle(order)
    used = np.flatnonzero(r > 0)  # a zero fraction gets no patient at all
    folds = IterativeStratification(labels=P[order], r=r[used], random_state=rng)
    per_patient = np.empty(n_patients, dtype=np.int64)
    per_patient[order] = used[folds]
    splits = np.asarray(SPLITS, dtype=object)[per_patient[codes]]
    assert_patient_disjoint(patient_ids, splits)
    return splits


def pinned_test_mask(frame: pd.DataFrame, benchmark: Benchmark) -> np.ndarray | None:
    """The benchmark's pinned test images as a bool array over ``frame`` (None: nothing pinned).

    Raises SplitError when the mask is not one bool per image or splits a patient's images.
    """
    if benchmark.fixed_test is None:
        return None
    mask = np.asarray(benchmark.fixed_test(frame))
    if mask.shape != (len(frame),) or mask.dtype != bool:
        raise SplitError(f"benchmark '{benchmark.name}': fixed_test must give one bool per image "
                         f"({len(frame)}), got dtype {mask.dtype} shape {mask.shape}")
    pinned = pd.Series(mask).groupby(frame["patient_id"].astype(str).to_numpy()).nunique()
    torn = pinned[pinned > 1]
    if len(torn):
        raise SplitError(f"benchmark '{benchmark.name}': fixed_test pins only some images of {len(torn)} "
                         f"patient(s) ({', '.join(torn.index[:10])}); a test set must take whole patients")
    return mask


def stratification_matrix(frame: pd.DataFrame, Y: np.ndarray, benchmark: Benchmark) -> np.ndarray:
    """What the split stratifies on: ``Y``, or the frame's STRATIFY_COLUMN findings mapped alike
    (a dataset whose labels depend on an uncertainty option stratifies the same way for every choice)."""
    if STRATIFY_COLUMN not in frame.columns:
        return Y
    index = {label: j for j, label in enumerate(benchmark.labels)}
    S = np.zeros_like(Y)
    for i, findings in enumerate(frame[STRATIFY_COLUMN]):
        S[i, [index[t] for t in benchmark.targets(findings) if t in index]] = 1
    return S


def split_images(frame: pd.DataFrame, Y: np.ndarray, benchmark: Benchmark, seed: int | None = None) -> np.ndarray:
    """"train"/"val"/"test" per image by the benchmark's rule: its pinned test set, if any, else
    :func:`patient_split` with its fractions. ``seed`` defaults to the benchmark's ``split_seed``.
    A frame with ``SOURCE_COLUMN`` is split one source at a time (module docstring)."""
    seed = benchmark.split_seed if seed is None else seed
    Y = np.asarray(stratification_matrix(frame, Y, benchmark))
    patients = frame["patient_id"].astype(str).to_numpy()
    pinned = pinned_test_mask(frame, benchmark)
    by_source = SOURCE_COLUMN in frame.columns
    if by_source:
        sources = frame[SOURCE_COLUMN].astype(str).to_numpy()
        parts = [sources == name for name in sorted(set(sources))]
    else:
        parts = [np.ones(len(frame), dtype=bool)]
    splits = np.full(len(frame), "test", dtype=object)
    for part in parts:
        # One source: a pinned list pins its test set even when it holds none of these images.
        if pinned is None or (by_source and not pinned[part].any()):
            splits[part] = patient_split(patients[part].tolist(), Y[part], benchmark.split_fractions, seed)
            continue
        train, val = benchmark.split_fractions[0], benchmark.split_fractions[1]
        rest = part & ~pinned
        splits[rest] = patient_split(patients[rest].tolist(), Y[rest],
                                     (train / (train + val), val / (train + val), 0.0), seed)
    assert_patient_disjoint(patients.tolist(), splits)
    return splits


def target_fractions(benchmark: Benchmark, splits: Sequence[str]) -> tuple[float, float, float]:
    """The fractions a split aimed at: the benchmark's, or with a pinned test set its actual share."""
    if benchmark.fixed_test is None or len(splits) == 0:
        return tuple(benchmark.split_fractions)
    test = float(np.mean(np.asarray(splits) == "test"))
    train, val = benchmark.split_fractions[0], benchmark.split_fractions[1]
    return ((1 - test) * train / (train + val), (1 - test) * val / (train + val), test)


def split_hash(image_ids: Sequence[str], splits: Sequence[str], label_options: dict[str, Any] | None = None) -> str:
    """sha256 over the sorted lines ``image_id,split\\n``: the split's identity, whatever the row order.

    ``label_options``: the dataset options that shaped the labels (an uncertainty policy, the label
    columns, a minimum count), as one more line of canonical JSON: two splits with the same images in
    the same subsets but other labels differ. Without them the hash is the plain one (pinned hashes hold)."""
    if len(image_ids) != len(splits):
        raise ValueError(f"{len(image_ids)} image ids but {len(splits)} split values")
    lines = sorted(f"{i},{s}\n" for i, s in zip(image_ids, splits))
    if label_options:
        lines.append("dataset_options " + json.dumps(label_options, sort_keys=True, default=str) + "\n")
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def assert_patient_disjoint(patient_ids: Sequence[str], splits: Sequence[str]) -> None:
    """Raise SplitError naming the patients (first 10) whose images sit in more than one split."""
    frame = pd.DataFrame({"patient": pd.Series(patient_ids, dtype=str), "split": np.asarray(splits)})
    per_patient = frame.groupby("patient", sort=True)["split"].nunique()
    leaked = per_patient[per_patient > 1]
    if len(leaked):
        names = ", ".join(leaked.index[:10])
        raise SplitError(f"{len(leaked)} patient(s) have images in more than one split: {names}"
                         + (" ..." if len(leaked) > 10 else ""))


def split_table(frame: pd.DataFrame, Y: np.ndarray, splits: Sequence[str], labels: Sequence[str],
                known: np.ndarray | None = None) -> pa.Table:
    """The split.parquet layout: image_id, patient_id, split, then one 0/1 column per label (null where
    ``known`` says the cell is unknown; without unknown cells no column holds a null)."""
    Y = np.asarray(Y, dtype=np.uint8)
    known = check_known(known, Y.shape, "split_table")
    if Y.shape != (len(frame), len(labels)) or len(splits) != len(frame):
        raise ValueError(f"frame has {len(frame)} rows, Y {Y.shape}, splits {len(splits)}, "
                         f"labels {len(labels)}: they must agree")
    image_id, patient_id, split = SPLIT_KEY_COLUMNS
    columns: dict[str, pa.Array] = {
        image_id: pa.array(frame["image_id"].astype(str).tolist(), pa.string()),
        patient_id: pa.array(frame["patient_id"].astype(str).tolist(), pa.string()),
        split: pa.array([str(s) for s in splits], pa.string()),
    }
    for j, label in enumerate(labels):
        if label in columns:
            raise ValueError(f"label '{label}' clashes with a {SPLIT_FILE} column name")
        columns[label] = pa.array(Y[:, j], pa.uint8(), mask=None if known is None else ~known[:, j])
    return pa.table(columns)


def split_labels(frame: pd.DataFrame, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """A read split.parquet's label columns as (0/1 uint8 matrix, known-mask or None): nulls are unknown cells."""
    values = frame[list(labels)]
    missing = values.isna().to_numpy()
    if not missing.any():
        return values.to_numpy(dtype=np.uint8), None
    return values.fillna(0).to_numpy(dtype=np.uint8), ~missing


def label_counts(Y: np.ndarray, splits: Sequence[str], labels: Sequence[str],
                 known: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Per label, in order: positives overall and in each split (the labels.json entries); with unknown
    cells also ``known``: the label's known cells overall and per split."""
    Y = np.asarray(Y)
    splits = np.asarray(splits)
    per_split = {s: Y[splits == s].sum(axis=0) for s in SPLITS}
    total = Y.sum(axis=0)
    known = check_known(known, Y.shape, "label_counts")
    rows = [{"label": label, "all": int(total[j]), **{s: int(per_split[s][j]) for s in SPLITS}}
            for j, label in enumerate(labels)]
    if known is not None:
        cells = {s: known[splits == s].sum(axis=0) for s in SPLITS}
        for j, row in enumerate(rows):
            row["known"] = {"all": int(known[:, j].sum()), **{s: int(cells[s][j]) for s in SPLITS}}
    return rows


def split_summary(
    frame: pd.DataFrame,
    Y: np.ndarray,
    splits: Sequence[str],
    labels: Sequence[str],
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    label_options: dict[str, Any] | None = None,
    known: np.ndarray | None = None,
) -> dict[str, Any]:
    """Sizes, patients and label counts per split, the worst per-label deviations, and the hash.

    Two deviations, in percentage points: ``prevalence`` compares a label's share of the images of
    a split with its share of all images; ``allocation`` compares the share of a label's positives
    that fall in a split with that split's share of all images (stricter for rare labels).
    With unknown cells (``known``) a label's share is of its known cells, and ``unknown_cells`` counts them.
    """
    Y = np.asarray(Y)
    splits = np.asarray(splits)
    r = _check_fractions(fractions)
    n = len(splits)
    sizes = {s: int((splits == s).sum()) for s in SPLITS}
    patients = {s: int(frame.loc[splits == s, "patient_id"].nunique()) for s in SPLITS}
    known = check_known(known, Y.shape, "split_summary")
    counts = label_counts(Y, splits, labels, known)
    cells = known_counts(known, n, len(labels))
    if not n:
        overall = np.zeros(len(labels))
    else:  # a label's share of its known cells (of every image when all are known)
        overall = Y.mean(axis=0) if known is None else Y.sum(axis=0) / np.maximum(cells, 1)
    worst_prev = {"points": 0.0, "label": None, "split": None}
    worst_alloc = {"points": 0.0, "label": None, "split": None}
    missing: list[dict[str, str]] = []
    for s in SPLITS:
        size = sizes[s]
        for j, label in enumerate(labels):
            positives = counts[j][s]
            if positives == 0:
                missing.append({"label": label, "split": s})
            size_j = size if known is None else counts[j]["known"][s]
            if size_j:
                prev = float(100 * abs(positives / size_j - overall[j]))
                if prev > worst_prev["points"]:
                    worst_prev = {"points": prev, "label": label, "split": s}
            if counts[j]["all"]:
                alloc = float(100 * abs(positives / counts[j]["all"] - size / n))
                if alloc > worst_alloc["points"]:
                    worst_alloc = {"points": alloc, "label": label, "split": s}
    extra = {} if known is None else {"unknown_cells": int((~known).sum())}
    return {
        "n_images": n,
        "n_patients": int(frame["patient_id"].nunique()),
        "n_labels": len(labels),
        "target_fractions": dict(zip(SPLITS, map(float, r))),
        "sizes": sizes,
        "fractions": {s: (sizes[s] / n if n else 0.0) for s in SPLITS},
        "patients": patients,
        "label_counts": counts,
        "labels_missing_from_a_split": missing,
        "max_prevalence_deviation": worst_prev,
        "max_allocation_deviation": worst_alloc,
        "split_hash": split_hash(frame["image_id"].astype(str).tolist(), splits.tolist(), label_options),
        **extra,
    }


def write_split_files(out_dir: str | Path, frame: pd.DataFrame, Y: np.ndarray, splits: Sequence[str],
                      labels: Sequence[str], summary: dict[str, Any], known: np.ndarray | None = None) -> dict[str, Path]:
    """Write split.parquet, labels.json and summary.json into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    paths = {"split": out / SPLIT_FILE, "labels": out / LABELS_FILE, "summary": out / SUMMARY_FILE}
    write_parquet(paths["split"], split_table(frame, Y, splits, labels, known))
    write_json(paths["labels"], {"labels": summary["label_counts"], "split_hash": summary["split_hash"]})
    write_json(paths["summary"], summary)
    return paths


@dataclass
class BenchmarkSplit:
    """A benchmark's kept images, label matrix and split, with the summary and the timings."""

    frame: pd.DataFrame
    Y: np.ndarray
    splits: np.ndarray
    labels: tuple[str, ...]
    summary: dict[str, Any]
    skipped: list[Skip]  # images left with no benchmark label
    seconds: dict[str, float]
    known: np.ndarray | None = None  # bool, True where a cell is known; None: every cell is (mlbench.data.labels)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """split.parquet, labels.json and summary.json (with the timings) into ``out_dir``."""
        return write_split_files(out_dir, self.frame, self.Y, self.splits, self.labels,
                                 {**self.summary, "seconds": self.seconds}, self.known)

    def known_rows(self, rows: np.ndarray) -> np.ndarray | None:
        """The known-mask of these rows, or None when every cell of them is known."""
        return None if self.known is None else check_known(self.known[rows], (len(rows), len(self.labels)),
                                                            "known_rows")


def no_image_message(records: Records, benchmark: Benchmark) -> str:
    """Why nothing is left to split: how many images were read and the rows skipped, by reason."""
    reasons: dict[str, int] = {}
    for skip in records.skipped:
        reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
    skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return (f"no image carries a label of benchmark '{benchmark.name}' ({len(records.frame)} images read, none "
            "with one of its labels" + (f"; rows skipped: {skipped}" if skipped else "") + "); expected at least "
            "one image with one of its labels")


def source_sizes(frame: pd.DataFrame, splits: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per source (``SOURCE_COLUMN``): its images and patients per split."""
    splits = np.asarray(splits)
    sources = frame[SOURCE_COLUMN].astype(str).to_numpy()
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(sources)):
        part = sources == name
        patients = frame.loc[part, "patient_id"].astype(str).to_numpy()
        out[name] = {"n_images": int(part.sum()), "sizes": {s: int((splits[part] == s).sum()) for s in SPLITS},
                     "patients": {s: int(len(set(patients[splits[part] == s]))) for s in SPLITS}}
    return out


def split_benchmark(records: Records, benchmark: Benchmark, *, seed: int | None = None) -> BenchmarkSplit:
    """Map ``records`` to ``benchmark``'s labels and split them by patient.

    ``seed`` defaults to the benchmark's ``split_seed``; the rule is :func:`split_images`.
    Images left with no benchmark label are dropped and returned in ``skipped``; a SplitError
    says so when no image is left at all.
    """
    seed = benchmark.split_seed if seed is None else seed
    t0 = time.perf_counter()
    if benchmark.labels_from_data and not records.labels:  # nothing read, so no label either
        raise SplitError(no_image_message(records, benchmark))
    benchmark = with_data_labels(benchmark, records.labels)  # a benchmark whose labels the data chooses
    matrix = label_matrices(records, benchmark)
    frame, Y, known, skipped = matrix.frame, matrix.Y, matrix.known, matrix.skipped
    if len(frame) == 0:  # an empty split would still get a hash (of nothing) and look like a result
        raise SplitError(no_image_message(records, benchmark))
    t1 = time.perf_counter()
    splits = split_images(frame, Y, benchmark, seed)
    t2 = time.perf_counter()
    summary = split_summary(frame, Y, splits, benchmark.labels, target_fractions(benchmark, splits),
                            records.label_options, known)
    summary = {"benchmark": benchmark.name, "benchmark_version": benchmark.version, "seed": seed,
               "pinned_test_set": benchmark.fixed_test is not None,
               "dataset_kind": records.kind, "csv_sha256": records.source_sha256,
               **({"dataset_options": dict(records.label_options)} if records.label_options else {}),
               "images_without_benchmark_label": len(skipped), **summary,
               **({"per_source": source_sizes(frame, splits)} if SOURCE_COLUMN in frame.columns else {})}
    t3 = time.perf_counter()
    seconds = {"label_matrix": t1 - t0, "stratify": t2 - t1, "summary": t3 - t2}
    return BenchmarkSplit(frame, Y, splits, tuple(benchmark.labels), summary, skipped, seconds, known)
