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

from mlbench import (DataSource, ImageRoot, is_marked_synthetic, label_file_profile, PROJECTION_NOT_SELECTED,
                    read_columns, Records, RowChecks, RowColumns, sha256_file, Skip, SYNTHETIC_KIND,
                    unknown_label_counts)

REQUIRED_COLUMNS = ("ImageID", "ImageDir", "PatientID", "Projection", "Labels")
OPTIONAL_COLUMNS = ("StudyID",)
# Labels that carry no finding: PadChest's "exclude" marks a discarded report, '' a stray comma.
IGNORED_LABELS = frozenset({"", "exclude"})
COLUMNS = RowColumns(image_id="ImageID", patient_id="PatientID", projection="Projection", labels="Labels")
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
    keep = None if projections is None else frozenset(projections)
    checks = RowChecks(COLUMNS, keep, projection_reason="not_pa" if keep == {"PA"} else PROJECTION_NOT_SELECTED,
                       safe_name="a plain name inside the image folder")
    has_study = "StudyID" in raw.columns
    parse = _LabelParser()

    out: dict[str, list] = {c: [] for c in FRAME_COLUMNS}
    skipped: list[Skip] = []
    columns = [raw[c].tolist() for c in ("ImageID", "ImageDir", "PatientID", "Projection", "Labels")]
    studies = raw["StudyID"].tolist() if has_study else [""] * len(raw)
    for n, (image_id, image_dir, patient_id, projection, labels_text, study_id) in enumerate(
            zip(*columns, studies), start=1):
        image_id, image_dir = image_id.strip(), image_dir.strip()
        skip = checks.image(n, image_id, folder=("ImageDir", image_dir))
        if skip is None:
            patient_id, projection = patient_id.strip(), projection.strip()
            skip = (checks.patient(n, image_id, patient_id) or checks.projection(image_id, projection)
                    or checks.labels(n, image_id, labels_text))
        if skip is not None:
            skipped.append(skip)
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
    profile = label_file_profile(projection, patients, records.skipped)
    profile["unknown_labels"] = unknown_label_counts(records.skipped)
    return profile
