"""A third party's schedule and post-hoc adjuster, found through the ``mlbench`` entry-point group, run as
grid remedies beside the built-ins, pass conformance, and combine under the grid's grammar.

The plugin is ``tests/data/plugins/toy_remedies`` (written from docs/plugins.md section 12). It is
made discoverable as an installed distribution is: a ``*.dist-info`` folder with its
``entry_points.txt`` on ``sys.path``, so nothing is registered in-process.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlbench.contracts import registry as registry_module
from mlbench.conformance import PASS, check_plugin
from mlbench.grid.cells import GridSpec, run_grid
from mlbench.grid.remedies import RemedyError, parse_remedy
from mlbench.results.griddir import COMPARISON, cell_dir
from mlbench.results.metrics import MetricWarning
from mlbench.results.rundir import RunDir

PLUGIN = Path(__file__).resolve().parent / "data" / "plugins" / "toy_remedies"
RUN = {"max_epochs": 2, "image_size": 32, "ensembles": ("ctp",), "n_boot": 20, "workers": 1,
       "demo_options": {"n_patients": 40, "image_size": 96}}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The plugin as pip would leave it: its package importable, its entry point in a dist-info folder."""
    site = tmp_path_factory.mktemp("site")
    info = site / "mlbench_toy_remedies-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlbench-toy-remedies\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[mlbench]\ntoy_remedies = mlbench_toy_remedies\n")
    cache = tmp_path_factory.mktemp("registry-cache")
    saved_path, saved_env = list(sys.path), registry_module.os.environ.get("MLBENCH_CACHE_DIR")
    sys.path[:0] = [str(site), str(PLUGIN)]
    registry_module.os.environ["MLBENCH_CACHE_DIR"] = str(cache)
    importlib.invalidate_caches()
    registry_module.reset_registry()
    try:
        yield registry_module.get_registry()
    finally:
        sys.path[:] = saved_path
        if saved_env is None:
            registry_module.os.environ.pop("MLBENCH_CACHE_DIR", None)
        else:
            registry_module.os.environ["MLBENCH_CACHE_DIR"] = saved_env
        sys.modules.pop("mlbench_toy_remedies", None)
        importlib.invalidate_caches()
        registry_module.reset_registry()


