"""Config files (issue 24 part 5): `mlbench run/grid --config FILE` and `mlbench config RUN_DIR`.

Planning is observed, not trained: ``runner.run`` is replaced by one that plans, keeps the plan and
stops with a UserError. Only the round trip trains once (one tiny demo run)."""

from __future__ import annotations

import math
import tomllib
import warnings

import pytest

from mlbench.foundations.config import dumps
from mlbench.foundations.errors import UserError
from mlbench.grid import cells
from mlbench.training import runner
from cli_checks import assert_one_error, cli
from hub_cache import fill, hub_cache  # noqa: F401 - the fixture

BENCH = "padchest-specific"


class Planned(UserError):
    pass


@pytest.fixture()
def planned(monkeypatch):
    """The plans `mlbench run` made; the run stops right after planning ("Error: planned")."""
    plans = []

    def plan_only(opts):
        plans.append(runner.plan_run(opts))
        raise Planned("planned")

    monkeypatch.setattr(runner, "run", plan_only)
    return plans


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def plan_with(planned, *args):
    result = cli("run", BENCH, *args)
    assert result.output.strip().splitlines()[-1] == "Error: planned", result.output
    return planned[-1]


def test_the_file_values_reach_the_plan(planned, tmp_path):
    config = write(tmp_path / "c.toml", """
demo = true
out = "%s"
epochs = 3
image_size = 32
backbones = ["resnet10t", "mobilenetv3_small_050"]
ensembles = "ctp"
loss = "focal"
loss-option = {gamma = 3, alpha = 0.5}
sampler-option = ["percentage=25"]
sampler = "ml-ros"
no-crop = true
pretrained = false
thresholds = "val-f1"
bootstrap = 7
[recipe]
lr = 0.02
patience = 4
head_units = [64]
""" % (tmp_path / "run").as_posix())
    plan = plan_with(planned, "--config", config)
    r, o = plan.recipe, plan.options
    assert (r.max_epochs, r.image_size, r.backbones, r.ensembles) == (3, 32, ("resnet10t", "mobilenetv3_small_050"),
                                                                         ("ctp",))
    assert (r.loss, dict(r.loss_options), r.sampler, dict(r.sampler_options)) == \
        ("focal", {"gamma": 3, "alpha": 0.5}, "ml-ros", {"percentage": 25})
    assert (r.crop, r.pretrained, r.threshold_rule, r.lr, r.patience, r.head_units) == \
        (False, False, "val-f1", 0.02, 4, (64,))
    assert o.demo and o.n_boot == 7 and plan.rundir.path == tmp_path / "run"


def test_the_command_line_overrides_the_file(planned, tmp_path, hub_cache):
    fill(hub_cache, "resnet18")  # --pretrained: the weights must be on this machine
    config = write(tmp_path / "c.toml", 'demo = true\nepochs = 3\nbackbones = "resnet10t"\npretrained = false\n'
                                        f'out = "{(tmp_path / "run").as_posix()}"\n[recipe]\nmax_epochs = 9\n')
    plan = plan_with(planned, "--epochs", "2", "--config", config, "--pretrained", "--backbones", "resnet18")
    assert (plan.recipe.max_epochs, plan.recipe.backbones, plan.recipe.pretrained) == (2, ("resnet18",), True)
    no_switch = write(tmp_path / "n.toml", 'demo = true\nno-pretrained = true\n')
    assert plan_with(planned, "--config", no_switch, "--out", tmp_path / "r2").recipe.pretrained is False


MISTAKES = {
    "unknown key": ("max-epochs = 5", ["max-epochs", "unknown key", "epochs"]),
    "the argument": ('benchmark = "x"', ["'benchmark'", "argument BENCHMARK", "command line"]),
    "not a number": ('epochs = "abc"', ["'epochs'", "abc", "a number"]),
    "click's range": ("image-size = 8", ["'image-size'", "8", "16"]),
    "click's choice": ('thresholds = "best"', ["'thresholds'", "best", "fixed"]),
    "flag not bool": ('demo = "yes"', ["'demo'", "true or false"]),
    "string wanted": ("loss = 3", ["'loss'", "a string"]),
    "pairs": ("loss-option = 3", ["'loss-option'", "KEY=VALUE"]),
    "both switches": ("pretrained = true\nno-pretrained = true", ["no-pretrained", "twice"]),
    "recipe field": ("[recipe]\nlearning_rate = 0.1", ["recipe.learning_rate", "lr"]),
    "recipe type": ('[recipe]\nlr = "fast"', ["recipe.lr", "fast", "a number"]),
    "recipe list": ("[recipe]\nhead_units = [1.5]", ["recipe.head_units", "integers"]),
    "not toml": ("epochs = = 3", ["not valid TOML"]),
}


@pytest.mark.parametrize("case", MISTAKES)
def test_each_mistake_in_the_file_is_one_line_naming_the_file(case, planned, tmp_path):
    text, names = MISTAKES[case]
    config = write(tmp_path / "c.toml", text + "\n")
    assert_one_error(cli("run", BENCH, "--demo", "--config", config), str(config), *names)
    assert not planned


