"""The files of an external evaluation (``mlbench evaluate RUN_DIR --on BENCHMARK``), read back without torch.

``RUN_DIR/external/BENCHMARK/leaderboard.parquet`` holds leaderboard rows (:mod:`mlbench.results.leaderboard`'s
schema, so any leaderboard reader reads them) plus a ``scope`` column, ``external:BENCHMARK`` on every
row: labels in the run's benchmark's spelling, ``dataset_kind`` and ``split_hash`` of BENCHMARK's test
split. ``evaluation.json`` beside it says what was scored (written last: it marks the evaluation
finished). Where they lie is :class:`mlbench.results.rundir.RunDir`'s business; what they hold is this
module's. Files from elsewhere are hostile: each is checked, and a fault is one line naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlbench.results import leaderboard
from mlbench.results.rundir import RunDir, RunDirError

SCOPE_COLUMN = "scope"
SCOPE_PREFIX = "external:"
# The leaderboard's columns and their scope.
SCHEMA = leaderboard.SCHEMA.append(pa.field(SCOPE_COLUMN, pa.string()))
RECORD_FORMAT = "mlbench-external-evaluation"
RECORD_VERSION = 1


def scope_of(benchmark: str) -> str:
    return f"{SCOPE_PREFIX}{benchmark}"


def read_rows(path: Path, benchmark: str) -> pd.DataFrame:
    """An evaluation's leaderboard rows: the leaderboard schema checked, every row's scope ``external:BENCHMARK``."""
    if not path.is_file():
        raise RunDirError(f"{path}: no such file; expected the rows `mlbench evaluate` writes")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise RunDirError(f"{path}: not a readable parquet file ({str(exc).splitlines()[0]}); expected the rows "
                          "`mlbench evaluate` writes") from None
    if SCOPE_COLUMN not in table.column_names:
        raise RunDirError(f"{path}: no column '{SCOPE_COLUMN}'; expected leaderboard rows with their scope")
    scopes = set(table.column(SCOPE_COLUMN).to_pylist())
    if scopes - {scope_of(benchmark)}:
        raise RunDirError(f"{path}: rows of another scope than {scope_of(benchmark)}; expected that one only")
    frame = leaderboard.validate_table(table, where=str(path)).to_pandas()
    frame[SCOPE_COLUMN] = scope_of(benchmark)
    return frame


def read_record(path: Path) -> dict[str, Any]:
    """An evaluation.json, checked for the fields the tables read (a hostile file is one line naming it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: not readable JSON ({type(exc).__name__}); expected the record `mlbench "
                          "evaluate` writes") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise RunDirError(f"{path}: not the record `mlbench evaluate` writes (format {RECORD_FORMAT})")
    shared = data.get("shared")
    if not isinstance(data.get("benchmark"), str) or not isinstance(shared, list) or not all(
            isinstance(s, dict) and all(isinstance(s.get(k), str) for k in ("label", "target_label", "term", "relation"))
            for s in shared):
        raise RunDirError(f"{path}: its benchmark or shared labels are missing or malformed")
    if not isinstance(data.get("internal_over_shared", []), list):
        raise RunDirError(f"{path}: internal_over_shared is not a list")
    return data


@dataclass
class Evaluation:
    """One finished external evaluation of a run, read back."""

    benchmark: str
    record: dict[str, Any]
    rows: pd.DataFrame  # leaderboard rows with scope


def evaluations(run_dir: str | os.PathLike) -> list[Evaluation]:
    """Every finished external evaluation of RUN_DIR (none: an empty list)."""
    rundir = RunDir(run_dir)
    out = []
    for path in rundir.external_records():
        record = read_record(path)
        name = record["benchmark"]
        if rundir.external_record(name) != path:
            raise RunDirError(f"{path}: names benchmark {name!r}, but lies in another benchmark's folder")
        out.append(Evaluation(name, record, read_rows(rundir.external_leaderboard(name), name)))
    return out
