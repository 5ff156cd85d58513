"""Several datasets as one: the sources file, each source's labels on the shared findings, the union of images.

A merged dataset names its sources (:class:`Source`: a name, the dataset plugin that reads it and the
benchmark plugin whose labels and ``findings`` map it onto the shared vocabulary). Its label file is a
small TOML **sources file**, one table per source::

    [padchest]
    csv = "padchest/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"
    images = "padchest"
    [nih]
    csv = "nih/Data_Entry_2017_v2020.csv.gz"
    images = "nih"
    sha256 = "..."        # optional: the label file's sha256, refused when the file differs

Relative paths are relative to the sources file's folder. Every ``images`` folder must lie inside the
run's ``--images`` folder (the one root every image is checked against); label files may lie anywhere
(the user names them, as with ``--csv``). Every table, key and path is checked before any source is
read; a mistake is one :class:`mlbench.DatasetError` line naming the file, the source and the key.

The merged labels are the vocabulary's terms that every source maps some label to. Per source and term:
a label *exactly* the term gives the term's positives and negatives (its unknown cells stay unknown); a
label only *narrower* than the term (one kind of it, e.g. PadChest's hiatal hernia for Hernia) gives
positives only: its negatives may carry another kind, so they are unknown cells, never negatives.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mlbench import (EXACT, SOURCE_COLUMN, SYNTHETIC_KIND, UNKNOWN_COLUMN, Benchmark, DataSource, DatasetError,
                     ImageRoot, Records, Skip, is_marked_synthetic, sha256_file)

SOURCES_FILE = "sources.toml"
KEYS = ("csv", "images", "sha256")
# The merged frame's column saying which images the source's own benchmark pins as test (its fixed_test).
PINNED_COLUMN = "pinned_test"
SEPARATOR = ":"  # image and patient ids are SOURCE:ID, so no two sources' ids collide


@dataclass(frozen=True)
class Source:
    """One source of a merged dataset: its ``name`` (the sources file's table), the ``dataset`` plugin
    that reads it and the ``benchmark`` plugin whose labels and findings map it onto the shared terms."""

    name: str
    dataset: str
    benchmark: str


@dataclass(frozen=True)
class SourceFiles:
    """One source's label file and image folder, as the sources file names them (checked)."""

    source: Source
    csv: Path
    images: Path
    sha256: str | None = None


def shared_terms(benchmarks: Sequence[Benchmark], order_from: int = 0) -> tuple[str, ...]:
    """The terms every benchmark maps one of its labels to, in the order of ``benchmarks[order_from]``'s labels."""
    vocabularies = {b.findings.vocabulary if b.findings else None for b in benchmarks}
    if None in vocabularies or len(vocabularies) != 1:
        raise ValueError("merged sources must all map their labels onto one vocabulary of findings; got "
                         + ", ".join(f"{b.name}: {b.findings.vocabulary if b.findings else None}" for b in benchmarks))
    per = [{f.term for label, f in b.findings.labels.items() if label in b.labels} for b in benchmarks]
    common = set.intersection(*per)
    first = benchmarks[order_from]
    ordered = [first.findings.labels[label].term for label in first.labels if label in first.findings.labels]
    return tuple(dict.fromkeys(t for t in ordered if t in common))


def read_sources_file(path: Path, root: Path, sources: Sequence[Source]) -> list[SourceFiles]:
    """Every source's files from the sources file at ``path``, each path checked (module docstring)."""
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{where}: no such sources file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{where}: cannot read the sources file ({type(exc).__name__}); expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:  # the message gives the line and column, never the file's text
        raise DatasetError(f"{where}: not a TOML sources file ({exc}); expected one table per source: "
                           f"{', '.join(s.name for s in sources)}") from None
    names = [s.name for s in sources]
    for key in data:
        if key not in names:
            raise DatasetError(f"{where}: [{key}] is not a source of this dataset; expected tables {', '.join(names)}")
    real_root = ImageRoot(root, cache_folders=False)
    out = []
    for source in sources:
        table = data.get(source.name)
        if not isinstance(table, dict):
            raise DatasetError(f"{where}: no [{source.name}] table; expected one table per source "
                               f"({', '.join(names)}), each with csv and images")
        for key in table:
            if key not in KEYS:
                raise DatasetError(f"{where}: [{source.name}] has no key '{key}'; expected {', '.join(KEYS)}")
        paths: dict[str, Path] = {}
        for key in ("csv", "images"):
            value = table.get(key)
            if not isinstance(value, str) or not value.strip() or "\0" in value:
                raise DatasetError(f"{where}: [{source.name}] {key} must be a path (a non-empty string)")
            paths[key] = (path.parent / value) if not os.path.isabs(value) else Path(value)
        if not paths["csv"].is_file():
            raise DatasetError(f"{where}: [{source.name}] csv {paths['csv']}: no such file")
        if not paths["images"].is_dir():
            raise DatasetError(f"{where}: [{source.name}] images {paths['images']}: no such folder")
        if real_root.resolve(os.path.abspath(paths["images"])) is None:
            raise DatasetError(f"{where}: [{source.name}] images {paths['images']} lies outside --images {root} "
                               "(a symbolic link or '..'); expected a folder inside the run's image folder")
        pinned = table.get("sha256")
        if pinned is not None and (not isinstance(pinned, str) or len(pinned) != 64
                                   or any(c not in "0123456789abcdef" for c in pinned)):
            raise DatasetError(f"{where}: [{source.name}] sha256 must be 64 lowercase hex digits")
        out.append(SourceFiles(source, paths["csv"], paths["images"], pinned))
    for files in out:  # hashed after every path is known good: a typo costs no reading
        if files.sha256 is not None and sha256_file(files.csv) != files.sha256:
            raise DatasetError(f"{where}: [{files.source.name}] csv {files.csv}: its sha256 differs from the one "
                               "the sources file pins; expected the label file it was written for")
    return out


def write_sources_file(out_dir: Path, files: Iterable[SourceFiles]) -> Path:
    """``out_dir/sources.toml`` naming each source's files relative to ``out_dir``, with their sha256."""
    from mlbench import write_text

    lines = ["# Sources of a merged dataset: paths relative to this file's folder (mlbench_merged.sources)."]
    for f in files:
        lines += ["", f"[{f.source.name}]",
                  f"csv = {_toml_string(os.path.relpath(f.csv, out_dir))}",
                  f"images = {_toml_string(os.path.relpath(f.images, out_dir))}",
                  f"sha256 = {_toml_string(sha256_file(f.csv))}"]
    write_text(out_dir / SOURCES_FILE, "\n".join(lines) + "\n")
    return out_dir / SOURCES_FILE


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class TermMap:
    """A source benchmark's labels on the merged terms: per image, (positive terms, unknown terms)."""

    def __init__(self, benchmark: Benchmark, terms: Sequence[str]) -> None:
        found = benchmark.findings.labels
        self.benchmark, self.terms = benchmark, tuple(terms)
        self.mapped = {t: frozenset(l for l, f in found.items() if f.term == t) for t in self.terms}
        self.exact = {t: frozenset(l for l, f in found.items() if f.term == t and f.relation == EXACT)
                      for t in self.terms}
        self._seen: dict[tuple, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def cells(self, findings: Iterable[str], unknown_findings: Iterable[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(positive terms, unknown terms) of one image from its source's own findings (module docstring)."""
        key = (tuple(findings), tuple(unknown_findings or ()))
        hit = self._seen.get(key)
        if hit is not None:
            return hit
        labels = set(self.benchmark.targets(key[0]))
        unsure = (set(self.benchmark.targets(key[1])) if key[1] else set()) - labels
        positive, unknown = [], []
        for term in self.terms:
            if labels & self.mapped[term]:
                positive.append(term)
            elif not self.exact[term] or unsure & self.exact[term]:
                unknown.append(term)  # no label is the whole finding here (or the one that is is unknown)
        hit = self._seen[key] = (tuple(positive), tuple(unknown))
        return hit


def merge(parts: Mapping[str, tuple[Records, Benchmark]], terms: Sequence[str], sources_file: Path,
          kind: str) -> Records:
    """The union of every source's images on ``terms``: ids SOURCE:ID, the source per image, unknown cells."""
    import numpy as np
    import pandas as pd

    frames, skipped, facts = [], [], {}
    synthetic = is_marked_synthetic(sources_file)
    for name, (records, bench) in parts.items():
        frame = records.frame
        unknown_in = frame[UNKNOWN_COLUMN] if UNKNOWN_COLUMN in frame.columns else [()] * len(frame)
        mapping = TermMap(bench, terms)
        cells = [mapping.cells(findings, unsure) for findings, unsure in zip(frame["findings"], unknown_in)]
        pinned = (np.asarray(bench.fixed_test(frame), dtype=bool) if bench.fixed_test is not None and len(frame)
                  else np.zeros(len(frame), dtype=bool))
        frames.append(pd.DataFrame({
            "image_id": [f"{name}{SEPARATOR}{i}" for i in frame["image_id"].astype(str)],
            "patient_id": [f"{name}{SEPARATOR}{p}" for p in frame["patient_id"].astype(str)],
            "image_path": frame["image_path"].to_numpy(),
            "findings": [c[0] for c in cells],
            UNKNOWN_COLUMN: [c[1] for c in cells],
            SOURCE_COLUMN: name,
            PINNED_COLUMN: pinned,
        }))
        skipped += [Skip(f"{name}{SEPARATOR}{s.item}", s.reason, s.detail) for s in records.skipped]
        synthetic = synthetic or records.kind == SYNTHETIC_KIND
        facts[name] = {"dataset_kind": records.kind, "csv_sha256": records.source_sha256, "benchmark": bench.name,
                       "images": len(frame), "patients": int(frame["patient_id"].nunique()),
                       "skipped": len(records.skipped), "pinned_test_images": int(pinned.sum())}
    frame = pd.concat(frames, ignore_index=True)
    # The identity of what was read: the sources file and every label file it names (a label file edited
    # behind an unpinned sources file changes the hash, so no stale split is reused).
    digest = hashlib.sha256(json.dumps([sha256_file(sources_file), {n: f["csv_sha256"] for n, f in facts.items()}],
                                       sort_keys=True).encode()).hexdigest()
    return Records(frame=frame, kind=SYNTHETIC_KIND if synthetic else kind, source_sha256=digest,
                   skipped=skipped, facts={"sources": facts, "labels": list(terms)})
