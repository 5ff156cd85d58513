"""Build ``benchmarks/nih/mlbench_nih/leaderboards/nih-cxr14.parquet`` from ``published-mean-auc.tsv``.

The TSV holds the mean test AUC over the 14 labels that each paper reports on NIH's official
patient-wise test split (see README.md beside it). Each becomes one ``__global__`` ``auc`` row with
``source = published``; the entry and run_id name the paper. Per-label rows are not carried: no
per-label table was checked against its primary source.

Usage::

    python leaderboards/nih-cxr14/build.py          # check the TSV, write the parquet file
    python leaderboards/nih-cxr14/build.py --check  # check, and fail if the committed file differs
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from mlbench import leaderboard

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "published-mean-auc.tsv"
OUTPUT = HERE.parent.parent / "benchmarks" / "nih" / "mlbench_nih" / "leaderboards" / "nih-cxr14.parquet"
HEADER = ("entry", "year", "authors", "title", "venue", "mean_auc")
BENCHMARK, BENCHMARK_VERSION, DATASET_KIND = "nih-cxr14", "1.0", "nih-cxr14"
# Whole films, the papers' own augmentation: the benchmark's no-crop setting.
VARIANT = "aug"
_ENTRY = re.compile(r"[a-z]+\d{4}")


class BuildError(ValueError):
    """The TSV breaks a rule (the message names the row and column)."""


def read_rows(path: Path = SOURCE) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if tuple(reader.fieldnames or ()) != HEADER:
            raise BuildError(f"{path}: header {reader.fieldnames}, expected {list(HEADER)}")
        rows = list(reader)
    seen = set()
    for n, row in enumerate(rows, start=2):
        entry = row["entry"]
        if not _ENTRY.fullmatch(entry) or not entry.endswith(row["year"]):
            raise BuildError(f"{path} line {n}: entry {entry!r} must be the first author and year (e.g. wang2017)")
        if entry in seen:
            raise BuildError(f"{path} line {n}: entry {entry!r} repeats")
        seen.add(entry)
        try:
            value = Decimal(row["mean_auc"])
        except InvalidOperation as exc:
            raise BuildError(f"{path} line {n}: mean_auc {row['mean_auc']!r} is not a number") from exc
        if not Decimal("0.5") <= value <= 1:
            raise BuildError(f"{path} line {n}: mean_auc {value} outside [0.5, 1]")
        if not row["title"].strip() or not row["venue"].strip():
            raise BuildError(f"{path} line {n}: title and venue are required")
    return rows


def _row(source: dict[str, str]) -> dict[str, Any]:
    return {
        "benchmark": BENCHMARK, "benchmark_version": BENCHMARK_VERSION, "variant": VARIANT,
        "dataset_kind": DATASET_KIND, "split_hash": None, "entry": source["entry"], "entry_kind": "backbone",
        "label": leaderboard.GLOBAL_LABEL, "metric": "auc", "value": float(Decimal(source["mean_auc"])),
        "ci_low": None, "ci_high": None, "n_positive": None, "source": "published",
        "run_id": source["entry"],  # the paper; its citation is in the TSV and README.md
        "backbones": None, "loss": None, "seed": None, "mlbench_version": None, "git_commit": None,
        "plugin_versions": None, "device": None, "wall_time_s": None, "created_at": None,
        "schema_version": leaderboard.SCHEMA_VERSION,
    }


def build_table(path: Path = SOURCE) -> pa.Table:
    table = leaderboard.to_table([_row(r) for r in read_rows(path)])
    return leaderboard.validate_table(table, where=str(path))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed parquet differs")
    args = parser.parse_args(argv)
    try:
        table = build_table()
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if not OUTPUT.is_file() or not leaderboard.read(OUTPUT).equals(table):
            print(f"error: {OUTPUT} is missing or differs from {SOURCE.name}; rebuild it", file=sys.stderr)
            return 1
        print(f"{OUTPUT.name}: {table.num_rows} rows, up to date")
        return 0
    leaderboard.write(OUTPUT, table)
    print(f"wrote {OUTPUT} ({table.num_rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
