"""Decoding X-ray files into float32 grayscale arrays in [0, 1] without losing 16-bit range.

- PNG (8- and 16-bit), JPEG, TIFF (and BigTIFF), BMP, GIF and WebP; colour files are reduced to
  one channel, an alpha channel dropped. Any other format is refused (``unsupported_format``).
- EXIF orientation is ignored: detectors write pixels the way they should be read.
- No decompression-bomb limit to trip over (OpenCV, not PIL), but every file's size is read from
  its header and absurd sizes (``max_pixels``) are refused before the decoder runs: a few-kB
  deflate TIFF or BMP can declare 20000 x 20000 pixels.
- Truncated files are caught from their trailer (a PNG without its IEND chunk, a JPEG without its
  end-of-image marker) instead of trusting a decoder that may hand back half an image.
- MONOCHROME1-style images (lungs white, bones black) are detected and turned the right way up,
  or forced with ``invert=True/False`` when the source says what they are.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

# 100 megapixels (400 MB as float32): far above any chest detector (PadChest reaches ~4k x 4k).
MAX_PIXELS = 100_000_000

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk type and its fixed CRC
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"


class ImageReadError(Exception):
    """The file is missing, truncated or not an image; ``reason`` is a short code for manifests.

    Reasons: ``missing_file``, ``empty_image``, ``truncated``, ``too_large``, ``unreadable_image``,
    ``unsupported_format``.
    """

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        self.path, self.reason, self.detail = str(path), reason, detail
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")


# Magic bytes of the formats mlbench opens. Anything else is refused before a decoder sees it:
# OpenCV also decodes PNM, PFM, HDR, Sun raster, JPEG 2000, AVIF, ... whose sizes are not checked here.
FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bigtiff": "BigTIFF", "bmp": "BMP", "gif": "GIF",
           "webp": "WebP"}


def image_format(data: bytes) -> str | None:
    """The format's key in :data:`FORMATS` from the file's first bytes; None for any other format."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_START):
        return "jpeg"
    if data[:4] in (b"II*\0", b"MM\0*"):
        return "tiff"
    if data[:4] in (b"II+\0", b"MM\0+"):
        return "bigtiff"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the image a decoder would allocate, read from the header without decoding.

    Covers every format in :data:`FORMATS`; None for another format or a header that does not say
    (cut short, malformed). Nothing here allocates more than the header's few bytes.
    """
    fmt = image_format(data)
    if fmt is None:
        return None
    try:
        size = _SIZERS[fmt](data)
    except (struct.error, IndexError):  # the header ends early or points past the file
        return None
    return None if size is None else (int(size[0]), int(size[1]))


def _png_size(data: bytes) -> tuple[int, int] | None:
    return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2  # fill bytes and markers without a length
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


TIFF_IMAGE_WIDTH, TIFF_IMAGE_LENGTH = 256, 257
TIFF_INTEGER_TYPES = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8 (BigTIFF)


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of the first IFD: the image OpenCV decodes from a TIFF."""
    order = "<" if data[:2] == b"II" else ">"
    if data[2:4] in (b"+\0", b"\0+"):  # BigTIFF: 8-byte offsets and counts, 20-byte entries
        if struct.unpack(order + "H", data[4:6])[0] != 8:
            return None
        ifd = struct.unpack(order + "Q", data[8:16])[0]
        count, first, entry_size, value_at = struct.unpack_from(order + "Q", data, ifd)[0], ifd + 8, 20, 12
    else:
        ifd = struct.unpack(order + "I", data[4:8])[0]
        count, first, entry_size, value_at = struct.unpack_from(order + "H", data, ifd)[0], ifd + 2, 12, 8
    found: dict[int, int] = {}
    for k in range(count):
        at = first + k * entry_size
        if at + entry_size > len(data):
            return None
        tag, kind = struct.unpack_from(order + "HH", data, at)
        if tag in (TIFF_IMAGE_WIDTH, TIFF_IMAGE_LENGTH):
            if kind not in TIFF_INTEGER_TYPES:
                return None
            found[tag] = struct.unpack_from(order + TIFF_INTEGER_TYPES[kind], data, at + value_at)[0]
            if len(found) == 2:
                return found[TIFF_IMAGE_WIDTH], found[TIFF_IMAGE_LENGTH]
    return None


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    info_size = struct.unpack_from("<I", data, 14)[0]
    if info_size == 12:  # BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack_from("<HH", data, 18)
    if info_size < 16:
        return None
    width, height = struct.unpack_from("<ii", data, 18)
    return (width, abs(height)) if width >= 0 else None  # a negative height means top-down rows


