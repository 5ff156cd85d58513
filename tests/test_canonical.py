"""Canonical label files (issue 21): a benchmark's own board takes only runs on its published label file.

The hostile case: a demo run whose marker file is deleted and whose dataset_kind is edited to
"padchest" (in manifest.json and in leaderboard.parquet) passes every recomputation, since its
corpus really does read as PadChest's format; only the label file's content tells it from the
release BIMCV published. The real-file pins themselves are checked in the benchmarks' realcsv tests.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlbench
from cli_checks import assert_one_error, cli, finished_tiny_run
from mlbench.contracts.benchmark import CanonicalSource
from mlbench.contracts.registry import get_registry
from mlbench.data import DatasetError
from mlbench.data.canonical import canonical_source, content_sha256, describe
from mlbench.demo import MARKER_NAME
from mlbench.foundations.errors import UserError
from mlbench.judging.submit import SubmissionError, submit_run
from mlbench.results import leaderboard
from mlbench.results.rundir import LEADERBOARD, MANIFEST, RunDir

BENCH = "padchest-specific"
RELEASE = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"
CSV = "PADCHEST_demo_labels.csv"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return finished_tiny_run(tmp_path_factory.mktemp("canonical") / "run")


def unmarked_copy(run_dir: Path, dest: Path) -> Path:
    """The run and its corpus copied, the demo marker deleted and dataset_kind edited to padchest."""
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("cache", "backbones", "*.lock"))
    (dest / "demo-data" / MARKER_NAME).unlink()
    m = json.loads((dest / MANIFEST).read_text())
    m["dataset_kind"] = m["identity"]["dataset_kind"] = "padchest"
    (dest / MANIFEST).write_text(json.dumps(m))
    board = pq.read_table(dest / LEADERBOARD)
    column = board.schema.get_field_index("dataset_kind")
    board = board.set_column(column, board.schema.field(column), pa.array(["padchest"] * board.num_rows))
    pq.write_table(board, dest / LEADERBOARD)
    return dest


class PinnedRegistry:
    """The installed registry, but the benchmark pins ``pin`` (as if its release were the demo corpus)."""

    def __init__(self, pin: CanonicalSource) -> None:
        self.registry, self.pin = get_registry(), pin

    def create(self, kind, name, /, **kwargs):
        made = self.registry.create(kind, name, **kwargs)
        return dataclasses.replace(made, canonical_sources=(self.pin,)) if kind == "benchmark" else made

    def __getattr__(self, name):
        return getattr(self.registry, name)


# -- the board gate --------------------------------------------------------------------------------
def test_an_unmarked_demo_run_claiming_padchest_is_refused_its_own_board(tiny_run, tmp_path, monkeypatch):
    boards = tmp_path / "boards"
    monkeypatch.setenv(leaderboard.LEADERBOARDS_ENV, str(boards))
    run_dir = unmarked_copy(tiny_run, tmp_path / "run")
    with pytest.raises(SubmissionError) as caught:
        submit_run(run_dir)
    (problem,) = caught.value.problems
    assert "not one of the benchmark's canonical releases" in problem and RELEASE in problem
    assert "custom run" in problem and "--leaderboard PATH" in problem
    assert str(run_dir / "demo-data" / CSV) in problem and "\n" not in problem
    assert not boards.exists()
    # A claim in the manifest changes nothing: the file's content decides.
    m = json.loads((run_dir / MANIFEST).read_text())
    m["canonical"] = {"canonical": True, "release": RELEASE, "content_sha256": "0" * 64}
    (run_dir / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(SubmissionError, match="not one of the benchmark's canonical releases"):
        submit_run(run_dir, boards / f"{BENCH}.parquet")  # the own board named explicitly
    assert not boards.exists()

    result = cli("submit", run_dir, env={leaderboard.LEADERBOARDS_ENV: str(boards)})
    assert_one_error(result, RELEASE, "custom run")

    # The same run is a custom run: any other file takes it.
    custom = submit_run(run_dir, tmp_path / "custom.parquet")
    assert custom.validation.canonical is None and custom.rows_appended > 0


def test_a_run_on_a_pinned_file_enters_the_own_board(tiny_run, tmp_path, monkeypatch):
    boards = tmp_path / "boards"
    monkeypatch.setenv(leaderboard.LEADERBOARDS_ENV, str(boards))
    run_dir = unmarked_copy(tiny_run, tmp_path / "run")
    m = RunDir(run_dir).manifest()
    pin = CanonicalSource(release=CSV, content_sha256=content_sha256(run_dir / "demo-data" / CSV),
                          split_hash=m["split_hash"])
    result = submit_run(run_dir, registry=PinnedRegistry(pin))
    assert result.validation.canonical == pin
    assert any(f"canonical release {CSV}" in p for p in result.validation.passed)
    rows = leaderboard.read(boards / f"{BENCH}.parquet").to_pandas()
    assert set(rows.loc[rows["source"] == "run", "run_id"]) == {m["run_id"]}


def test_a_pinned_file_split_another_way_is_refused_its_own_board(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv(leaderboard.LEADERBOARDS_ENV, str(tmp_path / "boards"))
    run_dir = unmarked_copy(tiny_run, tmp_path / "run")
    pin = CanonicalSource(release=CSV, content_sha256=content_sha256(run_dir / "demo-data" / CSV),
                          split_hash="0" * 64)
    with pytest.raises(SubmissionError) as caught:
        submit_run(run_dir, registry=PinnedRegistry(pin))
    (problem,) = caught.value.problems
    assert f"canonical release {CSV}" in problem and "not the pinned " + "0" * 64 in problem
    assert "custom run" in problem
    assert not (tmp_path / "boards").exists()


def test_the_manifest_records_that_a_demo_corpus_is_not_canonical(tiny_run):
    m = RunDir(tiny_run).manifest()
    csv = tiny_run / "demo-data" / CSV
    assert m["canonical"] == {"canonical": False, "release": None, "content_sha256": content_sha256(csv)}


# -- content hashes --------------------------------------------------------------------------------
LABELS = b"ImageID,PatientID,Labels\na.png,1,['normal']\nb.png,2,['cardiomegaly']\n"


def test_a_csv_and_its_gzip_have_one_content_hash_whatever_their_names(tmp_path):
    plain = tmp_path / "labels.csv"
    plain.write_bytes(LABELS)
    packed = tmp_path / "labels.csv.gz"
    packed.write_bytes(gzip.compress(LABELS))
    disguised = tmp_path / "packed-but-named.csv"  # gzip is read from the magic bytes, not the suffix
    disguised.write_bytes(gzip.compress(LABELS, mtime=0))
    raw = tmp_path / "plain-but-named.csv.gz"
    raw.write_bytes(LABELS)
    import hashlib

    want = hashlib.sha256(LABELS).hexdigest()
    assert content_sha256(plain) == content_sha256(packed) == content_sha256(disguised) == content_sha256(raw) == want
    assert hashlib.sha256(packed.read_bytes()).hexdigest() != want


@pytest.mark.parametrize("damage", ["truncated", "flipped", "bad-header"])
def test_a_corrupt_gzip_is_one_line_naming_the_file(tmp_path, damage):
    packed = bytearray(gzip.compress(LABELS * 200))
    if damage == "truncated":
        packed = packed[: len(packed) // 2]
    elif damage == "flipped":
        for i in range(20, len(packed) - 8, 7):
            packed[i] ^= 0xFF
    else:
        packed[2] = 0x07  # not deflate
    path = tmp_path / "labels.csv.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DatasetError) as caught:
        content_sha256(path)
    message = str(caught.value)
    assert isinstance(caught.value, UserError) and "\n" not in message and str(path) in message
    assert "ImageID" not in message and "normal" not in message


def test_a_missing_label_file_is_one_line(tmp_path):
    with pytest.raises(DatasetError, match="no such label file"):
        content_sha256(tmp_path / "absent.csv")


def test_canonical_source_and_describe_answer_from_the_content(tmp_path):
    plain = tmp_path / "labels.csv"
    plain.write_bytes(LABELS)
    digest = content_sha256(plain)
    bench = get_registry().create("benchmark", BENCH)
    assert canonical_source(bench, plain) is None
    assert describe(bench, plain) == {"canonical": False, "release": None, "content_sha256": digest}
    pin = CanonicalSource(release="labels.csv", content_sha256=digest, split_hash="a" * 64)
    pinned = dataclasses.replace(bench, canonical_sources=(*bench.canonical_sources, pin))
    packed = tmp_path / "copy.csv.gz"
    packed.write_bytes(gzip.compress(LABELS))
    assert canonical_source(pinned, packed) == pin
    assert describe(pinned, packed) == {"canonical": True, "release": "labels.csv", "content_sha256": digest}
    unpinned = dataclasses.replace(bench, canonical_sources=())
    assert canonical_source(unpinned, tmp_path / "never-read.csv") is None  # nothing pinned: nothing to read


# -- the pins themselves -----------------------------------------------------------------------------
GOOD = "ab" * 32


@pytest.mark.parametrize("sources, complaint", [
    ((CanonicalSource("a.csv", GOOD.upper(), GOOD),), "content_sha256 must be a sha256"),
    ((CanonicalSource("a.csv", GOOD[:-1], GOOD),), "content_sha256 must be a sha256"),
    ((CanonicalSource("a.csv", GOOD, "not-a-hash"),), "split_hash must be a sha256"),
    ((CanonicalSource("a.csv", GOOD, GOOD), CanonicalSource("a.csv", "cd" * 32, GOOD)), "release a.csv more than once"),
    ((CanonicalSource("data/a.csv", GOOD, GOOD),), "must be a file name"),
    ((CanonicalSource("", GOOD, GOOD),), "must be a file name"),
    (({"release": "a.csv", "content_sha256": GOOD, "split_hash": GOOD},), "expected a CanonicalSource"),
    (CanonicalSource("a.csv", GOOD, GOOD), "must be a tuple of CanonicalSource"),
])
def test_a_benchmark_with_a_malformed_pin_is_rejected(sources, complaint):
    bench = get_registry().create("benchmark", BENCH)
    with pytest.raises(ValueError, match=complaint) as caught:
        dataclasses.replace(bench, canonical_sources=sources)
    assert f"benchmark '{BENCH}'" in str(caught.value)


def test_plugins_get_canonical_source_from_mlbench():
    assert mlbench.CanonicalSource is CanonicalSource
    assert "CanonicalSource" in mlbench.PLUGIN_API
