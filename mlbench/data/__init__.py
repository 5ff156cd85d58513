"""The data model shared by dataset plugins and the runner.

A dataset plugin turns a source (label CSV + image folder) into ``Records``: one row per usable
image with its raw findings, plus every row it skipped and why. The benchmark then maps findings
to its label set (:func:`mlbench.data.labels.label_matrices`: a 0/1 matrix and, when some
cells are unknown, a known-mask beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: modules that need just the names here (mlbench.demo) stay pandas-free
    import pandas as pd

from mlbench.foundations.errors import UserError

# Columns every Records.frame carries (snake_case; a dataset's own names stay in its reader).
RECORD_COLUMNS = ("image_id", "patient_id", "image_path", "findings")
# An optional Records.frame column: per image the findings the split stratifies on, when they differ
# from ``findings`` (a dataset whose uncertain cells become 0 or 1 by an option stratifies on
# "uncertain counts as positive", so every choice of that option gives the same patient assignment).
STRATIFY_COLUMN = "stratify_findings"
# An optional Records.frame column: per image a tuple of the dataset's own findings whose label is
# *unknown* for that image (an uncertain cell under the ``ignore`` policy, a label its source never
# records). The benchmark maps them with the same ``targets()`` as ``findings``; a label that is a
# target of a positive finding stays a known positive, any other target of these is an unknown cell,
# left out of the loss, the metrics and every count (mlbench.data.labels.label_matrices). A reader
# that gives no such column (or only empty tuples) has every cell known: its split, hashes and
# results are exactly those it had before unknown cells existed.
UNKNOWN_COLUMN = "unknown_findings"
# An optional Records.frame column: per image the name of the source it came from, for a dataset made
# of several (a merged benchmark's union of images). Ids and patient ids must then be unique across
# sources (prefix them by source). The split treats each source on its own (mlbench.data.splits.split_images)
# and the split summary counts each source's images and patients per split.
SOURCE_COLUMN = "source"


@dataclass(frozen=True)
class DataSource:
    """Where a dataset lives: its label file and the root of its image folders."""

    csv: Path
    images: Path


@dataclass(frozen=True)
class Skip:
    """One item a stage left out: ``item`` names it (image id, file or CSV row), ``reason`` is a short code."""

    item: str
    reason: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"item": self.item, "reason": self.reason, "detail": self.detail}


@dataclass
class Records:
    """What a dataset reader returns.

    ``frame`` has at least RECORD_COLUMNS: ``image_path`` is absolute; ``findings`` is a tuple of
    the dataset's own label strings (the positive ones). Optional columns: STRATIFY_COLUMN (what
    the split stratifies on) and UNKNOWN_COLUMN (the findings whose label is unknown per image). ``kind`` is the dataset kind written into every output
    (``padchest``, ``synthetic``, ...).
    """

    frame: pd.DataFrame
    kind: str
    source_sha256: str
    skipped: list[Skip] = field(default_factory=list)
    # The labels the data defines, in order, for a benchmark that takes its labels from the data
    # (``Benchmark.labels_from_data``); None: the benchmark pins them.
    labels: tuple[str, ...] | None = None
    # What the reader counted for the run's manifest (cells read as uncertain or blank, labels
    # dropped and why): plain JSON data, nothing lost silently.
    facts: dict = field(default_factory=dict)
    # The dataset options that shaped the labels (set by mlbench.data.datasetoptions.read_dataset);
    # they enter the split's hash.
    label_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in RECORD_COLUMNS if c not in self.frame.columns]
        if missing:
            raise ValueError(f"Records.frame lacks columns {missing}; expected {list(RECORD_COLUMNS)}")


@runtime_checkable
class Dataset(Protocol):
    """A dataset plugin's object (``register_datasets``' factories return one).

    ``read`` must not raise on a bad row: it counts and lists it in ``Records.skipped``. It raises
    ``DatasetError`` only when the source as a whole is unusable (missing file or column).
    ``write_demo`` is optional: it writes a synthetic corpus in the dataset's own format and returns
    its DataSource, so the whole benchmark runs without the real data.
    """

    def read(self, source: DataSource) -> Records: ...


class DatasetError(UserError):
    """The dataset source cannot be used at all (the message names the file and what is wrong)."""
