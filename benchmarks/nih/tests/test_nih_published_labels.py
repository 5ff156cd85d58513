"""NIH's published board per label: the TSVs against a second transcription of the printed tables,
the board against a rebuild, restated rows marked, and `compare` of a demo run per label."""

from __future__ import annotations

import json
import shutil
import warnings
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from mlbench import leaderboard
from mlbench.cli import main as cli
from mlbench.judging.compare import compare_run
from mlbench.contracts.registry import get_registry
from mlbench_nih import published
from mlbench_nih.labels import LABELS

GLOBAL = leaderboard.GLOBAL_LABEL

# The second transcription, typed from the printed tables (label order: the papers' and LABELS'):
# Atelectasis, Cardiomegaly, Effusion, Infiltration, Mass, Nodule, Pneumonia, Pneumothorax,
# Consolidation, Edema, Emphysema, Fibrosis, Pleural Thickening, Hernia | mean (None: not printed).
WANG_TABLE17 = {
    "wang2017": ("0.7003 0.8100 0.7585 0.6614 0.6933 0.6687 0.6580 0.7993 0.7032 0.8052 0.8330 0.7859 "
                 "0.6835 0.8717", None),
}
GUAN_TABLE1 = {  # entry: (method as printed, CNN as printed, the 14 cells, printed mean)
    "wang-restated-guan2018": ("Wang et al. [37]", "R-50", "0.700 0.810 0.759 0.661 0.693 0.669 0.658 0.799 "
                               "0.703 0.805 0.833 0.786 0.684 0.872", "0.745"),
    "guendel-restated-guan2018": ("Guendel et al. [12]", "D-121", "0.767 0.883 0.828 0.709 0.821 0.758 0.731 "
                                  "0.846 0.745 0.835 0.895 0.818 0.761 0.896", "0.807"),
    "yao-restated-guan2018": ("Yao et al. [45]", "ResNet+DenseNet", "0.733 0.856 0.806 0.673 0.718 0.777 0.684 "
                              "0.805 0.711 0.806 0.842 0.743 0.724 0.775", "0.761"),
    "li-resnet50-restated-guan2018": ("Li et al. [20]", "R-50", "0.727 0.836 0.789 0.672 0.776 0.696 0.649 "
                                      "0.808 0.720 0.806 0.888 0.771 0.737 0.693", "0.755"),
    "li-densenet121-restated-guan2018": ("Li et al. [20]", "D-121", "0.728 0.848 0.782 0.645 0.747 0.702 0.632 "
                                         "0.802 0.727 0.823 0.757 0.763 0.735 0.653", "0.739"),
    "shen-restated-guan2018": ("Shen et al. [30]", "–", "0.766 0.801 0.797 0.751 0.760 0.741 0.778 0.800 "
                               "0.787 0.820 0.773 0.765 0.759 0.748", "0.775"),
    "tang-restated-guan2018": ("Tang et al. [34]", "–", "0.756 0.887 0.819 0.689 0.814 0.755 0.729 0.850 "
                               "0.728 0.848 0.906 0.818 0.765 0.875", "0.803"),
    "guan2018-cral-att1-resnet50": ("CRAL (att1)", "R-50", "0.779 0.879 0.824 0.694 0.831 0.766 0.726 0.858 "
                                    "0.758 0.850 0.909 0.832 0.778 0.906", "0.814"),
    "guan2018-cral-att2-resnet50": ("CRAL (att2)", "R-50", "0.777 0.875 0.826 0.695 0.825 0.765 0.720 0.852 "
                                    "0.751 0.848 0.905 0.819 0.777 0.908", "0.810"),
    "guan2018-cral-att1-densenet121": ("CRAL (att1)", "D-121", "0.781 0.883 0.831 0.697 0.830 0.764 0.725 "
                                       "0.866 0.758 0.853 0.911 0.826 0.780 0.918", "0.816"),
    "guan2018-cral-att2-densenet121": ("CRAL (att2)", "D-121", "0.781 0.880 0.829 0.702 0.834 0.773 0.729 "
                                       "0.857 0.754 0.850 0.908 0.830 0.778 0.917", "0.816"),
}
CRAL = [e for e in GUAN_TABLE1 if e.startswith("guan2018-cral-")]
RESTATED_SHIPPED = {"guendel-restated-guan2018", "yao-restated-guan2018", "li-resnet50-restated-guan2018",
                    "li-densenet121-restated-guan2018", "shen-restated-guan2018", "tang-restated-guan2018"}
