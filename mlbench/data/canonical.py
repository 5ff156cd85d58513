"""Whether a label file is one of a benchmark's canonical releases (``Benchmark.canonical_sources``).

A release is known by the sha256 of its decompressed bytes, so the file as published and a
gzipped copy of it are the same source; whether a file is gzipped is read from its first bytes,
never from its name (a renamed file cannot change what it is). Nothing here trusts a manifest or a
marker file: every answer comes from hashing the file itself, once per call.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path
from typing import Any

from mlbench.contracts.benchmark import Benchmark, CanonicalSource
from mlbench.data import DatasetError
from mlbench.foundations.io import os_reason

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20


def is_gzip(path: str | Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the label file ({os_reason(exc)})") from None


def content_sha256(path: str | Path) -> str:
    """The sha256 of the file's content, decompressed first when it is a gzip stream (read in chunks)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such label file; expected a CSV file (plain or gzipped)")
    digest = hashlib.sha256()
    if not is_gzip(path):
        try:
            with open(path, "rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read the label file ({os_reason(exc)})") from None
        return digest.hexdigest()
    try:
        with gzip.open(path, "rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
    # The exceptions' own words can quote the file's bytes (BadGzipFile does): say what is wrong instead.
    except EOFError:
        raise DatasetError(f"{path}: the gzip stream ends early (a truncated file); expected a whole "
                           "gzipped CSV file") from None
    except (gzip.BadGzipFile, zlib.error):
        raise DatasetError(f"{path}: starts as a gzip file but its compressed data is corrupt; expected a "
                           "whole gzipped CSV file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the label file ({os_reason(exc)})") from None
    return digest.hexdigest()


def pin_for(benchmark: Benchmark, digest: str) -> CanonicalSource | None:
    """The benchmark's canonical source whose content hash is ``digest``, or None."""
    return next((pin for pin in benchmark.canonical_sources if pin.content_sha256 == digest), None)


def canonical_source(benchmark: Benchmark, csv_path: str | Path) -> CanonicalSource | None:
    """The canonical source ``csv_path`` is (its content hash matches the pin), else None.

    A benchmark that pins no source has none, and the file is not read."""
    if not benchmark.canonical_sources:
        return None
    return pin_for(benchmark, content_sha256(csv_path))


def releases(benchmark: Benchmark) -> str:
    """The benchmark's canonical releases, for messages."""
    return ", ".join(pin.release for pin in benchmark.canonical_sources) or "none"


def describe(benchmark: Benchmark, csv_path: str | Path) -> dict[str, Any]:
    """What a manifest records of a label file: whether it is canonical, which release, its content hash."""
    digest = content_sha256(csv_path)
    pin = pin_for(benchmark, digest)
    return {"canonical": pin is not None, "release": pin.release if pin else None, "content_sha256": digest}