@pytest.fixture(scope="module")
def grid(installed, tmp_path_factory):
    spec = GridSpec(benchmark="padchest-specific", out=tmp_path_factory.mktemp("grid"), demo=True,
                    remedies=["uniform", "late-class-aware", "prevalence-match", "crt+temperature"],
                    backbones=["resnet10t"], seeds=[0], run_options=dict(RUN), n_boot=20, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return run_grid(spec, registry=installed)


def test_the_plugin_is_found_through_its_entry_point(installed):
    assert installed.get("schedule", "late-class-aware").plugin == "toy_remedies"
    assert installed.get("adjuster", "prevalence-match").plugin == "toy_remedies"


def test_its_schedule_and_adjuster_pass_conformance(installed):
    results = check_plugin("toy_remedies", installed).results
    assert {(r.kind, r.name) for r in results} == {("schedule", "late-class-aware"), ("adjuster", "prevalence-match")}
    assert all(r.status == PASS for r in results), [r.detail for r in results]


def test_they_run_as_grid_remedies(grid):
    late = RunDir(cell_dir(grid.grid_dir, "late-class-aware", 0))
    stages = late.manifest()["schedule"]["stages"]
    assert [s["name"] for s in stages] == ["main", "late"] and stages[1]["sampler"] == "class-aware"
    history = __import__("json").loads((late.backbone_dir("resnet10t") / "history.json").read_text())
    assert history["history"][-1]["stage"] == "late"

    matched = RunDir(cell_dir(grid.grid_dir, "prevalence-match", 0))
    fit = matched.manifest()["adjuster"]
    labels = [c for c in matched.split().columns if c not in ("image_id", "patient_id", "split")]
    assert fit["name"] == "prevalence-match" and len(fit["per_backbone"]["resnet10t"]["shift"]) == len(labels)
    # The adjuster's defining property on the run's own validation outputs: mean probability = prevalence.
    split = matched.split()
    preds = pd.read_parquet(matched.predictions_file)
    val = preds[(preds["split"] == "val") & (preds["entry"] == "resnet10t")]
    mean_prob = val.groupby("label")["probability"].mean()
    usable = split[(split["split"] == "val") & split["image_id"].isin(val["image_id"])]
    prevalence = usable[mean_prob.index].mean()
    # (the plugin aims at a prevalence kept within [0.001, 0.999]: a label absent from validation has no finite shift)
    np.testing.assert_allclose(mean_prob.to_numpy(), prevalence.clip(1e-3, 1 - 1e-3).to_numpy(), atol=1e-4)

    # It acts only after training: the grid copied the baseline's training instead of repeating it.
    assert set(matched.manifest()["training_copied_from"]) == {"resnet10t"}
    baseline = RunDir(cell_dir(grid.grid_dir, "uniform", 0))
    assert matched.best_checkpoint("resnet10t").read_bytes() == baseline.best_checkpoint("resnet10t").read_bytes()
    assert "training_copied_from" not in late.manifest() and "training_resumed_from" in late.manifest()
    # crt's first stage is the baseline's whole training: the grid resumed it after that stage.
    crt = RunDir(cell_dir(grid.grid_dir, "crt+temperature", 0))
    assert set(crt.manifest()["training_resumed_from"]) == {"resnet10t"}
    import json

    mine = json.loads(crt.history_file("resnet10t").read_text())
    theirs = json.loads(baseline.history_file("resnet10t").read_text())
    assert [s["name"] for s in mine["stages"]] == ["main", "crt"] and mine["stages"][0] == theirs["stages"][0]
    assert mine["history"][:len(theirs["history"])] == theirs["history"]

    table = pd.read_parquet(grid.grid_dir / COMPARISON)
    assert set(table["remedy"]) == {"late-class-aware", "prevalence-match", "crt+temperature"}
    assert {"auc", "auprc", "f1", "ece_15", "brier"} <= set(table["metric"])
    assert table["p_adjusted"].notna().any()


def test_meaningless_combinations_are_refused_in_one_line(installed):
    with pytest.raises(RemedyError, match="'lws' cannot be combined with 'tau-norm'"):
        parse_remedy("lws+tau-norm", installed)
    with pytest.raises(RemedyError, match="2 schedules"):
        parse_remedy("crt+late-class-aware", installed)
    with pytest.raises(RemedyError, match="2 post-hoc adjusters"):
        parse_remedy("temperature+prevalence-match", installed)
    remedy = parse_remedy("ml-ros+ldam+drw+temperature+val-f1", installed)
    assert (remedy.sampler, remedy.loss, remedy.schedule, remedy.adjuster, remedy.threshold_rule) == (
        "ml-ros", "ldam", "drw", "temperature", "val-f1")


def test_a_training_twin_outside_the_grid_is_never_read(grid, tmp_path):
    """A plan's stored twin path leads only to a sibling cell: anything else is trained, not copied."""
    import dataclasses
    import shutil

    from mlbench.training.runner import copy_twin_training

    cell = next(c for c in grid.cells if c.remedy.name == "prevalence-match")
    probe = grid.grid_dir / "cells" / "probe" / "seed-0"
    shutil.copytree(cell.options.out, probe)
    shutil.rmtree(RunDir(probe).backbone_dir("resnet10t"))
    outside = tmp_path / "elsewhere"
    shutil.copytree(cell.options.training_twin, outside)  # the same finished twin, outside the grid
    labels = RunDir(probe).split().query("split == 'train'").iloc[:, 3:].to_numpy(dtype=np.uint8)
    try:
        for twin, copied in ((outside, False), (cell.options.training_twin, True)):
            plan = dataclasses.replace(cell.plan, options=dataclasses.replace(cell.options, training_twin=twin),
                                       rundir=RunDir(probe))
            assert copy_twin_training(plan, "resnet10t", labels) is copied
            assert RunDir(probe).backbone_predictions("resnet10t").exists() is copied
    finally:
        shutil.rmtree(probe.parent)
