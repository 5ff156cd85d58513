"""Builds the toy-xray benchmark's published board (package data) from board.tsv.

The numbers in board.tsv are made up for mlbench's tests: test fixture, not a publication.
Run: python tests/data/plugins/toy_xray/make_board.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from mlbench.results import leaderboard

HERE = Path(__file__).resolve().parent
TSV = HERE / "board.tsv"
BOARD = HERE / "mlbench_toy_xray" / "leaderboards" / "toy-xray.parquet"
RUN_ID = "toy-fixture-not-a-publication"


def board_table(tsv: Path = TSV) -> pa.Table:
    with open(tsv, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return leaderboard.to_table([{
        **{column: None for column in leaderboard.COLUMNS},
        "benchmark": "toy-xray", "benchmark_version": "1", "dataset_kind": "toy-xray",
        "variant": r["variant"], "entry": r["entry"], "entry_kind": r["entry_kind"], "label": r["label"],
        "metric": r["metric"], "value": float(r["value"]), "source": "published", "run_id": RUN_ID,
        "backbones": "resnet10t", "loss": "weighted-bce", "schema_version": leaderboard.SCHEMA_VERSION,
    } for r in rows])


if __name__ == "__main__":
    leaderboard.write(BOARD, board_table())
    print(f"wrote {BOARD}")
