"""Cropping files and folders of chest films with a preprocessor: PNG crops and ``crops.csv``.

``mlbench crop`` calls :func:`crop_files`; tests and plugins call it directly.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from mlbench.foundations import io as atomic_io
from mlbench.data import Skip
from mlbench.data.imagepaths import ImageRoot
from mlbench.foundations.errors import UserError
from mlbench.preprocessing import Preprocessor
from mlbench.preprocessing.images import ImageReadError, read_grayscale

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CROPS_CSV = "crops.csv"
CSV_COLUMNS = ("file", "x0", "y0", "x1", "y1", "method", "fallback", "reason")
DEFAULT_SIZE = 224
WHOLE_IMAGE = "resize"  # the preprocessor that does not crop: never the default cropper


class CropError(UserError):
    """No image to crop, no cropper to choose, or an input that does not exist."""


def make_cropper(registry: Any, name: str | None = None, *, size: int = DEFAULT_SIZE, segmenter: str | None = None,
                 weights: str | Path | None = None, options: Mapping[str, Any] | None = None) -> Preprocessor:
    """The preprocessor ``mlbench crop`` uses: ``name``, else the one registered besides resize.

    ``weights`` implies the network segmenter (weights only make sense for a network)."""
    if name is None:
        croppers = [n for n in registry.names("preprocessor") if n != WHOLE_IMAGE]
        if len(croppers) != 1:
            raise CropError(f"--preprocessor: expected one of {', '.join(registry.names('preprocessor'))}")
        name = croppers[0]
    extra = dict(options or {})
    if segmenter is not None:
        extra["segmenter"] = segmenter
    if weights is not None:
        extra["weights"] = str(weights)
        extra.setdefault("segmenter", "torch")
    return registry.create("preprocessor", name, size=size, **extra)


@dataclass(frozen=True)
class CropRow:
    """One input file: its crop box in original pixels (exclusive ends), or why it was skipped."""

    file: str
    x0: int | None
    y0: int | None
    x1: int | None
    y1: int | None
    method: str
    fallback: bool | None
    reason: str


@dataclass
class CropReport:
    """What :func:`crop_files` did: one row per input image (crops and skips), written to crops.csv."""

    rows: list[CropRow]
    skipped: list[Skip]
    csv_path: Path

    @property
    def n_cropped(self) -> int:
        return sum(r.fallback is not None for r in self.rows)

    @property
    def n_fallback(self) -> int:
        return sum(bool(r.fallback) for r in self.rows)

    @property
    def missing(self) -> list[str]:
        """Inputs that do not exist (the others were cropped)."""
        return [s.item for s in self.skipped if s.reason == "missing_file"]


def find_images(inputs: Sequence[str | Path],
                exclude: Path | None = None) -> tuple[list[tuple[Path, Path]], list[Skip]]:
    """Expand files and folders into (image path, output name) pairs, sorted within each folder.

    A folder is walked recursively for .png/.jpg/.jpeg; the output name keeps the path inside the
    folder. Inputs that do not exist and names that would collide are returned as skips. Inside a
    folder, a file or folder reached through a link that leads out of it is skipped as
    ``outside_root`` (:mod:`mlbench.data.imagepaths`) and nothing is read or listed through it; a
    file named as an input is the user's own choice and is read wherever it is.
    """
    found: list[tuple[Path, Path]] = []
    skipped: list[Skip] = []
    used: dict[Path, Path] = {}
    exclude = exclude.resolve() if exclude is not None else None
    for raw in inputs:
        source = Path(raw)
        if source.is_dir():
            files, refused = walk_folder(source)
            skipped.extend(refused)
            candidates = [(p, p.relative_to(source)) for p in files
                          if not (exclude is not None and exclude in p.resolve().parents)]
        elif source.is_file():
            candidates = [(source, Path(source.name))]
        else:
            skipped.append(Skip(str(source), "missing_file", "no such file or folder"))
            continue
        for path, relative in candidates:
            name = relative.with_suffix(".png")
            if name in used:
                skipped.append(Skip(str(path), "duplicate_name", f"{name} is already the crop of {used[name]}"))
                continue
            used[name] = path
            found.append((path, name))
    return found, skipped


def walk_folder(folder: Path) -> tuple[list[Path], list[Skip]]:
    """The image files below ``folder`` (sorted paths as reached from it), and a skip for each link
    (file or folder) that leads out of it. A folder link that stays inside is not entered: what it
    points at is walked where it really is."""
    root = ImageRoot(folder, cache_folders=False)
    files: list[Path] = []
    refused: list[Skip] = []
    pending = [str(folder)]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue  # an unreadable folder holds nothing we could crop
        for entry in entries:
            try:
                link = entry.is_symlink()
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if not link and is_dir:
                pending.append(entry.path)
                continue
            if not link and not entry.name.lower().endswith(IMAGE_SUFFIXES):
                continue
            if link and root.resolve(entry.path) is None:
                if os.path.isdir(entry.path) or entry.name.lower().endswith(IMAGE_SUFFIXES):
                    refused.append(root.refusal(entry.path, Path(entry.path).relative_to(folder)))
                continue
            if entry.name.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(entry.path):
                files.append(Path(entry.path))
    refused.sort(key=lambda s: s.item)
    return sorted(files), refused


def crop_files(inputs: Sequence[str | Path], out_dir: str | Path, preprocessor: Preprocessor, *,
               invert: bool | None = None, bits: int = 16,
               on_image: Callable[[Path], None] | None = None) -> CropReport:
    """Crop every image under ``inputs`` with ``preprocessor``; write PNGs and ``out_dir/crops.csv``.

    Unreadable files (missing, truncated, corrupt, too large) and files reached through a link out of
    a given folder (``outside_root``) do not stop the run: each becomes a row of crops.csv with empty
    coordinates and its reason, and a :class:`~mlbench.data.Skip`.
    ``bits``: 8 or 16 for the written PNGs. ``on_image`` is called after each input (progress).
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    out_dir = Path(out_dir)
    images, skipped = find_images(inputs, exclude=out_dir)
    rows = [_skipped_row(s) for s in skipped]
    top = 255 if bits == 8 else 65535
    for path, name in images:
        try:
            image = read_grayscale(path, invert=invert)
        except ImageReadError as err:
            skip = Skip(str(path), err.reason, err.detail)
            skipped.append(skip)
            rows.append(_skipped_row(skip))
        else:
            result = preprocessor(image)
            pixels = np.round(np.clip(result.image, 0, 1) * top).astype(np.uint8 if bits == 8 else np.uint16)
            ok, encoded = cv2.imencode(".png", pixels)
            if not ok:
                raise RuntimeError(f"could not encode the crop of {path} as PNG")
            atomic_io.write_bytes(out_dir / name, encoded.tobytes())
            x0, y0, x1, y1 = result.box
            rows.append(CropRow(str(path), x0, y0, x1, y1, result.method, result.fallback, result.reason))
        if on_image is not None:
            on_image(path)
    csv_path = out_dir / CROPS_CSV
    atomic_io.write_text(csv_path, _csv_text(rows))
    return CropReport(rows, skipped, csv_path)


def _skipped_row(skip: Skip) -> CropRow:
    """A crops.csv row for an input that produced no crop: empty box, ``reason: detail``."""
    reason = f"{skip.reason}: {skip.detail}" if skip.detail else skip.reason
    return CropRow(skip.item, None, None, None, None, "", None, reason)


def _csv_text(rows: list[CropRow]) -> str:
    frame = pd.DataFrame([asdict(r) for r in rows], columns=list(CSV_COLUMNS))
    for column in ("x0", "y0", "x1", "y1"):
        frame[column] = frame[column].astype("Int64")
    frame["fallback"] = frame["fallback"].map({True: "true", False: "false"})
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()
