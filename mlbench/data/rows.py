"""The row checks and whole-file profile that every label-file reader shares.

A dataset reader walks its label file row by row; the first checks are the same for every family
and must give the same skip reasons, in the same order (a row gets the first that applies):
``missing_image_id``, ``unsafe_path``, ``duplicate_image_id`` (the first row is kept),
``missing_patient_id``, the projection check (``projection_not_selected`` or a family's own reason)
and ``nan_labels``. :class:`RowChecks` runs them with the family's column names in the details;
the family then parses its labels and finds its image. :func:`label_file_profile` gives the facts
``mlbench datasets inspect`` shows for any such file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pandas as pd

from mlbench.data import Skip
from mlbench.data.labelfile import unsafe_name_reason

PROJECTION_NOT_SELECTED = "projection_not_selected"
# How pandas and spreadsheets write a missing labels cell.
MISSING_CELLS = frozenset({"", "nan", "none", "null", "na", "n/a"})


def is_missing(text: str) -> bool:
    """True when a labels cell holds nothing (empty, or how pandas and spreadsheets write NaN)."""
    return text.strip().lower() in MISSING_CELLS


@dataclass(frozen=True)
class RowColumns:
    """The label file's own names for the columns the shared checks read (they appear in details)."""

    image_id: str
    patient_id: str
    projection: str
    labels: str


@dataclass
class RowChecks:
    """The shared checks over one pass of a label file; ``n`` is the 1-based data row.

    Each method returns the row's ``Skip`` or None; a family calls them in the order of the module
    docstring. ``projections``: the values kept (None keeps all); ``projection_reason`` the skip
    reason for the others. ``safe_name`` says what an unsafe name should have been.
    """

    columns: RowColumns
    projections: Iterable[str] | None = None
    projection_reason: str = PROJECTION_NOT_SELECTED
    safe_name: str = "a plain file name"
    seen: dict[str, int] = field(default_factory=dict)  # image id -> the row that first named it

    def __post_init__(self) -> None:
        self.projections = None if self.projections is None else frozenset(self.projections)

    def image(self, n: int, image_id: str, folder: tuple[str, str] | None = None) -> Skip | None:
        """``missing_image_id``, ``unsafe_path`` (of the id, then of ``folder`` = (column, value)),
        ``duplicate_image_id``; a row that passes is remembered for the duplicate check."""
        column = self.columns.image_id
        if not image_id:
            return Skip(f"row {n}", "missing_image_id", f"{column} is empty")
        bad = unsafe_name_reason(image_id)
        if bad:
            # A hostile name is not echoed as the item (it may hold control characters).
            return Skip(f"row {n}", "unsafe_path", f"{column} {image_id!r} {bad}; expected {self.safe_name}")
        if folder is not None:
            folder_column, folder_name = folder
            bad = unsafe_name_reason(folder_name)
            if bad:
                return Skip(image_id, "unsafe_path", f"{folder_column} {folder_name!r} {bad}; expected {self.safe_name}")
        first = self.seen.get(image_id)
        if first is not None:
            return Skip(image_id, "duplicate_image_id",
                        f"row {n} repeats the {column} of row {first} (the first is kept)")
        self.seen[image_id] = n
        return None

    def patient(self, n: int, image_id: str, patient_id: str) -> Skip | None:
        """``missing_patient_id`` for an empty (already normalised) patient id."""
        if not patient_id:
            return Skip(image_id, "missing_patient_id", f"row {n}: {self.columns.patient_id} is empty")
        return None

    def projection(self, image_id: str, projection: str) -> Skip | None:
        """The projection reason for a (stripped) projection outside ``projections``."""
        if self.projections is not None and projection not in self.projections:
            return Skip(image_id, self.projection_reason, f"{self.columns.projection} {projection or '(empty)'}")
        return None

    def labels(self, n: int, image_id: str, labels_text: str) -> Skip | None:
        """``nan_labels`` for a labels cell that holds nothing (:func:`is_missing`)."""
        if is_missing(labels_text):
            return Skip(image_id, "nan_labels", f"row {n}: {self.columns.labels} is empty")
        return None


def count_reasons(skipped: Iterable[Skip]) -> dict[str, int]:
    """How many skips each reason has, sorted by reason."""
    reasons: dict[str, int] = {}
    for skip in skipped:
        reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
    return dict(sorted(reasons.items()))


def unknown_label_counts(skipped: Iterable[Skip]) -> dict[str, int]:
    """Each ``unknown_label`` skip's label and how often it occurs, most frequent first."""
    unknown: dict[str, int] = {}
    for skip in skipped:
        if skip.reason == "unknown_label":
            unknown[skip.detail] = unknown.get(skip.detail, 0) + 1
    return dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))


def label_file_profile(projection: pd.Series, patients: pd.Series, skipped: Iterable[Skip],
                       extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Whole-file facts over every row, whatever the projection: rows, images per projection,
    patients (all and per projection), then ``extra`` (a family's own facts) and
    ``skipped_by_reason`` (the rows each check would skip).

    ``projection`` and ``patients`` are the file's stripped (normalised) columns, one value per row;
    an empty patient id is not counted as a patient.
    """
    named = patients[patients != ""]
    return {
        "rows": int(len(projection)),
        "projections": {str(k): int(v) for k, v in projection.value_counts().items()},
        "patients": int(named.nunique()),
        "patients_per_projection": {str(k): int(v) for k, v in named.groupby(projection).nunique().items()},
        **(extra or {}),
        "skipped_by_reason": count_reasons(skipped),
    }
