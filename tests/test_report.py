"""``mlbench report`` on a tiny real run (40-patient demo corpus, resnet10t, 2 epochs, 32 px) and on a
small remedy grid: the numbers shown are the leaderboard's, every section is there, nothing is fetched."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlbench.results import leaderboard
from mlbench.cli import main
from mlbench.data.imbalance import imbalance_by_split
from mlbench.foundations.io import write_json
from mlbench.results.leaderboard import GLOBAL_LABEL, METRICS
from mlbench.report import ReportError, write_report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished run with `mlbench explain` output inside it (RUN_DIR/explain)."""
    from mlbench.training.runner import RunOptions, run

    root = tmp_path_factory.mktemp("report")
    result = run(RunOptions(benchmark="padchest-specific", out=root / "run", demo=True, demo_dir=root / "demo",
                            demo_options={"n_patients": 40, "image_size": 96, "n_corrupt": 0}, image_size=32,
                            backbones=("resnet10t",), max_epochs=2, workers=1, progress=False, n_boot=20))
    explained = CliRunner().invoke(main, ["explain", str(result.run_dir), "--split", "test", "--limit", "4",
                                          "--labels", "normal", "--out", str(result.run_dir / "explain"),
                                          "--boxes", str(root / "demo" / "findings.csv"),
                                          "--lungs", str(root / "demo" / "lungs.csv"), "--device", "cpu"], catch_exceptions=False)
    assert explained.exit_code == 0, explained.output
    return result.run_dir


