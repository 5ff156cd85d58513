"""What "synthetic" means in mlbench, defined once.

A dataset's ``write_demo`` writes a corpus in the dataset's own format and drops the marker file
:data:`MARKER_NAME` beside its label file. A reader that finds the marker labels its records
:data:`SYNTHETIC_KIND`; that kind is what keeps demo rows out of every benchmark's published
board and marks every table, plot and report built from them.

Beside the label file a demo may also write the ground truth of what it drew (the sidecars, which
``mlbench explain`` scores against): :data:`FINDINGS_FILE` (each drawn finding's box) and
:data:`LUNGS_FILE` (each frontal lung field), in original pixels with exclusive ends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from mlbench.data import DataSource
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import write_json, write_text
from mlbench.foundations.paths import inside

SYNTHETIC_KIND = "synthetic"
MARKER_NAME = "mlbench-demo.json"


def is_synthetic(dataset_kind: object) -> bool:
    """True for the dataset kind of demo data (any other kind is real data)."""
    return str(dataset_kind) == SYNTHETIC_KIND


def mark_synthetic(folder: str | Path, **about: Any) -> Path:
    """Write the demo marker into ``folder`` (the folder holding the corpus's label file)."""
    path = Path(folder) / MARKER_NAME
    write_json(path, {"synthetic": True, **about})
    return path


def is_marked_synthetic(label_file: str | Path) -> bool:
    """True when the demo marker sits beside ``label_file``."""
    return (Path(label_file).parent / MARKER_NAME).is_file()


# -- the corpus record: which label file and image folder a finished demo corpus holds -------------
SOURCE_RECORD = "mlbench-source.json"


class DemoCorpusError(UserError):
    """A demo corpus folder's own record is unreadable or points outside the folder."""


def write_source_record(demo_dir: str | Path, source: DataSource) -> None:
    """Record, relative to ``demo_dir``, where the corpus just written lives; written last, so it
    also says the corpus is complete."""
    demo_dir = Path(demo_dir)
    write_json(demo_dir / SOURCE_RECORD, {"csv": os.path.relpath(source.csv, demo_dir),
                                          "images": os.path.relpath(source.images, demo_dir)})


def read_source_record(demo_dir: str | Path) -> DataSource | None:
    """The corpus ``demo_dir`` holds, or None when no complete corpus is there yet.

    The folder may come from elsewhere (a copied run directory): both paths must stay inside it."""
    path = Path(demo_dir) / SOURCE_RECORD
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        saved = None
    if not isinstance(saved, dict):
        raise DemoCorpusError(f"{path}: not the JSON object mlbench writes when a demo corpus is complete; "
                              "delete the demo folder to write the corpus again")
    found = {key: inside(demo_dir, saved.get(key)) for key in ("csv", "images")}
    for key, value in found.items():
        if value is None:
            raise DemoCorpusError(f"{path}: field '{key}' is not a path inside {demo_dir}; "
                                  "delete the demo folder to write the corpus again")
    return DataSource(csv=found["csv"], images=found["images"])


# -- the sidecars: what a demo drew, for scoring explanations against ---------------------------
FINDINGS_FILE = "findings.csv"
LUNGS_FILE = "lungs.csv"
BOX_COLUMNS = ("x0", "y0", "x1", "y1")
FINDINGS_COLUMNS = ("image_id", "label", *BOX_COLUMNS)
LUNGS_COLUMNS = ("image_id", "side", *BOX_COLUMNS)


def findings_beside(label_file: str | Path) -> Path:
    """Where a demo corpus keeps its findings' boxes: beside its label file."""
    return Path(label_file).parent / FINDINGS_FILE


def lungs_beside(label_file: str | Path) -> Path:
    """Where a demo corpus keeps its lung fields: beside its label file."""
    return Path(label_file).parent / LUNGS_FILE


def _write_sidecar(path: Path, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> Path:
    import pandas as pd  # here only: is_synthetic's readers (leaderboard show) never load pandas

    write_text(path, pd.DataFrame(list(rows), columns=list(columns)).to_csv(index=False, lineterminator="\n"))
    return path


def write_findings(folder: str | Path, rows: Sequence[Sequence[Any]]) -> Path:
    """FINDINGS_FILE in ``folder``: one (image_id, label, x0, y0, x1, y1) row per drawn finding."""
    return _write_sidecar(Path(folder) / FINDINGS_FILE, rows, FINDINGS_COLUMNS)


def write_lungs(folder: str | Path, rows: Sequence[Sequence[Any]]) -> Path:
    """LUNGS_FILE in ``folder``: one (image_id, side, x0, y0, x1, y1) row per frontal lung field."""
    return _write_sidecar(Path(folder) / LUNGS_FILE, rows, LUNGS_COLUMNS)
