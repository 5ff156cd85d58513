"""The ``chexpert-format`` dataset: a label CSV in CheXpert's layout and the image folder it points into.

Columns: ``Path`` (the image, relative to the image root, ``/``-separated, e.g.
``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``), ``Sex``, ``Age``,
``Frontal/Lateral``, ``AP/PA``, then one column per finding whose cells are ``1.0`` (positive),
``0.0`` (negative), ``-1.0`` (uncertain) or blank (not mentioned: negative, as CheXpert's authors
read it). The patient is the ``patientNNNNN`` component of the path.

Option ``policy`` (what an uncertain cell becomes): ``ones`` (U-Ones), ``zeros`` (U-Zeros) or
``ignore`` (U-Ignore: an unknown cell, given in mlbench's ``unknown_findings`` column, which mlbench
leaves out of the loss, the metrics and every count). Every policy stratifies its split on
"uncertain counts as positive" (``stratify_findings``), so the patients land in the same subsets.

Rows left out become Skips, in the order checked: ``missing_path``, ``unsafe_path`` (absolute, ``..``
or a link out of the root), ``duplicate_path`` (the first row is kept), ``missing_patient`` (no
``patientNNNNN`` in the path), ``bad_label_value`` (a finding cell none of 1 / 0 / -1 / blank),
``missing_image``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import pandas as pd

from mlbench import (DatasetError, DataSource, is_marked_synthetic, Records, sha256_file, Skip, STRATIFY_COLUMN,
                    SYNTHETIC_KIND, UNKNOWN_COLUMN)

KIND = "chexpert-format"
META_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
POLICIES = ("ones", "zeros", "ignore")
PATIENT = re.compile(r"(?:^|/)(patient\d+)(?:/|$)")
CELLS = {"1": 1, "1.0": 1, "0": 0, "0.0": 0, "-1": -1, "-1.0": -1, "": None}


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class CheXpertFormatDataset:
    """Reads a CheXpert-format label CSV (module docstring)."""

    name = KIND
    OPTIONS = {
        "policy": {"type": "str", "default": "ones", "choices": list(POLICIES), "changes_labels": True,
                   "unknown_cells": ["ignore"],
                   "help": "an uncertain (-1) cell: ones (U-Ones), zeros (U-Zeros) or ignore (U-Ignore: unknown)"},
    }

    def __init__(self, *, policy: str = "ones") -> None:
        if policy not in POLICIES:
            raise DatasetError(f"chexpert-format: policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.policy = policy

    def read(self, source: DataSource) -> Records:
        csv_path = Path(source.csv)
        if not csv_path.is_file():
            raise DatasetError(f"{csv_path}: CheXpert-format label file not found")
        try:
            raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{csv_path}: cannot read it as a CSV file: {exc}") from None
        missing = [c for c in META_COLUMNS if c not in raw.columns]
        if missing:
            raise DatasetError(f"{csv_path}: missing column(s) {', '.join(missing)}; expected "
                               f"{', '.join(META_COLUMNS)}, then one column per finding")
        findings = [c for c in raw.columns if c not in META_COLUMNS]
        if not findings:
            raise DatasetError(f"{csv_path}: no finding column after {', '.join(META_COLUMNS)}")
        root = os.path.realpath(source.images)
        rows, skipped, seen = [], [], {}
        uncertain = 0
        for n, record in enumerate(raw.to_dict("records"), start=2):
            path = record["Path"].strip()
            if not path:
                skipped.append(Skip(f"line {n}", "missing_path", "Path is empty"))
                continue
            relative = PurePosixPath(path)
            real = os.path.realpath(os.path.join(root, *relative.parts))
            if relative.is_absolute() or ".." in relative.parts or not _inside(real, root):
                skipped.append(Skip(f"line {n}", "unsafe_path", "Path is not a path inside the image root"))
                continue
            if path in seen:
                skipped.append(Skip(path, "duplicate_path", f"line {n} repeats line {seen[path]} (the first is kept)"))
                continue
            seen[path] = n
            patient = PATIENT.search(path)
            if patient is None:
                skipped.append(Skip(path, "missing_patient", f"line {n}: no patientNNNNN folder in Path"))
                continue
            positive, unsure, bad = [], [], None
            for column in findings:
                cell = record[column].strip()
                if cell not in CELLS:
                    bad = Skip(path, "bad_label_value", f"line {n}: column {column!r} is not 1, 0, -1 or blank")
                    break
                if CELLS[cell] == 1:
                    positive.append(column)
                elif CELLS[cell] == -1:
                    unsure.append(column)
            if bad is not None:
                skipped.append(bad)
                continue
            if not os.path.isfile(real):
                skipped.append(Skip(path, "missing_image", f"line {n}: no file {path} under the image root"))
                continue
            uncertain += len(unsure)
            rows.append({"image_id": path, "patient_id": patient.group(1), "image_path": real,
                         "findings": tuple(positive + (unsure if self.policy == "ones" else [])),
                         STRATIFY_COLUMN: tuple(positive + unsure),
                         UNKNOWN_COLUMN: tuple(unsure if self.policy == "ignore" else ())})
        columns = ["image_id", "patient_id", "image_path", "findings", STRATIFY_COLUMN, UNKNOWN_COLUMN]
        frame = pd.DataFrame(rows, columns=columns)
        kind = SYNTHETIC_KIND if is_marked_synthetic(csv_path) else KIND
        return Records(frame=frame, kind=kind, source_sha256=sha256_file(csv_path), skipped=skipped,
                       facts={"policy": self.policy, "uncertain_cells": uncertain, "blank_means": "0 (absent)"})
