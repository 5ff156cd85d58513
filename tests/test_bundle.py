"""The submission bundle: a finished run round-trips through it, and a hostile archive is refused in one
line, naming the member, with nothing written and nothing unpickled."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import stat
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlbench.api import ArgumentError, bundle_run
from mlbench.cli import main
from mlbench.foundations.io import sha256_file
from mlbench.judging.bundle import (CHECKPOINTS, DEFAULT_MAX_BYTES, ENVIRONMENT, HISTORIES, INDEX, SKIPPED,
                                    WEIGHTS_SCHEMA, BundleError, open_bundle, tensor_bytes, write_bundle,
                                    write_external_bundle)
from mlbench.results import predictions
from mlbench.results.metrics import MetricWarning
from mlbench.results.rundir import LEADERBOARD, MANIFEST, PREDICTIONS, RunDir
from mlbench.training.runner import RunOptions, run
from test_submit import TINY

BACKBONE = TINY["backbones"][0]
WEIGHTS = f"weights/{BACKBONE}.parquet"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return run(RunOptions(out=tmp_path_factory.mktemp("run"), **TINY)).run_dir


@pytest.fixture(scope="module")
def good(tiny_run, tmp_path_factory) -> Path:
    """The run's bundle with its checkpoints: what every hostile archive below is made from."""
    return write_bundle(tiny_run, tmp_path_factory.mktemp("bundle") / "run.zip", with_checkpoints=True)


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}


def listing(members: dict[str, bytes]) -> dict[str, dict]:
    return {n: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for n, d in members.items() if n != INDEX}


def index_of(members: dict[str, bytes], **changes) -> bytes:
    index = json.loads(members[INDEX])
    index["members"] = listing(members)
    index.update(changes)
    return json.dumps(index).encode()


def entry(name: str, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def build(path: Path, members: dict[str, bytes], *, index: bytes | None = None,
          extra: list[tuple[zipfile.ZipInfo, bytes]] = ()) -> Path:
    """An archive of ``members`` with a fresh index listing them (unless ``index`` is given), plus ``extra``
    entries the index does not know of."""
    members = dict(members)
    members[INDEX] = index if index is not None else index_of(members)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name"
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(entry(name), data)
            for info, data in extra:
                archive.writestr(info, data)
    return path


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def patch_central_directory(path: Path, name: str, offset: int, fmt: str, value: int) -> None:
    """Overwrite one field of ``name``'s central-directory record (what zipfile believes) in place."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + name_length]) == name.encode():
            struct.pack_into(fmt, data, at + offset, value)
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 46)
    raise AssertionError(f"{name} not in the central directory")


class WritesAFileWhenUnpickled:
    """A pickle that, if anyone ever loaded it, would leave a file behind."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return Path.touch, (self.target,)


def refused(path: Path, fragment: str, **options) -> str:
    with pytest.raises(BundleError) as caught:
        open_bundle(path, **options)
    message = str(caught.value)
    assert "\n" not in message and fragment in message, message
    assert str(path) in message, message
    assert sorted(path.parent.iterdir()) == [path], "the reader wrote a file"
    return message


# -- a run round-trips ---------------------------------------------------------------------------
def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(predictions.KEY)).reset_index(drop=True)


