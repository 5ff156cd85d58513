"""A post-hoc adjuster inside a run: fitted on each backbone's validation outputs, applied to its validation
and test outputs before the ensembles, recorded in the manifest; ``mlbench predict`` adjusts new films alike."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mlbench.contracts.registry import get_registry
from mlbench.foundations.options import OptionError
from mlbench.results import predictions
from mlbench.results.rundir import RunDir
from mlbench.training import predict
from mlbench.training.runner import plan_run, run
from tiny_bundles import demo_corpus, options

BACKBONE = "mobilenetv3_small_050"


@pytest.fixture(scope="module")
def adjusted_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("adjusted")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(options(root, 0, adjuster="logit-adjust", adjuster_options={"tau": 1.0}, ensembles=("ctp",))).run_dir


def wide(frame: pd.DataFrame, entry: str, ids: list[str], labels: list[str]) -> np.ndarray:
    return predictions.wide(frame, entry, ids, labels)


def test_the_run_s_predictions_are_the_adjusted_raw_outputs(adjusted_run):
    rundir = RunDir(adjusted_run)
    split = rundir.split()
    labels = [c for c in split.columns if c not in ("image_id", "patient_id", "split")]
    raw = pd.read_parquet(rundir.backbone_predictions(BACKBONE))
    stored = pd.read_parquet(rundir.predictions_file)
    train = split[split["split"] == "train"]
    counts = train[labels].to_numpy().sum(axis=0)
    val_ids = split.loc[split["split"] == "val", "image_id"].tolist()
    adjuster = get_registry().create("adjuster", "logit-adjust", val_probs=wide(raw[raw.split == "val"], BACKBONE,
                                                                                val_ids, labels),
                                     val_targets=split.loc[split["split"] == "val", labels].to_numpy(),
                                     label_counts=counts.tolist(), n_samples=len(train), head=None, tau=1.0)
    test_ids = split.loc[split["split"] == "test", "image_id"].tolist()
    want = adjuster.apply(wide(raw[raw.split == "test"], BACKBONE, test_ids, labels))
    got = wide(stored[stored.split == "test"], BACKBONE, test_ids, labels)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.allclose(got, wide(raw[raw.split == "test"], BACKBONE, test_ids, labels), atol=1e-4)
    # One backbone: CTP's mean of one model is the adjusted model itself.
    np.testing.assert_allclose(wide(stored[stored.split == "test"], "ctp", test_ids, labels), got, atol=1e-6)
    record = rundir.manifest()["adjuster"]
    assert record["name"] == "logit-adjust" and record["fitted_on"] == "val"
    assert record["per_backbone"][BACKBONE]["tau"] == 1.0
    assert rundir.manifest()["versions"]["plugins"]["adjuster:logit-adjust"].startswith("mlbench-imbalanced==")


def test_predict_adjusts_new_films_as_the_run_adjusted_its_test_films(adjusted_run, tmp_path):
    csv, images = demo_corpus(adjusted_run)
    split = RunDir(adjusted_run).split()
    films = pd.read_csv(csv)
    test = films[films["ImageID"].isin(split.loc[split["split"] == "test", "image_id"])]
    listing = tmp_path / "films.txt"
    listing.write_text("\n".join(test["ImageDir"].astype(str) + "/" + test["ImageID"]) + "\n")
    out = tmp_path / "predicted.csv"
    predict.predict_images(adjusted_run, images, out, list_file=listing, device="cpu", progress=False)
    mine = pd.read_csv(out)
    mine["image_id"] = mine["image_id"].str.rsplit("/", n=1).str[-1]
    stored = pd.read_parquet(RunDir(adjusted_run).predictions_file)
    stored = stored[(stored.split == "test") & (stored.entry == BACKBONE)].set_index(["image_id", "label"])
    theirs = mine[mine.entry == BACKBONE].set_index(["image_id", "label"])["probability"]
    joined = stored.join(theirs.rename("predicted"), how="inner")
    assert len(joined) == len(stored)
    np.testing.assert_allclose(joined["predicted"], joined["probability"], atol=1e-4)


def test_adjuster_mistakes_are_one_line_before_any_work(tmp_path):
    with pytest.raises(OptionError, match="--adjuster-option.*tau"):
        plan_run(options(tmp_path, 0, adjuster="logit-adjust", adjuster_options={"tau": -1}))
    with pytest.raises(Exception, match="adjuster"):
        plan_run(options(tmp_path, 0, adjuster="no-such-adjuster"))
    assert not (tmp_path / "run-0").exists()
