"""What "synthetic" means in mlbench, defined once.

A dataset's ``write_demo`` writes a corpus in the dataset's own format and drops the marker file
:data:`MARKER_NAME` beside its label file. A reader that finds the marker labels its records
:data:`SYNTHETIC_KIND`; that kind is what keeps demo rows out of every benchmark's published
board and marks every table, plot and report built from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlbench.io import write_json

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
