"""``mlbench board build`` on a board of many small submissions: seconds per build and per submission.

    python perf/bench_board_build.py                    # 1,000 submissions
    python perf/bench_board_build.py --submissions 200

One tiny demo run (padchest-specific, one backbone, one epoch, 32 px) is trained, bundled and verified
against its demo label file on a synthetic board, as ``mlbench board add`` does. The board is then
filled with N submissions: copies of that bundle each under its own run id (the manifest member
rewritten and the index re-hashed) with the verdict ``add`` wrote, its bundle sha256 updated —
so building reads N distinct bundles and checks N verdicts, the work ``board build`` does without
``--csv``. It prints the seconds of a build, the same per submission, and whether a second build gave
a byte-identical board.parquet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

from mlbench.demo import read_source_record
from mlbench.foundations.io import write_json
from mlbench.judging.board import BUNDLE_FILE, SUBMISSIONS, VERDICT_FILE, add_submission, build_board, init_board
from mlbench.judging.bundle import write_bundle
from mlbench.results.metrics import MetricWarning
from mlbench.training.runner import RunOptions, run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402


def renamed(bundle: Path, out: Path, run_id: str) -> bytes:
    """The bundle under another run id: its manifest member rewritten and the index re-hashed."""
    with zipfile.ZipFile(bundle) as z:
        members = {name: z.read(name) for name in z.namelist()}
    manifest = json.loads(members["manifest.json"])
    manifest["run_id"] = run_id
    data = json.dumps(manifest).encode()
    members["manifest.json"] = data
    index = json.loads(members["bundle.json"])
    index["members"]["manifest.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    members["bundle.json"] = json.dumps(index).encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return out.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000)
    args = parser.parse_args()
    print(describe_machine())
    with tempfile.TemporaryDirectory(prefix="mlbench-board-bench-") as tmp:
        root = Path(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            run_dir = run(RunOptions(benchmark="padchest-specific", out=root / "run", demo=True, demo_dir=root / "demo",
                                     demo_options={"n_patients": 48, "image_size": 64, "n_corrupt": 0}, image_size=32,
                                     max_epochs=1, backbones=("mobilenetv3_small_050",), progress=False, workers=1,
                                     n_boot=20)).run_dir
        source = read_source_record(root / "demo")
        bundle = write_bundle(run_dir, root / "run.zip")
        board = init_board(root / "board", "padchest-specific", csv=source.csv, synthetic=True)
        first = add_submission(board.root, bundle, source.csv).submission
        verdict = json.loads((first / VERDICT_FILE).read_text())
        started = time.perf_counter()
        for i in range(1, args.submissions):
            run_id = f"{verdict['run_id']}-copy{i:05d}"
            folder = board.root / SUBMISSIONS / run_id
            folder.mkdir()
            data = renamed(bundle, folder / BUNDLE_FILE, run_id)
            write_json(folder / VERDICT_FILE, {**verdict, "run_id": run_id,
                                               "bundle_sha256": hashlib.sha256(data).hexdigest()})
        print(f"filled the board with {args.submissions} submissions of {bundle.stat().st_size / 1e3:.0f} kB "
              f"in {time.perf_counter() - started:.1f} s")
        timings, outputs = [], []
        for _ in range(2):
            started = time.perf_counter()
            result = build_board(board.root)
            timings.append(time.perf_counter() - started)
            outputs.append((board.root / "board.parquet").read_bytes())
        assert not result.dropped, result.dropped
        print(f"board build: {timings[0]:.2f} s and {timings[1]:.2f} s for {len(result.included)} submissions, "
              f"{result.rows} rows ({1e3 * min(timings) / len(result.included):.1f} ms per submission); "
              f"board.parquet {len(outputs[0]) / 1e6:.2f} MB, byte-identical across builds: {outputs[0] == outputs[1]}")


if __name__ == "__main__":
    main()