def test_a_run_bundle_holds_the_run_as_it_was(tiny_run, good):
    rundir = RunDir(tiny_run)
    bundle = open_bundle(good)
    assert bundle.kind == "run" and bundle.sha256 == sha256_file(good)
    assert bundle.manifest == rundir.manifest()
    stored = predictions.read(rundir.predictions_file)
    assert set(stored["split"]) == {"val", "test"}
    entries = set(rundir.recipe().backbones) | set(rundir.recipe().ensembles)
    assert set(zip(stored["entry"], stored["split"])) == {(e, s) for e in entries for s in ("val", "test")}
    pd.testing.assert_frame_equal(sorted_frame(bundle.predictions()), sorted_frame(stored))
    assert bundle.leaderboard().equals(rundir.leaderboard())
    assert bundle.histories == {b: json.loads(rundir.history_file(b).read_text()) for b in rundir.recipe().backbones}
    assert bundle.skipped == {stage: rundir.skips(stage) for stage in ("data", "preprocess")}
    assert bundle.skipped["data"] and bundle.skipped["preprocess"]  # the demo corpus has both kinds
    assert bundle.checkpoints == {b: {"sha256": sha256_file(rundir.best_checkpoint(b)),
                                      "bytes": rundir.best_checkpoint(b).stat().st_size}
                                  for b in rundir.recipe().backbones}
    env = bundle.environment
    recorded = rundir.manifest()["versions"]
    assert env["python"] == recorded["python"] and env["torch"] == recorded["torch"] and env["gpu"] is None
    assert {f"{p['kind']}:{p['name']}" for p in env["plugins"]} == set(recorded["plugins"])
    for plugin in env["plugins"]:
        assert len(plugin["files_sha256"]) == 64 and plugin["files_hashed"] > 0 and plugin["distribution"]
    with zipfile.ZipFile(good) as archive:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist() if not i.is_dir())
        assert {i.filename for i in archive.infolist() if not i.is_dir()} == set(bundle.index["members"]) | {INDEX}


def test_the_bundled_weights_give_the_runs_test_probabilities(tiny_run, good):
    import torch

    from mlbench.training.checkpoint import load
    from mlbench.training.loop import build_backbone, predict
    from mlbench.training.runner import load_trained, weightless

    trained = load_trained(tiny_run)
    bundle = open_bundle(good)
    stored = predictions.read(RunDir(tiny_run).predictions_file)
    test_ids = stored.loc[stored["split"] == "test", "image_id"].drop_duplicates().tolist()[:4]
    images = torch.from_numpy(trained.cache().load(test_ids))
    for name in trained.recipe.backbones:
        state = bundle.weights(name)
        best = load(RunDir(tiny_run).best_checkpoint(name))["model"]
        assert list(state) == list(best)
        assert all(state[k].dtype == best[k].dtype and torch.equal(state[k], best[k]) for k in best)
        model = build_backbone(trained.registry, name, len(trained.labels), weightless(trained.recipe))
        model.load_state_dict(state)
        got = predict(model, images, torch.device("cpu"))
        want = predictions.wide(stored[stored["split"] == "test"], name, test_ids, list(trained.labels))
        assert got.shape == want.shape == (4, len(trained.labels))
        assert np.abs(got - want).max() <= 1e-6


def test_a_bundle_without_checkpoints_has_their_hashes_but_no_weights(tiny_run, tmp_path):
    bundle = bundle_run(tiny_run, tmp_path / "light.zip")
    assert set(bundle.checkpoints) == set(TINY["backbones"]) and not bundle.has_weights(BACKBONE)
    assert not any(name.startswith("weights/") for name in bundle.index["members"])
    with pytest.raises(BundleError, match="holds no weights of backbone"):
        bundle.weights(BACKBONE)


def test_tensor_bytes_are_little_endian_raw_values():
    import torch

    assert tensor_bytes(torch.tensor([1, 256], dtype=torch.int16)) == b"\x01\x00\x00\x01"
    assert tensor_bytes(torch.tensor(1.0, dtype=torch.bfloat16)) == b"\x80\x3f"
    assert tensor_bytes(torch.zeros(0, 3)) == b""


