"""Output names of ``explain``: one folder per image, never shared, never another image's old output."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mlbench.explainers.pipeline import ExplainRequest, output_folders, explain_run, slug, unique_names


def _stem(key: str) -> str:
    return Path(key).stem


def test_unique_slugs_stay_plain_and_colliding_ones_get_distinct_digests():
    ids = ["a b.png", "a-b.png", "a?b.jpg", "plain.png", "X.png", "x.png"]
    names = unique_names(ids, stem=_stem)
    assert names["plain.png"] == "plain"
    assert len({n.lower() for n in names.values()}) == len(ids)  # also on a case-insensitive disk
    for key in ("a b.png", "a-b.png", "a?b.jpg"):
        assert names[key].startswith("a-b-") and len(names[key]) == len("a-b-") + 8
    assert names["X.png"].startswith("X-") and names["x.png"].startswith("x-")
    assert unique_names(list(reversed(ids)), stem=_stem) == names  # the order given does not matter


def test_names_never_escape_or_hide():
    for text in ("..", ".", "...png", "../../etc", "/"):
        name = slug(text)
        assert name not in ("", ".", "..") and "/" not in name and not name.startswith(".")
    assert len(slug("x" * 1000)) <= 120


def test_a_plain_name_equal_to_another_keys_hashed_name_is_still_resolved():
    first = unique_names(["a.png", "a?.png"], stem=_stem)["a.png"]  # "a-<8 hex>"
    names = unique_names(["a.png", "a?.png", f"{first}.png"], stem=_stem)
    assert len({n.lower() for n in names.values()}) == 3


def test_taken_names_go_only_to_their_owner():
    names = unique_names(["x.png", "y.png"], stem=_stem, taken={"X": None, "y": "y.png"})
    assert names["x.png"].startswith("x-") and names["y.png"] == "y"


def test_earlier_output_of_another_image_is_not_reused(tmp_path):
    (tmp_path / "a-b").mkdir()
    (tmp_path / "a-b" / "explanation.json").write_text(json.dumps({"image_id": "a b.png"}))
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("not an explanation")
    (tmp_path / "empty").mkdir()
    folders = output_folders(tmp_path, {"a-b.png": {"image_id": "a-b.png"}, "a b.png": {"image_id": "a b.png"},
                                         "stray.png": {"image_id": "stray.png"}, "empty.png": {"image_id": "empty.png"},
                                         "explain.json.png": {"image_id": "explain.json.png"}})
    assert folders["a b.png"] == "a-b"  # its own earlier output: rewritten in place
    assert folders["a-b.png"].startswith("a-b-")
    assert folders["stray.png"].startswith("stray-")  # a folder without an explanation is nobody's to overwrite
    assert folders["empty.png"] == "empty"
    assert folders["explain.json.png"].startswith("explain.json-")  # explain's own files are never a folder name


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from mlbench.training.runner import RunOptions, run

    root = tmp_path_factory.mktemp("names")
    result = run(RunOptions(benchmark="padchest-specific", out=root / "run", demo=True, demo_dir=root / "demo",
                            demo_options={"n_patients": 30, "image_size": 64, "n_corrupt": 0},
                            backbones=("resnet10t",), ensembles=("ctp",), image_size=32, max_epochs=1, workers=1,
                            progress=False))
    return result.run_dir


def test_explain_writes_one_folder_per_image_when_names_slug_alike(tiny_run, tmp_path):
    films = tmp_path / "films"
    (films / "other").mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = [films / "a b.png", films / "a-b.png", films / "other" / "a b.png"]
    for path in paths:
        cv2.imwrite(str(path), rng.integers(0, 65535, (48, 48), dtype=np.uint16))
    out = tmp_path / "out"
    request = ExplainRequest(run_dir=tiny_run, out=out, images=paths, labels=["normal"], device="cpu", score=False)
    report = explain_run(request)
    summary = json.loads((out / "explain.json").read_text())
    folders = summary["folders"]
    assert sorted(folders) == sorted(report.explained) and len(set(folders.values())) == 3
    files = {json.loads((out / folder / "explanation.json").read_text())["file"] for folder in folders.values()}
    assert files == {str(p.resolve()) for p in paths}

    # A later call with another film of a taken name writes beside, not over, the earlier output.
    later = tmp_path / "later" / "a b.png"
    later.parent.mkdir()
    cv2.imwrite(str(later), rng.integers(0, 65535, (48, 48), dtype=np.uint16))
    before = {p: p.read_bytes() for p in out.rglob("explanation.json")}
    explain_run(ExplainRequest(run_dir=tiny_run, out=out, images=[later], labels=["normal"], device="cpu",
                               score=False))
    assert all(p.read_bytes() == data for p, data in before.items())
    assert len(list(out.rglob("explanation.json"))) == 4
