"""Hostile result files through the real ``mlbench`` command (issue 19).

A copied run directory is outside input: its predictions may hold NaN, 2.0, -3.0 or strings, lack
or repeat rows; its leaderboard may repeat rows or claim another device; the board a run is
submitted to may not be writable at all. Every case ends in one ``Error:`` line naming the file
(no traceback), and a board that cannot be written is left as it was. The cases tamper with copies
of one tiny real run (40 demo patients, one epoch of resnet10t at 32 px, CTP, 10 replicates).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli_checks import assert_one_error, cli, finished_tiny_run

BENCH = "padchest-specific"
RUN_FILES = ("manifest.json", "split.parquet", "predictions.parquet", "leaderboard.parquet", "skipped.parquet")


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One finished real run of the demo (the cases copy it)."""
    return finished_tiny_run(tmp_path_factory.mktemp("hostile") / "run")


def copy_run(run_dir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in RUN_FILES:
        shutil.copy2(run_dir / name, dest / name)
    return dest


def source_args(run_dir: Path) -> list:
    """--csv/--images naming the demo corpus of ``run_dir`` (a copy holds no corpus of its own)."""
    demo = run_dir / "demo-data"
    return ["--csv", demo / "PADCHEST_demo_labels.csv", "--images", demo / "images"]


def read_frame(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def first_test_row(frame: pd.DataFrame, entry: str = "ctp") -> int:
    return frame.index[(frame["split"] == "test") & (frame["entry"] == entry)][0]


def edit_manifest(run_dir: Path, **changes) -> dict:
    m = json.loads((run_dir / "manifest.json").read_text())
    m.update(changes)
    (run_dir / "manifest.json").write_text(json.dumps(m))
    return m


def edit_board(run_dir: Path, **columns) -> None:
    board = read_frame(run_dir / "leaderboard.parquet")
    for column, value in columns.items():
        board[column] = value
    table = pa.Table.from_pandas(board, preserve_index=False)
    pq.write_table(table.cast(pq.read_schema(run_dir / "leaderboard.parquet")), run_dir / "leaderboard.parquet")


# ---------------------------------------------------------------- predictions files


def _set(row_value):
    def tamper(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[first_test_row(frame), "probability"] = row_value
        return frame
    return tamper


# case -> (how the predictions are tampered with, what the Error line must say besides the file)
BAD_PREDICTIONS = {
    "nan": (_set(float("nan")), "NaN"),
    "above-one": (_set(2.0), "outside [0, 1]"),
    "below-zero": (_set(-3.0), "outside [0, 1]"),
    "strings": (lambda f: f.assign(probability=f["probability"].astype(str)), "column 'probability' has type"),
    "no-probability": (lambda f: f.drop(columns=["probability"]), "column 'probability' is missing"),
    "missing-row": (lambda f: f.drop(index=[first_test_row(f)]), "lacks test images"),
    "repeated-row": (lambda f: pd.concat([f, f.loc[[first_test_row(f)]]]), "repeats an earlier"),
}


def tampered(tiny_run: Path, dest: Path, case: str) -> tuple[Path, str]:
    run_dir = copy_run(tiny_run, dest)
    tamper, expected = BAD_PREDICTIONS[case]
    write_frame(run_dir / "predictions.parquet", tamper(read_frame(run_dir / "predictions.parquet")))
    return run_dir, expected


def assert_no_value_quoted(last: str) -> None:
    """The message names ids and counts, never a probability the file holds."""
    for value in ("2.0", "-3.0"):
        assert value not in last.lower(), last


@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_compare_run_against_run_refuses_bad_predictions(tiny_run, tmp_path, case):
    a = copy_run(tiny_run, tmp_path / "a")
    b, expected = tampered(tiny_run, tmp_path / "b", case)
    last = assert_one_error(cli("compare", b, "--against", a, "--n-boot", 5), str(b / "predictions.parquet"), expected)
    assert_no_value_quoted(last)
    # the same file as run A: named too
    assert_one_error(cli("compare", a, "--against", b, "--n-boot", 5), str(b / "predictions.parquet"), expected)


def test_compare_with_published_reads_predictions_only_through_the_validation(tiny_run, tmp_path):
    # No intervals in the board: compare recomputes them from the predictions, which must be valid.
    run_dir, expected = tampered(tiny_run, tmp_path / "run", "nan")
    edit_board(run_dir, ci_low=np.nan, ci_high=np.nan)
    assert_one_error(cli("compare", run_dir, "--n-boot", 5), str(run_dir / "predictions.parquet"), expected)


@pytest.mark.parametrize("case", ["above-one", "strings", "missing-row"])
def test_submit_refuses_bad_predictions(tiny_run, tmp_path, case):
    run_dir, expected = tampered(tiny_run, tmp_path / "run", case)
    target = tmp_path / "board.parquet"
    last = assert_one_error(cli("submit", run_dir, "--leaderboard", target, *source_args(tiny_run)),
                            "predictions.parquet", expected)
    assert_no_value_quoted(last)
    assert not target.exists()


def test_a_backbones_own_predictions_are_validated_when_ensembles_are_built(tiny_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir, ignore=shutil.ignore_patterns("*.pt"))
    path = run_dir / "backbones" / "resnet10t" / "predictions.parquet"
    frame = read_frame(path)
    frame.loc[frame.index[-1], "probability"] = float("inf")
    write_frame(path, frame)
    board = (run_dir / "leaderboard.parquet").read_bytes()
    result = cli("run", BENCH, "--demo", "--ensemble-only", run_dir, "--backbones", "resnet10t", "--ensembles", "ctp",
                 "--epochs", 1, "--image-size", 32, "--bootstrap", 10, "--workers", 1, "--quiet")
    assert_one_error(result, str(path), "infinite")
    assert (run_dir / "leaderboard.parquet").read_bytes() == board


# ---------------------------------------------------------------- the run's leaderboard rows


def test_submit_with_repeated_leaderboard_rows_is_one_line(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    board = read_frame(run_dir / "leaderboard.parquet")
    write_frame(run_dir / "leaderboard.parquet", pd.concat([board, board.iloc[:2]]))
    target = tmp_path / "board.parquet"
    assert_one_error(cli("submit", run_dir, "--leaderboard", target, *source_args(tiny_run)),
                     "leaderboard.parquet", "duplicated rows")
    assert not target.exists()


def test_submit_with_missing_leaderboard_rows_is_one_line(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    board = read_frame(run_dir / "leaderboard.parquet")
    write_frame(run_dir / "leaderboard.parquet", board[board["entry"] != "ctp"])
    assert_one_error(cli("submit", run_dir, "--leaderboard", tmp_path / "board.parquet", *source_args(tiny_run)),
                     "leaderboard.parquet", "lacks", "ctp/")


def test_provenance_comes_from_the_manifest_not_the_rows(tiny_run, tmp_path):
    # Chosen: replace, not refuse. Provenance cannot be recomputed; the manifest is the record submit
    # checked (source sha256, split, versions), so the board carries its values and says what it replaced.
    run_dir = copy_run(tiny_run, tmp_path / "run")
    edit_board(run_dir, device="cuda: NVIDIA H100", wall_time_s=0.001, mlbench_version="99.0", git_commit="f" * 40)
    target = tmp_path / "board.parquet"
    result = cli("submit", run_dir, "--leaderboard", target, *source_args(tiny_run))
    assert result.exit_code == 0, result.output[-2000:]
    assert "replaced what the rows said in" in result.output
    for column in ("device", "wall_time_s", "mlbench_version", "git_commit"):
        assert column in result.output
    m = json.loads((run_dir / "manifest.json").read_text())
    rows = read_frame(target)
    assert (rows["device"] == m["device"]).all() and "H100" not in m["device"]
    assert (rows["mlbench_version"] == m["versions"]["mlbench"]).all()
    assert (rows["git_commit"].isna() if m["git_commit"] is None else rows["git_commit"] == m["git_commit"]).all()
    assert (rows["run_id"] == m["run_id"]).all() and (rows["seed"] == m["seed"]).all()
    backbone = rows["entry"] == "resnet10t"
    assert np.allclose(rows.loc[backbone, "wall_time_s"], m["stages"]["train:resnet10t"]["seconds"])
    assert m["stages"]["train:resnet10t"]["seconds"] != 0.001
    assert rows.loc[~backbone, "wall_time_s"].isna().all()  # ensembles have no training time


# ---------------------------------------------------------------- boards that cannot be written


def unwritable(tmp: Path, case: str) -> tuple[Path, str]:
    if case == "proc":
        return Path("/proc/sys/x.parquet"), "/proc/sys"
    if case == "under-a-file":
        (tmp / "FILE").write_text("not a folder")
        return tmp / "FILE" / "x.parquet", "is a file"
    folder = tmp / "boards"  # a folder holding a parquet file pyarrow would read as a dataset
    folder.mkdir()
    pq.write_table(pa.table({"x": [1]}), folder / "part.parquet")
    return folder, "is a folder"


@pytest.mark.parametrize("case", ["proc", "under-a-file", "folder"])
def test_a_board_that_cannot_be_written_is_one_line(tiny_run, tmp_path, case):
    if case == "proc" and not Path("/proc/sys").is_dir():
        pytest.skip("no /proc/sys here")
    target, expected = unwritable(tmp_path, case)
    assert_one_error(cli("submit", copy_run(tiny_run, tmp_path / "run"), "--leaderboard", target,
                         *source_args(tiny_run)), str(target), expected)
    leftovers = list(target.parent.glob(f".{target.name}.*.tmp")) if target.parent.is_dir() else []
    assert not leftovers
    if case == "folder":
        assert [p.name for p in target.iterdir()] == ["part.parquet"]


@pytest.fixture
def real_run(tiny_run, tmp_path, monkeypatch):
    """The tiny run as if on real data: its corpus copied without the demo marker (same sha256), and
    the benchmark pinning that corpus as its canonical release (its own board takes no other file)."""
    import dataclasses

    from mlbench import CanonicalSource
    from mlbench.contracts.registry import get_registry
    from mlbench.data.canonical import content_sha256
    from mlbench.demo import MARKER_NAME

    data = tmp_path / "data"
    shutil.copytree(tiny_run / "demo-data", data)
    (data / MARKER_NAME).unlink()
    run_dir = copy_run(tiny_run, tmp_path / "real")
    m = edit_manifest(run_dir, dataset_kind="padchest")
    edit_board(run_dir, dataset_kind="padchest")
    pin = CanonicalSource("PADCHEST_demo_labels.csv", content_sha256(data / "PADCHEST_demo_labels.csv"), m["split_hash"])
    registry = get_registry()
    plain_create = registry.create

    def create(kind, name, /, **kwargs):
        made = plain_create(kind, name, **kwargs)
        return dataclasses.replace(made, canonical_sources=(pin,)) if kind == "benchmark" else made

    monkeypatch.setattr(registry, "create", create)
    return run_dir, ["--csv", data / "PADCHEST_demo_labels.csv", "--images", data / "images"]


def test_the_real_run_fixture_is_accepted_into_its_own_board(real_run, tmp_path):
    run_dir, source = real_run
    boards = tmp_path / "boards"
    result = cli("submit", run_dir, *source, env={"MLBENCH_LEADERBOARDS": str(boards)})
    assert result.exit_code == 0, result.output[-2000:]
    rows = read_frame(boards / f"{BENCH}.parquet")
    assert (rows["source"] == "published").any() and (rows["dataset_kind"] == "padchest").any()


@pytest.mark.parametrize("case", ["a-file", "proc"])
def test_leaderboards_env_that_cannot_hold_boards_is_one_line(real_run, tmp_path, case):
    run_dir, source = real_run
    if case == "proc":
        if not Path("/proc/sys").is_dir():
            pytest.skip("no /proc/sys here")
        folder, expected = Path("/proc/sys"), "cannot write"
    else:
        folder, expected = tmp_path / "FILE", "is a file"
        folder.write_text("not a folder")
    result = cli("submit", run_dir, *source, env={"MLBENCH_LEADERBOARDS": str(folder)})
    assert_one_error(result, str(folder / f"{BENCH}.parquet"), expected)


def test_a_full_filesystem_leaves_the_board_intact(tiny_run, tmp_path, monkeypatch):
    import mlbench.foundations.io

    target = tmp_path / "board.parquet"
    first = cli("submit", tiny_run, "--leaderboard", target, *source_args(tiny_run))
    assert first.exit_code == 0, first.output[-2000:]
    before = target.read_bytes()
    other = copy_run(tiny_run, tmp_path / "other")  # another run id, else the same run
    edit_manifest(other, run_id="another-run")
    edit_board(other, run_id="another-run")

    def full_disk(table, where, *args, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(mlbench.foundations.io.pq, "write_table", full_disk)
    last = assert_one_error(cli("submit", other, "--leaderboard", target, *source_args(tiny_run)), str(target),
                            os.strerror(errno.ENOSPC))
    assert "unchanged" in last
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["board.parquet"]  # no temp file left


# ---------------------------------------------------------------- leaderboard show


def test_show_of_another_benchmarks_file_is_one_line(tiny_run):
    board = tiny_run / "leaderboard.parquet"
    assert_one_error(cli("leaderboard", "show", "nih-cxr14", "--file", board), str(board), BENCH, "nih-cxr14")
    shown = cli("leaderboard", "show", BENCH, "--file", board)
    assert shown.exit_code == 0 and "ctp" in shown.output
