"""The preprocessing cache: every image decoded, cropped and resized once, read by training as arrays.

Layout under ``CACHE_DIR/<key>/`` where ``key`` hashes the preprocessor's config (a changed
config never reuses stale entries)::

    config.json                    the preprocessor config the key was made from
    shards/<name>.npy              uint8 (n, size, size) images
    shards/<name>.parquet          one row per image of the shard: crop box, fallback, or why skipped,
                                   and the source file's size and mtime when it was read

A shard's parquet is written after its array, both atomically, so a shard with a parquet is
complete: a killed build resumes with the images that no finished shard holds.

Training reads the shards in place (:meth:`Cache.images`): memory-mapped, read-only, so every
process on a machine that opens the cache (DDP ranks, ``grid --parallel`` workers) shares one copy
of the images in the OS page cache instead of holding its own. Each shard is checked against the
cache's config (uint8, (n, size, size), every row its parquet names) before a batch is read from it.

An entry, a skip included, is reused only while its source file has the size and modification
time (ns) it had when it was read; a repaired or replaced file is processed again into a new
shard and its newest row wins. Size + mtime is what make and rsync trust: one ``stat`` per image
on a resume, where a content hash would read the whole corpus (PadChest: ~1 TB) every time.

Shards are built by a pool of threads, not processes: decoding (cv2), the crop (cv2, numpy) and a
torch segmenter release the GIL, and a thread cannot re-run the caller's script the way a spawned
worker re-imports ``__main__`` (a script calling ``mlbench.run_benchmark`` at module level, without
``if __name__ == "__main__":``, would otherwise start the run again in every worker). So one
preprocessor object is called from several threads at once: it must not keep per-image state.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlbench.data import Skip
from mlbench.data.imagepaths import ImageRoot
from mlbench.foundations.paths import lies_under
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import atomic_path, write_json, write_parquet
from mlbench.preprocessing import Preprocessed, Preprocessor
from mlbench.preprocessing.images import ImageReadError, read_grayscale

CACHE_FORMAT = 2  # 2: rows record their source file's state (format-1 caches are not reused)
SHARD_COLUMNS = ("image_id", "row", "status", "x0", "y0", "x1", "y1", "method", "fallback", "reason")
SOURCE_COLUMNS = ("source_size", "source_mtime_ns", "built_ns")
NO_FILE = (-1, -1)  # the source state of a path that is not there (its skip lasts until it appears)


class CacheError(UserError):
    """The preprocessing cache cannot live where it was asked to (the message names the path)."""


class CacheFileError(UserError):
    """A file of the preprocessing cache is damaged or does not match the cache's config (the message names it)."""


def cache_key(config: dict[str, Any]) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, **config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _shard_name(entries: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:20]


def source_state(path: str | Path) -> tuple[int, int]:
    """(size, mtime_ns) of an image file, :data:`NO_FILE` when it cannot be stat'ed."""
    try:
        stat = os.stat(path)
    except (OSError, ValueError):  # missing, unreadable folder, or a path with a NUL byte
        return NO_FILE
    return stat.st_size, stat.st_mtime_ns


def prepare_image_and_box(path: str | os.PathLike, preprocessor: Preprocessor,
                          size: int) -> tuple[np.ndarray, Preprocessed]:
    """One image as the cache stores it, and what the preprocessor said of it (crop box, method, fallback).

    read_grayscale -> the preprocessor -> rint(x * 255) as uint8 (size, size). Raises
    :class:`ImageReadError` for a file that cannot be read, and whatever the preprocessor raises.
    """
    # A preprocessor may say its images are not films (auto_invert=False): never flip those.
    out = preprocessor(read_grayscale(path, invert=None if getattr(preprocessor, "auto_invert", True) else False))
    if out.image.shape != (size, size):
        raise ValueError(f"preprocessor returned shape {out.image.shape}, expected {(size, size)}")
    return np.clip(np.rint(out.image * 255.0), 0, 255).astype(np.uint8), out


