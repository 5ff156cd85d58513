"""mlbench compare / leaderboard show: verdicts only from intervals, loud about synthetic runs."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlbench.results import leaderboard, predictions
from mlbench.cli import main
from mlbench.judging.compare import CompareError, compare_run, plot_comparison, reference_entries
from mlbench.data.splits import split_table
from mlbench.foundations.io import write_json, write_parquet
from mlbench.results.leaderboard import (COLUMNS, GLOBAL_LABEL, LEADERBOARDS_ENV, LeaderboardError, find_board,
                                 published_board, select_rows)
from mlbench.results.metrics import MetricWarning

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "benchmarks" / "padchest" / "mlbench_padchest" / "leaderboards" / "padchest-specific.parquet"
WIDE = {"COLUMNS": "200"}  # rich wraps at 80 columns otherwise


def _row(**values):
    base = {c: None for c in COLUMNS}
    base.update(benchmark="padchest-specific", benchmark_version="1.0", variant="crop+aug", dataset_kind="padchest",
                split_hash="abc", entry_kind="backbone", source="run", run_id="r1", schema_version=1)
    base.update(values)
    return base


def _board(path: Path, rows: list[dict]) -> Path:
    leaderboard.write(path, leaderboard.to_table(rows))
    return path


def _published_auc(entry: str, label: str, variant: str = "crop+aug") -> float:
    b = pd.read_parquet(PUBLISHED)
    hit = b[(b.entry == entry) & (b.label == label) & (b.metric == "auc") & (b.variant == variant)]
    return float(hit["value"].iloc[0])


def _run_with(tmp_path: Path, cases: dict[str, tuple], *, entry="densenet201", kind="padchest") -> Path:
    """A run directory whose leaderboard holds AUC rows (value, ci_low, ci_high) per label."""
    run = tmp_path / f"run-{kind}-{entry}"
    rows = [_row(entry=entry, label=label, metric="auc", value=v, ci_low=lo, ci_high=hi, n_positive=n,
                 dataset_kind=kind) for label, (v, lo, hi, n) in cases.items()]
    _board(run / "leaderboard.parquet", rows)
    return run


def test_beats_published_only_when_the_published_value_is_below_the_interval(tmp_path):
    p_card = _published_auc("densenet201", "cardiomegaly")
    p_norm = _published_auc("densenet201", "normal")
    p_copd = _published_auc("densenet201", "COPD signs")
    p_pe = _published_auc("densenet201", "pleural effusion")
    run = _run_with(tmp_path, {
        "cardiomegaly": (p_card + 0.03, p_card + 0.01, p_card + 0.05, 900),      # whole CI above: beats
        "normal": (p_norm + 0.02, p_norm - 0.01, p_norm + 0.05, 5000),           # point above, CI straddles
        "COPD signs": (p_copd - 0.1, p_copd - 0.15, p_copd - 0.05, 1200),        # whole CI below
        "pleural effusion": (p_pe + 0.01, p_pe, p_pe + 0.02, 600),                # published == CI low: not beaten
        GLOBAL_LABEL: (0.9, None, None, 8000),                                   # no CI: no claim
    })
    result = compare_run(run, leaderboard_file=PUBLISHED)
    verdict = dict(zip(result.rows["label"], result.rows["verdict"]))
    assert verdict == {"cardiomegaly": "beats published", "normal": "within CI", "COPD signs": "below published",
                       "pleural effusion": "within CI", GLOBAL_LABEL: "no CI"}
    assert list(result.beats()["label"]) == ["cardiomegaly"]
    row = result.rows.set_index("label").loc["cardiomegaly"]
    assert row["reference"] == "densenet201" and row["delta"] == pytest.approx(0.03)
    assert result.comparable and result.ci_source == "run"


def test_synthetic_runs_are_loudly_not_comparable(tmp_path):
    p_card = _published_auc("ctp", "cardiomegaly")
    run = _run_with(tmp_path, {"cardiomegaly": (0.99, p_card + 0.01, 1.0, 3)}, entry="ctp", kind="synthetic")
    result = compare_run(run, leaderboard_file=PUBLISHED)
    assert not result.comparable
    assert any(n.startswith("NOT COMPARABLE") and "synthetic" in n for n in result.notes)
    assert any("without a multiplicity correction" in n for n in result.notes)  # per-label calls are not a family test
    assert result.beats().empty and set(result.rows["verdict"]) == {"not comparable"}
    out = CliRunner().invoke(main, ["compare", str(run), "--file", str(PUBLISHED)], env=WIDE)
    assert out.exit_code == 0, out.output
    assert "NOT COMPARABLE" in out.output and "none counted: not comparable" in out.output


def test_entries_without_a_published_namesake_face_the_best_published_entry(tmp_path):
    board = pd.read_parquet(PUBLISHED)
    published = board[(board.variant == "crop+aug") & (board.metric == "auc")]
    refs = reference_entries(published, ["resnet18", "densenet201", "ctp"], "auc")
    assert refs == {"resnet18": "ctp", "densenet201": "densenet201", "ctp": "ctp"}  # CTP has the best global AUC
    hamming = board[(board.variant == "crop+aug") & (board.metric == "hamming")]
    best_hamming = hamming.loc[hamming["value"].idxmin(), "entry"]
    assert reference_entries(hamming, ["resnet18"], "hamming") == {"resnet18": best_hamming}  # lower is better


def test_another_published_variant_can_be_chosen_and_a_missing_one_is_named(tmp_path):
    p = _published_auc("densenet201", "normal", variant="none")
    run = _run_with(tmp_path, {"normal": (p + 0.2, p + 0.1, p + 0.3, 100)})
    result = compare_run(run, variant="none", leaderboard_file=PUBLISHED)
    assert result.rows["published"].iloc[0] == pytest.approx(p)
    assert any("compared with published variant 'none'" in n for n in result.notes)
    with pytest.raises(CompareError, match="published variants: crop, crop\\+aug, none"):
        compare_run(run, variant="aug", leaderboard_file=PUBLISHED)


def _stored_run(tmp_path: Path) -> Path:
    """A run directory in the runner's file formats (no training): split, predictions, manifest, leaderboard."""
    rng = np.random.default_rng(0)
    labels = ["cardiomegaly", "normal", "nodule"]
    n = 90
    frame = pd.DataFrame({"image_id": [f"img{i:03d}.png" for i in range(n)],
                          "patient_id": [f"p{i // 2:03d}" for i in range(n)]})
    splits = np.where(np.arange(n) < 50, "train", "test")
    Y = (rng.random((n, 3)) < [0.4, 0.3, 0.1]).astype(np.uint8)
    run = tmp_path / "stored"
    write_parquet(run / "split.parquet", split_table(frame, Y, splits, labels))
    test = np.flatnonzero(splits == "test")
    probs = np.clip(0.4 * Y[test] + rng.random((len(test), 3)) * 0.6, 0, 1)
    ids = frame["image_id"].iloc[test].tolist()
    predictions.write(run / "predictions.parquet", [predictions.to_table(ids, ["test"] * len(ids), "densenet201",
                                                                          labels, probs)])
    write_json(run / "manifest.json", {"run_id": "r1", "backbones": ["densenet201"], "ensembles": [],
                                       "recipe": {"threshold": 0.5}})
    from mlbench.results.metrics import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        rows = [_row(entry="densenet201", **r) for r in evaluate(Y[test], probs, (probs >= 0.5).astype(int), labels)]
    _board(run / "leaderboard.parquet", rows)
    return run


