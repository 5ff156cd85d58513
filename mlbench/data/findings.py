"""Which labels two benchmarks share, through the vocabulary of findings each maps its labels onto.

A run of benchmark S is scored on benchmark T's images for label ``s`` of S when ``s`` and a label
``t`` of T map to the same term of the same vocabulary (:class:`mlbench.contracts.benchmark.SharedFindings`)
and ``t`` is *exactly* that term: T's column for ``t`` is then the finding's truth, positives and
negatives. ``s`` may be exactly the term or one kind of it (``narrower``: the model was trained to see
a kind of the finding and is asked to find all of it; the pair says so). A ``t`` that is only one kind
of the finding is not used as truth: its negatives may carry the finding's other kinds, which a good
model would be penalised for seeing. Labels are named in S's spelling everywhere (the run's).

No torch here: the pairing and the counts are plain data, cheap enough for a check before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlbench.contracts.benchmark import EXACT, Benchmark
from mlbench.data import Records
from mlbench.data.labels import label_matrices


@dataclass(frozen=True)
class SharedLabel:
    """One label scored on the other benchmark: the run's ``label``, the other's ``target_label``, their term."""

    label: str
    target_label: str
    term: str
    relation: str  # the run label's relation to the term (the target label is exactly the term)
    why: str = ""  # the run benchmark's reason for its mapping

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "target_label": self.target_label, "term": self.term,
                "relation": self.relation, "why": self.why}


@dataclass
class Sharing:
    """What benchmark ``source`` shares with ``target``: the pairs, and each other label of ``source`` with why not."""

    source: str
    target: str
    vocabulary: str | None
    shared: list[SharedLabel] = field(default_factory=list)
    not_shared: dict[str, str] = field(default_factory=dict)  # source label -> why it is not scored

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.shared]

    @property
    def target_labels(self) -> list[str]:
        return [s.target_label for s in self.shared]


def share(source: Benchmark, target: Benchmark) -> Sharing:
    """The labels of ``source`` that can be scored on ``target``'s images (module docstring), in ``source``'s order."""
    mine, theirs = source.findings, target.findings
    vocabulary = mine.vocabulary if mine is not None else None
    out = Sharing(source.name, target.name, vocabulary)
    if mine is None or theirs is None or mine.vocabulary != theirs.vocabulary:
        if mine is None:
            why = f"benchmark '{source.name}' maps its labels onto no vocabulary of findings"
        elif theirs is None:
            why = f"benchmark '{target.name}' maps its labels onto no vocabulary of findings"
        else:
            why = (f"'{source.name}' names findings in vocabulary '{mine.vocabulary}', '{target.name}' in "
                   f"'{theirs.vocabulary}'")
        out.not_shared = {label: why for label in source.labels}
        return out
    exact = {f.term: label for label, f in theirs.labels.items() if f.relation == EXACT and label in target.labels}
    kinds = {f.term: label for label, f in theirs.labels.items() if f.relation != EXACT and label in target.labels}
    for label in source.labels:
        finding = mine.labels.get(label)
        if finding is None:
            reason = mine.left_out.get(label)
            out.not_shared[label] = (f"left out of the mapping: {reason}" if reason
                                     else f"maps to no term of '{mine.vocabulary}'")
        elif finding.term in exact:
            out.shared.append(SharedLabel(label, exact[finding.term], finding.term, finding.relation, finding.why))
        elif finding.term in kinds:
            out.not_shared[label] = (f"'{target.name}' labels only one kind of {finding.term} ('{kinds[finding.term]}'): "
                                     "its negatives may carry other kinds, so it is no truth for the finding")
        else:
            out.not_shared[label] = f"'{target.name}' labels no {finding.term}"
    return out


def finding_counts(benchmark: Benchmark, records: Records) -> pd.DataFrame:
    """Per mapped label of ``benchmark``: its term, relation and how many of the benchmark's images carry it.

    Columns: label, term, relation, n_images (the benchmark's images, as its split keeps them),
    n_test (those in its pinned test set; None without one). The counts come from the same label
    matrix the split is made of (:func:`mlbench.data.labels.label_matrices`)."""
    shared = benchmark.findings
    columns = ["label", "term", "relation", "n_images", "n_test"]
    if shared is None:
        return pd.DataFrame(columns=columns)
    matrix = label_matrices(records, benchmark)
    index = {label: j for j, label in enumerate(benchmark.labels)}
    test = (np.asarray(benchmark.fixed_test(matrix.frame), dtype=bool) if benchmark.fixed_test is not None
            else None)
    rows: list[dict[str, Any]] = []
    for label, finding in shared.labels.items():
        column = matrix.Y[:, index[label]].astype(bool)
        rows.append({"label": label, "term": finding.term, "relation": finding.relation,
                     "n_images": int(column.sum()), "n_test": None if test is None else int((column & test).sum())})
    return pd.DataFrame(rows, columns=columns)
