"""``mlbench predict RUN_DIR --images DIR --out FILE``: a trained run's models on images without labels.

The images are the ``.png``/``.jpg``/``.jpeg`` files under DIR (recursively; links to folders are
not followed), or only the files ``--list FILE`` names, one path relative to DIR per line. A listed
path that is absolute or climbs with ``..`` is refused; a file or folder that is a symbolic link
leading out of DIR is skipped (reason ``outside_root``) and counted. Each image is named as the
run's dataset names the file at that relative path: its plugin's optional
``image_id_for(relative_path)`` (PadChest and NIH name an image by its file name), else the
relative path itself; two files with one name are refused.

Each image is prepared exactly as the run's cache prepared its training images
(:func:`mlbench.preprocessing.cache.prepare_image`, the run's preprocessor and size), every
backbone scores it from its best checkpoint (:func:`mlbench.training.runner.load_trained`,
batched by :func:`mlbench.training.loop.predict`), and the run's ensembles combine the backbones'
probabilities as the runner's ensemble stage does. An image that cannot be read or preprocessed
is skipped, counted and listed in ``FILE.skipped.csv`` (file, reason, detail).

Resumable: the images go in chunks (1,024 each); a finished chunk's backbone probabilities land
atomically in ``FILE.parts/`` under a name hashing the run, its checkpoints, the preprocessor and
the chunk's files (their sizes and modification times), so a rerun of the same command skips
finished chunks and a changed image or checkpoint is predicted again. At the end FILE is written
atomically in the outside predictions format (:mod:`mlbench.results.external`; CSV, ``.csv.gz``
or parquet by its suffix), every backbone and ensemble an entry, split ``test``, and the parts
are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from mlbench.contracts.registry import Registry
from mlbench.data import Skip
from mlbench.data.imagepaths import ImageRoot
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import os_reason, write_parquet, write_text
from mlbench.preprocessing.cache import prepare_image, source_state
from mlbench.preprocessing.images import ImageReadError
from mlbench.results import external, predictions
from mlbench.results.predictions import show
from mlbench.results.rundir import RunDir
from mlbench.training.adjusting import refit_run_adjusters
from mlbench.training.loop import device_name, pick_device
from mlbench.training.loop import predict as predict_batches
from mlbench.training.progress import Reporter
from mlbench.training.runner import TrainedRun, load_trained

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CHUNK_IMAGES = 1024
PARTS_SUFFIX = ".parts"
SKIPPED_SUFFIX = ".skipped.csv"
SKIPPED_COLUMNS = ("file", "reason", "detail")
PART_NAME = re.compile(r"[0-9a-f]{24}(\.skips)?\.parquet")
MAX_LIST_BYTES = 64 << 20
SPLIT = "test"
SKIPS_SCHEMA = pa.schema([(c, pa.string()) for c in SKIPPED_COLUMNS])


class PredictError(UserError, ValueError):
    """The images cannot be predicted as asked (the message names the file, line or option)."""


@dataclass(frozen=True)
class ImageItem:
    """One image to predict: its id as the dataset names it and its path under the image folder ('/'-separated)."""

    image_id: str
    relative: str


@dataclass
class PredictResult:
    """What ``predict_images`` did: ``n_images`` predicted, ``skipped`` (item: the file under the image
    folder), the chunks and how many were finished before this call."""

    out: Path
    entries: list[str]
    n_images: int
    skipped: list[Skip] = field(default_factory=list)
    skipped_file: Path | None = None
    chunks: int = 0
    reused: int = 0
    device: str = ""


def parts_folder(out: Path) -> Path:
    return out.with_name(out.name + PARTS_SUFFIX)


def skipped_file(out: Path) -> Path:
    return out.with_name(out.name + SKIPPED_SUFFIX)


# -- which images ---------------------------------------------------------------------------------------
def read_list(list_file: Path, root: Path) -> list[tuple[int, str]]:
    """(line number, relative path) of every non-blank line; a path leading out of ``root`` is refused."""
    if not list_file.is_file():
        raise PredictError(f"--list {list_file}: no such file; expected a text file with one image path per line")
    try:
        size = list_file.stat().st_size
        if size > MAX_LIST_BYTES:
            raise PredictError(f"--list {list_file}: {size:,} bytes, over the limit of {MAX_LIST_BYTES:,}")
        text = list_file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PredictError(f"--list {list_file}: not UTF-8 text; expected one image path per line") from None
    except OSError as exc:
        raise PredictError(f"--list {list_file}: cannot read it ({os_reason(exc)})") from None
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        path = line.strip()
        if not path:
            continue
        parts = PurePosixPath(path).parts
        if "\x00" in path or os.path.isabs(path) or ".." in parts:
            raise PredictError(f"--list {list_file} line {number}: the path leads outside --images {root} (an "
                               "absolute path or '..'); expected a path relative to that folder")
        out.append((number, PurePosixPath(*[p for p in parts if p != "."]).as_posix()))
    if not out:
        raise PredictError(f"--list {list_file}: names no image; expected one image path per line")
    return out


def walk_images(root: Path) -> tuple[list[str], list[Skip]]:
    """Every image file under ``root`` (sorted, relative, '/'-separated), and the folder links that lead out."""
    found, refused = [], []
    guard = ImageRoot(root, cache_folders=False)
    for folder, folders, files in os.walk(root, followlinks=False):
        here = Path(folder)
        for name in sorted(folders):
            if (here / name).is_symlink() and guard.resolve(here / name) is None:
                relative = (here / name).relative_to(root).as_posix()
                refused.append(guard.refusal(relative, relative))
        folders.sort()
        found += [(here / f).relative_to(root).as_posix() for f in files if f.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(found), refused


def name_images(relatives: Sequence[str], dataset: Any, where: str,
                lines: Sequence[int] | None = None) -> list[ImageItem]:
    """Each file's image id as the dataset names it; two files with one id are refused."""
    name_of = getattr(dataset, "image_id_for", None)
    items, seen = [], {}
    for i, relative in enumerate(relatives):
        image_id = str(name_of(relative)) if callable(name_of) else relative
        if image_id in seen:
            j = seen[image_id]
            at = (f"lines {lines[j]} and {lines[i]}" if lines is not None
                  else f"files {show(relatives[j])} and {show(relative)}")
            raise PredictError(f"{where}: {at} both give image id {show(image_id)}, as the run's dataset names "
                               "images; expected each image once")
        seen[image_id] = i
        items.append(ImageItem(image_id, relative))
    return items


