"""Image input: bit depths, colour, EXIF, broken files, absurd sizes and MONOCHROME1 detection."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from mlbench.preprocessing.images import (
    ImageReadError,
    area_downscale,
    header_size,
    inversion_cues,
    looks_inverted,
    read_grayscale,
)

NIH = Path(__file__).parent / "data" / "nih"


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


def gradient(h: int = 48, w: int = 64, dtype=np.uint16) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.round(np.linspace(0, top, h * w).reshape(h, w)).astype(dtype)


def test_16bit_png_keeps_its_full_range(tmp_path):
    image = gradient()
    (tmp_path / "a.png").write_bytes(encode(image))
    out = read_grayscale(tmp_path / "a.png", invert=False)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, image / 65535.0, atol=1e-6)
    # 16 bits survive: neighbouring values that 8 bits would merge stay distinct
    assert len(np.unique(out)) == image.size


def test_8bit_png_and_jpeg_scale_by_255(tmp_path):
    image = gradient(dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(encode(image))
    (tmp_path / "a.jpg").write_bytes(encode(image, ".jpg"))
    np.testing.assert_allclose(read_grayscale(tmp_path / "a.png", invert=False), image / 255.0, atol=1e-6)
    jpeg = read_grayscale(tmp_path / "a.jpg", invert=False)
    assert jpeg.shape == image.shape and np.abs(jpeg - image / 255.0).mean() < 0.02


def test_colour_is_reduced_to_one_channel(tmp_path):
    grey = gradient(dtype=np.uint8)
    (tmp_path / "rgb.png").write_bytes(encode(np.dstack([grey, grey, grey])))
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 7)])
    (tmp_path / "rgba.png").write_bytes(encode(rgba))
    for name in ("rgb.png", "rgba.png"):
        out = read_grayscale(tmp_path / name, invert=False)
        assert out.ndim == 2
        np.testing.assert_allclose(out, grey / 255.0, atol=1 / 255)
    # a truly coloured pixel becomes its luminance, not one channel
    pixel = np.zeros((16, 16, 3), np.uint8)
    pixel[..., 2] = 255  # pure red in BGR
    (tmp_path / "red.png").write_bytes(encode(pixel))
    assert read_grayscale(tmp_path / "red.png", invert=False)[0, 0] == pytest.approx(0.299, abs=0.01)


def test_exif_orientation_is_ignored(tmp_path):
    from PIL import Image

    image = np.zeros((40, 80), np.uint8)
    image[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees": a viewer would show 80 x 40
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", exif=exif.tobytes())
    (tmp_path / "exif.jpg").write_bytes(buffer.getvalue())
    out = read_grayscale(tmp_path / "exif.jpg", invert=False)
    assert out.shape == (40, 80)
    assert out[:, :15].mean() > 0.9 and out[:, 30:].mean() < 0.1


def test_truncated_16bit_png_is_reported_as_truncated(tmp_path):
    data = encode(gradient(200, 300))
    for keep in (0.3, 0.9, len(data) - 1):
        cut = data[: int(len(data) * keep)] if keep < 1 else data[:keep]
        (tmp_path / "cut.png").write_bytes(cut)
        with pytest.raises(ImageReadError) as err:
            read_grayscale(tmp_path / "cut.png")
        assert err.value.reason == "truncated" and "cut.png" in str(err.value)


def test_truncated_jpeg_is_reported_as_truncated(tmp_path):
    data = encode(gradient(dtype=np.uint8), ".jpg")
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as err:
        read_grayscale(tmp_path / "cut.jpg")
    assert err.value.reason == "truncated"


def test_corrupt_missing_empty_and_non_images(tmp_path):
    data = bytearray(encode(gradient(64, 64)))
    middle = len(data) // 2
    data[middle:middle + 20] = b"\x00" * 20  # complete file, damaged pixel data
    (tmp_path / "corrupt.png").write_bytes(bytes(data))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    cases = {"corrupt.png": "unreadable_image", "empty.png": "empty_image", "text.png": "unreadable_image",
             "absent.png": "missing_file"}
    for name, reason in cases.items():
        with pytest.raises(ImageReadError) as err:
            read_grayscale(tmp_path / name)
        assert err.value.reason == reason, name
        assert err.value.path.endswith(name)


def test_absurd_sizes_are_refused_before_decoding(tmp_path):
    data = bytearray(encode(gradient(8, 8)))
    data[16:24] = struct.pack(">II", 60_000, 60_000)  # the header claims 3.6 gigapixels
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as err:
        read_grayscale(tmp_path / "bomb.png")
    assert err.value.reason == "too_large" and "60000 x 60000" in err.value.detail
    # a detector-sized film is fine; the limit is a parameter
    (tmp_path / "big.png").write_bytes(encode(np.zeros((4000, 4000), np.uint16)))
    assert read_grayscale(tmp_path / "big.png").shape == (4000, 4000)
    with pytest.raises(ImageReadError, match="too_large"):
        read_grayscale(tmp_path / "big.png", max_pixels=1_000_000)


def test_header_size_reads_png_and_jpeg():
    assert header_size(encode(gradient(30, 70))) == (70, 30)
    assert header_size(encode(gradient(30, 70, np.uint8), ".jpg")) == (70, 30)
    assert header_size(b"GIF89a....") is None


def test_area_downscale_uses_whole_factors_and_keeps_the_mean():
    image = np.random.default_rng(0).random((1003, 2010)).astype(np.float32)
    small = area_downscale(image, 224, 224)
    assert small.shape == (250, 502)  # factor 4, the three odd rows and two columns dropped
    assert small.mean() == pytest.approx(image[:1000, :2008].mean(), abs=1e-4)
    assert area_downscale(image, 600, 600) is image  # factor 1: untouched


def nih_films() -> list[np.ndarray]:
    paths = sorted(NIH.glob("*.png"))
    assert len(paths) == 60, "tests/data/nih should hold the 60 NIH fixtures"
    return [read_grayscale(p, invert=False) for p in paths]


def test_monochrome1_detection_on_real_films():
    films = nih_films()
    flagged = [i for i, film in enumerate(films) if looks_inverted(film)]
    missed = [i for i, film in enumerate(films) if not looks_inverted(1.0 - film)]
    assert flagged == [], "normal films taken for inverted ones"
    assert missed == [], "inverted films not detected"


def test_each_cue_flips_sign_with_the_image():
    film = nih_films()[3]
    cues, flipped = inversion_cues(film), inversion_cues(1.0 - film)
    for name in cues:
        assert cues[name] == pytest.approx(-flipped[name], abs=0.02), name


def test_read_grayscale_inverts_detected_or_forced(tmp_path):
    original = cv2.imread(str(sorted(NIH.glob("*.png"))[0]), cv2.IMREAD_UNCHANGED)
    (tmp_path / "m1.png").write_bytes(encode(255 - original))
    (tmp_path / "m2.png").write_bytes(encode(original))
    expected = original / 255.0
    np.testing.assert_allclose(read_grayscale(tmp_path / "m1.png"), expected, atol=1e-6)
    np.testing.assert_allclose(read_grayscale(tmp_path / "m2.png"), expected, atol=1e-6)
    np.testing.assert_allclose(read_grayscale(tmp_path / "m1.png", invert=False), 1 - expected, atol=1e-6)
    np.testing.assert_allclose(read_grayscale(tmp_path / "m2.png", invert=True), 1 - expected, atol=1e-6)


def test_blank_image_is_not_called_inverted():
    assert not looks_inverted(np.full((64, 64), 0.3, np.float32))
