"""Image input: bit depths, colour, EXIF, broken files, absurd sizes and MONOCHROME1 detection."""

from __future__ import annotations

import io
import struct
import zlib
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
    (tmp_path / "headless.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    cases = {"corrupt.png": "unreadable_image", "empty.png": "empty_image", "text.png": "unsupported_format",
             "headless.png": "unreadable_image", "absent.png": "missing_file"}
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
    assert header_size(b"GIF89a....") is None  # cut short
    assert header_size(b"P5\n70 30\n255\n") is None  # a format mlbench does not open


# --- every format's size from its header, before any decoder runs ---------------------------


def tiff(width: int, height: int, strip: bytes, *, order: str = "<", big: bool = False,
         compression: int = 1) -> bytes:
    """A one-strip 8-bit grey TIFF built by hand: either byte order, classic or BigTIFF."""
    magic = (b"II" if order == "<" else b"MM") + struct.pack(order + "H", 43 if big else 42)
    header = magic + (struct.pack(order + "HHQ", 8, 0, 0) if big else struct.pack(order + "I", 0))
    strip_at = len(header)
    ifd_at = strip_at + len(strip) + len(strip) % 2
    short, long_ = 3, 4
    entries = [(256, 16 if big else long_, width), (257, 16 if big else long_, height), (258, short, 8),
               (259, short, compression), (262, short, 1), (273, long_, strip_at), (277, short, 1),
               (278, long_, height), (279, long_, len(strip))]
    value_size = 8 if big else 4
    body = struct.pack(order + ("Q" if big else "H"), len(entries))
    for tag, kind, value in entries:
        packed = struct.pack(order + {3: "H", 4: "I", 16: "Q"}[kind], value).ljust(value_size, b"\0")
        body += struct.pack(order + ("HHQ" if big else "HHI"), tag, kind, 1) + packed
    body += b"\0" * value_size  # no next IFD
    header = header[:4] + (struct.pack(order + "HHQ", 8, 0, ifd_at) if big else struct.pack(order + "I", ifd_at))
    return header + strip + b"\0" * (len(strip) % 2) + body


def gif(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    """A GIF with a two-colour palette, one comment extension and one (empty) frame."""
    out = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    out += b"\x21\xfe\x05hello\x00"  # an extension before the frame is skipped
    return out + b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame, 0) + b"\x02\x02\x4c\x01\x00\x3b"


def webp_vp8x(width: int, height: int) -> bytes:
    chunk = b"VP8X" + struct.pack("<I", 10) + b"\0" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value):]


def _pil(image: np.ndarray, fmt: str, **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_header_size_matches_what_the_decoder_makes_for_every_format():
    image = gradient(37, 53, np.uint8)
    pixels = image.tobytes()
    files = {
        "tiff": encode(image, ".tif"), "tiff-deflate": _pil(image, "TIFF", compression="tiff_adobe_deflate"),
        "tiff-le": tiff(53, 37, pixels), "tiff-be": tiff(53, 37, pixels, order=">"),
        "bigtiff-le": tiff(53, 37, pixels, big=True), "bigtiff-be": tiff(53, 37, pixels, order=">", big=True),
        "bmp": encode(image, ".bmp"), "bmp-top-down": None, "gif": _pil(image, "GIF"),
        "webp-lossless": encode(image, ".webp"), "webp-lossy": _pil(image, "WEBP", quality=80),
        "webp-extended": _pil(image, "WEBP", lossless=True, xmp=b"<x/>"),  # metadata needs the VP8X header
    }
    files["bmp-top-down"] = _patched(files["bmp"], 22, struct.pack("<i", -37))
    assert files["webp-lossy"][12:16] == b"VP8 " and files["webp-extended"][12:16] == b"VP8X"
    for name, data in files.items():
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded is not None, name
        assert header_size(data) == (decoded.shape[1], decoded.shape[0]) == (53, 37), name
    for name in ("tiff-le", "tiff-be", "bigtiff-le", "bigtiff-be"):  # the hand-made TIFFs hold the pixels
        np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(files[name], np.uint8), cv2.IMREAD_UNCHANGED), image)


