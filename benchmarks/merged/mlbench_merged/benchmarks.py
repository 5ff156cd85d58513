"""The ``padchest-nih`` benchmark: PadChest and NIH ChestX-ray14 trained together on the findings both label.

- Labels: the torchxrayvision terms that both ``padchest-general`` and ``nih-cxr14`` map a label to (12 of
  NIH's 14: PadChest's general labels name no Consolidation and no Edema), named as the vocabulary names
  them, in NIH's order. Hernia is only narrower in PadChest (hiatal hernia): its PadChest positives are
  Hernia positives, its PadChest negatives unknown cells (:mod:`mlbench_merged.sources`).
- Images: every PadChest PA film and every NIH film (PA and AP), those with none of the findings kept as
  all-negative rows (NIH's official test set counts its No Finding films).
- Split: one source at a time (:func:`mlbench.data.splits.split_images`). NIH: its official test patients
  are the test split, none of their images in train or val; its other patients stratified 7:1 into train
  and val. PadChest: patient-grouped, stratified 70/10/20, as its own benchmarks.
- Recipe: the standard one with the whole film resized (``resize``), for both sources: PadChest's lung
  crop is tuned to PadChest's films and NIH's published results are on whole films; one preprocessor for
  both keeps the sources' images alike, so the model cannot tell a source by its framing.
"""

from __future__ import annotations

from typing import Iterable

from mlbench import (DEMO_RECIPE as CORE_DEMO_RECIPE, EXACT, PAPER_RECIPE, Benchmark, Finding, SharedFindings,
                     get_registry)
from mlbench_merged.dataset import ORDER_FROM, PADCHEST_NIH
from mlbench_merged.sources import PINNED_COLUMN, shared_terms

VERSION = "1"
RECIPE = PAPER_RECIPE.replace(crop=False, preprocessor="resize")
DEMO_RECIPE = CORE_DEMO_RECIPE.replace(crop=False, preprocessor="resize")


def pinned_test(frame):
    """The images each source's own benchmark pins as test (NIH's official test patients)."""
    return frame[PINNED_COLUMN].to_numpy(dtype=bool)


def padchest_nih() -> Benchmark:
    registry = get_registry()
    sources = [registry.create("benchmark", s.benchmark) for s in PADCHEST_NIH]
    terms = shared_terms(sources, [s.name for s in PADCHEST_NIH].index(ORDER_FROM))
    wanted = frozenset(terms)

    def targets(findings: Iterable[str]) -> frozenset[str]:
        return wanted.intersection(findings)  # the reader already gives the shared terms

    vocabulary = sources[0].findings.vocabulary
    return Benchmark(
        name="padchest-nih",
        version=VERSION,
        dataset="padchest-nih",
        labels=terms,
        targets=targets,
        recipe=RECIPE,
        demo_recipe=DEMO_RECIPE,
        split_fractions=(0.7, 0.1, 0.2),
        description="PadChest PA + NIH ChestX-ray14 (PA and AP) on the findings both label; NIH's official "
                    "test patients in test only, PadChest split 70/10/20",
        fixed_test=pinned_test,
        keep_unlabelled=True,
        findings=SharedFindings(vocabulary=vocabulary, labels={
            t: Finding(t, EXACT, "the merged label is the finding: a cell no source knows is unknown, not negative")
            for t in terms}),
    )