def test_missing_intervals_are_computed_from_the_stored_predictions(tmp_path):
    run = _stored_run(tmp_path)
    result = compare_run(run, leaderboard_file=PUBLISHED, n_boot=200)
    assert result.ci_source.startswith("recomputed")
    assert any("no confidence intervals" in n for n in result.notes)
    rows = result.rows.set_index("label")
    for label in ("cardiomegaly", "normal", GLOBAL_LABEL):
        assert rows.loc[label, "ci_low"] <= rows.loc[label, "value"] <= rows.loc[label, "ci_high"]
    assert set(rows["verdict"]) <= {"beats published", "within CI", "below published"}
    assert (result.rows["beats_published"] == (result.rows["published"] < result.rows["ci_low"])).all()


def test_png_has_one_bar_pair_per_label_and_is_a_png(tmp_path):
    run = _stored_run(tmp_path)
    result = compare_run(run, leaderboard_file=PUBLISHED, n_boot=50)
    path = plot_comparison(result, tmp_path / "out" / "compare.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(CompareError, match="entry 'nope' is not in run"):
        plot_comparison(result, tmp_path / "x.png", entry="nope")
    out = CliRunner().invoke(main, ["compare", str(run), "--file", str(PUBLISHED), "--n-boot", "50",
                                    "--png", str(tmp_path / "cli.png"), "--json", str(tmp_path / "c.json")])
    assert out.exit_code == 0, out.output
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["comparable"] is True and len(saved["rows"]) == 4  # three labels and __global__
    assert (tmp_path / "cli.png").read_bytes()[:4] == b"\x89PNG"


def test_leaderboard_rows_filter_sort_and_name_what_exists():
    board = pd.read_parquet(PUBLISHED)
    rows = select_rows(board, variant="crop+aug")
    assert rows["entry"].iloc[0] == "ctp" and rows["value"].iloc[0] == pytest.approx(0.840)
    assert list(rows["value"]) == sorted(rows["value"], reverse=True)
    hamming = select_rows(board, metric="hamming", variant="crop+aug")
    assert list(hamming["value"]) == sorted(hamming["value"])  # lower is better
    card = select_rows(board, label="cardiomegaly", metric="f1", variant="none", source="published")
    assert len(card) == 8 and (card["label"] == "cardiomegaly").all()
    with pytest.raises(LeaderboardError, match="no leaderboard row with label 'nope'.*cardiomegaly"):
        select_rows(board, label="nope")


def test_leaderboard_files_are_found_and_a_missing_one_says_where_it_looked(tmp_path, monkeypatch):
    assert find_board("padchest-specific", PUBLISHED) == PUBLISHED
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LEADERBOARDS_ENV, raising=False)
    # No board of one's own yet: the published board the plugin ships as package data.
    assert find_board("padchest-specific").read_bytes() == PUBLISHED.read_bytes()
    own = _board(tmp_path / "boards" / "padchest-specific.parquet", [_row(entry="x", label=GLOBAL_LABEL,
                                                                          metric="auc", value=0.5)])
    monkeypatch.setenv(LEADERBOARDS_ENV, str(own.parent))
    assert find_board("padchest-specific") == own
    with pytest.raises(Exception, match="no benchmark named 'nothing-here'"):
        find_board("nothing-here")
    with pytest.raises(LeaderboardError, match="no such leaderboard file"):
        find_board("padchest-specific", tmp_path / "missing.parquet")


