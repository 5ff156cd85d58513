"""Scoring profiles: cxr-lt ranks by mAP (auprc) where paper ranks by AUC, ties go to the next metric, and
compare, grid tables, boards and leaderboard show follow the profile; an unknown name is one line naming
--profile and the choices. Nothing here trains: runs, comparisons and a board's submission are made by hand
(the board's is an external bundle of hand-made predictions on a demo corpus)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import mlbench
from cli_checks import assert_one_error, cli
from mlbench.contracts.registry import get_registry
from mlbench.data.splits import split_table
from mlbench.foundations.io import write_json, write_parquet
from mlbench.judging.board import add_submission, build_board, init_board, open_board
from mlbench.judging.compare import compare_run, compare_runs
from mlbench.judging.submit import canonical_split
from mlbench.report.board import render_board
from mlbench.results import leaderboard, predictions
from mlbench.results.leaderboard import COLUMNS, GLOBAL_LABEL
from mlbench.results.metrics import MetricWarning
from mlbench.results.profiles import (PROFILES, ProfileError, ScoringProfile, get_profile, order_metrics, profile_of,
                                      rank_key, ranked_entries, shown_rows, sort_entries)

BENCH = "padchest-specific"
CXR_LT, PAPER = PROFILES["cxr-lt"], PROFILES["paper"]
WIDE = {"COLUMNS": "220"}
# Two entries whose AUC and mAP disagree: alpha has the better AUC, beta the better mAP.
DISAGREE = {"alpha": {"auc": 0.90, "auprc": 0.30, "f1": 0.50}, "beta": {"auc": 0.80, "auprc": 0.50, "f1": 0.40}}


def long_rows(values: dict[str, dict[str, float]], label: str = GLOBAL_LABEL) -> pd.DataFrame:
    """A leaderboard table by hand: one ``label`` row per entry and metric."""
    return pd.DataFrame([{"entry": e, "label": label, "metric": m, "value": v}
                         for e, by_metric in values.items() for m, v in by_metric.items()])


def row(**values) -> dict:
    base = {c: None for c in COLUMNS}
    base.update(benchmark=BENCH, benchmark_version=get_registry().create("benchmark", BENCH).version,
                variant="crop+aug", dataset_kind="padchest", split_hash="abc", entry_kind="backbone", source="run",
                run_id="r1", schema_version=1)
    base.update(values)
    return base


def run_with(folder: Path, values: dict[str, dict[str, float]], manifest: dict | None = None) -> Path:
    """A run directory holding a leaderboard (global and one label, with CIs) and, given, a manifest."""
    rows = [row(entry=e, label=label, metric=m, value=v, ci_low=v - 0.05, ci_high=v + 0.05, n_positive=50)
            for e, by_metric in values.items() for m, v in by_metric.items() for label in (GLOBAL_LABEL, "nodule")]
    leaderboard.write(folder / "leaderboard.parquet", leaderboard.to_table(rows))
    if manifest is not None:
        write_json(folder / "manifest.json", {"run_id": "r1", "benchmark": BENCH, **manifest})
    return folder


def published_with_auprc(path: Path) -> Path:
    """A published board reporting auc and auprc (the shipped PadChest board has no auprc)."""
    rows = [row(source="published", run_id="paper", entry="ctp", label=label, metric=m, value=0.6)
            for m in ("auc", "auprc", "f1") for label in (GLOBAL_LABEL, "nodule")]
    leaderboard.write(path, leaderboard.to_table(rows))
    return path


# -- ranking --------------------------------------------------------------------------------------------
def test_cxr_lt_ranks_by_map_where_auc_ranks_the_other_way_and_paper_by_auc():
    table = long_rows(DISAGREE)
    assert ranked_entries(table, CXR_LT) == [("beta",), ("alpha",)]
    assert ranked_entries(table, PAPER) == [("alpha",), ("beta",)]
    assert list(dict.fromkeys(sort_entries(table, CXR_LT)["entry"])) == ["beta", "alpha"]
    assert CXR_LT.primary == "auprc" and PAPER.primary == "auc"


def test_ties_go_to_the_next_metric_then_the_tables_order_and_missing_values_rank_last():
    table = long_rows({"first": {"auc": 0.8, "auprc": 0.2, "f1": 0.9}, "second": {"auc": 0.8, "auprc": 0.4, "f1": 0.1},
                       "none": {"auc": float("nan"), "auprc": 0.9}, "third": {"auc": 0.8, "auprc": 0.4, "f1": 0.1}})
    # paper: auc ties, auprc decides, then f1 ties too and the table's order stays; no auc ranks last
    assert ranked_entries(table, PAPER) == [("second",), ("third",), ("first",), ("none",)]
    # cxr-lt: auprc first
    assert ranked_entries(table, CXR_LT) == [("none",), ("second",), ("third",), ("first",)]


def test_a_lower_is_better_metric_ranks_its_smallest_value_first():
    calibrated = ScoringProfile("calibration", ("brier", "auc"), "Brier first")
    table = long_rows({"sharp": {"brier": 0.30, "auc": 0.9}, "calm": {"brier": 0.10, "auc": 0.7}})
    assert ranked_entries(table, calibrated) == [("calm",), ("sharp",)]
    assert rank_key({"brier": 0.1, "auc": 0.7}, calibrated) < rank_key({"brier": 0.3, "auc": 0.9}, calibrated)


def test_order_metrics_puts_the_profiles_metrics_first_in_its_order():
    given = ["auc", "auprc", "f1", "ece_15", "brier"]
    assert order_metrics(given, CXR_LT) == ["auprc", "auc", "f1", "ece_15", "brier"]
    assert order_metrics(["hamming", "f1", "auc"], CXR_LT) == ["auc", "f1", "hamming"]


def test_leaderboard_rows_of_one_metric_break_ties_by_the_profiles_next_metric():
    board = pd.DataFrame([dict(variant="crop+aug", source="published", run_id="p", entry=e, label=GLOBAL_LABEL,
                               metric=m, value=v)
                          for e, by_metric in {"tied-low": {"auc": 0.8, "auprc": 0.2}, "tied-high": {"auc": 0.8,
                                                                                                     "auprc": 0.6},
                                               "best": {"auc": 0.9, "auprc": 0.1}}.items()
                          for m, v in by_metric.items()])
    shown = shown_rows(board, PAPER)
    assert list(shown["entry"]) == ["best", "tied-high", "tied-low"] and set(shown["metric"]) == {"auc"}
    assert shown.attrs["metric"] == "auc" and shown.attrs["profile"] is PAPER
    assert list(shown_rows(board, CXR_LT)["entry"]) == ["tied-high", "tied-low", "best"]


# -- which profile --------------------------------------------------------------------------------------
def test_profile_of_reads_the_manifest_then_the_benchmark_then_paper():
    bench = get_registry().create("benchmark", BENCH)
    assert bench.scoring_profile == "paper"
    cxr_bench = dataclasses.replace(bench, scoring_profile="cxr-lt")
    assert profile_of({"scoring_profile": "cxr-lt"}, bench) is CXR_LT  # the run's own key wins
    assert profile_of({"scoring_profile": "paper"}, cxr_bench) is PAPER
    assert profile_of({}, cxr_bench) is CXR_LT
    assert profile_of({"run_id": "r"}, BENCH) is PAPER  # a registered benchmark by name
    assert profile_of({}) is PAPER and profile_of(None, "not-installed") is PAPER
    assert profile_of({"scoring_profile": "cxr-lt"}, bench, chosen="paper") is PAPER  # --profile wins


def test_an_unknown_profile_is_one_line_naming_the_option_and_the_choices():
    with pytest.raises(ProfileError) as caught:
        get_profile("bogus")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--profile bogus:")
    assert "paper" in message and "cxr-lt" in message
    with pytest.raises(ProfileError) as from_file:
        profile_of({"scoring_profile": "SECRET-from-a-file"})
    assert "scoring_profile" in str(from_file.value) and "SECRET" not in str(from_file.value)
    assert "--profile NAME" in str(from_file.value)


def test_the_cli_refuses_an_unknown_profile_in_one_line(tmp_path):
    run = run_with(tmp_path / "run", DISAGREE, {"scoring_profile": "cxr-lt"})
    published = published_with_auprc(tmp_path / "published.parquet")
    for args in (("compare", run, "--file", published, "--profile", "bogus"),
                 ("leaderboard", "show", BENCH, "--profile", "bogus"),
                 ("board", "init", tmp_path / "board", "--benchmark", BENCH, "--profile", "bogus")):
        assert_one_error(cli(*args), "--profile", "paper", "cxr-lt")
    assert not (tmp_path / "board").exists()


# -- compare ------------------------------------------------------------------------------------------
def test_compare_compares_the_profiles_primary_metric_and_ranks_entries_by_it(tmp_path):
    run = run_with(tmp_path / "run", DISAGREE, {"scoring_profile": "cxr-lt"})
    published = published_with_auprc(tmp_path / "published.parquet")
    result = compare_run(run, leaderboard_file=published)
    assert result.profile is CXR_LT and result.metric == "auprc"
    assert list(dict.fromkeys(result.rows["entry"])) == ["beta", "alpha"]
    chosen = compare_run(run, leaderboard_file=published, profile="paper")
    assert chosen.metric == "auc" and list(dict.fromkeys(chosen.rows["entry"])) == ["alpha", "beta"]
    # A published board without auprc (the shipped one): compared on auc, said; still ranked by mAP.
    shipped = compare_run(run, leaderboard_file=leaderboard.published_board(BENCH))
    assert shipped.metric == "auc" and list(dict.fromkeys(shipped.rows["entry"])) == ["beta", "alpha"]
    assert any("reports no auprc" in note for note in shipped.notes)


def test_compare_output_lists_the_profiles_primary_metric_first(tmp_path):
    run = run_with(tmp_path / "run", DISAGREE, {"scoring_profile": "cxr-lt"})
    published = published_with_auprc(tmp_path / "published.parquet")
    shown = cli("compare", run, "--file", published, env=WIDE)
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.startswith("entries best first by"))
    assert line == "entries best first by macro auprc, then auc, then f1 (scoring profile cxr-lt)"
    titles = [x for x in shown.output.splitlines() if " vs published " in x]
    assert "beta" in titles[0] and "alpha" in titles[1] and all("auprc" in t for t in titles)
    paper = cli("compare", run, "--file", published, "--profile", "paper", env=WIDE)
    assert paper.exit_code == 0, paper.output
    assert "entries best first by macro auc, then auprc, then f1 (scoring profile paper)" in paper.output
    titles = [x for x in paper.output.splitlines() if " vs published " in x]
    assert "alpha" in titles[0] and "beta" in titles[1]


def stored_run(folder: Path, signal: float, manifest: dict) -> Path:
    """A run directory in the runner's file formats (split, predictions, manifest), no training."""
    rng = np.random.default_rng(0)
    labels = ["cardiomegaly", "normal", "nodule"]
    n = 90
    frame = pd.DataFrame({"image_id": [f"img{i:03d}.png" for i in range(n)],
                          "patient_id": [f"p{i // 2:03d}" for i in range(n)]})
    splits = np.where(np.arange(n) < 50, "train", "test")
    y = (rng.random((n, 3)) < [0.4, 0.3, 0.2]).astype(np.uint8)
    write_parquet(folder / "split.parquet", split_table(frame, y, splits, labels))
    test = np.flatnonzero(splits == "test")
    probs = np.clip(signal * y[test] + np.random.default_rng(int(signal * 10)).random((len(test), 3)) * 0.6, 0, 1)
    ids = frame["image_id"].iloc[test].tolist()
    predictions.write(folder / "predictions.parquet",
                      [predictions.to_table(ids, ["test"] * len(ids), "densenet201", labels, probs)])
    write_json(folder / "manifest.json", {"run_id": folder.name, "benchmark": BENCH, "benchmark_version": "1",
                                          "split_hash": "s", "backbones": ["densenet201"], "ensembles": [],
                                          "recipe": {"threshold": 0.5}, **manifest})
    return folder


