"""mlbench predict: a trained run's models on its own test films, as unlabelled images, give the run's
own test probabilities and, scored, its own leaderboard; a killed prediction resumes; paths stay inside."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlbench
from cli_checks import assert_one_error, cli
from mlbench.preprocessing.cache import Cache, prepare_image
from mlbench.preprocessing.images import ImageReadError, read_grayscale
from mlbench.results import leaderboard
from mlbench.training import predict
from mlbench.training.runner import load_trained
from tiny_bundles import demo_corpus, two_backbone_run

BENCH = "padchest-specific"
KEY = ["image_id", "entry", "label"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return two_backbone_run(tmp_path_factory.mktemp("predict"))


@pytest.fixture(scope="module")
def corpus(run_dir):
    return demo_corpus(run_dir)


@pytest.fixture(scope="module")
def test_list(run_dir, corpus, tmp_path_factory) -> Path:
    """The run's test films as paths under the image folder (PadChest keeps each in its ImageDir)."""
    csv, _ = corpus
    split = pd.read_parquet(run_dir / "split.parquet")
    labels = pd.read_csv(csv)
    films = labels[labels["ImageID"].isin(split.loc[split["split"] == "test", "image_id"])]
    path = tmp_path_factory.mktemp("list") / "test-films.txt"
    path.write_text("\n".join(films["ImageDir"].astype(str) + "/" + films["ImageID"]) + "\n")
    return path


@pytest.fixture(scope="module")
def predicted(run_dir, corpus, test_list, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "predictions.csv"
    result = cli("predict", run_dir, "--images", corpus[1], "--list", test_list, "--out", out, "--device", "cpu",
                 "--progress", "quiet")
    assert result.exit_code == 0, result.output
    assert f"predicted {len(test_list.read_text().split())} images with 5 entries" in result.output
    return out


def test_the_run_s_test_films_give_its_own_test_probabilities(run_dir, predicted):
    mine = pd.read_csv(predicted)
    stored = pd.read_parquet(run_dir / "predictions.parquet")
    stored = stored[stored["split"] == "test"]
    assert set(mine["split"]) == {"test"} and list(dict.fromkeys(mine["entry"])) == list(dict.fromkeys(stored["entry"]))
    both = stored.merge(mine, on=KEY, how="outer", suffixes=("_run", "_predicted"), indicator=True)
    assert (both["_merge"] == "both").all() and len(both) == len(stored)
    assert np.abs(both["probability_run"] - both["probability_predicted"]).max() <= 1e-6
    assert not (predicted.parent / "predictions.csv.parts").exists()  # the finished chunks are removed


def test_scored_with_the_label_file_they_give_the_run_s_own_leaderboard(run_dir, corpus, predicted, tmp_path):
    csv, images = corpus
    private = tmp_path / "private" / "labels.csv"  # the label file kept apart, as a benchmark's keeper would
    private.parent.mkdir()
    shutil.copy(csv, private)
    settings = json.loads((run_dir / "manifest.json").read_text())["bootstrap"]
    result = mlbench.score_predictions(predicted, BENCH, private, images=images, n_boot=settings["n_boot"],
                                       seed=settings["seed"])
    board = leaderboard.read(run_dir / "leaderboard.parquet").to_pandas().set_index(["entry", "label", "metric"])
    mine = result.rows.set_index(["entry", "label", "metric"]).loc[board.index]
    for column in ("value", "ci_low", "ci_high"):
        a, b = mine[column].to_numpy(dtype=float), board[column].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)) and np.nanmax(np.abs(a - b)) <= 1e-9, column


def test_prepare_image_is_what_the_cache_holds(run_dir, corpus):
    trained = load_trained(run_dir)
    split = pd.read_parquet(run_dir / "split.parquet")
    paths = pd.read_parquet(run_dir / "image-paths.parquet").set_index("image_id")["path"]
    ids = split.loc[split["split"] == "test", "image_id"].tolist()[:4]
    cache = Cache.open(trained.rundir.cache_path())
    mine = np.stack([prepare_image(corpus[1] / paths[i], trained.preprocessor(), trained.recipe.image_size)
                     for i in ids])
    assert mine.dtype == np.uint8 and np.array_equal(mine, cache.load(ids))


def test_a_killed_prediction_resumes_from_its_finished_chunks(run_dir, corpus, test_list, tmp_path, monkeypatch):
    images = corpus[1]
    whole = predict.predict_images(run_dir, images, tmp_path / "whole.csv", list_file=test_list, device="cpu",
                                   progress=False, chunk_size=8)
    assert whole.chunks == 3 and whole.reused == 0
    out = tmp_path / "resumed.csv"
    real, calls = predict.predict_chunk, []

    def killed_after_one_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt  # the kill, after the first chunk was written
        return real(*args, **kwargs)

    monkeypatch.setattr(predict, "predict_chunk", killed_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        predict.predict_images(run_dir, images, out, list_file=test_list, device="cpu", progress=False, chunk_size=8)
    monkeypatch.setattr(predict, "predict_chunk", real)
    parts = predict.parts_folder(out)
    assert not out.exists() and len([p for p in parts.iterdir() if p.name.endswith(".skips.parquet")]) == 1
    again = predict.predict_images(run_dir, images, out, list_file=test_list, device="cpu", progress=False,
                                   chunk_size=8)
    assert again.reused == 1 and again.chunks == 3 and not parts.exists()
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_a_list_path_climbing_out_of_the_image_folder_is_refused(run_dir, corpus, tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text("0/fine.png\n\n../../manifest.json\n")
    line = assert_one_error(cli("predict", run_dir, "--images", corpus[1], "--list", listed, "--out",
                                tmp_path / "p.csv"), str(listed), "line 3")
    assert "leads outside" in line and not (tmp_path / "p.csv").exists()
    listed.write_text(f"{corpus[1].resolve() / '0' / 'x.png'}\n")
    assert "line 1" in assert_one_error(cli("predict", run_dir, "--images", corpus[1], "--list", listed, "--out",
                                            tmp_path / "p.csv"), "absolute path")


def readable(film: Path) -> bool:
    try:
        read_grayscale(film)
    except ImageReadError:  # the demo writes one truncated film
        return False
    return True


def test_links_out_and_unreadable_films_are_skipped_counted_and_listed(run_dir, corpus, tmp_path):
    films = [f for f in sorted(corpus[1].rglob("*.png")) if readable(f)][:3]
    folder = tmp_path / "films"
    (folder / "a").mkdir(parents=True)
    for film in films[:2]:
        shutil.copy(film, folder / "a" / film.name)
    (folder / "a" / films[1].name).write_bytes(films[1].read_bytes()[:300])  # truncated
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(films[2], outside / films[2].name)
    os.symlink(outside / films[2].name, folder / "a" / "link.png")
    os.symlink(outside, folder / "linked-folder")
    out = tmp_path / "p.parquet"
    result = cli("predict", run_dir, "--images", folder, "--out", out, "--device", "cpu", "--progress", "quiet")
    assert result.exit_code == 0, result.output
    assert "predicted 1 image with" in result.output and "skipped 3 images (outside_root 2, truncated 1)" in result.output
    listed = pd.read_csv(predict.skipped_file(out))
    assert sorted(zip(listed["file"], listed["reason"])) == sorted([
        ("a/link.png", "outside_root"), (f"a/{films[1].name}", "truncated"), ("linked-folder", "outside_root")])
    written = pd.read_parquet(out)
    assert set(written["image_id"]) == {films[0].name}  # named as the label file names it: its ImageID
