"""The ``toy-xray`` benchmark: three labels, a one-backbone recipe and the board it ships."""

from __future__ import annotations

from importlib import resources
from typing import Iterable

from mlbench import Benchmark, Recipe

VERSION = "1"
# Benchmark label -> the dataset's finding code.
LABEL_CODES = {"cardiomegaly": "CM", "effusion": "EFF", "nodule": "NOD"}
LABELS = tuple(LABEL_CODES)

# Tiny on purpose: one small timm backbone from scratch, 32 px, one epoch, whole films resized.
RECIPE = Recipe(backbones=("resnet10t",), image_size=32, batch_size=16, max_epochs=1, patience=1, lr=1e-3,
                freeze_fraction=0.0, pretrained=False, crop=False, augment=False, preprocessor="resize",
                ensembles=("ctp",))


def targets(findings: Iterable[str]) -> frozenset[str]:
    """One film's finding codes -> its benchmark labels."""
    codes = set(findings)
    return frozenset(label for label, code in LABEL_CODES.items() if code in codes)


def toy_xray() -> Benchmark:
    return Benchmark(
        name="toy-xray",
        version=VERSION,
        dataset="toy-xray",
        labels=LABELS,
        targets=targets,
        recipe=RECIPE,
        demo_recipe=RECIPE,
        description="Toy X-ray, 3 labels (a test fixture)",
        demo_options={"n_patients": 24, "image_size": 64},
        published_board=resources.files("mlbench_toy_xray") / "leaderboards" / "toy-xray.parquet",
    )
