"""NIH images reached through a link out of the image root are skipped as ``outside_root`` (issue 19):
in the index mode, in the name-only fallback, and by ``mlbench preprocess``; nothing is decoded
through the link, and links that stay inside the root still work."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlbench.cli import main
from mlbench.data import DataSource
from mlbench.data.imagepaths import OUTSIDE_ROOT
from mlbench.foundations.paths import lies_under
from mlbench_nih import demo
from mlbench_nih.reader import read_nih_csv

FOLDERS = demo.IMAGE_FOLDERS  # images_001/images, images_002/images


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_error(result, *names: str) -> str:
    """Non-zero exit, no traceback, the output ends with one ``Error:`` line naming ``names``."""
    output = result.output
    tail = "\n".join(output.strip().splitlines()[-12:])
    assert "Traceback" not in output, tail
    assert result.exit_code not in (0, 70), f"exit {result.exit_code}: {tail}"
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), tail
    assert sum(line.startswith("Error:") for line in lines) == 1, tail
    for name in names:
        assert name.lower() in lines[-1].lower(), f"{name!r} not named in: {lines[-1]}"
    return lines[-1]


@pytest.fixture
def corpus(tmp_path) -> DataSource:
    return demo.write_demo_corpus(tmp_path / "nih", seed=0, n_patients=12, image_size=64, n_corrupt=0,
                                  n_missing=0, workers=1)


def move_out(folder: Path, outside: Path) -> list[str]:
    """Move ``folder``'s films outside (painted white: a decode through the link would show) and leave
    a link in its place; the names it held."""
    names = sorted(p.name for p in folder.iterdir())
    shutil.move(str(folder), str(outside))
    for name in names:
        (outside / name).write_bytes(white_png())
    os.symlink(outside, folder)
    return names


def white_png() -> bytes:
    import cv2

    return cv2.imencode(".png", np.full((64, 64), 255, np.uint8))[1].tobytes()


def reasons(records) -> dict[str, str]:
    return {s.item: s.reason for s in records.skipped}


def test_index_mode_refuses_a_linked_folder_and_file_out_and_keeps_links_inside(corpus, tmp_path):
    root = corpus.images
    behind = move_out(root / FOLDERS[1], tmp_path / "elsewhere")
    first = sorted((root / FOLDERS[0]).iterdir())
    # a file link out, and a file replaced by a link that stays inside the root
    leak, alias = first[0].name, first[1].name
    (tmp_path / "secret.png").write_bytes(white_png())
    first[0].unlink()
    os.symlink(tmp_path / "secret.png", first[0])
    os.rename(first[1], root / "spare.png")
    os.symlink(root / "spare.png", first[1])

    records = read_nih_csv(corpus)
    why = reasons(records)
    assert {n for n, r in why.items() if r == OUTSIDE_ROOT} == {leak, *behind}
    detail = {s.item: s.detail for s in records.skipped}
    assert "images_002" in detail[behind[0]] and "not searched" in detail[behind[0]]
    paths = dict(zip(records.frame["image_id"], records.frame["image_path"]))
    assert paths[alias] == str((root / "spare.png").resolve())
    real_root = os.path.realpath(root)
    assert all(lies_under(p, real_root) for p in paths.values())
    assert len(records.frame) == len(pd.read_csv(corpus.csv)) - len(behind) - 1


def test_name_only_fallback_refuses_an_images_link_out(tmp_path):
    # The case: the root holds only the label file and images -> a folder outside the root.
    source = demo.write_demo_corpus(tmp_path / "src", seed=0, n_patients=4, image_size=64, n_corrupt=0,
                                    n_missing=0, workers=1)
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(source.csv, root / source.csv.name)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for folder in FOLDERS:
        for film in (source.images / folder).iterdir():
            shutil.copy(film, outside / film.name)
    os.symlink(outside, root / "images")
    records = read_nih_csv(DataSource(root / source.csv.name, root))
    assert len(records.frame) == 0
    assert set(reasons(records).values()) == {OUTSIDE_ROOT}
    assert len(records.skipped) == len(pd.read_csv(source.csv))

    # a dangling images/ link out: still refused, not pointed at
    os.remove(root / "images")
    os.symlink(tmp_path / "nowhere", root / "images")
    records = read_nih_csv(DataSource(root / source.csv.name, root))
    assert len(records.frame) == 0 and set(reasons(records).values()) == {OUTSIDE_ROOT}

    # a labels-only root (no images/ at all) keeps every row, as before
    os.remove(root / "images")
    records = read_nih_csv(DataSource(root / source.csv.name, root))
    assert records.skipped == [] and len(records.frame) == len(pd.read_csv(source.csv))


def test_preprocess_counts_and_never_decodes_images_behind_a_link(corpus, tmp_path, monkeypatch):
    import mlbench.preprocessing.cache as cache_module

    outside = tmp_path / "elsewhere"
    behind = move_out(corpus.images / FOLDERS[1], outside)
    seen: list[str] = []
    original = cache_module.read_grayscale
    monkeypatch.setattr(cache_module, "read_grayscale",
                        lambda path, *a, **k: seen.append(os.path.realpath(path)) or original(path, *a, **k))
    result = cli("preprocess", "nih-cxr14", "--csv", corpus.csv, "--images", corpus.images,
                 "--cache", tmp_path / "cache", "--workers", 1, "--size", 32)
    assert result.exit_code == 0, result.output
    summary = json.loads(next((tmp_path / "cache").glob("*/manifest.json")).read_text())
    refused = {i["image_id"] for i in summary["skipped_items"] if i["reason"].startswith(f"{OUTSIDE_ROOT}:")}
    assert refused == set(behind) & set(pd.read_csv(corpus.csv)["Image Index"])
    assert summary["ok"] > 0 and summary["skipped"] == len(refused)
    assert f"{summary['ok']} images ready, {summary['skipped']} skipped" in result.output
    assert seen and not [p for p in seen if lies_under(p, os.path.realpath(outside))]


def test_preprocess_with_every_image_behind_a_link_says_so(tmp_path):
    source = demo.write_demo_corpus(tmp_path / "src", seed=0, n_patients=4, image_size=64, n_corrupt=0,
                                    n_missing=0, workers=1)
    for folder in FOLDERS:
        move_out(source.images / folder, tmp_path / folder.replace("/", "_"))
    assert_one_error(cli("preprocess", "nih-cxr14", "--csv", source.csv, "--images", source.images,
                         "--cache", tmp_path / "cache"), OUTSIDE_ROOT)
