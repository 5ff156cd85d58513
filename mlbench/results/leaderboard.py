"""Leaderboard files: one long-format schema for a run's results and the published baselines.

One row is one measurement: (benchmark, variant, entry, label, metric) -> value with its 95% CI.
docs/leaderboard.md documents every column; bump SCHEMA_VERSION when a column changes meaning.
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from mlbench.foundations.errors import UserError
from mlbench.foundations.io import write_parquet

LEADERBOARDS_ENV = "MLBENCH_LEADERBOARDS"
SCHEMA_VERSION = 1
GLOBAL_LABEL = "__global__"
ENTRY_KINDS = ("backbone", "ensemble", "explainer")
SOURCES = ("published", "run")
# Calibration of the scores (mlbench.results.metrics): expected calibration error over 15 equal-mass
# bins (the name carries the bin count, so a row is never read as another count) and the Brier score.
CALIBRATION_METRICS = ("ece_15", "brier")
METRICS = ("auc", "auprc", "f1", "f1_pos", "hamming") + CALIBRATION_METRICS
DECISION_METRICS = ("f1", "f1_pos", "hamming")
# The decision metrics again, with per-label thresholds chosen on the validation split (not the paper's 0.5).
TUNED_SUFFIX = "_tuned"
TUNED_METRICS = tuple(m + TUNED_SUFFIX for m in DECISION_METRICS)
# Lower is better for these metrics; higher for every other. Ask mlbench.results.metrics.lower_is_better.
LOWER_IS_BETTER = frozenset({"hamming", "hamming_tuned", *CALIBRATION_METRICS})

SCHEMA = pa.schema(
    [
        ("benchmark", pa.string()),
        ("benchmark_version", pa.string()),
        ("variant", pa.string()),
        ("dataset_kind", pa.string()),
        ("split_hash", pa.string()),
        ("entry", pa.string()),
        ("entry_kind", pa.string()),
        ("label", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("n_positive", pa.int64()),
        ("source", pa.string()),
        ("run_id", pa.string()),
        # provenance
        ("backbones", pa.string()),
        ("loss", pa.string()),
        ("seed", pa.int64()),
        ("mlbench_version", pa.string()),
        ("git_commit", pa.string()),
        ("plugin_versions", pa.string()),
        ("device", pa.string()),
        ("wall_time_s", pa.float64()),
        ("created_at", pa.string()),
        ("schema_version", pa.int64()),
    ],
    metadata={b"mlbench.schema_version": str(SCHEMA_VERSION).encode()},
)
COLUMNS = tuple(SCHEMA.names)


class LeaderboardError(UserError, ValueError):
    """A leaderboard file or row does not follow the schema."""


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build a schema-conformant table; every row must name every column (None where unknown)."""
    rows = list(rows)
    for i, row in enumerate(rows):
        missing = [c for c in COLUMNS if c not in row]
        extra = [c for c in row if c not in COLUMNS]
        if missing or extra:
            raise LeaderboardError(f"leaderboard row {i}: missing columns {missing}, unknown columns {extra}")
        if row["entry_kind"] not in ENTRY_KINDS:
            raise LeaderboardError(f"leaderboard row {i}: entry_kind {row['entry_kind']!r} not in {ENTRY_KINDS}")
        if row["source"] not in SOURCES:
            raise LeaderboardError(f"leaderboard row {i}: source {row['source']!r} not in {SOURCES}")
        if row["metric"] not in METRICS + TUNED_METRICS and not str(row["metric"]).startswith("cam_"):
            raise LeaderboardError(f"leaderboard row {i}: metric {row['metric']!r} is neither one of "
                                   f"{METRICS + TUNED_METRICS} nor an explainer metric starting with 'cam_'")
        if not isinstance(row["value"], (int, float)) or isinstance(row["value"], bool):
            raise LeaderboardError(f"leaderboard row {i}: value {row['value']!r} is not a number")
    columns = {c: [_clean(r[c]) for r in rows] for c in COLUMNS}
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def validate_table(table: pa.Table, *, where: str = "leaderboard") -> pa.Table:
    """Check the columns and types; return the table cast to SCHEMA (column order fixed)."""
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise LeaderboardError(f"{where}: missing columns {missing}")
    for f in SCHEMA:
        have = table.schema.field(f.name).type
        # pandas and polars write large_string; nulls-only columns come back as null: both cast cleanly.
        same_kind = pa.types.is_large_string(have) and pa.types.is_string(f.type)
        if have != f.type and not (pa.types.is_null(have) or same_kind):
            raise LeaderboardError(f"{where}: column '{f.name}' has type {have}, expected {f.type}")
    table = table.select(list(COLUMNS))
    if table.schema.equals(SCHEMA):  # already SCHEMA's types: no cast, which would import pyarrow.compute (~30 ms)
        return pa.Table.from_arrays(table.columns, schema=SCHEMA)
    return table.cast(SCHEMA)


