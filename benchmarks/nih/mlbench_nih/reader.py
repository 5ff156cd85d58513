"""Reading NIH ChestX-ray14's label file into mlbench ``Records``.

The label file is ``Data_Entry_2017_v2020.csv`` (or the older ``Data_Entry_2017.csv``), plain or
gzipped: one row per image with ``Image Index`` (the PNG's name), ``Finding Labels``
(``|``-separated; ``No Finding`` for none), ``Follow-up #``, ``Patient ID``, ``Patient Age``,
``Patient Gender`` and ``View Position`` (PA or AP). The older file names age and sex the same
way; only the image name, labels, patient and view are required.

Images are found wherever the release was unpacked under the image root: all in one folder
(``images/``, or the root itself) or spread over the tarballs' folders (``images_001/images/...``).
The root is indexed once (:func:`walk_images`). When the root holds no image at all, the records
point at ``ROOT/images/NAME`` and nothing is skipped for a missing file: that is how a split is made
from the label file alone, and the preprocessing cache lists files still missing at training time.
Either way every path is resolved (:mod:`mlbench.data.imagepaths`): an image reached through a link
that leaves the root (a linked file, or an image folder such as ``images/`` linked elsewhere) is
skipped as ``outside_root`` and nothing is read through the link; ``image_path`` is the real path.

Nothing is dropped silently: each row left out becomes a ``Skip`` with one reason, in the order
checked: ``missing_image_id``, ``unsafe_path``, ``duplicate_image_id`` (the first row is kept),
``missing_patient_id``, ``projection_not_selected``, ``nan_labels``, then for the image file
``outside_root`` (a link that leaves the root), ``missing_image`` and ``empty_image``.
Each label that is not one of the 14 becomes a ``Skip(reason="unknown_label")`` while the row keeps
its other labels. Unreadable (truncated, corrupt) files are found when the cache decodes them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from mlbench import (DataSource, ImageRoot, is_marked_synthetic, label_file_profile, lies_under,
                    OUTSIDE_ROOT, read_columns, Records, RowChecks, RowColumns, sha256_file, Skip,
                    SYNTHETIC_KIND)
from mlbench_nih.labels import LABELS, NO_FINDING, normalize_patient_id

KIND = "nih-cxr14"
REQUIRED_COLUMNS = ("Image Index", "Finding Labels", "Patient ID", "View Position")
OPTIONAL_COLUMNS = ("Follow-up #", "Patient Age", "Patient Gender")
PROJECTIONS = ("PA", "AP")
COLUMNS = RowColumns(image_id="Image Index", patient_id="Patient ID", projection="View Position",
                     labels="Finding Labels")
FRAME_COLUMNS = ("image_id", "patient_id", "follow_up", "projection", "age", "sex", "image_path", "findings")
DEFAULT_IMAGE_FOLDER = "images"  # where a file is expected when the root holds no images at all
# Folders the index walks into below the root: NIH's ``images`` and the tarballs' ``images_001`` ...
# Nothing else, so pointing --images at a home folder does not walk the whole disk.
_IMAGE_FOLDER = re.compile(r"images(_\d+)?", re.IGNORECASE)
_MAX_DEPTH = 3  # root / images_001 / images / NAME.png, with one spare level


@dataclass
class ImageIndex:
    """What :func:`walk_images` found under an image root."""

    found: dict[str, str] = field(default_factory=dict)    # file name -> real path (the first in sorted order)
    refused: dict[str, str] = field(default_factory=dict)  # file name -> why (a file link leading out)
    refused_folders: list[str] = field(default_factory=list)  # image folders that are links leading out


def walk_images(root: Path) -> ImageIndex:
    """The PNG files under ``root``: the root and the ``images`` / ``images_NNN`` folders below it
    (three levels at most), in sorted order, so a name found twice keeps its first path.

    Links are followed only when their target stays inside the root (:mod:`mlbench.data.imagepaths`):
    a file link leading out is refused, a folder link leading out is not entered (nothing is listed
    through it) and is named in ``refused_folders``.
    """
    image_root = ImageRoot(root)
    root_real = image_root.real
    index = ImageIndex()
    if not os.path.isdir(root_real):
        return index
    seen_dirs: set[str] = set()

    def walk(folder: str, depth: int) -> None:
        real = os.path.realpath(folder)
        if not lies_under(real, root_real):
            index.refused_folders.append(folder)
            return
        if real in seen_dirs:
            return
        seen_dirs.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=True):
                    if depth < _MAX_DEPTH and _IMAGE_FOLDER.fullmatch(entry.name):
                        walk(entry.path, depth + 1)
                    continue
                if (not entry.name.lower().endswith(".png") or entry.name in index.found
                        or not entry.is_file(follow_symlinks=True)):
                    continue
            except OSError:
                continue
            path = image_root.resolve(entry.path)
            if path is None:
                index.refused.setdefault(entry.name, image_root.refusal(entry.name, entry.path).detail)
                continue
            index.found[entry.name] = path
            index.refused.pop(entry.name, None)

    walk(root_real, 0)
    return index


def index_images(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(file name -> real path, file name -> why refused) for the PNG files under ``root``
    (:func:`walk_images` without the refused folders)."""
    index = walk_images(root)
    return index.found, index.refused