def prepare_image(path: str | os.PathLike, preprocessor: Preprocessor, size: int) -> np.ndarray:
    """One image exactly as the cache stores it: uint8 (size, size), what a model trained on the cache sees.

    The one definition of that step: the cache, ``mlbench predict`` and anything else that feeds a
    trained model an image outside the cache go through it (errors as :func:`prepare_image_and_box`)."""
    return prepare_image_and_box(path, preprocessor, size)[0]


def _process_shard(args: tuple[Path, Preprocessor, int, list[tuple[str, str]], str | None]) -> dict[str, int]:
    """Decode + preprocess one shard's images and write the shard (runs in a worker thread)."""
    shard_dir, preprocessor, size, items, image_root = args
    # Each path in full, right before it is decoded: a link made since the reader checked is seen.
    root = ImageRoot(image_root, cache_folders=False) if image_root is not None else None
    images = np.zeros((len(items), size, size), dtype=np.uint8)
    rows: list[dict[str, Any]] = []
    n_ok = 0
    for image_id, path in items:
        # stat before reading: a file changed while being read looks changed on the next build
        file_size, mtime_ns = source_state(path)
        row: dict[str, Any] = {"image_id": image_id, "row": -1, "status": "ok", "x0": None, "y0": None,
                               "x1": None, "y1": None, "method": None, "fallback": None, "reason": "",
                               "source_size": file_size, "source_mtime_ns": mtime_ns, "built_ns": time.time_ns()}
        if root is not None and _leaves(root, path):
            skip = root.refusal(image_id, path)
            row.update(status="skipped", reason=f"{skip.reason}: {skip.detail}")
            rows.append(row)
            continue
        try:
            images[n_ok], out = prepare_image_and_box(path, preprocessor, size)
            row.update(row=n_ok, x0=out.box[0], y0=out.box[1], x1=out.box[2], y1=out.box[3],
                       method=out.method, fallback=bool(out.fallback), reason=out.reason)
            n_ok += 1
        except ImageReadError as exc:
            row.update(status="skipped", reason=f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason)
        except Exception as exc:  # a preprocessing bug on one image must not stop the whole cache
            row.update(status="skipped", reason=f"preprocess_failed: {exc!r}")
        rows.append(row)
    write_shard(shard_dir, rows, images[:n_ok])
    return {"ok": n_ok, "skipped": len(items) - n_ok}


def write_shard(shard_dir: Path, rows: Sequence[dict[str, Any]], images: np.ndarray) -> str:
    """Write one shard: ``images`` (uint8 (n, size, size)) as its array, then ``rows`` as its parquet.

    ``rows`` has one dict per image of the shard, with the :data:`SHARD_COLUMNS` and
    :data:`SOURCE_COLUMNS` (a missing one is null); an ``ok`` row's ``row`` is its index in
    ``images``. Returns the shard's name."""
    # The sources' state is in the name: a re-processed image never overwrites its earlier shard.
    name = _shard_name([f"{r['image_id']}\t{r['source_size']}\t{r['source_mtime_ns']}" for r in rows])
    with atomic_path(shard_dir / f"{name}.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(images, dtype=np.uint8))
    write_parquet(shard_dir / f"{name}.parquet", pa.Table.from_pylist(list(rows), schema=_SHARD_SCHEMA))
    return name


_SHARD_SCHEMA = pa.schema([
    ("image_id", pa.string()), ("row", pa.int64()), ("status", pa.string()),
    ("x0", pa.int64()), ("y0", pa.int64()), ("x1", pa.int64()), ("y1", pa.int64()),
    ("method", pa.string()), ("fallback", pa.bool_()), ("reason", pa.string()),
    ("source_size", pa.int64()), ("source_mtime_ns", pa.int64()), ("built_ns", pa.int64()),
])


class CachedImages:
    """One split's images, read in place from the cache's memory-mapped shards (:meth:`Cache.images`).

    Holds no copy of the images: each position's (shard, row) and the read-only shard arrays, so the
    pixels live once per machine in the OS page cache however many processes read them. Indexed
    like the uint8 tensor it stands for: ``images[idx]`` (a LongTensor, an integer array or a
    slice of positions) gathers those images into a fresh uint8 tensor (len(idx), size, size);
    ``len``, ``shape`` and ``dtype`` are the tensor's.
    """

    def __init__(self, shards: Sequence[np.ndarray], shard_of: np.ndarray, row_of: np.ndarray, size: int) -> None:
        # Plain ndarray views of the memmaps: np.memmap's own __getitem__ costs microseconds per image.
        self.shards = tuple(array.view(np.ndarray) for array in shards)
        self._shard_of = np.asarray(shard_of, dtype=np.intp)
        self._row_of = np.asarray(row_of, dtype=np.intp)
        self.size = int(size)

    def __len__(self) -> int:
        return len(self._row_of)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self), self.size, self.size)

    @property
    def dtype(self) -> Any:
        import torch

        return torch.uint8

    def gather(self, positions: Any) -> np.ndarray:
        """A fresh uint8 (len(positions), size, size) array of the images at these positions."""
        if isinstance(positions, slice):
            positions = np.arange(*positions.indices(len(self)))
        positions = np.asarray(positions)
        if positions.ndim != 1 or (positions.size and positions.dtype.kind not in "iu"):
            raise IndexError(f"cached images are indexed by a 1-d array of positions, got {positions.dtype} "
                             f"{positions.shape}")
        shard_of, row_of = self._shard_of[positions].tolist(), self._row_of[positions].tolist()
        out = np.empty((len(shard_of), self.size, self.size), dtype=np.uint8)
        shards = self.shards
        # One copy per image straight from the page cache into the batch: no temporary per shard.
        for i, (shard, row) in enumerate(zip(shard_of, row_of)):
            out[i] = shards[shard][row]
        return out

    def __getitem__(self, index: Any) -> Any:
        import torch

        if isinstance(index, (int, np.integer)):
            return torch.from_numpy(self.gather([index])[0])
        return torch.from_numpy(self.gather(index))

    def __repr__(self) -> str:
        return f"CachedImages({len(self)} x {self.size} x {self.size} uint8 in {len(self.shards)} shard(s))"


