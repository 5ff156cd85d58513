"""How long the folder dataset takes to read a CSV of N rows (the data stage of `mlbench run folder`).

    python perf/bench_folder_reader.py [--rows 100000] [--layout columns|joined]

Writes N one-byte image files (the reader stats every file, it opens none) and a CSV over them with
one column per label (1 / 0 / -1 / blank) or one joined column, in a temporary folder, then times
``FolderDataset.read`` and the split. Prints the machine first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe_machine  # noqa: E402

LABELS = [f"label_{j:02d}" for j in range(14)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--layout", choices=("columns", "joined"), default="columns")
    args = parser.parse_args()
    print(describe_machine())
    import mlbench
    from mlbench.contracts.registry import get_registry
    from mlbench.data import DataSource
    from mlbench.data.datasetoptions import read_dataset
    from mlbench.data.splits import split_benchmark

    rng = np.random.default_rng(0)
    shares = np.geomspace(0.3, 0.005, len(LABELS))  # a head and a long tail
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        lines = ["path,patient," + ("findings" if args.layout == "joined" else ",".join(LABELS))]
        for i in range(args.rows):
            folder = root / "images" / f"{i // 1000:03d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True)
            (folder / f"{i}.png").write_bytes(b"x")
            cells = np.where(rng.random(len(LABELS)) < shares, "1", np.where(rng.random(len(LABELS)) < 0.03, "-1",
                                                                              np.where(rng.random(len(LABELS)) < 0.5,
                                                                                       "", "0")))
            labels = ("|".join(l for l, c in zip(LABELS, cells) if c == "1") if args.layout == "joined"
                      else ",".join(cells))
            lines.append(f"images/{i // 1000:03d}/{i}.png,p{i // 3},{labels}")
        (root / "labels.csv").write_text("\n".join(lines) + "\n")
        print(f"wrote {args.rows:,} files and the CSV in {time.perf_counter() - started:.1f} s")
        source = DataSource(root / "labels.csv", root)
        registry = get_registry()
        started = time.perf_counter()
        records = read_dataset(registry, "folder", source, {"policy": "zeros"})
        read = time.perf_counter() - started
        started = time.perf_counter()
        split = split_benchmark(records, registry.create("benchmark", "folder"))
        print(f"{args.layout}: read {len(records.frame):,} rows in {read:.2f} s "
              f"({len(records.frame) / read:,.0f} rows/s); split {time.perf_counter() - started:.2f} s; "
              f"{len(split.labels)} labels kept, {records.facts['uncertain_cells']:,} uncertain and "
              f"{records.facts['blank_cells']:,} blank cells; mlbench {mlbench.__version__}")


if __name__ == "__main__":
    main()