def test_every_format_reads_as_grey(tmp_path):
    image = gradient(37, 53, np.uint8)
    files = {"a.tif": encode(gradient(37, 53), ".tif"), "a.bmp": encode(image, ".bmp"),
             "a.gif": _pil(image, "GIF"), "a.webp": encode(image, ".webp")}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        out = read_grayscale(tmp_path / name, invert=False)
        assert out.shape == (37, 53) and np.abs(out - image / 255.0).mean() < 0.01, name


BOMBS = {  # a few hundred bytes each; decoded, each would take 400 MB to gigabytes
    "deflate.tif": (tiff(20_000, 20_000, zlib.compress(bytes(20_000)), compression=8), (20_000, 20_000)),
    "big-endian.tif": (tiff(20_000, 20_000, b"", order=">", compression=8), (20_000, 20_000)),
    "bigtiff.tif": (tiff(200_000, 200_000, b"", big=True, compression=8), (200_000, 200_000)),
    "huge.bmp": (_patched(encode(gradient(8, 8, np.uint8), ".bmp"), 18, struct.pack("<ii", 20_000, 20_000)),
                 (20_000, 20_000)),
    "screen.gif": (gif((20_000, 20_000), (8, 8)), (20_000, 20_000)),
    "frame.gif": (gif((8, 8), (20_000, 20_000)), (20_000, 20_000)),  # a frame far beyond its screen
    "lossless.webp": (_patched(encode(gradient(8, 8, np.uint8), ".webp"), 21,
                               struct.pack("<I", 16_383 | 16_383 << 14)), (16_384, 16_384)),
    "lossy.webp": (_patched(_pil(gradient(8, 8, np.uint8), "WEBP", quality=80), 26,
                            struct.pack("<HH", 16_383, 16_383)), (16_383, 16_383)),
    "extended.webp": (webp_vp8x(20_000, 20_000), (20_000, 20_000)),
}


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails the test if OpenCV is asked to decode anything."""
    def refuse(*args, **kwargs):
        raise AssertionError("the decoder ran before the size check")

    monkeypatch.setattr(cv2, "imdecode", refuse)
    monkeypatch.setattr(cv2, "imread", refuse)


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_image_bombs_are_refused_from_the_header(name, tmp_path, no_decoding):
    data, size = BOMBS[name]
    assert len(data) < 2_000 and header_size(data) == size
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageReadError) as err:
        read_grayscale(tmp_path / name)
    assert err.value.reason == "too_large" and f"{size[0]} x {size[1]} pixels" in err.value.detail


def test_formats_mlbench_cannot_size_are_refused_undecoded(tmp_path, no_decoding):
    image = gradient(8, 8, np.uint8)
    files = {"a.pgm": b"P5\n8 8\n255\n" + image.tobytes(), "a.hdr": b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n",
             "a.ras": b"\x59\xa6\x6a\x95" + bytes(28), "a.jp2": b"\0\0\0\x0cjP  \r\n\x87\n",
             "a.txt.png": b"not an image at all"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError) as err:
            read_grayscale(tmp_path / name)
        assert err.value.reason == "unsupported_format", name
        assert "unsupported image format" in err.value.detail
    # a known format whose header is cut short or points past the file: no size, no decoding
    cut = {"cut.tif": b"II*\0\x08\0\0\0\x09\0", "far.tif": b"MM\0*\xff\xff\xff\xf0", "cut.gif": b"GIF89a\x08\0",
           "cut.webp": b"RIFF\0\0\0\0WEBPVP8 ", "cut.bmp": b"BM" + bytes(12)}
    for name, data in cut.items():
        assert header_size(data) is None, name
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError) as err:
            read_grayscale(tmp_path / name)
        assert err.value.reason == "unreadable_image", name


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
