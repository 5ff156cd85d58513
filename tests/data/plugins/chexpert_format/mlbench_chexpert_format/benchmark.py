"""The ``chexpert-format`` benchmark: CheXpert's five competition findings on a tiny one-backbone recipe."""

from __future__ import annotations

from typing import Iterable

from mlbench import Benchmark, Recipe

VERSION = "1"
# Irvin et al. 2019's competition tasks, named as the label file's columns name them.
LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")

# Small on purpose: one timm backbone from scratch, whole films resized, no crop (no lung-crop model here).
RECIPE = Recipe(backbones=("resnet10t",), image_size=32, batch_size=16, max_epochs=2, patience=2, lr=1e-3,
                freeze_fraction=0.0, pretrained=False, crop=False, augment=False, preprocessor="resize",
                ensembles=("ctp",))


def targets(findings: Iterable[str]) -> frozenset[str]:
    """A film's findings (the label file's column names) -> the benchmark's labels among them."""
    return frozenset(f for f in findings if f in LABELS)


def chexpert_format() -> Benchmark:
    return Benchmark(
        name="chexpert-format",
        version=VERSION,
        dataset="chexpert-format",
        labels=LABELS,
        targets=targets,
        recipe=RECIPE,
        demo_recipe=RECIPE,
        split_fractions=(0.7, 0.1, 0.2),
        keep_unlabelled=True,  # a film with none of the five is a negative for all of them
        description="CheXpert-format label file, 5 competition findings, patient-grouped 70/10/20 (a test fixture)",
    )
