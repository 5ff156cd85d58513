"""PadChest images reached through a link out of the image root are skipped as ``outside_root``
(issue 19): a numbered ImageDir folder or one file linked elsewhere, by the reader, ``datasets
inspect``'s profile and ``mlbench preprocess``; nothing is decoded through the link, and links that
stay inside the root still work."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mlbench.cli import main
from mlbench.data.imagepaths import OUTSIDE_ROOT
from mlbench.foundations.paths import lies_under
from mlbench_padchest.dataset import PadChestDataset
from mlbench_padchest.reader import profile_padchest_csv, read_padchest_csv


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def white_png() -> bytes:
    import cv2

    return cv2.imencode(".png", np.full((96, 96), 65535, np.uint16))[1].tobytes()


@pytest.fixture
def corpus(tmp_path):
    source = PadChestDataset().write_demo(tmp_path / "demo", seed=0, n_patients=30, image_size=96)
    kept = read_padchest_csv(source).frame  # what the reader keeps before anything is linked
    return source, kept


def link_folder_out(folder: Path, outside: Path) -> None:
    """Move ``folder``'s films outside, painted white (a decode through the link would show), and link it."""
    shutil.move(str(folder), str(outside))
    for film in outside.iterdir():
        film.write_bytes(white_png())
    os.symlink(outside, folder)


def test_reader_refuses_a_linked_image_folder_and_file_and_keeps_links_inside(corpus, tmp_path):
    source, kept = corpus
    images = source.images
    in_one = sorted(kept.loc[kept["image_dir"] == "1", "image_id"])
    in_zero = sorted(kept.loc[kept["image_dir"] == "0", "image_id"])
    link_folder_out(images / "1", tmp_path / "elsewhere")
    leak, alias = in_zero[0], in_zero[1]
    (tmp_path / "secret.png").write_bytes(white_png())
    (images / "0" / leak).unlink()
    os.symlink(tmp_path / "secret.png", images / "0" / leak)        # a file link out
    os.rename(images / "0" / alias, images / "spare.png")
    os.symlink(images / "spare.png", images / "0" / alias)          # a link that stays inside

    records = read_padchest_csv(source)
    refused = sorted(s.item for s in records.skipped if s.reason == OUTSIDE_ROOT)
    assert refused == sorted([leak, *in_one])
    assert all("leads outside the image root" in s.detail for s in records.skipped if s.reason == OUTSIDE_ROOT)
    paths = dict(zip(records.frame["image_id"], records.frame["image_path"]))
    assert sorted(paths) == sorted(set(kept["image_id"]) - {leak, *in_one})
    assert paths[alias] == str((images / "spare.png").resolve())
    assert all(lies_under(p, os.path.realpath(images)) for p in paths.values())
    # the unknown labels of a refused row are not listed: the row is gone as a whole
    assert not [s for s in records.skipped if s.item in in_one and s.reason != OUTSIDE_ROOT]
    every_view = read_padchest_csv(source, projections=None)  # what `datasets inspect` counts
    refused_all = [s for s in every_view.skipped if s.reason == OUTSIDE_ROOT]
    assert len(refused_all) > len(refused)  # the lateral films in folder 1 too
    assert profile_padchest_csv(source)["skipped_by_reason"][OUTSIDE_ROOT] == len(refused_all)


def test_an_image_root_given_through_a_link_is_not_outside_itself(corpus, tmp_path):
    source, kept = corpus
    os.symlink(source.images, tmp_path / "via")
    records = read_padchest_csv(type(source)(source.csv, tmp_path / "via"))
    assert not [s for s in records.skipped if s.reason == OUTSIDE_ROOT] and len(records.frame) == len(kept)


def test_preprocess_counts_and_never_decodes_a_folder_behind_a_link(corpus, tmp_path, monkeypatch):
    import mlbench.preprocessing.cache as cache_module

    source, kept = corpus
    outside = tmp_path / "elsewhere"
    link_folder_out(source.images / "1", outside)
    seen: list[str] = []
    original = cache_module.read_grayscale
    monkeypatch.setattr(cache_module, "read_grayscale",
                        lambda path, *a, **k: seen.append(os.path.realpath(path)) or original(path, *a, **k))
    result = cli("preprocess", "padchest-specific", "--csv", source.csv, "--images", source.images,
                 "--cache", tmp_path / "cache", "--workers", 1, "--size", 32)
    assert result.exit_code == 0, result.output
    summary = json.loads(next((tmp_path / "cache").glob("*/manifest.json")).read_text())
    refused = {i["image_id"] for i in summary["skipped_items"] if i["reason"].startswith(f"{OUTSIDE_ROOT}:")}
    assert refused == set(kept.loc[kept["image_dir"] == "1", "image_id"])
    assert f"{summary['ok']} images ready, {summary['skipped']} skipped" in result.output
    assert summary["ok"] > 0 and summary["skipped"] >= len(refused)
    assert seen and not [p for p in seen if lies_under(p, os.path.realpath(outside))]