def test_a_missing_config_file_is_one_line(tmp_path):
    missing = tmp_path / "nope.toml"
    assert_one_error(cli("run", BENCH, "--config", missing), str(missing), "no such file")
    assert_one_error(cli("grid", BENCH, "--config", missing), str(missing), "no such file")


def test_grid_takes_a_config_file_and_no_recipe_table(monkeypatch, tmp_path):
    specs = []

    def plan_only(spec, **_kwargs):
        specs.append(spec)
        raise Planned("planned")

    monkeypatch.setattr(cells, "run_grid", plan_only)
    config = write(tmp_path / "g.toml", f'remedies = ["uniform", "ml-ros"]\nseeds = [0, 3]\nepochs = 2\n'
                                        f'demo = true\nout = "{(tmp_path / "g").as_posix()}"\n')
    result = cli("grid", BENCH, "--config", config, "--seeds", "5")
    assert result.output.strip().splitlines()[-1] == "Error: planned", result.output
    spec = specs[-1]
    assert (spec.remedies, spec.seeds, spec.run_options["max_epochs"], spec.demo) == (["uniform", "ml-ros"], [5], 2,
                                                                                     True)
    write(config, 'remedies = "uniform"\n[recipe]\nlr = 0.1\n')
    assert_one_error(cli("grid", BENCH, "--config", config), str(config), "unknown key 'recipe'")


def test_the_emitter_round_trips_through_tomllib():
    top = {"s": 'a "quoted" \\ path\twith\nlines é', "i": -3, "f": 1e-4, "g": 0.1, "big": 2.5e300, "t": True,
           "n": False, "list": [1, 2.5, "x", False, []], "inline": {"a.b": {"c": 1}, "d e": "f"}, "empty": {},
           "dash-key": "v", "skipped": None}
    tables = {"recipe": {"backbones": ["a", "b"], "lr": 0.05, "opts": {"x": {"weights": "w.pt"}}},
              "odd name": {"k": 1}}
    text = dumps(top, tables, header="first line\nsecond", comments={"i": "an int", "recipe": "the recipe"})
    back = tomllib.loads(text)
    expected = {k: v for k, v in top.items() if v is not None}
    assert back == {**expected, **tables}
    assert text.startswith("# first line\n# second\n") and "# an int\ni = -3" in text
    assert math.isinf(tomllib.loads(dumps({"x": float("-inf")}))["x"])
    with pytest.raises(ValueError):
        dumps({"x": object()})


def test_config_of_a_run_plans_the_same_identity(monkeypatch, tmp_path):
    """One tiny real run set up by a config file (a non-default lr in [recipe]); `mlbench config` prints
    its plan; planning `mlbench run --config` with the printed file gives the same identity."""
    import torch

    torch.set_num_threads(2)
    out = tmp_path / "run"
    first = write(tmp_path / "first.toml", f"""
demo = true
demo-option = {{n_patients = 40, image_size = 96}}
out = "{out.as_posix()}"
epochs = 1
image-size = 32
backbones = ["mobilenetv3_small_050"]
ensembles = "ctp"
workers = 1
bootstrap = 10
quiet = true
[recipe]
lr = 0.0123
""")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trained = cli("run", BENCH, "--config", first)
    assert trained.exit_code == 0, trained.output
    from mlbench.results.rundir import RunDir

    stored = RunDir(out).read_plan()
    assert stored["recipe"]["lr"] == 0.0123 and stored["recipe"]["max_epochs"] == 1

    printed = cli("config", out)
    assert printed.exit_code == 0, printed.output
    text = printed.output
    assert f"mlbench run {BENCH} --config" in text and "[recipe]" in text and "csv" not in tomllib.loads(text)
    again = write(tmp_path / "printed.toml", text)
    plans = []

    def plan_only(opts):
        plans.append(runner.plan_run(opts))
        raise Planned("planned")

    monkeypatch.setattr(runner, "run", plan_only)
    monkeypatch.chdir(tmp_path)  # the printed file has no out: the default folder, under tmp_path
    result = cli("run", BENCH, "--config", again)
    assert result.output.strip().splitlines()[-1] == "Error: planned", result.output
    assert plans[-1].identity == stored["identity"]
    assert plans[-1].recipe.lr == 0.0123 and plans[-1].rundir.path != out
    manifest = RunDir(out).manifest()["identity"]
    assert {k: manifest[k] for k in plans[-1].identity} == plans[-1].identity

    alone = tmp_path / "manifest-only"  # a run without plan.json: the manifest's recipe
    alone.mkdir()
    (alone / RunDir(out).manifest_file.name).write_bytes(RunDir(out).manifest_file.read_bytes())
    from_manifest = tomllib.loads(cli("config", alone).output)
    assert from_manifest["recipe"] == tomllib.loads(text)["recipe"] and from_manifest["demo"] is True
    assert_one_error(cli("config", tmp_path / "printed-dir-missing"), "printed-dir-missing")