def _read_columns(path: Path) -> pd.DataFrame:
    return read_columns(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, what="NIH label file (Data_Entry_2017_v2020.csv)")


def read_nih_csv(source: DataSource, *, projections: Iterable[str] | None = PROJECTIONS) -> Records:
    """Read an NIH-format label file into Records (one row per usable image, every skip listed).

    ``projections``: the ``View Position`` values kept (None keeps all); others are skipped as
    ``projection_not_selected``. The frame holds FRAME_COLUMNS; ``findings`` are the row's labels
    among the 14 (an empty tuple for ``No Finding``).
    """
    csv_path = Path(source.csv)
    raw = _read_columns(csv_path)
    return _records(raw, csv_path, Path(source.images), projections)


def _records(raw: pd.DataFrame, csv_path: Path, images: Path, projections: Iterable[str] | None) -> Records:
    known = frozenset(LABELS)
    image_root = ImageRoot(images)
    walked = walk_images(images)
    index, refused = walked.found, walked.refused
    # An image folder linked out: a row not found elsewhere may be in it (its files are never listed).
    linked_out = ", ".join(os.path.relpath(f, image_root.real) for f in walked.refused_folders)
    parsed: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    out: dict[str, list] = {c: [] for c in FRAME_COLUMNS}
    skipped: list[Skip] = []
    checks = RowChecks(COLUMNS, projections)
    columns = [raw[c].tolist() for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)]
    for n, (image_id, labels_text, patient_id, projection, follow_up, age, sex) in enumerate(zip(*columns), start=1):
        image_id = image_id.strip()
        skip = checks.image(n, image_id)
        if skip is None:
            patient_id, projection = normalize_patient_id(patient_id), projection.strip()
            skip = (checks.patient(n, image_id, patient_id) or checks.projection(image_id, projection)
                    or checks.labels(n, image_id, labels_text))
        if skip is not None:
            skipped.append(skip)
            continue
        hit = parsed.get(labels_text)
        if hit is None:
            items = [item.strip() for item in labels_text.split("|")]
            words = [item for item in items if item and item != NO_FINDING]
            hit = parsed[labels_text] = (tuple(sorted({w for w in words if w in known})),
                                         tuple(w for w in words if w not in known))
        findings, unknown = hit
        for label in unknown:
            skipped.append(Skip(image_id, "unknown_label", label))
        if index or linked_out:
            path = index.get(image_id)
            if path is None:
                if image_id in refused:
                    skipped.append(Skip(image_id, OUTSIDE_ROOT, refused[image_id]))
                elif linked_out:
                    skipped.append(Skip(image_id, OUTSIDE_ROOT, f"row {n}: no file {image_id} under {images}; "
                                                                f"{linked_out} links outside the image root and "
                                                                "was not searched"))
                else:
                    skipped.append(Skip(image_id, "missing_image", f"row {n}: no file {image_id} under {images}"))
                continue
            try:
                empty = os.path.getsize(path) == 0
            except OSError as exc:
                skipped.append(Skip(image_id, "missing_image", f"{path}: {exc.strerror}"))
                continue
            if empty:
                skipped.append(Skip(image_id, "empty_image", f"{path} is 0 bytes"))
                continue
        else:  # no image under the root: a labels-only source (see the module docstring)
            path = image_root.resolve(f"{DEFAULT_IMAGE_FOLDER}{os.sep}{image_id}")
            if path is None:  # e.g. a dangling images/ link pointing out of the root
                skipped.append(image_root.refusal(image_id, f"{DEFAULT_IMAGE_FOLDER}{os.sep}{image_id}"))
                continue
        out["image_id"].append(image_id)
        out["patient_id"].append(patient_id)
        out["follow_up"].append(follow_up.strip())
        out["projection"].append(projection)
        out["age"].append(age.strip())
        out["sex"].append(sex.strip())
        out["image_path"].append(path)
        out["findings"].append(findings)

    frame = pd.DataFrame(out, columns=list(FRAME_COLUMNS))
    kind = SYNTHETIC_KIND if is_marked_synthetic(csv_path) else KIND
    return Records(frame=frame, kind=kind, source_sha256=sha256_file(csv_path), skipped=skipped)


def profile_nih_csv(source: DataSource) -> dict:
    """Whole-file facts for ``mlbench datasets inspect``, both views: rows, images and patients per
    view, label counts, No Finding films and the rows each check would skip."""
    csv_path = Path(source.csv)
    raw = _read_columns(csv_path)
    records = _records(raw, csv_path, Path(source.images), None)
    projection = raw["View Position"].str.strip()
    patients = raw["Patient ID"].map(normalize_patient_id)
    counts = {label: 0 for label in LABELS}
    no_finding = 0
    for findings in records.frame["findings"]:
        no_finding += not findings
        for label in findings:
            counts[label] += 1
    return label_file_profile(projection, patients, records.skipped,
                              extra={"label_counts": counts, "no_finding": no_finding})
