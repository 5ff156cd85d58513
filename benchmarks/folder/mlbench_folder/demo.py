"""The folder demo: a synthetic folder of RGB colour shapes, in the folder dataset's own layout.

``labels.csv``        path, patient, then one column per shape: 1 (drawn), 0 (not drawn), -1 (drawn
                      faint and small: uncertain) or blank (not drawn, not mentioned)
``images/*.png``      8-bit RGB PNGs, shapes of random colours on a light grey noisy background
``findings.csv``      image_id, label, x0, y0, x1, y1: each drawn shape's box
``mlbench-demo.json`` the marker that makes the reader say ``synthetic``

The labels are which shapes an image holds, imbalanced as multilabel data are (SHAPE_SHARES). The
colour of a shape is drawn at random, independent of its label: the pipeline reads images as
luminance (mlbench.preprocessing.images), so colour must carry nothing the task needs. Every colour
of the palette is darker than the background in luminance, so each shape stays visible in grey.
The same (seed, options) gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mlbench import DatasetError, DataSource, mark_synthetic, write_bytes, write_findings, write_text

GENERATOR_VERSION = "1"
CSV_NAME = "labels.csv"
IMAGE_FOLDER = "images"
# Share of images holding each shape: a head, a middle and a tail, as multilabel data have.
SHAPE_SHARES = {"circle": 0.45, "square": 0.25, "triangle": 0.14, "cross": 0.08}
# RGB colours, all with luminance (0.299 R + 0.587 G + 0.114 B) between 70 and 95, well below the
# background's 170-210: a shape never vanishes when the image is read as grey.
PALETTE = ((220, 40, 40), (40, 60, 220), (30, 120, 30), (120, 30, 160), (200, 60, 120), (20, 110, 140))
UNCERTAIN_SHARE = 0.1  # of drawn shapes: drawn faint and small, labelled -1
BLANK_SHARE = 0.3  # of shapes not drawn: the cell is left blank instead of 0


def _box(cx: int, cy: int, r: int, size: int) -> tuple[int, int, int, int]:
    return max(cx - r, 0), max(cy - r, 0), min(cx + r + 1, size), min(cy + r + 1, size)


def _draw(canvas: np.ndarray, shape: str, colour: tuple[int, int, int], cx: int, cy: int, r: int) -> None:
    bgr = tuple(int(c) for c in colour[::-1])  # OpenCV draws in BGR order
    if shape == "circle":
        cv2.circle(canvas, (cx, cy), r, bgr, -1, lineType=cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(canvas, (cx - r, cy - r), (cx + r, cy + r), bgr, -1)
    elif shape == "triangle":
        points = np.array([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], np.int32)
        cv2.fillPoly(canvas, [points], bgr, lineType=cv2.LINE_AA)
    else:  # cross
        width = max(2, r // 2)
        cv2.rectangle(canvas, (cx - r, cy - width // 2), (cx + r, cy + width // 2), bgr, -1)
        cv2.rectangle(canvas, (cx - width // 2, cy - r), (cx + width // 2, cy + r), bgr, -1)


def draw_image(shapes: dict[str, bool], size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One (size, size, 3) BGR uint8 image holding ``shapes`` (name -> faint), and each shape's box."""
    background = rng.uniform(170, 210)
    canvas = np.clip(rng.normal(background, 6, (size, size, 3)), 0, 255).astype(np.uint8)
    boxes = {}
    for shape, faint in shapes.items():
        r = int(size * rng.uniform(0.07, 0.1) if faint else size * rng.uniform(0.12, 0.18))
        cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, size=2))
        colour = PALETTE[int(rng.integers(len(PALETTE)))]
        if faint:  # half-transparent: a reader would call it uncertain
            layer = canvas.copy()
            _draw(layer, shape, colour, cx, cy, r)
            canvas = cv2.addWeighted(layer, 0.45, canvas, 0.55, 0)
        else:
            _draw(canvas, shape, colour, cx, cy, r)
        boxes[shape] = _box(cx, cy, r, size)
    return canvas, boxes


def write_demo_folder(out_dir: str | Path, *, seed: int = 0, n_patients: int = 80, image_size: int = 64,
                      max_images_per_patient: int = 3) -> DataSource:
    """Write the synthetic colour-shapes folder into ``out_dir`` and return its DataSource."""
    if n_patients < 1:
        raise DatasetError(f"n_patients must be at least 1, got {n_patients}")
    if image_size < 32:
        raise DatasetError(f"image_size must be at least 32 px (shapes are drawn to scale), got {image_size}")
    if max_images_per_patient < 1:
        raise DatasetError(f"max_images_per_patient must be at least 1, got {max_images_per_patient}")
    out = Path(out_dir)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    names = list(SHAPE_SHARES)
    lines = [",".join(["path", "patient", *names])]
    finding_rows = []
    for p in range(n_patients):
        patient = f"p{p:04d}"
        for k in range(int(rng.integers(1, max_images_per_patient + 1))):
            drawn = {s: bool(rng.random() < UNCERTAIN_SHARE) for s in names if rng.random() < SHAPE_SHARES[s]}
            image, boxes = draw_image(drawn, image_size, rng)
            ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
            if not ok:
                raise DatasetError(f"OpenCV could not encode demo image {patient}_{k}")
            relative = f"{IMAGE_FOLDER}/{patient}_{k}.png"
            write_bytes(out / relative, png.tobytes())
            cells = []
            for s in names:
                if s in drawn:
                    cells.append("-1" if drawn[s] else "1")
                else:
                    cells.append("" if rng.random() < BLANK_SHARE else "0")
            lines.append(",".join([relative, patient, *cells]))
            finding_rows += [(relative, s, *box) for s, box in boxes.items()]
    write_text(out / CSV_NAME, "\n".join(lines) + "\n")
    write_findings(out, finding_rows)
    mark_synthetic(out, generator="mlbench_folder.demo", generator_version=GENERATOR_VERSION, seed=seed,
                   n_patients=n_patients, image_size=image_size)
    return DataSource(csv=out / CSV_NAME, images=out)
