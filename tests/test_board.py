"""Boards kept as a folder (a git repository): verify believes nothing a bundle says, board add files only
what verify accepts, board build is deterministic, and the public page renders offline.

Three tiny demo runs share one demo corpus (so one label file), each bundled with its weights."""

from __future__ import annotations

import io
import json
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlbench.cli import main
from mlbench.data.canonical import content_sha256
from mlbench.demo import read_source_record
from mlbench.judging.board import BoardError, add_submission, build_board, init_board
from mlbench.judging.bundle import write_bundle
from mlbench.judging.verify import Keeper, verify_bundle
from mlbench.results import predictions
from mlbench.results.metrics import MetricWarning
from mlbench.training.runner import run
from tiny_bundles import options, rewrite

SEEDS = (0, 1, 2)




@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("board")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        dirs = [run(options(root, seed)).run_dir for seed in SEEDS]
    bundles = [write_bundle(d, root / f"run-{s}.zip", with_checkpoints=True) for s, d in zip(SEEDS, dirs)]
    source = read_source_record(root / "demo")  # the label file and image folder the runs read
    return {"root": root, "dirs": dirs, "bundles": bundles, "csv": Path(source.csv), "images": Path(source.images)}


def keeper(runs, **more) -> Keeper:
    """The keeper of a synthetic practice board pinned to the runs' demo label file."""
    settings = {"images": runs["images"], "pinned_sha256": content_sha256(runs["csv"]), "allow_synthetic": True,
                **more}
    return Keeper(runs["csv"], **settings)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}




def parquet_bytes(frame: pd.DataFrame, schema=None) -> bytes:
    import pyarrow as pa

    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), sink)  # as mlbench writes them: no pandas metadata
    return sink.getvalue()


def member_frame(bundle: Path, member: str) -> pd.DataFrame:
    with zipfile.ZipFile(bundle) as z:
        return pq.read_table(io.BytesIO(z.read(member))).to_pandas()


# -- verify ----------------------------------------------------------------------------------------
def test_a_good_bundle_passes_every_check_and_its_rows_carry_the_manifests_provenance(runs):
    verdict = verify_bundle(runs["bundles"][0], keeper(runs))
    assert verdict.accepted, verdict.failures
    names = [c.name for c in verdict.checks]
    for check in ("bundle", "benchmark", "label-file", "split", "coverage", "ensembles", "metrics", "models"):
        assert check in names
    assert not verdict.not_checked
    manifest = json.loads((runs["dirs"][0] / "manifest.json").read_text())
    assert set(verdict.rows.column("run_id").to_pylist()) == {manifest["run_id"]}


def test_without_images_the_models_are_listed_as_not_checked(runs):
    verdict = verify_bundle(runs["bundles"][0], keeper(runs, images=None))
    assert verdict.accepted, verdict.failures
    assert any(n.startswith("models:") for n in verdict.not_checked)


def test_a_synthetic_label_file_is_refused_unless_the_board_is_synthetic(runs):
    unpinned = verify_bundle(runs["bundles"][0], Keeper(runs["csv"]))
    assert unpinned.failures[0].startswith("label-file:")  # padchest-specific pins its real release
    pinned = verify_bundle(runs["bundles"][0], keeper(runs, allow_synthetic=False))
    assert [f.split(":")[0] for f in pinned.failures] == ["real-data"]


def test_an_inflated_auc_is_refused_naming_the_metrics_check(runs, tmp_path):
    board = member_frame(runs["bundles"][0], "leaderboard.parquet")
    board.loc[(board["metric"] == "auc") & (board["label"] == "__global__"), "value"] = 0.99
    from mlbench.results.leaderboard import SCHEMA

    bad = rewrite(runs["bundles"][0], tmp_path / "inflated.zip", "leaderboard.parquet", parquet_bytes(board, SCHEMA))
    verdict = verify_bundle(bad, keeper(runs))
    assert [f.split(":")[0] for f in verdict.failures] == ["metrics"]


def test_a_swapped_test_image_and_a_missing_label_are_refused_naming_coverage(runs, tmp_path):
    preds = member_frame(runs["bundles"][0], "predictions.parquet")
    test_ids = preds.loc[preds["split"] == "test", "image_id"].unique()
    train_like = "not-a-test-image.png"
    swapped = preds.assign(image_id=preds["image_id"].replace({test_ids[0]: train_like}))
    missing = preds[~((preds["split"] == "test") & (preds["label"] == preds["label"].iloc[0]))]
    for name, frame in (("swapped", swapped), ("missing", missing)):
        bad = rewrite(runs["bundles"][0], tmp_path / f"{name}.zip", "predictions.parquet",
                      parquet_bytes(frame, predictions.SCHEMA))
        verdict = verify_bundle(bad, keeper(runs))
        assert not verdict.accepted
        assert verdict.failures[0].startswith("coverage:"), (name, verdict.failures)


