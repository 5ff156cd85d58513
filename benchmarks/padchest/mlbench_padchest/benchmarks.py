"""The PadChest benchmark definitions (pinned label sets, split rule, the paper's recipe)."""

from __future__ import annotations

from importlib import resources
from typing import Iterable

from mlbench import Benchmark, CanonicalSource, DEMO_RECIPE as CORE_DEMO_RECIPE, PAPER_RECIPE as CORE_PAPER_RECIPE
from mlbench_padchest.findings import GENERAL as GENERAL_FINDINGS, SPECIFIC as SPECIFIC_FINDINGS
from mlbench_padchest.labels import SPECIFIC_LABELS, SPECIFIC_VERSION

# The paper's recipe and demo profile (mlbench.contracts.benchmark), with PadChest's lung crop.
PAPER_RECIPE = CORE_PAPER_RECIPE.replace(preprocessor="padchest-lung-crop")
# The lung crop finds the lungs on a 128 px working copy: the demo films are drawn at 128 px.
DEMO_RECIPE = CORE_DEMO_RECIPE.replace(preprocessor="padchest-lung-crop", preprocessor_options={"working_size": 128})
# The demo corpus: films drawn at 128 px (the recipe trains at 64), a quarter of the pixels of the
# generator's 256 default to draw, encode and decode.
DEMO_OPTIONS = {"image_size": 128}


def _exact(labels: tuple[str, ...]):
    wanted = frozenset(labels)

    def targets(findings: Iterable[str]) -> frozenset[str]:
        return wanted.intersection(findings)

    return targets


# The label file BIMCV published (the 01.02.19 release of the 160K CSV), by the sha256 of its bytes
# decompressed, so a .csv.gz copy is the same file; and each benchmark's split of it at split seed 0.
# Measured on the copy torchxrayvision 1.5.7 ships (tests/test_realcsv.py checks all three).
RELEASE = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
RELEASE_CONTENT_SHA256 = "b02e42e5f1c53609298b47b1246a5dbed725fcae88e2cff407b772dfe10d2ddc"
SPLIT_HASHES = {
    "padchest-specific": "9fe666655ac5ad36218ae0e6484442a83c0eae9d2279697fc174ef218a008003",
    "padchest-general": "05bfb48d79e1f1099f0d7d538a870befb8802d9e427aeb437c29cdd273d310cd",
}


def _canonical(name: str) -> tuple[CanonicalSource, ...]:
    return (CanonicalSource(release=RELEASE, content_sha256=RELEASE_CONTENT_SHA256, split_hash=SPLIT_HASHES[name]),)


# Liz et al. 2023 kept the labels with at least 200 images (PAPER-FACTS); inspect checks the pins against it.
PAPER_LABEL_RULE = 200
# The paper ranks by AUC (mlbench.results.profiles' "paper": AUC, then AUPRC, then F1).
PAPER_PROFILE = "paper"


def specific() -> Benchmark:
    return Benchmark(
        name="padchest-specific",
        version=SPECIFIC_VERSION,
        dataset="padchest",
        labels=SPECIFIC_LABELS,
        targets=_exact(SPECIFIC_LABELS),
        recipe=PAPER_RECIPE,
        demo_recipe=DEMO_RECIPE,
        demo_options=DEMO_OPTIONS,
        description="PadChest PA, the 35 specific labels of Liz et al. 2023 (Table 8)",
        published_board=_board("padchest-specific"),
        label_rule_min_images=PAPER_LABEL_RULE,
        canonical_sources=_canonical("padchest-specific"),
        scoring_profile=PAPER_PROFILE,
        findings=SPECIFIC_FINDINGS,
    )


def general() -> Benchmark:
    """Table 10's 54 general labels: an image holds one when it carries that tree node or a descendant."""
    from mlbench_padchest import general as general_labels  # loads the term tree

    return Benchmark(
        name="padchest-general",
        version=general_labels.GENERAL_VERSION,
        dataset="padchest",
        labels=general_labels.GENERAL_LABELS,
        targets=general_labels.targets,
        recipe=PAPER_RECIPE,
        demo_recipe=DEMO_RECIPE,
        demo_options=DEMO_OPTIONS,
        description="PadChest PA, the 54 general labels of Liz et al. 2023 (Table 10), expanded along the term tree",
        published_board=_board("padchest-general"),
        label_rule_min_images=PAPER_LABEL_RULE,
        canonical_sources=_canonical("padchest-general"),
        scoring_profile=PAPER_PROFILE,
        findings=GENERAL_FINDINGS,
    )


def _board(name: str):
    """The paper's tables as a published leaderboard, shipped as package data (built by mlbench_padchest.published)."""
    return resources.files("mlbench_padchest") / "leaderboards" / f"{name}.parquet"