# -- one chunk --------------------------------------------------------------------------------------------
def chunk_name(identity: str, root: Path, items: Sequence[ImageItem]) -> str:
    """The part's name: the run's identity and each file's state, so a changed file is predicted again."""
    digest = hashlib.sha256(identity.encode())
    for item in items:
        size, mtime = source_state(root / item.relative)
        digest.update(f"\n{item.image_id}\t{item.relative}\t{size}\t{mtime}".encode())
    return digest.hexdigest()[:24]


def prepare_chunk(items: Sequence[ImageItem], root: Path, preprocessor: Any, size: int,
                  workers: int) -> tuple[list[ImageItem], np.ndarray, list[Skip]]:
    """The chunk's images as the cache prepares them (several threads); the ones that fail, as skips."""
    guard = ImageRoot(root, cache_folders=False)  # every path in full, right before it is read

    def one(item: ImageItem) -> np.ndarray | Skip:
        real = guard.resolve(item.relative)
        if real is None:
            return guard.refusal(item.relative, item.relative)
        try:
            return prepare_image(real, preprocessor, size)
        except ImageReadError as exc:
            return Skip(item.relative, exc.reason, exc.detail)
        except Exception as exc:  # noqa: BLE001 - one image the preprocessor fails on must not stop the rest
            return Skip(item.relative, "preprocess_failed", f"{type(exc).__name__}: {str(exc)[:200]}")

    if workers > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlbench-predict") as pool:
            prepared = list(pool.map(one, items))
    else:
        prepared = [one(item) for item in items]
    kept = [(item, image) for item, image in zip(items, prepared) if not isinstance(image, Skip)]
    skips = [image for image in prepared if isinstance(image, Skip)]
    arrays = np.stack([image for _, image in kept]) if kept else np.zeros((0, size, size), dtype=np.uint8)
    return [item for item, _ in kept], arrays, skips