def test_show_command_prints_the_best_entry_first():
    out = CliRunner().invoke(main, ["leaderboard", "show", "padchest-specific", "--variant", "crop+aug",
                                    "--file", str(PUBLISHED)], env=WIDE)
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if "crop+aug" in line]
    assert "ctp" in lines[0] and "0.840" in lines[0]
    bad = CliRunner().invoke(main, ["leaderboard", "show", "padchest-specific", "--metric", "bogus",
                                    "--file", str(PUBLISHED)])
    assert bad.exit_code != 0 and "no leaderboard row with metric 'bogus'" in bad.output


def test_an_installed_plugin_can_ship_its_leaderboard(tmp_path, monkeypatch):
    import mlbench.contracts.registry
    from mlbench.contracts.registry import build_registry

    package = tmp_path / "site" / "shipped_bench"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from importlib import resources\n\n"
        "from mlbench import hookimpl\nfrom mlbench.contracts.benchmark import Benchmark, Recipe\n\n\n"
        "def make():\n    return Benchmark(name='shipped-bench', version='1.0', dataset='x', labels=('a',),\n"
        "        targets=lambda f: f, recipe=Recipe(backbones=('b',)), demo_recipe=Recipe(backbones=('b',)),\n"
        "        published_board=resources.files('shipped_bench') / 'leaderboards' / 'shipped-bench.parquet')\n\n\n"
        "@hookimpl\ndef register_benchmarks(register):\n    register('shipped-bench', make)\n")
    shipped = _board(package / "leaderboards" / "shipped-bench.parquet",
                     [_row(benchmark="shipped-bench", entry="x", label=GLOBAL_LABEL, metric="auc", value=0.5)])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    import shipped_bench

    registry = build_registry(entry_points=False, plugins=[shipped_bench])
    monkeypatch.setattr(mlbench.contracts.registry, "get_registry", lambda: registry)
    monkeypatch.delenv(LEADERBOARDS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert find_board("shipped-bench").resolve() == shipped.resolve()
    assert published_board("shipped-bench").resolve() == shipped.resolve()
