"""`mlbench leaderboard show` reads its board with pyarrow and no pandas (issue 24, part 2): the same rows in
the same order, and the same printed table, as the pandas implementation it replaced.

The reference below is that pandas implementation (filter, ``sort_values``, then entries ranked by
:func:`mlbench.results.profiles.ranked_entries`), run on every shipped board under every scoring profile and
every selection, and on a board built to hold what the shipped ones lack: ties, missing values, a missing
variant, run rows beside published ones, synthetic rows.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import mlbench
from mlbench.cli import main
from mlbench.results import leaderboard
from mlbench.results.leaderboard import COLUMNS, GLOBAL_LABEL, LOWER_IS_BETTER, LeaderboardError
from mlbench.results.profiles import PROFILES, ranked_entries, shown_rows, shown_table

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {
    "padchest-specific": REPO / "benchmarks" / "padchest" / "mlbench_padchest" / "leaderboards" / "padchest-specific.parquet",
    "padchest-general": REPO / "benchmarks" / "padchest" / "mlbench_padchest" / "leaderboards" / "padchest-general.parquet",
    "nih-cxr14": REPO / "benchmarks" / "nih" / "mlbench_nih" / "leaderboards" / "nih-cxr14.parquet",
}
KEYS = ["variant", "source", "run_id", "entry"]


def reference(board: pd.DataFrame, profile, *, label=None, metric=None, variant=None, source=None) -> pd.DataFrame:
    """The pandas implementation `leaderboard show` had before its pyarrow path, but for a row with no variant:
    it is last now, as the selection's own sort puts it (that code ordered it by its text, "nan" with pandas 3
    and "None" with pandas 2)."""
    label, metric = label or GLOBAL_LABEL, metric or profile.primary
    selected = board
    for column, wanted in (("metric", metric), ("label", label), ("variant", variant), ("source", source)):
        if wanted is not None:
            selected = selected[selected[column] == wanted]
    rows = selected.sort_values(["variant", "value"], ascending=[True, metric in LOWER_IS_BETTER],
                                na_position="last", kind="stable").reset_index(drop=True)
    wanted_keys = set(rows[KEYS].itertuples(index=False, name=None))
    pool = board[[key in wanted_keys for key in board[KEYS].itertuples(index=False, name=None)]]
    rank = {e: i for i, e in enumerate(ranked_entries(pool, profile, keys=KEYS, label=label, first=metric))}
    shown = list(rows[KEYS].itertuples(index=False, name=None))
    order = sorted(range(len(rows)), key=lambda i: (plain(shown[i][0]) is None, str(shown[i][0]), rank[shown[i]]))
    return rows.iloc[order].reset_index(drop=True)


def plain(value):
    """A cell as both paths agree on it: a missing value (None or NaN) is None, a whole float an int."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    return [{c: plain(v) for c, v in row.items()} for row in frame.to_dict("records")]


def selections(board: pd.DataFrame):
    """Every metric, the macro row and one label, every variant and none, each source and none."""
    labels = [None] + [x for x in dict.fromkeys(board["label"]) if x != GLOBAL_LABEL][:1]
    variants = [None] + sorted(board["variant"].dropna().unique())
    sources = [None] + sorted(board["source"].dropna().unique())
    for metric, label, variant, source in itertools.product(sorted(board["metric"].unique()), labels, variants,
                                                            sources):
        yield {"metric": metric, "label": label, "variant": variant, "source": source}


def assert_same_rows(table, board: pd.DataFrame) -> int:
    """shown_table (pyarrow) and shown_rows (pandas) give the reference's rows for every selection and profile."""
    checked = 0
    for profile, chosen in itertools.product(PROFILES.values(), selections(board)):
        expected = reference(board, profile, **chosen)
        if expected.empty:  # a selection matching nothing is refused: by both paths alike
            with pytest.raises(LeaderboardError, match="no leaderboard row with"):
                shown_table(table, profile, **chosen)
            with pytest.raises(LeaderboardError, match="no leaderboard row with"):
                shown_rows(board, profile, **chosen)
            continue
        arrow_rows = [{c: plain(v) for c, v in row.items()} for row in shown_table(table, profile, **chosen).to_pylist()]
        assert arrow_rows == records(expected), (profile.name, chosen)
        pd.testing.assert_frame_equal(shown_rows(board, profile, **chosen), expected)
        checked += 1
    return checked


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_pyarrow_path_ranks_every_shipped_board_as_pandas_did(name):
    table = leaderboard.board_table(name, SHIPPED[name])
    assert assert_same_rows(table, table.to_pandas()) > 10