def test_two_runs_compared_list_the_profiles_metrics_first(tmp_path):
    a = stored_run(tmp_path / "a", 0.3, {})
    b = stored_run(tmp_path / "b", 0.4, {"scoring_profile": "cxr-lt"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        ranked = compare_runs(a, b, n_boot=20)
        paper = compare_runs(a, b, n_boot=20, profile="paper")
    assert ranked.profile is CXR_LT and list(dict.fromkeys(ranked.rows["metric"]))[:3] == ["auprc", "auc", "f1"]
    assert list(dict.fromkeys(paper.rows["metric"]))[:3] == ["auc", "auprc", "f1"]
    shown = cli("compare", b, "--against", a, "--n-boot", 20, env=WIDE)
    assert shown.exit_code == 0, shown.output
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in shown.output.splitlines() if "│" in line]
    metrics = [c[0] for c in cells if len(c) > 1 and c[1] in ("macro", "group")]
    assert list(dict.fromkeys(metrics)) == ["auprc", "auc", "f1"], shown.output


# -- grid -------------------------------------------------------------------------------------------------
def test_the_grid_tables_come_in_the_order_of_the_cells_profile(tmp_path, monkeypatch):
    import mlbench.grid.cells
    from mlbench.grid.cells import COMPARISON_COLUMNS, GridCell, GridResult
    from mlbench.grid.remedies import Remedy

    cell = tmp_path / "cell"
    write_json(cell / "manifest.json", {"run_id": "c", "benchmark": BENCH, "scoring_profile": "cxr-lt"})
    comparison = pd.DataFrame([dict(remedy="ml-ros", baseline="uniform", entry="ctp", scope="macro", name=GLOBAL_LABEL,
                                    metric=m, difference=0.01, ci_low=-0.01, ci_high=0.03, sd=float("nan"), n_seeds=1,
                                    p_value=0.5, p_adjusted=0.5, verdict="no evidence")
                               for m in ("auc", "auprc", "f1", "brier")])[list(COMPARISON_COLUMNS)]
    grid = GridResult(tmp_path / "g", [GridCell(Remedy("uniform"), 0, SimpleNamespace(out=cell))], [], comparison)
    monkeypatch.setattr(mlbench.grid.cells, "run_grid", lambda spec, **_: grid)
    shown = cli("grid", BENCH, "--remedies", "uniform,ml-ros", "--demo", "--out", tmp_path / "g", env=WIDE)
    assert shown.exit_code == 0, shown.output
    titles = [x.split(":")[0].strip() for x in shown.output.splitlines() if "remedy minus baseline" in x]
    assert titles == ["auprc", "auc", "f1", "brier"], shown.output


# -- a board ------------------------------------------------------------------------------------------------
def disagreeing_scores(y: np.ndarray) -> dict[str, np.ndarray]:
    """Two entries' test scores whose macro AUC and mAP disagree, label by label (one positive or none: a tie).

    ``auc-first`` ranks every positive above the negatives but one negative on top: AUC 1 - 1/N, and the first
    hit costs precision. ``map-first`` ranks all positives but one on top and that one last: precision stays
    1 until the last hit, and the AUC loses 1/P. No two scores of a label tie (a tie is one threshold)."""
    y = y.astype(int)
    distinct = np.arange(len(y))[:, None] * 1e-3
    auc_first, map_first = np.where(y == 1, 0.6, 0.2) + distinct, np.where(y == 1, 0.9, 0.5) + distinct
    for j in range(y.shape[1]):
        positives, negatives = np.flatnonzero(y[:, j] == 1), np.flatnonzero(y[:, j] == 0)
        if len(positives) and len(negatives):
            auc_first[negatives[0], j] = 0.95
        if len(positives) >= 2:
            map_first[positives[-1], j] = 0.05
        else:
            map_first[:, j] = auc_first[:, j]
    return {"auc-first": auc_first, "map-first": map_first}


@pytest.fixture(scope="module")
def external_bundle(tmp_path_factory):
    """An external bundle of hand-made test predictions on a small demo corpus: two entries AUC and mAP rank
    apart, and two noisy ones."""
    root = tmp_path_factory.mktemp("profile-board")
    source = mlbench.write_demo_data(BENCH, root / "demo", options={"n_patients": 48, "image_size": 64,
                                                                     "n_corrupt": 0})
    split = canonical_split(BENCH, source)
    test = split.splits == "test"
    ids, y = split.frame["image_id"].to_numpy()[test], split.Y[test].astype(int)
    assert (y.sum(axis=0) >= 3).any()  # a label where the two designed entries disagree
    rng = np.random.default_rng(7)
    scores = {**disagreeing_scores(y), **{f"noisy-{i}": 1 / (1 + np.exp(-(2 * y - 1) - rng.normal(size=y.shape)))
                                           for i in range(2)}}
    frames = [pd.DataFrame({"image_id": np.repeat(ids, len(split.labels)), "entry": entry,
                            "label": np.tile(split.labels, len(ids)), "probability": probs.reshape(-1)})
              for entry, probs in scores.items()]
    file = root / "predictions.csv"
    pd.concat(frames).to_csv(file, index=False)
    bundle = mlbench.bundle_run(None, root / "theirs.zip", predictions=file, benchmark=BENCH, describe="by hand")
    return {"bundle": bundle.path, "csv": Path(source.csv)}


def board_of(folder: Path, external_bundle: dict, profile: str | None):
    init_board(folder, BENCH, csv=external_bundle["csv"], synthetic=True, profile=profile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        add_submission(folder, external_bundle["bundle"], external_bundle["csv"])
    return build_board(folder)


def expected_order(folder: Path, metrics: tuple[str, ...]) -> list[str]:
    rows = pd.read_parquet(folder / "board.parquet").query("source == 'run' and label == '__global__'")
    wide = rows.pivot_table(index="entry", columns="metric", values="value")
    return list(wide.sort_values(list(metrics), ascending=False, kind="stable").index)


def test_a_board_ranked_by_cxr_lt_ranks_by_map_and_says_so(external_bundle, tmp_path):
    cxr = board_of(tmp_path / "cxr", external_bundle, "cxr-lt")
    paper = board_of(tmp_path / "paper", external_bundle, None)  # the benchmark's: paper
    assert open_board(tmp_path / "cxr").config["scoring_profile"] == "cxr-lt" and cxr.profile is CXR_LT
    assert paper.profile is PAPER
    by_map = [entry for _, entry in cxr.ranking]
    by_auc = [entry for _, entry in paper.ranking]
    assert by_map == expected_order(tmp_path / "cxr", ("auprc", "auc", "f1"))
    assert by_auc == expected_order(tmp_path / "paper", ("auc", "auprc", "f1"))
    assert by_map.index("map-first") < by_map.index("auc-first") and by_auc.index("auc-first") < by_auc.index("map-first")
    page = render_board(tmp_path / "cxr")
    assert "ranked by the cxr-lt scoring profile" in page
    ranking = page[page.index('id="ranking"'):page.index('id="submissions"')]
    assert sorted(by_map, key=ranking.index) == by_map  # the page lists them in that order


def test_a_board_made_before_profiles_ranks_by_paper(external_bundle, tmp_path):
    folder = tmp_path / "old"
    board_of(folder, external_bundle, "cxr-lt")
    config = open_board(folder).config
    del config["scoring_profile"]
    write_json(folder / "board.json", {**config, "primary_metric": "auc"})  # as board init wrote it before
    assert open_board(folder).profile is PAPER and build_board(folder).profile is PAPER
    assert "ranked by the paper scoring profile" in render_board(folder)
