"""One training epoch from the preprocessing cache vs one epoch decoding the PNGs again.

    python perf/bench_cache_epoch.py                            # a small synthetic demo corpus (256 px films)
    python perf/bench_cache_epoch.py --film-size 1024           # larger demo films (decoding grows, the cache does not)
    python perf/bench_cache_epoch.py --images DIR               # any folder of PNG/JPEG chest films

Issue 4 (part 5b) asks for a cache epoch at least 20x faster than a decoding epoch. Both epochs
hand training the same thing: every image once, in a shuffled order, as float batches
(batch, 1, S, S) in [0, 1] on the host.

cache epoch
    what ``mlbench run`` does: :meth:`Cache.images` of all ids (the memory-mapped shards, read in
    place), then per batch one gather by index and the scale to [0, 1]
    (:func:`mlbench.training.loop.to_device` on the CPU). The one-off cache build is timed apart.
decoding epoch
    what a per-epoch ``Dataset``/``DataLoader`` pipeline does: per image
    :func:`~mlbench.preprocessing.images.read_grayscale` (read, decode, checks) and the
    preprocessor (lung crop + resize, the cache's own), then stacking into a batch. Also timed with
    the plain ``resize`` preprocessor: the cheapest decoding pipeline there is.

Everything runs in one process on one thread (OpenCV and torch), the files in the OS page cache
after the first pass: the ratio is per core; a DataLoader with W workers divides both epochs' work
over W cores alike. Each epoch kind runs ``--epochs`` times, kinds alternating; the fastest counts.
The demo's films are small (256 px by default) while PadChest's are ~2,500-4,000 px 16-bit PNGs,
so the demo ratio is a lower bound for real data.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import pandas as pd
import torch

from _machine import describe_machine
from mlbench.data import DataSource, Skip
from mlbench.data.labels import label_matrix
from mlbench.preprocessing import Preprocessor
from mlbench.preprocessing.cache import Cache, build_cache
from mlbench.preprocessing.images import ImageReadError, read_grayscale
from mlbench.contracts.registry import get_registry
from mlbench.training.loop import to_device

BENCHMARK = "padchest-specific"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class NothingToTime(ValueError):
    """No image of the corpus could be preprocessed."""


@dataclass
class EpochTimes:
    """The fastest epoch of each kind over the same images (see the module docstring)."""

    images: int
    first_film: str  # "W x H dtype" of the first film, as decoded
    preprocessor: str
    size: int
    batch: int
    workers: int
    build_s: float  # the one-off cache build
    seconds: dict[str, float]  # epoch kind -> seconds of its fastest epoch; "cache" first
    skips: list[Skip] = field(default_factory=list)
    offered: int = 0  # films given; more than were timed when a time budget left some out

    @property
    def cache_s(self) -> float:
        return self.seconds["cache"]

    @property
    def cheapest_decoding_s(self) -> float:
        return min(s for name, s in self.seconds.items() if name != "cache")

    @property
    def speedup(self) -> float:
        """How many times faster the cache epoch is than the cheapest decoding epoch."""
        return self.cheapest_decoding_s / self.cache_s


def demo_items(folder: Path, n_patients: int, film_size: int, workers: int = 2) -> tuple[pd.DataFrame, list[Skip]]:
    """Write the synthetic corpus and read it as ``mlbench run`` does: (image_id, image_path) + skips."""
    from mlbench_padchest.demo import write_demo_corpus

    registry = get_registry()
    bench = registry.create("benchmark", BENCHMARK)
    source: DataSource = write_demo_corpus(folder, seed=0, n_patients=n_patients, image_size=film_size,
                                           workers=workers)
    records = registry.create("dataset", bench.dataset).read(source)
    frame, _, no_label = label_matrix(records, bench)
    return frame[["image_id", "image_path"]].reset_index(drop=True), list(records.skipped) + no_label


def folder_items(folder: Path, limit: int | None) -> pd.DataFrame:
    """Every PNG/JPEG under ``folder``; the id is the path relative to it."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        raise SystemExit(f"--images {folder}: no PNG or JPEG files found")
    return pd.DataFrame({"image_id": [str(p.relative_to(folder)) for p in paths],
                         "image_path": [str(p) for p in paths]})


