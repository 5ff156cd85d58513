"""A full-size grid's statistics: each run's intervals, the paired comparisons and the Holm table.

    python perf/bench_grid_stats.py                      # 8 remedies x 3 seeds, 17,082 images x 35 labels x 8 entries
    python perf/bench_grid_stats.py --images 2000 --remedies 3 --seeds 2 --replicates 200   # a rehearsal

Every cell of the grid is written as the runner writes a run directory (split.parquet,
predictions.parquet, manifest.json) under GRID_DIR/cells/REMEDY/seed-N, with simulated
predictions: labels at the 35 padchest-specific PA prevalences, about 1.3 test images per
patient, five backbones whose scores share a per-image difficulty (what correlates two models'
errors) and a remedy- and seed-specific part, and three ensembles as the runner forms them
(CTP: the backbones' mean; PTC-lw and PTC-mode: 0/1 votes). Then it times what the grid command
does with them:

- intervals: each cell's metrics stage, ``rescoring.score_entries`` (every entry's rows with
  their patient-bootstrap 95% intervals) and the replicates it keeps in the run directory
  (``rescoring.write_replicates``), once per cell (``--interval-cells`` limits how many are
  timed; the rest is projected from their mean, and the other cells' kept replicates are made
  untimed with ``stats.entry_replicates``, the same arrays);
- comparison: ``mlbench.grid.cells.compare_cells``, exactly what ``mlbench grid`` writes as
  comparison.parquet: every run read back, every remedy against the baseline per seed and
  entry (each run entry's replicates those its metrics stage kept), seeds combined, Holm over
  the remedies; ``--recompute`` times it again computing every replicate (the code before the
  kept replicates) and checks that both tables agree to 1e-12;
- Holm: the final ``paired.adjust`` over the whole table, timed again on its own.

At full size the untimed replicates take minutes: ``--grid-dir D --prepare-only`` writes the grid
and them, then ``--grid-dir D --reuse`` times the statistics on it.

It prints the machine first (perf/_machine.py), then wall and CPU seconds per stage and the total.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlbench.data.splits import split_table
from mlbench.foundations.io import write_parquet
from mlbench.grid.cells import GridCell, compare_cells
from mlbench.grid.remedies import Remedy
from mlbench.results import paired, predictions
from mlbench.results.griddir import GridDir
from mlbench.results.metrics import MetricWarning
from mlbench.results.rescoring import decisions, load_stored_run, score_entries, write_replicates
from mlbench.results.rundir import RunDir
from mlbench.results.stats import entry_replicates

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402
from bench_bootstrap import PA_COUNTS, PA_IMAGES  # noqa: E402

BACKBONES = ("densenet201", "efficientnet_b0", "inception_v3", "legacy_xception", "resnet50")
ENSEMBLES = ("ctp", "ptc-lw", "ptc-mode")
REMEDIES = ("uniform", "ml-ros", "class-aware", "class-balanced", "focal", "ldam", "drw", "logit-adjust")
TEST_IMAGES = 17082
IMAGES_PER_PATIENT = 1.3
TRAIN_PER_TEST = 3.5  # padchest-specific: about 60,000 training images beside 17,000 test images


@dataclass(frozen=True)
class CellOut:
    out: Path  # what the comparison reads of a cell's options: its run directory


def simulate_split(rng: np.random.Generator, n_test: int, n_labels: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    prevalence = np.resize(np.asarray(PA_COUNTS, dtype=float) / PA_IMAGES, n_labels)
    n_train = int(n_test * TRAIN_PER_TEST)
    n = n_train + n_test
    y = (rng.random((n, n_labels)) < prevalence).astype(np.uint8)
    splits = np.where(np.arange(n) < n_train, "train", "test")

    def patients(count: int, prefix: str) -> np.ndarray:
        n_patients = max(1, int(round(count / IMAGES_PER_PATIENT)))
        # every patient has an image; the others go to random patients
        ids = np.concatenate([np.arange(min(n_patients, count)), rng.integers(0, n_patients, count - n_patients)])
        rng.shuffle(ids)
        return np.char.add(prefix, ids.astype(str))

    frame = pd.DataFrame({"image_id": [f"img{i:06d}.png" for i in range(n)],
                          "patient_id": np.concatenate([patients(n_train, "t"), patients(n_test, "p")])})
    return frame, y, splits


def simulate_entries(rng: np.random.Generator, y: np.ndarray, difficulty: np.ndarray, skill: float) -> dict:
    """Five backbones' probabilities and the three ensembles over them."""
    sign = 2.0 * y - 1
    probs = {}
    for b, name in enumerate(BACKBONES):
        logits = (skill + 0.1 * b) * sign + difficulty + 0.6 * rng.normal(size=y.shape) - 1.5
        probs[name] = 1 / (1 + np.exp(-logits))
    stacked = np.stack(list(probs.values()))
    votes = (stacked >= 0.5).mean(axis=0)
    probs["ctp"] = stacked.mean(axis=0)
    probs["ptc-lw"] = (votes > 0.5).astype(np.float64)
    probs["ptc-mode"] = (votes >= 0.6).astype(np.float64)
    return probs


