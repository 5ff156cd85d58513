"""Paired vs unpaired patient bootstrap of run B - run A: time, and the width of the macro AUC interval.

    python perf/bench_paired.py                                 # 35 labels x 2,000 images, 1,000 replicates
    python perf/bench_paired.py --images 17091 --patients 12400

Two runs are simulated as two seeds of one recipe: the same test images, labels at PadChest's
35 padchest-specific prevalences, scores that share a per-image difficulty term (what makes two
models' errors correlated) plus independent noise. It prints the seconds of
:func:`mlbench.results.paired.paired_differences` and :func:`mlbench.results.paired.unpaired_differences`
(every label, group and macro row of AUC, AUPRC and F1) and, per metric, the macro interval's
width paired / unpaired.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from mlbench.results.paired import paired_differences, unpaired_differences

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402
from bench_bootstrap import PA_COUNTS, PA_IMAGES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--patients", type=int, default=1450)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(describe_machine())

    rng = np.random.default_rng(args.seed)
    prevalence = np.asarray(PA_COUNTS) / PA_IMAGES
    labels = [f"label{j}" for j in range(len(prevalence))]
    y = (rng.random((args.images, len(labels))) < prevalence).astype(np.int64)
    patients = np.char.add("p", rng.integers(0, args.patients, args.images).astype(str))
    difficulty = rng.normal(size=y.shape)

    def run() -> tuple[np.ndarray, np.ndarray]:
        scores = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + difficulty + 0.5 * rng.normal(size=y.shape))))
        return scores, (scores >= 0.5).astype(np.int64)

    (sa, da), (sb, db) = run(), run()
    train_counts = np.asarray(PA_COUNTS) * 7 // 10
    widths = {}
    for name, compare in (("paired", paired_differences), ("unpaired", unpaired_differences)):
        started = time.perf_counter()
        table = compare(y, sa, sb, da, db, patients, labels, train_counts, n_boot=args.n_boot).table
        seconds = time.perf_counter() - started
        macro = table[table["scope"] == "macro"].set_index("metric")
        widths[name] = macro["ci_high"] - macro["ci_low"]
        print(f"{name:<9} {len(labels)} labels x {args.images} images, {args.n_boot} replicates: {seconds:.2f} s "
              f"({len(table)} rows)")
    ratio = widths["paired"] / widths["unpaired"]
    print("macro interval width, paired / unpaired: " + ", ".join(f"{m} {r:.2f}" for m, r in ratio.items()))


if __name__ == "__main__":
    main()