def predict_chunk(trained: TrainedRun, images: np.ndarray, ids: list[str], device: torch.device,
                  batch_size: int) -> pa.Table:
    """Every backbone's probabilities for the chunk's prepared images (predictions schema, split test)."""
    labels = list(trained.labels)
    tables = []
    tensor = torch.from_numpy(images)
    for name, model in trained.models.items():
        probs = (predict_batches(model, tensor, device, batch_size=batch_size) if len(ids)
                 else np.zeros((0, len(labels))))
        tables.append(predictions.to_table(ids, [SPLIT] * len(ids), name, labels, probs))
    return pa.concat_tables(tables)


def _skips_table(skips: Sequence[Skip]) -> pa.Table:
    return pa.table({"file": [s.item for s in skips], "reason": [s.reason for s in skips],
                     "detail": [s.detail for s in skips]}, schema=SKIPS_SCHEMA)


def finished_chunk(folder: Path, name: str, items: Sequence[ImageItem],
                   backbones: list[str], labels: list[str]) -> tuple[pd.DataFrame, list[Skip]] | None:
    """A part an earlier call wrote, checked like any predictions file; None when absent or not usable."""
    probs, skipped = folder / f"{name}.parquet", folder / f"{name}.skips.parquet"
    if not (probs.is_file() and skipped.is_file()):
        return None
    try:
        table = pq.read_table(skipped)
        if table.schema.names != list(SKIPPED_COLUMNS):
            return None
        skips = [Skip(*(("" if v is None else str(v)) for v in row)) for row in
                 zip(*(table.column(c).to_pylist() for c in SKIPPED_COLUMNS))]
        named = {item.relative for item in items}
        if any(s.item not in named for s in skips):
            return None
        left = {s.item for s in skips}
        kept = [item.image_id for item in items if item.relative not in left]
        frame = predictions.read(probs, [predictions.Coverage(SPLIT, kept, backbones, labels)] if kept else [])
    except (predictions.PredictionsError, pa.ArrowException, OSError, TypeError):
        return None  # a torn or foreign part: predicted again
    return frame, skips


# -- the whole command -------------------------------------------------------------------------------------
def check_out(out: Path) -> None:
    """Refuse, before any work, an output path that can never be written."""
    try:
        external.file_format(out)
    except external.ExternalPredictionsError as exc:
        raise PredictError(f"--out {exc}") from None
    if out.is_dir():
        raise PredictError(f"--out {out}: is a folder; expected a file name ending in {', '.join(external.SUFFIXES)}")
    parts = parts_folder(out)
    if parts.exists() and not parts.is_dir():
        raise PredictError(f"--out {out}: {parts} is a file; expected the folder of finished chunks there")


