"""A benchmark that ships no published board: `compare` and `report --against published` say so in
one line and point at the comparison that does work, run against run."""

from __future__ import annotations

import pytest

from cli_checks import assert_one_error, cli, finished_tiny_run
from mlbench.results import leaderboard


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return finished_tiny_run(tmp_path_factory.mktemp("noboard") / "run")


@pytest.fixture
def no_board(monkeypatch, tmp_path):
    monkeypatch.setenv(leaderboard.LEADERBOARDS_ENV, str(tmp_path / "boards"))  # no board of the user's own
    monkeypatch.setattr(leaderboard, "published_board", lambda benchmark, registry=None: None)


def test_compare_without_a_published_board_points_at_run_versus_run(run_dir, no_board):
    line = assert_one_error(cli("compare", run_dir, "--n-boot", "5"), "ships no published board")
    assert "--against OTHER_RUN_DIR" in line and str(run_dir) in line


def test_report_against_published_without_a_board_says_the_same(run_dir, no_board, tmp_path):
    line = assert_one_error(cli("report", run_dir, "--against", "published", "--out", tmp_path / "r.html"),
                            "ships no published board")
    assert "--against OTHER_RUN_DIR" in line


def test_a_board_given_with_file_is_read_instead(run_dir, no_board):
    # The run's own leaderboard as the board: read (it holds no published rows), not refused unread.
    line = assert_one_error(cli("compare", run_dir, "--n-boot", "5", "--file", run_dir / "leaderboard.parquet"),
                            "has no published rows")
    assert "ships no published board" not in line