def _gif_size(data: bytes) -> tuple[int, int] | None:
    """The logical screen, widened to the first frame where that frame reaches beyond it."""
    screen_w, screen_h, flags = struct.unpack_from("<HHB", data, 6)
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # skip the global colour table
    while True:
        block = data[i]
        if block == 0x2C:  # image descriptor
            left, top, width, height = struct.unpack_from("<HHHH", data, i + 1)
            return max(screen_w, left + width), max(screen_h, top + height)
        if block != 0x21:  # neither an extension: the trailer or garbage, no frame
            return None
        i += 2
        while data[i]:  # sub-blocks up to the empty terminator
            i += data[i] + 1
        i += 1


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: a key frame's start code, then two 14-bit sizes
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: a signature byte, then 14 bits each of width - 1 and height - 1
        if data[20] != 0x2F:
            return None
        bits = struct.unpack_from("<I", data, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: the canvas, 24 bits each of width - 1 and height - 1
        if len(data) < 30:
            return None
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


_SIZERS = {"png": _png_size, "jpeg": _jpeg_size, "tiff": _tiff_size, "bigtiff": _tiff_size, "bmp": _bmp_size,
           "gif": _gif_size, "webp": _webp_size}


def is_truncated(data: bytes) -> bool:
    """True when a PNG lacks its IEND chunk or a JPEG its end-of-image marker (a cut-off download)."""
    tail = data[-4096:]
    if data.startswith(PNG_SIGNATURE):
        return PNG_END not in tail
    if data.startswith(JPEG_START):
        return JPEG_END not in tail
    return False


def read_grayscale(path: str | Path, *, invert: bool | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image (see the module docstring for formats) as (H, W) float32 in [0, 1], scaled by the file's bit depth.

    ``invert``: True flips intensities (a MONOCHROME1 source), False keeps them, None (default)
    flips only when :func:`looks_inverted` says the lungs are brighter than the body.
    Raises :class:`ImageReadError` with a reason code for anything that is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "missing_file")
    data = path.read_bytes()
    if not data:
        raise ImageReadError(path, "empty_image", "the file has 0 bytes")
    if image_format(data) is None:
        raise ImageReadError(path, "unsupported_format",
                             "unsupported image format (expected PNG, JPEG, TIFF, BMP, GIF or WebP)")
    size = header_size(data)
    if size is None:  # never hand a decoder a file whose size it would learn only by allocating it
        raise ImageReadError(path, "unreadable_image", "the header does not give the image size (cut short or malformed)")
    width, height = size
    if width == 0 or height == 0:
        raise ImageReadError(path, "empty_image", f"the header says {width} x {height} pixels")
    if width * height > max_pixels:
        raise ImageReadError(path, "too_large", f"{width} x {height} pixels exceeds the limit of {max_pixels:,}")
    if is_truncated(data):
        raise ImageReadError(path, "truncated", "the file ends before the image's end marker")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(path, "unreadable_image", "the decoder could not read this file (corrupt or not an image)")
    if image.size == 0:
        raise ImageReadError(path, "empty_image", "the decoded image has no pixels")
    if image.shape[0] * image.shape[1] > max_pixels:  # a decoder that disagrees with the header
        raise ImageReadError(path, "too_large", f"{image.shape[1]} x {image.shape[0]} pixels exceeds {max_pixels:,}")
    image = _one_channel(image)
    if np.issubdtype(image.dtype, np.integer):
        scale = 1.0 / float(np.iinfo(image.dtype).max)
        image = image.astype(np.float32)
        image *= scale
    else:  # float files (TIFF, EXR) are taken as already on the [0, 1] scale
        image = np.clip(image.astype(np.float32), 0.0, 1.0)
    if invert is None:
        invert = looks_inverted(image)
    if invert:
        np.subtract(1.0, image, out=image)
    return image


def _one_channel(image: np.ndarray) -> np.ndarray:
    """Grey stays grey; BGR(A) becomes luminance, grey + alpha keeps the grey."""
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels == 1:
        return image[..., 0]
    if channels == 2:
        return image[..., 0]
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_BGR2GRAY)