def predict_images(run_dir: str | os.PathLike, images: str | os.PathLike, out: str | os.PathLike, *,
                   list_file: str | os.PathLike | None = None, device: str = "auto", batch_size: int | None = None,
                   workers: int | None = None, progress: bool | str = "auto", chunk_size: int = CHUNK_IMAGES,
                   registry: Registry | None = None) -> PredictResult:
    """Predict every image under ``images`` (or those ``list_file`` names) with RUN_DIR's models into ``out``."""
    root, out = Path(images), Path(out)
    check_out(out)
    if not root.is_dir():
        raise PredictError(f"--images {root}: no such folder; expected the folder of the images to predict")
    listed = read_list(Path(list_file), root) if list_file is not None else None
    torch_device = pick_device(device)
    rundir = RunDir(run_dir)
    manifest = rundir.manifest()
    if listed is not None:
        relatives, refused = [p for _, p in listed], []
        where = f"--list {list_file}"
    else:
        relatives, refused = walk_images(root)
        where = f"--images {root}"
        if not relatives:
            raise PredictError(f"--images {root}: no {', '.join(IMAGE_SUFFIXES)} file under it; expected the "
                               "images to predict")
    trained = load_trained(rundir.path, torch_device, registry)
    dataset = trained.registry.create("dataset", trained.benchmark.dataset)
    items = name_images(relatives, dataset, where, [n for n, _ in listed] if listed is not None else None)
    recipe, labels = trained.recipe, list(trained.labels)
    backbones = list(trained.models)
    preprocessor = trained.preprocessor()
    size = int(recipe.image_size)
    batch = batch_size or recipe.batch_size * 4  # the runner's inference batch
    threads = max(1, workers or os.cpu_count() or 1)
    identity = json.dumps({"run_id": manifest.get("run_id"), "preprocessor": preprocessor.config(), "size": size,
                           "labels": labels, "checkpoints": {b: source_state(rundir.best_checkpoint(b))
                                                             for b in backbones}}, sort_keys=True, default=str)
    folder = parts_folder(out)
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    names = [chunk_name(identity, root, chunk) for chunk in chunks]
    reporter = Reporter(progress)
    frames, skipped, reused = [], list(refused), 0
    with reporter.bars() as bar:
        task = bar.add_task("predict", total=len(items)) if bar is not None else None
        for chunk, name in zip(chunks, names):
            done = finished_chunk(folder, name, chunk, backbones, labels)
            if done is None:
                kept, arrays, skips = prepare_chunk(chunk, root, preprocessor, size, threads)
                table = predict_chunk(trained, arrays, [item.image_id for item in kept], torch_device, batch)
                write_parquet(folder / f"{name}.skips.parquet", _skips_table(skips))  # first: the part is last
                write_parquet(folder / f"{name}.parquet", table)
                done = (table.to_pandas(), skips)
            else:
                reused += 1
            frames.append(done[0])
            skipped += done[1]
            if bar is not None:
                bar.advance(task, len(chunk))
    left = {s.item for s in skipped}
    kept_ids = [item.image_id for item in items if item.relative not in left]
    skipped_at = _write_skipped(out, skipped)
    if not kept_ids:
        reasons = ", ".join(sorted({s.reason for s in skipped}))
        raise PredictError(f"{where}: none of the {len(items)} images could be predicted ({reasons}; every one is "
                           f"listed in {skipped_at})")
    frame = pd.concat(frames, ignore_index=True)
    probs = np.stack([predictions.wide(frame, b, kept_ids, labels) for b in backbones])
    adjusters = refit_run_adjusters(trained.rundir, trained.registry, recipe, labels)
    if adjusters is not None:  # as the runner adjusted its test outputs, before the ensembles
        probs = np.stack([np.clip(a.apply(p), 0.0, 1.0) for a, p in zip(adjusters, probs)])
    tables = [predictions.to_table(kept_ids, [SPLIT] * len(kept_ids), b, labels, probs[i])
              for i, b in enumerate(backbones)]
    for name in recipe.ensembles:  # as the runner's ensemble stage combines them
        ensemble = trained.registry.create("ensemble", name, threshold=recipe.threshold)
        tables.append(predictions.to_table(kept_ids, [SPLIT] * len(kept_ids), name, labels,
                                           ensemble.combine(probs)[0]))
    external.write_external(out, pa.concat_tables(tables).to_pandas())
    _remove_parts(folder)
    return PredictResult(out=out, entries=backbones + list(recipe.ensembles), n_images=len(kept_ids),
                         skipped=skipped, skipped_file=skipped_at, chunks=len(chunks), reused=reused,
                         device=device_name(torch_device))


def _write_skipped(out: Path, skipped: Sequence[Skip]) -> Path | None:
    """``OUT.skipped.csv`` listing each skipped file, or no such file when none was skipped."""
    path = skipped_file(out)
    if not skipped:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    frame = pd.DataFrame({"file": [s.item for s in skipped], "reason": [s.reason for s in skipped],
                          "detail": [s.detail for s in skipped]})
    write_text(path, frame.to_csv(index=False))
    return path


def _remove_parts(folder: Path) -> None:
    """The finished chunks, once the whole file is written (only files of ours; the folder if then empty)."""
    if not folder.is_dir():
        return
    for part in folder.iterdir():
        if PART_NAME.fullmatch(part.name) and part.is_file():
            with contextlib.suppress(OSError):
                part.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()