def test_an_external_bundle_holds_predictions_and_no_checkpoints(tiny_run, tmp_path):
    frame = predictions.read(RunDir(tiny_run).predictions_file)
    path = write_external_bundle(frame, benchmark="padchest-specific", benchmark_version="1.0",
                                 describe="scores of an outside model", out=tmp_path / "external.zip")
    bundle = open_bundle(path)
    assert bundle.kind == "external" and bundle.leaderboard() is None and bundle.checkpoints == {}
    assert bundle.manifest["recipe"] == {"external": True, "description": "scores of an outside model"}
    assert bundle.manifest["benchmark"] == "padchest-specific" and LEADERBOARD not in bundle.index["members"]
    pd.testing.assert_frame_equal(sorted_frame(bundle.predictions()), sorted_frame(frame))
    with pytest.raises(BundleError, match="column 'split' is train"):
        write_external_bundle(frame.assign(split="train"), benchmark="padchest-specific", benchmark_version="1.0",
                              describe="x", out=tmp_path / "x.zip")
    with pytest.raises(BundleError, match="column 'score'"):
        write_external_bundle(frame.assign(score=1.0), benchmark="padchest-specific", benchmark_version="1.0",
                              describe="x", out=tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


# -- what the writer refuses ---------------------------------------------------------------------
def partial_copy(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("cache", "demo-data", ".mlbench*"))
    return dest


def test_an_unfinished_run_is_refused_naming_the_missing_file(tiny_run, tmp_path):
    copy = partial_copy(tiny_run, tmp_path / "run")
    (copy / "backbones" / TINY["backbones"][1] / "best.pt").unlink()
    with pytest.raises(BundleError, match=r"best\.pt: no such file; the run is not finished"):
        write_bundle(copy, tmp_path / "b.zip")
    (copy / LEADERBOARD).unlink()
    with pytest.raises(BundleError, match=r"leaderboard\.parquet: no such file"):
        write_bundle(copy, tmp_path / "b.zip")
    assert not (tmp_path / "b.zip").exists()


def test_a_run_made_with_other_plugin_versions_is_refused(tiny_run, tmp_path):
    copy = partial_copy(tiny_run, tmp_path / "run")
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["versions"]["plugins"][f"backbone:{BACKBONE}"] = "mlbench-imbalanced==0.0.1"
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"from 'mlbench-imbalanced==0.0.1', installed here is"):
        write_bundle(copy, tmp_path / "b.zip")
    assert not (tmp_path / "b.zip").exists()


def test_an_out_that_cannot_take_the_bundle_is_refused_before_any_work(tiny_run, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    for out, fragment in ((tmp_path / "folder", "is a folder"), (tmp_path / "file" / "b.zip", "is a file"),
                          (Path(tiny_run) / PREDICTIONS, "one of the run directory's own files")):
        with pytest.raises(BundleError, match=fragment):
            write_bundle(tiny_run, out)
    with pytest.raises(ArgumentError, match="with_checkpoints"):
        bundle_run(tiny_run, tmp_path / "b.zip", with_checkpoints="yes")


# -- the command ---------------------------------------------------------------------------------
def test_the_command_writes_a_bundle_and_says_what_it_holds(tiny_run, tmp_path):
    result = CliRunner().invoke(main, ["bundle", str(tiny_run), "--out", str(tmp_path / "b.zip")])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'b.zip'}" in result.output and "8 members" in result.output, result.output
    result = CliRunner().invoke(main, ["bundle", str(tiny_run), "--out", str(tmp_path / "w.zip"),
                                       "--with-checkpoints"])
    assert "10 members, weights of 2 backbones" in result.output, result.output
    assert open_bundle(tmp_path / "w.zip").has_weights(BACKBONE)


def test_the_command_refuses_in_one_line(tiny_run, tmp_path):
    copy = partial_copy(tiny_run, tmp_path / "run")
    (copy / LEADERBOARD).unlink()
    for args in ([str(copy), "--out", str(tmp_path / "b.zip")],
                 [str(tiny_run), "--out", str(Path(tiny_run) / MANIFEST)]):
        result = CliRunner().invoke(main, ["bundle", *args])
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, lines
    assert not (tmp_path / "b.zip").exists()


