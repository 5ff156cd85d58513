"""Reading PadChest's label CSV into mlbench ``Records``.

The official file (PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv, often gzipped) has an
unnamed index column, then ImageID, ImageDir, ..., Labels, ... (PAPER-FACTS lists them). Only a few
columns matter here; all are read as strings because several of the others are mixed-type.

Nothing is dropped silently: every row left out becomes a ``Skip`` with one reason, and each
label outside the term tree becomes a ``Skip(reason="unknown_label")`` while the row keeps its other
labels. Image files are not opened here (the preprocessing cache detects missing or broken ones).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from mlbench.data import DataSource, Records, Skip
from mlbench.data.imagepaths import ImageRoot
from mlbench.data.labelfile import read_columns, unsafe_name_reason
from mlbench.demo import SYNTHETIC_KIND, is_marked_synthetic
from mlbench.io import sha256_file

REQUIRED_COLUMNS = ("ImageID", "ImageDir", "PatientID", "Projection", "Labels")
OPTIONAL_COLUMNS = ("StudyID",)
# Written by the demo generator beside its CSV: the records are then synthetic, not PadChest.
# Labels that carry no finding: PadChest's "exclude" marks a discarded report, '' a stray comma.
IGNORED_LABELS = frozenset({"", "exclude"})
# How pandas and spreadsheets write a missing Labels cell.
_MISSING = frozenset({"", "nan", "none", "null", "na", "n/a"})
# Characters that would let a name leave its folder (Windows drive colons included), and
# control characters (NUL among them) that have no place in a file name.

FRAME_COLUMNS = ("image_id", "patient_id", "study_id", "image_dir", "projection", "image_path", "findings")


class _LabelParser:
    """Parses Labels literals; the real CSV has ~29k distinct strings for 160k rows, so it caches."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[str, ...] | None, str]] = {}

    def __call__(self, text: str) -> tuple[tuple[str, ...] | None, str]:
        """(labels, "") on success, or (None, why) when the literal is not a list of strings."""
        hit = self._cache.get(text)
        if hit is None:
            hit = self._cache[text] = self._parse(text)
        return hit

    @staticmethod
    def _parse(text: str) -> tuple[tuple[str, ...] | None, str]:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            return None, f"not a Python literal ({type(exc).__name__}): {text[:80]!r}"
        if not isinstance(value, list):
            return None, f"expected a list of strings, got {type(value).__name__}: {text[:80]!r}"
        if not all(isinstance(item, str) for item in value):
            kinds = sorted({type(item).__name__ for item in value if not isinstance(item, str)})
            return None, f"list items must be strings, found {', '.join(kinds)}: {text[:80]!r}"
        return tuple(item.strip() for item in value), ""


def _read_columns(path: Path) -> pd.DataFrame:
    return read_columns(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, what="PadChest's label CSV")


def read_padchest_csv(
    source: DataSource,
    *,
    projections: Iterable[str] | None = ("PA",),
    known_labels: frozenset[str] | None = None,
) -> Records:
    """Read a PadChest-format CSV into Records (one row per usable image, every skip listed).

    ``projections``: the Projection values kept (None keeps all; the paper keeps PA). Rows left out
    by it are skipped as ``not_pa`` (or ``projection_not_selected`` for another choice).
    ``known_labels``: the labels a row may carry (the term tree's); others are recorded as
    ``unknown_label`` and dropped from that row. ``None`` accepts every label.

    Skip reasons, in the order they are checked (a row gets the first that applies):
    ``missing_image_id``, ``unsafe_path``, ``duplicate_image_id`` (the first row is kept),
    ``missing_patient_id``, ``not_pa``, ``nan_labels``, ``unparseable_labels``, ``outside_root`` (the
    image's folder or file is a link leading out of the image root). ``item`` is the ImageID, or
    ``row N`` (the N-th data row, 1-based) where it is empty or unsafe.
    """
    csv_path = Path(source.csv)
    return _records(_read_columns(csv_path), csv_path, Path(source.images), projections, known_labels)


