"""Reading a folder dataset's CSV into ``Records`` (the layout is in :mod:`mlbench_folder.dataset`).

Nothing is dropped silently. A row left out becomes a ``Skip`` with the first reason that applies:
``missing_image_id`` (an empty path), ``unsafe_path`` (a control character in it),
``outside_root`` (an absolute path, a ``..`` leading out, a link out of the folder),
``duplicate_image_id`` (the first row is kept), ``missing_patient_id`` (an empty group cell),
``bad_label_value`` (a per-label cell that is not 1, 0, -1 or blank), ``missing_image``,
``empty_image``. What the cells held (uncertain and blank counts) and the labels dropped by
``min_count`` are ``Records.facts``, which a run writes into its manifest.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlbench import (DataSource, DatasetError, ImageRoot, is_marked_synthetic, OUTSIDE_ROOT, read_columns, Records,
                    sha256_file, Skip, STRATIFY_COLUMN, SYNTHETIC_KIND, UNKNOWN_COLUMN)
from mlbench_folder.dataset import (AUTO, BLANK_CELLS, CELL_VALUES, GROUP_NAMES, JOINED_NAMES, KIND, NONE, POSITIVE,
                                    UNCERTAIN, WHAT)

FRAME_COLUMNS = ("image_id", "patient_id", "image_path", "findings", STRATIFY_COLUMN)
# Only the ignore policy leaves cells unknown: the others' frames stay as they were, column for column.
IGNORE_COLUMNS = FRAME_COLUMNS + (UNKNOWN_COLUMN,)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Layout:
    """Which columns hold what: the group column (None: each image its own group) and the labels."""

    group: str | None
    label_columns: tuple[str, ...]  # one per label, or the one joined column
    joined: bool

    def describe(self, separator: str) -> dict[str, str]:
        labels = (f"one column {self.label_columns[0]!r} of labels joined by {separator!r}" if self.joined else
                  f"one column per label: {', '.join(self.label_columns)} (1 / 0 / -1 / blank)")
        group = f"column {self.group!r}" if self.group else "none: each image is its own group"
        return {"label_layout": labels, "group": group}


def _header(csv_path: Path) -> list[str]:
    try:
        return [str(c) for c in pd.read_csv(csv_path, nrows=0).columns]
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{csv_path}: cannot read it as a CSV file: {exc}") from None


def _is_cell_column(values: pd.Series) -> bool:
    """Every cell 1 / 0 / -1 / blank, and at least one not blank: a per-label column."""
    cells = values.str.strip().str.lower()
    return bool(cells.isin(list(CELL_VALUES) + list(BLANK_CELLS)).all() and (~cells.isin(BLANK_CELLS)).any())


def find_layout(csv_path: Path, raw: pd.DataFrame, options: Any) -> Layout:
    """The group and label columns the options name, or find when ``auto`` (only when unambiguous)."""
    header = list(raw.columns)
    lowered = {c.lower(): c for c in header}
    if options.group_column == NONE:
        group = None
    elif options.group_column == AUTO:
        found = [lowered[n] for n in GROUP_NAMES if n in lowered]
        if len(found) > 1:
            raise DatasetError(f"{csv_path}: group_column=auto finds {', '.join(found)}; name one with "
                               "--dataset-option group_column=COLUMN (or none)")
        group = found[0] if found else None
    else:
        group = options.group_column
    taken = {options.path_column, group}
    if options.labels != AUTO:
        columns = tuple(c.strip() for c in options.labels.split(","))
        if not all(columns):
            raise DatasetError(f"{csv_path}: labels={options.labels!r} names an empty column; expected a column, "
                               "or columns separated by commas")
        clash = [c for c in columns if c in taken]
        if clash:
            raise DatasetError(f"{csv_path}: labels names {clash[0]!r}, which is the path or group column")
        joined = len(columns) == 1 and columns[0] in raw.columns and not _is_cell_column(raw[columns[0]])
        return Layout(group, columns, joined)
    joined_columns = [lowered[n] for n in JOINED_NAMES if n in lowered and lowered[n] not in taken]
    if len(joined_columns) > 1:
        raise DatasetError(f"{csv_path}: labels=auto finds {', '.join(joined_columns)}; name one with "
                           "--dataset-option labels=COLUMN")
    if joined_columns:
        return Layout(group, (joined_columns[0],), True)
    cells = tuple(c for c in header if c not in taken and _is_cell_column(raw[c]))
    if not cells:
        raise DatasetError(f"{csv_path}: labels=auto finds no labels column (labels or findings) and no column of "
                           "1 / 0 / -1 / blank cells; name them with --dataset-option labels=COLUMN[,COLUMN...]")
    return Layout(group, cells, False)


def relative_image_path(text: str) -> str | None:
    """``text`` as a '/'-separated path inside the folder, or None when it is absolute or climbs out."""
    path = text.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        return None
    path = posixpath.normpath(path)
    return None if path == ".." or path.startswith("../") or path == "." else path


def read_folder_csv(source: DataSource, options: Any) -> Records:
    """Read the CSV of a folder dataset (``options``: a FolderDataset) into Records."""
    csv_path, images = Path(source.csv), Path(source.images)
    read_columns(csv_path, (options.path_column,), what=WHAT)  # the file, its header and its path column
    header = _header(csv_path)
    named = [options.path_column]
    if options.group_column not in (AUTO, NONE):
        named.append(options.group_column)
    if options.labels != AUTO:
        named += [c.strip() for c in options.labels.split(",") if c.strip()]
    raw = read_columns(csv_path, tuple(dict.fromkeys(named)), tuple(header), what=WHAT)
    layout = find_layout(csv_path, raw, options)
    root = ImageRoot(images)

    columns = IGNORE_COLUMNS if options.policy == "ignore" else FRAME_COLUMNS
    rows: dict[str, list] = {c: [] for c in columns}
    skipped: list[Skip] = []
    seen: dict[str, int] = {}
    uncertain, blank, unlabelled = 0, 0, 0
    label_order: dict[str, None] = dict.fromkeys(() if layout.joined else layout.label_columns)
    paths = raw[options.path_column].tolist()
    groups = raw[layout.group].tolist() if layout.group else None
    cells = [raw[c].tolist() for c in layout.label_columns]
    for n, text in enumerate(paths, start=1):
        text = text.strip()
        if not text:
            skipped.append(Skip(f"row {n}", "missing_image_id", f"{options.path_column} is empty"))
            continue
        if _CONTROL.search(text):
            skipped.append(Skip(f"row {n}", "unsafe_path", f"{options.path_column} {text!r} holds a control "
                                                           "character; expected a path relative to the image folder"))
            continue
        image_id = relative_image_path(text)
        if image_id is None:
            skipped.append(Skip(f"row {n}", OUTSIDE_ROOT, f"{options.path_column} {text!r} leads outside the image "
                                                          f"folder {images}; expected a path relative to it"))
            continue
        if image_id in seen:
            skipped.append(Skip(image_id, "duplicate_image_id", f"row {n} repeats the {options.path_column} of row "
                                                                f"{seen[image_id]} (the first is kept)"))
            continue
        seen[image_id] = n
        group = groups[n - 1].strip() if groups is not None else image_id
        if not group:
            skipped.append(Skip(image_id, "missing_patient_id", f"row {n}: {layout.group} is empty"))
            continue
        positive: list[str] = []
        unsure: list[str] = []
        row_blank = row_uncertain = 0
        bad = None
        if layout.joined:
            cell = cells[0][n - 1].strip()
            items = [] if cell.lower() in BLANK_CELLS else [i.strip() for i in cell.split(options.separator)]
            positive = sorted({i for i in items if i})
            unlabelled += not positive
        else:
            for column, values in zip(layout.label_columns, cells):
                cell = values[n - 1].strip().lower()
                if cell in BLANK_CELLS:
                    row_blank += 1  # not mentioned: absent (0), counted
                elif cell not in CELL_VALUES:
                    bad = Skip(image_id, "bad_label_value", f"row {n}: column {column!r} holds {values[n - 1]!r}; "
                                                            "expected 1, 0, -1 or blank")
                    break
                elif CELL_VALUES[cell] == POSITIVE:
                    positive.append(column)
                elif CELL_VALUES[cell] == UNCERTAIN:
                    unsure.append(column)
                    row_uncertain += 1
        if bad is not None:
            skipped.append(bad)
            continue
        real = root.resolve(image_id)
        if real is None:
            skipped.append(root.refusal(image_id, image_id))
            continue
        try:
            empty = os.path.getsize(real) == 0
        except OSError:
            skipped.append(Skip(image_id, "missing_image", f"row {n}: no file {image_id} under {images}"))
            continue
        if empty:
            skipped.append(Skip(image_id, "empty_image", f"row {n}: {image_id} is 0 bytes"))
            continue
        blank += row_blank
        uncertain += row_uncertain
        chosen = positive + (unsure if options.policy == "ones" else [])
        rows["image_id"].append(image_id)
        rows["patient_id"].append(group)
        rows["image_path"].append(real)
        rows["findings"].append(tuple(chosen))
        rows[STRATIFY_COLUMN].append(tuple(positive + unsure))  # the same for every policy
        if options.policy == "ignore":
            rows[UNKNOWN_COLUMN].append(tuple(unsure))
        for label in positive + unsure:
            label_order.setdefault(label, None)

    frame = pd.DataFrame(rows, columns=list(columns))
    counts = {label: 0 for label in (label_order if not layout.joined else sorted(label_order))}
    for findings in frame[STRATIFY_COLUMN]:
        for label in findings:
            counts[label] += 1
    kept = tuple(label for label, count in counts.items() if count >= options.min_count)
    dropped = {label: f"{count} image(s) < min_count {options.min_count}"
               for label, count in counts.items() if count < options.min_count}
    if len(frame) and not kept:
        most = max(counts.items(), key=lambda kv: kv[1], default=("(none)", 0))
        raise DatasetError(f"{csv_path}: no label reaches min_count {options.min_count} (the most frequent, "
                           f"{most[0]!r}, has {most[1]} image(s)); expected a lower --dataset-option min_count")
    keep = frozenset(kept)
    for column in ("findings", STRATIFY_COLUMN) + ((UNKNOWN_COLUMN,) if options.policy == "ignore" else ()):
        frame[column] = [tuple(label for label in f if label in keep) for f in frame[column]]
    facts = {**layout.describe(options.separator), "policy": options.policy, "blank_means": "0 (absent)",
             "min_count": options.min_count, "labels_kept": list(kept), "labels_dropped": dropped,
             "uncertain_cells": uncertain, "blank_cells": blank,
             # Columns read as neither path, group nor labels: said, so a label column auto missed is seen.
             "other_columns": [c for c in raw.columns if c not in {options.path_column, layout.group,
                                                                    *layout.label_columns}]}
    if layout.joined:
        facts["images_without_labels"] = unlabelled
    kind = SYNTHETIC_KIND if is_marked_synthetic(csv_path) else KIND
    return Records(frame=frame, kind=kind, source_sha256=sha256_file(csv_path), skipped=skipped, labels=kept,
                   facts=facts)
