"""The ``padchest-nih`` dataset: a sources file naming a PadChest and an NIH label file, read as one.

Each source is read by its own dataset plugin and mapped by its own benchmark (looked up by name in the
registry), then merged (:mod:`mlbench_merged.sources`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mlbench import DataSource, DatasetError, Records, get_registry, mark_synthetic
from mlbench_merged.sources import (SEPARATOR, Source, SourceFiles, merge, read_sources_file, shared_terms,
                                    write_sources_file)

PADCHEST_NIH = (Source("padchest", "padchest", "padchest-general"), Source("nih", "nih-cxr14", "nih-cxr14"))
# The merged labels take NIH's order (its 14 labels are the vocabulary's names).
ORDER_FROM = "nih"


class MergedDataset:
    """Several datasets read as one (``sources``: each one's table name, dataset and benchmark plugin)."""

    def __init__(self, *, name: str, sources: Sequence[Source], order_from: str) -> None:
        self.name, self.sources = name, tuple(sources)
        registry = get_registry()
        self.benchmarks = {s.name: registry.create("benchmark", s.benchmark) for s in self.sources}
        names = [s.name for s in self.sources]
        self.terms = shared_terms([self.benchmarks[n] for n in names], names.index(order_from))

    def read(self, source: DataSource) -> Records:
        """Every source's images on the shared terms (each path checked before any source is read)."""
        files = read_sources_file(Path(source.csv), Path(source.images), self.sources)
        registry = get_registry()
        parts = {}
        for f in files:
            records = registry.create("dataset", f.source.dataset).read(DataSource(f.csv, f.images))
            parts[f.source.name] = (records, self.benchmarks[f.source.name])
        return merge(parts, self.terms, Path(source.csv), self.name)

    def image_id_for(self, relative_path: str) -> str:
        """The id ``mlbench predict`` names an unlabelled image by: ``SOURCE:ID`` when the path lies in
        a folder named after a source (``nih/...``), that source's own id for the rest; else the path."""
        head, _, rest = relative_path.partition("/")
        for s in self.sources:
            if head == s.name and rest:
                own = getattr(get_registry().create("dataset", s.dataset), "image_id_for", None)
                return f"{s.name}{SEPARATOR}{own(rest) if own else rest}"
        return relative_path

    def write_demo(self, out_dir: str | Path, seed: int = 0, **options: Any) -> DataSource:
        """Each source's own demo corpus in ``out_dir/SOURCE`` and a sources file naming them.

        ``options``: ``KEY=VALUE`` goes to every source's ``write_demo``, ``SOURCE.KEY=VALUE`` to that one."""
        names = [s.name for s in self.sources]
        per: dict[str, dict[str, Any]] = {n: {} for n in names}
        for key, value in options.items():
            scope, dot, option = key.rpartition(".")
            if dot and scope not in per:
                raise DatasetError(f"demo option {key}={value!r}: '{scope}' is not a source of {self.name}; "
                                   f"expected KEY or SOURCE.KEY with SOURCE one of {', '.join(names)}")
            for target in ([scope] if dot else names):
                per[target][option] = value
        out = Path(out_dir)
        registry = get_registry()
        files = []
        for s in self.sources:
            written = registry.create("dataset", s.dataset).write_demo(out / s.name, seed=seed, **per[s.name])
            files.append(SourceFiles(s, Path(written.csv), Path(written.images)))
        sources_file = write_sources_file(out, files)
        mark_synthetic(out, generator="mlbench_merged", seed=seed, sources=names)
        return DataSource(sources_file, out)


def padchest_nih() -> MergedDataset:
    return MergedDataset(name="padchest-nih", sources=PADCHEST_NIH, order_from=ORDER_FROM)