def normalize_intensity(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Stretch the [low, high] percentiles to [0, 1]: detectors use very different value ranges."""
    lo, hi = np.percentile(image, [low, high])
    if hi - lo < 1e-6:
        return np.zeros_like(image, dtype=np.float32)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def area_downscale(image: np.ndarray, min_width: int, min_height: int) -> np.ndarray:
    """Shrink by the largest whole factor that keeps at least ``min_width`` x ``min_height``.

    OpenCV's area averaging is about 7x faster for a whole factor than for an arbitrary size, so
    callers shrink a 3000-pixel film this way first and finish with an ordinary resize.
    """
    h, w = image.shape[:2]
    factor = min(w // max(1, min_width), h // max(1, min_height))
    if factor < 2:
        return image
    h, w = h - h % factor, w - w % factor  # drop the few edge pixels that do not fill a block
    return cv2.resize(image[:h, :w], (w // factor, h // factor), interpolation=cv2.INTER_AREA)


# --- MONOCHROME1 detection -------------------------------------------------------------------
# Three cues, each positive for a normal film (lungs dark, body bright) and exactly negated by
# inverting the image. Each one fails on some odd film (a baby in a white frame, an AP film full
# of bright shoulders); they fail on different films, so the majority decides.


def _thumbnail(image: np.ndarray, size: int = 128) -> np.ndarray:
    """The film squeezed to size x size and percentile-normalised: all the cues need."""
    small = cv2.resize(area_downscale(image, size, size), (size, size), interpolation=cv2.INTER_AREA)
    return normalize_intensity(small, 1.0, 99.0)


def mediastinum_cue(thumb: np.ndarray) -> float:
    """Middle strip (mediastinum, spine) minus the two lung strips beside it, in the mid rows."""
    band = thumb[32:83]  # rows 25% to 65% of the 128-pixel thumbnail
    centre = np.median(band[:, 54:74])
    lungs = (np.median(band[:, 19:45]) + np.median(band[:, 83:109])) / 2
    return float(centre - lungs)


def enclosed_regions_cue(thumb: np.ndarray) -> float:
    """Area of large dark regions enclosed by brighter ones minus that of bright regions enclosed
    by darker ones, over several intensity levels (lungs are dark islands inside the body)."""
    equalised = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply((thumb * 255).astype(np.uint8))
    equalised = cv2.GaussianBlur(equalised, (0, 0), 1.5)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    centre = equalised[25:103, 25:103]
    total = 0.0
    levels = (20, 30, 40, 50, 60, 70, 80)
    # All fourteen thresholds from one partition of the centre (the same values as one call each).
    cuts = np.percentile(centre, [*levels, *(100 - q for q in levels)])
    for low, high in zip(cuts[:len(levels)], cuts[len(levels):]):
        dark = cv2.morphologyEx((equalised < low).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        bright = cv2.morphologyEx((equalised > high).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        total += _enclosed_fraction(dark) - _enclosed_fraction(bright)
    return total / len(levels)


def _enclosed_fraction(mask: np.ndarray, border: int = 2, min_area: int = 80) -> float:
    """Image fraction covered by the two largest regions that stay clear of the image edge."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    h, w = mask.shape
    x, y, bw, bh, area = stats[1:].T
    inside = (x > border) & (y > border) & (x + bw < w - border) & (y + bh < h - border) & (area >= min_area)
    return float(np.sort(area[inside])[::-1][:2].sum()) / mask.size


def tophat_cue(thumb: np.ndarray) -> float:
    """Black top-hat minus white top-hat with a disc a quarter of the film wide: dark structures of
    lung size outweigh bright ones of that size on a normal film (whole film and its centre)."""
    small = cv2.resize(thumb, (64, 64), interpolation=cv2.INTER_AREA)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17))
    dark = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, disc, borderType=cv2.BORDER_REPLICATE)
    bright = cv2.morphologyEx(small, cv2.MORPH_TOPHAT, disc, borderType=cv2.BORDER_REPLICATE)
    difference = dark - bright
    return float((difference.mean() + difference[12:52, 12:52].mean()) / 2)


def inversion_cues(image: np.ndarray) -> dict[str, float]:
    """The three polarity cues; each is positive for a normal (MONOCHROME2) chest film."""
    return _cues(_thumbnail(image))


def _cues(thumb: np.ndarray) -> dict[str, float]:
    return {"mediastinum": mediastinum_cue(thumb), "enclosed_regions": enclosed_regions_cue(thumb),
            "tophat": tophat_cue(thumb)}


def looks_inverted(image: np.ndarray) -> bool:
    """True when at least two of the three cues say the lungs are brighter than the body.

    Measured on 60 real NIH ChestX-ray14 films: no normal film is flagged and all 60 inverted
    copies are (see tests/test_images.py). Built for frontal chest films; pass ``invert``
    explicitly for other views when the source records the photometric interpretation.
    """
    if min(image.shape) < 16:
        return False
    thumb = _thumbnail(image)
    if float(thumb.max() - thumb.min()) < 1e-6:  # blank: nothing to tell
        return False
    # The two cheap cues first: when they agree the majority is decided, and the enclosed-regions
    # cue (about nine tenths of the cost) is needed only to break a tie.
    votes = (mediastinum_cue(thumb) < 0) + (tophat_cue(thumb) < 0)
    if votes != 1:
        return votes == 2
    return enclosed_regions_cue(thumb) < 0


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a float image to (size, size); INTER_AREA when shrinking avoids aliasing."""
    h, w = image.shape
    interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
    return cv2.resize(image.astype(np.float32, copy=False), (size, size), interpolation=interp)
