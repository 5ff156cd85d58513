"""The lung crop: real NIH films (acceptance), post-processing steps, fallbacks, torch segmenter."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mlbench.preprocessing import Preprocessor
from mlbench.preprocessing.images import read_grayscale
from mlbench_padchest.lungcrop import LungCrop, best_lung_pair, components, fill_holes, separate_stuck_lungs
from mlbench_padchest.segmenters import Segmenter, ThresholdSegmenter, TorchSegmenter, make_segmenter

NIH = Path(__file__).resolve().parents[3] / "tests" / "data" / "nih"


def synthetic_film(size: int = 200, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A bright body on dark air with two dark lung fields; returns the film and the lung boxes."""
    rng = np.random.default_rng(seed)
    film = np.full((size, size), 0.05, np.float32)
    cv2.ellipse(film, (size // 2, size // 2 + size // 10), (int(size * 0.42), int(size * 0.55)), 0, 0, 360, 0.7, -1)
    lungs = []
    for cx in (int(size * 0.32), int(size * 0.68)):
        axes = (int(size * 0.12), int(size * 0.25))
        cy = int(size * 0.45)
        cv2.ellipse(film, (cx, cy), axes, 0, 0, 360, 0.25, -1)
        lungs.append((cx - axes[0], cy - axes[1], cx + axes[0] + 1, cy + axes[1] + 1))
    film += rng.normal(0, 0.02, film.shape).astype(np.float32)
    return np.clip(film, 0, 1), lungs


def contains(box, inner) -> bool:
    return box[0] <= inner[0] and box[1] <= inner[1] and box[2] >= inner[2] and box[3] >= inner[3]


def test_nih_pathology_boxes_lie_inside_the_crop_and_fallbacks_are_few():
    crop = LungCrop(size=224)
    boxes = pd.read_csv(NIH / "boxes.csv")
    paths = sorted(NIH.glob("*.png"))
    assert len(paths) == 60 and len(boxes) == 12
    fallbacks, outside, kept = [], [], []
    for path in paths:
        image = read_grayscale(path)
        found = crop.locate(image)
        if found.fallback:
            fallbacks.append((path.name, found.reason))
        x0, y0, x1, y1 = found.box
        kept.append((x1 - x0) * (y1 - y0) / image.size)
        for b in boxes[boxes.file == path.name].itertuples():
            if not (b.x0 >= x0 and b.y0 >= y0 and b.x1 <= x1 and b.y1 <= y1):
                outside.append((path.name, b.finding_label, found.box))
    assert outside == []
    # Measured: 2 of 60 fall back (a baby in a white frame, a supine whole-torso film).
    assert len(fallbacks) <= 3, fallbacks
    assert all(reason for _, reason in fallbacks)
    # The crop does remove something: on average at most 90% of the film is kept.
    assert np.mean(kept) < 0.9


def test_output_is_a_preprocessed_square_in_unit_range():
    crop = LungCrop(size=64)
    assert isinstance(crop, Preprocessor)
    film, lungs = synthetic_film()
    out = crop(film)
    assert out.image.shape == (64, 64) and out.image.dtype == np.float32
    assert out.image.min() == 0.0 and out.image.max() == 1.0
    assert out.method == "lung-crop:threshold" and not out.fallback and out.reason == ""
    x0, y0, x1, y1 = out.box
    assert 0 <= x0 < x1 <= 200 and 0 <= y0 < y1 == 200  # extended to the lower edge
    for lung in lungs:
        assert contains(out.box, lung)
    assert x0 > 0 and x1 < 200 and y0 > 0, "the crop should cut the air beside and above the body"


def test_non_square_films_keep_their_coordinates():
    film, lungs = synthetic_film(240)
    wide = np.pad(film, ((0, 0), (60, 100)), constant_values=0.05)  # 240 x 400
    found = LungCrop().locate(wide)
    assert not found.fallback
    for x0, y0, x1, y1 in lungs:
        assert contains(found.box, (x0 + 60, y0, x1 + 60, y1))
    assert found.box[3] == 240


def test_implausible_images_fall_back_to_the_whole_image_with_a_reason():
    crop = LungCrop(size=32)
    blank = crop(np.full((100, 120), 0.4, np.float32))
    assert blank.fallback and blank.box == (0, 0, 120, 100) and "blank" in blank.reason
    assert blank.image.shape == (32, 32)
    noise = [crop(np.random.default_rng(seed).random((100, 100)).astype(np.float32)) for seed in range(20)]
    assert all(n.box == (0, 0, 100, 100) and n.reason for n in noise if n.fallback)
    assert sum(not n.fallback for n in noise) <= 3  # dark blobs in noise rarely pass as two lungs
    ramp = np.tile(np.linspace(0, 1, 120, dtype=np.float32), (100, 1))
    assert crop(ramp).fallback
    one_lung, _ = synthetic_film()
    one_lung[:, 100:] = 0.7  # the right lung field whited out: no pair to keep
    result = crop(one_lung)
    assert result.fallback and "lung" in result.reason
    broken = synthetic_film()[0]
    broken[5, 5] = np.nan
    assert "NaN" in crop(broken).reason


def test_bad_options_and_shapes_are_refused():
    with pytest.raises(ValueError, match="size"):
        LungCrop(size=4)
    with pytest.raises(ValueError, match="margin"):
        LungCrop(margin=0.9)
    with pytest.raises(ValueError, match="unknown segmenter 'unet'"):
        LungCrop(segmenter="unet")
    with pytest.raises(ValueError, match="segmenter 'threshold'.*weights"):
        LungCrop(weights="unet.pt2")
    with pytest.raises(ValueError, match="2-D"):
        LungCrop().locate(np.zeros((10, 10, 3), np.float32))


def test_config_is_json_and_keys_every_option():
    base = LungCrop(size=224).config()
    json.dumps(base)
    assert base["preprocessor"] == "padchest-lung-crop" and base["segmenter"] == "threshold"
    assert LungCrop(size=128).config() != base
    assert LungCrop(margin=0.1).config() != base
    assert LungCrop(levels=(20, 40)).config() != base


def test_registered_as_padchest_lung_crop():
    from mlbench.contracts.registry import get_registry

    crop = get_registry().create("preprocessor", "padchest-lung-crop", size=96)
    assert isinstance(crop, LungCrop) and crop.size == 96


def test_fill_holes_fills_enclosed_gaps_only():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[5:8, 5:8] = False  # a hole
    mask[15:20, 15:18] = True
    mask[17:20, 16] = False  # a notch open to the edge: not a hole
    filled = fill_holes(mask)
    assert filled[5:8, 5:8].all()
    assert not filled[17:20, 16].any()
    assert (filled & ~mask).sum() == 9


def test_lungs_stuck_together_are_separated():
    mask = np.zeros((100, 100), bool)
    cv2.ellipse(mask.view(np.uint8), (30, 50), (14, 30), 0, 0, 360, 1, -1)
    cv2.ellipse(mask.view(np.uint8), (70, 50), (14, 30), 0, 0, 360, 1, -1)
    mask[28:32, 40:60] = True  # a thin bridge above the heart
    labels, stats = components(mask)
    assert len(stats) == 2  # background + one joined blob
    separated = separate_stuck_lungs(mask, labels, stats)
    assert separated is not None and len(components(separated)[1]) == 3
    pair = best_lung_pair(mask, min_area=50)
    assert pair is not None and pair[0].x1 <= 50 <= pair[1].x0


def test_small_components_are_dropped_and_the_two_lungs_kept():
    mask = np.zeros((100, 100), bool)
    mask[20:70, 15:40] = True
    mask[20:70, 60:85] = True
    mask[80:84, 45:49] = True  # a speck (bowel gas) between them
    mask[5:9, 5:9] = True
    left, right = best_lung_pair(mask, min_area=50)
    assert (left.x0, left.x1, right.x0, right.x1) == (15, 40, 60, 85)


class DarkIsLung:
    """A tiny 'segmentation network': lung logit = 40 * (0.4 - intensity), background the opposite."""

    @staticmethod
    def module():
        import torch

        conv = torch.nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor([[[[-40.0]]], [[[40.0]]]]))  # channel 0: lung
            conv.bias.copy_(torch.tensor([16.0, -16.0]))
        return conv.eval()

    @classmethod
    def save_exported(cls, path: Path, size: int) -> None:
        import torch

        torch.export.save(torch.export.export(cls.module(), (torch.zeros(1, 1, size, size),)), str(path))

    @classmethod
    def save_torchscript(cls, path: Path) -> None:
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.script(cls.module()).save(str(path))


@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_torch_segmenter_runs_a_model_from_a_file(tmp_path, fmt):
    import torch

    torch.set_num_threads(1)
    weights = tmp_path / ("lungs.pt2" if fmt == "pt2" else "lungs.pt")
    if fmt == "pt2":
        DarkIsLung.save_exported(weights, 64)
    else:
        DarkIsLung.save_torchscript(weights)
    film, lungs = synthetic_film()
    film[film < 0.15] = 0.7  # no dark air: the 'network' sees only the lungs as dark
    crop = LungCrop(size=48, segmenter="torch", weights=weights, input_size=64)
    out = crop(film)
    assert not out.fallback and out.method == "lung-crop:torch"
    for lung in lungs:
        assert contains(out.box, lung)
    config = crop.config()
    assert config["segmenter"] == "torch" and len(config["weights_sha256"]) == 64
    json.dumps(config)
    # The other channel is the background: asking for it finds no lungs.
    wrong = LungCrop(size=48, segmenter="torch", weights=weights, input_size=64, lung_channels=(1,))
    assert wrong(film).fallback


def test_torch_segmenter_errors_name_the_file(tmp_path):
    import torch

    with pytest.raises(ValueError, match="weights=PATH"):
        TorchSegmenter()
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        TorchSegmenter(tmp_path / "nowhere.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="junk.pt"):
        TorchSegmenter(tmp_path / "junk.pt")

    (tmp_path / "junk.pt2").write_bytes(b"not a program")
    with pytest.raises(ValueError, match="junk.pt2 is not a torch.export program"):
        TorchSegmenter(tmp_path / "junk.pt2")

    class Flat(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten()

    torch.export.save(torch.export.export(Flat(), (torch.zeros(1, 1, 32, 32),)), str(tmp_path / "flat.pt2"))
    with pytest.raises(ValueError, match=r"flat.pt2 must return \(1, K, S, S\)"):
        TorchSegmenter(tmp_path / "flat.pt2", input_size=32).masks(np.zeros((32, 32), np.float32))
    DarkIsLung.save_exported(tmp_path / "two.pt2", 32)
    with pytest.raises(ValueError, match="lung_channels"):
        TorchSegmenter(tmp_path / "two.pt2", input_size=32, lung_channels=(5,)).masks(np.zeros((32, 32), np.float32))


def test_any_segmenter_object_plugs_in():
    class Oracle:
        name = "oracle"

        def config(self):
            return {"segmenter": self.name}

        def masks(self, image):
            mask = np.zeros(image.shape, bool)
            h, w = image.shape
            mask[h // 4:h // 2, w // 8:w * 3 // 8] = True
            mask[h // 4:h // 2, w * 5 // 8:w * 7 // 8] = True
            return [mask]

    assert isinstance(Oracle(), Segmenter)
    crop = LungCrop(segmenter=Oracle(), to_chest_wall=False, margin=0.0)
    found = crop.locate(synthetic_film(512)[0])
    assert not found.fallback and found.box == (64, 128, 448, 512)
    assert make_segmenter("threshold").config() == ThresholdSegmenter().config()


def test_crop_files_writes_pngs_and_a_csv_listing_every_input(tmp_path):
    import shutil

    from mlbench.preprocessing.crop_files import CSV_COLUMNS, crop_files

    source = tmp_path / "films"
    (source / "sub").mkdir(parents=True)
    names = sorted(NIH.glob("*.png"))[:3]
    shutil.copy(names[0], source / "a.png")
    shutil.copy(names[1], source / "sub" / "b.png")
    (source / "broken.png").write_bytes(names[2].read_bytes()[:3000])  # truncated download
    (source / "notes.txt").write_text("ignored: not an image")
    single = tmp_path / "a.png"
    shutil.copy(names[2], single)  # same output name as films/a.png
    out = tmp_path / "out"
    seen = []
    report = crop_files([source, single, tmp_path / "absent"], out, LungCrop(size=64), bits=8, on_image=seen.append)
    frame = pd.read_csv(report.csv_path, keep_default_na=False)
    assert tuple(frame.columns) == CSV_COLUMNS
    assert len(frame) == 5 and len(seen) == 3  # 2 crops + 1 truncated decoded; 2 skipped before
    by_file = {Path(f).name if f else f: row for f, row in zip(frame.file, frame.itertuples())}
    assert by_file["broken.png"].reason.startswith("truncated")
    assert by_file["absent"].reason.startswith("missing_file")
    assert frame[frame.file == str(single)].reason.iloc[0].startswith("duplicate_name")
    crops = frame[frame.method != ""]
    assert len(crops) == 2 and set(crops.fallback) <= {"true", "false"}
    assert (crops.x1.astype(int) > crops.x0.astype(int)).all() and (crops.y1.astype(int) == 256).all()
    assert report.n_cropped == 2 and len(report.skipped) == 3
    written = cv2.imread(str(out / "sub" / "b.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (64, 64) and written.dtype == np.uint8 and written.max() == 255


def test_mlbench_crop_command(tmp_path):
    import shutil

    from click.testing import CliRunner

    from mlbench.cli import main

    film = sorted(NIH.glob("*.png"))[5]
    shutil.copy(film, tmp_path / "film.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["crop", str(tmp_path / "film.png"), "--out", str(out), "--size", "32",
                                       "-o", "margin=0.1"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "crops.csv")
    assert frame.file.tolist() == [str(tmp_path / "film.png")] and frame.method.tolist() == ["lung-crop:threshold"]
    assert cv2.imread(str(out / "film.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    bad = CliRunner().invoke(main, ["crop", str(tmp_path / "film.png"), "--out", str(out), "-o", "margin"])
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output
    unknown = CliRunner().invoke(main, ["crop", str(tmp_path / "film.png"), "--out", str(out),
                                        "--preprocessor", "nope"])
    assert unknown.exit_code != 0 and "no preprocessor named 'nope'" in unknown.output


def test_demo_corpus_lung_fields_lie_inside_the_crop(tmp_path):
    """The demo's acceptance: the lung fields the generator drew are inside the crop for >= 99%."""
    from mlbench.preprocessing.images import ImageReadError
    from mlbench_padchest.demo import LUNGS_NAME, write_demo_corpus

    source = write_demo_corpus(tmp_path / "demo", seed=0, n_patients=40, workers=1)
    lungs = pd.read_csv(tmp_path / "demo" / LUNGS_NAME)
    files = {p.name: p for p in source.images.rglob("*.png")}
    crop = LungCrop(size=64)
    inside, checked, unreadable = 0, 0, []
    for image_id, fields in lungs.groupby("image_id"):
        try:
            image = read_grayscale(files[image_id])
        except ImageReadError as err:  # the demo writes a truncated PNG on purpose
            unreadable.append((image_id, err.reason))
            continue
        box = crop.locate(image).box
        checked += 1
        inside += all(contains(box, (r.x0, r.y0, r.x1, r.y1)) for r in fields.itertuples())
    assert checked >= 40 and all(reason == "truncated" for _, reason in unreadable)
    assert inside / checked >= 0.99, f"{checked - inside} of {checked} demo films cut a lung field"