CITED_MEANS = {"wang2017": 0.745, "guendel2018": 0.807, "baltruschat2019": 0.806, "hermoza2020": 0.821,
               "kim2021": 0.822, "xiao2023": 0.830}
PER_LABEL_ENTRIES = ["wang2017", *RESTATED_SHIPPED, *CRAL]


def _cells(text: str) -> dict[str, str]:
    values = text.split()
    assert len(values) == len(LABELS)
    return dict(zip(LABELS, values))


@pytest.fixture(scope="module")
def board():
    return leaderboard.read(published.OUTPUT).to_pandas()


def _value(board, entry: str, label: str) -> float:
    rows = board[(board["entry"] == entry) & (board["label"] == label)]
    assert len(rows) == 1, (entry, label, len(rows))
    return float(rows["value"].iloc[0])


# -- the TSVs and the board against the printed tables ---------------------------------------------
def test_every_tsv_value_is_the_printed_one():
    (wang,) = published.read_table(published.TABLES[0])
    assert {lab: str(v) for lab, v in wang.values.items()} == _cells(WANG_TABLE17["wang2017"][0])
    assert wang.entry == "wang2017" and wang.mean is None and not wang.restated
    guan = published.read_table(published.TABLES[1])
    assert [r.entry for r in guan] == list(GUAN_TABLE1)  # the printed row order
    for row in guan:
        method, cnn, cells, mean = GUAN_TABLE1[row.entry]
        assert (row.method, row.cnn) == (method, cnn), row.entry
        assert {lab: str(v) for lab, v in row.values.items()} == _cells(cells), row.entry
        assert str(row.mean) == mean, row.entry


def test_every_board_value_is_the_printed_one(board):
    assert set(board["metric"]) == {"auc"} and set(board["source"]) == {"published"}
    assert set(board["benchmark"]) == {"nih-cxr14"} and set(board["variant"]) == {"aug"}
    for label, cell in _cells(WANG_TABLE17["wang2017"][0]).items():
        assert _value(board, "wang2017", label) == float(cell)
    for entry, (_, _, cells, mean) in GUAN_TABLE1.items():
        if entry == "wang-restated-guan2018":
            continue  # checked against Table 17, not shipped twice
        for label, cell in _cells(cells).items():
            assert _value(board, entry, label) == float(cell), (entry, label)
        assert _value(board, entry, GLOBAL) == float(mean), entry
    for entry, mean in CITED_MEANS.items():  # the six cited means stay
        assert _value(board, entry, GLOBAL) == mean
        assert board.loc[(board["entry"] == entry) & (board["label"] == GLOBAL), "run_id"].item() == entry
    assert set(board["entry"]) == set(CITED_MEANS) | set(PER_LABEL_ENTRIES)
    assert len(board) == len(CITED_MEANS) + len(PER_LABEL_ENTRIES) * len(LABELS) + len(PER_LABEL_ENTRIES) - 1


def test_every_label_is_the_benchmarks_label(board):
    bench = get_registry().create("benchmark", "nih-cxr14")
    assert tuple(bench.labels) == LABELS
    for source in published.TABLES:
        header = (published.SOURCE_DIR / source.file_name).read_text(encoding="utf-8").splitlines()[0].split("\t")
        assert header[6:20] == list(LABELS)
    for entry in PER_LABEL_ENTRIES:
        assert set(board.loc[board["entry"] == entry, "label"]) == set(LABELS) | {GLOBAL}, entry
    assert set(board["label"]) == set(LABELS) | {GLOBAL}  # e.g. Pleural_Thickening, never "Pleural Thickening"


def test_printed_means_are_the_means_of_their_cells_to_three_decimals(board):
    # Guan & Huang print a mean on every row; all 11 agree with their cells to 3 decimals.
    gaps = {}
    for entry, (_, _, cells, mean) in GUAN_TABLE1.items():
        cell_mean = sum(map(Decimal, _cells(cells).values())) / len(LABELS)
        gaps[entry] = abs(cell_mean - Decimal(mean))
        assert gaps[entry] <= Decimal("0.0005"), entry
    worst = max(gaps, key=gaps.get)
    assert worst == "guan2018-cral-att1-resnet50" and gaps[worst] == abs(Decimal("11.390") / 14 - Decimal("0.814"))
    # Wang's Table 17 prints no mean: the cited 0.745 is its cells' mean (0.745143) to 3 decimals.
    wang_mean = sum(map(Decimal, _cells(WANG_TABLE17["wang2017"][0]).values())) / len(LABELS)
    assert round(wang_mean, 3) == Decimal("0.745") and _value(board, "wang2017", GLOBAL) == 0.745
    # The board's mean row is the printed mean, and the build measured the same gaps.
    result = published.load()
    assert {e: g for e, g in result.mean_gaps.items() if e != "wang2017"} == {
        e: g for e, g in gaps.items() if e != "wang-restated-guan2018"}
    assert result.mean_gaps["wang2017"] == abs(wang_mean - Decimal("0.745"))