def read(path: str | Path) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise LeaderboardError(f"{path}: no such leaderboard file")
    if path.is_dir():  # pyarrow would read a folder as a dataset of every file in it
        raise LeaderboardError(f"{path}: is a folder; expected a leaderboard file (.parquet)")
    try:  # one file, read as one: pq.read_table would also import pyarrow.dataset, which a read never needs
        with pq.ParquetFile(path) as parquet:
            table = parquet.read()
    except (pa.ArrowInvalid, OSError) as exc:
        raise LeaderboardError(f"{path}: not a readable parquet file ({str(exc).splitlines()[0]}); "
                               "expected a leaderboard (docs/leaderboard.md)") from None
    return validate_table(table, where=str(path))


def rows_of(benchmark: str, path: str | Path) -> Any:
    """``path``'s rows of ``benchmark`` as a DataFrame; a file holding none is refused, naming what it holds."""
    return board_table(benchmark, path).to_pandas()


def board_table(benchmark: str, path: str | Path) -> pa.Table:
    """:func:`rows_of` as a pyarrow table: what ``leaderboard show`` reads, with no pandas imported."""
    table = read(path)
    names = table.column("benchmark").to_pylist()
    mine = take_rows(table, [i for i, name in enumerate(names) if name == benchmark])
    if table.num_rows and not mine.num_rows:
        held = sorted(map(str, set(names) - {None}))
        shown = ", ".join(held[:5]) + (" ..." if len(held) > 5 else "")
        raise LeaderboardError(f"{path}: holds rows of benchmark {shown or '(none named)'}, none of '{benchmark}'; "
                               "pass that benchmark's name or its own leaderboard file")
    return mine


def write(path: str | Path, table: pa.Table) -> None:
    write_parquet(path, validate_table(table, where=str(path)))


# -- where a benchmark's boards are --------------------------------------------------------------
# A benchmark has two boards. Its *published* board ships with the plugin that registers it, as
# package data named by ``Benchmark.published_board``; it is read-only. Its *own* board is the
# user's file ``$MLBENCH_LEADERBOARDS/BENCHMARK.parquet`` (default ``./leaderboards/``): ``submit``
# appends there, seeding a new file with the published rows.
_extracted = ExitStack()  # keeps zip-imported package data extracted for the process's lifetime


def local_board(benchmark: str) -> Path:
    """The user's own board of ``benchmark`` (it may not exist yet)."""
    folder = Path(os.environ.get(LEADERBOARDS_ENV) or Path.cwd() / "leaderboards")
    return folder / f"{benchmark}.parquet"


def published_board(benchmark: str, registry: Any = None) -> Path | None:
    """The published board the benchmark's plugin ships (None when it ships none)."""
    from mlbench.contracts.registry import get_registry

    bench = (registry or get_registry()).create("benchmark", benchmark)
    shipped = getattr(bench, "published_board", None)
    if shipped is None:
        return None
    path = Path(_extracted.enter_context(resources.as_file(shipped)))
    if not path.is_file():
        raise LeaderboardError(f"benchmark '{benchmark}': its published board {path} is not in the installed "
                               "package; the plugin must ship it as package data (e.g. leaderboards/*.parquet)")
    return path


