"""The PadChest benchmark definitions (pinned label sets, split rule, the paper's recipe)."""

from __future__ import annotations

from importlib import resources
from typing import Iterable

from mlbench import Benchmark, DEMO_RECIPE as CORE_DEMO_RECIPE, PAPER_RECIPE as CORE_PAPER_RECIPE
from mlbench_padchest.labels import SPECIFIC_LABELS, SPECIFIC_VERSION

# The paper's recipe and demo profile (mlbench.contracts.benchmark), with PadChest's lung crop.
PAPER_RECIPE = CORE_PAPER_RECIPE.replace(preprocessor="padchest-lung-crop")
DEMO_RECIPE = CORE_DEMO_RECIPE.replace(preprocessor="padchest-lung-crop")


def _exact(labels: tuple[str, ...]):
    wanted = frozenset(labels)

    def targets(findings: Iterable[str]) -> frozenset[str]:
        return wanted.intersection(findings)

    return targets


# Liz et al. 2023 kept the labels with at least 200 images (PAPER-FACTS); inspect checks the pins against it.
PAPER_LABEL_RULE = 200


def specific() -> Benchmark:
    return Benchmark(
        name="padchest-specific",
        version=SPECIFIC_VERSION,
        dataset="padchest",
        labels=SPECIFIC_LABELS,
        targets=_exact(SPECIFIC_LABELS),
        recipe=PAPER_RECIPE,
        demo_recipe=DEMO_RECIPE,
        description="PadChest PA, the 35 specific labels of Liz et al. 2023 (Table 8)",
        published_board=_board("padchest-specific"),
        label_rule_min_images=PAPER_LABEL_RULE,
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
        description="PadChest PA, the 54 general labels of Liz et al. 2023 (Table 10), expanded along the term tree",
        published_board=_board("padchest-general"),
        label_rule_min_images=PAPER_LABEL_RULE,
    )


def _board(name: str):
    """The paper's tables as a published leaderboard, shipped as package data (built by mlbench_padchest.published)."""
    return resources.files("mlbench_padchest") / "leaderboards" / f"{name}.parquet"
