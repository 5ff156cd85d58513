"""Crop overhead: decode only vs decode + lung crop + resize, on the same images.

    python perf/bench_crop.py                             # the 256 px NIH fixtures in tests/data/nih
    python perf/bench_crop.py --images DIR                # any folder of PNG/JPEG chest films
    python perf/bench_crop.py --detector-size 2800        # also PadChest-sized 16-bit films made
                                                          # from the fixtures (see below)

Decode is :func:`mlbench.preprocessing.images.read_grayscale` (file read, PNG/JPEG decode, float
conversion, MONOCHROME1 check): what the preprocessing cache pays per image anyway. The crop is
:class:`mlbench_padchest.lungcrop.LungCrop` at 224 px. Both run on one thread (OpenCV and numpy),
as one worker of a parallel cache build; each image is timed ``--repeat`` times and the fastest
run kept, which filters out other processes on a shared machine. The issue's target: crop
overhead <= 50% of decode time on full-size images.

``--detector-size N`` writes each fixture upscaled to N x N as a 16-bit PNG with 4 bits of noise
below the signal (real detector PNGs do not compress like smooth upscaled ones) into a temporary
folder, so the ratio can be measured at PadChest's size without PadChest on the machine.
"""

from __future__ import annotations

import argparse
import sys
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mlbench.foundations.io import write_bytes
from mlbench.preprocessing.images import read_grayscale
from mlbench_padchest.lungcrop import LungCrop

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "nih"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402


def machine() -> str:
    """The machine the figures were measured on (perf/_machine.py)."""
    return describe_machine()


def fastest(action, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def detector_sized_copies(sources: list[Path], size: int, folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for path in sources:
        film = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        big = cv2.resize(film, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.uint16) * 16
        big += rng.integers(0, 16, big.shape, dtype=np.uint16)
        ok, encoded = cv2.imencode(".png", big)
        target = folder / f"{path.stem}_{size}.png"
        write_bytes(target, encoded.tobytes())
        out.append(target)
    return out


def measure(paths: list[Path], crop: LungCrop, repeat: int) -> dict[str, float]:
    decode, total = [], []
    for path in paths:
        decode.append(fastest(lambda: read_grayscale(path), repeat))
        total.append(fastest(lambda: crop(read_grayscale(path)), repeat))
    decode_ms, total_ms = 1000 * statistics.median(decode), 1000 * statistics.median(total)
    return {"images": len(paths), "decode_ms": decode_ms, "decode_crop_ms": total_ms,
            "overhead": (sum(total) - sum(decode)) / sum(decode)}


def report(label: str, result: dict[str, float]) -> None:
    print(f"{label}: {result['images']} images, median decode {result['decode_ms']:.1f} ms, "
          f"decode + crop + resize {result['decode_crop_ms']:.1f} ms; "
          f"crop overhead = {100 * result['overhead']:.0f}% of decode time")


def main() -> None:
    parser = argparse.ArgumentParser(description="Crop overhead relative to decoding.")
    parser.add_argument("--images", type=Path, default=FIXTURES, help="folder of PNG/JPEG films")
    parser.add_argument("--limit", type=int, default=60, help="at most this many images")
    parser.add_argument("--repeat", type=int, default=3, help="runs per image; the fastest counts")
    parser.add_argument("--detector-size", type=int, default=0,
                        help="also time N x N 16-bit copies of the first 10 images (e.g. 2800)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[: args.limit]
    if not paths:
        raise SystemExit(f"no PNG/JPEG files in {args.images}")
    crop = LungCrop(size=224)
    print(f"machine: {machine()}; one thread")
    sample = cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED)
    report(f"{args.images} ({sample.shape[1]} x {sample.shape[0]}, {sample.dtype})", measure(paths, crop, args.repeat))
    if args.detector_size:
        with tempfile.TemporaryDirectory() as tmp:
            big = detector_sized_copies(paths[:10], args.detector_size, Path(tmp))
            mb = statistics.mean(p.stat().st_size for p in big) / 1e6
            report(f"detector-sized copies ({args.detector_size} x {args.detector_size}, uint16, {mb:.1f} MB each)",
                   measure(big, crop, args.repeat))


if __name__ == "__main__":
    main()
