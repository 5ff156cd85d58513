"""Patient-level bootstrap confidence intervals for a run's test-split metrics.

Why patients: images of one patient are not independent (same anatomy, same devices), so a
bootstrap that resamples images understates the uncertainty. A replicate draws the test split's
patients with replacement; every image of a drawn patient comes along, as many times as the
patient was drawn. A replicate is therefore a vector of integer multiplicity weights per image,
and each metric is its weighted version (scikit-learn's ``sample_weight`` semantics).

The interval is the percentile interval (2.5th and 97.5th percentiles of the replicates, linear
interpolation) over the replicates where the metric is defined (a replicate that draws no
positive of a label has no AUC for it). Macro rows average, within each replicate, the labels
defined in that replicate (as :func:`mlbench.results.metrics.evaluate` does over the whole split).

Weighted ROC AUC and average precision (Mann-Whitney with ties counted one half; the
step-function AP of scikit-learn) come from one pass per label over groups of tied scores
(:class:`TiedScoreGroups`): a replicate's weight of every group of every label is one sparse
product of its patient multiplicities, and AUC and AP follow from running sums over the groups,
for all replicates at once. scikit-learn called 1,000 times per label would take tens of minutes
at PadChest's size; this takes about a second per entry. Tests check both against scikit-learn
with ``sample_weight`` on data with ties, and every replicate against stored outputs of the
earlier per-image code (``tests/test_stats_identical.py``: AUC bit for bit, AP to 1e-12).

Calibration (``ece_15``, ``brier``): a replicate's Brier score is the weighted mean of (p - y)^2.
Its ECE keeps the equal-mass bins of the whole split's scores
(:func:`mlbench.results.metrics.equal_mass_bins`): a replicate only reweights the images, as it
does for every other metric, rather than re-cutting the bins around the drawn images. Both are
defined in every replicate (a label without positives included). ECE is an absolute value, so
resampling noise raises it: for a well-calibrated predictor the replicates' ECE sits above the
whole split's, and the percentile interval can lie above a small value.

Unknown cells (``known``, False where a label is unknown): a replicate still draws patients, and
scores each label on the drawn images whose cell of that label is known: its tied-score groups,
confusion counts, calibration sums and weights hold known cells only (an image's weight in a label
is 0 where its cell is unknown). Without a mask every array and every sum is the one above, so those
results are unchanged to the last bit (``tests/test_stats_identical.py``).

Label groups: labels are ordered by their positives in the training split (most first, ties in
the benchmark's order) and cut into three near-equal thirds, ``frequent``, ``medium`` and
``rare`` (``numpy.array_split``: the first groups take the remainder). Each group gets macro rows
labelled ``__group_frequent__`` etc.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from mlbench.data.labels import check_known
from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.results.metrics import BRIER, ECE, ECE_BINS, PER_LABEL_METRICS, equal_mass_bins, evaluate
from mlbench.foundations.missing import finite_mean

GROUP_NAMES = ("frequent", "medium", "rare")
CI_LEVEL = 0.95
# Replicates are processed in chunks of about this many (replicate, image) cells: memory stays
# at tens of MB whatever the split's size.
CHUNK_CELLS = 2_000_000
# Calibration's per-patient sums are held dense up to this many (patient, label x bin) cells (128 MB).
DENSE_CELLS = 2**24
# The ranking metrics' group weights are summed this many replicates at a time.
RANKING_CHUNK = 16
# Replicate counts are drawn in blocks of this many replicates, so the draws for a seed never
# depend on the chunking above.
DRAW_BLOCK = 64


# What a run keeps of each entry's replicates for later comparisons (EntryReplicates): every per-label metric.
STORED_METRICS = ("auc", "auprc", "f1", "f1_pos", "hamming", ECE, BRIER)
# Part of every replicates_key: raise it with any change here that changes a replicate, so that stored
# replicates of older code are recomputed instead of used.
REPLICATES_VERSION = 1


def group_label(name: str) -> str:
    """The leaderboard label of a frequency group's macro rows, e.g. ``__group_rare__``."""
    return f"__group_{name}__"


GROUP_LABELS = tuple(group_label(n) for n in GROUP_NAMES)


