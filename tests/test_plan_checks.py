"""Options are checked before any data work, and a run that failed before training does not lock its folder (issue 19).

Every mistake must end in one ``Error:`` line naming the option, before the demo corpus, the
split or the cache exist: the data stages are replaced by ones that fail the test if called.
Then the corrected command runs in the same ``--out``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import warnings
from pathlib import Path

import pytest

import mlbench
from mlbench.training import checkpoint, runner
from mlbench.training.checkpoint import CheckpointError
from mlbench.foundations.errors import UserError
from mlbench.contracts.registry import Registry
from cli_checks import assert_one_error, cli

BENCH = "padchest-specific"
TINY = ("--demo", "--demo-option", "n_patients=40", "--demo-option", "image_size=96", "--image-size", "32",
        "--epochs", "1", "--workers", "1", "--bootstrap", "10", "--quiet", "--ensembles", "ctp")
TINY_API = dict(demo=True, demo_options={"n_patients": 40, "image_size": 96}, image_size=32, max_epochs=1,
                workers=1, n_boot=10, ensembles=("ctp",), backbones=("resnet10t",), progress="quiet")


@pytest.fixture()
def no_data_work(monkeypatch):
    """Any data stage called fails the test: a refusal must come from plan_run alone."""
    def called(*_args, **_kwargs):
        raise AssertionError("a data stage ran before the mistake was refused")

    for stage in ("source_stage", "data_stage", "split_stage", "preprocess_stage"):
        monkeypatch.setattr(runner, stage, called)


def run_cli(out: Path, *args):
    return cli("run", BENCH, *TINY, "--backbones", "resnet10t", "--out", out, *args)


# option given -> what the one Error line must name besides the option
MISTAKES = {
    "huge seed": (["--seed", "99999999999999999999"], ["--seed", "99999999999999999999", "4294967295"]),
    "negative seed": (["--seed", "-5"], ["--seed", "-5", "0 to 4294967295"]),
    "unknown timm model": (["--backbones", "timm:not_a_model"], ["--backbones", "timm:not_a_model"]),
    "timm typo": (["--backbones", "timm:resnet10"], ["timm:resnet10", "closest", "resnet10t"]),
    "registered typo": (["--backbones", "resnet10"], ["--backbones", "resnet10", "closest: resnet10t"]),
    "timm without model": (["--backbones", "timm"], ["--backbones", "timm:MODEL_NAME"]),
    "beta nan": (["--loss", "class-balanced", "--loss-option", "beta=nan"], ["--loss-option", "beta", "nan", "[0, 1)"]),
    "beta abc": (["--loss", "class-balanced", "--loss-option", "beta=abc"], ["--loss-option", "beta", "abc", "[0, 1)"]),
    "beta -1": (["--loss", "class-balanced", "--loss-option", "beta=-1"], ["--loss-option", "beta", "-1", "[0, 1)"]),
    "db beta -1": (["--loss", "distribution-balanced", "--loss-option", "beta=-1"], ["beta", "-1", ">= 0"]),
    "db lam 0": (["--loss", "distribution-balanced", "--loss-option", "lam=0"], ["lam", "> 0", "got 0"]),
    "db mu inf": (["--loss", "distribution-balanced", "--loss-option", "mu=inf"], ["mu", "finite", "inf"]),
    "db kappa string": (["--loss", "distribution-balanced", "--loss-option", "kappa=abc"], ["kappa", "abc", ">= 0"]),
    "max_weight Infinity": (["--loss-option", "max_weight=Infinity"], ["--loss-option", "max_weight", "> 0"]),
    "loss option mlbench sets": (["--loss-option", "n_samples=3"], ["--loss-option", "n_samples"]),
    "sampler option not a number": (["--sampler", "ml-ros", "--sampler-option", "percentage=abc"],
                                    ["--sampler-option", "percentage", "abc"]),
    "bootstrap too many": (["--bootstrap", "1000000"], ["--bootstrap", "1000000", "100000"]),
    "workers too many": (["--workers", "100000"], ["--workers", "100000", "1024"]),
    "pretrained not a bool": (["--backbone-option", "resnet10t.pretrained=abc"],
                              ["--backbone-option", "resnet10t.pretrained=abc", "true or false"]),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_mistake_is_one_line_before_any_data_work(tmp_path, no_data_work, case):
    args, named = MISTAKES[case]
    last = assert_one_error(run_cli(tmp_path / "run", *args), *named)
    assert "demo option" not in last.lower()  # a seed of -5 used to be blamed on the demo corpus
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("seeds, named", [("99999999999999999999", "99999999999999999999"), ("0,-5", "-5")])
def test_grid_seeds_out_of_range_are_one_line_naming_seeds(tmp_path, no_data_work, seeds, named):
    result = cli("grid", BENCH, "--demo", "--remedies", "uniform,ml-ros", "--backbones", "resnet10t", "--seeds",
                 seeds, "--out", tmp_path / "grid")
    assert_one_error(result, "--seeds", named, "4294967295")
    assert not (tmp_path / "grid").exists()


@pytest.mark.parametrize("option, value, named", [
    ("max_epochs", 0, "max_epochs"), ("max_epochs", 2.5, "max_epochs"), ("seed", 2**32, "seed"),
    ("seed", True, "seed"), ("n_boot", -1, "n_boot"), ("image_size", 8, "image_size"), ("workers", 0, "workers")])
def test_run_benchmark_refuses_out_of_range_numbers_before_any_data_work(tmp_path, no_data_work, option, value,
                                                                         named):
    # The API's argument table or plan_run's ranges may speak first: either names the keyword.
    with pytest.raises(UserError, match=re.escape(f"{named}=") + r".*expected an int"):
        mlbench.run_benchmark(BENCH, **{**TINY_API, "out": tmp_path / "run", option: value})
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field", ["patience", "batch_size"])
def test_a_benchmark_recipe_out_of_range_is_named(tmp_path, no_data_work, monkeypatch, field):
    create = Registry.create

    def bad_recipe(self, kind, name, /, **kwargs):
        made = create(self, kind, name, **kwargs)
        if kind == "benchmark":
            made = dataclasses.replace(made, demo_recipe=made.demo_recipe.replace(**{field: 0}))
        return made

    monkeypatch.setattr(Registry, "create", bad_recipe)
    with pytest.raises(UserError, match=rf"benchmark {BENCH}: the demo recipe's {field} 0: expected an integer >= 1"):
        mlbench.run_benchmark(BENCH, **{**TINY_API, "out": tmp_path / "run"})


def test_pretrained_false_as_a_backbone_option_overrides_the_recipe(tmp_path, monkeypatch):
    """The recipe says pretrained; the option turns it off for resnet10t (no download is ever tried)."""
    import timm

    create, seen = timm.create_model, []

    def recording(name, *args, pretrained=False, **kwargs):
        seen.append(pretrained)
        return create(name, *args, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", recording)
    from mlbench.contracts.benchmark import Recipe
    from mlbench.contracts.registry import get_registry
    from mlbench.training.loop import build_backbone

    recipe = Recipe(backbones=("resnet10t",), pretrained=True, backbone_options={"resnet10t": {"pretrained": False}})
    model = build_backbone(get_registry(), "resnet10t", 3, recipe)
    assert seen == [False] and model.head[-1].out_features == 3
    assert runner.pretrained_for(recipe, "resnet10t") is False
    assert runner.pretrained_for(recipe.replace(backbone_options={}), "resnet10t") is True


def test_a_run_that_failed_before_training_does_not_lock_its_folder(tmp_path, monkeypatch):
    out = tmp_path / "run"
    # 1. A mistake caught by the plan writes nothing; 2. a crash after preprocessing, before any epoch.
    assert_one_error(run_cli(out, "--backbones", "timm:not_a_model"), "timm:not_a_model")
    assert not out.exists()

    def crash(*_args, **_kwargs):
        raise RuntimeError("killed before the first epoch")

    with monkeypatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setattr(runner, "train_stage", crash)
        with pytest.raises(RuntimeError, match="before the first epoch"):
            mlbench.run_benchmark(BENCH, **{**TINY_API, "out": out, "seed": 3})
    first = json.loads((out / "manifest.json").read_text())
    assert first["identity"]["recipe"]["seed"] == 3 and (out / "split.parquet").exists()
    corpus = [p for p in (out / "demo-data").rglob("*") if p.is_file()]
    shards = [p for p in (out / "cache").rglob("shards/*") if p.is_file()]
    kept = {p: p.stat().st_mtime_ns for p in corpus + shards}
    assert any(p.suffix == ".png" for p in corpus) and any(p.suffix == ".npy" for p in shards)
    # 3. The corrected command (another recipe: seed, and pretrained as a backbone option) starts over here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_cli(out, "--seed", "4", "--backbone-option", "resnet10t.pretrained=False")
    assert result.exit_code == 0, result.output[-2000:]
    m = json.loads((out / "manifest.json").read_text())
    assert m["identity"]["recipe"]["seed"] == 4 and m["run_id"] != first["run_id"]
    assert m["started_over"]["differs_in"] == ["recipe"]
    assert m["pretrained"] == {"resnet10t": False}
    assert m["recipe"]["backbone_options"]["resnet10t"]["pretrained"] is False
    assert (out / "leaderboard.parquet").exists()
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # the demo corpus and the cache were reused
    # 4. Once training has produced something, another recipe is refused as before.
    assert_one_error(run_cli(out, "--seed", "5"), str(out), "differs in: recipe", "training has begun")
    assert json.loads((out / "manifest.json").read_text())["run_id"] == m["run_id"]


def test_the_checkpoint_refusal_quotes_neither_torch_nor_the_file(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo MARKER_FROM_THE_FILE",))

    import torch

    torch.save({"model": Payload()}, tmp_path / "best.pt")
    (tmp_path / "last.pt").write_bytes(pickle.dumps({"model": 1})[:6] + b"MARKER_FROM_THE_FILE")
    for name in ("best.pt", "last.pt"):
        with pytest.raises(CheckpointError) as caught:
            checkpoint.load(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(f"{tmp_path / name}: ") and "\n" not in message
        assert "mlbench can load safely" in message
        for quoted in ("weights_only", "MARKER", "system", "posix", "Unsupported"):
            assert quoted not in message, message
