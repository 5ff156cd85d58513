"""Augmentation throughput: images per second of :class:`mlbench.preprocessing.augment.Augmenter`.

    python perf/bench_augment.py                       # CPU (all torch threads), CUDA when present
    python perf/bench_augment.py --threads 2 --batch 32 --seconds 3

Table 2's transform on (batch, 1, S, S) float32 batches at S = 224 (the paper) and S = 64 (the
CPU demo), timed for about ``--seconds`` per setting after a warm-up; CUDA timings synchronise
the device. The figure to compare with is the training step time per batch: augmentation should
be a small fraction of it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from mlbench.preprocessing.augment import Augmenter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402


def machine() -> str:
    """The machine the figures were measured on (perf/_machine.py)."""
    return describe_machine()


def throughput(device: str, size: int, batch_size: int, seconds: float, channels: int = 1) -> float:
    """Images per second, steady state."""
    augmenter = Augmenter(0)
    batch = torch.rand(batch_size, channels, size, size, device=device)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):  # warm-up: allocator, kernels, thread pool
        augmenter(batch)
    sync()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        augmenter(batch)
        done += batch_size
    sync()
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description="Augmentation throughput (images/s).")
    parser.add_argument("--batch", type=int, default=32, help="batch size (the paper's is 32)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing window per setting")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 64])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; torch CPU threads {torch.get_num_threads()}; batch {args.batch}, 1 channel")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for size in args.sizes:
            rate = throughput(device, size, args.batch, args.seconds)
            print(f"{device:4s} {size:4d} px: {rate:10.0f} images/s  ({1000 * args.batch / rate:7.2f} ms per batch)")
    if not torch.cuda.is_available():
        print("cuda: not available on this machine (no figure)")


if __name__ == "__main__":
    main()
