"""A recipe's variant says what is really done: no ``crop`` without a cropping preprocessor."""

from __future__ import annotations

import mlbench


def test_crop_with_the_resize_only_preprocessor_is_not_called_a_crop():
    recipe = mlbench.Recipe(backbones=("resnet10t",), crop=True, preprocessor="resize", augment=True)
    assert not recipe.crops and recipe.variant == "aug"
    assert recipe.to_dict()["variant"] == "aug"  # what the manifest and the leaderboard rows carry
    assert recipe.replace(augment=False).variant == "none"


def test_a_cropping_preprocessor_makes_the_paper_variants():
    recipe = mlbench.Recipe(backbones=("resnet10t",), crop=True, preprocessor="padchest-lung-crop")
    assert recipe.crops and recipe.variant == "crop+aug" and recipe.replace(augment=False).variant == "crop"
    off = recipe.replace(crop=False)  # --no-crop: the resize-only preprocessor, whatever was named
    assert not off.crops and off.variant == "aug" and off.active_preprocessor == "resize"