def readable(items: pd.DataFrame, cache: Cache) -> tuple[list[str], list[str], list[Skip]]:
    """Ids and paths the cache holds, and a Skip for each image it could not make."""
    skips = cache.skipped(items["image_id"].tolist())
    bad = {s.item for s in skips}
    kept = items[~items["image_id"].isin(bad)]
    return kept["image_id"].tolist(), kept["image_path"].tolist(), skips


def cache_epoch(cache: Cache, ids: Sequence[str], batch: int, order: torch.Tensor) -> int:
    images = cache.images(ids)
    cpu = torch.device("cpu")
    seen = 0
    for start in range(0, len(order), batch):
        x = to_device(images[order[start:start + batch]], cpu)
        seen += len(x)
    return seen


def decoding_epoch(paths: Sequence[str], preprocessor: Preprocessor, batch: int, order: torch.Tensor) -> int:
    seen = 0
    for start in range(0, len(order), batch):
        batch_images = [torch.from_numpy(preprocessor(read_grayscale(paths[i])).image)
                        for i in order[start:start + batch].tolist()]
        x = torch.stack(batch_images).unsqueeze(1)
        seen += len(x)
    return seen


def fastest_epochs(kinds: dict[str, Callable[[], int]], epochs: int) -> dict[str, float]:
    """Seconds of the fastest epoch of each kind; kinds alternate so load changes hit all alike."""
    best = {name: float("inf") for name in kinds}
    for _ in range(epochs):
        for name, epoch in kinds.items():
            start = time.perf_counter()
            epoch()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def films_within(budget_s: float, paths: Sequence[str], pipelines: Sequence[Preprocessor], epochs: int,
                 workers: int) -> int:
    """How many of ``paths`` fit ``budget_s``: one probe film per pipeline, then the cache build and
    (1 warm-up + ``epochs``) decoding passes of every pipeline, with half as much again to spare."""
    for path in paths:  # the first readable film is the probe
        try:
            costs = []
            for pipeline in pipelines:
                started = time.perf_counter()
                pipeline(read_grayscale(path))
                costs.append(time.perf_counter() - started)
            break
        except ImageReadError:
            continue
    else:
        return len(paths)  # nothing readable: time_epochs says so
    per_film = (1 + epochs) * sum(costs) + costs[0] / workers
    return max(1, min(len(paths), int(budget_s / (1.5 * per_film))))


def time_epochs(items: pd.DataFrame, cache_dir: Path, *, size: int, batch: int, epochs: int, workers: int,
                crop: bool = True, budget_s: float | None = None) -> EpochTimes:
    """Build the cache of ``items`` in ``cache_dir``, then time cache and decoding epochs over it.

    Call it with OpenCV and torch limited to one thread (as :func:`main` does): the figures are
    per core. With ``budget_s`` only the first films that should fit that many seconds are used
    (see :func:`films_within`). Raises :class:`NothingToTime` when no image could be preprocessed.
    """
    called = time.perf_counter()
    registry = get_registry()
    recipe = registry.create("benchmark", BENCHMARK).recipe.replace(crop=crop)
    preprocessor = registry.create("preprocessor", recipe.active_preprocessor, size=size,
                                   **dict(recipe.preprocessor_options))
    resize_only = registry.create("preprocessor", "resize", size=size)
    offered = len(items)
    if budget_s is not None:
        pipelines = [preprocessor] if recipe.active_preprocessor == "resize" else [preprocessor, resize_only]
        keep = films_within(budget_s - (time.perf_counter() - called), items["image_path"].tolist(), pipelines,
                            epochs, workers)
        items = items.iloc[:keep]
    started = time.perf_counter()
    cache = build_cache(items, preprocessor, size, cache_dir, workers=workers)
    build_s = time.perf_counter() - started
    ids, paths, skips = readable(items, cache)
    if not ids:
        raise NothingToTime("no image could be preprocessed; nothing to time")
    sample = cv2.imread(paths[0], cv2.IMREAD_UNCHANGED)
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))
    kinds = {
        "cache": lambda: cache_epoch(cache, ids, batch, order),
        f"decode + {recipe.active_preprocessor}": lambda: decoding_epoch(paths, preprocessor, batch, order),
    }
    if recipe.active_preprocessor != "resize":
        kinds["decode + resize"] = lambda: decoding_epoch(paths, resize_only, batch, order)
    for epoch in kinds.values():  # warm-up: files into the page cache, allocator, imports
        epoch()
    return EpochTimes(len(ids), f"{sample.shape[1]} x {sample.shape[0]} {sample.dtype}", recipe.active_preprocessor,
                      size, batch, workers, build_s, fastest_epochs(kinds, epochs), skips, offered)


