"""Training schedules against their papers' definitions, on a tiny network and tiny images.

cRT (Kang et al. 2020) leaves every body weight bit-identical and changes the head; LWS (Kang et
al. 2020) only rescales the head's rows; DRW (Cao et al. 2019) switches the loss's weights exactly
at epoch E; every stage keeps its own early stopping; a run killed inside a later stage resumes
to the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from mlbench.contracts.benchmark import Recipe
from mlbench.contracts.registry import get_registry
from mlbench.foundations.options import OptionError
from mlbench.models.samplers import UniformSampler
from mlbench.models.schedules import Stage, drw
from mlbench.training.loop import Phase, train
from mlbench.training.stages import build_phases, schedule_stages

N_LABELS = 3


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, N_LABELS))


def data(n: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, size=(n, 12, 12), dtype=np.uint8))
    y = (rng.uniform(size=(n, N_LABELS)) < [0.5, 0.2, 0.08]).astype(np.uint8)
    y[0] = 1  # every label present
    return images, torch.from_numpy(y)


def recipe(**changes) -> Recipe:
    return Recipe(backbones=("tiny",), max_epochs=4, patience=2, batch_size=16, lr=1e-2, seed=1).replace(**changes)


def fit(tmp_path, the_recipe: Recipe, *, phases=None, name="ckpt", model=None):
    images, y = data()
    val_images, val_y = data(24, seed=1)
    model = model or tiny_net()
    if phases is None:
        phases = build_phases(get_registry(), the_recipe, y.numpy())
    state = train(model, phases[0].loss_fn, the_recipe, train_images=images, train_targets=y, val_images=val_images,
                  val_targets=val_y, checkpoint_dir=tmp_path / name, device=torch.device("cpu"), phases=phases)
    return model, state


def head_and_body(model: nn.Module) -> tuple[dict, dict]:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    head = {k: v for k, v in state.items() if k.startswith("7.")}
    return head, {k: v for k, v in state.items() if not k.startswith("7.")}


def test_standard_schedule_is_the_recipe_training_bit_for_bit(tmp_path):
    """The default schedule trains exactly as training did before schedules existed."""
    the_recipe = recipe()
    model_a, state_a = fit(tmp_path, the_recipe, name="a")
    images, y = data()
    val_images, val_y = data(24, seed=1)
    model_b = tiny_net()
    loss = nn.BCEWithLogitsLoss()
    train(model_b, loss, the_recipe, train_images=images, train_targets=y, val_images=val_images, val_targets=val_y,
          checkpoint_dir=tmp_path / "b", device=torch.device("cpu"),
          phases=[Phase(Stage("main", 4), build_phases(get_registry(), the_recipe, y.numpy())[0].loss_fn,
                        UniformSampler(y.numpy(), 1))])
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_b.state_dict()[key]), key
    assert [s["name"] for s in state_a.stages] == ["main"]


def test_crt_keeps_every_body_weight_and_retrains_the_head(tmp_path):
    the_recipe = recipe(schedule="crt", schedule_options={"epochs": 3})
    # The first stage alone: what cRT's second stage starts from.
    main_only, _ = fit(tmp_path, recipe(), name="main")
    head_before, body_before = head_and_body(main_only)
    model, state = fit(tmp_path, the_recipe, name="crt")
    head_after, body_after = head_and_body(model)
    for key, value in body_before.items():  # batch-norm running statistics included
        assert torch.equal(value, body_after[key]), f"cRT changed body weight {key}"
    assert not torch.equal(head_before["7.weight"], head_after["7.weight"])
    assert [s["name"] for s in state.stages] == ["main", "crt"]
    crt = state.stages[1]
    assert crt["epochs"] <= 3 and crt["first_epoch"] == state.stages[0]["epochs"]
    history = json.loads((tmp_path / "crt" / "history.json").read_text())
    assert [r["stage"] for r in history["history"]].count("crt") == crt["epochs"]
    # Every parameter trains again afterwards (the schedule froze them only for its stage).
    assert all(p.requires_grad for p in model.parameters())


def test_lws_only_rescales_the_head_rows(tmp_path):
    main_only, _ = fit(tmp_path, recipe(), name="main")
    head_before, body_before = head_and_body(main_only)
    model, state = fit(tmp_path, recipe(schedule="lws", schedule_options={"epochs": 3}), name="lws")
    head_after, body_after = head_and_body(model)
    for key, value in body_before.items():
        assert torch.equal(value, body_after[key]), key
    scale = head_after["7.bias"] / head_before["7.bias"]
    torch.testing.assert_close(head_after["7.weight"], head_before["7.weight"] * scale[:, None])
    assert not torch.allclose(scale, torch.ones_like(scale))
    # best.pt is a plain checkpoint of the network: it loads into a fresh one.
    fresh = tiny_net()
    fresh.load_state_dict(torch.load(tmp_path / "lws" / "best.pt", weights_only=True)["model"])


def test_drw_switches_the_weights_exactly_at_epoch_e(tmp_path):
    the_recipe = recipe(schedule="drw", schedule_options={"defer_epochs": 3}, max_epochs=6, patience=1)
    phases = build_phases(get_registry(), the_recipe, data()[1].numpy())
    assert [p.stage.name for p in phases] == ["main", "drw"]
    assert phases[0].stage.epochs == 3 and not phases[0].stage.early_stopping
    _, state = fit(tmp_path, the_recipe, phases=phases)
    history = json.loads((tmp_path / "ckpt" / "history.json").read_text())["history"]
    # patience 1 cannot end the first stage early: it runs its 3 epochs out, then the weights change.
    assert [r["stage"] for r in history[:3]] == ["main"] * 3 and history[3]["stage"] == "drw"
    # The weighted loss is a different loss: the same model scored by both differs.
    logits, targets = torch.randn(8, N_LABELS), (torch.rand(8, N_LABELS) < 0.3).float()
    assert not torch.isclose(phases[0].loss_fn(logits, targets), phases[1].loss_fn(logits, targets))
    assert state.stages[0]["result"] == "last" and state.stages[0]["epochs"] == 3


def test_drw_default_weights_are_class_balanced_and_its_options_are_checked():
    from mlbench.models.losses import effective_number_weights

    counts = [400, 30, 3]
    stages = drw(counts, 1000, 10).stages()
    assert stages[0].epochs == 6 and stages[1].epochs == 4  # 60% of the budget first
    assert stages[1].loss_options["label_weights"] == pytest.approx(list(effective_number_weights(counts, 0.9999)))
    with pytest.raises(OptionError, match="defer_epochs"):
        drw(counts, 1000, 10, defer_epochs=10)
    with pytest.raises(OptionError, match="beta"):
        drw(counts, 1000, 10, beta=1.5)


def test_each_stage_has_its_own_early_stopping(tmp_path):
    # lr so large that validation loss gets worse at once: each stage stops after patience epochs.
    the_recipe = recipe(schedule="crt", schedule_options={"epochs": 20}, max_epochs=20, patience=1, lr=5.0)
    _, state = fit(tmp_path, the_recipe)
    main, crt = state.stages
    assert main["stopped_early"] and crt["stopped_early"]
    assert crt["first_epoch"] == main["epochs"] and crt["epochs"] < 20


class _Kill(Exception):
    pass


class _KillingSampler:
    """A sampler that fails once at one epoch: a run killed there."""

    def __init__(self, inner, at: int) -> None:
        self.inner, self.at, self.armed = inner, at, True

    def epoch(self, i: int):
        if i == self.at and self.armed:
            self.armed = False
            raise _Kill()
        return self.inner.epoch(i)


def test_a_run_killed_inside_a_later_stage_resumes_to_the_same_weights(tmp_path):
    the_recipe = recipe(schedule="crt", schedule_options={"epochs": 3}, patience=10)
    whole, _ = fit(tmp_path, the_recipe, name="whole")
    phases = build_phases(get_registry(), the_recipe, data()[1].numpy())
    kill_at = phases[0].stage.epochs + 1  # the second epoch of the crt stage
    phases[1] = Phase(phases[1].stage, phases[1].loss_fn, _KillingSampler(phases[1].sampler, kill_at))
    with pytest.raises(_Kill):
        fit(tmp_path, the_recipe, phases=phases, name="killed")
    resumed, state = fit(tmp_path, the_recipe, phases=phases, name="killed", model=tiny_net())
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert [s["name"] for s in state.stages] == ["main", "crt"]


def test_a_schedule_is_checked_before_any_work(tmp_path):
    from mlbench.training.runner import RunOptions, plan_run

    base = dict(benchmark="padchest-specific", demo=True, out=tmp_path / "run", backbones=["resnet10t"])
    with pytest.raises(OptionError, match="--schedule-option.*epochs"):
        plan_run(RunOptions(**base, schedule="crt", schedule_options={"epochs": 0}))
    with pytest.raises(Exception, match="sampler 'nope'"):
        plan_run(RunOptions(**base, schedule="crt", schedule_options={"sampler": "nope"}))
    plan = plan_run(RunOptions(**base, schedule="crt"))
    assert plan.recipe.schedule == "crt"
    stages = schedule_stages(get_registry(), plan.recipe, [1] * 16, 2)
    assert [s.trains for s in stages] == ["all", "head"]


def test_balanced_mixup_mixes_each_batch_with_a_class_aware_one(tmp_path):
    from mlbench.training.loop import mixing_partners, mixed_step, train_step

    the_recipe = recipe(schedule="balanced-mixup", schedule_options={"alpha": 0.5})
    phases = build_phases(get_registry(), the_recipe, data()[1].numpy())
    (phase,) = phases
    assert phase.stage.mix_sampler == "class-aware" and phase.mix_sampler is not None
    first, again = mixing_partners(phase, 3, 1, 48, 16), mixing_partners(phase, 3, 1, 48, 16)
    assert torch.equal(first.order, again.order) and np.array_equal(first.lam, again.lam)  # a resume mixes alike
    assert ((first.lam >= 0) & (first.lam <= 1)).all() and len(set(first.lam.tolist())) > 1
    # lam = 1 is the unmixed step; lam = 0 trains on the partner batch alone.
    images, y = data()
    idx, partner = torch.arange(8), torch.arange(8, 16)
    for lam, same_as in ((1.0, idx), (0.0, partner)):
        losses = []
        for step in ("mixed", "plain"):
            net = tiny_net()
            opt = torch.optim.SGD(net.parameters(), lr=0.1)
            loss_fn = nn.BCEWithLogitsLoss()
            if step == "mixed":
                losses.append(mixed_step(net, loss_fn, opt, images, y.float(), idx, partner, lam, torch.device("cpu")))
            else:
                losses.append(train_step(net, loss_fn, opt, images, y.float(), same_as, torch.device("cpu")))
        torch.testing.assert_close(losses[0], losses[1])
    model, state = fit(tmp_path, the_recipe)
    assert [s["name"] for s in state.stages] == ["main"]


def test_the_built_in_schedules_and_adjusters_pass_conformance():
    from mlbench.conformance import PASS, check_plugin

    results = [r for plugin in ("schedules", "adjusters") for r in check_plugin(plugin, get_registry()).results]
    assert {r.name for r in results} >= {"standard", "crt", "lws", "drw", "balanced-mixup", "none", "temperature",
                                        "logit-adjust", "tau-norm"}
    assert all(r.status == PASS for r in results), [(r.name, r.detail) for r in results if r.status != PASS]
