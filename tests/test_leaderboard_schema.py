"""The one leaderboard schema: what to_table refuses, and a write/read round trip."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlbench.results import leaderboard
from mlbench.results.leaderboard import LeaderboardError


def run_row(**changes) -> dict:
    """A complete, valid run row; tests change one field at a time."""
    row = {
        "benchmark": "padchest-specific",
        "benchmark_version": "1.0",
        "variant": "crop+aug",
        "dataset_kind": "synthetic",
        "split_hash": "3f2a9c",
        "entry": "ctp",
        "entry_kind": "ensemble",
        "label": "cardiomegaly",
        "metric": "auc",
        "value": 0.91,
        "ci_low": 0.88,
        "ci_high": 0.93,
        "n_positive": 42,
        "source": "run",
        "run_id": "run-001",
        "backbones": "resnet10t,mobilenetv3_small_050",
        "loss": "weighted-bce",
        "seed": 0,
        "mlbench_version": "0.1.0",
        "git_commit": "abc1234",
        "plugin_versions": '{"mlbench-imbalanced": "0.1.0"}',
        "device": "cpu",
        "wall_time_s": 12.5,
        "created_at": "2025-01-01T00:00:00+00:00",
        "schema_version": leaderboard.SCHEMA_VERSION,
    }
    row.update(changes)
    return row


def test_a_valid_row_builds_a_schema_table():
    table = leaderboard.to_table([run_row(), run_row(label=leaderboard.GLOBAL_LABEL, n_positive=None)])
    assert table.schema.equals(leaderboard.SCHEMA, check_metadata=True)
    assert table.column("n_positive").to_pylist() == [42, None]


def test_missing_column_is_named():
    row = run_row()
    del row["split_hash"]
    with pytest.raises(LeaderboardError, match=r"row 0: missing columns \['split_hash'\]"):
        leaderboard.to_table([row])


def test_unknown_column_is_named():
    with pytest.raises(LeaderboardError, match=r"row 1: missing columns \[\], unknown columns \['paper'\]"):
        leaderboard.to_table([run_row(), run_row(paper="liz2023")])


def test_bad_entry_kind_is_refused():
    with pytest.raises(LeaderboardError, match=r"row 0: entry_kind 'model' not in \('backbone', 'ensemble', 'explainer'\)"):
        leaderboard.to_table([run_row(entry_kind="model")])


def test_bad_source_is_refused():
    with pytest.raises(LeaderboardError, match=r"row 0: source 'paper' not in \('published', 'run'\)"):
        leaderboard.to_table([run_row(source="paper")])


def test_nan_becomes_null():
    table = leaderboard.to_table([run_row(ci_low=float("nan"), ci_high=float("nan"))])
    assert table.column("ci_low").to_pylist() == [None]


def test_round_trip_write_read(tmp_path: Path):
    rows = [run_row(label=label, value=v) for label, v in (("cardiomegaly", 0.91), ("nodule", 0.7))]
    table = leaderboard.to_table(rows)
    path = tmp_path / "board" / "leaderboard.parquet"
    leaderboard.write(path, table)
    back = leaderboard.read(path)
    assert back.equals(table)
    assert back.schema.metadata[b"mlbench.schema_version"] == str(leaderboard.SCHEMA_VERSION).encode()
    # The write is atomic: nothing but the file itself is left in the folder.
    assert [p.name for p in path.parent.iterdir()] == ["leaderboard.parquet"]


def test_read_puts_columns_in_schema_order(tmp_path: Path):
    table = leaderboard.to_table([run_row()])
    shuffled = table.select(list(reversed(leaderboard.COLUMNS)))
    path = tmp_path / "shuffled.parquet"
    pq.write_table(shuffled, path)
    assert leaderboard.read(path).column_names == list(leaderboard.COLUMNS)


def test_read_refuses_a_file_missing_a_column(tmp_path: Path):
    path = tmp_path / "old.parquet"
    pq.write_table(leaderboard.to_table([run_row()]).drop_columns(["device"]), path)
    with pytest.raises(LeaderboardError, match=r"old.parquet: missing columns \['device'\]"):
        leaderboard.read(path)


def test_read_refuses_a_wrongly_typed_column(tmp_path: Path):
    table = leaderboard.to_table([run_row()])
    index = table.schema.get_field_index("value")
    table = table.set_column(index, "value", pa.array(["0.91"]))
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path)
    with pytest.raises(LeaderboardError, match=r"column 'value' has type string, expected double"):
        leaderboard.read(path)


def test_read_of_a_missing_file_names_it(tmp_path: Path):
    with pytest.raises(LeaderboardError, match=r"nowhere.parquet: no such leaderboard file"):
        leaderboard.read(tmp_path / "nowhere.parquet")
