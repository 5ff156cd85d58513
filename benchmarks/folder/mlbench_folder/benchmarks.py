"""The ``folder`` benchmark: whatever labels a CSV and an image folder carry, on the standard recipe.

The labels come from the data (``labels_from_data``): the reader keeps every label with at least
``min_count`` images, in the CSV's column order (one column per label) or alphabetically (a joined
column). The split is the standard patient-grouped, multilabel-stratified 70/10/20 over the group
column (each image its own group without one). The recipe is the paper's (mlbench.PAPER_RECIPE),
and its demo profile, without a crop: a lung crop means nothing for an arbitrary image folder and
there is no cropping preprocessor for one, so the variant says ``aug`` (or ``none``), never crop.
Images with none of the labels stay as all-zero rows (``keep_unlabelled``): they are the negatives.
"""

from __future__ import annotations

from typing import Iterable

from mlbench import Benchmark, DEMO_RECIPE as CORE_DEMO_RECIPE, PAPER_RECIPE

VERSION = "1"
# Not chest films: the chest-film inversion test would flip some photographs (a fifth of the shapes demo).
RECIPE = PAPER_RECIPE.replace(crop=False, preprocessor="resize", preprocessor_options={"auto_invert": False})
DEMO_RECIPE = CORE_DEMO_RECIPE.replace(crop=False, preprocessor="resize", preprocessor_options={"auto_invert": False})


def targets(findings: Iterable[str]) -> frozenset[str]:
    # The reader has already kept only the labels that reach min_count: its findings are the labels.
    return frozenset(findings)


def folder() -> Benchmark:
    return Benchmark(
        name="folder",
        version=VERSION,
        dataset="folder",
        labels=(),
        labels_from_data=True,
        targets=targets,
        recipe=RECIPE,
        demo_recipe=DEMO_RECIPE,
        split_fractions=(0.7, 0.1, 0.2),
        keep_unlabelled=True,
        description="A CSV and an image folder: labels kept by min_count, patient-grouped stratified 70/10/20",
    )
