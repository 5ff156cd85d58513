"""What the CLI prints can be copied (issue 19): no wrapped paths, no truncated names, no markup from files.

CliRunner is off a terminal, as a log or a pipe is: rich would wrap there at 80 columns (or at
``COLUMNS``) and ellipsise table cells. Names from files (entries, labels) must print literally:
``[/oops]`` once crashed rich and ``[reverse]x[/reverse]`` turned into styling.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_checks import assert_one_error, cli

BENCH = "padchest-specific"
ODD_ENTRY = "[/oops]"
ODD_LABEL = "[reverse]x[/reverse]"
MATH_LABEL = "$x_{$"  # matplotlib would parse it as mathtext and fail


def long_dir(root: Path) -> Path:
    """A folder whose path is well over 200 characters."""
    path = root.joinpath(*(f"a-long-folder-name-{i}-" + "x" * 30 for i in range(5)))
    assert len(str(path)) > 200
    return path


def off_terminal_env(columns: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    return {**env, "COLUMNS": str(columns)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from mlbench.contracts.registry import get_registry

    registry = get_registry()
    dataset = registry.create("dataset", registry.create("benchmark", BENCH).dataset)
    return dataset.write_demo(tmp_path_factory.mktemp("corpus"), seed=0, n_patients=40, image_size=96)


def plugin_rows() -> list[dict]:
    listed = cli("plugins", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [r for r in json.loads(listed.output) if r["kind"] != "error"]
    assert any(len(r["name"]) > 10 for r in rows)  # names long enough to be cut in a narrow column
    return rows


def assert_every_plugin_whole(output: str, rows: list[dict]) -> None:
    lines = output.splitlines()
    for r in rows:
        assert any(r["name"] in line and r["plugin"] in line for line in lines), f"{r['name']!r} cut:\n{output}"
    assert "…" not in output, output


# ---------------------------------------------------------------- paths printed whole


def test_split_prints_a_long_out_path_whole_on_one_line(corpus, tmp_path):
    out = long_dir(tmp_path)
    result = cli("split", BENCH, "--csv", corpus.csv, "--out", out, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    wrote = [line for line in result.output.splitlines() if line.startswith("wrote ")]
    assert len(wrote) == 1, result.output
    for name in ("split.parquet", "labels.json", "summary.json"):
        assert str(out / name) in wrote[0], result.output
        assert (out / name).is_file()


def test_a_narrow_columns_log_keeps_paths_and_tables_whole(corpus, tmp_path):
    """A real process writing to a pipe (a log) with COLUMNS=40."""
    out = long_dir(tmp_path)
    ran = subprocess.run([sys.executable, "-m", "mlbench", "split", BENCH, "--csv", str(corpus.csv), "--out", str(out)],
                         capture_output=True, text=True, env=off_terminal_env(40), timeout=300)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert any(line.startswith("wrote ") and str(out / "summary.json") in line for line in lines), ran.stdout
    assert any(line.startswith("max per-label prevalence deviation: ") and "max allocation deviation: " in line
               for line in lines), ran.stdout
    assert any(line.startswith("split hash ") and len(line.split()[-1]) == 64 for line in lines), ran.stdout

    listed = subprocess.run([sys.executable, "-m", "mlbench", "plugins"], capture_output=True, text=True,
                            env=off_terminal_env(40), timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert_every_plugin_whole(listed.stdout, plugin_rows())


def test_an_error_naming_a_long_path_is_one_whole_line(tmp_path):
    board = long_dir(tmp_path) / "board.parquet"
    result = cli("leaderboard", "show", BENCH, "--file", board, env={"COLUMNS": "40"})
    assert_one_error(result, str(board))


# ---------------------------------------------------------------- tables never cut a name


def test_plugins_in_a_log_show_every_full_name_and_summary():
    rows = plugin_rows()
    result = cli("plugins", env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert_every_plugin_whole(result.output, rows)
    lines = result.output.splitlines()
    for r in rows:  # off a terminal a row is one line, summary included
        assert any(r["name"] in line and (r.get("summary") or "") in line for line in lines), r


def test_plugins_on_a_narrow_terminal_wrap_cells_but_keep_names_whole():
    rows = plugin_rows()
    result = cli("plugins", env={"COLUMNS": "40", "TTY_COMPATIBLE": "1", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert_every_plugin_whole(result.output, rows)


# ---------------------------------------------------------------- names from files are not markup


def board_rows(source: str) -> list[dict]:
    from mlbench.results.leaderboard import GLOBAL_LABEL

    rows = []
    for label, value, n in ((GLOBAL_LABEL, 0.7, None), (ODD_LABEL, 0.8, 9), (MATH_LABEL, 0.6, 4)):
        for entry, kind in ((ODD_ENTRY, "ensemble"), ("resnet10t", "backbone")):
            rows.append({"benchmark": BENCH, "benchmark_version": "1.0", "variant": "crop+aug", "dataset_kind": "real",
                         "split_hash": "0" * 64, "entry": entry, "entry_kind": kind, "label": label, "metric": "auc",
                         "value": value - (0.1 if source == "published" else 0.0), "ci_low": value - 0.05,
                         "ci_high": value + 0.05, "n_positive": n, "source": source, "run_id": f"{source}-1",
                         "backbones": "resnet10t", "loss": "weighted-bce", "seed": 0, "mlbench_version": "0",
                         "git_commit": None, "plugin_versions": "{}", "device": "cpu", "wall_time_s": 1.0,
                         "created_at": "2026-01-01T00:00:00Z", "schema_version": 1})
    return rows


@pytest.fixture
def odd_boards(tmp_path):
    """A run directory's leaderboard and a published board, both with odd entry and label names."""
    from mlbench.results import leaderboard
    from mlbench.results.rundir import RunDir

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    leaderboard.write(RunDir(run_dir).leaderboard_file, leaderboard.to_table(board_rows("run")))
    published = tmp_path / "published.parquet"
    leaderboard.write(published, leaderboard.to_table(board_rows("published")))
    return run_dir, published


