"""Each run entry's bootstrap replicates kept in the run directory (RunDir.replicates_file) and reused by a grid.

A comparison from kept replicates equals one that computes them (to 1e-12), and a kept file that is stale,
truncated, of the wrong shape, from another run or otherwise malformed is not used: the replicates are
computed instead.
"""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlbench.data.splits import split_table
from mlbench.foundations.io import write_parquet
from mlbench.grid.cells import GridCell, compare_cells
from mlbench.grid.remedies import Remedy
from mlbench.results import paired, predictions
from mlbench.results.metrics import MetricWarning
from mlbench.results.rescoring import decisions, load_stored_run, score_entries, stored_replicates, write_replicates
from mlbench.results.rundir import RunDir
from mlbench.results.stats import STORED_METRICS, entry_replicates, metric_intervals

N_BOOT = 40
ENTRIES = ("bb1", "bb2", "ens")
LABELS = ["l0", "l1", "l2", "l3"]


@dataclass(frozen=True)
class _Out:
    out: Path  # what compare_cells reads of a cell's options


def _grid(root: Path, n_remedies: int = 2, n_seeds: int = 2) -> list[GridCell]:
    rng = np.random.default_rng(7)
    n_train, n_test = 30, 60
    n = n_train + n_test
    y = (rng.random((n, len(LABELS))) < [0.4, 0.25, 0.1, 0.05]).astype(np.uint8)
    patients = np.char.add("p", rng.integers(0, int(n / 1.3), n).astype(str))
    patients[:n_train] = np.char.add("t", patients[:n_train])
    ids = [f"img{i:04d}.png" for i in range(n)]
    splits = np.where(np.arange(n) < n_train, "train", "test")
    split = split_table(pd.DataFrame({"image_id": ids, "patient_id": patients}), y, splits, LABELS)
    cells = []
    for r in range(n_remedies):
        for s in range(n_seeds):
            run = RunDir(root / f"remedy{r}" / f"seed-{s}")
            write_parquet(run.split_file, split)
            tables = []
            for e, entry in enumerate(ENTRIES):
                scores = np.clip((0.3 + 0.1 * r + 0.05 * e) * y[n_train:] + rng.normal(0.3, 0.2, (n_test, 4)), 0, 1)
                tables.append(predictions.to_table(ids[n_train:], ["test"] * n_test, entry, LABELS,
                                                   np.round(scores, 1) if entry == "ens" else scores))
            predictions.write(run.predictions_file, tables)
            run.manifest_file.write_text(json.dumps({"backbones": ["bb1", "bb2"], "ensembles": ["ens"],
                                                     "recipe": {"threshold": 0.5}}))
            cells.append(GridCell(Remedy(f"remedy{r}"), s, _Out(run.path)))
    return cells


def _metrics_stage(run_dir: Path, n_boot: int = N_BOOT) -> None:
    """What a run's metrics stage keeps: score_entries' replicates, written beside its leaderboard."""
    stored = load_stored_run(run_dir)
    entries = [(e, kind, stored.scores[e], decisions(stored, e), None) for e, kind in stored.entries.items()]
    kept = {}
    score_entries(entries, stored.y, stored.patient_ids, stored.labels, train_counts=stored.train_counts,
                  n_boot=n_boot, seed=0, replicates=kept)
    assert set(kept) == set(ENTRIES)
    write_replicates(run_dir, kept, n_boot=n_boot, seed=0)


@pytest.fixture()
def computed(monkeypatch):
    """Counts the run entries whose replicates a comparison computes (rather than takes as kept)."""
    calls = []
    original = paired.ReplicateCache.metrics

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(paired.ReplicateCache, "metrics", counting)
    return calls


def _compare(cells, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return compare_cells(cells, "remedy0", n_boot=N_BOOT, **kwargs)


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    numbers = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c])]
    text = [c for c in a.columns if c not in numbers]
    assert a[text].equals(b[text])
    np.testing.assert_allclose(a[numbers].to_numpy(dtype=float), b[numbers].to_numpy(dtype=float),
                               rtol=0, atol=1e-12, equal_nan=True)


def test_a_grid_from_kept_replicates_equals_one_that_computes_them(tmp_path, computed):
    cells = _grid(tmp_path)
    recomputed = _compare(cells, use_stored=False)
    assert len(computed) == 4 * len(ENTRIES)  # every run entry once (the baseline's shared across remedies)
    for cell in cells:
        _metrics_stage(cell.run_dir)
    computed.clear()
    from_kept = _compare(cells)
    assert computed == []  # nothing computed: every run entry's replicates were the kept ones
    _assert_same(from_kept, recomputed)
    assert (from_kept["verdict"] != paired.NO_EVIDENCE).any()  # a table with verdicts, not only NaNs


def test_kept_replicates_match_what_the_metrics_stage_reports(tmp_path):
    cells = _grid(tmp_path, n_remedies=1, n_seeds=1)
    stored = load_stored_run(cells[0].run_dir)
    d = decisions(stored, "bb1")
    kept = entry_replicates(stored.y, stored.scores["bb1"], d, stored.patient_ids, n_boot=N_BOOT, seed=0)
    rows = metric_intervals(stored.y, stored.scores["bb1"], d, stored.patient_ids, LABELS,
                            train_counts=stored.train_counts, n_boot=N_BOOT, seed=0)
    auc = kept.values["auc"][1:, 0]  # row 0 is the whole split
    row = next(r for r in rows if r["label"] == "l0" and r["metric"] == "auc")
    assert np.percentile(auc[np.isfinite(auc)], [2.5, 97.5]) == pytest.approx([row["ci_low"], row["ci_high"]],
                                                                               abs=1e-12)
    assert kept.values["auc"][0, 0] == pytest.approx(row["value"], abs=1e-12)
    assert set(kept.values) == set(STORED_METRICS)