def _records(raw: pd.DataFrame, csv_path: Path, images: Path, projections: Iterable[str] | None,
             known_labels: frozenset[str] | None) -> Records:
    # Plain strings: pathlib per row costs seconds on the 160k-row file; ImageRoot resolves each
    # ImageDir once and then costs one lstat per row.
    root = ImageRoot(images)
    keep_projection = None if projections is None else frozenset(projections)
    projection_reason = "not_pa" if keep_projection == {"PA"} else "projection_not_selected"
    has_study = "StudyID" in raw.columns
    parse = _LabelParser()

    out: dict[str, list] = {c: [] for c in FRAME_COLUMNS}
    skipped: list[Skip] = []
    seen: dict[str, int] = {}
    columns = [raw[c].tolist() for c in ("ImageID", "ImageDir", "PatientID", "Projection", "Labels")]
    studies = raw["StudyID"].tolist() if has_study else [""] * len(raw)
    for n, (image_id, image_dir, patient_id, projection, labels_text, study_id) in enumerate(
            zip(*columns, studies), start=1):
        image_id, image_dir, patient_id = image_id.strip(), image_dir.strip(), patient_id.strip()
        if not image_id:
            skipped.append(Skip(f"row {n}", "missing_image_id", "ImageID is empty"))
            continue
        bad = unsafe_name_reason(image_id)
        bad_dir = unsafe_name_reason(image_dir)
        if bad or bad_dir:
            where = f"ImageID {image_id!r} {bad}" if bad else f"ImageDir {image_dir!r} {bad_dir}"
            # A hostile name is not echoed as the item (it may hold control characters).
            skipped.append(Skip(f"row {n}" if bad else image_id, "unsafe_path",
                                f"{where}; expected a plain name inside the image folder"))
            continue
        if image_id in seen:
            skipped.append(Skip(image_id, "duplicate_image_id",
                                f"row {n} repeats the ImageID of row {seen[image_id]} (the first is kept)"))
            continue
        seen[image_id] = n
        if not patient_id:
            skipped.append(Skip(image_id, "missing_patient_id", f"row {n}: PatientID is empty"))
            continue
        projection = projection.strip()
        if keep_projection is not None and projection not in keep_projection:
            skipped.append(Skip(image_id, projection_reason, f"Projection {projection or '(empty)'}"))
            continue
        if labels_text.strip().lower() in _MISSING:
            skipped.append(Skip(image_id, "nan_labels", f"row {n}: Labels is empty"))
            continue
        labels, why = parse(labels_text)
        if labels is None:
            skipped.append(Skip(image_id, "unparseable_labels", f"row {n}: Labels {why}"))
            continue
        path = root.resolve(f"{image_dir}{os.sep}{image_id}")
        if path is None:
            skipped.append(root.refusal(image_id, f"{image_dir}{os.sep}{image_id}"))
            continue
        findings: set[str] = set()
        for label in labels:
            if label in IGNORED_LABELS:
                continue
            if known_labels is not None and label not in known_labels:
                skipped.append(Skip(image_id, "unknown_label", label))
                continue
            findings.add(label)
        out["image_id"].append(image_id)
        out["patient_id"].append(patient_id)
        out["study_id"].append(study_id.strip())
        out["image_dir"].append(image_dir)
        out["projection"].append(projection)
        out["image_path"].append(path)
        out["findings"].append(tuple(sorted(findings)))

    frame = pd.DataFrame(out, columns=list(FRAME_COLUMNS))
    kind = SYNTHETIC_KIND if is_marked_synthetic(csv_path) else "padchest"
    return Records(frame=frame, kind=kind, source_sha256=sha256_file(csv_path), skipped=skipped)


def profile_padchest_csv(source: DataSource, *, known_labels: frozenset[str] | None = None) -> dict:
    """Whole-file facts for a validation report, whatever the projection.

    Rows, images per projection, patients (all and per projection), and the rows each check
    would skip over all projections (``skipped_by_reason``), with the unknown labels and how often
    each occurs.
    """
    csv_path = Path(source.csv)
    raw = _read_columns(csv_path)
    records = _records(raw, csv_path, Path(source.images), None, known_labels)
    projection = raw["Projection"].str.strip()
    patients = raw["PatientID"].str.strip()
    reasons: dict[str, int] = {}
    unknown: dict[str, int] = {}
    for skip in records.skipped:
        reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
        if skip.reason == "unknown_label":
            unknown[skip.detail] = unknown.get(skip.detail, 0) + 1
    return {
        "rows": int(len(raw)),
        "projections": {str(k): int(v) for k, v in projection.value_counts().items()},
        "patients": int(patients[patients != ""].nunique()),
        "patients_per_projection": {str(k): int(v) for k, v in
                                    patients[patients != ""].groupby(projection).nunique().items()},
        "skipped_by_reason": dict(sorted(reasons.items())),
        "unknown_labels": dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