def test_leaderboard_show_prints_odd_names_literally(odd_boards):
    _, published = odd_boards
    shown = cli("leaderboard", "show", BENCH, "--file", published)
    assert shown.exit_code == 0, shown.output
    assert any(ODD_ENTRY in line and "0.600" in line for line in shown.output.splitlines()), shown.output
    by_label = cli("leaderboard", "show", BENCH, "--file", published, "--label", ODD_LABEL)
    assert by_label.exit_code == 0, by_label.output
    assert f"{BENCH}: {ODD_LABEL} auc" in by_label.output  # the title
    assert any(ODD_ENTRY in line and "0.700" in line for line in by_label.output.splitlines()), by_label.output


def test_compare_prints_odd_names_literally_and_draws_them(odd_boards, tmp_path):
    run_dir, published = odd_boards
    png = tmp_path / "bars.png"
    result = cli("compare", run_dir, "--file", published, "--png", png, "--entry", ODD_ENTRY)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.strip().startswith(f"{ODD_ENTRY} vs published {ODD_ENTRY}") for line in lines), result.output
    assert any(ODD_LABEL in line and "0.800" in line and "0.700" in line for line in lines), result.output
    assert any(MATH_LABEL in line for line in lines), result.output
    assert f"wrote {png}" in lines
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bars_show_a_description_literally():
    from rich.console import Console

    from mlbench.training.progress import Reporter

    progress = Reporter("bars").bars()
    progress.add_task(f"training {ODD_ENTRY} {ODD_LABEL}", total=2)
    console = Console(file=io.StringIO(), width=200)
    console.print(progress.get_renderable())
    assert f"training {ODD_ENTRY} {ODD_LABEL}" in console.file.getvalue()
