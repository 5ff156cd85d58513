"""The NIH ChestX-ray14 benchmarks: 14 labels, NIH's official test patients, the standard recipe."""

from __future__ import annotations

from importlib import resources
from typing import Iterable

import numpy as np

from mlbench import Benchmark, DEMO_RECIPE as CORE_DEMO_RECIPE, PAPER_RECIPE
from mlbench_nih.labels import LABELS, VERSION, official_test_patients

# The paper's recipe (mlbench.contracts.benchmark: the same five ImageNet backbones, loss and ensembles as
# the PadChest baseline, so results compare across families) and its demo profile. No lung crop:
# NIH's films are already framed on the chest, and the published NIH results this board carries
# were obtained on whole films; the core "resize" keeps the film.
RECIPE = PAPER_RECIPE.replace(crop=False, preprocessor="resize")
DEMO_RECIPE = CORE_DEMO_RECIPE.replace(crop=False, preprocessor="resize")

# Train and val come from the non-test patients in the ratio 7:1, as PadChest's 70/10.
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


def targets(findings: Iterable[str]) -> frozenset[str]:
    return frozenset(LABELS).intersection(findings)


def official_test(frame) -> np.ndarray:
    """True for the images of NIH's official test patients (the demo's patients use the same IDs)."""
    return frame["patient_id"].astype(str).isin(official_test_patients()).to_numpy(dtype=bool)


def _benchmark(name: str, dataset: str, description: str, published_board=None) -> Benchmark:
    return Benchmark(
        name=name,
        version=VERSION,
        dataset=dataset,
        labels=LABELS,
        targets=targets,
        recipe=RECIPE,
        demo_recipe=DEMO_RECIPE,
        split_fractions=SPLIT_FRACTIONS,
        description=description,
        published_board=published_board,
        fixed_test=official_test,
        keep_unlabelled=True,
    )


def nih_cxr14() -> Benchmark:
    return _benchmark("nih-cxr14", "nih-cxr14",
                      "NIH ChestX-ray14, PA and AP, 14 labels, the official patient-wise test split",
                      published_board=resources.files("mlbench_nih") / "leaderboards" / "nih-cxr14.parquet")


def nih_cxr14_pa() -> Benchmark:
    """PA films only. No published board: the literature reports the official split with both views."""
    return _benchmark("nih-cxr14-pa", "nih-cxr14-pa",
                      "NIH ChestX-ray14, PA films only, 14 labels, the official test patients' PA films as test")
