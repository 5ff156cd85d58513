"""The ``nih-cxr14`` dataset plugins: the real label file + PNG folders, or the synthetic demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mlbench import DataSource, DatasetError, Records
from mlbench_nih.reader import PROJECTIONS, profile_nih_csv, read_nih_csv


class NIHDataset:
    """Reads NIH ChestX-ray14 sources (the release and the demo go through the same code).

    ``projections``: the ``View Position`` values kept: PA and AP, as in the official benchmark,
    or ``("PA",)`` for the PA-only dataset ``nih-cxr14-pa``.
    """

    name = "nih-cxr14"

    def __init__(self, *, projections: Iterable[str] = PROJECTIONS) -> None:
        self.projections = tuple(projections)
        unknown = [p for p in self.projections if p not in PROJECTIONS]
        if unknown or not self.projections:
            raise DatasetError(f"nih-cxr14: projections must be a non-empty subset of {PROJECTIONS}, got {self.projections}")

    def read(self, source: DataSource) -> Records:
        """The kept images and every skipped row (see mlbench_nih.reader)."""
        return read_nih_csv(source, projections=self.projections)

    def profile(self, source: DataSource) -> dict:
        """Whole-file facts (both views) for ``mlbench datasets inspect``."""
        return profile_nih_csv(source)

    def image_id_for(self, relative_path: str) -> str:
        """The id of the image at ``relative_path`` under an image folder (``mlbench predict``): its
        ``Image Index``, the file's name, wherever the release's folders put it."""
        return relative_path.rsplit("/", 1)[-1]

    def write_demo(self, out_dir: str | Path, **options: Any) -> DataSource:
        """Write the synthetic NIH-format corpus into ``out_dir`` and return its source."""
        from mlbench_nih.demo import write_demo_corpus  # heavy (images); only when asked

        return write_demo_corpus(out_dir, **options)