def grid_cells(root: Path, args: argparse.Namespace) -> list[GridCell]:
    return [GridCell(Remedy(remedy), seed, CellOut(GridDir(root).cell_dir(remedy, seed)))
            for remedy in REMEDIES[:args.remedies] for seed in range(args.seeds)]


def write_grid(root: Path, args: argparse.Namespace) -> list[GridCell]:
    rng = np.random.default_rng(0)
    frame, y, splits = simulate_split(rng, args.images, args.labels)
    labels = [f"label{j:02d}" for j in range(args.labels)]
    test = np.flatnonzero(splits == "test")
    test_ids = frame["image_id"].to_numpy()[test].tolist()
    difficulty = rng.normal(size=(len(test), args.labels))  # the same hard images for every model
    split = split_table(frame, y, splits, labels)
    cells = []
    for r, remedy in enumerate(REMEDIES[:args.remedies]):
        for seed in range(args.seeds):
            run = GridDir(root).cell_dir(remedy, seed)
            write_parquet(run / "split.parquet", split)
            probs = simulate_entries(rng, y[test], difficulty, 1.2 + 0.05 * r)
            predictions.write(run / "predictions.parquet",
                              [predictions.to_table(test_ids, ["test"] * len(test), entry, labels, p)
                               for entry, p in probs.items()])
            (run / "manifest.json").write_text(json.dumps({
                "backbones": list(BACKBONES), "ensembles": list(ENSEMBLES), "recipe": {"threshold": 0.5},
                "bootstrap": {"n_boot": args.replicates, "seed": 0, "resampled": "patients"}}))
            cells.append(GridCell(Remedy(remedy), seed, CellOut(run)))
    return cells


def timed(work):
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def cell_intervals(cell: GridCell, n_boot: int) -> int:
    """One cell's metrics stage on its stored arrays: the rows ``mlbench run`` writes to its leaderboard, and
    the replicates it keeps in the run directory."""
    stored = load_stored_run(cell.run_dir)
    entries = [(e, kind, stored.scores[e], decisions(stored, e), None) for e, kind in stored.entries.items()]
    kept = {}
    rows, _ = score_entries(entries, stored.y, stored.patient_ids, stored.labels, train_counts=stored.train_counts,
                            n_boot=n_boot, seed=0, replicates=kept)
    write_replicates(cell.run_dir, kept, n_boot=n_boot, seed=0)
    return len(rows)


def keep_replicates(cell: GridCell, n_boot: int) -> None:
    """The replicates a cell's metrics stage keeps, without its rows (for the cells whose stage is not timed)."""
    stored = load_stored_run(cell.run_dir)
    kept = {e: entry_replicates(stored.y, stored.scores[e], decisions(stored, e), stored.patient_ids, n_boot=n_boot,
                                seed=0) for e in stored.entries}
    write_replicates(cell.run_dir, kept, n_boot=n_boot, seed=0)


