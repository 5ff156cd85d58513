"""Reading commands as whole processes vs pandas reading the same board, with and without a torch plugin.

    python perf/bench_registry_reads.py                  # medians of 5
    python perf/bench_registry_reads.py --repeats 9

Issue 24, part 2: reads cost what pandas costs, whatever plugins are installed. Each command runs
as a fresh process (wall time, CPU time and peak RSS from ``os.wait4``), from an empty working
folder, in two installations: the built-in plugins only, and the same plus
``tests/data/plugins/torch_at_import`` (a third-party plugin whose module imports torch at the top)
put on ``PYTHONPATH``. The baseline is pandas reading the shipped padchest-specific board,
keeping the ``__global__`` AUC rows, sorting them best first and printing them.

Every command runs once before timing (that run builds the registry cache in a fresh
``MLBENCH_CACHE_DIR``); then the commands take turns, ``--repeats`` rounds, so load from other
processes falls on all of them alike, and each ratio pairs a command with the pandas read of the
same round (CPU time is the figure least moved by other processes). Bytecode is compiled once
and reused, as after a pip install, even where ``PYTHONDONTWRITEBYTECODE`` is set (into a
temporary ``PYTHONPYCACHEPREFIX``, not the source tree). ``no cache`` rows point
``MLBENCH_CACHE_DIR`` at a file, so every run imports every plugin module (what each command
cost before the cache).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOARD = REPO / "benchmarks" / "padchest" / "mlbench_padchest" / "leaderboards" / "padchest-specific.parquet"
TORCH_PLUGIN = REPO / "tests" / "data" / "plugins" / "torch_at_import"
PANDAS_READ = f"""
import pandas as pd
board = pd.read_parquet({str(BOARD)!r})
rows = board[(board["label"] == "__global__") & (board["metric"] == "auc")]
rows = rows.sort_values(["variant", "value"], ascending=[True, False], kind="stable")
print(rows[["variant", "entry", "value", "ci_low", "ci_high", "n_positive", "source", "run_id"]].to_string())
"""


def mlbench_command() -> list[str]:
    """The installed ``mlbench`` script (what a user types), else ``python -m mlbench``."""
    script = shutil.which("mlbench")
    return [script] if script else [sys.executable, "-m", "mlbench"]


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one process."""
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not the maximum over all children
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        error = stderr.read().decode(errors="replace")[-4000:]
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{error}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    # From a child process: torch imported here would count in every child's peak RSS (fork).
    print(subprocess.run([sys.executable, str(Path(__file__).with_name("_machine.py"))], capture_output=True,
                         text=True, check=True).stdout.strip())

    mlbench = mlbench_command()
    commands = {
        "pandas read": [sys.executable, "-c", PANDAS_READ],
        "leaderboard show": [*mlbench, "leaderboard", "show", "padchest-specific", "--metric", "auc"],
        "plugins": [*mlbench, "plugins"],
        "--help": [*mlbench, "--help"],
    }
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        tmp = Path(tmp)
        (tmp / "work").mkdir()
        (tmp / "not-a-folder").write_text("")
        base = {k: v for k, v in os.environ.items() if k not in (
            "PYTHONPATH", "MLBENCH_PLUGINS", "MLBENCH_LEADERBOARDS", "MLBENCH_CACHE_DIR", "PYTHONDONTWRITEBYTECODE")}
        # Compiled bytecode as after a pip install, kept out of the source tree.
        base.update(COLUMNS="120", PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
        setups = {
            "built-ins only": {**base, "MLBENCH_CACHE_DIR": str(tmp / "cache")},
            "+ torch plugin": {**base, "MLBENCH_CACHE_DIR": str(tmp / "cache"), "PYTHONPATH": str(TORCH_PLUGIN)},
            "+ torch plugin, no cache": {**base, "MLBENCH_CACHE_DIR": str(tmp / "not-a-folder"),
                                         "PYTHONPATH": str(TORCH_PLUGIN)},
        }
        runs = [(setup, name) for setup in setups for name in commands
                if name == "pandas read" or setup != "+ torch plugin, no cache" or name != "--help"]
        samples: dict[tuple[str, str], list[tuple[float, float, float]]] = {run: [] for run in runs}
        for setup, name in runs:  # warm-up: builds each installation's registry cache, fills the page cache
            measure(commands[name], setups[setup], tmp / "work")
        for _ in range(args.repeats):
            for setup, name in runs:
                samples[(setup, name)].append(measure(commands[name], setups[setup], tmp / "work"))

    print(f"\nmedians of {args.repeats} runs; a ratio is the median over rounds of the command / the pandas read of "
          "the same installation in the same round\n")
    print("| installation | command | wall s | CPU s | peak RSS MiB | wall ratio | CPU ratio | RSS ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for setup, name in runs:
        mine, ref = samples[(setup, name)], samples[(setup, "pandas read")]
        medians = [statistics.median(s[i] for s in mine) for i in range(3)]
        ratios = [statistics.median(a[i] / b[i] for a, b in zip(mine, ref)) for i in range(3)]
        print(f"| {setup} | {name} | {medians[0]:.2f} | {medians[1]:.2f} | {medians[2]:.0f} | "
              + " | ".join(f"{r:.2f}x" for r in ratios) + " |")

if __name__ == "__main__":
    main()