# -- resampling ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatientBootstrap:
    """The replicates of one test split: per-image patient index and per-replicate multiplicities.

    ``codes[i]`` is image i's patient (index into the sorted unique patient ids); ``counts[b, p]``
    is how many times replicate b drew patient p. The draws depend only on the sorted patient ids,
    ``n_boot`` and ``seed``: every entry of a run is scored on the same replicates.
    """

    codes: np.ndarray  # (n_images,) int
    counts: np.ndarray  # (n_boot, n_patients) int32

    @property
    def n_boot(self) -> int:
        return int(self.counts.shape[0])

    def image_weights(self, start: int, stop: int) -> np.ndarray:
        """Multiplicity weights (stop - start, n_images) of replicates start..stop-1."""
        return np.take(self.counts[start:stop], self.codes, axis=1)


def with_whole_split(boot: PatientBootstrap) -> PatientBootstrap:
    """The replicates after one 'replicate' drawing every patient once: the whole split's metrics, same code path."""
    whole = np.ones((1, boot.counts.shape[1]), dtype=boot.counts.dtype)
    return PatientBootstrap(boot.codes, np.concatenate([whole, boot.counts]))


# The last draws made, kept: every entry of a run and every run of a grid resample the same test
# patients with the same seed, and drawing them costs about a second at PadChest's size.
RECENT_DRAWS = 2
_RECENT_DRAWS: OrderedDict[tuple[int, int, int, str], PatientBootstrap] = OrderedDict()


def patient_bootstrap(patient_ids: Sequence[str], n_boot: int = 1000, seed: int = 0) -> PatientBootstrap:
    """Draw ``n_boot`` resamples of the patients (with replacement, as many as there are).

    The same patients (in the same order), ``n_boot`` and ``seed`` give the same draws, and the
    last :data:`RECENT_DRAWS` are returned again rather than drawn again (their arrays are read-only).
    """
    if n_boot < 0:
        raise ValueError(f"n_boot must be 0 or more, got {n_boot}")
    ids = pd.Series(np.asarray(patient_ids, dtype=object)).astype(str)
    if len(ids) == 0:
        raise ValueError("patient_ids is empty: no test image to bootstrap")
    codes, patients = pd.factorize(ids, sort=True)
    codes = codes.astype(np.int64)
    n_patients = len(patients)
    digest = hashlib.blake2b(codes.tobytes(), digest_size=16)
    digest.update("\n".join(patients).encode("utf-8"))
    key = (int(n_boot), int(seed), n_patients, digest.hexdigest())
    if key in _RECENT_DRAWS:
        _RECENT_DRAWS.move_to_end(key)
        return _RECENT_DRAWS[key]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), n_patients]))
    uniform = np.full(n_patients, 1.0 / n_patients)
    blocks = [rng.multinomial(n_patients, uniform, size=min(DRAW_BLOCK, n_boot - start)).astype(np.int32)
              for start in range(0, n_boot, DRAW_BLOCK)]
    counts = np.concatenate(blocks) if blocks else np.zeros((0, n_patients), dtype=np.int32)
    for shared in (codes, counts):
        shared.setflags(write=False)  # handed to every caller asking for the same draws
    boot = PatientBootstrap(codes, counts)
    _RECENT_DRAWS[key] = boot
    while len(_RECENT_DRAWS) > RECENT_DRAWS:
        _RECENT_DRAWS.popitem(last=False)
    return boot


