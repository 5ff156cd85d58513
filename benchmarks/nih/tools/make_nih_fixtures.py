"""Make the downscaled NIH ChestX-ray14 test fixtures (tests/data/nih) from a folder of originals.

Usage: python benchmarks/nih/tools/make_nih_fixtures.py SOURCE_DIR [--out tests/data/nih] [--size 256]

SOURCE_DIR holds ``images/*.png``, ``metadata.csv`` and ``pathology_bbox.csv`` (NIH's
BBox_List_2017 rows: image_index, finding_label, x, y, w, h in the 1024 px files). Writes the
images resized to SIZE x SIZE, ``labels.csv`` (file, finding_labels, view_position) and
``boxes.csv`` (file, finding_label, x0, y0, x1, y1 in the fixture's pixels).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import cv2
import pandas as pd

from mlbench.foundations.io import write_bytes, write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out", type=Path, default=Path("tests/data/nih"))
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    meta = pd.read_csv(args.source / "metadata.csv")
    boxes = pd.read_csv(args.source / "pathology_bbox.csv")
    scales = {}
    for row in meta.itertuples():
        image = cv2.imread(str(args.source / row.image), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SystemExit(f"{args.source / row.image}: cannot be read")
        h, w = image.shape[:2]
        scales[row.image_index] = (args.size / w, args.size / h)
        small = cv2.resize(image, (args.size, args.size), interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise SystemExit(f"cannot encode {row.image_index}")
        write_bytes(args.out / row.image_index, encoded.tobytes())

    labels = meta[["image_index", "finding_labels", "view_position"]].rename(columns={"image_index": "file"})
    out_boxes = pd.DataFrame({
        "file": boxes.image_index,
        "finding_label": boxes.finding_label,
        "x0": [r.x * scales[r.image_index][0] for r in boxes.itertuples()],
        "y0": [r.y * scales[r.image_index][1] for r in boxes.itertuples()],
        "x1": [(r.x + r.w) * scales[r.image_index][0] for r in boxes.itertuples()],
        "y1": [(r.y + r.h) * scales[r.image_index][1] for r in boxes.itertuples()],
    })
    for name, frame in (("labels.csv", labels), ("boxes.csv", out_boxes)):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, float_format="%.2f")
        write_text(args.out / name, buffer.getvalue())
    print(f"wrote {len(meta)} images, {len(out_boxes)} boxes to {args.out}")


if __name__ == "__main__":
    main()
