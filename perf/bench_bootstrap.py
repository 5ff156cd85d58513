"""Patient-level bootstrap at PadChest's size: time of :func:`mlbench.results.stats.metric_intervals`.

    python perf/bench_bootstrap.py                          # the real padchest-specific test split's shape
    python perf/bench_bootstrap.py --entries 2 --n-boot 200   # a quick look

The arrays are synthetic but shaped like the real test split of padchest-specific (about 20%
of 85,455 PA images: 17,091 images of about 12,400 patients, 35 labels at the real PA
prevalences): six entries with continuous scores (five backbones and CTP) and two with binary
scores (the PTC ensembles), 1,000 replicates each, as the runner's metrics stage would compute
them. It prints the seconds per entry and in all, and, for scale, the time scikit-learn's
``roc_auc_score`` with ``sample_weight`` takes per (replicate, label) call at this size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from mlbench.results.stats import metric_intervals, patient_bootstrap

# PA image counts of the 35 padchest-specific labels in the public CSV (Table 8's order).
PA_COUNTS = (34369, 7812, 5946, 5271, 4658, 4208, 3672, 3299, 2897, 2739, 2598, 2369, 2210, 2126, 2078, 1928,
             1798, 1756, 1690, 1648, 1594, 1499, 1423, 1399, 1356, 1337, 1292, 1248, 1212, 1174, 1141, 1103,
             1089, 1067, 1046)
PA_IMAGES = 85455
TEST_IMAGES = 17091
TEST_PATIENTS = 12400

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402


def machine() -> str:
    """The machine the figures were measured on (perf/_machine.py)."""
    return describe_machine()


def synthetic_split(rng: np.random.Generator, n_images: int, n_patients: int):
    prevalence = np.asarray(PA_COUNTS) / PA_IMAGES
    y = (rng.random((n_images, len(PA_COUNTS))) < prevalence).astype(np.uint8)
    # every patient has an image; the rest go to random patients (1-4 images each, as PadChest)
    patients = np.concatenate([np.arange(n_patients), rng.integers(0, n_patients, n_images - n_patients)])
    rng.shuffle(patients)
    return y, np.char.add("p", patients.astype(str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=TEST_IMAGES)
    parser.add_argument("--patients", type=int, default=TEST_PATIENTS)
    parser.add_argument("--entries", type=int, default=8,
                        help="entries scored (the last two get binary scores, as the PTC ensembles)")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    y, patient_ids = synthetic_split(rng, args.images, args.patients)
    labels = [f"label{j}" for j in range(y.shape[1])]
    train_counts = [int(c * 0.7) for c in PA_COUNTS]
    print(f"machine: {machine()}")
    print(f"shape: {args.images} images, {args.patients} patients, {len(labels)} labels, {args.entries} entries, "
          f"{args.n_boot} replicates")

    start = time.perf_counter()
    patient_bootstrap(patient_ids, args.n_boot, 0)
    print(f"drawing the replicates: {time.perf_counter() - start:.2f} s (once per entry inside metric_intervals)")

    total = cpu_total = 0.0
    for e in range(args.entries):
        binary = e >= args.entries - 2
        scores = np.clip(0.3 * y + rng.normal(0.35, 0.2, y.shape), 0, 1)
        if binary:
            scores = (scores >= 0.5).astype(np.float64)
        decisions = (scores >= 0.5).astype(np.uint8)
        start, cpu_start = time.perf_counter(), time.process_time()
        metric_intervals(y, scores, decisions, patient_ids, labels, train_counts=train_counts,
                         n_boot=args.n_boot, seed=0)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        total += seconds
        cpu_total += cpu
        print(f"entry {e} ({'binary' if binary else 'continuous'} scores): {seconds:.1f} s wall, {cpu:.1f} s CPU")
    # CPU seconds: on a shared machine the wall time also counts other processes' turns
    print(f"all {args.entries} entries: {total:.1f} s wall, {cpu_total:.1f} s CPU")

    weights = rng.integers(0, 3, args.images).astype(np.float64)
    start = time.perf_counter()
    calls = 5
    for _ in range(calls):
        roc_auc_score(y[:, 5], rng.random(args.images), sample_weight=weights)
    per_call = (time.perf_counter() - start) / calls
    sklearn_total = per_call * args.n_boot * len(labels) * args.entries
    print(f"scikit-learn roc_auc_score with sample_weight: {per_call * 1000:.1f} ms per call; "
          f"AUC alone for the same work would take about {sklearn_total:.0f} s "
          f"({sklearn_total / total:.0f}x the time of every metric and interval here)")


if __name__ == "__main__":
    main()