def test_restated_rows_are_marked_with_both_citations(board):
    run_ids = board.groupby("entry")["run_id"].agg(set)
    for entry in RESTATED_SHIPPED:
        assert run_ids[entry] == {"guan2018-table1-restated"}, entry
    for entry in CRAL:
        assert run_ids[entry] == {"guan2018-table1"}, entry
    assert run_ids["wang2017"] == {"wang2017", "wang2017-table17"}  # cited mean + Table 17
    restated = board["run_id"].str.endswith("-restated")
    assert set(board.loc[restated, "entry"]) == RESTATED_SHIPPED
    assert board.loc[restated, "entry"].str.endswith("-restated-guan2018").all()
    assert not board.loc[~restated, "entry"].str.contains("restated").any()
    # Guan's restatement of Wang is checked against Table 17, not shipped beside it.
    (checked,) = published.load().checked_only
    assert checked.entry == "wang-restated-guan2018" and checked.same_work == "wang2017"
    # Guendel's restated mean is the cited one.
    assert _value(board, "guendel-restated-guan2018", GLOBAL) == _value(board, "guendel2018", GLOBAL)
    labelled = board[board["label"] != GLOBAL].groupby("entry")["backbones"].agg(lambda b: set(b.fillna("-")))
    assert labelled["guan2018-cral-att1-densenet121"] == {"densenet121"} and labelled["wang2017"] == {"resnet50"}
    assert labelled["yao-restated-guan2018"] == {"-"}  # "ResNet+DenseNet": no one timm model


# -- the build ---------------------------------------------------------------------------------------
def test_shipped_parquet_equals_a_rebuild_byte_for_byte(tmp_path, capsys):
    table = published.build_table()
    assert leaderboard.read(published.OUTPUT).equals(table)
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    leaderboard.write(first, table)
    leaderboard.write(second, published.build_table())
    assert first.read_bytes() == second.read_bytes() == published.OUTPUT.read_bytes()
    assert published.main(["--check"]) == 0
    assert "170 rows, up to date" in capsys.readouterr().out


def test_check_fails_when_the_shipped_file_differs(tmp_path, monkeypatch, capsys):
    table = published.build_table()
    stale = table.filter(pc.invert(pc.equal(table.column("entry"), "guan2018-cral-att2-densenet121")))
    leaderboard.write(tmp_path / "nih-cxr14.parquet", stale)
    monkeypatch.setattr(published, "OUTPUT", tmp_path / "nih-cxr14.parquet")
    assert published.main(["--check"]) == 1
    assert "differs from what the TSVs build" in capsys.readouterr().err


@pytest.fixture()
def sources(tmp_path) -> Path:
    target = tmp_path / "nih-cxr14"
    shutil.copytree(published.SOURCE_DIR, target, ignore=shutil.ignore_patterns("*.py", "*.md", "__pycache__"))
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_a_typo_in_a_cell_breaks_the_mean_check(sources):
    # CRAL att1 D-121: Hernia 0.918 typed as 0.981 moves the cells' mean by 0.0045.
    _edit(sources / "guan2018-table1.tsv", "0.780\t0.918\t0.816", "0.780\t0.981\t0.816")
    with pytest.raises(published.BuildError, match=r"guan2018-table1.tsv:11 column 'mean': 0.816 but the mean"):
        published.load(sources)


def test_a_restatement_that_disagrees_with_the_primary_table_is_refused(sources):
    # 0.7585 rounds half up to 0.759; 0.758 would be half-even rounding or a typo.
    _edit(sources / "guan2018-table1.tsv", "0.810\t0.759\t0.661", "0.810\t0.758\t0.661")
    with pytest.raises(published.BuildError, match=r":2 column 'Effusion': restates 0.7585 .* as 0.758, "
                                                   r"expected 0.759"):
        published.load(sources)


def test_a_paper_spelling_in_the_header_is_refused(sources):
    _edit(sources / "wang2017-table17.tsv", "\tPleural_Thickening\t", "\tPleural Thickening\t")
    with pytest.raises(published.BuildError, match=r"wang2017-table17.tsv: header"):
        published.load(sources)