def _kept(tmp_path) -> list[GridCell]:
    cells = _grid(tmp_path, n_remedies=2, n_seeds=1)
    for cell in cells:
        _metrics_stage(cell.run_dir)
    return cells


def test_stale_replicates_are_recomputed(tmp_path, computed):
    cells = _kept(tmp_path)
    run = RunDir(cells[1].run_dir)
    frame = predictions.read(run.predictions_file)
    frame.loc[(frame["entry"] == "bb2") & (frame["label"] == "l1"), "probability"] *= 0.5  # predictions changed
    predictions.write(run.predictions_file, [predictions.from_frame(frame)])
    table = _compare(cells)
    assert len(computed) == 1  # only the changed run entry
    _assert_same(table, _compare(cells, use_stored=False))


def test_replicates_of_another_run_are_not_used(tmp_path, computed):
    cells = _kept(tmp_path)
    shutil.copyfile(RunDir(cells[0].run_dir).replicates_file, RunDir(cells[1].run_dir).replicates_file)
    table = _compare(cells)
    assert len(computed) == len(ENTRIES)  # the remedy's entries: the baseline's file did not fit them
    _assert_same(table, _compare(cells, use_stored=False))


def test_replicates_of_other_draws_are_not_used(tmp_path, computed):
    cells = _grid(tmp_path, n_remedies=2, n_seeds=1)
    for cell in cells:
        _metrics_stage(cell.run_dir, n_boot=N_BOOT + 5)  # another --bootstrap than the grid's
    assert stored_replicates(load_stored_run(cells[0].run_dir), n_boot=N_BOOT, seed=0) == []
    assert len(stored_replicates(load_stored_run(cells[0].run_dir), n_boot=N_BOOT + 5, seed=0)) == len(ENTRIES)
    _compare(cells)
    assert len(computed) == 2 * len(ENTRIES)


def test_a_truncated_file_is_not_used(tmp_path, computed):
    cells = _kept(tmp_path)
    path = RunDir(cells[0].run_dir).replicates_file
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    table = _compare(cells)
    assert len(computed) == len(ENTRIES)
    _assert_same(table, _compare(cells, use_stored=False))


def _rewrite(path: Path, change) -> None:
    """The file again, each member's array passed through ``change(name, array)``."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: np.lib.format.read_array(archive.open(info), allow_pickle=False)
                   for info in archive.infolist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in members.items():
            with archive.open(name, "w") as member:
                np.lib.format.write_array(member, change(name, array), allow_pickle=True)


@pytest.mark.parametrize("change", [
    lambda name, a: a[:, :-1] if name != "index.npy" else a,  # one replicate short
    lambda name, a: a[..., :-1] if name != "index.npy" else a,  # a label short
    lambda name, a: a.astype(np.float32) if name != "index.npy" else a,  # another dtype
    lambda name, a: np.array([{"x": 1}], dtype=object) if name != "index.npy" else a,  # a pickle
    lambda name, a: np.frombuffer(b"{not json", dtype=np.uint8) if name == "index.npy" else a,
])
def test_a_malformed_file_is_not_used(tmp_path, computed, change):
    cells = _kept(tmp_path)
    _rewrite(RunDir(cells[1].run_dir).replicates_file, change)
    assert stored_replicates(load_stored_run(cells[1].run_dir), n_boot=N_BOOT, seed=0) == []
    table = _compare(cells)
    assert len(computed) == len(ENTRIES)
    _assert_same(table, _compare(cells, use_stored=False))


def test_a_member_claiming_a_huge_array_is_refused_before_reading(tmp_path):
    cells = _kept(tmp_path)
    path = RunDir(cells[0].run_dir).replicates_file
    with zipfile.ZipFile(path) as archive:
        index = archive.read("index.npy")
    header = {"descr": "<f8", "fortran_order": False, "shape": (len(STORED_METRICS), 10**9, len(LABELS))}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.npy", index)
        with archive.open("e0.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(b"\0" * 64)
    assert RunDir(cells[0].run_dir).read_replicates(STORED_METRICS, n_boot=N_BOOT, seed=0, n_labels=4) == {}


def test_kept_replicates_with_unknown_cells_equal_computed_ones():
    rng = np.random.default_rng(3)
    n = 80
    y = (rng.random((n, 4)) < 0.3).astype(np.uint8)
    known = rng.random((n, 4)) > 0.2
    y = np.where(known, y, 0)
    a, b = rng.random((n, 4)), np.clip(0.3 * y + rng.random((n, 4)) * 0.7, 0, 1)
    da, db = (a >= 0.5).astype(np.uint8), (b >= 0.5).astype(np.uint8)
    patients = [f"p{i}" for i in rng.integers(0, 60, n)]
    train = [30, 20, 10, 5]
    kept = [entry_replicates(y, s, d, patients, n_boot=N_BOOT, seed=0, known=known) for s, d in ((a, da), (b, db))]
    args = (y, a, b, da, db, patients, LABELS, train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        fresh = paired.paired_differences(*args, n_boot=N_BOOT, known=known)
        reused = paired.paired_differences(*args, n_boot=N_BOOT, known=known, stored=kept)
        wrong_mask = paired.paired_differences(*args, n_boot=N_BOOT, known=None, stored=kept)
        plain = paired.paired_differences(*args, n_boot=N_BOOT, known=None)
    _assert_same(reused.table, fresh.table)
    np.testing.assert_allclose(reused.replicates, fresh.replicates, rtol=0, atol=1e-12)
    _assert_same(wrong_mask.table, plain.table)  # kept under another mask: not used
