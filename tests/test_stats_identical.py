"""The bootstrap statistics equal those of the code before it was vectorised (issue 24, part 4).

``tests/data/stats_reference.npz`` holds small random inputs (tied scores, binary PTC-like
scores, a label without positives, patients with several images, one and two seeds) and what
the statistics code computed from them before the rewrite: every replicate of every metric,
each run's intervals, paired and unpaired differences, seeds combined, and a grid's
Holm-adjusted comparison table read from run directories. The test recomputes them all from
the stored inputs and requires agreement to 1e-12. ``python tests/test_stats_identical.py``
writes the file again, from whatever the code computes now: do that only for a deliberate
change of results.
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlbench.data.splits import split_table
from mlbench.foundations.io import write_parquet
from mlbench.grid.cells import GridCell, compare_cells
from mlbench.grid.remedies import Remedy
from mlbench.results import paired, predictions, stats
from mlbench.results.metrics import MetricWarning
from mlbench.results.paired import COLUMNS, combine_seeds, paired_differences, unpaired_differences
from mlbench.results.stats import (calibration_metrics, decision_metrics, metric_intervals, patient_bootstrap,
                                   ranking_metrics)

REFERENCE = Path(__file__).parent / "data" / "stats_reference.npz"
TOLERANCE = 1e-12
ENTRIES = {"bb1": "backbone", "bb2": "backbone", "ens": "ensemble"}
TEXT_COLUMNS = ("scope", "name", "metric", "verdict", "remedy", "baseline", "entry")


# -- inputs --------------------------------------------------------------------------------------------
def _case(rng: np.random.Generator, n: int, n_labels: int, *, n_boot: int, seed: int, decimals: int) -> dict:
    prevalence = rng.uniform(0.03, 0.5, n_labels)
    y = (rng.random((n, n_labels)) < prevalence).astype(np.uint8)
    y[:, -1] = 0  # a label absent from the test split: its AUC and AUPRC are NaN
    patients = rng.integers(0, max(1, int(n / 1.3)), n)
    scores = np.clip(0.35 * y + rng.normal(0.35, 0.2, y.shape), 0, 1)
    other = np.clip(0.45 * y + rng.normal(0.3, 0.2, y.shape), 0, 1)
    return {"y": y, "patients": np.char.add("p", patients.astype(str)), "scores": np.round(scores, decimals),
            "other": np.round(other, decimals), "train_counts": rng.integers(0, 300, n_labels),
            "n_boot": np.int64(n_boot), "seed": np.int64(seed)}


def make_inputs() -> dict[str, dict]:
    rng = np.random.default_rng(20240)
    cases = {
        "ties": _case(rng, 90, 6, n_boot=70, seed=3, decimals=1),  # a coarse grid: ties everywhere
        "continuous": _case(rng, 160, 5, n_boot=130, seed=0, decimals=12),
        "tiny": _case(rng, 20, 4, n_boot=50, seed=11, decimals=2),  # replicates without any positive
    }
    binary = _case(rng, 120, 4, n_boot=65, seed=5, decimals=6)
    binary["other"] = (binary["other"] >= 0.5).astype(np.float64)  # PTC ensembles score 0/1
    cases["binary"] = binary
    cases["grid"] = _grid_inputs(rng, n_remedies=3, n_seeds=2)
    cases["grid_one_seed"] = _grid_inputs(rng, n_remedies=2, n_seeds=1)
    return cases


def _grid_inputs(rng: np.random.Generator, *, n_remedies: int, n_seeds: int) -> dict:
    n_train, n_test, n_labels = 40, 70, 4
    n = n_train + n_test
    y = (rng.random((n, n_labels)) < [0.4, 0.2, 0.08, 0.0]).astype(np.uint8)
    patients = np.char.add("p", rng.integers(0, int(n / 1.3), n).astype(str))
    # patients of the test images never appear in training, as in a patient-grouped split
    patients[:n_train] = np.char.add("t", patients[:n_train])
    out = {"y": y, "patients": patients, "n_train": np.int64(n_train), "n_boot": np.int64(60)}
    for r in range(n_remedies):
        for s in range(n_seeds):
            for e, entry in enumerate(ENTRIES):
                signal = 0.3 + 0.1 * r + 0.05 * e
                scores = np.clip(signal * y[n_train:] + rng.normal(0.3, 0.2, (n_test, n_labels)), 0, 1)
                if entry == "ens":
                    scores = np.round(scores, 1)
                out[f"scores_{r}_{s}_{entry}"] = scores
    out["n_remedies"], out["n_seeds"] = np.int64(n_remedies), np.int64(n_seeds)
    return out


# -- what the statistics compute from them -------------------------------------------------------------
def _rows_arrays(rows: list[dict], prefix: str) -> dict[str, np.ndarray]:
    out = {f"{prefix}/label": np.array([str(r["label"]) for r in rows]),
           f"{prefix}/metric": np.array([str(r["metric"]) for r in rows])}
    for key in ("value", "ci_low", "ci_high"):
        out[f"{prefix}/{key}"] = np.array([np.nan if r[key] is None else float(r[key]) for r in rows])
    return out


def _table_arrays(table: pd.DataFrame, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}/{c}": (table[c].astype(str).to_numpy().astype(str) if c in TEXT_COLUMNS
                              else table[c].to_numpy(dtype=np.float64)) for c in table.columns}


def _case_outputs(name: str, case: dict) -> dict[str, np.ndarray]:
    y, scores, other, patients = case["y"], case["scores"], case["other"], case["patients"]
    n_boot, seed = int(case["n_boot"]), int(case["seed"])
    labels = [f"l{j}" for j in range(y.shape[1])]
    decisions, other_decisions = (scores >= 0.5).astype(np.uint8), (other >= 0.5).astype(np.uint8)
    boot = patient_bootstrap(patients, n_boot, seed)
    out = {f"{name}/counts": boot.counts.astype(np.int16)}
    replicates = {**ranking_metrics(y, scores, boot), **decision_metrics(y, decisions, boot),
                  **calibration_metrics(y, scores, boot)}
    out.update({f"{name}/replicates/{metric}": values for metric, values in replicates.items()})
    rows = metric_intervals(y, scores, decisions, patients, labels, train_counts=case["train_counts"],
                            n_boot=n_boot, seed=seed)
    out.update(_rows_arrays(rows, f"{name}/intervals"))
    arguments = (y, scores, other, decisions, other_decisions, patients, labels, case["train_counts"])
    first = paired_differences(*arguments, n_boot=n_boot, seed=seed)
    out.update(_table_arrays(first.table, f"{name}/paired"))
    out[f"{name}/paired/replicates"] = first.replicates
    unpaired = unpaired_differences(*arguments, n_boot=n_boot, seed=seed)
    out.update(_table_arrays(unpaired.table, f"{name}/unpaired"))
    # a second "seed" of run B on the same draws, combined with the first
    again = paired_differences(y, scores, np.clip(other * 0.9 + 0.05, 0, 1), decisions, other_decisions, patients,
                               labels, case["train_counts"], n_boot=n_boot, seed=seed)
    combined = combine_seeds([first, again])
    out.update(_table_arrays(combined.table, f"{name}/combined"))
    out[f"{name}/combined/replicates"] = combined.replicates
    return out


@dataclass(frozen=True)
class _Out:
    out: Path  # what compare_cells reads of a cell's options: its run directory


def write_grid(case: dict, root: Path) -> list[GridCell]:
    """The grid's run directories in the runner's file formats (no training), and their cells."""
    y, patients, n_train = case["y"], case["patients"], int(case["n_train"])
    labels = [f"l{j}" for j in range(y.shape[1])]
    ids = [f"img{i:04d}.png" for i in range(len(y))]
    splits = np.where(np.arange(len(y)) < n_train, "train", "test")
    frame = pd.DataFrame({"image_id": ids, "patient_id": patients})
    test_ids = ids[n_train:]
    cells = []
    for r in range(int(case["n_remedies"])):
        for s in range(int(case["n_seeds"])):
            run = root / f"remedy{r}" / f"seed-{s}"
            write_parquet(run / "split.parquet", split_table(frame, y, splits, labels))
            tables = [predictions.to_table(test_ids, ["test"] * len(test_ids), entry, labels,
                                           case[f"scores_{r}_{s}_{entry}"]) for entry in ENTRIES]
            predictions.write(run / "predictions.parquet", tables)
            (run / "manifest.json").write_text(json.dumps({
                "backbones": [e for e, kind in ENTRIES.items() if kind == "backbone"],
                "ensembles": [e for e, kind in ENTRIES.items() if kind == "ensemble"],
                "recipe": {"threshold": 0.5}}))
            cells.append(GridCell(Remedy(f"remedy{r}"), s, _Out(run)))
    return cells


def compute_outputs(inputs: dict[str, dict], scratch: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        for name, case in inputs.items():
            if name.startswith("grid"):
                table = compare_cells(write_grid(case, scratch / name), "remedy0", n_boot=int(case["n_boot"]))
                out.update(_table_arrays(table, f"{name}/comparison"))
            else:
                out.update(_case_outputs(name, case))
    return out


# -- the stored file -----------------------------------------------------------------------------------
def load_reference() -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    with np.load(REFERENCE, allow_pickle=False) as stored:
        inputs: dict[str, dict] = {}
        outputs = {}
        for key in stored.files:
            kind, rest = key.split("/", 1)
            if kind == "input":
                case, field = rest.split("/", 1)
                inputs.setdefault(case, {})[field] = stored[key]
            else:
                outputs[rest] = stored[key]
    return inputs, outputs


def write_reference(scratch: Path) -> None:
    inputs = make_inputs()
    outputs = compute_outputs(inputs, scratch)
    arrays = {f"input/{case}/{field}": value for case, fields in inputs.items() for field, value in fields.items()}
    arrays.update({f"output/{key}": value for key, value in outputs.items()})
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, **arrays)


def test_every_statistic_equals_the_stored_reference(tmp_path):
    inputs, reference = load_reference()
    computed = compute_outputs(inputs, tmp_path)
    assert sorted(computed) == sorted(reference)
    for key, expected in reference.items():
        got = computed[key]
        assert got.shape == expected.shape, key
        if expected.dtype.kind == "U":
            assert (got == expected).all(), key
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE, equal_nan=True, err_msg=key)


def test_the_sparse_calibration_path_equals_the_reference_too(tmp_path, monkeypatch):
    """Splits too large for dense per-patient sums take the sparse product: the same values."""
    monkeypatch.setattr(stats, "DENSE_CELLS", 0)
    inputs, reference = load_reference()
    case = inputs["ties"]
    boot = patient_bootstrap(case["patients"], int(case["n_boot"]), int(case["seed"]))
    got = calibration_metrics(case["y"], case["scores"], boot)
    for metric, values in got.items():
        np.testing.assert_allclose(values, reference[f"ties/replicates/{metric}"], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("largest", [3, 2**26])  # 2**26: sums beyond int32, the int64 path
def test_grouped_auc_and_ap_equal_the_per_image_sums_for_any_multiplicities(largest):
    rng = np.random.default_rng(largest % 97)
    n, n_patients = 60, 45
    codes = np.concatenate([np.arange(n_patients), rng.integers(0, n_patients, n - n_patients)])
    y = (rng.random((n, 5)) < [0.5, 0.2, 0.05, 0.0, 1.0]).astype(np.uint8)  # no positive; no negative
    scores = np.round(rng.random((n, 5)), 1)
    counts = rng.integers(0, largest + 1, (40, n_patients))
    grouped = stats.TiedScoreGroups(y, scores, codes, n_patients).auc_ap(counts)
    for j in range(5):
        per_image = stats.RankedLabel(y[:, j], scores[:, j]).auc_ap(counts, codes)
        for got, expected in zip(grouped, per_image):
            np.testing.assert_allclose(got[:, j], expected, rtol=1e-12, atol=TOLERANCE, equal_nan=True)


def test_chunks_do_not_change_the_values(monkeypatch):
    rng = np.random.default_rng(8)
    n, n_patients = 200, 150
    codes = rng.integers(0, n_patients, n)
    y = (rng.random((n, 3)) < 0.3).astype(np.uint8)
    scores = np.round(rng.random((n, 3)), 2)
    counts = rng.integers(0, 3, (100, n_patients))
    groups = stats.TiedScoreGroups(y, scores, codes, n_patients)
    whole = groups.auc_ap(counts)
    monkeypatch.setattr(stats, "RANKING_CHUNK", 7)
    chunked = groups.auc_ap(counts)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE)  # AP's sums may round otherwise


def test_the_same_draws_are_shared_not_drawn_again():
    patients = [f"p{i % 7}" for i in range(20)]
    first = patient_bootstrap(patients, 30, 4)
    assert patient_bootstrap(list(patients), 30, 4) is first
    assert patient_bootstrap(patients, 30, 5) is not first
    assert patient_bootstrap(patients[::-1], 30, 4).codes.tolist() == first.codes.tolist()[::-1]
    with pytest.raises(ValueError):
        first.counts[0, 0] = 99  # read-only: every caller sees the same draws


def test_a_grid_computes_each_run_entry_once(tmp_path, monkeypatch):
    """The baseline's replicates are reused by every remedy: 2 remedies x 2 seeds x 3 entries + the baseline's."""
    inputs, reference = load_reference()
    calls = []
    original = paired.ranking_metrics
    monkeypatch.setattr(paired, "ranking_metrics", lambda *a: calls.append(1) or original(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        table = compare_cells(write_grid(inputs["grid"], tmp_path), "remedy0", n_boot=int(inputs["grid"]["n_boot"]))
    assert len(calls) == 3 * 2 * len(ENTRIES)
    np.testing.assert_allclose(table["p_adjusted"], reference["grid/comparison/p_adjusted"], atol=TOLERANCE)


def test_the_reference_covers_ties_absent_labels_one_seed_and_holm():
    inputs, reference = load_reference()
    assert np.isnan(reference["ties/replicates/auc"][:, -1]).all()  # the label without positives
    assert len(np.unique(inputs["ties"]["scores"])) < 15  # heavy ties
    one_seed = reference["grid_one_seed/comparison/n_seeds"]
    assert set(one_seed[np.isfinite(reference["grid_one_seed/comparison/difference"])]) == {1}
    p, adjusted = reference["grid/comparison/p_value"], reference["grid/comparison/p_adjusted"]
    tested = np.isfinite(p)
    assert (adjusted[tested] >= p[tested]).all() and (adjusted[tested] > p[tested]).any()
    assert set(reference["grid/comparison/remedy"]) == {"remedy1", "remedy2"}
    assert list(COLUMNS) == [k.split("/")[-1] for k in reference if k.startswith("ties/paired/")
                             and k != "ties/paired/replicates"]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        write_reference(Path(scratch))
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size} bytes)", file=sys.stderr)
