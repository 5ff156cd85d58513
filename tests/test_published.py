"""The published baseline (Liz et al. 2023, Tables 4-11): transcription checks and the shipped files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from mlbench.results import leaderboard
from mlbench_padchest import published
from mlbench_padchest.general import GENERAL_LABELS, TABLE10_SAMPLES
from mlbench_padchest.labels import PA_COUNTS, SPECIFIC_LABELS

REPO = Path(__file__).resolve().parents[1]
BOARDS = REPO / "benchmarks" / "padchest" / "mlbench_padchest" / "leaderboards"  # shipped as package data




@pytest.fixture(scope="module")
def specific() -> pl.DataFrame:
    return pl.read_parquet(BOARDS / "padchest-specific.parquet")


@pytest.fixture(scope="module")
def general() -> pl.DataFrame:
    return pl.read_parquet(BOARDS / "padchest-general.parquet")


@pytest.fixture()
def tsv_copy(tmp_path: Path) -> Path:
    """A scratch copy of the TSVs to tamper with."""
    target = tmp_path / "published"
    shutil.copytree(published.PUBLISHED_DIR, target)
    return target


def _edit_cell(directory: Path, table: int, row_label: str, column: str, new: str) -> str:
    path = published.table_path(table, directory)
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    col = header.index(column)
    for i, line in enumerate(lines):
        cells = line.split("\t")
        if cells[1] == row_label:
            old, cells[col] = cells[col], new
            lines[i] = "\t".join(cells)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return old
    raise AssertionError(f"no row {row_label!r} in {path}")


# --- the checks on the committed TSVs -------------------------------------------------------

def test_every_global_figure_is_the_mean_of_its_column():
    _, _, checks = published.load_and_check()
    assert len(checks) == 4 * len(published.ENTRIES) * 2  # 4 settings x 8 entries x (AUC, F1)
    plain = [c for c in checks if not c.known_exception]
    assert max(c.gap for c in plain) <= Decimal("0.0005")
    # The pinned exceptions: six stuck F1 columns of Table 4 and EfficientNet's F1 in Table 6.
    exceptions = sorted((c.table, c.entry, c.metric) for c in checks if c.known_exception)
    assert exceptions == sorted((x.table, x.entry, x.metric) for x in published.KNOWN_EXCEPTIONS)
    assert len(exceptions) == 7
    for c in checks:
        if c.known_exception:
            assert Decimal("0.0005") < c.gap <= Decimal("0.001")


def test_an_edited_cell_fails_the_mean_check(tsv_copy: Path):
    old = _edit_cell(tsv_copy, 8, "cardiomegaly", "densenet201.auc", "0.997")
    assert old == "0.927"
    with pytest.raises(published.TranscriptionError, match=r"Table 8 vs Table 9, densenet201 auc"):
        published.load_and_check(tsv_copy)


def test_an_edited_known_exception_fails(tsv_copy: Path):
    # 0.374 -> 0.375 keeps the gap inside the rounding bound, but the pinned sum catches it.
    _edit_cell(tsv_copy, 4, "normal", "ctp.f1", "0.375")
    with pytest.raises(published.TranscriptionError, match=r"Table 4 vs Table 5, ctp f1: known exception"):
        published.load_and_check(tsv_copy)


def test_global_row_must_match_the_global_table(tsv_copy: Path):
    _edit_cell(tsv_copy, 10, "__global__", "ctp.auc", "0.818")
    with pytest.raises(published.TranscriptionError, match=r"Table 10 Global row, ctp auc = 0.818 but Table 11 has 0.819"):
        published.load_and_check(tsv_copy)


def test_misspelt_label_is_rejected(tsv_copy: Path):
    _edit_cell(tsv_copy, 6, "COPD signs", "label", "copd signs")
    with pytest.raises(published.TranscriptionError, match=r"liz2023-table06.tsv:3: label 'copd signs'"):
        published.load_and_check(tsv_copy)


def test_value_outside_unit_interval_is_rejected(tsv_copy: Path):
    _edit_cell(tsv_copy, 8, "nodule", "ctp.f1", "4.93")
    with pytest.raises(published.TranscriptionError, match=r"column 'ctp.f1': 4.93 is outside \[0, 1\]"):
        published.load_and_check(tsv_copy)


def test_sample_counts_agree_across_the_specific_tables(tsv_copy: Path):
    _edit_cell(tsv_copy, 6, "pacemaker", "n_samples", "337")
    with pytest.raises(published.TranscriptionError, match=r"Table 6, pacemaker: # Samples 337 but Table 4 has 336"):
        published.load_and_check(tsv_copy)


def test_stuck_models_hamming_is_the_mean_prevalence():
    """Table 5: models that predict all negative score the labels' mean prevalence, 0.046."""
    per_label, global_tables, _ = published.load_and_check()
    table4, table5 = per_label[4], global_tables[5]
    stuck = [e for e in published.ENTRIES if all(r.values[(e, "auc")] == Decimal("0.500") for r in table4.rows)]
    assert stuck == ["inception_v3", "inception_resnet_v2", "legacy_xception", "ptc-mode", "ptc-lw"]
    # PA images carrying at least one of the 35 labels in the public CSV (PAPER-FACTS).
    pa_images_with_a_label = 85455
    mean_prevalence = sum(PA_COUNTS.values()) / len(PA_COUNTS) / pa_images_with_a_label
    assert round(mean_prevalence, 3) == 0.046
    for entry in stuck:
        assert table5.values[(entry, "hamming")] == Decimal("0.046")


