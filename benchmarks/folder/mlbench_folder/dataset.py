"""The ``folder`` dataset: a CSV and an image folder, with no plugin of your own.

The CSV has one row per image:

- a path column (``path_column``, default ``path``): the image's path relative to ``--images``,
  ``/``-separated, subfolders allowed. It is the image's id. Paths are outside input: an absolute
  path, a ``..`` leading out of the folder or a link out of it is skipped as ``outside_root``;
- an optional group column (``group_column``): the patient (or any unit whose images must stay in
  one split). ``auto`` takes a column named ``patient``, ``patient_id`` or ``group`` when exactly
  one exists; ``none``, or no such column, makes every image its own group;
- the labels (``labels``), in one of two layouts:
  * one column whose cell joins the image's labels with ``separator`` (``cat|dog``; blank: none);
  * one column per label whose cells are ``1`` (present), ``0`` (absent), ``-1`` (uncertain) or
    blank (not mentioned), as CheXpert writes them. Blank is read as absent (0), as CheXpert's
    authors read it, and counted. An uncertain cell becomes 1 or 0 by ``policy`` (``ones``: U-Ones,
    ``zeros``: U-Zeros, Irvin et al. 2019), or with ``ignore`` (U-Ignore) an unknown cell
    (``unknown_findings``): left out of the loss, the metrics and every count.
  ``auto`` takes a column named ``labels`` or ``findings`` as the joined layout when exactly one
  exists, else every other column whose cells are all 1 / 0 / -1 / blank as one column per label.

Labels are kept when at least ``min_count`` images carry them, counting an uncertain cell as
present, so every policy keeps the same labels. The split stratifies on that same matrix
(uncertain as present: the ``stratify_findings`` column), so every policy assigns the same patients
to the same subsets; only the labels of uncertain cells differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlbench import DataSource, DatasetError, Records

KIND = "folder"
WHAT = "the folder dataset's label CSV (one row per image)"
AUTO, NONE = "auto", "none"
GROUP_NAMES = ("patient", "patient_id", "group")
JOINED_NAMES = ("labels", "findings")
POSITIVE, NEGATIVE, UNCERTAIN = "1", "0", "-1"
# How spreadsheets and pandas write the three values of a label cell.
CELL_VALUES = {"1": POSITIVE, "1.0": POSITIVE, "0": NEGATIVE, "0.0": NEGATIVE, "-1": UNCERTAIN, "-1.0": UNCERTAIN}
BLANK_CELLS = frozenset({"", "nan", "none", "null", "na", "n/a"})
POLICIES = ("ones", "zeros", "ignore")
# A label with fewer positive images leaves about one test positive at a 20% test share (no AUC).
DEFAULT_MIN_COUNT = 5


class FolderDataset:
    """Reads a CSV and an image folder laid out as the module docstring says."""

    name = KIND
    OPTIONS = {
        "path_column": {"type": "str", "default": "path", "help": "column of image paths, relative to --images"},
        "group_column": {"type": "str", "default": AUTO,
                         "help": "column of patients (images of one stay in one split); auto: a column named "
                                 "patient, patient_id or group; none: each image its own group"},
        "labels": {"type": "str", "default": AUTO, "changes_labels": True,
                   "help": "one column of separator-joined labels, or a comma-separated list of columns holding "
                           "1 / 0 / -1 / blank; auto: a labels or findings column, else every 1/0/-1 column"},
        "separator": {"type": "str", "default": "|", "changes_labels": True,
                      "help": "what joins the labels in a joined labels column"},
        "policy": {"type": "str", "default": "ones", "choices": list(POLICIES), "changes_labels": True,
                   "unknown_cells": ["ignore"],
                   "help": "what an uncertain (-1) cell becomes: ones (U-Ones), zeros (U-Zeros) or ignore (U-Ignore: "
                           "unknown, left out of the loss and the metrics); blank is 0"},
        "min_count": {"type": "int", "default": DEFAULT_MIN_COUNT, "minimum": 1, "changes_labels": True,
                      "help": "keep a label when at least this many images carry it (uncertain counted as present)"},
    }

    def __init__(self, *, path_column: str = "path", group_column: str = AUTO, labels: str = AUTO,
                 separator: str = "|", policy: str = "ones", min_count: int = DEFAULT_MIN_COUNT) -> None:
        if policy not in POLICIES:  # the core refuses it first; a direct caller is told the same
            raise DatasetError(f"folder: policy {policy!r}: expected one of {', '.join(POLICIES)}")
        if not separator:
            raise DatasetError("folder: separator is empty; expected the text joining labels, e.g. '|'")
        self.path_column, self.group_column, self.labels = path_column, group_column, labels
        self.separator, self.policy, self.min_count = separator, policy, min_count

    def read(self, source: DataSource) -> Records:
        """One record per usable image; every row left out is a Skip, every label dropped a fact."""
        from mlbench_folder.reader import read_folder_csv

        return read_folder_csv(source, self)

    def image_id_for(self, relative_path: str) -> str:
        """An image's id is its path under the image folder ('/'-separated), as the CSV gives it."""
        return relative_path

    def write_demo(self, out_dir: str | Path, **options: Any) -> DataSource:
        """A synthetic folder of RGB colour shapes in this layout (:mod:`mlbench_folder.demo`)."""
        from mlbench_folder.demo import write_demo_folder  # draws images; only when asked

        return write_demo_folder(out_dir, **options)
