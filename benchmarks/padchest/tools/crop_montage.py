"""Draw every crop of a folder of chest X-rays into one montage (the NIH acceptance figure).

Usage: python benchmarks/padchest/tools/crop_montage.py [IMAGE_DIR] [--out docs/crop-montage.png]

Each tile shows the film with the crop box (green; orange when it fell back to the whole image),
the two lung regions the segmenter kept (blue), NIH's pathology box when ``boxes.csv`` has one
(red), and beside it the 224 px crop the model sees.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mlbench.foundations.io import write_bytes
from mlbench.preprocessing.images import read_grayscale
from mlbench_padchest.lungcrop import LungCrop

TILE = 128


def tile(path: Path, crop: LungCrop, boxes: pd.DataFrame) -> np.ndarray:
    image = read_grayscale(path)
    h, w = image.shape
    found = crop.locate(image)
    out = crop(image)
    s = TILE / max(h, w)
    film = cv2.cvtColor((cv2.resize(image, (TILE, TILE)) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if found.lungs:
        ws = TILE / crop.working_size
        for r in found.lungs:
            cv2.rectangle(film, (int(r.x0 * ws), int(r.y0 * ws)), (int(r.x1 * ws) - 1, int(r.y1 * ws) - 1),
                          (255, 128, 0), 1)
    for b in boxes[boxes.file == path.name].itertuples():
        cv2.rectangle(film, (int(b.x0 * s), int(b.y0 * s)), (int(b.x1 * s), int(b.y1 * s)), (0, 0, 255), 1)
    x0, y0, x1, y1 = found.box
    colour = (0, 165, 255) if found.fallback else (0, 200, 0)
    cv2.rectangle(film, (int(x0 * s), int(y0 * s)), (int(x1 * s) - 1, int(y1 * s) - 1), colour, 2)
    cv2.putText(film, path.stem[:8], (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 255), 1)
    cropped = cv2.cvtColor((cv2.resize(out.image, (TILE, TILE)) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    return np.hstack([film, cropped, np.zeros((TILE, 4, 3), np.uint8)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, nargs="?", default=Path("tests/data/nih"))
    parser.add_argument("--out", type=Path, default=Path("docs/crop-montage.png"))
    parser.add_argument("--columns", type=int, default=6)
    args = parser.parse_args()
    crop = LungCrop(size=224)
    box_file = args.images / "boxes.csv"
    boxes = pd.read_csv(box_file) if box_file.exists() else pd.DataFrame(columns=["file", "x0", "y0", "x1", "y1"])
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    tiles = [tile(p, crop, boxes) for p in paths]
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % args.columns)
    rows = [np.hstack(tiles[i:i + args.columns]) for i in range(0, len(tiles), args.columns)]
    ok, encoded = cv2.imencode(".png", np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    write_bytes(args.out, encoded.tobytes())
    print(f"{len(paths)} images -> {args.out}")


if __name__ == "__main__":
    main()
