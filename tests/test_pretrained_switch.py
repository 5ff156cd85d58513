"""`--pretrained / --no-pretrained` on `run` and `grid`: it reaches the recipe every backbone is built
from, the plan's identity, and every grid cell; without it the recipe decides."""

from __future__ import annotations

import pytest

import mlbench.api
from cli_checks import assert_one_error, cli
from hub_cache import fill, hub_cache  # noqa: F401 - the fixture
from mlbench.grid import cells as grid
from mlbench.training.runner import RunOptions, plan_run, pretrained_for

BENCH = "padchest-specific"


@pytest.mark.parametrize("switch", [True, False, None])
def test_the_switch_sets_the_recipe_and_the_identity(tmp_path, hub_cache, switch):
    _weights_for_the_demo(hub_cache)
    plan = plan_run(RunOptions(benchmark=BENCH, demo=True, out=tmp_path / "run", pretrained=switch, device="cpu",
                               backbones=PRETRAINABLE))
    expected = plan.benchmark.demo_recipe.pretrained if switch is None else switch
    assert plan.recipe.pretrained is expected
    assert plan.identity["recipe"]["pretrained"] is expected  # a resume with the other switch is another run
    assert {pretrained_for(plan.recipe, b) for b in plan.recipe.backbones} == {expected}  # what each is built with


# Backbones with published weights (the demo's own are narrowed, trained from scratch only).
PRETRAINABLE = ("resnet10t", "mobilenetv3_small_050")


def _weights_for_the_demo(cache):
    """The backbones' weights in the hub cache: planning a pretrained run checks they are here."""
    for name in PRETRAINABLE:
        fill(cache, name)


def test_every_grid_cell_takes_it(tmp_path, hub_cache):
    _weights_for_the_demo(hub_cache)
    spec = grid.GridSpec(benchmark=BENCH, out=tmp_path / "g", remedies=["uniform", "ml-ros"], demo=True,
                         backbones=list(PRETRAINABLE), run_options={"pretrained": True, "device": "cpu"})
    assert [c.plan.recipe.pretrained for c in grid.plan_grid(spec)] == [True, True]


@pytest.mark.parametrize(("command", "api_name"), [(["run", BENCH, "--demo"], "run_benchmark"),
                                                    (["grid", BENCH, "--remedies", "uniform", "--demo", "--out", "g"],
                                                     "run_grid")])
def test_the_commands_pass_it_to_the_api(monkeypatch, command, api_name):
    seen = {}

    def record(*args, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(mlbench.api, api_name, record)
    for flag, value in (("--no-pretrained", False), ("--pretrained", True)):
        cli(*command, flag)
        assert seen["pretrained"] is value
    cli(*command)
    assert seen["pretrained"] is None


def test_a_backbone_without_pretrained_weights_is_refused_in_the_plan_in_one_line(tmp_path):
    out = tmp_path / "run"
    line = assert_one_error(cli("run", BENCH, "--demo", "--backbones", "resnet10t-slim", "--pretrained", "--out", out),
                     "resnet10t-slim", "--no-pretrained")
    assert "no pretrained weights" in line and not out.exists()  # refused before any data work
    plan = plan_run(RunOptions(benchmark=BENCH, demo=True, out=out, backbones=("resnet10t-slim",), pretrained=False,
                               device="cpu"))
    assert plan.recipe.pretrained is False
