"""The ``toy-xray`` dataset: its label file, its reader and its synthetic demo corpus.

The label file ``toy-labels.csv`` has one row per film:

``film``     the PNG's path relative to the image root (``p03/a.png``)
``subject``  the patient the film belongs to
``codes``    space-separated finding codes (CODES); empty for a normal film

Rows left out become ``Skip``s with one reason, in the order checked: ``missing_film``,
``unsafe_path`` (absolute, ``..`` or a link out of the root), ``duplicate_film`` (the first row is
kept), ``missing_subject``, ``missing_image``. An unknown code is listed as ``unknown_code`` and
the row keeps its other codes.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from mlbench import (DatasetError, DataSource, films, is_marked_synthetic, mark_synthetic, Records,
                    sha256_file, Skip, SYNTHETIC_KIND, write_bytes, write_text)

KIND = "toy-xray"
LABEL_FILE = "toy-labels.csv"
COLUMNS = ("film", "subject", "codes")
# The format's finding codes and what they mean.
CODES = {"CM": "enlarged heart", "EFF": "pleural effusion", "NOD": "lung nodule"}
# How the demo draws each code (shape changes alter the chest before it is drawn).
SHAPE_CHANGES = {"CM": films.enlarged_heart}
PAINTERS = {"EFF": films.pleural_effusion, "NOD": films.nodule}


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def read_toy_csv(source: DataSource) -> Records:
    """Every usable film of ``source`` as Records, every row left out as a Skip."""
    csv_path = Path(source.csv)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: toy-xray label file ({LABEL_FILE}) not found")
    try:
        raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{csv_path}: cannot read it as a CSV file: {exc}") from None
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DatasetError(f"{csv_path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")

    root = os.path.realpath(source.images)
    rows, skipped, seen = [], [], {}
    for n, (film, subject, codes) in enumerate(zip(raw["film"], raw["subject"], raw["codes"]), start=2):
        film, subject = film.strip(), subject.strip()
        if not film:
            skipped.append(Skip(f"line {n}", "missing_film", "film is empty"))
            continue
        relative = PurePosixPath(film)
        path = os.path.realpath(os.path.join(root, *relative.parts))
        if relative.is_absolute() or ".." in relative.parts or not _inside(path, root):
            skipped.append(Skip(f"line {n}", "unsafe_path", f"film {film!r} is not a path inside the image root"))
            continue
        if film in seen:
            skipped.append(Skip(film, "duplicate_film", f"line {n} repeats line {seen[film]} (the first is kept)"))
            continue
        seen[film] = n
        if not subject:
            skipped.append(Skip(film, "missing_subject", f"line {n}: subject is empty"))
            continue
        findings = []
        for code in codes.split():
            if code in CODES:
                findings.append(code)
            else:
                skipped.append(Skip(film, "unknown_code", f"line {n}: {code!r} is not one of {', '.join(CODES)}"))
        if not os.path.isfile(path):
            skipped.append(Skip(film, "missing_image", f"line {n}: no file {path}"))
            continue
        rows.append({"image_id": film, "patient_id": subject, "image_path": path,
                     "findings": tuple(sorted(set(findings)))})
    frame = pd.DataFrame(rows, columns=["image_id", "patient_id", "image_path", "findings"])
    kind = SYNTHETIC_KIND if is_marked_synthetic(csv_path) else KIND
    return Records(frame=frame, kind=kind, source_sha256=sha256_file(csv_path), skipped=skipped)


def write_demo_corpus(out_dir: str | Path, *, seed: int = 0, n_patients: int = 40, image_size: int = 64,
                      films_per_patient: int = 2) -> DataSource:
    """A synthetic corpus in the toy format: drawn films, about a third of them carrying each code."""
    if n_patients < 1 or films_per_patient < 1:
        raise ValueError(f"toy-xray demo: n_patients and films_per_patient must be at least 1, "
                         f"got {n_patients} and {films_per_patient}")
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows = []
    for patient in range(n_patients):
        for k in range(films_per_patient):
            codes = [code for code in CODES if rng.random() < 1 / 3]
            image, _, _ = films.draw_frontal(codes, image_size, rng, shape_changes=SHAPE_CHANGES, painters=PAINTERS)
            film = f"p{patient:03d}/f{k}.png"
            write_bytes(out / "films" / film, films.encode_png(films.to_8bit(image), film))
            rows.append({"film": film, "subject": f"s{patient:03d}", "codes": " ".join(codes)})
    csv_path = out / LABEL_FILE
    write_text(csv_path, pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(index=False, lineterminator="\n"))
    mark_synthetic(out, generator="mlbench_toy_xray.dataset", seed=seed,
                   statement="Drawn films in the toy-xray format, not radiographs of any person.",
                   parameters={"n_patients": n_patients, "image_size": image_size,
                               "films_per_patient": films_per_patient})
    return DataSource(csv=csv_path, images=out / "films")


class ToyXrayDataset:
    """What ``register_datasets``' factory returns: a reader and a demo writer."""

    name = KIND

    def read(self, source: DataSource) -> Records:
        return read_toy_csv(source)

    def write_demo(self, out_dir: str | Path, seed: int = 0, **options: Any) -> DataSource:
        return write_demo_corpus(out_dir, seed=seed, **options)
