"""Built-in samplers: the order (and multiplicity) in which training images are seen each epoch.

A sampler plugin registers ``factory(labels, seed, **options)``: ``labels`` is the training
split's (n_train, n_labels) 0/1 matrix and ``seed`` the run's seed. The returned object has
``epoch(i) -> np.ndarray`` of int64 indices into the training split (rows of ``labels``), the
same for the same (seed, i) whatever was asked before. An epoch may repeat images or leave some
out, so its length may differ from n_train. Samplers change what training sees, never the split.

Built-ins:

- ``uniform``: a fresh permutation of the training split each epoch (the paper's).
- ``ml-ros`` / ``ml-rus``: multilabel random over- / under-sampling (Charte et al., "Addressing
  imbalance in multilabel classification: Measures and random resampling algorithms",
  Neurocomputing 163, 2015). Labels whose IRLbl exceeds the MeanIR are minority labels (below it:
  majority labels); each has a bag of the images carrying it. ML-ROS clones a random image of
  each minority bag in turn, ML-RUS deletes a random image of each majority bag in turn, until
  ``percentage`` % of the split has been added / deleted; a bag leaves the rotation once its
  label's IRLbl, recomputed on the resampled set, crosses the MeanIR (MeanIR itself is the
  original split's, as in the paper). ML-RUS never deletes an image that carries a minority
  label. The resampling is preprocessing, done once per seed; each epoch is a fresh permutation
  of the resampled multiset (``resample_each_epoch=True`` redraws it every epoch instead).
- ``class-aware``: Shen et al., "Relay Backpropagation for Effective Learning of Deep
  Convolutional Neural Networks" (ECCV 2016): pick a label, then an image carrying it. As in
  the paper, both levels are traversed as shuffled lists (reshuffled when exhausted), so over an
  epoch every label is picked equally often, up to one. ``epoch_length`` defaults to n_train.
  Images with no label are never drawn; labels with no image are left out.

Unknown cells: ``labels`` holds 0 at a cell whose label is unknown (it is never a positive, so
bags and class-aware lists hold known positives only). A sampler that takes a ``known`` keyword
gets the known-mask too (bool, False at unknown cells) when the training split has unknown cells;
ML-ROS and ML-RUS then compare labels by their prevalence among known cells
(:func:`mlbench.data.imbalance.irlbl`), and a clone adds (a deletion removes) its known cells as
well as its positives.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from mlbench import hookimpl
from mlbench.data.imbalance import irlbl
from mlbench.data.labels import check_known

# Distinct streams per purpose, so an epoch's permutation never reuses the resampling's draws.
_RESAMPLE_STREAM, _EPOCH_STREAM = 1, 2
EPOCH_SEED_STRIDE = 100_003


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one training epoch (its order, dropout and augmentation), as mlbench has always drawn it."""
    return seed * EPOCH_SEED_STRIDE + epoch


class Sampler(Protocol):
    def epoch(self, i: int) -> np.ndarray:
        """int64 indices into the training split for epoch ``i`` (0-based)."""


def _label_matrix(labels: np.ndarray, who: str) -> np.ndarray:
    Y = np.asarray(labels)
    if Y.ndim != 2:
        raise ValueError(f"{who}: labels must be a 2-D (images, labels) 0/1 matrix, got shape {Y.shape}")
    if Y.shape[0] == 0:
        raise ValueError(f"{who}: the training split has no image")
    if not np.isin(Y, (0, 1)).all():
        raise ValueError(f"{who}: labels must hold only 0 and 1")
    return Y.astype(bool)


def _check_epoch(i: int, who: str) -> int:
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
        raise ValueError(f"{who}: epoch must be an integer >= 0, got {i!r}")
    return int(i)


def _rng(seed: int, stream: int, epoch: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, epoch]))