# -- hostile archives ------------------------------------------------------------------------------
def test_a_truncated_archive_and_a_file_that_is_no_zip_are_refused(good, tmp_path):
    data = good.read_bytes()
    path = tmp_path / "b.zip"
    path.write_bytes(data[: len(data) // 2])
    refused(path, "not a zip archive, or a truncated or damaged one")
    path.write_bytes(b"PK\x03\x04 not really")
    refused(path, "not a zip archive")


@pytest.mark.parametrize("name, fragment", [
    ("../x.json", "climbs out with '..'"),
    ("weights/../../x.json", "climbs out with '..'"),
    ("/abs.json", "absolute path"),
    ("weights\\x.parquet", "backslash"),
    ("C:x.json", "drive letter"),
    ("notes.json", "not a member the format knows for kind 'run'"),
    ("run.py", "neither .json nor .parquet"),
    ("weights/other.parquet", "holds the weights of no backbone"),
])
def test_a_member_name_the_format_does_not_allow_is_refused(good, tmp_path, name, fragment):
    members = {**members_of(good), name: b"{}"}
    message = refused(build(tmp_path / "b.zip", members), fragment)
    assert repr(name) in message


def test_a_nul_byte_in_a_member_name_is_refused(good, tmp_path):
    path = build(tmp_path / "b.zip", {**members_of(good), "abcXdef.json": b"{}"})
    path.write_bytes(path.read_bytes().replace(b"abcXdef.json", b"abc\x00def.json"))
    refused(path, "holds a NUL byte")


@pytest.mark.parametrize("mode, fragment", [
    (stat.S_IFLNK | 0o777, "is a symbolic link"),
    (stat.S_IFIFO | 0o644, "not a regular file"),
    (stat.S_IFCHR | 0o644, "not a regular file"),
])
def test_a_link_or_special_entry_is_refused(good, tmp_path, mode, fragment):
    members = members_of(good)
    members[SKIPPED] = b"/etc/passwd"  # what a link entry holds: its target
    index = index_of(members)
    del members[SKIPPED]
    refused(build(tmp_path / "b.zip", members, index=index, extra=[(entry(SKIPPED, mode), b"/etc/passwd")]), fragment)


def test_a_folder_other_than_weights_is_refused(good, tmp_path):
    path = build(tmp_path / "b.zip", members_of(good), extra=[(entry("extra/", stat.S_IFDIR | 0o755), b"")])
    refused(path, "the only folder a bundle holds is weights/")


def test_a_duplicate_member_is_refused(good, tmp_path):
    members = members_of(good)
    path = build(tmp_path / "b.zip", members, extra=[(entry(MANIFEST), members[MANIFEST])])
    refused(path, "appears more than once")


def test_members_and_index_must_match_one_to_one(good, tmp_path):
    members = members_of(good)
    path = build(tmp_path / "b.zip", members, extra=[(entry("notes.json"), b"{}")])
    refused(path, "member 'notes.json' is not listed in bundle.json")
    index = index_of(members)
    del members[HISTORIES]
    refused(build(tmp_path / "b.zip", members, index=index), "lists member 'histories.json', which the archive")
    refused(build(tmp_path / "b.zip", members), "holds no histories.json")
    del members[INDEX]
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(entry(name), data)
    refused(tmp_path / "b.zip", "holds no bundle.json")


def test_an_index_of_another_format_or_a_newer_version_is_refused(good, tmp_path):
    members = members_of(good)
    refused(build(tmp_path / "b.zip", members, index=index_of(members, format_version=2)), "format_version 2 is newer")
    refused(build(tmp_path / "b.zip", members, index=index_of(members, format="zip")), "'format' is not")
    refused(build(tmp_path / "b.zip", members, index=index_of(members, kind="model")), "'kind' is not one of")
    refused(build(tmp_path / "b.zip", members, index=b'{"format": "mlbench-bundle", "format": 1}'), "repeats a key")


def test_a_member_declared_ten_gigabytes_is_refused_before_reading(good, tmp_path):
    members = members_of(good)
    index = json.loads(index_of(members))
    index["members"][PREDICTIONS]["bytes"] = 10 * 10**9
    message = refused(build(tmp_path / "b.zip", members, index=json.dumps(index).encode()), "uncompressed in all")
    assert f"limit of {DEFAULT_MAX_BYTES}" in message
    refused(build(tmp_path / "b.zip", members), "above the limit of 1000", max_bytes=1000)


def test_a_central_directory_that_lies_about_a_size_is_refused(good, tmp_path):
    members = members_of(good)
    # Both the index and the central directory say 10 bytes: the member holds more, which shows in its CRC.
    index = json.loads(index_of(members))
    index["members"][SKIPPED]["bytes"] = 10
    path = build(tmp_path / "b.zip", members, index=json.dumps(index).encode())
    patch_central_directory(path, SKIPPED, 24, "<I", 10)
    refused(path, "skipped.json: damaged")
    # Only the central directory lies: it disagrees with the index.
    path = build(tmp_path / "b.zip", members)
    patch_central_directory(path, SKIPPED, 24, "<I", 10)
    refused(path, f"member 'skipped.json': the archive declares 10 bytes, bundle.json {len(members[SKIPPED])}")


def test_an_encrypted_member_is_refused(good, tmp_path):
    path = build(tmp_path / "b.zip", members_of(good))
    patch_central_directory(path, HISTORIES, 8, "<H", 0x1)
    refused(path, "is encrypted")


def test_a_zip_bomb_is_refused_by_its_compression_ratio(good, tmp_path):
    members = {**members_of(good), HISTORIES: b'{"a": "' + b" " * (8 << 20) + b'"}'}
    refused(build(tmp_path / "b.zip", members), "beyond the 200:1")


def test_a_member_changed_after_indexing_is_refused_by_its_sha256(good, tmp_path):
    members = members_of(good)
    index = index_of(members)
    members[MANIFEST] = members[MANIFEST].replace(b"padchest-specific", b"padchest-specifiX")
    refused(build(tmp_path / "b.zip", members, index=index), "manifest.json: its sha256 is not the one")


@pytest.mark.parametrize("member, data, fragment", [
    (MANIFEST, b"[1, 2]", "holds a JSON list; expected an object"),
    (HISTORIES, b'{"a":' * 40 + b"1" + b"}" * 40, "nests deeper than 32 levels"),
    (HISTORIES, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nests deeper than 32 levels"),
    (ENVIRONMENT, b'{"plugins": [], "plugins": []}', "repeats a key"),
    (CHECKPOINTS, b"\xff\xfe{}", "not UTF-8"),
    (SKIPPED, b"{'a': 1}", "not valid JSON (line 1, column 2)"),
    (CHECKPOINTS, b'{"x": {"sha256": "no", "bytes": 1}}', "the entry of backbone 'x'"),
])
def test_json_that_is_not_the_formats_is_refused(good, tmp_path, member, data, fragment):
    refused(build(tmp_path / "b.zip", {**members_of(good), member: data}), fragment)


def test_a_pickle_renamed_parquet_is_refused_and_never_loaded(good, tmp_path):
    members = {**members_of(good), PREDICTIONS: pickle.dumps(WritesAFileWhenUnpickled(tmp_path / "pwned"))}
    refused(build(tmp_path / "b.zip", members), "predictions.parquet: not a readable parquet file")
    assert not (tmp_path / "pwned").exists()


def good_predictions(good: Path) -> pa.Table:
    return pq.read_table(io.BytesIO(members_of(good)[PREDICTIONS]))


def test_a_parquet_with_other_columns_or_types_is_refused(good, tmp_path):
    table = good_predictions(good)
    as_text = table.set_column(4, "probability", pa.compute.cast(table["probability"], pa.string()))
    refused(build(tmp_path / "b.zip", {**members_of(good), PREDICTIONS: parquet(as_text)}),
            "column 'probability' is not of type double")
    extra = table.append_column("note", pa.array(["x"] * table.num_rows))
    refused(build(tmp_path / "b.zip", {**members_of(good), PREDICTIONS: parquet(extra)}),
            "columns that are not image_id, split, entry, label, probability")
    board = pq.read_table(io.BytesIO(members_of(good)[LEADERBOARD]))
    board = board.set_column(board.schema.get_field_index("value"), "value",
                             pa.compute.cast(board["value"], pa.string()))
    refused(build(tmp_path / "b.zip", {**members_of(good), LEADERBOARD: parquet(board)}),
            "leaderboard.parquet: column 'value' is not of type double")


def test_pandas_metadata_and_extension_types_are_refused(good, tmp_path):
    frame = good_predictions(good).to_pandas()
    with_pandas = pa.Table.from_pandas(frame.set_index("image_id"))  # the index would come back from metadata
    refused(build(tmp_path / "b.zip", {**members_of(good), PREDICTIONS: parquet(with_pandas)}), "carries metadata")
    table = good_predictions(good)
    as_json = table.set_column(0, "image_id", pa.ExtensionArray.from_storage(pa.json_(), table["image_id"]
                                                                             .combine_chunks()))
    refused(build(tmp_path / "b.zip", {**members_of(good), PREDICTIONS: parquet(as_json)}),
            "column 'image_id' is not of type string")


def test_predictions_out_of_range_or_of_another_split_are_refused_when_read(good, tmp_path):
    table = good_predictions(good)
    probability = table["probability"].to_numpy().copy()
    probability[3] = 1.5
    high = table.set_column(4, "probability", pa.array(probability))
    bundle = open_bundle(build(tmp_path / "b.zip", {**members_of(good), PREDICTIONS: parquet(high)}))
    with pytest.raises(BundleError, match="predictions.parquet: column 'probability' is outside"):
        bundle.predictions()
    train = table.set_column(1, "split", pa.array(["train"] * table.num_rows))
    bundle = open_bundle(build(tmp_path / "b.zip", {**members_of(good), PREDICTIONS: parquet(train)}))
    with pytest.raises(BundleError, match="column 'split' is train"):
        bundle.predictions()


def weights_rows(rows: list[tuple]) -> bytes:
    names, dtypes, shapes, data = zip(*rows)
    return parquet(pa.table([pa.array(names), pa.array(dtypes), pa.array(shapes, pa.list_(pa.int64())),
                             pa.array(data, pa.binary())], schema=WEIGHTS_SCHEMA))


@pytest.mark.parametrize("rows, fragment", [
    ([("w", "complex64", [1], b"\0" * 8)], "row 1: dtype is not one of"),
    ([("w", "object", [1], b"\0" * 8)], "row 1: dtype is not one of"),
    ([("w", "float32", [2, 3], b"\0" * 20)], "row 1: holds 20 bytes; its shape and dtype need 24"),
    ([("w", "float32", [-1], b"")], "row 1: shape is not a list"),
    ([("w", "float32", [1], b"\0" * 4), ("w", "float32", [1], b"\0" * 4)], "row 2: repeats the name"),
])
def test_weights_of_an_unknown_dtype_a_wrong_length_or_a_repeated_name_are_refused(good, tmp_path, rows, fragment):
    bundle = open_bundle(build(tmp_path / "b.zip", {**members_of(good), WEIGHTS: weights_rows(rows)}))
    with pytest.raises(BundleError, match=fragment):
        bundle.weights(BACKBONE)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "b.zip"]


def test_an_external_bundle_may_not_carry_weights(tiny_run, tmp_path):
    frame = predictions.read(RunDir(tiny_run).predictions_file)
    path = write_external_bundle(frame, benchmark="padchest-specific", benchmark_version="1.0", describe="x",
                                 out=tmp_path / "external.zip")
    members = {**members_of(path), WEIGHTS: weights_rows([("w", "float32", [1], b"\0" * 4)])}
    refused(build(tmp_path / "external.zip", members), "not a member the format knows for kind 'external'")


def test_a_parquet_member_declaring_more_rows_than_the_limit_is_refused_before_decoding(good, tmp_path):
    many = pa.concat_tables([good_predictions(good)] * 40)  # repeated rows: small compressed, large decoded
    sink = io.BytesIO()
    pq.write_table(many, sink, compression="zstd")
    members = {n: d for n, d in members_of(good).items() if not n.startswith("weights/")}
    path = build(tmp_path / "b.zip", {**members, PREDICTIONS: sink.getvalue()})
    declared = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata.row_group(0).total_byte_size
    limit = 2 * sum(len(d) for d in members_of(path).values())  # the members themselves fit, twice over
    assert declared > limit  # what the check is about: rows that decode to more than the members' bytes
    refused(path, "bytes of rows, above the limit", max_bytes=limit)
