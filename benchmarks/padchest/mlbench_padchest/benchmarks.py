"""The PadChest benchmark definitions (pinned label sets, split rule, the paper's recipe)."""

from __future__ import annotations

from importlib import resources
from typing import Iterable

from mlbench.benchmark import Benchmark, Recipe
from mlbench_padchest.labels import SPECIFIC_LABELS, SPECIFIC_VERSION

# The paper's five ImageNet backbones (timm names; PAPER-FACTS gives the mapping).
PAPER_BACKBONES = ("densenet201", "efficientnet_b0", "inception_v3", "inception_resnet_v2", "legacy_xception")

PAPER_RECIPE = Recipe(backbones=PAPER_BACKBONES, preprocessor="padchest-lung-crop")

# The demo profile: the same code path, sized for 2 CPU cores in under 10 minutes. Tiny backbones
# trained from scratch need a larger learning rate than the paper's fine-tuning, and nothing is
# frozen: freezing keeps pretrained generic filters, and these start from random weights.
DEMO_RECIPE = Recipe(
    backbones=("mobilenetv3_small_050", "resnet10t", "mobilenetv3_small_075"),
    image_size=64,
    batch_size=32,
    max_epochs=20,
    patience=10,  # the small validation split makes epoch-to-epoch losses noisy
    lr=1e-3,
    freeze_fraction=0.0,
    pretrained=False,
    preprocessor="padchest-lung-crop",
)


def _exact(labels: tuple[str, ...]):
    wanted = frozenset(labels)

    def targets(findings: Iterable[str]) -> frozenset[str]:
        return wanted.intersection(findings)

    return targets


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
    )


def _board(name: str):
    """The paper's tables as a published leaderboard, shipped as package data (built by leaderboards/transcribe.py)."""
    return resources.files("mlbench_padchest") / "leaderboards" / f"{name}.parquet"
