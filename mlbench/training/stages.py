"""A recipe's schedule made concrete: its stages read from the schedule plugin, then each stage's loss and
sampler built for one backbone's training (:class:`mlbench.training.loop.Phase`).

The planner builds the stages once on dummy counts, so a stage naming an unknown sampler, a loss
option the recipe's loss does not take, or a head the backbone lacks is one line before any work.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mlbench.contracts.benchmark import Recipe
from mlbench.contracts.registry import Registry
from mlbench.foundations.options import OptionError
from mlbench.models.schedules import TRAINS, Stage


def schedule_stages(registry: Registry, recipe: Recipe, label_counts: Sequence[int], n_samples: int) -> tuple[Stage, ...]:
    """The stages of the recipe's schedule for a training split with these counts; a malformed list is one line."""
    schedule = registry.create("schedule", recipe.schedule, label_counts=list(label_counts), n_samples=n_samples,
                               max_epochs=recipe.max_epochs, **dict(recipe.schedule_options))
    who = f"schedule {recipe.schedule}"
    stages = tuple(schedule.stages()) if callable(getattr(schedule, "stages", None)) else None
    if not stages or not all(isinstance(s, Stage) for s in stages):
        raise OptionError(f"{who}: stages() must return one or more mlbench.models.schedules.Stage")
    names = [s.name for s in stages]
    for stage in stages:
        if not isinstance(stage.name, str) or not stage.name or names.count(stage.name) > 1:
            raise OptionError(f"{who}: stage names must be distinct non-empty strings, got {names}")
        if isinstance(stage.epochs, bool) or not isinstance(stage.epochs, int) or stage.epochs < 1:
            raise OptionError(f"{who}: stage '{stage.name}' epochs must be an integer >= 1, got {stage.epochs!r}")
        if stage.trains not in TRAINS:
            raise OptionError(f"{who}: stage '{stage.name}' trains '{stage.trains}'; expected one of {', '.join(TRAINS)}")
    return stages


def needs_head(stages: Sequence[Stage]) -> Stage | None:
    """The first stage that touches the classification head on its own (it must exist), or None."""
    return next((s for s in stages if s.trains != "all" or s.reset_head), None)


def stage_sampler(recipe: Recipe, stage: Stage) -> tuple[str, dict[str, Any]]:
    """The sampler a stage draws with, and its options: its own, else the recipe's."""
    if stage.sampler is None:
        return recipe.sampler, dict(recipe.sampler_options)
    return stage.sampler, dict(stage.sampler_options)


def stage_loss_options(recipe: Recipe, stage: Stage) -> dict[str, Any]:
    return {**dict(recipe.loss_options), **dict(stage.loss_options)}


def build_phases(registry: Registry, recipe: Recipe, train_labels: np.ndarray, known: np.ndarray | None = None) -> list:
    """Each stage's loss (built on the training split's counts) and sampler, in order.

    ``known`` (False at unknown cells; None: every cell known): the loss's factory gets ``known_counts``
    and a sampler ``known`` when they take them, and each loss is wrapped to read unknown cells as NaN
    targets (:class:`mlbench.models.losses.KnownTargets`)."""
    from mlbench.models.losses import KnownTargets
    from mlbench.training.loop import Phase, accepted_options

    counts = train_labels.sum(axis=0).astype(int).tolist()
    loss_extra = {} if known is None else {"known_counts": known.sum(axis=0).astype(int).tolist()}
    sampler_extra = {} if known is None else {"known": known}

    def with_known(kind: str, name: str, extra: dict) -> dict:
        return accepted_options(registry.get(kind, name).factory, extra) if extra else {}

    phases = []
    for stage in schedule_stages(registry, recipe, counts, len(train_labels)):
        loss_fn = registry.create("loss", recipe.loss, label_counts=counts, n_samples=len(train_labels),
                                  **stage_loss_options(recipe, stage), **with_known("loss", recipe.loss, loss_extra))
        if known is not None:
            loss_fn = KnownTargets(loss_fn)
        name, options = stage_sampler(recipe, stage)
        sampler = registry.create("sampler", name, labels=train_labels, seed=recipe.seed, **options,
                                  **with_known("sampler", name, sampler_extra))
        mixer = None if stage.mix_sampler is None else registry.create(
            "sampler", stage.mix_sampler, labels=train_labels, seed=recipe.seed, **dict(stage.mix_sampler_options),
            **with_known("sampler", stage.mix_sampler, sampler_extra))
        phases.append(Phase(stage, loss_fn, sampler, mixer))
    return phases