def built_board(tmp_path: Path) -> Path:
    """A board with what the shipped ones lack: ties on auc broken by auprc, missing values and counts, a row
    with no variant, a run's rows beside the published ones (same entry names, another run_id), synthetic data."""
    base = {c: None for c in COLUMNS}
    base.update(benchmark="padchest-specific", benchmark_version="1.0", dataset_kind="padchest", split_hash="h",
                entry_kind="backbone", schema_version=1)
    rows = []
    entries = {  # entry -> (auc, auprc, n_positive, ci)
        "tied-low": (0.80, 0.20, 120, (0.75, 0.85)), "tied-high": (0.80, 0.60, None, None),
        "best": (0.90, 0.10, 300, (0.88, 0.92)), "unknown": (math.nan, 0.50, None, None),
        "worst": (0.55, math.nan, 7, (0.50, 0.60)),
    }
    for variant, source, run_id, kind in (("crop+aug", "published", "paper", "padchest"),
                                          ("crop+aug", "run", "r1", "synthetic"), (None, "run", "r2", "padchest"),
                                          ("none", "published", "paper", "padchest")):
        for entry, (auc, auprc, n_pos, ci) in entries.items():
            for label in (GLOBAL_LABEL, "cardiomegaly"):
                for metric, value in (("auc", auc), ("auprc", auprc), ("hamming", 1 - auc if auc == auc else auc)):
                    low, high = ci or (None, None)
                    rows.append({**base, "variant": variant, "source": source, "run_id": run_id, "dataset_kind": kind,
                                 "entry": entry, "label": label, "metric": metric, "value": value,
                                 "ci_low": low, "ci_high": high, "n_positive": n_pos})
    path = tmp_path / "board.parquet"
    leaderboard.write(path, leaderboard.to_table(rows))
    return path


def test_the_pyarrow_path_ranks_ties_missing_values_and_mixed_sources_as_pandas_did(tmp_path):
    table = leaderboard.board_table("padchest-specific", built_board(tmp_path))
    assert assert_same_rows(table, table.to_pandas()) > 10


def test_show_leaderboard_returns_the_same_rows_as_a_frame_and_as_a_table(tmp_path):
    path = built_board(tmp_path)
    frame = mlbench.show_leaderboard("padchest-specific", file=path, profile="cxr-lt", label="cardiomegaly")
    table = mlbench.show_leaderboard("padchest-specific", file=path, profile="cxr-lt", label="cardiomegaly",
                                     arrow=True)
    assert [{c: plain(v) for c, v in r.items()} for r in table.to_pylist()] == records(frame)
    about = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert about == {"file": str(path), "metric": "auprc", "profile": "cxr-lt"}
    assert frame.attrs["file"] == str(path) and frame.attrs["metric"] == "auprc"
    assert frame.attrs["profile"] is PROFILES["cxr-lt"]
    # the frame is what the pandas path gave: the whole board converted, then its rows taken
    board = leaderboard.rows_of("padchest-specific", path)
    pd.testing.assert_frame_equal(frame, reference(board, PROFILES["cxr-lt"], label="cardiomegaly"))


def printed_rows(output: str) -> list[list[str]]:
    """The body rows of the table `leaderboard show` printed, cell by cell."""
    lines = [line for line in output.splitlines() if line.startswith("│")]
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in lines]


def expected_cells(frame: pd.DataFrame, mixed: bool) -> list[list[str]]:
    """What each row of the table says, from the pandas reference."""
    def number(x):
        return "-" if plain(x) is None else f"{x:.3f}"

    out = []
    for r in records(frame):
        ci = "-" if r["ci_low"] is None or r["ci_high"] is None else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        cells = [r["variant"] or "", r["entry"], number(r["value"]), ci,
                 "-" if r["n_positive"] is None else str(int(r["n_positive"])), f"{r['source']} {r['run_id']}"]
        out.append(cells + ([r["dataset_kind"]] if mixed else []))
    return out


@pytest.mark.parametrize("args", [("padchest-specific", "--metric", "auc"), ("padchest-general", "--metric", "f1"),
                                  ("nih-cxr14", "--label", "Cardiomegaly"),
                                  ("padchest-specific", "--metric", "hamming", "--variant", "none")])
def test_the_printed_table_of_a_shipped_board_is_the_pandas_result(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no board of one's own: the shipped one
    name, options = args[0], dict(zip(args[1::2], args[2::2]))
    done = CliRunner().invoke(main, ["leaderboard", "show", *args])
    assert done.exit_code == 0, done.output
    board = leaderboard.rows_of(name, SHIPPED[name])
    expected = reference(board, PROFILES["paper"], label=options.get("--label"), metric=options.get("--metric"),
                         variant=options.get("--variant"))
    assert str(SHIPPED[name]) in done.output.replace("\n", "")
    assert printed_rows(done.output) == expected_cells(expected, mixed=False)


def test_the_printed_table_of_a_mixed_board_is_the_pandas_result(tmp_path):
    path = built_board(tmp_path)
    for options in ([], ["--profile", "cxr-lt"], ["--metric", "hamming", "--label", "cardiomegaly"],
                    ["--source", "run"]):
        done = CliRunner().invoke(main, ["leaderboard", "show", "padchest-specific", "--file", str(path), *options])
        assert done.exit_code == 0, done.output
        given = dict(zip(options[::2], options[1::2]))
        profile = PROFILES[given.get("--profile", "paper")]
        expected = reference(leaderboard.rows_of("padchest-specific", path), profile, label=given.get("--label"),
                             metric=given.get("--metric"), source=given.get("--source"))
        assert printed_rows(done.output) == expected_cells(expected, mixed=True), options


def test_a_selection_matching_nothing_is_one_line_naming_what_the_board_has(tmp_path):
    done = CliRunner().invoke(main, ["leaderboard", "show", "padchest-specific", "--file", str(built_board(tmp_path)),
                                     "--variant", "crop"])
    assert done.exit_code == 1 and "Traceback" not in done.output
    assert done.output.strip().splitlines() == [
        "Error: no leaderboard row with variant 'crop'; this selection has variants: crop+aug, none"]
