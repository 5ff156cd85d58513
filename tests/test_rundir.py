"""RunDir: one owner of the layout; moved runs keep working; racing appends lose nothing."""

import multiprocessing as mp
import os
import shutil
import warnings

import pytest

from mlbench.results import leaderboard
from mlbench.results.leaderboard import COLUMNS
from mlbench.results.metrics import MetricWarning
from mlbench.training.runner import RunOptions, load_trained, run
from mlbench.results.rundir import RunDir, RunDirError, backbone_folder_name

TINY = dict(benchmark="padchest-specific", demo=True, demo_options={"n_patients": 40, "image_size": 96},
            image_size=32, max_epochs=1, backbones=("resnet10t",), ensembles=("ctp",), n_boot=10, progress=False,
            workers=1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return run(RunOptions(out=tmp_path_factory.mktemp("rundir") / "run", **TINY)).run_dir


def test_a_moved_run_directory_works_from_another_folder(tiny_run, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(tiny_run, moved)
    shutil.rmtree(tiny_run.parent / "_gone", ignore_errors=True)
    original = tiny_run.rename(tiny_run.parent / "_gone")  # the old place no longer exists
    try:
        monkeypatch.chdir(tmp_path)
        rundir = RunDir(moved)
        assert rundir.resolve(rundir.manifest()["source"]["csv"], "the label file", "--csv").is_relative_to(moved)
        assert rundir.cache_path().is_relative_to(moved)
        trained = load_trained(moved)
        assert trained.cache().load(trained.split["image_id"].head(2).tolist()).shape[0] == 2
        # and a resumed run in the moved folder reuses everything (the demo corpus is found there)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            again = run(RunOptions(out=moved, **TINY))
        assert again.manifest["split_hash"] == rundir.manifest()["split_hash"]
    finally:
        original.rename(tiny_run)


def _append(path, worker: int, n: int) -> None:
    rundir = RunDir(path)
    base = {c: None for c in COLUMNS}
    for i in range(n):
        row = {**base, "benchmark": "b", "benchmark_version": "1", "variant": "v", "dataset_kind": "synthetic",
               "entry": "gradcam", "entry_kind": "explainer", "label": f"w{worker}-{i}", "metric": "cam_pointing",
               "value": 0.5, "source": "run", "run_id": f"run-{worker}-{i}", "schema_version": 1}
        rundir.append_leaderboard(leaderboard.to_table([row]))


def test_concurrent_appends_lose_no_row(tmp_path):
    ctx = mp.get_context("fork")
    workers = [ctx.Process(target=_append, args=(tmp_path, w, 25)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
    assert all(p.exitcode == 0 for p in workers)
    table = RunDir(tmp_path).leaderboard()
    assert table.num_rows == 100 and len(set(table.column("run_id").to_pylist())) == 100


def test_broken_manifest_and_split_are_named(tmp_path):
    rundir = RunDir(tmp_path)
    with pytest.raises(RunDirError, match="manifest.json: no such file"):
        rundir.manifest()
    rundir.manifest_file.write_text("{not json")
    with pytest.raises(RunDirError, match=r"manifest.json: not valid JSON"):
        rundir.manifest()
    rundir.split_file.write_bytes(b"PAR1 truncated")
    with pytest.raises(RunDirError, match=r"split.parquet: not a readable parquet file"):
        rundir.split()


def test_backbone_folders_are_safe_names():
    assert backbone_folder_name("timm:convnext_tiny") == "timm--convnext_tiny"
    assert "/" not in backbone_folder_name("../../etc/passwd") and os.sep not in backbone_folder_name("a/b")