def _check_seed(seed: int, who: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{who}: seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _check_percentage(percentage: float, who: str) -> float:
    p = float(percentage)
    if not 0 <= p < 100:
        raise ValueError(f"{who}: percentage must lie in [0, 100), got {percentage}")
    return p


class UniformSampler:
    """Every training image once per epoch, in a fresh random order."""

    def __init__(self, labels: np.ndarray, seed: int) -> None:
        self.n = _label_matrix(labels, "uniform").shape[0]
        self.seed = _check_seed(seed, "uniform")

    def epoch(self, i: int) -> np.ndarray:
        # torch's permutation, seeded as training always seeded it: runs made before samplers
        # existed resume, and reproduce, unchanged.
        import torch

        generator = torch.Generator().manual_seed(epoch_seed(self.seed, _check_epoch(i, "uniform")))
        return torch.randperm(self.n, generator=generator).numpy().astype(np.int64)


def minority_majority(Y: np.ndarray, known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(minority label indices, majority label indices, MeanIR) of a 0/1 matrix (Charte et al.)."""
    ratios = irlbl(Y.astype(np.uint8), known)
    present = ~np.isnan(ratios)
    mean = float(ratios[present].mean()) if present.any() else float("nan")
    minority = np.flatnonzero(present & (ratios > mean))
    majority = np.flatnonzero(present & (ratios < mean))
    return minority, majority, mean


class _Frequencies:
    """Each label's positives (and, with unknown cells, its known cells) as images are added or removed:
    what IRLbl compares, counts when every cell is known, else prevalence among known cells."""

    def __init__(self, Y: np.ndarray, known: np.ndarray | None) -> None:
        self.Y, self.known = Y, known
        self.counts = Y.sum(axis=0).astype(np.int64)
        self.cells = None if known is None else known.sum(axis=0).astype(np.int64)

    def change(self, i: int, sign: int) -> None:
        self.counts += sign * self.Y[i]
        if self.cells is not None:
            self.cells += sign * self.known[i]

    def of(self, j: int) -> float:
        return self.counts[j] if self.cells is None else self.counts[j] / max(self.cells[j], 1)

    def top(self) -> float:
        return self.counts.max() if self.cells is None else float((self.counts / np.maximum(self.cells, 1)).max())


def ml_ros_indices(Y: np.ndarray, percentage: float, rng: np.random.Generator,
                   known: np.ndarray | None = None) -> np.ndarray:
    """The training indices after ML-ROS: the originals, then the clones (Charte et al. 2015, Alg. 1)."""
    n = Y.shape[0]
    to_clone = int(n * percentage / 100)
    minority, _, mean = minority_majority(Y, known)
    freq = _Frequencies(Y, known)
    bags = [np.flatnonzero(Y[:, j]) for j in minority]
    active = list(range(len(bags)))
    clones: list[int] = []
    while to_clone > 0 and active:
        still = []
        for b in active:
            if to_clone <= 0:
                still.append(b)
                continue
            chosen = int(bags[b][rng.integers(len(bags[b]))])
            clones.append(chosen)
            freq.change(chosen, 1)
            to_clone -= 1
            # the bag's label stops being cloned once it is no longer a minority label
            if freq.top() / freq.of(minority[b]) > mean:
                still.append(b)
        active = still
    return np.concatenate([np.arange(n), np.asarray(clones, dtype=np.int64)]).astype(np.int64)


def ml_rus_indices(Y: np.ndarray, percentage: float, rng: np.random.Generator,
                   known: np.ndarray | None = None) -> np.ndarray:
    """The training indices left after ML-RUS (Charte et al. 2015, Alg. 2), in ascending order.

    Only images without any minority label are candidates for deletion.
    """
    n = Y.shape[0]
    to_delete = int(n * percentage / 100)
    minority, majority, mean = minority_majority(Y, known)
    protected = Y[:, minority].any(axis=1) if len(minority) else np.zeros(n, dtype=bool)
    freq = _Frequencies(Y, known)
    # each bag as a shuffled queue: popping its next not-yet-deleted image is a uniform draw
    bags = [rng.permutation(np.flatnonzero(Y[:, j] & ~protected)) for j in majority]
    cursor = [0] * len(bags)
    deleted = np.zeros(n, dtype=bool)
    active = list(range(len(bags)))
    while to_delete > 0 and active:
        still = []
        for b in active:
            if to_delete <= 0:
                still.append(b)
                continue
            bag = bags[b]
            while cursor[b] < len(bag) and deleted[bag[cursor[b]]]:
                cursor[b] += 1
            if cursor[b] == len(bag):
                continue  # nothing left to delete in this bag
            chosen = int(bag[cursor[b]])
            deleted[chosen] = True
            freq.change(chosen, -1)
            to_delete -= 1
            label_count = freq.of(majority[b])
            # the bag leaves the rotation once its label is no longer a majority label
            if label_count > 0 and freq.top() / label_count < mean:
                still.append(b)
        active = still
    return np.flatnonzero(~deleted).astype(np.int64)


class ResamplingSampler:
    """ML-ROS or ML-RUS: a resampled multiset of the training split, permuted each epoch."""

    def __init__(self, labels: np.ndarray, seed: int, method: str, percentage: float,
                 resample_each_epoch: bool, known: np.ndarray | None = None) -> None:
        self.name = method
        self.Y = _label_matrix(labels, method)
        self.known = check_known(known, self.Y.shape, method)
        if self.known is not None:
            self.Y = self.Y & self.known  # an unknown cell is never a positive
        self.seed = _check_seed(seed, method)
        self.percentage = _check_percentage(percentage, method)
        self.resample_each_epoch = bool(resample_each_epoch)
        self._resample = ml_ros_indices if method == "ml-ros" else ml_rus_indices
        self._fixed = None if self.resample_each_epoch else self._draw(0)

    def _draw(self, epoch: int) -> np.ndarray:
        return self._resample(self.Y, self.percentage, _rng(self.seed, _RESAMPLE_STREAM, epoch), self.known)

    def epoch(self, i: int) -> np.ndarray:
        i = _check_epoch(i, self.name)
        chosen = self._draw(i) if self._fixed is None else self._fixed
        return chosen[_rng(self.seed, _EPOCH_STREAM, i).permutation(len(chosen))]


class ClassAwareSampler:
    """Shen et al. 2016: a label from a shuffled label list, then an image from its shuffled list."""

    def __init__(self, labels: np.ndarray, seed: int, epoch_length: int | None) -> None:
        Y = _label_matrix(labels, "class-aware")
        self.seed = _check_seed(seed, "class-aware")
        self.members = [np.flatnonzero(Y[:, j]) for j in range(Y.shape[1])]
        self.labels_used = np.asarray([j for j, m in enumerate(self.members) if len(m)], dtype=np.int64)
        if not len(self.labels_used):
            raise ValueError("class-aware: no label has a positive image in the training split")
        length = Y.shape[0] if epoch_length is None else epoch_length
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"class-aware: epoch_length must be an integer >= 1, got {epoch_length!r}")
        self.length = int(length)

    def draws(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(picked label, image index) per draw of epoch ``i``."""
        rng = _rng(self.seed, _EPOCH_STREAM, _check_epoch(i, "class-aware"))
        n_labels = len(self.labels_used)
        rounds = -(-self.length // n_labels)
        picked = np.concatenate([rng.permutation(self.labels_used) for _ in range(rounds)])[: self.length]
        images = np.empty(self.length, dtype=np.int64)
        for j in self.labels_used:
            where = np.flatnonzero(picked == j)
            members = self.members[j]
            passes = -(-len(where) // len(members))
            # the label's image list, reshuffled each time it is exhausted
            stream = np.concatenate([rng.permutation(members) for _ in range(passes)]) if passes else members[:0]
            images[where] = stream[: len(where)]
        return picked, images

    def epoch(self, i: int) -> np.ndarray:
        return self.draws(i)[1]


def uniform(labels: np.ndarray, seed: int) -> UniformSampler:
    return UniformSampler(labels, seed)


def ml_ros(labels: np.ndarray, seed: int, percentage: float = 10.0,
           resample_each_epoch: bool = False, known: np.ndarray | None = None) -> ResamplingSampler:
    return ResamplingSampler(labels, seed, "ml-ros", percentage, resample_each_epoch, known)


def ml_rus(labels: np.ndarray, seed: int, percentage: float = 10.0,
           resample_each_epoch: bool = False, known: np.ndarray | None = None) -> ResamplingSampler:
    return ResamplingSampler(labels, seed, "ml-rus", percentage, resample_each_epoch, known)


def class_aware(labels: np.ndarray, seed: int, epoch_length: int | None = None) -> ClassAwareSampler:
    return ClassAwareSampler(labels, seed, epoch_length)


@hookimpl
def register_samplers(register):
    register("uniform", uniform, summary="A fresh permutation of the training split each epoch (paper)")
    register("ml-ros", ml_ros, summary="ML-ROS (Charte et al. 2015): clone minority-label images; "
                                       "options percentage (10), resample_each_epoch",
             guarantees=("never-lowers-label-counts",))
    register("ml-rus", ml_rus, summary="ML-RUS (Charte et al. 2015): delete majority-only images; "
                                       "options percentage (10), resample_each_epoch")
    register("class-aware", class_aware, summary="Class-aware sampling (Shen et al. 2016): a label, then an "
                                                 "image carrying it; option epoch_length (n_train)",
             guarantees=("draws-every-label",))
