"""A folder run made with dataset options goes through submit, verify and reproduce.

Those commands read the label file again; they must read it with the options the run was made
with (its manifest's identity), or the recomputed split is another one and the run is refused for
the wrong reason. One tiny run on the user's own CSV (another path column, labels joined by '+',
policy zeros) serves every check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import mlbench
from mlbench.data import DataSource
from mlbench.data.canonical import content_sha256
from mlbench.judging.reproduce import plan_reproduction
from mlbench.judging.verify import Keeper, verify_bundle
from mlbench.judging.submit import validate_run
from mlbench_folder.demo import write_demo_folder

OPTIONS = {"path_column": "file", "labels": "shapes", "separator": "+", "min_count": 3, "policy": "zeros"}


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("folder-judging")
    source = write_demo_folder(tmp / "shapes", n_patients=24, image_size=32)
    demo = pd.read_csv(source.csv, dtype=str, keep_default_na=False)
    shapes = [c for c in demo.columns if c not in ("path", "patient")]
    joined = ["+".join(s for s in shapes if row[s] in ("1", "-1")) for _, row in demo.iterrows()]
    csv = tmp / "mine.csv"
    pd.DataFrame({"file": demo["path"], "patient": demo["patient"], "shapes": joined}).to_csv(csv, index=False)
    out = tmp / "run"
    mlbench.run_benchmark("folder", csv=str(csv), images=str(source.images), out=str(out), backbones="resnet10t",
                          ensembles="ctp", max_epochs=1, image_size=32, workers=1, pretrained=False, n_boot=10,
                          progress="quiet", dataset_options=OPTIONS)
    return out, csv, Path(source.images)


def test_submit_reads_the_label_file_with_the_runs_dataset_options(folder_run, tmp_path):
    out, csv, images = folder_run
    assert json.loads((out / "manifest.json").read_text())["identity"]["dataset_options"]["policy"] == "zeros"
    checked = validate_run(out, source=DataSource(csv, images))
    assert checked.ok, checked.problems
    assert any("split" in line for line in checked.passed)
    result = mlbench.submit_run(out, tmp_path / "board.parquet", csv=csv, images=images)
    assert pd.read_parquet(tmp_path / "board.parquet")["run_id"].nunique() == 1 and result is not None


def test_a_manifest_whose_dataset_options_the_dataset_refuses_is_one_problem(folder_run, tmp_path):
    out, csv, images = folder_run
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("cache"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["identity"]["dataset_options"]["policy"] = "sometimes"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    checked = validate_run(copy, source=DataSource(csv, images))
    assert not checked.ok and len(checked.problems) == 1
    assert "policy" in checked.problems[0] and "sometimes" in checked.problems[0]


def test_verify_and_reproduce_read_the_keepers_file_with_the_bundles_options(folder_run, tmp_path):
    out, csv, images = folder_run
    bundle = tmp_path / "run.zip"
    mlbench.bundle_run(out, bundle, with_checkpoints=True)
    # A board of a benchmark without canonical releases is pinned to one label file: the user's CSV.
    keeper = Keeper(csv, images, pinned_sha256=content_sha256(csv), sample=4)
    verdict = verify_bundle(bundle, keeper)
    assert verdict.accepted, verdict.failures
    plan = plan_reproduction(bundle, csv, images, tmp_path / "again")
    assert OPTIONS.items() <= plan.options.dataset_options.items()  # and the defaults the run resolved
    assert plan.split.summary["split_hash"] == json.loads((out / "manifest.json").read_text())["split_hash"]
