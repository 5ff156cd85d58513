"""The ``padchest`` dataset plugin: the real CSV + PNG folders, or the synthetic demo corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mlbench.data import DataSource, Records
from mlbench_padchest.reader import read_padchest_csv
from mlbench_padchest.tree import known_labels


class PadChestDataset:
    """Reads PadChest-format sources (the real release and the demo use the same code)."""

    name = "padchest"

    def __init__(self, *, projections: Iterable[str] = ("PA",)) -> None:
        self.projections = tuple(projections)

    def read(self, source: DataSource) -> Records:
        """The kept images and every skipped row; labels are checked against the term tree."""
        return read_padchest_csv(source, projections=self.projections, known_labels=known_labels())

    def write_demo(self, out_dir: str | Path, **options: Any) -> DataSource:
        """Write the synthetic PadChest-format corpus into ``out_dir`` and return its source."""
        from mlbench_padchest.demo import write_demo_corpus  # heavy (images); only when asked

        return write_demo_corpus(out_dir, **options)
