"""The label-selection rule of a benchmark, reusable for any multilabel dataset.

The rule: keep a label when it has at least ``min_count`` positive images, counted either on the
whole dataset (``counted_on="all"``) or on the expected test split (``counted_on="test"``: the count
times ``test_fraction``); then drop images left with no kept label. Liz et al. 2023 state
">= 200 samples"; on PadChest's PA images their 35 specific labels are exactly the labels with
>= 200 expected test images (>= 1,000 overall), while their 54 general labels behave like >= 200
overall after expansion to ancestors. :func:`compare_selection` shows how a rule's output compares
with a pinned set, so a benchmark can say how far its pinned labels are from the rule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np

CountedOn = Literal["all", "test"]


def count_labels(label_sets: Iterable[Iterable[str]]) -> Counter[str]:
    """Positive images per label, from each image's labels (an image counts once per label)."""
    counts: Counter[str] = Counter()
    for labels in label_sets:
        counts.update(set(labels))
    return counts


def _counts(counts_or_matrix: Mapping[str, int] | np.ndarray, names: Sequence[str] | None) -> dict[str, int]:
    if isinstance(counts_or_matrix, Mapping):
        return {str(k): int(v) for k, v in counts_or_matrix.items()}
    matrix = np.asarray(counts_or_matrix)
    if matrix.ndim == 2:
        matrix = matrix.sum(axis=0)
    if names is None or len(names) != matrix.shape[0]:
        raise ValueError(f"need one name per label column: {matrix.shape[0]} columns, "
                         f"{'no' if names is None else len(names)} names")
    return {str(n): int(c) for n, c in zip(names, matrix)}


def select_labels(
    counts_or_matrix: Mapping[str, int] | np.ndarray,
    names: Sequence[str] | None = None,
    *,
    min_count: int = 200,
    counted_on: CountedOn = "all",
    test_fraction: float = 0.2,
    exclude: Iterable[str] = (),
) -> list[str]:
    """The labels that pass the rule, most frequent first (ties by name).

    ``counts_or_matrix``: a mapping label -> positive count, a vector of counts, or a 0/1 matrix
    (images x labels; then ``names`` names its columns). ``exclude`` removes labels that are not
    findings (e.g. a dataset's "exclude" marker) before the rule applies.
    """
    if counted_on not in ("all", "test"):
        raise ValueError(f"counted_on must be 'all' or 'test', got {counted_on!r}")
    if not 0 < test_fraction <= 1:
        raise ValueError(f"test_fraction must be in (0, 1], got {test_fraction}")
    counts = _counts(counts_or_matrix, names)
    skip = set(exclude)
    scale = test_fraction if counted_on == "test" else 1.0
    kept = [(label, c) for label, c in counts.items() if label not in skip and c * scale >= min_count]
    return [label for label, _ in sorted(kept, key=lambda item: (-item[1], item[0]))]


@dataclass(frozen=True)
class SelectionComparison:
    """How a rule's labels compare with a pinned label set."""

    rule: tuple[str, ...]
    pinned: tuple[str, ...]
    both: tuple[str, ...]
    only_rule: tuple[str, ...]
    only_pinned: tuple[str, ...]

    @property
    def same_set(self) -> bool:
        return not self.only_rule and not self.only_pinned

    @property
    def same_order(self) -> bool:
        return self.rule == self.pinned

    def as_dict(self) -> dict:
        return {"same_set": self.same_set, "same_order": self.same_order, "n_rule": len(self.rule),
                "n_pinned": len(self.pinned), "only_rule": list(self.only_rule),
                "only_pinned": list(self.only_pinned)}


def compare_selection(rule: Sequence[str], pinned: Sequence[str]) -> SelectionComparison:
    """Labels in both, only in the rule's output, only in the pinned set (each in its list's order)."""
    rule_set, pinned_set = set(rule), set(pinned)
    return SelectionComparison(
        rule=tuple(rule),
        pinned=tuple(pinned),
        both=tuple(label for label in pinned if label in rule_set),
        only_rule=tuple(label for label in rule if label not in pinned_set),
        only_pinned=tuple(label for label in pinned if label not in rule_set),
    )
