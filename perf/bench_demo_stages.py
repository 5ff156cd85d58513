"""Wall time per stage of ``mlbench run padchest-specific --demo`` (issues 2 and 24: the stage-time script).

    python perf/bench_demo_stages.py                          # the demo as README command 1 runs it
    python perf/bench_demo_stages.py --epochs 3               # shorter: at most 3 epochs per backbone
    python perf/bench_demo_stages.py --out RUN_DIR            # keep the run (a finished RUN_DIR is reused)
    python perf/bench_demo_stages.py --run-dir RUN_DIR        # only print an existing run's stage times
    python perf/bench_demo_stages.py --benchmark nih-cxr14    # the NIH demo

The run goes through the library call the CLI makes (:func:`mlbench.training.runner.run`); the stage times
are the ones the runner itself records in ``manifest.json`` (data, split, preprocess,
train:BACKBONE, ensemble, metrics). Writing the demo corpus happens before the manifest exists and
has no stage of its own: it shows as "outside stages" (this invocation's wall time minus its
stages). Issue 24's budget for the whole demo is 3 minutes on 2 CPU cores, with a CTP macro AUC of
at least 0.85 on its synthetic test split (printed after the table).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from _machine import describe_machine
from mlbench.results.rundir import RunDir, RunDirError
from mlbench.training.runner import RunOptions, run

BENCHMARK = "padchest-specific"
DEMO_BUDGET_S = 180
CTP_AUC_FLOOR = 0.85


def _training_detail(run_dir: Path, backbone: str) -> str:
    """Epochs trained and seconds per epoch, from the backbone's history.json."""
    path = RunDir(run_dir).history_file(backbone)
    if not path.exists():
        return ""
    history = json.loads(path.read_text())
    epochs = history.get("history", [])
    if not epochs:
        return ""
    seconds = sum(e["seconds"] for e in epochs)
    # The epochs' own sum: after a resume the stage time covers only the last invocation.
    return (f"{history['epochs']} epochs (best {history['best_epoch']}), {seconds / len(epochs):.1f} s/epoch, "
            f"{seconds:.0f} s in epochs")


def print_stages(run_dir: Path, invocation_s: float | None = None) -> None:
    """The stage table of RUN_DIR's manifest; with ``invocation_s``, also the time outside stages."""
    try:
        m: dict[str, Any] = RunDir(run_dir).manifest()
    except RunDirError as exc:
        raise SystemExit(str(exc)) from None
    stages: dict[str, dict[str, Any]] = m.get("stages", {})
    if not stages:
        raise SystemExit(f"{run_dir}/manifest.json records no stage times")
    total = sum(s["seconds"] for s in stages.values())
    print(f"run {run_dir}: {m.get('benchmark')} ({m.get('variant')}, {m.get('dataset_kind')}), "
          f"device {m.get('device')}, images {m.get('n_images')}")
    header = f"{'stage':34s} {'seconds':>9s} {'share':>6s}  detail"
    print(header)
    print("-" * len(header))
    for name, stage in stages.items():
        detail = _training_detail(run_dir, name.split(":", 1)[1]) if name.startswith("train:") else ""
        status = "" if stage.get("status", "done") == "done" else f"[{stage.get('status')}] "
        print(f"{name:34s} {stage['seconds']:9.1f} {100 * stage['seconds'] / total:5.0f}%  {status}{detail}")
    print(f"{'sum of stages':34s} {total:9.1f}")
    board = RunDir(run_dir).leaderboard_file
    if board.is_file():
        import pyarrow.parquet as pq

        rows = pq.read_table(board, columns=["entry", "label", "metric", "value"]).to_pylist()
        auc = {r["entry"]: r["value"] for r in rows if r["label"] == "__global__" and r["metric"] == "auc"}
        print("macro AUC (test): " + ", ".join(f"{e} {v:.3f}" for e, v in auc.items())
              + (f"; ctp {'meets' if auc['ctp'] >= CTP_AUC_FLOOR else 'misses'} the {CTP_AUC_FLOOR} floor"
                 if "ctp" in auc else ""))
    if invocation_s is not None:
        print(f"{'outside stages (demo corpus, setup)':34s} {invocation_s - total:9.1f}")
        print(f"{'total (this invocation)':34s} {invocation_s:9.1f}  "
              f"({100 * invocation_s / DEMO_BUDGET_S:.0f}% of the demo's {DEMO_BUDGET_S // 60}-minute budget)")


def main() -> None:
    parser = argparse.ArgumentParser(description="Stage wall times of a benchmark's demo run.")
    parser.add_argument("--benchmark", default=BENCHMARK, help=f"whose demo runs [default: {BENCHMARK}]")
    parser.add_argument("--run-dir", type=Path, help="only print the stage times of this existing RUN_DIR")
    parser.add_argument("--out", type=Path, help="run directory [default: a temporary one, deleted afterwards]")
    parser.add_argument("--epochs", type=int, help="maximum epochs per backbone [default: the demo recipe's]")
    parser.add_argument("--patients", type=int, help="demo corpus patients [default: the demo's own]")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=None, help="preprocessing processes [default: all cores]")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the demo's budget is for 2 cores)")
    parser.add_argument("--progress", action="store_true", help="show the runner's progress bars")
    args = parser.parse_args()
    if args.run_dir is not None:
        print_stages(args.run_dir)
        return
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    torch.set_num_threads(args.threads)
    print(f"machine: {describe_machine()}")
    with tempfile.TemporaryDirectory(prefix="mlbench-demo-stages-") as tmp:
        out = args.out or Path(tmp) / "run"
        fresh = not RunDir(out).exists()
        opts = RunOptions(benchmark=args.benchmark, out=out, demo=True, max_epochs=args.epochs, device=args.device,
                          workers=args.workers, progress=args.progress,
                          demo_options={"n_patients": args.patients} if args.patients else None)
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run(opts)
        invocation_s = time.perf_counter() - started
        if caught:  # e.g. labels without positives in a small split: counted, not scrolled past
            counts = Counter(w.category.__name__ for w in caught)
            print("warnings during the run: " + ", ".join(f"{n} {name}" for name, n in counts.most_common()))
        if not fresh:
            print(f"(resumed {out}: stages finished earlier keep their recorded times; "
                  f"this invocation took {invocation_s:.1f} s)")
        print_stages(out, invocation_s if fresh else None)


if __name__ == "__main__":
    main()
