"""mlbench score: a run's test predictions, written out with plain pandas, score exactly as the run
scored them; each mistake in the file or the options is one line naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlbench
from cli_checks import assert_one_error, cli
from mlbench.results import leaderboard
from mlbench.results.external import ExternalPredictionsError, read_external
from tiny_bundles import demo_corpus, two_backbone_run

BENCH = "padchest-specific"
KEY = ["entry", "label", "metric"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return two_backbone_run(tmp_path_factory.mktemp("score"))


@pytest.fixture(scope="module")
def corpus(run_dir):
    return demo_corpus(run_dir)


@pytest.fixture(scope="module")
def test_predictions(run_dir) -> pd.DataFrame:
    """What a user of another framework would write: plain pandas, no mlbench."""
    stored = pd.read_parquet(run_dir / "predictions.parquet")
    return stored[stored["split"] == "test"].drop(columns="split").reset_index(drop=True)


@pytest.fixture(scope="module")
def csv_file(test_predictions, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("files") / "predictions.csv"
    test_predictions.to_csv(path, index=False)
    return path


def bootstrap(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())["bootstrap"]


def assert_same_scores(rows: pd.DataFrame, run_dir: Path, tolerance: float) -> None:
    board = leaderboard.read(run_dir / "leaderboard.parquet").to_pandas().set_index(KEY).sort_index()
    mine = rows.set_index(KEY).sort_index()
    assert mine.index.equals(board.index)
    for column in ("value", "ci_low", "ci_high", "n_positive"):
        a, b = mine[column].to_numpy(dtype=float), board[column].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        assert np.nanmax(np.abs(a - b)) <= tolerance, column
    assert board["ci_low"].notna().sum() > 100  # the intervals were really compared


def test_plain_pandas_predictions_score_exactly_as_the_run_scored_them(run_dir, corpus, csv_file):
    csv, images = corpus
    settings = bootstrap(run_dir)
    result = mlbench.score_predictions(csv_file, BENCH, csv, images=images, n_boot=settings["n_boot"],
                                       seed=settings["seed"])
    assert_same_scores(result.rows, run_dir, 1e-12)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rows = result.rows
    assert result.run_id == "external-" + mlbench.sha256_file(csv_file)[:12] and set(rows["run_id"]) == {result.run_id}
    assert set(rows["source"]) == {"run"} and set(rows["entry_kind"]) == {"backbone"}
    assert set(rows["split_hash"]) == {manifest["split_hash"]} and set(rows["dataset_kind"]) == {"synthetic"}
    assert result.entries == manifest["backbones"] + manifest["ensembles"]
    # The demo's truncated training film is left out of the frequency groups, as the run left it out.
    assert [s.reason for s in result.train_unreadable] == ["truncated"]


def test_parquet_with_entry_and_split_columns_scores_the_same(run_dir, corpus, test_predictions, tmp_path):
    csv, images = corpus
    path = tmp_path / "p.parquet"
    test_predictions.assign(split="test").to_parquet(path, index=False)
    result = mlbench.score_predictions(path, BENCH, csv, images=images, n_boot=bootstrap(run_dir)["n_boot"])
    assert_same_scores(result.rows, run_dir, 1e-12)


def test_a_file_without_entries_is_one_entry_and_validation_rows_add_tuned_thresholds(run_dir, corpus, tmp_path):
    csv, images = corpus
    stored = pd.read_parquet(run_dir / "predictions.parquet")
    ctp = stored[stored["entry"] == "ctp"].drop(columns="entry")
    ctp[ctp["split"] == "test"].drop(columns="split").to_csv(tmp_path / "one.csv", index=False)
    ctp.to_csv(tmp_path / "with-val.csv.gz", index=False)
    one = mlbench.score_predictions(tmp_path / "one.csv", BENCH, csv, images=images, n_boot=0)
    tuned = mlbench.score_predictions(tmp_path / "with-val.csv.gz", BENCH, csv, images=images, n_boot=0)
    assert one.entries == ["external"] and not one.tuned and tuned.tuned
    assert {"f1_tuned", "f1_pos_tuned", "hamming_tuned"} <= set(tuned.rows["metric"])
    assert set(one.rows["metric"]) == set(leaderboard.METRICS)
    plain = tuned.rows[~tuned.rows["metric"].str.endswith("_tuned")]
    run = leaderboard.read(run_dir / "leaderboard.parquet").to_pandas()
    run = run[run["entry"] == "ctp"].set_index(["label", "metric"]).sort_index()
    assert np.allclose(plain.set_index(["label", "metric"]).sort_index()["value"], run["value"], rtol=0, atol=1e-12,
                       equal_nan=True)


def test_the_command_prints_the_macro_rows_and_writes_json(run_dir, corpus, csv_file, tmp_path):
    csv, images = corpus
    out = tmp_path / "scores.json"
    result = cli("score", csv_file, "--benchmark", BENCH, "--csv", csv, "--images", images, "--n-boot", "20",
                 "--json", out)
    assert result.exit_code == 0, result.output
    assert "ctp" in result.output and "ptc-mode" in result.output and f"wrote {out}" in result.output
    record = json.loads(out.read_text())
    assert len(record["rows"]) == len(leaderboard.read(run_dir / "leaderboard.parquet"))
    assert record["run_id"].startswith("external-") and record["comparison"] is None


def test_against_published_compares_and_says_the_demo_is_not_comparable(corpus, csv_file, tmp_path, monkeypatch):
    csv, images = corpus
    monkeypatch.setenv(leaderboard.LEADERBOARDS_ENV, str(tmp_path / "boards"))  # the published board, not a local one
    result = cli("score", csv_file, "--benchmark", BENCH, "--csv", csv, "--n-boot", "20", "--against", "published")
    assert result.exit_code == 0, result.output
    assert "NOT COMPARABLE" in result.output and "vs published ctp" in result.output


def test_a_benchmark_without_a_board_says_so_in_one_line(corpus, csv_file, tmp_path, monkeypatch):
    csv, images = corpus
    monkeypatch.setenv(leaderboard.LEADERBOARDS_ENV, str(tmp_path / "boards"))
    monkeypatch.setattr(leaderboard, "published_board", lambda benchmark, registry=None: None)
    result = cli("score", csv_file, "--benchmark", BENCH, "--csv", csv, "--n-boot", "5", "--against", "published")
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if "no published board" in line]
    assert len(said) == 1 and BENCH in said[0]


def test_an_unreadable_test_image_the_file_lacks_is_left_out_only_with_images(run_dir, corpus, test_predictions,
                                                                             tmp_path):
    data = tmp_path / "data"
    shutil.copytree(corpus[1].parent, data)
    csv = data / corpus[0].name
    labels = pd.read_csv(csv)
    gone = test_predictions["image_id"].iloc[0]
    film = data / "images" / str(labels.loc[labels["ImageID"] == gone, "ImageDir"].iloc[0]) / gone
    film.write_bytes(film.read_bytes()[:200])  # truncated
    lacking = tmp_path / "lacking.csv"
    test_predictions[test_predictions["image_id"] != gone].to_csv(lacking, index=False)
    result = mlbench.score_predictions(lacking, BENCH, csv, images=data / "images", n_boot=0)
    assert [(s.item, s.reason) for s in result.left_out] == [(gone, "truncated")]
    assert result.n_test == test_predictions["image_id"].nunique() - 1 and gone in result.notes[0]
    line = assert_one_error(cli("score", lacking, "--benchmark", BENCH, "--csv", csv, "--n-boot", "0"), str(lacking))
    assert "lacks test images" in line and gone in line


# -- mistakes: one line each --------------------------------------------------------------------------------
def score_line(path, corpus, *extra) -> str:
    csv, images = corpus
    return assert_one_error(cli("score", path, "--benchmark", BENCH, "--csv", csv, "--n-boot", "0", *extra),
                            str(path))


def test_a_missing_column_is_named(corpus, test_predictions, tmp_path):
    path = tmp_path / "p.csv"
    test_predictions.drop(columns="probability").to_csv(path, index=False)
    line = score_line(path, corpus)
    assert "column 'probability' is missing" in line


def test_a_bad_probability_names_its_row_as_a_spreadsheet_numbers_it(corpus, test_predictions, tmp_path):
    path = tmp_path / "p.csv"
    bad = test_predictions.copy()
    bad.loc[6, "probability"] = 1.5
    bad.loc[9, "probability"] = -0.25
    bad.to_csv(path, index=False)
    line = score_line(path, corpus)
    assert "row 8: column 'probability' is outside [0, 1] (and 1 more row)" in line  # header row 1, index 6 -> row 8
    assert "1.5" not in line  # the file's values are never quoted
    text = test_predictions.astype({"probability": object})
    text.loc[3, "probability"] = "high"
    text.to_csv(path, index=False)
    assert "row 5: column 'probability' is not a number" in score_line(path, corpus)


def test_a_missing_test_image_is_named(corpus, test_predictions, tmp_path):
    path = tmp_path / "p.csv"
    gone = test_predictions["image_id"].iloc[-1]
    test_predictions[test_predictions["image_id"] != gone].to_csv(path, index=False)
    line = score_line(path, corpus)
    assert "lacks test images" in line and gone in line


def test_an_image_outside_the_test_split_and_an_unknown_label_are_named(run_dir, corpus, test_predictions, tmp_path):
    split = pd.read_parquet(run_dir / "split.parquet")
    trained_on = split.loc[split["split"] == "train", "image_id"].iloc[0]
    path = tmp_path / "p.csv"
    test_predictions.assign(image_id=test_predictions["image_id"].where(test_predictions.index != 0, trained_on)) \
        .to_csv(path, index=False)
    line = score_line(path, corpus)
    assert "1 image not among the test images" in line and trained_on in line and "train or val split" in line
    test_predictions.assign(label=test_predictions["label"].where(test_predictions.index != 0, "Not A Label")) \
        .to_csv(path, index=False)
    assert "does not have: Not A Label" in score_line(path, corpus)


def test_a_repeated_row_names_both_rows(corpus, test_predictions, tmp_path):
    path = tmp_path / "p.csv"
    pd.concat([test_predictions, test_predictions.iloc[[2]]]).to_csv(path, index=False)
    line = score_line(path, corpus)
    assert f"row {len(test_predictions) + 2}: repeats row 4's (image_id, entry, label, split)" in line


def test_an_unknown_benchmark_and_a_label_file_that_does_not_exist(corpus, csv_file, tmp_path):
    csv, _ = corpus
    line = assert_one_error(cli("score", csv_file, "--benchmark", "no-such-bench", "--csv", csv), "no-such-bench")
    assert "registered benchmarks" in line
    missing = tmp_path / "nowhere.csv"
    assert_one_error(cli("score", csv_file, "--benchmark", BENCH, "--csv", missing), str(missing), "no such label file")


def test_the_reader_refuses_a_hostile_file_in_one_line(tmp_path):
    cases = {
        "index.csv": b",image_id,label,probability\n0,a,b,0.5\n",
        "short.csv": b"image_id,label,probability\na,b,0.5\nc,d,0.1,9\n",
        "binary.csv": b"image_id,label,probability\n\xff\xfe,b,0.5\n",
        "broken.csv.gz": b"\x1f\x8b\x08 not really gzip",
        "header.csv": b"image_id,label,probability,\x1b[2Jx\na,b,0.5,1\n",
        "split.csv": b"image_id,label,probability,split\na,b,0.5,train\n",
        "empty.csv": b"image_id,label,probability\n,b,0.5\n",
        "nothing.csv": b"",
    }
    expected = {"index.csv": "column 1 has no name", "short.csv": "row 3 has another number of fields",
                "binary.csv": "not UTF-8", "broken.csv.gz": "not a whole gzip file",
                "header.csv": "column 4 (its name is not a plain name)", "split.csv": "row 2: column 'split'",
                "empty.csv": "row 2: column 'image_id' is empty", "nothing.csv": "empty"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ExternalPredictionsError) as caught:
            read_external(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(str(tmp_path / name)) and expected[name] in message and "\n" not in message
        assert "\x1b" not in message
    with pytest.raises(ExternalPredictionsError, match="expected a name ending in .csv, .csv.gz, .parquet"):
        read_external(tmp_path / "predictions.txt")


def test_the_size_limits_are_checked_before_the_file_is_parsed(test_predictions, tmp_path, monkeypatch):
    from mlbench.results import external

    test_predictions.to_csv(tmp_path / "p.csv", index=False)
    test_predictions.to_csv(tmp_path / "p.csv.gz", index=False)
    test_predictions.to_parquet(tmp_path / "p.parquet", index=False)
    monkeypatch.setattr(external, "MAX_ROWS", 100)
    monkeypatch.setattr(external, "CSV_CHUNK_ROWS", 50)
    for name in ("p.csv", "p.parquet"):
        with pytest.raises(ExternalPredictionsError, match="rows"):
            read_external(tmp_path / name)
    monkeypatch.setattr(external, "MAX_BYTES", 10_000)
    with pytest.raises(ExternalPredictionsError, match="over the limit of 10,000"):
        read_external(tmp_path / "p.csv")
    small = (tmp_path / "p.csv.gz").stat().st_size
    assert small < (tmp_path / "p.csv").stat().st_size
    monkeypatch.setattr(external, "MAX_BYTES", small + 1)  # the packed file passes, its text does not
    with pytest.raises(ExternalPredictionsError, match="once decompressed"):
        read_external(tmp_path / "p.csv.gz")