def same_tables(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """The largest difference between two comparison tables' numbers (raises if their text columns differ)."""
    text = [c for c in a.columns if not pd.api.types.is_numeric_dtype(a[c])]
    if not a[text].equals(b[text]):
        raise SystemExit("the comparison from kept replicates differs from the recomputed one in its text columns")
    numbers = [c for c in a.columns if c not in text]
    x, y = a[numbers].to_numpy(dtype=float), b[numbers].to_numpy(dtype=float)
    if not (np.isnan(x) == np.isnan(y)).all():
        raise SystemExit("the comparison from kept replicates differs from the recomputed one in its NaNs")
    return float(np.nanmax(np.abs(x - y))) if x.size else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=TEST_IMAGES, help="test images")
    parser.add_argument("--labels", type=int, default=len(PA_COUNTS))
    parser.add_argument("--remedies", type=int, default=len(REMEDIES), help=f"at most {len(REMEDIES)}")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--interval-cells", type=int, default=None,
                        help="time the intervals of this many cells only and project the rest (default: all)")
    parser.add_argument("--no-intervals", action="store_true", help="time the comparison table only")
    parser.add_argument("--grid-dir", type=Path, default=None, help="where the cells go (default: a temporary folder)")
    parser.add_argument("--prepare-only", action="store_true",
                        help="write the grid and every cell's kept replicates into --grid-dir, time nothing")
    parser.add_argument("--reuse", action="store_true", help="use the grid --prepare-only left in --grid-dir")
    parser.add_argument("--recompute", action="store_true",
                        help="also time the comparison computing every replicate, as before they were kept")
    args = parser.parse_args()
    if not 2 <= args.remedies <= len(REMEDIES):
        parser.error(f"--remedies must be 2 to {len(REMEDIES)}")
    if (args.prepare_only or args.reuse) and args.grid_dir is None:
        parser.error("--prepare-only and --reuse need --grid-dir")
    print(describe_machine())
    print(f"grid: {args.remedies} remedies x {args.seeds} seeds, {args.images} test images "
          f"(~{IMAGES_PER_PATIENT} per patient) x {args.labels} labels x {len(BACKBONES) + len(ENSEMBLES)} entries, "
          f"{args.replicates} replicates")
    root = args.grid_dir or Path(tempfile.mkdtemp(prefix="mlbench-grid-stats-"))
    warnings.simplefilter("ignore", MetricWarning)
    try:
        if args.reuse:
            cells = grid_cells(root, args)
            lacking = [c.label for c in cells if not RunDir(c.run_dir).predictions_file.is_file()]
            if lacking:
                raise SystemExit(f"--reuse: {root} lacks cells {', '.join(lacking)}; run --prepare-only first")
            print(f"reusing the {len(cells)} run directories in {root}")
        else:
            cells, seconds, _ = timed(lambda: write_grid(root, args))
            print(f"writing {len(cells)} run directories (not a statistic): {seconds:.1f} s")
        total_wall = total_cpu = 0.0
        timed_cells = [] if args.no_intervals or args.prepare_only else \
            cells[:args.interval_cells] if args.interval_cells else cells
        if timed_cells:
            wall = cpu = 0.0
            for cell in timed_cells:
                _, w, c = timed(lambda: cell_intervals(cell, args.replicates))
                wall, cpu = wall + w, cpu + c
            scale = len(cells) / len(timed_cells)
            note = "" if scale == 1 else f" (projected from {len(timed_cells)} of them)"
            print(f"intervals, {len(cells)} cells{note}: {wall * scale:.1f} s wall, {cpu * scale:.1f} s CPU "
                  f"({wall / len(timed_cells):.1f} s wall per cell)")
            total_wall, total_cpu = wall * scale, cpu * scale
        rest = [c for c in cells if c not in timed_cells
                and not (args.reuse and RunDir(c.run_dir).replicates_file.is_file())]
        if rest and not args.no_intervals:
            _, wall, cpu = timed(lambda: [keep_replicates(cell, args.replicates) for cell in rest])
            print(f"  the kept replicates of the other {len(rest)} cells' metrics stages (untimed part of the intervals "
                  f"above): {wall:.1f} s wall, {cpu:.1f} s CPU; not counted in the total")
        if args.prepare_only:
            print(f"prepared {root}; time it with --grid-dir {root} --reuse")
            return
        _, wall, cpu = timed(lambda: [load_stored_run(cell.run_dir) for cell in cells])
        print(f"  reading the {len(cells)} cells back (load_stored_run, as compare_cells does first): {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU; not counted in the total")
        table, wall, cpu = timed(lambda: compare_cells(cells, REMEDIES[0], n_boot=args.replicates))
        print(f"comparison table (compare_cells: read, {(args.remedies - 1) * args.seeds} paired comparisons x "
              f"{len(BACKBONES) + len(ENSEMBLES)} entries, seeds combined, Holm): {wall:.1f} s wall, {cpu:.1f} s CPU, "
              f"{len(table)} rows")
        _, holm_wall, holm_cpu = timed(lambda: paired.adjust(table, family=("entry",) + paired.FAMILY))
        print(f"  of which Holm over the remedies (paired.adjust, timed again alone): {holm_wall:.2f} s wall, "
              f"{holm_cpu:.2f} s CPU")
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        if args.recompute:
            again, wall, cpu = timed(lambda: compare_cells(cells, REMEDIES[0], n_boot=args.replicates, use_stored=False))
            print(f"  the same table computing every replicate (use_stored=False, as before): {wall:.1f} s wall, "
                  f"{cpu:.1f} s CPU; largest difference from the table above {same_tables(table, again):.1e}")
        verdicts = table["verdict"].value_counts().to_dict()
        print(f"verdicts: {verdicts}")
        print(f"total: {total_wall:.1f} s wall, {total_cpu:.1f} s CPU; load average now "
              f"{os.getloadavg()[0]:.1f}")
    finally:
        if args.grid_dir is None:  # a --grid-dir is kept
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
