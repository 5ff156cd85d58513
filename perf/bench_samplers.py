"""The training split as each sampler shows it over one epoch: MeanIR, SCUMBLE, per-label draws.

    python perf/bench_samplers.py                             # padchest-specific, the real label CSV
    python perf/bench_samplers.py --csv FILE --percentage 25

The split is computed by mlbench's library from the real PadChest label CSV that ships in the
installed torchxrayvision package (as benchmarks/padchest/tests/test_realcsv.py finds it); no
image is read. For every built-in sampler it prints the epoch's length, MeanIR, MaxIR and SCUMBLE
of the label matrix of the images the epoch draws (repeats counted), and the time to build the
sampler and draw the epoch. For class-aware sampling it also prints how evenly the labels were
picked: the largest relative deviation of a label's pick count from n_draws / n_labels.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

from mlbench.data import DataSource
from mlbench.data.imbalance import imbalance_report
from mlbench.data.splits import split_benchmark
from mlbench.contracts.registry import get_registry

CSV_NAME = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402


def shipped_csv() -> Path:
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("torchxrayvision is not installed: pass --csv FILE (the PadChest label CSV)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / CSV_NAME
    if not path.is_file():
        raise SystemExit(f"{path} is missing: install torchxrayvision==1.5.7 or pass --csv FILE")
    return path


def training_labels(benchmark_name: str, csv: Path) -> tuple[np.ndarray, tuple[str, ...]]:
    registry = get_registry()
    benchmark = registry.create("benchmark", benchmark_name)
    dataset = registry.create("dataset", benchmark.dataset)
    split = split_benchmark(dataset.read(DataSource(csv, csv.parent)), benchmark)
    return split.Y[split.splits == "train"], split.labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="padchest-specific")
    parser.add_argument("--csv", type=Path, default=None, help="the label CSV (default: torchxrayvision's copy)")
    parser.add_argument("--percentage", type=float, default=10.0, help="ML-ROS / ML-RUS percentage")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(describe_machine())
    started = time.perf_counter()
    Y, labels = training_labels(args.benchmark, args.csv or shipped_csv())
    print(f"{args.benchmark}: training split {Y.shape[0]} images x {Y.shape[1]} labels "
          f"(split computed in {time.perf_counter() - started:.1f} s)")

    registry = get_registry()
    options = {"ml-ros": {"percentage": args.percentage}, "ml-rus": {"percentage": args.percentage}}
    print(f"{'sampler':<14}{'epoch':>8}{'MeanIR':>9}{'MaxIR':>8}{'SCUMBLE':>9}{'min count':>11}{'seconds':>9}")
    for name in ("uniform", "ml-ros", "ml-rus", "class-aware"):
        t0 = time.perf_counter()
        sampler = registry.create("sampler", name, labels=Y, seed=args.seed, **options.get(name, {}))
        indices = sampler.epoch(0)
        seconds = time.perf_counter() - t0
        seen = Y[indices]
        report = imbalance_report(seen, labels)
        print(f"{name:<14}{len(indices):>8}{report.mean_ir:>9.2f}{report.max_ir:>8.2f}{report.scumble:>9.4f}"
              f"{int(seen.sum(axis=0).min()):>11}{seconds:>9.2f}")
        if name == "class-aware":
            picked, _ = sampler.draws(0)
            picks = np.bincount(picked, minlength=Y.shape[1])[sampler.labels_used]
            expected = len(picked) / len(picks)
            deviation = np.abs(picks / expected - 1).max()
            occurrences = seen.sum(axis=0)
            print(f"  class-aware: each label picked {picks.min()}-{picks.max()} times (expected {expected:.1f}); "
                  f"max relative deviation {100 * deviation:.2f}%")
            print(f"  class-aware: positives seen per label (picked or co-occurring) {occurrences.min()}-"
                  f"{occurrences.max()}; max relative deviation from their mean "
                  f"{100 * np.abs(occurrences / occurrences.mean() - 1).max():.1f}%")


if __name__ == "__main__":
    main()