def find_board(benchmark: str, file: str | Path | None = None, registry: Any = None) -> Path:
    """``file`` if given, else the benchmark's own board if it exists, else its published board."""
    if file is not None:
        path = Path(file)
        if path.is_dir():
            raise LeaderboardError(f"{path}: is a folder; expected a leaderboard file (.parquet)")
        if not path.is_file():
            raise LeaderboardError(f"{path}: no such leaderboard file")
        return path
    own = local_board(benchmark)
    if own.is_file():
        return own
    published = published_board(benchmark, registry)
    if published is not None:
        return published
    raise LeaderboardError(f"no leaderboard for benchmark '{benchmark}': {own} does not exist and the benchmark "
                           f"ships no published board; pass --file PATH or set {LEADERBOARDS_ENV}")


def select_rows(board: Any, *, label: str | None = None, metric: str = "auc", variant: str | None = None,
                source: str | None = None) -> Any:
    """The rows ``mlbench leaderboard show`` prints: one label (default ``__global__``), one metric,
    best first. Raises naming the labels/metrics/variants the board has when a filter matches nothing."""
    order = selected_order({c: board[c].tolist() for c in SELECTED_BY}, label=label, metric=metric,
                           variant=variant, source=source)
    return board.iloc[order].reset_index(drop=True)


def take_rows(table: pa.Table, positions: list[int]) -> pa.Table:
    """``table``'s rows at ``positions``, in that order, as slices of each run of consecutive positions.

    Neither ``take`` nor a filter: pyarrow imports pandas to convert any Python value (``pa.array``,
    ``pa.scalar``, a list given to ``take``) and its compute module (about 30 ms) to take or filter;
    slicing and concatenating need neither. A whole table comes back as it is."""
    if positions == list(range(table.num_rows)):
        return table
    runs: list[list[int]] = []  # [start, length]
    for i in positions:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1][1] += 1
        else:
            runs.append([i, 1])
    return pa.concat_tables([table.slice(start, length) for start, length in runs]) if runs else table.slice(0, 0)


# The columns a selection reads: the filters', then the sort's.
SELECTED_BY = ("metric", "label", "variant", "source", "value")


def selected_order(columns: Mapping[str, list], *, label: str | None = None, metric: str = "auc",
                   variant: str | None = None, source: str | None = None) -> list[int]:
    """The positions :func:`select_rows` keeps, in its order, from plain column lists (``None`` or NaN: missing).

    One implementation for a DataFrame and a pyarrow table. The order is pandas'
    ``sort_values(["variant", "value"], ascending=[True, lower_is_better], na_position="last", kind="stable")``:
    variants A to Z, values best first, a missing variant or value last, ties in file order."""
    label = label or GLOBAL_LABEL
    kept = range(len(columns["metric"]))
    for column, wanted in (("metric", metric), ("label", label), ("variant", variant), ("source", source)):
        if wanted is None:
            continue
        values = columns[column]
        matched = [i for i in kept if values[i] == wanted]
        if not matched:
            have = sorted({str(values[i]) for i in kept if not is_missing(values[i])})
            shown = ", ".join(have[:60]) + (" ..." if len(have) > 60 else "")
            raise LeaderboardError(f"no leaderboard row with {column} '{wanted}'; this selection has {column}s: "
                                   f"{shown}")
        kept = matched
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    variants, values = columns["variant"], columns["value"]

    def key(i: int) -> tuple:
        v, x = variants[i], values[i]
        return (is_missing(v), "" if is_missing(v) else v, is_missing(x), 0.0 if is_missing(x) else sign * x)

    return sorted(kept, key=key)  # sorted is stable: ties keep the file's order


def is_missing(value: Any) -> bool:
    """None or NaN: how a missing cell comes out of a pyarrow column (None) or a pandas one (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))
