"""Derive ``mlbench_padchest/demo_labelsets.json``: the real PA label sets the demo corpus samples.

A maintainer tool, run by hand; neither the package nor its tests run it. It reads the public
PadChest label CSV (research-use data, never committed) as the torchxrayvision 1.5.7 wheel ships it,
keeps the PA rows with a Labels value, strips each item, restricts it to the 35 labels of
``padchest-specific`` ('exclude' and every other label dropped) and counts the distinct label sets.
Only counts ship: no image id, patient, report or any other row-level field.

Usage::

    python benchmarks/padchest/tools/derive_demo_labelsets.py [--csv PATH] [--min-count 3]

The output format (version 1)::

    {"format": "mlbench-padchest-demo-labelsets", "version": 1, "source": {...},
     "labels": [the 35 labels, Table 8's order],
     "n_images": PA images with a Labels value,
     "min_count": sets seen fewer times than this go to the remainder,
     "sets": [[[label index, ...], count], ...]    # most frequent first; [] = none of the 35
     "remainder": {"n_images": int,
                   "size_counts": [images with 1 label, with 2, ...],
                   "label_counts": [per label, in "labels" order],
                   "pair_counts": [[i, j, images carrying both], ...]}}   # i < j, nonzero only

The remainder's pair counts let the demo rebuild its co-occurrence (the rare sets are the
multi-label ones, so dropping them would lose most co-occurrence of the rarer labels).

The sets plus the remainder's label counts add up to the PA count of every label
(``mlbench_padchest.labels.PA_COUNTS``); the script checks that before writing.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.resources
import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from mlbench.foundations.io import write_text
from mlbench_padchest.labels import PA_COUNTS, SPECIFIC_LABELS

CSV_NAME = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "mlbench_padchest" / "demo_labelsets.json"


def default_csv() -> Path:
    """The real CSV as installed with torchxrayvision (the ``test`` extra)."""
    return Path(str(importlib.resources.files("torchxrayvision") / "data" / CSV_NAME))


def count_label_sets(csv: Path) -> tuple[Counter, int]:
    """Count each distinct set of the 35 labels over the PA rows; returns (counts, images)."""
    frame = pd.read_csv(csv, usecols=["ImageID", "Projection", "Labels"], low_memory=False)
    pa = frame[(frame["Projection"] == "PA") & frame["Labels"].notna()]
    index = {label: j for j, label in enumerate(SPECIFIC_LABELS)}
    counts: Counter = Counter()
    for row, text in zip(pa["ImageID"], pa["Labels"]):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError) as error:
            raise SystemExit(f"{csv}: image {row}: Labels is not a list literal ({error}): {text!r}")
        kept = {index[item.strip()] for item in items if item.strip() in index}
        counts[tuple(sorted(kept))] += 1
    return counts, len(pa)


def build_table(counts: Counter, n_images: int, min_count: int, source: dict) -> dict:
    """Split the counts into frequent sets and a remainder summarised by set size and label counts."""
    frequent = sorted(((s, n) for s, n in counts.items() if n >= min_count), key=lambda item: (-item[1], item[0]))
    rare = [(s, n) for s, n in counts.items() if n < min_count]
    sizes: Counter = Counter()
    pairs: Counter = Counter()
    label_counts = [0] * len(SPECIFIC_LABELS)
    for labels, n in rare:
        sizes[len(labels)] += n
        for k, j in enumerate(labels):
            label_counts[j] += n
            for other in labels[k + 1:]:
                pairs[(j, other)] += n
    if 0 in sizes:
        raise SystemExit("the empty set is rarer than --min-count; lower it")
    max_size = max(sizes) if sizes else 0
    return {
        "format": "mlbench-padchest-demo-labelsets",
        "version": 1,
        "source": source,
        "labels": list(SPECIFIC_LABELS),
        "n_images": n_images,
        "min_count": min_count,
        "sets": [[list(labels), n] for labels, n in frequent],
        "remainder": {
            "n_images": sum(n for _, n in rare),
            "size_counts": [sizes.get(k, 0) for k in range(1, max_size + 1)],
            "label_counts": label_counts,
            "pair_counts": [[i, j, n] for (i, j), n in sorted(pairs.items())],
        },
    }


def check_table(table: dict) -> None:
    """The table must reproduce the real PA count of every label."""
    totals = list(table["remainder"]["label_counts"])
    for labels, n in table["sets"]:
        for j in labels:
            totals[j] += n
    wrong = {label: (totals[j], PA_COUNTS[label]) for j, label in enumerate(table["labels"]) if totals[j] != PA_COUNTS[label]}
    if wrong:
        raise SystemExit(f"derived counts differ from PA_COUNTS (derived, expected): {wrong}")
    images = table["remainder"]["n_images"] + sum(n for _, n in table["sets"])
    if images != table["n_images"]:
        raise SystemExit(f"sets hold {images} images, expected {table['n_images']}")


def to_json(table: dict) -> str:
    """Compact but diff-friendly: one label set per line."""
    head = {k: v for k, v in table.items() if k not in ("sets", "remainder")}
    lines = json.dumps(head, indent=1)[:-2].splitlines()
    lines[-1] += ","
    lines.append(' "sets": [')
    lines.append(",\n".join("  " + json.dumps(entry) for entry in table["sets"]))
    lines.append(" ],")
    remainder = {k: v for k, v in table["remainder"].items() if k != "pair_counts"}
    lines.append(' "remainder": ' + json.dumps(remainder)[:-1] + ",")
    lines.append('  "pair_counts": ' + json.dumps(table["remainder"]["pair_counts"]) + "}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=None, help="the real PadChest label CSV (.csv or .csv.gz)")
    parser.add_argument("--min-count", type=int, default=3, help="keep label sets seen at least this often")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    csv = args.csv or default_csv()
    if not csv.is_file():
        parser.error(f"{csv}: no such file (install torchxrayvision==1.5.7 or pass --csv)")
    digest = hashlib.sha256(csv.read_bytes()).hexdigest()
    counts, n_images = count_label_sets(csv)
    source = {"file": CSV_NAME, "sha256": digest, "rows": "Projection == PA, Labels not NaN",
              "items": "stripped; restricted to padchest-specific's 35 labels"}
    table = build_table(counts, n_images, args.min_count, source)
    check_table(table)
    text = to_json(table)
    json.loads(text)  # the hand-laid layout must stay valid JSON
    write_text(args.out, text)
    print(f"{args.out}: {len(table['sets'])} sets, remainder {table['remainder']['n_images']} of {n_images} images, "
          f"{len(text)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
