"""One mlbench.api function per command (issue 20): each called on tiny inputs, and the CLI
printing what the API returns."""

from __future__ import annotations

import json
import warnings

import pytest

import mlbench
import mlbench.foundations.errors
from mlbench import api
from cli_checks import assert_one_error, cli

BENCH = "padchest-specific"
TINY = dict(demo_options={"n_patients": 30, "image_size": 96}, image_size=32, max_epochs=1,
            backbones=("resnet10t",), ensembles=("ctp",), n_boot=10, progress=False, workers=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return mlbench.write_demo_data(BENCH, tmp_path_factory.mktemp("demo") / "demo",
                                   options={"n_patients": 30, "image_size": 96})


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels without test positives in a tiny demo
        return mlbench.run_benchmark(BENCH, demo=True, out=str(out), **TINY)


def test_every_api_function_is_exported_and_validated():
    for name in ARGUMENTS_NEW:
        assert getattr(mlbench, name) is getattr(api, name) and name in api.ARGUMENTS
    # one per command (board init, add and build each; leaderboard show is show_leaderboard), plus grid status
    # and plugins test
    assert len(api.ARGUMENTS) == 26 and set(api.ARGUMENTS) <= set(api.__all__)


ARGUMENTS_NEW = ("write_demo_data", "run_grid", "grid_status", "preprocess_images", "inspect_dataset",
                 "split_dataset", "label_tree", "crop_images", "explain_images", "test_plugin")


def test_write_demo_data_writes_once_then_reuses_the_corpus(corpus, tmp_path):
    assert corpus.csv.is_file() and any(corpus.images.rglob("*.png"))
    shown = cli("demo-data", tmp_path / "d", "--benchmark", BENCH)
    assert shown.exit_code == 0, shown.output
    written = mlbench.write_demo_data(BENCH, tmp_path / "d")  # the record the command left: reused
    assert f"csv={written.csv} images={written.images}" in shown.output
    (tmp_path / "f").write_text("x")
    with pytest.raises(mlbench.foundations.errors.UserError, match="is a file; expected a folder"):
        mlbench.write_demo_data(BENCH, tmp_path / "f")


def test_inspect_split_and_the_cli_prints_the_same_hash(corpus, tmp_path):
    report = mlbench.inspect_dataset("padchest", corpus.csv, images=corpus.images)
    assert report["dataset"] == "padchest" and report["images_kept"] > 0 and report["benchmarks"]
    shown = cli("datasets", "inspect", "padchest", "--csv", corpus.csv, "--images", corpus.images, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["images_kept"] == report["images_kept"]
    summary = mlbench.split_dataset(BENCH, corpus.csv, tmp_path / "split", images=corpus.images)
    assert (tmp_path / "split" / "split.parquet").is_file() and summary["n_images"] > 0
    printed = cli("split", BENCH, "--csv", corpus.csv, "--images", corpus.images, "--out", tmp_path / "split2")
    assert printed.exit_code == 0, printed.output
    assert summary["split_hash"] in printed.output  # the same split from the command and from Python


def test_label_tree_chooses_the_dataset_and_finds_a_label():
    whole = mlbench.label_tree()
    assert whole.dataset and whole.label is None and list(whole.tree.roots)
    child = next(k for kids in whole.tree.children.values() for k in kids)
    found = mlbench.label_tree(whole.dataset, child.upper())
    assert found.label == child and found.parents
    shown = cli("labels", "tree", child.upper(), "--dataset", whole.dataset)
    assert shown.exit_code == 0 and f"parents: {', '.join(found.parents)}" in shown.output, shown.output
    with pytest.raises(mlbench.foundations.errors.UserError, match="is not a label of the tree"):
        mlbench.label_tree(whole.dataset, "no such finding")


def test_crop_images_with_the_default_cropper(corpus, tmp_path):
    films = sorted(corpus.images.rglob("*.png"))[:2]
    seen = []
    report = mlbench.crop_images(films, tmp_path / "crops", size=32, on_progress=lambda d, t: seen.append((d, t)))
    assert report.n_cropped == 2 and report.csv_path.is_file() and not report.missing
    assert seen == [(1, 2), (2, 2)]
    whole = mlbench.crop_images(films[:1], tmp_path / "whole", size=32, preprocessor="resize", bits=8)
    assert whole.n_cropped == 1 and [r.method for r in whole.rows] != [r.method for r in report.rows[:1]]
    with pytest.raises(mlbench.foundations.errors.UserError, match="no .png/.jpg/.jpeg image to crop"):
        mlbench.crop_images(tmp_path / "nothing", tmp_path / "crops2")
    with pytest.raises(api.ArgumentError, match="crop_images: bits=12"):
        mlbench.crop_images(films, tmp_path / "crops3", bits=12)


def test_preprocess_images_fills_the_cache(corpus, tmp_path):
    summary = mlbench.preprocess_images(BENCH, corpus.csv, corpus.images, tmp_path / "cache", size=32, workers=1)
    assert summary["ok"] > 0 and (tmp_path / "cache").is_dir()
    shown = cli("preprocess", BENCH, "--csv", corpus.csv, "--images", corpus.images, "--cache", tmp_path / "cache",
                "--size", 32, "--workers", 1)
    assert shown.exit_code == 0 and f"{summary['ok']} images ready" in shown.output, shown.output


def test_test_plugin_reports_a_verdict_the_command_prints():
    report = mlbench.test_plugin("samplers")
    assert report.passed and report.counts()["pass"] == len(report.results) > 0
    shown = cli("plugins", "test", "samplers", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["results"] == [r.as_dict() | {"seconds": r2["seconds"]} for r, r2 in
                                                    zip(report.results, json.loads(shown.output)["results"])]
    with pytest.raises(mlbench.foundations.errors.UserError, match="nosuch"):
        mlbench.test_plugin("nosuch")


def test_list_plugins_with_errors_is_what_the_json_command_prints():
    shown = cli("plugins", "--json")
    assert shown.exit_code == 0 and json.loads(shown.output) == mlbench.list_plugins(errors=True)


def test_show_leaderboard_names_its_board_as_the_command_does():
    rows = mlbench.show_leaderboard(BENCH, label="cardiomegaly")
    shown = cli("leaderboard", "show", BENCH, "--label", "cardiomegaly")
    assert shown.exit_code == 0 and rows.attrs["file"] in shown.output.replace("\n", ""), shown.output


def test_the_run_the_explain_and_the_json_comparison(demo_run, tmp_path):
    explained = mlbench.explain_images(demo_run.run_dir, tmp_path / "explain", split="test", limit=2, device="cpu",
                                       score=False)
    assert len(explained.explained) == 2 and (tmp_path / "explain").is_dir()
    with pytest.raises(api.ArgumentError, match="explain_images: limit=2"):
        mlbench.explain_images(demo_run.run_dir, tmp_path / "e2", limit=2, images=["a.png"])
    out = tmp_path / "cmp.json"
    comparison = mlbench.compare_run(demo_run.run_dir, json_file=out)
    stored = json.loads(out.read_text())
    assert stored["comparable"] is False and len(stored["rows"]) == len(comparison.rows)
    assert stored == api.comparison_record(comparison)


def test_scoped_backbone_options_reach_every_backbone_of_the_run():
    from mlbench.training.runner import RunOptions

    opts = RunOptions(benchmark=BENCH, demo=True, backbones=("resnet10t", "resnet18"),
                      backbone_options={"resnet18": {"drop_rate": 0.2}})
    scoped = api.backbone_options_of(opts, {"drop_rate": 0.1, "resnet10t.weights": "w.pt"})
    assert scoped == {"resnet10t": {"drop_rate": 0.1, "weights": "w.pt"}, "resnet18": {"drop_rate": 0.2}}
    with pytest.raises(mlbench.foundations.errors.UserError, match="expected \\[BACKBONE.\\]KEY=VALUE"):
        api.backbone_options_of(opts, {"resnet10t.": 1})


def test_no_wait_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(mlbench.foundations.errors.UserError, match="--no-wait: only with --executor slurm"):
        mlbench.run_benchmark(BENCH, demo=True, wait=False)
    with pytest.raises(mlbench.foundations.errors.UserError, match="--no-wait: only with --executor slurm"):
        mlbench.run_grid(BENCH, ("uniform", "ml-ros"), tmp_path / "g", demo=True, executor="local", wait=False)
    assert list(tmp_path.iterdir()) == []
    assert_one_error(cli("grid", "status", tmp_path / "nogrid"), "nogrid")
    with pytest.raises(api.ArgumentError, match="run_grid: seeds=\\[\\] \\(list\\)"):
        mlbench.run_grid(BENCH, "uniform", tmp_path / "g", seeds=[])
