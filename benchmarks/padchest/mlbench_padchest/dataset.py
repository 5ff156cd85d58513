"""The ``padchest`` dataset plugin: the real CSV + PNG folders, or the synthetic demo corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mlbench import DataSource, DatasetError, Records
from mlbench_padchest.reader import profile_padchest_csv, read_padchest_csv
from mlbench_padchest.tree import TermTree, expand, known_labels, load_tree


class PadChestDataset:
    """Reads PadChest-format sources (the real release and the demo use the same code).

    Besides ``read`` and ``write_demo`` it offers the optional extras mlbench's data commands look
    for: ``profile`` (whole-file facts), ``expand_findings`` (label hierarchy) and ``label_tree``.
    """

    name = "padchest"

    def __init__(self, *, projections: Iterable[str] = ("PA",)) -> None:
        self.projections = tuple(projections)

    def read(self, source: DataSource) -> Records:
        """The kept images and every skipped row; labels are checked against the term tree."""
        return read_padchest_csv(source, projections=self.projections, known_labels=known_labels())

    def profile(self, source: DataSource) -> dict:
        """Whole-file facts (all projections) for ``mlbench datasets inspect``."""
        return profile_padchest_csv(source, known_labels=known_labels())

    def image_id_for(self, relative_path: str) -> str:
        """The id of the image at ``relative_path`` under an image folder (``mlbench predict``): its
        ``ImageID``, the file's name (``ImageDir`` is only the folder it sits in)."""
        return relative_path.rsplit("/", 1)[-1]

    def expand_findings(self, findings: Iterable[str]) -> frozenset[str]:
        """Findings plus their term-tree ancestors (how general labels are counted)."""
        return expand(findings)

    def label_tree(self) -> TermTree:
        """The term tree (``roots``, ``children``, ``describe(label)``) for ``mlbench labels tree``."""
        return load_tree()

    def write_demo(self, out_dir: str | Path, **options: Any) -> DataSource:
        """Write the synthetic PadChest-format corpus into ``out_dir`` and return its source."""
        import inspect

        from mlbench_padchest.demo import write_demo_corpus  # heavy (images); only when asked

        # Every option of the corpus is a whole number: a mistake here is the user's, said in one line.
        accepted = [p for p in inspect.signature(write_demo_corpus).parameters if p != "out_dir"]
        for key, value in options.items():
            if key not in accepted:
                raise DatasetError(f"demo option '{key}': unknown; expected one of {', '.join(accepted)}")
            if isinstance(value, bool) or not isinstance(value, int):
                raise DatasetError(f"demo option {key}={value!r}: expected a whole number")
        try:
            return write_demo_corpus(out_dir, **options)
        except ValueError as exc:  # the corpus's own range checks (n_patients >= 1, image_size >= 64 ...)
            given = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
            raise DatasetError(f"demo options ({given}): {exc}") from None
