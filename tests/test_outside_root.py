"""Image paths that leave their image root through a link are skipped as ``outside_root`` (issue 19).

The helper itself, ``mlbench crop DIR``, the preprocessing cache's check at decode time, a run's
manifest and skipped.parquet, and ``mlbench explain``. Each case puts distinctive images outside
the root and checks that they are never decoded. The readers' own cases live beside them
(benchmarks/*/tests/test_*_outside_root.py).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mlbench.data.imagepaths import OUTSIDE_ROOT, ImageRoot, resolve_image
from mlbench.foundations.paths import lies_under
from cli_checks import assert_one_error, cli

BENCH = "padchest-specific"


def write_png(path: Path, value: int = 30000, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((size, size), value, dtype=np.uint16)
    image[size // 4: 3 * size // 4, size // 8: size // 2] = value // 3  # something to crop
    ok, data = cv2.imencode(".png", image)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def record_reads(monkeypatch, module) -> list[str]:
    """Every path ``module.read_grayscale`` is asked to decode, as real paths."""
    seen: list[str] = []
    original = module.read_grayscale

    def spy(path, *args, **kwargs):
        seen.append(os.path.realpath(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(module, "read_grayscale", spy)
    return seen


def under(paths, folder: Path) -> list[str]:
    real = os.path.realpath(folder)
    return [p for p in paths if lies_under(p, real)]


# ---------------------------------------------------------------- the helper


def test_image_root_refuses_links_and_dotdot_out_and_keeps_links_inside(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_png(root / "a" / "x.png")
    write_png(outside / "secret.png")
    os.symlink(outside / "secret.png", root / "a" / "file_out.png")   # a file link out
    os.symlink(outside, root / "folder_out")                          # a folder link out
    os.symlink(root / "a" / "x.png", root / "a" / "alias.png")        # stays inside
    os.symlink(root / "a", root / "b")                                # a folder link inside
    images = ImageRoot(root)
    for cache_folders in (True, False):
        images = ImageRoot(root, cache_folders=cache_folders)
        assert images.resolve("a/x.png") == str((root / "a" / "x.png").resolve())
        assert images.resolve("a/alias.png") == str((root / "a" / "x.png").resolve())
        assert images.resolve("b/x.png") == str((root / "a" / "x.png").resolve())
        assert images.resolve(root / "b" / "x.png") == str((root / "a" / "x.png").resolve())  # absolute
        assert images.resolve("a/missing.png") == str((root / "a" / "missing.png").resolve())
        assert images.resolve("a/file_out.png") is None
        assert images.resolve("folder_out/secret.png") is None
        assert images.resolve("a/../../outside/secret.png") is None
        assert images.resolve(outside / "secret.png") is None
    assert resolve_image(root, "folder_out/secret.png") is None
    assert resolve_image(root, "b/x.png") == str((root / "a" / "x.png").resolve())
    skip = images.refusal("secret.png", "a/file_out.png")
    assert skip.reason == OUTSIDE_ROOT == "outside_root" and "a/file_out.png" in skip.detail


def test_a_root_given_through_a_link_is_its_real_folder(tmp_path):
    write_png(tmp_path / "data" / "x.png")
    os.symlink(tmp_path / "data", tmp_path / "link")
    images = ImageRoot(tmp_path / "link")
    assert images.resolve("x.png") == str((tmp_path / "data" / "x.png").resolve())
    assert images.resolve(tmp_path / "link" / "x.png") == str((tmp_path / "data" / "x.png").resolve())


# ---------------------------------------------------------------- mlbench crop


def test_crop_dir_skips_links_out_and_reads_nothing_through_them(tmp_path, monkeypatch):
    import mlbench.preprocessing.crop_files as crop_files

    films, outside, out = tmp_path / "films", tmp_path / "outside", tmp_path / "crops"
    write_png(films / "a.png")
    write_png(films / "sub" / "b.png")
    write_png(outside / "secret.png", value=65000)
    write_png(outside / "folder" / "c.png", value=65000)
    os.symlink(outside / "secret.png", films / "leak.png")
    os.symlink(outside / "folder", films / "linked")
    os.symlink(films / "a.png", films / "sub" / "alias.png")  # stays inside: cropped
    seen = record_reads(monkeypatch, crop_files)

    result = cli("crop", films, "--out", out, "--size", 32)
    assert result.exit_code == 0, result.output
    assert under(seen, outside) == []
    rows = pd.read_csv(out / "crops.csv").set_index("file")
    refused = rows[rows["reason"].fillna("").str.startswith(f"{OUTSIDE_ROOT}:")]
    assert sorted(refused.index) == [str(films / "leak.png"), str(films / "linked")]
    assert refused["x0"].isna().all()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a.png", "sub/alias.png", "sub/b.png"]
    assert "2 skipped" in result.output and OUTSIDE_ROOT in result.output


def test_crop_reads_a_link_named_on_the_command_line(tmp_path, monkeypatch):
    import mlbench.preprocessing.crop_files as crop_files

    outside = tmp_path / "outside"
    write_png(outside / "mine.png")
    os.symlink(outside / "mine.png", tmp_path / "named.png")
    seen = record_reads(monkeypatch, crop_files)
    result = cli("crop", tmp_path / "named.png", "--out", tmp_path / "crops", "--size", 32)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "crops" / "named.png").is_file() and under(seen, outside) == [str(outside / "mine.png")]


# ---------------------------------------------------------------- the cache, at decode time


def test_cache_refuses_a_path_that_became_a_link_out_after_reading(tmp_path, monkeypatch):
    import mlbench.preprocessing.cache as cache_module
    from mlbench.preprocessing.cache import build_cache
    from mlbench.preprocessing.resize import Resize

    root, outside = tmp_path / "root", tmp_path / "outside"
    real = root.resolve()
    write_png(root / "0" / "kept.png")
    write_png(root / "1" / "swapped.png")
    write_png(root / "0" / "target.png")
    # The paths as a reader wrote them (real paths inside the root) ...
    items = pd.DataFrame({"image_id": ["kept", "swapped", "aliased"],
                          "image_path": [str(real / "0" / "kept.png"), str(real / "1" / "swapped.png"),
                                         str(real / "0" / "alias.png")]})
    # ... then folder 1 is replaced by a link out holding the same name; an alias stays inside.
    write_png(outside / "swapped.png", value=65000)
    shutil.rmtree(root / "1")
    os.symlink(outside, root / "1")
    os.symlink(root / "0" / "target.png", root / "0" / "alias.png")
    seen = record_reads(monkeypatch, cache_module)

    cache = build_cache(items, Resize(size=16), 16, tmp_path / "cache", workers=1, image_root=root)
    status = cache.index.set_index("image_id")
    assert status.loc["swapped", "status"] == "skipped"
    assert status.loc["swapped", "reason"].startswith(f"{OUTSIDE_ROOT}: ")
    assert status.loc[["kept", "aliased"], "status"].tolist() == ["ok", "ok"]
    assert [s.reason for s in cache.skipped(["kept", "swapped", "aliased"])] == [OUTSIDE_ROOT]
    assert under(seen, outside) == [] and len(seen) == 2

    # Without the root the cache cannot tell and decodes through the link: the check is what refuses it.
    seen.clear()
    build_cache(items, Resize(size=16), 16, tmp_path / "cache2", workers=1)
    assert under(seen, outside) == [str(outside / "swapped.png")]


# ---------------------------------------------------------------- a run and mlbench explain


def demo_corpus(folder: Path):
    from mlbench.contracts.registry import get_registry

    dataset = get_registry().create("dataset", "padchest")
    return dataset, dataset.write_demo(folder, seed=0, n_patients=40, image_size=96)


def link_out(path: Path, outside: Path, keep: Path | None = None) -> None:
    """Replace the file or folder ``path`` by a link to ``outside``, a white copy of it (same file names),
    so a read through the link would be visible; the original moves to ``keep`` (else it is deleted)."""
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    for file in files:
        write_png(outside / file.name if path.is_dir() else outside, value=65535, size=96)
    if keep is not None:
        os.rename(path, keep)
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.symlink(outside, path)


@pytest.fixture(scope="module")
def linked_run(tmp_path_factory):
    """A tiny finished run whose image folder "1" was a link out of the image root from the start."""
    import torch

    from mlbench.results.metrics import MetricWarning
    from mlbench.training.runner import RunOptions, run

    base = tmp_path_factory.mktemp("outside_root")
    dataset, source = demo_corpus(base / "corpus")
    frame = dataset.read(source).frame  # the images the reader keeps while folder 1 is a real folder
    refused = sorted(frame.loc[frame["image_dir"] == "1", "image_id"])
    link_out(source.images / "1", base / "elsewhere")
    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        result = run(RunOptions(benchmark=BENCH, csv=source.csv, images=source.images, image_size=32, max_epochs=1,
                                backbones=("resnet10t",), ensembles=("ctp",), n_boot=10, progress=False, workers=1,
                                backbone_options={"resnet10t": {"pretrained": False}}, out=base / "run"))
    return result.run_dir, source, refused, base


def test_a_run_counts_images_behind_a_link_out_in_its_manifest_and_skip_list(linked_run):
    run_dir, _, refused, _ = linked_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    skipped = pd.read_parquet(run_dir / "skipped.parquet")
    out = skipped[skipped["reason"] == OUTSIDE_ROOT]
    assert sorted(out["item"]) == refused and set(out["stage"]) == {"data"}
    assert manifest["skipped"]["counts"][f"data:{OUTSIDE_ROOT}"] == len(refused)
    split = pd.read_parquet(run_dir / "split.parquet")
    assert not set(split["image_id"]) & set(refused)


def test_explain_leaves_out_images_that_became_links_out(linked_run, tmp_path, monkeypatch):
    import mlbench.preprocessing.images as images_module

    run_dir, source, _, base = linked_run
    split = pd.read_parquet(run_dir / "split.parquet")
    cached = pd.read_parquet(run_dir / "preprocess" / "manifest.parquet")
    usable = set(cached.loc[cached["status"] == "ok", "image_id"])
    test_ids = sorted(set(split.loc[split["split"] == "test", "image_id"]) & usable)
    assert len(test_ids) >= 3
    # After the run, two test films become links out (the cache still holds their pixels).
    gone, outside = test_ids[:2], base / "elsewhere_files"
    outside.mkdir()
    for name in gone:
        link_out(source.images / "0" / name, outside / name, keep=tmp_path / name)
    seen = record_reads(monkeypatch, images_module)
    try:
        out = tmp_path / "explained"
        # The corpus lies outside the run directory, so it is named (the manifest's paths are not followed).
        result = cli("explain", run_dir, "--split", "test", "--out", out, "--device", "cpu", "--no-score",
                     "--csv", source.csv, "--image-root", source.images)
        assert result.exit_code == 0, result.output
    finally:  # the other cases of this module use the corpus as it was
        for name in gone:
            os.remove(source.images / "0" / name)
            os.rename(tmp_path / name, source.images / "0" / name)
    explained = json.loads((out / "explain.json").read_text())
    assert "unavailable" not in explained["display"]
    refused = sorted(i["item"] for i in explained["skipped"]["items"] if i["reason"] == OUTSIDE_ROOT)
    assert refused == gone
    assert not set(explained["images"]) & set(gone) and explained["images"]
    assert seen and under(seen, outside) == [] and under(seen, base / "elsewhere") == []
    assert not any((out / name.removesuffix(".png")).exists() for name in gone)


def test_explain_a_folder_argument_says_it_is_a_folder(linked_run, tmp_path):
    run_dir, source, _, _ = linked_run
    assert_one_error(cli("explain", run_dir, source.images / "0", "--out", tmp_path / "x", "--device", "cpu"),
                     str(source.images / "0"), "folder", "image files")


def test_explain_reads_a_link_named_on_the_command_line(linked_run, tmp_path):
    run_dir, source, _, base = linked_run
    film = next((source.images / "0").iterdir())
    os.symlink(film, tmp_path / "named.png")
    result = cli("explain", run_dir, tmp_path / "named.png", "--out", tmp_path / "x", "--device", "cpu", "--no-score")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "x" / "explain.json").read_text())["images"] == ["named.png"]


def test_preprocess_counts_images_behind_a_link_out(linked_run, tmp_path, monkeypatch):
    import mlbench.preprocessing.cache as cache_module

    _, source, refused, base = linked_run
    seen = record_reads(monkeypatch, cache_module)
    result = cli("preprocess", BENCH, "--csv", source.csv, "--images", source.images, "--cache", tmp_path / "cache",
                 "--workers", 1, "--size", 32)
    assert result.exit_code == 0, result.output
    summary = json.loads(next((tmp_path / "cache").glob("*/manifest.json")).read_text())
    outside = {i["image_id"] for i in summary["skipped_items"] if i["reason"].startswith(f"{OUTSIDE_ROOT}:")}
    assert outside == set(refused)
    assert f"{summary['skipped']} skipped" in result.output and summary["skipped"] >= len(refused)
    assert under(seen, base / "elsewhere") == [] and seen