# -- weighted ranking metrics --------------------------------------------------------------------
class RankedLabel:
    """One label's scores sorted once; weighted ROC AUC and average precision for many weightings.

    For a positive image i with weight w_i: ``below`` = weighted negatives scored lower,
    ``tied`` = weighted negatives scored equal, ``tp`` = weighted positives scored at least as
    high (ties included). Then AUC = sum_i w_i (below + tied / 2) / (P N) and
    AP = sum_i (w_i / P) tp / (tp + N - below), which is scikit-learn's step-function AP.
    """

    def __init__(self, y: np.ndarray, score: np.ndarray) -> None:
        y = np.asarray(y).astype(bool)
        score = np.asarray(score, dtype=np.float64)
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        self.pos = pos[np.argsort(score[pos], kind="stable")]
        self.neg = neg[np.argsort(score[neg], kind="stable")]
        pos_scores, neg_scores = score[self.pos], score[self.neg]
        # prefix lengths: negatives (or positives) strictly below / at most each positive's score
        self.neg_lt = np.searchsorted(neg_scores, pos_scores, side="left")
        self.neg_le = np.searchsorted(neg_scores, pos_scores, side="right")
        self.pos_lt = np.searchsorted(pos_scores, pos_scores, side="left")

    def auc_ap(self, weights: np.ndarray, columns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(AUC, AP) per row of ``weights``; NaN where a class weighs nothing.

        ``weights`` is (rows, images), or with ``columns`` (rows, k) where image i's weight is in
        column ``columns[i]`` (per-patient multiplicities: no per-image copy is made). Integer
        weights (bootstrap multiplicities) are summed in int32, which is exact and several times
        faster than wider types; other weights in float64.
        """
        weights = np.atleast_2d(weights)
        pos_columns = self.pos if columns is None else columns[self.pos]
        neg_columns = self.neg if columns is None else columns[self.neg]
        n_rows = weights.shape[0]
        if len(self.pos) == 0 or len(self.neg) == 0:
            return np.full(n_rows, np.nan), np.full(n_rows, np.nan)
        integer = np.issubdtype(weights.dtype, np.integer)
        if integer and int(np.abs(weights).max(initial=0)) * (len(self.pos) + len(self.neg)) >= 2**30:
            # twice a replicate's total weight could overflow int32 (no real test split comes close)
            weights, integer = weights.astype(np.float64), False
        dtype = np.int32 if integer else np.float64
        w_pos = np.take(weights, pos_columns, axis=1).astype(dtype, copy=False)
        w_neg = np.take(weights, neg_columns, axis=1).astype(dtype, copy=False)
        neg_cum = _prefix_sums(w_neg)
        pos_cum = _prefix_sums(w_pos)
        total_pos, total_neg = pos_cum[:, -1].astype(np.float64), neg_cum[:, -1].astype(np.float64)
        below = np.take(neg_cum, self.neg_lt, axis=1)
        # below + tied / 2, doubled: integer weights stay exact integers until the division
        twice = below + np.take(neg_cum, self.neg_le, axis=1)
        auc_sum = np.einsum("bi,bi->b", w_pos, twice, dtype=np.float64, casting="unsafe")
        tp = total_pos[:, None] - np.take(pos_cum, self.pos_lt, axis=1)
        flagged = tp + (total_neg[:, None] - below)
        precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=tp > 0)
        ap_sum = np.einsum("bi,bi->b", w_pos, precision, dtype=np.float64, casting="unsafe")
        defined = (total_pos > 0) & (total_neg > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = np.where(defined, auc_sum / (2.0 * total_pos * total_neg), np.nan)
            ap = np.where(defined, ap_sum / total_pos, np.nan)
        return auc, ap


def _prefix_sums(w: np.ndarray) -> np.ndarray:
    """(rows, k + 1) running sums along each row, starting at 0."""
    out = np.zeros((w.shape[0], w.shape[1] + 1), dtype=w.dtype)
    np.cumsum(w, axis=1, dtype=w.dtype, out=out[:, 1:])
    return out


def weighted_auc(y: np.ndarray, score: np.ndarray, sample_weight: np.ndarray) -> np.ndarray | float:
    """ROC AUC with sample weights (one row of weights -> a float, several -> one value per row)."""
    out = RankedLabel(y, score).auc_ap(np.asarray(sample_weight))[0]
    return float(out[0]) if np.ndim(sample_weight) == 1 else out


def weighted_average_precision(y: np.ndarray, score: np.ndarray, sample_weight: np.ndarray) -> np.ndarray | float:
    """Average precision (scikit-learn's step-function definition) with sample weights."""
    out = RankedLabel(y, score).auc_ap(np.asarray(sample_weight))[1]
    return float(out[0]) if np.ndim(sample_weight) == 1 else out


# -- decision metrics ----------------------------------------------------------------------------
def decision_metrics(y: np.ndarray, decisions: np.ndarray, boot: PatientBootstrap,
                     known: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per replicate and label: ``f1`` (binary macro), ``f1_pos``, ``hamming`` — (n_boot, L) each.

    Confusion counts are summed per patient first; a replicate's counts are then one matrix
    product of its patient multiplicities with those sums (integers: exact in any order).
    ``images`` is each replicate's image count (n_boot, 1), or with unknown cells each label's known
    cells (n_boot, L).
    """
    y = np.asarray(y).astype(bool)
    d = np.asarray(decisions).astype(bool)
    n_labels = y.shape[1]
    known = check_known(known, y.shape, "decision_metrics")
    if known is None:
        cells = np.hstack([y & d, ~y & d, y & ~d, ~y & ~d, np.ones((len(y), 1), dtype=bool)]).astype(np.float64)
    else:
        cells = np.hstack([y & d & known, ~y & d & known, y & ~d & known, ~y & ~d & known, known]).astype(np.float64)
    per_patient = np.asarray(_membership(boot) @ cells)  # (n_patients, 4 L + 1), or 5 L with unknown cells
    with one_blas_thread():
        sums = boot.counts.astype(np.float64) @ per_patient
    tp, fp, fn, tn = (sums[:, k * n_labels:(k + 1) * n_labels] for k in range(4))
    images = sums[:, 4 * n_labels:]  # (n_boot, 1), or (n_boot, L) known cells
    with np.errstate(invalid="ignore", divide="ignore"):
        f1_pos = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_neg = np.where(2 * tn + fp + fn > 0, 2 * tn / (2 * tn + fp + fn), 0.0)
        hamming = (fp + fn) / images
    return {"f1": (f1_pos + f1_neg) / 2, "f1_pos": f1_pos, "hamming": hamming, "wrong_cells": fp + fn,
            "images": images}


def one_blas_thread():
    """Hold BLAS to one thread: OpenBLAS's threads spin while they wait, and on a shared 2-core machine the
    bootstrap's products took 3-5x the CPU time (and wall time) with two threads than with one (measured)."""
    return threadpool_limits(limits=1, user_api="blas")


def _membership(boot: PatientBootstrap) -> sparse.csr_matrix:
    """(patients, images) 0/1: summing image cells per patient is one product with it."""
    n_images, n_patients = len(boot.codes), boot.counts.shape[1]
    return sparse.csr_matrix((np.ones(n_images), (boot.codes, np.arange(n_images))), shape=(n_patients, n_images))


# -- calibration metrics -------------------------------------------------------------------------
def calibration_metrics(y: np.ndarray, scores: np.ndarray, boot: PatientBootstrap,
                        known: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per replicate and label: weighted ``ece_15`` and ``brier`` — (n_boot, L) each.

    ECE's bins are those of the whole split's scores (module docstring), so a replicate's ECE is
    sum_b |sum_{i in b} w_i (y_i - p_i)| / sum_i w_i: the residuals y - p are summed per patient and
    bin once, and each replicate is a product of its patient multiplicities with those sums.
    With unknown cells (``known``) a label's bins, residuals, squared errors and weights are those of
    its known cells.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    n, n_labels = y.shape
    known = check_known(known, y.shape, "calibration_metrics")
    if known is not None:
        return _calibration_with_unknown(y, p, boot, known)
    membership = _membership(boot)
    images = np.asarray(membership.sum(axis=1)).ravel()  # (n_patients,)
    squared = np.asarray(membership @ (p - y) ** 2)  # (n_patients, L)
    bins = np.column_stack([equal_mass_bins(p[:, j], ECE_BINS) for j in range(n_labels)]) if n_labels else \
        np.zeros((n, 0), dtype=np.int64)
    cells = sparse.csr_matrix(((y - p).ravel(), (np.repeat(np.arange(n), n_labels),
                                                 (np.arange(n_labels) * ECE_BINS + bins).ravel())),
                              shape=(n, n_labels * ECE_BINS))
    residual = membership @ cells  # (n_patients, L * bins): per patient, label and bin
    # Dense, a replicate's sums are one BLAS product with the squared errors and image counts beside
    # (measured 2-3x faster than the sparse product at PadChest's size); sparse where dense would not fit
    dense = residual.shape[0] * (residual.shape[1] + n_labels + 1) <= DENSE_CELLS
    if dense:
        per_patient = np.hstack([residual.toarray(), squared, images[:, None]])
    else:
        residual_t = residual.T.tocsr()
    ece = np.empty((boot.n_boot, n_labels))
    brier = np.empty((boot.n_boot, n_labels))
    # a chunk's multiplicities (chunk, patients) and its sums (chunk, L * bins) both stay near CHUNK_CELLS
    step = max(1, CHUNK_CELLS // max(n_labels * ECE_BINS, len(images), 1))
    with one_blas_thread():
        for start in range(0, boot.n_boot, step):
            stop = min(start + step, boot.n_boot)
            counts = boot.counts[start:stop].astype(np.float64)
            if dense:
                sums = counts @ per_patient
                residuals, squares, weight = (sums[:, :n_labels * ECE_BINS], sums[:, n_labels * ECE_BINS:-1],
                                              sums[:, -1])
            else:
                residuals, squares, weight = np.asarray(residual_t @ counts.T).T, counts @ squared, counts @ images
            ece[start:stop] = np.abs(residuals.reshape(stop - start, n_labels, ECE_BINS)).sum(axis=2) / weight[:, None]
            brier[start:stop] = squares / weight[:, None]
    return {ECE: ece, BRIER: brier}


def _calibration_with_unknown(y: np.ndarray, p: np.ndarray, boot: PatientBootstrap,
                              known: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`calibration_metrics` on each label's known cells: per patient and label, the known images,
    squared errors and per-bin residuals; a replicate's weight of a label is its drawn known cells."""
    n, n_labels = y.shape
    membership = _membership(boot)
    weight_of = known.astype(np.float64)
    images = np.asarray(membership @ weight_of)  # (n_patients, L): known cells per patient
    squared = np.asarray(membership @ ((p - y) ** 2 * weight_of))
    bins = np.zeros((n, n_labels), dtype=np.int64)
    for j in range(n_labels):  # equal-mass bins of the label's known scores
        bins[known[:, j], j] = equal_mass_bins(p[known[:, j], j], ECE_BINS)
    rows, columns = np.nonzero(known)
    cells = sparse.csr_matrix(((y - p)[rows, columns], (rows, columns * ECE_BINS + bins[rows, columns])),
                              shape=(n, n_labels * ECE_BINS))
    per_patient = np.hstack([(membership @ cells).toarray(), squared, images])
    ece = np.empty((boot.n_boot, n_labels))
    brier = np.empty((boot.n_boot, n_labels))
    step = max(1, CHUNK_CELLS // max(per_patient.shape[1], per_patient.shape[0], 1))
    with one_blas_thread(), np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, boot.n_boot, step):
            stop = min(start + step, boot.n_boot)
            sums = boot.counts[start:stop].astype(np.float64) @ per_patient
            residuals = sums[:, :n_labels * ECE_BINS].reshape(stop - start, n_labels, ECE_BINS)
            squares, weight = sums[:, n_labels * ECE_BINS:-n_labels], sums[:, -n_labels:]
            # a label with no drawn known cell has no calibration in that replicate
            ece[start:stop] = np.where(weight > 0, np.abs(residuals).sum(axis=2) / weight, np.nan)
            brier[start:stop] = np.where(weight > 0, squares / weight, np.nan)
    return {ECE: ece, BRIER: brier}


def ranking_metrics(y: np.ndarray, scores: np.ndarray, boot: PatientBootstrap,
                    known: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per replicate and label: weighted ``auc`` and ``auprc`` — (n_boot, L) each (:class:`TiedScoreGroups`);
    with unknown cells (``known``) each label's groups hold its known cells only."""
    groups = TiedScoreGroups(y, scores, boot.codes, boot.counts.shape[1], check_known(known, np.shape(y), "ranking"))
    return dict(zip(("auc", "auprc"), groups.auc_ap(boot.counts)))


class TiedScoreGroups:
    """Every label's test images in groups of tied scores: AUC and AP of many replicates from group weights.

    For a label whose positives take the distinct scores u_0 < ... < u_{m-1}, each image falls in
    one group: a positive scored u_g, a negative scored u_g, or a negative in the gap between
    u_{g-1} and u_g (gaps 0..m, open at both ends). A replicate's weight of every group of every
    label is then one sparse product of its patient multiplicities with a (groups x patients)
    matrix of image counts (N x L multiply-adds per replicate, in one pass, where gathering and
    summing each label's images in score order passes over them several times). From the group
    weights, with P_g the positives' weight at u_g, below_g the negatives' weight scored below
    u_g and tied_g at u_g:

    AUC = sum_g P_g (below_g + tied_g / 2) / (P N);  AP = sum_g P_g tp_g / (tp_g + N - below_g) / P,

    tp_g the positives' weight scored at least u_g: :class:`RankedLabel`'s sums, with the positives
    of one score summed first. Integer weights stay exact integers until the divisions, so AUC is
    bit-identical to the per-image sums; AP may differ from them in the last bits (summation order).
    """

    def __init__(self, y: np.ndarray, scores: np.ndarray, codes: np.ndarray, n_patients: int,
                 known: np.ndarray | None = None) -> None:
        y = np.asarray(y).astype(bool)
        scores = np.asarray(scores, dtype=np.float64)
        codes = np.asarray(codes)
        self.n_labels = y.shape[1]
        self.n_images = len(codes)
        # per label: (label, first row, m); a label without a positive gets no rows and stays NaN
        self.blocks: list[tuple[int, int, int]] = []
        rows, columns, first = [], [], 0
        for j in range(self.n_labels):
            positive, score, patient = y[:, j], scores[:, j], codes
            if known is not None and not known[:, j].all():  # the label's known cells only
                cells = known[:, j]
                positive, score, patient = positive[cells], score[cells], codes[cells]
            values = np.unique(score[positive])
            m = len(values)
            if m == 0:
                continue
            # rows first..first+m-1: positives at u_g; then gap 0, tied 0, gap 1, tied 1, ..., gap m
            rank = np.searchsorted(values, score, side="left")  # distinct positive scores below
            tied = values[np.minimum(rank, m - 1)] == score
            row = np.where(positive, rank, m + 2 * rank + tied)
            rows.append(first + row)
            columns.append(patient)
            self.blocks.append((j, first, m))
            first += 3 * m + 1
        self.n_rows = first
        row_index = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        column_index = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        # duplicates (one patient's images in one group) are summed: entries count images
        self.images = sparse.csr_matrix((np.ones(len(row_index), dtype=np.int64), (row_index, column_index)),
                                        shape=(self.n_rows, n_patients))

    def auc_ap(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(AUC, AP), each (replicates, labels), for patient multiplicities ``counts`` (replicates, patients)."""
        counts = np.asarray(counts)
        n_boot = counts.shape[0]
        auc = np.full((n_boot, self.n_labels), np.nan)
        ap = np.full((n_boot, self.n_labels), np.nan)
        if not self.blocks or n_boot == 0:
            return auc, ap
        # int32 is exact while no sum can reach 2**30 (twice a replicate's weight stays below 2**31)
        fits = int(np.abs(counts).max(initial=0)) * self.n_images < 2**30
        dtype = np.int32 if fits else np.int64
        images = self.images.astype(dtype)
        # 16 replicates a chunk: measured 1.4x faster than 8 (numpy's per-call overhead) and than 64 (cache)
        for start in range(0, n_boot, RANKING_CHUNK):
            stop = min(start + RANKING_CHUNK, n_boot)
            weights = images @ np.ascontiguousarray(counts[start:stop].T, dtype=dtype)  # (rows, chunk)
            for j, first, m in self.blocks:
                auc[start:stop, j], ap[start:stop, j] = _auc_ap_of_groups(weights[first:first + 3 * m + 1], m)
        return auc, ap


def _auc_ap_of_groups(weights: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """One label's AUC and AP per replicate from its (3m + 1, replicates) group weights (TiedScoreGroups)."""
    dtype = weights.dtype
    positive = weights[:m]
    negative_cum = np.cumsum(weights[m:], axis=0, dtype=dtype)  # row 2g: negatives below u_g; 2g + 1: at most u_g
    below, at_most = negative_cum[0:2 * m:2], negative_cum[1:2 * m:2]
    total_neg = negative_cum[-1]
    positive_cum = np.cumsum(positive, axis=0, dtype=dtype)
    total_pos = positive_cum[-1]
    tp = total_pos - positive_cum + positive  # positives scored at least u_g
    # below + tied / 2, doubled: exact integers until the division
    auc_sum = np.einsum("gb,gb->b", positive, below + at_most, dtype=np.float64, casting="unsafe")
    flagged = tp + (total_neg - below)  # 0 only where tp is 0 too: that precision is 0
    precision = tp / np.maximum(flagged, 1)
    ap_sum = np.einsum("gb,gb->b", positive, precision, dtype=np.float64, casting="unsafe")
    total_pos, total_neg = total_pos.astype(np.float64), total_neg.astype(np.float64)
    defined = (total_pos > 0) & (total_neg > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where(defined, auc_sum / (2.0 * total_pos * total_neg), np.nan)
        ap = np.where(defined, ap_sum / total_pos, np.nan)
    return auc, ap


# -- groups and intervals ------------------------------------------------------------------------
def label_groups(train_counts: Sequence[int], labels: Sequence[str]) -> dict[str, list[str]]:
    """``frequent`` / ``medium`` / ``rare`` thirds of ``labels`` by training positives (module docstring).

    Empty groups (fewer than three labels) are left out.
    """
    counts = np.asarray(train_counts)
    if counts.shape != (len(labels),):
        raise ValueError(f"train_counts has shape {counts.shape}; expected one count per label ({len(labels)})")
    order = sorted(range(len(labels)), key=lambda j: (-int(counts[j]), j))
    parts = np.array_split(np.asarray(order, dtype=int), len(GROUP_NAMES))
    return {name: [labels[j] for j in part] for name, part in zip(GROUP_NAMES, parts) if len(part)}


def _interval(replicates: np.ndarray, value: float) -> tuple[float | None, float | None]:
    if replicates is None or math.isnan(value):
        return None, None
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return None, None
    tail = (1 - CI_LEVEL) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


# -- stored replicates ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EntryReplicates:
    """One entry's metrics on the whole split (row 0) and on each replicate (rows 1..n_boot).

    ``values``: metric -> (1 + n_boot, labels), the metrics of :data:`STORED_METRICS`, computed as
    :mod:`mlbench.results.paired` computes them (the whole split as a replicate drawing every patient
    once). ``key`` is :func:`replicates_key` of the arrays, patients and draws they come from: a later
    comparison uses them only where its own inputs give the same key.
    """

    key: str
    values: dict[str, np.ndarray]


def replicates_key(y: np.ndarray, scores: np.ndarray, decisions: np.ndarray, patient_ids: Sequence[str], *,
                   n_boot: int, seed: int, known: np.ndarray | None = None) -> str:
    """A digest of everything one entry's replicates depend on: labels (unknown cells already 0), scores,
    decisions, the known cells, each image's patient, ``n_boot``, ``seed`` and :data:`REPLICATES_VERSION`.

    Arrays are hashed in the form the metrics compute with (float64 labels and scores, bool decisions
    and mask), so a float32 copy of the same scores gives the same key; ``known`` is as
    :func:`mlbench.data.labels.check_known` returns it (None when every cell is known).
    """
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"mlbench replicates v{REPLICATES_VERSION} n_boot={int(n_boot)} seed={int(seed)}".encode())
    arrays = {"y": np.asarray(y, dtype=np.float64), "scores": np.asarray(scores, dtype=np.float64),
              "decisions": np.asarray(decisions).astype(bool)}
    if known is not None:
        arrays["known"] = np.asarray(known).astype(bool)
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        digest.update(f"|{name} {a.dtype.str} {a.shape}|".encode())
        digest.update(a.tobytes())
    digest.update(json.dumps([str(p) for p in patient_ids]).encode("utf-8"))  # unambiguous, whatever an id holds
    return digest.hexdigest()


def entry_replicates(y: np.ndarray, scores: np.ndarray, decisions: np.ndarray, patient_ids: Sequence[str], *,
                     n_boot: int, seed: int, known: np.ndarray | None = None) -> EntryReplicates:
    """What :func:`entry_statistics` keeps of one entry, without its rows (``y`` with unknown cells 0 and
    ``known`` as :func:`mlbench.data.labels.check_known` returns it, as there)."""
    if n_boot < 1:
        raise ValueError(f"entry_replicates: n_boot must be at least 1, got {n_boot}")
    return _replicates(y, scores, decisions, patient_ids, n_boot, seed, known)[0]


def _replicates(y, scores, decisions, patient_ids, n_boot, seed, known):
    # Row 0 is the whole split, as a paired comparison computes it: what is kept serves it as it is.
    boot = with_whole_split(patient_bootstrap(patient_ids, n_boot, seed))
    stacked = {**ranking_metrics(y, scores, boot, known), **decision_metrics(y, decisions, boot, known),
               **calibration_metrics(y, scores, boot, known)}
    key = replicates_key(y, scores, decisions, patient_ids, n_boot=n_boot, seed=seed, known=known)
    return EntryReplicates(key, {m: stacked[m] for m in STORED_METRICS}), stacked


def metric_intervals(y: np.ndarray, scores: np.ndarray, decisions: np.ndarray, patient_ids: Sequence[str],
                     labels: Sequence[str], *, train_counts: Sequence[int], n_boot: int = 1000,
                     seed: int = 0, known: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Every row of :func:`mlbench.results.metrics.evaluate` with its 95% CI: :func:`entry_statistics`' rows."""
    return entry_statistics(y, scores, decisions, patient_ids, labels, train_counts=train_counts, n_boot=n_boot,
                            seed=seed, known=known)[0]


def entry_statistics(y: np.ndarray, scores: np.ndarray, decisions: np.ndarray, patient_ids: Sequence[str],
                     labels: Sequence[str], *, train_counts: Sequence[int], n_boot: int = 1000,
                     seed: int = 0, known: np.ndarray | None = None
                     ) -> tuple[list[dict[str, Any]], EntryReplicates | None]:
    """Every row of :func:`mlbench.results.metrics.evaluate` with its 95% patient-bootstrap CI, plus group rows.

    ``y``, ``scores`` and ``decisions`` are one entry's (test images, labels) arrays;
    ``patient_ids`` names each image's patient; ``train_counts`` are the labels' positives in the
    training split (they define the frequency groups). Rows are dicts with ``label``, ``metric``,
    ``value``, ``ci_low``, ``ci_high``, ``n_positive``: first exactly ``evaluate``'s rows (same
    order, same values), then ``__group_frequent__``/``__group_medium__``/``__group_rare__`` rows
    (macro mean over the group's labels; Hamming too is the mean of the labels' values).
    The calibration rows (``ece_15``, ``brier``) are among them; their replicates keep the whole
    split's ECE bins (module docstring).
    ``n_boot=0`` gives no intervals (None). Deterministic for a seed and set of patients.
    ``known`` (False at unknown cells): each label scored on its known cells, in the point values and in
    every replicate (module docstring).
    The second value keeps the replicates for later paired comparisons (:class:`EntryReplicates`;
    None when ``n_boot`` is 0).
    """
    y, scores, decisions = (np.asarray(a) for a in (y, scores, decisions))
    labels = list(labels)
    rows = evaluate(y, scores, decisions, labels, known)  # validates the shapes; the point values
    known = check_known(known, y.shape, "metric_intervals")
    if known is not None:
        y = np.where(known, y, 0)
    if len(patient_ids) != y.shape[0]:
        raise ValueError(f"metric_intervals: {len(patient_ids)} patient ids for {y.shape[0]} images")
    if not np.isfinite(scores).all():
        raise ValueError("metric_intervals: scores contain NaN or infinity")
    groups = label_groups(train_counts, labels)
    index = {label: j for j, label in enumerate(labels)}

    replicates: dict[str, np.ndarray] = {}
    kept = None
    if n_boot > 0:
        kept, stacked = _replicates(y, scores, decisions, patient_ids, n_boot, seed, known)
        replicates = {m: v[1:] for m, v in stacked.items()}

    def per_label(metric: str, j: int) -> np.ndarray | None:
        return replicates[metric][:, j] if replicates else None

    def macro(metric: str, columns: list[int], *, over_cells: bool = False) -> np.ndarray | None:
        if not replicates:
            return None
        if over_cells and known is not None:  # over the drawn known cells
            with np.errstate(invalid="ignore", divide="ignore"):
                return replicates["wrong_cells"].sum(axis=1) / replicates["images"].sum(axis=1)
        if over_cells:  # the global Hamming row is over all (image, label) cells, as evaluate's
            return replicates["wrong_cells"].sum(axis=1) / (replicates["images"][:, 0] * len(labels))
        return finite_mean(replicates[metric][:, columns])

    out: list[dict[str, Any]] = []
    for row in rows:
        label, metric = row["label"], row["metric"]
        if label == GLOBAL_LABEL:
            reps = macro(metric, list(range(len(labels))), over_cells=metric == "hamming")
        else:
            reps = per_label(metric, index[label])
        low, high = _interval(reps, row["value"])
        out.append({**row, "ci_low": low, "ci_high": high})

    values = {(r["label"], r["metric"]): r["value"] for r in rows}
    positives = y.sum(axis=0)
    for name, members in groups.items():
        columns = [index[m] for m in members]
        for metric in PER_LABEL_METRICS:
            value = finite_mean([values[(m, metric)] for m in members])
            low, high = _interval(macro(metric, columns), value)
            out.append({"label": group_label(name), "metric": metric, "value": value, "ci_low": low,
                        "ci_high": high, "n_positive": int(positives[columns].sum())})
    return out, kept