def test_sealed_labels_score_the_test_images_with_the_keepers_truth(runs, tmp_path):
    same = verify_bundle(runs["bundles"][0], keeper(runs, labels=runs["csv"]))
    assert same.accepted, same.failures
    # The private file with each test image's findings moved to the next test image: the claimed rows no longer hold.
    frame = pd.read_csv(runs["csv"])
    test_ids = member_frame(runs["bundles"][0], "predictions.parquet").query("split == 'test'")["image_id"].unique()
    rows = frame["ImageID"].isin(test_ids)
    frame.loc[rows, "Labels"] = np.roll(frame.loc[rows, "Labels"].to_numpy(), 1)
    private = tmp_path / "private.csv"
    frame.to_csv(private, index=False)
    verdict = verify_bundle(runs["bundles"][0], keeper(runs, labels=private))
    assert "metrics" in [f.split(":")[0] for f in verdict.failures]


# -- the two hostile submissions of issue 21 ------------------------------------------------------------
def test_a_demo_run_relabelled_padchest_is_refused_by_the_real_board(runs, tmp_path):
    run_dir = tmp_path / "relabelled"
    shutil.copytree(runs["dirs"][0], run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["dataset_kind"] = "padchest"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    rows = pq.read_table(run_dir / "leaderboard.parquet")
    frame = rows.to_pandas().assign(dataset_kind="padchest")
    pq.write_table(type(rows).from_pandas(frame, schema=rows.schema, preserve_index=False), run_dir / "leaderboard.parquet")
    demo = runs["root"] / "demo-copy"
    shutil.copytree(runs["root"] / "demo", demo)
    from mlbench.demo import MARKER_NAME

    for marker in demo.rglob(MARKER_NAME):
        marker.unlink()
    bundle = write_bundle(run_dir, tmp_path / "relabelled.zip")
    board = init_board(tmp_path / "board", "padchest-specific")
    before = files_under(tmp_path / "board")
    csv = demo / runs["csv"].relative_to(runs["root"] / "demo")
    with pytest.raises(BoardError) as caught:
        add_submission(board.root, bundle, csv, images=demo / runs["images"].relative_to(runs["root"] / "demo"))
    assert "label-file:" in str(caught.value) and "canonical" in str(caught.value)
    assert files_under(tmp_path / "board") == before


def test_fabricated_predictions_with_the_checkpoints_present_are_refused_naming_the_models(runs, tmp_path):
    root = runs["root"]
    fake = root / "fabricated"
    shutil.copytree(runs["dirs"][1], fake)
    split = pd.read_parquet(fake / "split.parquet").set_index("image_id")
    for predictions in fake.glob("backbones/*/predictions.parquet"):
        frame = pd.read_parquet(predictions)
        truth = np.array([split.at[i, label] for i, label in zip(frame["image_id"], frame["label"])])
        frame["probability"] = np.where(truth == 1, 0.9, 0.1)
        pq.write_table(pq.read_table(predictions).from_pandas(frame, preserve_index=False), predictions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        run(options(root, 1, out=fake, ensemble_only=True))
    bundle = write_bundle(fake, tmp_path / "fabricated.zip", with_checkpoints=True)
    board = init_board(tmp_path / "board", "padchest-specific", csv=runs["csv"], synthetic=True)
    with pytest.raises(BoardError) as caught:
        add_submission(board.root, bundle, runs["csv"], images=runs["images"])
    message = str(caught.value)
    assert "\n" not in message
    failed = [part.split(":")[0] for part in message.split(": refused: ", 1)[1].split(" | ")]
    assert failed == ["models"], message


def test_a_hostile_archive_is_refused_in_one_line_and_nothing_is_written(runs, tmp_path):
    board = init_board(tmp_path / "board", "padchest-specific", csv=runs["csv"], synthetic=True)
    before = files_under(tmp_path)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escape.json", "{}")
        z.writestr("bundle.json", json.dumps({"format": "mlbench-bundle", "format_version": 1, "kind": "run",
                                              "members": {"../escape.json": {"sha256": "0" * 64,
                                                                             "bytes": 10 * 1024 ** 3}}}))
    result = CliRunner().invoke(main, ["board", "add", str(board.root), str(evil), "--csv", str(runs["csv"])])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ") and "bundle:" in result.output
    assert files_under(tmp_path) == before | {evil}
    assert not (tmp_path.parent / "escape.json").exists()


# -- a board of three -----------------------------------------------------------------------------------
def test_a_board_of_three_rebuilds_byte_identically_and_drops_a_tampered_submission(runs, tmp_path):
    folder = tmp_path / "board"
    result = CliRunner().invoke(main, ["board", "init", str(folder), "--benchmark", "padchest-specific",
                                       "--csv", str(runs["csv"]), "--synthetic"])
    assert result.exit_code == 0, result.output
    for bundle in runs["bundles"]:
        added = CliRunner().invoke(main, ["board", "add", str(folder), str(bundle), "--csv", str(runs["csv"]),
                                          "--images", str(runs["images"]), "--sample", "8"])
        assert added.exit_code == 0, added.output
    again = CliRunner().invoke(main, ["board", "add", str(folder), str(runs["bundles"][0]), "--csv", str(runs["csv"])])
    assert again.exit_code == 1 and "already" in again.output
    first = (folder / "board.parquet").read_bytes()
    rows = pd.read_parquet(folder / "board.parquet")
    assert rows["run_id"].nunique() == 3
    (folder / "board.parquet").unlink()
    assert build_board(folder).rows == len(rows)
    assert (folder / "board.parquet").read_bytes() == first
    assert (folder / ".github" / "workflows" / "verify.yml").is_file()
    # A bundle swapped after its verdict: it drops out of the next build, and the build says so.
    victim = sorted((folder / "submissions").iterdir())[0]
    other = next(b for b in runs["bundles"] if b.read_bytes() != (victim / "bundle.zip").read_bytes())
    shutil.copyfile(other, victim / "bundle.zip")
    built = build_board(folder)
    assert victim.name in built.dropped and "sha256" in built.dropped[victim.name]
    assert pd.read_parquet(folder / "board.parquet")["run_id"].nunique() == 2


def test_the_board_page_ranks_submissions_and_renders_offline(runs, tmp_path):
    folder = tmp_path / "board"
    init_board(folder, "padchest-specific", csv=runs["csv"], synthetic=True)
    for bundle in runs["bundles"]:
        add_submission(folder, bundle, runs["csv"])
    page = tmp_path / "index.html"
    made = CliRunner().invoke(main, ["report", "--board", str(folder), "--out", str(page)])
    assert made.exit_code == 0, made.output
    text = page.read_text()
    assert "SYNTHETIC" in text and "ranking-table" in text
    assert text.count('id="sub-') == 3
    refused = CliRunner().invoke(main, ["report", "--board", str(folder), "--out", str(folder / "board.parquet")])
    assert refused.exit_code == 1 and "the board" in refused.output

    from test_report_browser import _browser, _offline, render

    binary = _browser()
    dom, shot, requests, problems, values = render(binary, page, {
        "rows": "document.querySelectorAll('#ranking-table tbody tr').length"})
    assert all(_offline(url, page) for url in requests), requests
    assert not problems, problems
    entries = pd.read_parquet(folder / "board.parquet").query("source == 'run'")["entry"].nunique()
    assert values["rows"] == 3 * entries  # a row per run and entry (its backbone and each ensemble)


# -- predictions from another framework -------------------------------------------------------------------
def test_an_external_bundle_is_scored_by_verify_and_refused_by_a_board(runs, tmp_path):
    stored = pd.read_parquet(runs["dirs"][0] / "predictions.parquet")
    plain = tmp_path / "theirs.csv"
    stored[stored["split"] == "test"].drop(columns="split").to_csv(plain, index=False)  # plain pandas
    bundle = tmp_path / "theirs.zip"
    made = CliRunner().invoke(main, ["bundle", "--predictions", str(plain), "--benchmark", "padchest-specific",
                                     "--describe", "written by pandas", "--out", str(bundle)])
    assert made.exit_code == 0, made.output
    both = CliRunner().invoke(main, ["bundle", str(runs["dirs"][0]), "--predictions", str(plain), "--out",
                                     str(tmp_path / "x.zip")])
    assert both.exit_code == 2 and "one of them" in both.output
    verdict = verify_bundle(bundle, keeper(runs, images=None))
    assert verdict.accepted, verdict.failures
    ours = pd.read_parquet(runs["dirs"][0] / "leaderboard.parquet").set_index(["entry", "label", "metric"])
    theirs = verdict.rows.to_pandas().set_index(["entry", "label", "metric"])
    common = ours.index.intersection(theirs.index)
    assert len(common) == len(theirs)
    assert np.allclose(theirs.loc[common, "value"], ours.loc[common, "value"], rtol=0, atol=1e-12, equal_nan=True)
    assert set(theirs["run_id"]) == {"external-" + verdict.bundle_sha256[:12]}
    # Filed with the rows mlbench scored; a build without the label file takes those rows, and drops an edited file.
    board = init_board(tmp_path / "board", "padchest-specific", csv=runs["csv"], synthetic=True)
    filed = add_submission(board.root, bundle, runs["csv"]).submission
    on_board = pd.read_parquet(board.root / "board.parquet")
    assert set(on_board["run_id"]) == set(theirs["run_id"])
    first = (board.root / "board.parquet").read_bytes()
    build_board(board.root)
    assert (board.root / "board.parquet").read_bytes() == first
    rows = pd.read_parquet(filed / "rows.parquet")
    rows.loc[rows["metric"] == "auc", "value"] = 1.0
    rows.to_parquet(filed / "rows.parquet")
    assert "rows.parquet" in build_board(board.root).dropped[filed.name]
