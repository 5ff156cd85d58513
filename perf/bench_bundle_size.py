"""The size of a full padchest-specific submission bundle without weights, from a synthetic run directory.

    python perf/bench_bundle_size.py                          # the benchmark's own split: 8,633 val, 17,015 test
    python perf/bench_bundle_size.py --val-images 8532 --test-images 17082   # the paper's Table 3

A run directory of the paper's recipe (five backbones, three ensembles, the benchmark's labels
from the installed plugin) is laid out with the real layout and schemas: predictions of every
entry on every validation and test image (backbones: float32 sigmoids of random logits, as a
model's output is; ctp, ptc-lw and ptc-mode: the registered ensembles over them), leaderboard
rows of every entry x label x metric, 60-epoch histories, tiny stand-in checkpoints (a bundle
without weights holds only their hashes), and the label file's skips at the real count (160,861
rows, 85,455 kept). Image ids look like PadChest's (45 digits, a suffix, .png). Then
:func:`mlbench.judging.bundle.write_bundle` writes the bundle and
:func:`mlbench.judging.bundle.open_bundle` reads it back; the script prints each member's size in
the archive, the total in MB, and the seconds of both.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from mlbench.contracts.registry import get_registry
from mlbench.data import Skip
from mlbench.judging.bundle import open_bundle, write_bundle
from mlbench.results import leaderboard, predictions
from mlbench.results.rundir import RunDir, now
from mlbench.training import checkpoint
from mlbench.training.runner import plugin_versions, plugins_used

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402

BENCHMARK = "padchest-specific"
# The benchmark's own split of the public CSV (docs/performance.md, "Projection assumptions").
VAL_IMAGES, TEST_IMAGES = 8633, 17015
CSV_ROWS, KEPT_IMAGES = 160_861, 85_455
EPOCHS = 60
METRICS = ("auc", "auprc", "f1", "f1_pos", "hamming")


def image_ids(rng: np.random.Generator, n: int) -> list[str]:
    digits = rng.integers(0, 10, size=(n, 45)).astype(np.uint8) + ord("0")
    suffix = rng.integers(0, 1000, size=(n, 3)) % [100, 1000, 1000]
    return [f"{d.tobytes().decode()}_{a:02d}-{b:03d}-{c:03d}.png" for d, (a, b, c) in zip(digits, suffix)]


def synthetic_run(run_dir: Path, n_val: int, n_test: int, seed: int) -> RunDir:
    """A finished run directory of the paper's recipe whose files hold random but well-formed content."""
    rng = np.random.default_rng(seed)
    registry = get_registry()
    bench = registry.create("benchmark", BENCHMARK)
    recipe, labels = bench.recipe, list(bench.labels)
    rundir = RunDir(run_dir)
    identity = {"benchmark": bench.name, "benchmark_version": bench.version, "variant": recipe.variant,
                "recipe": recipe.to_dict(), "dataset_kind": "padchest", "csv_sha256": "0" * 64}
    rundir.start(identity, {**identity, "run_id": f"{bench.name}-synthetic", "created_at": now(), "seed": recipe.seed,
                            "backbones": list(recipe.backbones), "loss": recipe.loss,
                            "ensembles": list(recipe.ensembles),
                            "versions": plugin_versions(registry, plugins_used(bench, recipe)),
                            "device": "cuda: NVIDIA H200", "split_hash": "0" * 64})
    skipped = CSV_ROWS - KEPT_IMAGES
    reasons = ["not_pa"] * (skipped * 9 // 10) + ["no_benchmark_label"] * (skipped - skipped * 9 // 10)
    rundir.record_skips("data", [Skip(i, r, "Projection L" if r == "not_pa" else "")
                                 for i, r in zip(image_ids(rng, skipped), reasons)])

    ids = {"val": image_ids(rng, n_val), "test": image_ids(rng, n_test)}
    probs = {s: (1 / (1 + np.exp(-rng.normal(-2, 2, size=(len(recipe.backbones), len(ids[s]), len(labels))))))
             .astype(np.float32) for s in ids}
    tables = []
    for i, name in enumerate(recipe.backbones):
        for split in ids:
            tables.append(predictions.to_table(ids[split], [split] * len(ids[split]), name, labels, probs[split][i]))
    for name in recipe.ensembles:
        ensemble = registry.create("ensemble", name, threshold=recipe.threshold)
        for split in ids:
            scores = ensemble.combine(probs[split].astype(np.float64))[0]
            tables.append(predictions.to_table(ids[split], [split] * len(ids[split]), name, labels, scores))
    predictions.write(rundir.predictions_file, tables)

    base = rundir.provenance()
    rows = [{**base, "entry": entry, "entry_kind": "backbone" if entry in recipe.backbones else "ensemble",
             "label": label, "metric": metric, "value": float(rng.random()), "ci_low": float(rng.random()),
             "ci_high": float(rng.random()), "n_positive": int(rng.integers(0, n_test)), "wall_time_s": None}
            for entry in [*recipe.backbones, *recipe.ensembles] for label in [*labels, leaderboard.GLOBAL_LABEL]
            for metric in METRICS]
    rundir.write_leaderboard(leaderboard.to_table(rows))
    for name in recipe.backbones:
        files = rundir.backbone(name)
        checkpoint.save(files.best, {"model": {}, "epoch": 0, "val_loss": 0.0})
        epochs = [{"epoch": e, "train_loss": float(rng.random()), "val_loss": float(rng.random()),
                   "seconds": float(rng.random() * 300)} for e in range(EPOCHS)]
        files.write_history({"best_epoch": 35, "best_val_loss": 0.1, "epochs": EPOCHS, "history": epochs})
    rundir.update_manifest(lambda m: m.update(finished_at=now()))
    return rundir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val-images", type=int, default=VAL_IMAGES)
    parser.add_argument("--test-images", type=int, default=TEST_IMAGES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(describe_machine())

    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as scratch:
        started = time.perf_counter()
        rundir = synthetic_run(Path(scratch) / "run", args.val_images, args.test_images, args.seed)
        made = time.perf_counter() - started
        stored = predictions.read(rundir.predictions_file)
        rows = len(stored)
        print(f"synthetic run: {args.val_images} val + {args.test_images} test images, "
              f"{len(rundir.recipe().backbones)} backbones + {len(rundir.recipe().ensembles)} ensembles, "
              f"{stored['label'].nunique()} labels, {rows:,} prediction rows ({made:.1f} s to lay out)")
        del stored
        out = Path(scratch) / "bundle.zip"
        started = time.perf_counter()
        write_bundle(rundir.path, out)
        written = time.perf_counter() - started
        started = time.perf_counter()
        bundle = open_bundle(out)
        frame = bundle.predictions()
        read = time.perf_counter() - started
        assert len(frame) == rows
        with zipfile.ZipFile(out) as archive:
            for info in sorted(archive.infolist(), key=lambda i: -i.compress_size):
                print(f"  {info.filename:<22} {info.compress_size / 1e6:9.3f} MB in the archive "
                      f"({info.file_size / 1e6:.3f} MB uncompressed)")
        print(f"bundle without weights: {out.stat().st_size / 1e6:.1f} MB ({out.stat().st_size:,} bytes); "
              f"written in {written:.1f} s, opened and its predictions read in {read:.1f} s")


if __name__ == "__main__":
    main()