@pytest.fixture(scope="module")
def report(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "report.html"
    result = CliRunner().invoke(main, ["report", str(run_dir), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    return out.read_text(encoding="utf-8")


class Tables(HTMLParser):
    """Every table's cells: table id -> rows -> (text, data-value or None); plus every tag's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self._table: str | None = None
        self._cell: list | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attrs.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.tables[self._table].append([])
        elif tag == "td" and self._in_body:
            self._cell = ["", attrs.get("data-value")]

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append((self._cell[0], self._cell[1]))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data


def parse(text: str) -> Tables:
    parser = Tables()
    parser.feed(text)
    return parser


def _board(run_dir: Path) -> pd.DataFrame:
    return leaderboard.read(run_dir / "leaderboard.parquet").to_pandas()


def test_global_table_numbers_equal_the_leaderboard(run_dir, report):
    board = _board(run_dir)
    rows = parse(report).tables["global-table"]
    entries = [r[0][0] for r in rows]
    assert entries == ["resnet10t", "ctp", "ptc-lw", "ptc-mode"]
    checked = 0
    for row in rows:
        for i, metric in enumerate(METRICS):
            text, exact = row[2 + 2 * i]
            want = board[(board["entry"] == row[0][0]) & (board["label"] == GLOBAL_LABEL) & (board["metric"] == metric)]
            value = float(want["value"].iloc[0])
            if np.isnan(value):
                assert text == "–" and exact == ""
                continue
            assert text == f"{value:.4f}" and float(exact) == value
            low, high = float(want["ci_low"].iloc[0]), float(want["ci_high"].iloc[0])
            assert row[3 + 2 * i][0] == f"[{low:.4f}, {high:.4f}]"
            checked += 1
    assert checked >= 16
    ctp = board[(board["entry"] == "ctp") & (board["label"] == GLOBAL_LABEL) & (board["metric"] == "auc")]["value"]
    assert re.search(rf'id="headline">ctp macro ROC AUC <b data-value="{re.escape(repr(float(ctp.iloc[0])))}">'
                     rf"{float(ctp.iloc[0]):.4f}</b>", report)


def test_per_label_and_group_numbers_equal_the_leaderboard(run_dir, report):
    board = _board(run_dir)
    auc = board[board["metric"] == "auc"].set_index(["entry", "label"])["value"]
    tables = parse(report).tables
    rows = tables["label-table"]
    split = pd.read_parquet(run_dir / "split.parquet")
    labels = [c for c in split.columns if c not in ("image_id", "patient_id", "split")]
    assert sorted(r[0][0] for r in rows) == sorted(labels)
    train = split[split["split"] == "train"][labels].sum()
    assert [int(r[1][0]) for r in rows] == sorted(train.tolist(), reverse=True)  # most frequent first
    for row in rows:
        for j, entry in enumerate(["resnet10t", "ctp", "ptc-lw", "ptc-mode"]):
            value = float(auc[(entry, row[0][0])])
            text, exact = row[4 + j]
            assert (text, exact) == (("–", "") if np.isnan(value) else (f"{value:.4f}", repr(value)))
    for row in tables["group-table"]:
        for j, group in enumerate(("frequent", "medium", "rare")):
            key = (row[0][0], f"__group_{group}__")
            value = float(auc[key]) if key in auc.index else float("nan")
            assert row[1 + j][0] == ("–" if np.isnan(value) else f"{value:.4f}")


def test_every_section_is_there(run_dir, report):
    tables = parse(report).tables
    m = json.loads((run_dir / "manifest.json").read_text())
    for needle in (m["run_id"], m["split_hash"], m["git_commit"], m["device"], "crop+aug", "padchest-specific",
                   "(version 1.0)", "mlbench-imbalanced==0.1.0"):
        assert needle in report
    assert [r[0][0] for r in tables["stages-table"]] == list(m["stages"])
    skips = {(s, r): int(n[0]) for (s, _), (r, _), n in tables["skips-table"]}
    assert skips == {tuple(k.split(":", 1)): v for k, v in m["skipped"]["counts"].items()}
    assert f"Skipped: {m['skipped']['total']} items" in report
    # the forest plot, the prevalence plot with its trend lines, one training curve per backbone
    assert re.search(r'<div id="forest-ctp"><svg class="plot"', report)
    # one reliability diagram per entry and frequency group, from the stored test predictions
    for entry in ("resnet10t", "ctp", "ptc-lw", "ptc-mode"):
        for group in ("frequent", "medium", "rare"):
            assert f'<figure class="reliability" id="reliability-{entry}-{group}"><svg class="plot"' in report
    assert 'aria-label="ROC AUC against label prevalence (log scale)"' in report and "/decade)" in report
    history = json.loads((run_dir / "backbones" / "resnet10t" / "history.json").read_text())
    assert f"chosen epoch {history['best_epoch']}" in report
    assert "Source: backbones/resnet10t/history.json" in report
    # imbalance per split, computed from split.parquet
    split = pd.read_parquet(run_dir / "split.parquet")
    labels = [c for c in split.columns if c not in ("image_id", "patient_id", "split")]
    expected = imbalance_by_split(split[labels].to_numpy(), labels, split["split"].to_numpy())
    shown = {r[0][0]: r for r in tables["imbalance-table"]}
    assert set(shown) == set(expected) == {"all", "train", "val", "test"}
    for name, measures in expected.items():
        assert shown[name][2][0] == f"{measures.mean_ir:.3f}" and shown[name][5][0] == f"{measures.scumble:.4f}"
    # the explain gallery: panels embedded, titles as explain wrote them, cam_ rows as the leaderboard has them
    summary = json.loads((run_dir / "explain" / "explain.json").read_text())
    assert report.count('src="data:image/png;base64,') >= len(summary["images"])
    assert "normal — p=" in report and "per-pixel std of the models' maps" in report
    cam = _board(run_dir).query("entry_kind == 'explainer'")
    assert len(tables["cam-table"]) == len(cam) > 0


def test_nothing_refers_outside_the_file(report):
    parsed = parse(report)
    for tag, attrs in parsed.attrs:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "#")), (tag, name, value[:80])
    assert not re.search(r"url\((?!\s*['\"]?data:)", report)
    assert not re.search(r"(https?|ftp|wss?)://", report, re.I)
    assert not re.search(r"@import|<link\b|<iframe\b", report, re.I)
    assert "Content-Security-Policy" in report and "default-src 'none'" in report
    assert len(report.encode()) < 8_000_000


def test_synthetic_runs_carry_a_banner_and_real_ones_do_not(run_dir, report, tmp_path):
    assert 'class="banner"' in report and "SYNTHETIC DATA" in report
    assert "<title>[SYNTHETIC]" in report
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("leaderboard.parquet", "split.parquet"):
        shutil.copy(run_dir / name, copy / name)
    m = json.loads((run_dir / "manifest.json").read_text())
    write_json(copy / "manifest.json", {**m, "dataset_kind": "padchest"})
    text = write_report(copy, tmp_path / "real.html").read_text()
    assert 'class="banner"' not in text and "SYNTHETIC" not in text
    assert "<h2>Training curves" not in text and "Gallery from" not in text  # nothing to show, no empty section


def test_against_published_shows_the_published_values(run_dir, tmp_path):
    from mlbench.judging.compare import compare_run

    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", str(run_dir), "--against", "published", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    comparison = compare_run(run_dir, metric="auc")
    published = comparison.rows[comparison.rows["entry"] == "ctp"].set_index("label")["published"]
    rows = parse(text).tables["label-table"]
    assert len(rows[0]) == 4 + 4 + 4  # label, counts, prevalence; four entries; their published values
    for row in rows:
        value = float(published[row[0][0]])
        assert row[8 + 1][0] == f"{value:.4f}"  # ctp is the second entry
    assert "published: ctp (crop+aug)" in text and "NOT COMPARABLE" in text


def test_explain_folder_elsewhere_and_mistakes_are_one_line(run_dir, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(run_dir / "explain", moved)
    result = CliRunner().invoke(main, ["report", str(run_dir), "--explain", str(moved), "--out",
                                       str(tmp_path / "r.html")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"Gallery from {moved}" in (tmp_path / "r.html").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, expected in (([str(empty)], "manifest.json"),
                           ([str(run_dir), "--explain", str(empty)], "no explain.json")):
        result = CliRunner().invoke(main, ["report", *args, "--out", str(tmp_path / "x.html")])
        assert result.exit_code == 1 and expected in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


# -- grids -----------------------------------------------------------------------------------------
def _grid(tmp_path: Path, rows: list[dict]) -> Path:
    grid = tmp_path / "grid"
    for seed in (0, 1):
        cell = grid / "cells" / "focal" / f"seed-{seed}"
        cell.mkdir(parents=True)
        write_json(cell / "manifest.json", {"run_id": f"cell-{seed}", "dataset_kind": "synthetic",
                                            "backbones": ["resnet10t"]})
    pq.write_table(pa.Table.from_pylist(rows), grid / "comparison.parquet")
    return grid


def _row(scope, name, difference, low, high, verdict, metric="auc", remedy="focal", p_adjusted=0.0123):
    return {"remedy": remedy, "baseline": "weighted-bce", "entry": "resnet10t", "scope": scope, "name": name,
            "metric": metric, "difference": difference, "ci_low": low, "ci_high": high, "n_seeds": 2,
            "p_value": p_adjusted, "p_adjusted": p_adjusted, "verdict": verdict}


def test_grid_report_shows_paired_differences_per_frequency_group(tmp_path):
    rows = [_row("group", "rare", 0.0412345, 0.011, 0.072, "helps"), _row("macro", "__global__", 0.01, -0.02, 0.03,
                                                                          "no evidence"),
            _row("group", "frequent", -0.03, -0.05, -0.01, "hurts"), _row("group", "medium", 0.002, -0.01, 0.015,
                                                                          "no evidence"),
            _row("label", "nodule", 0.12, 0.02, 0.2, "helps"), _row("macro", "__global__", 0.02, 0.01, 0.03, "helps",
                                                                    metric="auprc", remedy="oversample")]
    grid = _grid(tmp_path, rows)
    out = tmp_path / "grid.html"
    result = CliRunner().invoke(main, ["report", str(grid), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    tables = parse(text).tables
    shown = tables["grid-table"]
    assert len(shown) == len(rows)
    focal = [r for r in shown if r[0][0] == "focal"]
    # macro first, then the groups in frequency order, then labels
    assert [(r[3][0], r[4][0]) for r in focal] == [("macro", "__global__"), ("group", "frequent"),
                                                  ("group", "medium"), ("group", "rare"), ("label", "nodule")]
    rare = next(r for r in focal if r[4][0] == "rare")
    assert rare[6] == ("0.0412", repr(0.0412345)) and rare[7][0] == "[0.0110, 0.0720]"
    assert rare[9] == ("0.0123", repr(0.0123)) and rare[10][0] == "helps"
    assert "Holm-adjusted p-value is below 0.05" in text
    assert 'id="remedy-focal"' in text and 'id="remedy-oversample"' in text
    assert "focal: ROC AUC difference by frequency group" in text and "resnet10t · rare" in text
    assert "oversample: AUPRC difference by frequency group" in text
    assert "nodule" not in text.split('id="all-rows"')[0]  # labels only in the table, not in the group plot
    assert [r[2][0] for r in tables["cells-table"]] == ["0", "1"]
    assert "SYNTHETIC DATA" in text  # the cells ran on the demo corpus
    assert not re.search(r"(https?)://", text)


def test_a_grid_written_before_holm_adjustment_still_reports(tmp_path):
    old = {k: v for k, v in _row("macro", "__global__", 0.01, -0.02, 0.03, "no evidence").items()
           if k not in ("p_value", "p_adjusted")}
    out = tmp_path / "old.html"
    write_report(_grid(tmp_path, [old]), out)
    (row,) = parse(out.read_text()).tables["grid-table"]
    assert row[9][0] == "–" and row[10][0] == "no evidence"


def test_grid_mistakes_name_the_row_and_field(tmp_path):
    grid = _grid(tmp_path, [_row("macro", "__global__", 0.01, -0.02, 0.03, "no evidence"),
                            _row("group", "rare", 0.01, -0.02, 0.03, "maybe")])
    with pytest.raises(ReportError, match=r"comparison.parquet: row 1: verdict 'maybe' is not one of"):
        write_report(grid, tmp_path / "g.html")
    pq.write_table(pa.table({"remedy": ["focal"]}), grid / "comparison.parquet")
    with pytest.raises(ReportError, match=r"comparison.parquet: missing columns \['baseline'"):
        write_report(grid, tmp_path / "g.html")
    with pytest.raises(ReportError, match="--against and --explain apply to run directories"):
        write_report(grid, tmp_path / "g.html", against="published")