@dataclass
class Cache:
    """A built cache: look images up by id; ``index`` holds each image's crop box or skip reason."""

    root: Path
    size: int
    index: pd.DataFrame  # SHARD_COLUMNS + SOURCE_COLUMNS + "shard"
    # Each shard's memmap once checked, shared by every split read from this object (one fd per shard).
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, root: Path) -> "Cache":
        config_path = root / "config.json"
        try:
            size = json.loads(config_path.read_text())["size"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheFileError(f"{config_path}: not a preprocessing cache's config ({type(exc).__name__}); "
                                 "expected a JSON object with the image size") from None
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise CacheFileError(f"{config_path}: size is not a positive integer; expected the cached images' size")
        frames = []
        for parquet in sorted(shard_folder(root).glob("*.parquet")):
            frame = pq.read_table(parquet).to_pandas()
            frame["shard"] = parquet.stem
            frames.append(frame)
        index = (pd.concat(frames, ignore_index=True) if frames
                 else pd.DataFrame(columns=[*SHARD_COLUMNS, *SOURCE_COLUMNS, "shard"]))
        return cls(root, size, _newest(index).set_index("image_id", drop=False))

    def skipped(self, image_ids: Sequence[str]) -> list[Skip]:
        rows = self.index.reindex(list(image_ids))
        missing = rows["status"].isna()
        out = [Skip(i, "not_in_cache") for i in rows.index[missing]]
        bad = rows[rows["status"] == "skipped"]
        out += [Skip(str(i), r.split(":")[0], r) for i, r in zip(bad.index, bad["reason"])]
        return out

    def write_manifest(self, image_ids: Sequence[str], directory: Path | None = None, *,
                       refused: Sequence[Skip] = ()) -> dict[str, Any]:
        """Write ``manifest.parquet`` (each image: crop box, fallback, or skip reason) and a JSON summary
        into ``directory`` (default: the cache's own folder). ``refused``: images the reader left out
        before decoding (e.g. ``outside_root``), listed and counted as skipped too."""
        directory = Path(directory or self.root)
        rows = self.index.reindex(list(image_ids))
        rows["image_id"] = rows.index
        rows["status"] = rows["status"].fillna("not_in_cache")
        if refused:
            extra = pd.DataFrame({"image_id": [s.item for s in refused], "status": "skipped",
                                  "row": -1, "reason": [f"{s.reason}: {s.detail}" if s.detail else s.reason
                                                        for s in refused]}).set_index("image_id", drop=False)
            rows = pd.concat([rows, extra.reindex(columns=rows.columns)])
        table = pa.Table.from_pandas(rows[list(SHARD_COLUMNS)].reset_index(drop=True), preserve_index=False)
        write_parquet(directory / "manifest.parquet", table)
        ok = int((rows["status"] == "ok").sum())
        summary = {"path": str(self.root), "size": self.size, "ok": ok, "skipped": len(rows) - ok,
                   "fallbacks": int(rows["fallback"].fillna(False).astype(bool).sum()),
                   "skipped_items": [{"image_id": i, "reason": r} for i, r in
                                     zip(rows.index[rows["status"] != "ok"], rows["reason"][rows["status"] != "ok"])],
                   "manifest": str(directory / "manifest.parquet")}
        write_json(directory / "manifest.json", summary)
        return summary

    def images(self, image_ids: Sequence[str]) -> CachedImages:
        """These images, in this order, read in place from the shards (what training indexes; no copy).

        Raises KeyError for an id the cache has no image of, :class:`CacheFileError` naming the
        file for a shard that is missing, truncated, or not uint8 (n, size, size) with every row
        its parquet names."""
        return self._read(image_ids, self._arrays)

    def load(self, image_ids: Sequence[str]) -> np.ndarray:
        """A contiguous uint8 (n, size, size) array of these images, in this order: a copy in this
        process's memory (training reads :meth:`images` instead); errors as :meth:`images`."""
        # Maps of its own, dropped on return: the shards' pages stay out of this process once copied.
        images = self._read(image_ids, {})
        return images.gather(np.arange(len(images)))

    def _read(self, image_ids: Sequence[str], maps: dict[str, np.ndarray]) -> CachedImages:
        rows = self.index.reindex(list(image_ids))
        if rows["status"].isna().any() or (rows["status"] != "ok").any():
            bad = list(rows.index[rows["status"].ne("ok")])[:5]
            raise KeyError(f"cache {self.root}: images not available: {bad} ...")
        codes, names = pd.factorize(rows["shard"], sort=True)
        row_of = pd.to_numeric(rows["row"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        shards = []
        for code, name in enumerate(names):
            mine = row_of[codes == code]
            if not np.all((mine >= 0) & (mine == np.floor(mine))):  # NaN fails both
                raise CacheFileError(f"{shard_folder(self.root) / f'{name}.parquet'}: an image has no valid row; "
                                     "expected a row index >= 0 into the shard's array")
            shards.append(self._shard_array(str(name), int(mine.max()) + 1 if len(mine) else 0, maps))
        return CachedImages(shards, codes, row_of.astype(np.intp), self.size)

    def _shard_array(self, name: str, rows_needed: int, maps: dict[str, np.ndarray]) -> np.ndarray:
        """The shard's memmap, checked against the config once per ``maps``."""
        path = shard_folder(self.root) / f"{name}.npy"
        array = maps.get(name)
        if array is None:
            try:  # allow_pickle=False: a shard is plain data, never code
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise CacheFileError(f"{path}: not a readable image shard ({detail}); {_REBUILD}") from None
            if not isinstance(array, np.ndarray):  # a zip (.npz) under the .npy name
                array.close()
                raise CacheFileError(f"{path}: an .npz archive, not a .npy array; {_REBUILD}")
            if (array.dtype != np.uint8 or array.shape[1:] != (self.size, self.size) or array.ndim != 3
                    or not array.flags.c_contiguous):
                raise CacheFileError(f"{path}: {array.dtype} {array.shape}; expected C-ordered uint8 "
                                     f"(n, {self.size}, {self.size}) images (config.json size {self.size}); "
                                     f"{_REBUILD}")
            maps[name] = array
        if len(array) < rows_needed:
            raise CacheFileError(f"{path}: holds {len(array)} images, its parquet names row {rows_needed - 1}; "
                                 f"{_REBUILD}")
        return array


_REBUILD = "delete it and its .parquet to have the cache rebuild that shard"


def _leaves(root: ImageRoot, path: str) -> bool:
    """A path under the image root (as the readers write them) whose real path is now outside it."""
    absolute = os.path.abspath(path)
    under = lies_under(absolute, root.real) or lies_under(absolute, os.path.abspath(root.root))
    return under and root.resolve(absolute) is None


def shard_folder(root: Path) -> Path:
    """Where a cache's shards lie (``root``: the cache's folder, ``Cache.root``)."""
    return root / "shards"


def cache_folder(cache_dir: str | Path, config: dict[str, Any]) -> Path:
    """The folder of the cache that ``config`` (the preprocessor's config and ``size``) keys under
    ``cache_dir``, made with its shard folder and its config.json; an empty cache until shards are written."""
    root = Path(cache_dir) / cache_key(config)
    shard_dir = shard_folder(root)
    existing = next((p for p in (shard_dir, *shard_dir.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CacheError(f"{cache_dir}: {existing} is a file; expected a folder for the preprocessing cache (--cache)")
    shard_dir.mkdir(parents=True, exist_ok=True)
    if not (root / "config.json").exists():
        write_json(root / "config.json", config)
    return root


def build_cache(items: pd.DataFrame, preprocessor: Preprocessor, size: int, cache_dir: str | Path, *,
                workers: int | None = None, shard_size: int = 512, progress: Any = None,
                image_root: str | Path | None = None) -> Cache:
    """Preprocess every ``items`` row (image_id, image_path) not already cached; return the cache.

    ``image_root``: the dataset's image folder. An image path below it whose real path now leaves it
    (a file or folder replaced by a link out since the reader checked it) is not decoded but
    skipped as ``outside_root``; paths a dataset placed elsewhere are the dataset's business.

    Work is split into shards processed in parallel by ``workers`` threads (default: all cores).
    ``progress`` is an optional rich Progress to report shard completion on.
    """
    config = dict(preprocessor.config())
    config["size"] = int(size)
    root = cache_folder(cache_dir, config)
    shard_dir = shard_folder(root)
    recorded = [pq.read_table(p, columns=["image_id", *SOURCE_COLUMNS]) for p in shard_dir.glob("*.parquet")]
    pairs = _changed_or_new(items, _newest(pa.concat_tables(recorded).to_pandas()) if recorded else None)
    if pairs:
        workers = max(1, workers or os.cpu_count() or 1)
        # Enough shards to keep every worker busy, small enough that a kill loses little work.
        per_shard = max(16, min(shard_size, math.ceil(len(pairs) / (workers * 4))))
        chunks = [pairs[i:i + per_shard] for i in range(0, len(pairs), per_shard)]
        images_at = None if image_root is None else os.fspath(image_root)
        jobs = [(shard_dir, preprocessor, int(size), chunk, images_at) for chunk in chunks]
        task = progress.add_task("preprocess", total=len(pairs)) if progress is not None else None
        if workers == 1 or len(jobs) == 1:
            results = map(_process_shard, jobs)
            _drain(results, jobs, progress, task)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlbench-preprocess") as pool:
                _drain(pool.map(_process_shard, jobs), jobs, progress, task)
    return Cache.open(root)


def _newest(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per image: the last one built (an image is in two shards once its file changed)."""
    return rows.sort_values("built_ns", ascending=False, kind="stable").drop_duplicates("image_id", keep="first")


def _changed_or_new(items: pd.DataFrame, recorded: pd.DataFrame | None) -> list[tuple[str, str]]:
    """(image_id, path) of every item without a row for its file's current size and mtime."""
    ids, paths = items["image_id"].astype(str).tolist(), items["image_path"].astype(str).tolist()
    if recorded is None or recorded.empty:
        todo = list(zip(ids, paths))
    else:
        known = dict(zip(recorded["image_id"], zip(recorded["source_size"].tolist(),
                                                   recorded["source_mtime_ns"].tolist())))
        todo = [(i, p) for i, p in zip(ids, paths) if known.get(i) != source_state(p)]
    return sorted(todo)


def _drain(results, jobs, progress, task) -> None:
    for job, _ in zip(jobs, results):
        if progress is not None:
            progress.advance(task, len(job[3]))