def print_skips(stage: str, skips: list[Skip]) -> None:
    if not skips:
        return
    counts = Counter(s.reason for s in skips)
    print(f"skipped at {stage}: {len(skips)} ({', '.join(f'{r} {n}' for r, n in counts.most_common())})")
    for s in skips[:3]:
        print(f"  {s.item}: {s.reason}{' - ' + s.detail if s.detail else ''}")
    if len(skips) > 3:
        print(f"  ... and {len(skips) - 3} more")


def main() -> None:
    parser = argparse.ArgumentParser(description="Epoch from the preprocessing cache vs epoch decoding PNGs.")
    parser.add_argument("--images", type=Path, help="a folder of PNG/JPEG films [default: write a demo corpus]")
    parser.add_argument("--limit", type=int, default=None, help="with --images: at most this many files")
    parser.add_argument("--patients", type=int, default=120, help="demo corpus patients (1-4 images each)")
    parser.add_argument("--film-size", type=int, default=256, help="demo corpus film size in pixels")
    parser.add_argument("--size", type=int, default=64, help="training image size (the demo recipe's is 64; "
                                                             "the paper's 224)")
    parser.add_argument("--no-crop", action="store_true", help="cache whole resized images, not lung crops")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per kind; the fastest counts")
    parser.add_argument("--workers", type=int, default=2, help="processes building the cache")
    parser.add_argument("--work-dir", type=Path, help="keep the corpus and cache here [default: a temp dir]")
    args = parser.parse_args()
    for value, option in ((args.batch, "--batch"), (args.epochs, "--epochs"), (args.size, "--size"),
                          (args.workers, "--workers")):
        if value < 1:
            parser.error(f"{option} must be >= 1, got {value}")
    cv2.setNumThreads(1)
    torch.set_num_threads(1)

    print(f"machine: {describe_machine()}; one process, one thread")

    with tempfile.TemporaryDirectory(prefix="mlbench-cache-epoch-") as tmp:
        work = args.work_dir or Path(tmp)
        if args.images is not None:
            if not args.images.is_dir():
                parser.error(f"--images {args.images}: no such folder")
            items, data_skips = folder_items(args.images, args.limit), []
            what = f"{args.images}"
        else:
            started = time.perf_counter()
            items, data_skips = demo_items(work / "demo", args.patients, args.film_size)
            what = (f"synthetic demo corpus, {args.patients} patients, {args.film_size} px 16-bit films "
                    f"(written in {time.perf_counter() - started:.1f} s)")
        print(f"images: {what}")
        print_skips("data", data_skips)
        try:
            times = time_epochs(items, work / "cache", size=args.size, batch=args.batch, epochs=args.epochs,
                                workers=args.workers, crop=not args.no_crop)
        except NothingToTime as exc:
            raise SystemExit(str(exc)) from None
    print_skips("preprocess", times.skips)
    print(f"{times.images} images ({times.first_film} first), {times.preprocessor} to {times.size} px, "
          f"batch {times.batch}; cache built once in {times.build_s:.1f} s with {times.workers} worker(s)")

    header = f"{'epoch':28s} {'seconds':>9s} {'images/s':>10s} {'vs cache':>9s}"
    print(header)
    print("-" * len(header))
    for name, seconds in times.seconds.items():
        ratio = "" if name == "cache" else f"{seconds / times.cache_s:8.0f}x"
        print(f"{name:28s} {seconds:9.3f} {times.images / seconds:10.0f} {ratio:>9s}")
    verdict = "meets" if times.speedup >= 20 else "misses"
    print(f"cache epoch is {times.speedup:.0f}x faster than the cheapest decoding epoch "
          f"({verdict} issue 4's >= 20x)")


if __name__ == "__main__":
    main()