# --- the committed parquet files ------------------------------------------------------------

def test_committed_parquet_is_what_the_tsvs_build():
    built = published.build_tables()
    for benchmark, table in built.items():
        committed = leaderboard.read(published.output_path(benchmark))
        assert committed.equals(table), f"{benchmark}.parquet is stale: run python -m mlbench_padchest.published"



def test_check_mode_passes_from_both_commands():
    # The documented command (leaderboards/transcribe.py, a thin wrapper) and the module's own.
    for command in ([sys.executable, str(REPO / "leaderboards" / "transcribe.py"), "--check"],
                    [sys.executable, "-m", "mlbench_padchest.published", "--check"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "padchest-general.parquet: 888 rows, matches the TSVs" in done.stdout


def test_check_mode_fails_on_a_stale_or_missing_board(tmp_path: Path, monkeypatch, capsys):
    built = published.build_tables()
    table = built["padchest-specific"]
    leaderboard.write(tmp_path / "padchest-specific.parquet", table.slice(0, table.num_rows - 1))
    monkeypatch.setattr(published, "BOARDS", tmp_path)
    assert published.main(["--check"]) == 1
    assert "padchest-specific.parquet: differs from what the TSVs build" in capsys.readouterr().err
    leaderboard.write(tmp_path / "padchest-specific.parquet", table)
    assert published.main(["--check"]) == 1  # padchest-general.parquet is not there
    assert "run python -m mlbench_padchest.published" in capsys.readouterr().err
    assert published.main([]) == 0  # a build writes both boards where --check then finds them
    assert published.main(["--check"]) == 0
    assert leaderboard.read(tmp_path / "padchest-general.parquet").equals(built["padchest-general"])

def test_transcription_is_deterministic(tmp_path: Path):
    first, second = published.build_tables(), published.build_tables()
    for benchmark in published.BENCHMARKS:
        assert first[benchmark].equals(second[benchmark])
        leaderboard.write(tmp_path / "a.parquet", first[benchmark])
        leaderboard.write(tmp_path / "b.parquet", second[benchmark])
        assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


# Read off the paper by hand: (benchmark name, variant, entry, label, metric) -> value.
HAND_READ = [
    ("padchest-specific", "crop+aug", "densenet201", "cardiomegaly", "auc", 0.927),  # Table 8
    ("padchest-specific", "crop+aug", "ptc-mode", "pacemaker", "auc", 0.984),  # Table 8
    ("padchest-specific", "crop+aug", "ctp", "supra aortic elongation", "f1", 0.575),  # Table 8
    ("padchest-specific", "crop+aug", "ctp", "__global__", "auc", 0.840),  # Table 9
    ("padchest-specific", "crop+aug", "legacy_xception", "__global__", "hamming", 0.074),  # Table 9
    ("padchest-specific", "none", "densenet201", "normal", "f1", 0.470),  # Table 4
    ("padchest-specific", "none", "efficientnet_b0", "__global__", "hamming", 0.107),  # Table 5
    ("padchest-specific", "crop", "inception_v3", "pleural effusion", "f1", 0.046),  # Table 6
    ("padchest-specific", "crop", "ptc-lw", "__global__", "f1", 0.650),  # Table 7
    ("padchest-general", "crop+aug", "inception_resnet_v2", "electrical device", "auc", 0.994),  # Table 10
    ("padchest-general", "crop+aug", "ctp", "sclerotic bone lesion", "auc", 0.506),  # Table 10
    ("padchest-general", "crop+aug", "ptc-mode", "__global__", "hamming", 0.052),  # Table 11
    ("padchest-general", "crop+aug", "ctp", "__global__", "auc", 0.819),  # Table 11
]


@pytest.mark.parametrize("bench_name, variant, entry, label, metric, expected", HAND_READ)
def test_hand_read_values(specific, general, bench_name, variant, entry, label, metric, expected):
    # (not "benchmark": pytest-benchmark, where installed, owns that fixture name)
    frame = specific if bench_name == "padchest-specific" else general
    hit = frame.filter((pl.col("variant") == variant) & (pl.col("entry") == entry)
                       & (pl.col("label") == label) & (pl.col("metric") == metric))
    assert hit.height == 1
    assert hit["value"][0] == expected


def test_sample_counts_are_the_papers(specific, general):
    def n_positive(frame, variant, label):
        return frame.filter((pl.col("variant") == variant) & (pl.col("label") == label))["n_positive"].unique().to_list()

    assert n_positive(specific, "crop+aug", "normal") == [34327]  # Table 8
    assert n_positive(specific, "none", "aortic elongation") == [1399]  # Table 4 prints "Aorticelongation"
    assert n_positive(general, "crop+aug", "pneumothorax") == [210]  # Table 10
    assert n_positive(specific, "crop", "__global__") == [None]


def test_row_counts_per_table(specific, general):
    both = pl.concat([specific, general])
    counts = dict(both.group_by("run_id").len().iter_rows())
    per_label_35, per_label_54, summary = 35 * 8 * 2, 54 * 8 * 2, 8 * 3
    assert counts == {
        "liz2023-table4": per_label_35, "liz2023-table5": summary,
        "liz2023-table6": per_label_35, "liz2023-table7": summary,
        "liz2023-table8": per_label_35, "liz2023-table9": summary,
        "liz2023-table10": per_label_54, "liz2023-table11": summary,
    }


def test_rows_follow_the_published_conventions(specific, general):
    both = pl.concat([specific, general])
    assert both["source"].unique().to_list() == ["published"]
    assert both["split_hash"].null_count() == both.height
    assert both["ci_low"].null_count() == both["ci_high"].null_count() == both.height
    assert set(both["metric"].unique()) == {"auc", "f1", "hamming"}
    assert set(both["variant"].unique()) == {"none", "crop", "crop+aug"}
    assert set(general["variant"].unique()) == {"crop+aug"}
    kinds = dict(both.select("entry", "entry_kind").unique().iter_rows())
    assert kinds == {**{b: "backbone" for b in published.BACKBONES}, **{e: "ensemble" for e in published.ENSEMBLES}}
    # Every (variant, entry, label, metric) appears once.
    keys = ["benchmark", "variant", "entry", "label", "metric"]
    assert both.select(keys).unique().height == both.height


def test_specific_labels_are_the_benchmarks(specific):
    for variant in ("none", "crop", "crop+aug"):
        labels = specific.filter((pl.col("variant") == variant) & (pl.col("entry") == "ctp")
                                 & (pl.col("metric") == "auc"))["label"].to_list()
        assert labels == [*SPECIFIC_LABELS, leaderboard.GLOBAL_LABEL]


def test_general_labels_are_the_benchmarks(general):
    labels = general.filter((pl.col("entry") == "ctp") & (pl.col("metric") == "auc"))["label"].to_list()
    assert labels == [*GENERAL_LABELS, leaderboard.GLOBAL_LABEL]


def test_table10_agrees_with_the_general_benchmarks_own_transcription():
    """mlbench_padchest.general pins Table 10's names and sample counts independently."""
    per_label, _, _ = published.load_and_check()
    ours = {r.paper_label: r.n_samples for r in per_label[10].rows}
    assert ours == TABLE10_SAMPLES
    assert list(ours) == list(TABLE10_SAMPLES)


def test_unknown_general_label_is_named(tsv_copy: Path):
    _edit_cell(tsv_copy, 10, "bullas", "label", "bulla")
    with pytest.raises(published.TranscriptionError, match=r"label 'bulla' for paper label 'Bullas'"):
        published.load_and_check(tsv_copy)
    # Spelled by the rule but not a benchmark label: the set check names it.
    path = published.table_path(10, tsv_copy)
    path.write_text(path.read_text(encoding="utf-8").replace("Bullas\tbulla\t", "Bulla\tbulla\t"), encoding="utf-8")
    with pytest.raises(published.TranscriptionError, match=r"missing \['bullas'\], not in the benchmark \['bulla'\]"):
        published.load_and_check(tsv_copy)


def test_files_read_unchanged_with_pyarrow_and_polars():
    for name in ("padchest-specific.parquet", "padchest-general.parquet"):
        path = BOARDS / name
        table = pq.read_table(path)
        assert table.schema.equals(leaderboard.SCHEMA, check_metadata=False)
        assert table.schema.metadata[b"mlbench.schema_version"] == str(leaderboard.SCHEMA_VERSION).encode()
        frame = pl.read_parquet(path)
        assert frame.columns == list(leaderboard.COLUMNS)
        assert frame.schema["value"] == pl.Float64 and frame.schema["n_positive"] == pl.Int64
        assert frame.height == table.num_rows
        assert frame["value"].to_list() == table.column("value").to_pylist()
