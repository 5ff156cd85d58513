"""``mlbench reproduce``: a run bundle's recipe trained again on the keeper's files and compared, paired, with the
bundle's own predictions; refusals come before any training.

One tiny demo run is bundled; the reproduction trains it once more (CPU: the same seed gives the same weights),
and the tests that follow resume that reproduction or are refused before it."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import mlbench
from cli_checks import assert_one_error, cli
from mlbench.api import ArgumentError
from mlbench.contracts.benchmark import Recipe
from mlbench.demo import read_source_record
from mlbench.foundations.errors import UserError
from mlbench.judging.bundle import ENVIRONMENT, open_bundle, write_bundle, write_external_bundle
from mlbench.judging.reproduce import NOT_REPRODUCED, REPRODUCED
from mlbench.results import predictions
from mlbench.results.metrics import MetricWarning
from mlbench.results.rundir import MANIFEST, PREDICTIONS, RunDir
from mlbench.training import runner
from mlbench.training.runner import load_plan, run
from tiny_bundles import options, rewrite




@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("reproduce")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        run_dir = run(options(root, 0)).run_dir
    source = read_source_record(root / "demo")  # the keeper's --csv/--images: the files the run read
    return {"root": root, "run_dir": run_dir, "bundle": write_bundle(run_dir, root / "run.zip"),
            "csv": Path(source.csv), "images": Path(source.images)}


@pytest.fixture(scope="module")
def reproduced(bundled):
    """The bundle reproduced by the command, into one --out the later tests resume."""
    out, report = bundled["root"] / "again", bundled["root"] / "again.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        shown = cli("reproduce", bundled["bundle"], "--csv", bundled["csv"], "--images", bundled["images"], "--out",
                    out, "--bootstrap", 50, "--json", report, "--quiet", "--workers", 1, "--device", "cpu")
    return {"out": out, "shown": shown, "report": json.loads(report.read_text())}




def edited_json(bundle: Path, member: str, edit) -> bytes:
    with zipfile.ZipFile(bundle) as z:
        value = json.loads(z.read(member))
    edit(value)
    return json.dumps(value).encode()


# -- the same recipe, the same numbers -------------------------------------------------------------------
def test_the_reproduction_of_a_cpu_run_is_reproduced_for_every_entry_with_zero_differences(bundled, reproduced):
    shown, report = reproduced["shown"], reproduced["report"]
    assert shown.exit_code == 0, shown.output
    assert "reproduced:" in shown.output and "not reproduced" not in shown.output
    bundle = open_bundle(bundled["bundle"])
    entries = bundle.manifest["backbones"] + bundle.manifest["ensembles"]
    assert len(entries) == 4  # one backbone and the recipe's three ensembles
    assert report["reproduced"] is True and report["bundle_sha256"] == bundle.sha256
    assert {(r["entry"], r["metric"]) for r in report["rows"]} == {(e, m) for e in entries
                                                                   for m in ("auc", "auprc", "f1")}
    assert {r["verdict"] for r in report["rows"]} == {REPRODUCED}
    # CPU, same seed, same data: the same weights, so the same probabilities and no difference at all.
    assert all(abs(r["difference"]) <= 1e-9 and r["ci_low"] <= 0 <= r["ci_high"] for r in report["rows"])
    assert set(report["max_abs_difference"]) == set(entries)
    assert max(report["max_abs_difference"].values()) <= 1e-6
    assert report["n_test"] > 0 and report["bootstrap"]["n_boot"] == 50


def test_the_reproduction_ran_the_bundles_recipe_exactly_and_its_jobs_would_too(bundled, reproduced):
    original, again = RunDir(bundled["run_dir"]).manifest(), RunDir(reproduced["out"]).manifest()
    assert again["recipe"] == original["recipe"]  # lr, patience, head units ...: the demo recipe, not the paper's
    assert again["recipe"]["lr"] != Recipe(backbones=("x",)).lr
    assert again["bootstrap"]["n_boot"] == original["bootstrap"]["n_boot"] == 20
    assert again["split_hash"] == original["split_hash"] and again["run_id"] != original["run_id"]
    # plan.json carries the whole recipe: an executor's job rebuilds the same one.
    assert load_plan(reproduced["out"]).options.recipe.to_dict() == original["recipe"]


# -- refused before anything is trained ----------------------------------------------------------------
def not_installed(environment):
    loss = next(p for p in environment["plugins"] if p["kind"] == "loss")
    loss["version"] = "0.0.0-never-released"


def unregistered(environment):
    environment["plugins"].append({"kind": "ensemble", "name": "no-such-ensemble", "plugin": "elsewhere",
                                   "distribution": "mlbench-elsewhere", "version": "1.0"})


def older_benchmark(manifest):
    manifest["benchmark_version"] = "0.0.1"


@pytest.mark.parametrize("member, edit, named", [
    (ENVIRONMENT, not_installed, ("weighted-bce", "0.0.0-never-released", "installed here is")),
    (ENVIRONMENT, unregistered, ("no-such-ensemble", "not installed here")),
    (MANIFEST, older_benchmark, ("padchest-specific", "0.0.1")),
])
def test_a_bundle_this_installation_cannot_rerun_is_refused_in_one_line_before_training(bundled, tmp_path,
                                                                                       monkeypatch, member, edit,
                                                                                       named):
    bad = rewrite(bundled["bundle"], tmp_path / "bad.zip", member, edited_json(bundled["bundle"], member, edit))
    monkeypatch.setattr(runner, "prepare", lambda plan: pytest.fail("a refusal must come before any data stage"))
    out = tmp_path / "out"
    shown = cli("reproduce", bad, "--csv", bundled["csv"], "--images", bundled["images"], "--out", out, "--quiet")
    assert_one_error(shown, str(bad), *named)
    assert not out.exists()


def test_an_external_bundle_is_refused_it_has_no_recipe(bundled, tmp_path, monkeypatch):
    frame = open_bundle(bundled["bundle"]).predictions()
    external = write_external_bundle(frame, benchmark="padchest-specific", benchmark_version="1.0",
                                     describe="a model trained elsewhere", out=tmp_path / "external.zip")
    monkeypatch.setattr(runner, "prepare", lambda plan: pytest.fail("a refusal must come before any data stage"))
    out = tmp_path / "out"
    with pytest.raises(UserError, match="external bundle.*no recipe"):
        mlbench.reproduce_bundle(external, csv=bundled["csv"], images=bundled["images"], out=out)
    assert not out.exists()


def test_a_label_file_giving_another_split_is_refused_before_training(bundled, tmp_path, monkeypatch):
    frame = pd.read_csv(bundled["csv"])
    other = tmp_path / "fewer.csv"
    frame.iloc[: len(frame) - 5].to_csv(other, index=False)  # another label file: another split
    monkeypatch.setattr(runner, "prepare", lambda plan: pytest.fail("a refusal must come before any data stage"))
    out = tmp_path / "out"
    shown = cli("reproduce", bundled["bundle"], "--csv", other, "--images", bundled["images"], "--out", out)
    assert_one_error(shown, "--csv", "split")
    assert not out.exists()


def test_the_keepers_own_mistakes_are_named(bundled, tmp_path):
    shown = cli("reproduce", bundled["bundle"], "--csv", tmp_path / "nope.csv", "--images", bundled["images"],
                "--out", tmp_path / "out")
    assert_one_error(shown, "--csv", "nope.csv")
    with pytest.raises(ArgumentError, match="n_boot"):
        mlbench.reproduce_bundle(bundled["bundle"], csv=bundled["csv"], images=bundled["images"],
                                 out=tmp_path / "out", n_boot=0)


# -- a bundle the reproduction does not match ------------------------------------------------------------
def test_predictions_the_recipe_cannot_give_are_not_reproduced_and_the_rerun_resumes(bundled, reproduced, tmp_path):
    # Every entry's probabilities replaced by ones that leak the truth: a valid bundle no honest training matches.
    frame = open_bundle(bundled["bundle"]).predictions()
    split = RunDir(bundled["run_dir"]).split().set_index("image_id")
    truth = np.array([split.at[i, label] for i, label in zip(frame["image_id"], frame["label"])])
    frame["probability"] = np.where(truth == 1, 0.9, 0.1)
    sink = io.BytesIO()
    pq.write_table(predictions.from_frame(frame).replace_schema_metadata(None), sink)
    leaking = rewrite(bundled["bundle"], tmp_path / "leaking.zip", PREDICTIONS, sink.getvalue())
    before = RunDir(reproduced["out"]).manifest()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        result = mlbench.reproduce_bundle(leaking, csv=bundled["csv"], images=bundled["images"],
                                          out=reproduced["out"], n_boot=50, progress=False, workers=1, device="cpu")
    assert result.reproduction_run_id == before["run_id"]  # resumed: the finished reproduction, not a new run
    assert not result.reproduced
    auc = result.rows[result.rows["metric"] == "auc"]
    assert len(auc) == 4 and (auc["verdict"] == NOT_REPRODUCED).all()
    assert (auc["difference"] < 0).all() and (auc["ci_high"] < 0).all()  # the reproduction is below the claim
    assert len(result.failures) == 4 and all("macro auc: not reproduced" in f for f in result.failures)
    assert min(result.max_abs_difference.values()) > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        shown = cli("reproduce", leaking, "--csv", bundled["csv"], "--images", bundled["images"], "--out",
                    reproduced["out"], "--bootstrap", 50, "--quiet", "--device", "cpu")
    assert_one_error(shown, str(leaking), "not reproduced")
    assert "not reproduced" in shown.output.split("Error:")[0]  # the table printed before the verdict