def test_a_restated_row_must_say_so_in_its_name(sources):
    _edit(sources / "guan2018-table1.tsv", "yao-restated-guan2018\t", "yao2018\t")
    with pytest.raises(published.BuildError, match=r":4 column 'entry': 'yao2018' does not name the restated work"):
        published.load(sources)
    _edit(sources / "guan2018-table1.tsv", "yao2018\tYao et al. [45]\tResNet+DenseNet\t\tyes",
          "yao-restated-guan2018\tYao et al. [45]\tResNet+DenseNet\t\tno")
    with pytest.raises(published.BuildError, match=r"'yao-restated-guan2018' does not name the paper"):
        published.load(sources)


def test_a_restated_mean_that_disagrees_with_the_cited_one_is_refused(sources):
    _edit(sources / "published-mean-auc.tsv", "CIARP 2018\t0.807", "CIARP 2018\t0.806")
    with pytest.raises(published.BuildError, match=r":3 column 'mean': 0.807 but published-mean-auc.tsv has 0.806"):
        published.load(sources)


# -- compare of a tiny demo run, per label -----------------------------------------------------------
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    import torch

    from mlbench.results.metrics import MetricWarning
    from mlbench.training.runner import RunOptions, run

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        result = run(RunOptions(benchmark="nih-cxr14", demo=True, demo_options={"n_patients": 40, "image_size": 64},
                                image_size=32, max_epochs=1, backbones=("resnet10t",), ensembles=(), n_boot=10,
                                progress=False, workers=1, out=tmp_path_factory.mktemp("nihpub") / "run"))
    return result.run_dir


def _board_of(entry: str, path: Path) -> Path:
    table = leaderboard.read(published.OUTPUT)
    leaderboard.write(path, table.filter(pc.equal(table.column("entry"), entry)))
    return path


NOT_BEATEN = {"not comparable", "undefined in the run", "no CI"}


def test_compare_gives_a_per_label_row_against_each_entry(demo_run, board, tmp_path):
    for entry in PER_LABEL_ENTRIES:
        result = compare_run(demo_run, leaderboard_file=_board_of(entry, tmp_path / f"{entry}.parquet"))
        assert not result.comparable and result.notes[0].startswith("NOT COMPARABLE") and "SYNTHETIC" in result.notes[0]
        rows = result.rows.set_index("label")
        assert set(rows.index) == set(LABELS) | {GLOBAL} and set(rows["reference"]) == {entry}
        for label in (*LABELS, GLOBAL):
            assert rows.loc[label, "published"] == _value(board, entry, label), (entry, label)
        assert set(rows["verdict"]) <= NOT_BEATEN and "not comparable" in set(rows["verdict"])
        assert result.beats().empty


def test_compare_on_the_command_line_prints_the_labels_and_says_synthetic(demo_run, board, tmp_path):
    entry = "guan2018-cral-att1-densenet121"
    out = tmp_path / "compare.json"
    result = CliRunner().invoke(cli, ["compare", str(demo_run), "--against", "published",
                                      "--file", str(_board_of(entry, tmp_path / "b.parquet")), "--json", str(out)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "NOT COMPARABLE" in result.output and "Pleural_Thickening" in result.output
    assert "none counted: not comparable" in result.output
    written = json.loads(out.read_text())
    assert written["comparable"] is False and written["dataset_kind"] == "synthetic"
    got = {r["label"]: r["published"] for r in written["rows"]}
    assert got == {label: _value(board, entry, label) for label in (*LABELS, GLOBAL)}


def test_compare_with_the_shipped_board_covers_every_label(demo_run):
    result = compare_run(demo_run)  # the benchmark's own published board
    assert not result.comparable and result.notes[0].startswith("NOT COMPARABLE")
    assert set(result.rows["label"]) == set(LABELS) | {GLOBAL}
    assert result.beats().empty


def test_a_label_is_compared_with_the_best_entry_that_reports_it(demo_run, board):
    """The best NIH mean (xiao2023) has no per-label rows: labels go to the best entry that has them."""
    result = compare_run(demo_run)
    rows = result.rows.set_index("label")
    best_mean = rows.loc[GLOBAL, "reference"]
    assert best_mean == "xiao2023" and rows.loc[GLOBAL, "published"] == _value(board, "xiao2023", GLOBAL)
    with_labels = {r for r in rows.loc[list(LABELS), "reference"]}
    assert with_labels == {"guan2018-cral-att1-densenet121"}  # 0.816, tied with att2 D-121: board order
    for label in LABELS:
        assert rows.loc[label, "published"] == _value(board, "guan2018-cral-att1-densenet121", label)
    assert any("guan2018-cral-att1-densenet121" in note for note in result.notes)
