"""What the built-in experiment trackers add to a run: opening them, each epoch, the final metrics.

    python perf/bench_trackers.py                          # 5 backbones x 60 epochs, 8 entries x 7 metrics
    python perf/bench_trackers.py --backbones 1 --epochs 5 # a rehearsal

For each built-in tracker whose package is installed, through the same ``Trackers`` session the
runner holds (what each tracker received is written to a real run directory's manifest after
every call, as in a run):

- open: the first time (a new store: for MLflow, its SQLite schema migrations) and again (a resume);
- epochs: every epoch of every backbone, each followed by the manifest update;
- metrics and close: every entry's test metrics, then close.

It prints the machine first (perf/_machine.py), then wall seconds per step and per epoch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402

from mlbench.contracts.registry import get_registry  # noqa: E402
from mlbench.results.rundir import RunDir  # noqa: E402
from mlbench.training import trackers as tracking  # noqa: E402

METRICS = ("auc", "auprc", "f1", "f1_pos", "hamming", "ece_15", "brier")


def session(registry, name: str, rundir: RunDir):
    def persist(tracker, what, key, value):
        def change(m):
            mine = m.setdefault("trackers", {}).setdefault(tracker, {})
            if key is None:
                mine[what] = value
            else:
                mine.setdefault(what, {})[key] = value
        rundir.update_manifest(change)

    return tracking.open_trackers(registry, [name], folder_of=rundir.tracker_dir, run_id="bench-run",
                                  benchmark="bench", ledger=rundir.manifest().get("trackers"), persist=persist)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--entries", type=int, default=8, help="backbones and ensembles with final metrics")
    args = parser.parse_args()
    print(describe_machine())
    registry = get_registry()
    recipe = tracking.flat_params({"backbones": [f"net{i}" for i in range(args.backbones)], "lr": 1e-4,
                                   "loss_options": {"gamma": 2.0}, "max_epochs": args.epochs})
    for name in registry.names("tracker"):
        entry = registry.get("tracker", name)
        if tracking.missing_modules(entry):
            print(f"{name}: skipped ({tracking.install_hint(entry)})")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            rundir = RunDir(Path(tmp) / "run")
            rundir.update_manifest(lambda m: m.update(run_id="bench-run", padding="x" * 20_000))  # a manifest's size
            started = time.perf_counter()
            first = session(registry, name, rundir)
            opened = time.perf_counter() - started
            first.params(recipe)
            started = time.perf_counter()
            for epoch in range(args.epochs):
                for b in range(args.backbones):
                    first.epoch(f"net{b}", {"epoch": epoch, "stage": "main", "train_loss": 1 / (epoch + 1),
                                            "val_loss": 1.1 / (epoch + 1), "lr": 1e-4, "seconds": 30.0})
            epochs = time.perf_counter() - started
            started = time.perf_counter()
            first.metrics({f"entry{e}": {m: 0.5 for m in METRICS} for e in range(args.entries)})
            first.close()
            final = time.perf_counter() - started
            started = time.perf_counter()
            again = session(registry, name, rundir)
            again.close()
            reopened = time.perf_counter() - started
            calls = args.epochs * args.backbones
            print(f"{name}: open {opened:.2f} s (again, a resume: {reopened:.2f} s); {calls} epochs "
                  f"({args.backbones} backbones x {args.epochs}) {epochs:.2f} s, {1000 * epochs / calls:.1f} ms each "
                  f"with its manifest update; {args.entries} entries' metrics and close {final:.2f} s")


if __name__ == "__main__":
    main()
