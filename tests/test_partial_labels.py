"""Partial labels (issue 23, part 1): unknown label cells through labels, split, losses, counts and metrics.

A cell may be unknown (a known-mask beside the 0/1 matrix). Losses leave masked cells out (no value,
no gradient); metrics and their bootstrap replicates score each label on its known cells, as
scikit-learn does on that subset; samplers, pos_weights and imbalance measures count known cells;
with no unknown cell everything is what it was.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score, brier_score_loss, f1_score, roc_auc_score

import mlbench_imbalanced_losses
from mlbench import hookimpl
from mlbench.contracts.benchmark import Benchmark, Recipe
from mlbench.contracts.registry import build_registry
from mlbench.data import Records, UNKNOWN_COLUMN
from mlbench.data.imbalance import imbalance_report, irlbl
from mlbench.data.labels import label_matrices
from mlbench.data.splits import split_benchmark, split_labels, split_table
from mlbench.models import losses
from mlbench.models.samplers import minority_majority, ml_ros, ml_rus
from mlbench.results.metrics import MetricWarning, equal_mass_bins, evaluate, expected_calibration_error
from mlbench.results.paired import paired_differences
from mlbench.results.stats import (calibration_metrics, decision_metrics, metric_intervals, patient_bootstrap,
                                   ranking_metrics)
from mlbench.training.runner import RunError, check_unknown_cells
from mlbench.training.stages import build_phases

BUILT_IN = {"weighted-bce": losses.weighted_bce, "bce": losses.plain_bce, "class-balanced": losses.class_balanced,
            "distribution-balanced": losses.distribution_balanced, "ldam": losses.ldam,
            "logit-adjusted-bce": losses.logit_adjusted_bce, "focal": mlbench_imbalanced_losses.focal,
            "asl": mlbench_imbalanced_losses.asl}


def cells(seed: int = 0, n: int = 40, labels: int = 4, unknown: float = 0.25):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, labels)) < 0.35).astype(np.uint8)
    known = rng.random((n, labels)) >= unknown
    y[~known] = 0  # what label_matrices holds at an unknown cell
    return y, known, rng


# -- losses --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_a_masked_cell_changes_neither_the_loss_nor_any_gradient(name):
    y, known, _ = cells(1, n=8, labels=4, unknown=0.3)
    loss = BUILT_IN[name]([3, 2, 1, 0], 8, **({} if name in ("focal", "asl") else {"known_counts": [6, 5, 4, 8]}))
    assert losses.takes_known(loss)
    logits = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    flipped = y.copy()
    flipped[~known] = 1 - flipped[~known]  # every masked target flipped
    results = []
    for targets in (y, flipped):
        z = logits.clone().requires_grad_(True)
        value = loss(z, torch.from_numpy(targets).float(), known=torch.from_numpy(known))
        (grad,) = torch.autograd.grad(value, z)
        results.append((value.detach(), grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    assert torch.count_nonzero(results[0][1][torch.from_numpy(~known)]) == 0  # no gradient into a masked cell


def test_weighted_bce_is_the_mean_over_known_cells_with_pos_weight_from_known_counts():
    y, known, _ = cells(3, n=10, labels=3, unknown=0.3)
    counts, cells_known = y.sum(axis=0).tolist(), known.sum(axis=0).tolist()
    loss = losses.weighted_bce(counts, 10, known_counts=cells_known)
    expected_weight = torch.tensor([(k - p) / p if p else 1.0 for p, k in zip(counts, cells_known)])
    torch.testing.assert_close(loss.pos_weight, expected_weight.clamp(min=1e-3))
    z = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    t = torch.from_numpy(y).float()
    p = torch.sigmoid(z)
    terms = -(loss.pos_weight * t * torch.log(p) + (1 - t) * torch.log(1 - p))
    k = torch.from_numpy(known)
    torch.testing.assert_close(loss(z, t, known=k), terms[k].mean())
    # every cell known: exactly the loss without a mask
    everything = torch.ones_like(k)
    torch.testing.assert_close(loss(z, t, known=everything), loss(z, t), rtol=0, atol=1e-7)


def test_a_batch_with_no_known_cell_gives_zero_and_no_gradient():
    z = torch.randn(3, 2, requires_grad=True)
    value = losses.weighted_bce([1, 1], 3)(z, torch.ones(3, 2), known=torch.zeros(3, 2, dtype=torch.bool))
    (grad,) = torch.autograd.grad(value, z)
    assert float(value.detach()) == 0.0 and torch.count_nonzero(grad) == 0


def test_training_targets_carry_unknown_cells_as_nan_to_the_mask():
    loss = losses.KnownTargets(losses.plain_bce([1, 1], 4))
    z = torch.randn(4, 2)
    t = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [float("nan"), float("nan")], [1.0, 0.0]])
    known = ~torch.isnan(t)
    torch.testing.assert_close(loss(z, t), losses.plain_bce([1, 1], 4)(z, torch.nan_to_num(t), known=known))
    assert torch.isfinite(loss(z, t))


def _plugin_without_mask():
    class Plain(torch.nn.Module):
        def forward(self, logits, targets):
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)

    module = types.ModuleType("no_mask_loss")

    @hookimpl
    def register_losses(register):
        register("no-mask", lambda label_counts, n_samples: Plain())

    module.register_losses = register_losses
    return module


def test_a_loss_without_mask_support_is_refused_in_one_line_and_works_without_unknown_cells():
    registry = build_registry(plugins=[_plugin_without_mask()])
    recipe = Recipe(backbones=("resnet10t",), loss="no-mask")
    with pytest.raises(RunError) as caught:
        check_unknown_cells(registry, recipe, 3, "--dataset-option policy=ignore leaves unknown label cells")
    message = str(caught.value)
    assert "\n" not in message and "--loss no-mask" in message and "'known'" in message and "policy=ignore" in message
    check_unknown_cells(registry, recipe.replace(loss="weighted-bce"), 3, "x")  # built-ins take the mask
    # with no unknown cell the mask-less loss trains as it always did (nothing wraps it)
    y = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0]], dtype=np.uint8)
    (phase,) = build_phases(registry, recipe, y)
    assert type(phase.loss_fn).__name__ == "Plain"
    (phase,) = build_phases(registry, recipe.replace(loss="weighted-bce", sampler="ml-ros"), y,
                            np.array([[1, 0, 1], [1, 1, 1], [1, 1, 0]], dtype=bool))
    assert isinstance(phase.loss_fn, losses.KnownTargets)
    assert phase.sampler.known is not None
    torch.testing.assert_close(phase.loss_fn.loss.pos_weight, torch.tensor([0.5, 1e-3, 1.0]))  # (K - P) / P, floored at 1e-3


# -- counts ------------------------------------------------------------------------------------------
def test_pos_weight_counts_known_cells():
    w = losses.inverse_frequency_pos_weight([10, 5, 0], 100, known_counts=[40, 100, 20])
    torch.testing.assert_close(w, torch.tensor([3.0, 19.0, 1.0]))
    with pytest.raises(ValueError, match="known_counts"):
        losses.inverse_frequency_pos_weight([10, 5], 100, known_counts=[5, 100])  # fewer cells than positives


def test_imbalance_measures_count_known_cells():
    Y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 0, 0]], dtype=np.uint8)
    known = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1], [1, 0, 0]], dtype=bool)
    # prevalence among known cells: 3/4, 2/2, 1/3 -> IRLbl = 1 / p * max p
    np.testing.assert_allclose(irlbl(Y, known), [1 / 0.75, 1.0, 3.0])
    report = imbalance_report(Y, ["a", "b", "c"], known)
    assert report.max_ir == pytest.approx(3.0) and report.mean_ir == pytest.approx((4 / 3 + 1 + 3) / 3)
    assert report.density == pytest.approx(6 / 9)  # active cells over known cells
    # every cell known: exactly the count formulas
    plain = imbalance_report(Y, ["a", "b", "c"])
    assert imbalance_report(Y, ["a", "b", "c"], np.ones_like(known)) == plain
    np.testing.assert_array_equal(irlbl(Y), [1.0, 1.5, 3.0])


def test_samplers_count_known_cells_and_are_unchanged_without_unknown_cells():
    Y, known, _ = cells(5, n=60, labels=4, unknown=0.3)
    Y[:25, 3] = 0
    known[:25, 3] = False  # label 3 is known on fewer images: rarer by count, not by prevalence
    minority, _, _ = minority_majority(Y)
    masked_minority, _, _ = minority_majority(Y, known)
    assert 3 in minority
    p = Y.sum(axis=0) / known.sum(axis=0)
    assert list(masked_minority) == [j for j in range(4) if p.max() / p[j] > np.mean(p.max() / p)]
    for factory in (ml_ros, ml_rus):
        plain = factory(Y, seed=1, percentage=20)
        assert np.array_equal(plain.epoch(0), factory(Y, seed=1, percentage=20, known=np.ones_like(known)).epoch(0))
        masked = factory(Y, seed=1, percentage=20, known=known).epoch(0)
        assert masked.min() >= 0 and masked.max() < len(Y)


# -- labels, split -------------------------------------------------------------------------------------
def _bench(labels=("a", "b", "c"), keep_unlabelled=False):
    return Benchmark(name="toy", version="1", dataset="toy", labels=labels, targets=lambda f: frozenset(f),
                     recipe=Recipe(backbones=("resnet10t",)), demo_recipe=Recipe(backbones=("resnet10t",)), split_fractions=(0.5, 0.25, 0.25),
                     keep_unlabelled=keep_unlabelled)


def _records(findings, unknown=None):
    n = len(findings)
    frame = pd.DataFrame({"image_id": [f"i{k}" for k in range(n)], "patient_id": [f"p{k // 2}" for k in range(n)],
                          "image_path": [f"/x/{k}.png" for k in range(n)], "findings": findings})
    if unknown is not None:
        frame[UNKNOWN_COLUMN] = unknown
    return Records(frame=frame, kind="toy", source_sha256="0" * 64)


def test_unknown_findings_become_a_known_mask_beside_the_matrix():
    findings = [("a",), ("b",), ("a", "c"), (), ("c",), ("b",)]
    unknown = [("b",), ("a", "b"), ("c",), ("a", "b", "c"), (), ("a", "c")]
    out = label_matrices(_records(findings, unknown), _bench())
    assert out.frame["image_id"].tolist() == ["i0", "i1", "i2", "i4", "i5"]  # i3: no label (and all unknown)
    np.testing.assert_array_equal(out.Y, [[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0]])
    # a positive finding wins over an unknown one (i2's c); unknown cells hold 0
    np.testing.assert_array_equal(out.known, [[1, 0, 1], [0, 1, 1], [1, 1, 1], [1, 1, 1], [0, 1, 0]])
    assert out.Y[~out.known].sum() == 0
    kept = label_matrices(_records([(), ()], [("a", "b", "c"), ("a",)]), _bench(keep_unlabelled=True))
    assert [s.reason for s in kept.skipped] == ["no_known_label"] and kept.known.tolist() == [[False, True, True]]
    # no column, or only empty tuples: no mask at all, the same matrix
    for records in (_records(findings), _records(findings, [()] * len(findings))):
        plain = label_matrices(records, _bench())
        assert plain.known is None


def test_split_parquet_holds_unknown_cells_as_nulls_and_reads_them_back():
    findings = [("a",), ("b",), ("a", "c"), ("c",), ("b",), ("a", "b")] * 4
    unknown = [("b",), (), ("b",), ("a",), (), ()] * 4
    split = split_benchmark(_records(findings, unknown), _bench())
    plain = split_benchmark(_records(findings), _bench())
    assert split.splits.tolist() == plain.splits.tolist()  # stratified on known positives: the same
    assert split.summary["unknown_cells"] == int((~split.known).sum()) == 12
    assert "unknown_cells" not in plain.summary and all("known" not in c for c in plain.summary["label_counts"])
    table = split_table(split.frame, split.Y, split.splits, split.labels, split.known)
    Y, known = split_labels(table.to_pandas(), split.labels)
    np.testing.assert_array_equal(Y, split.Y)
    np.testing.assert_array_equal(known, split.known)
    assert split_table(plain.frame, plain.Y, plain.splits, plain.labels).equals(
        split_table(plain.frame, plain.Y, plain.splits, plain.labels, np.ones_like(plain.Y, dtype=bool)))
    assert split_labels(split_table(plain.frame, plain.Y, plain.splits, plain.labels).to_pandas(), plain.labels)[1] \
        is None
    counts = {c["label"]: c for c in split.summary["label_counts"]}
    assert counts["b"]["known"]["all"] == 24 - 8 and counts["a"]["known"]["all"] == 24 - 4


# -- metrics -------------------------------------------------------------------------------------------
def test_per_label_metrics_equal_scikit_learns_on_the_known_subset():
    y, known, rng = cells(7, n=60, labels=4)
    scores = rng.random(y.shape)
    decisions = (scores >= 0.5).astype(np.uint8)
    rows = {(r["label"], r["metric"]): r for r in evaluate(y, scores, decisions, list("abcd"), known)}
    for j, label in enumerate("abcd"):
        k = known[:, j]
        assert rows[(label, "auc")]["value"] == pytest.approx(roc_auc_score(y[k, j], scores[k, j]), abs=1e-12)
        assert rows[(label, "auprc")]["value"] == pytest.approx(average_precision_score(y[k, j], scores[k, j]),
                                                                abs=1e-12)
        assert rows[(label, "f1_pos")]["value"] == pytest.approx(f1_score(y[k, j], decisions[k, j]), abs=1e-12)
        assert rows[(label, "brier")]["value"] == pytest.approx(brier_score_loss(y[k, j], scores[k, j]), abs=1e-12)
        assert rows[(label, "hamming")]["value"] == pytest.approx(np.mean(y[k, j] != decisions[k, j]))
        assert rows[(label, "auc")]["n_positive"] == int(y[k, j].sum())
    wrong = ((y != decisions) & known).sum() / known.sum()
    assert rows[("__global__", "hamming")]["value"] == pytest.approx(wrong)


def test_each_replicate_scores_each_label_on_its_drawn_known_cells():
    y, known, rng = cells(11, n=50, labels=3)
    scores = np.round(rng.random(y.shape), 1)  # ties
    decisions = (scores >= 0.5).astype(np.uint8)
    patients = [f"p{i // 2}" for i in range(len(y))]
    boot = patient_bootstrap(patients, 30, seed=4)
    ranking = ranking_metrics(y, scores, boot, known)
    decided = decision_metrics(y, decisions, boot, known)
    calibration = calibration_metrics(y, scores, boot, known)
    for b in (0, 7, 29):
        weights = boot.image_weights(b, b + 1)[0]
        for j in range(3):
            k = known[:, j] & (weights > 0)
            w = weights[k]
            yk, sk, dk = y[k, j], scores[k, j], decisions[k, j]
            if 0 < yk.sum() < len(yk):
                assert ranking["auc"][b, j] == pytest.approx(roc_auc_score(yk, sk, sample_weight=w), abs=1e-12)
                assert ranking["auprc"][b, j] == pytest.approx(average_precision_score(yk, sk, sample_weight=w),
                                                               abs=1e-12)
            assert decided["f1_pos"][b, j] == pytest.approx(f1_score(yk, dk, sample_weight=w, zero_division=0.0))
            assert decided["hamming"][b, j] == pytest.approx(np.average(yk != dk, weights=w))
            assert calibration["brier"][b, j] == pytest.approx(np.average((sk - yk) ** 2, weights=w))
            # ECE keeps the bins of the label's known scores on the whole split
            bins = equal_mass_bins(scores[known[:, j], j])
            mine = (weights > 0)[known[:, j]]
            assert calibration["ece_15"][b, j] == pytest.approx(expected_calibration_error(
                y[known[:, j], j][mine], scores[known[:, j], j][mine], weights[known[:, j]][mine], bins=bins[mine]))


def test_a_mask_with_every_cell_known_changes_no_result():
    y, _, rng = cells(13, n=40, labels=3, unknown=0.0)
    scores = rng.random(y.shape)
    decisions = (scores >= 0.5).astype(np.uint8)
    patients = [f"p{i // 3}" for i in range(len(y))]
    args = (y, scores, decisions, patients, list("abc"))
    plain = metric_intervals(*args, train_counts=[5, 3, 1], n_boot=25)
    masked = metric_intervals(*args, train_counts=[5, 3, 1], n_boot=25, known=np.ones_like(y, dtype=bool))
    assert pd.DataFrame(plain).equals(pd.DataFrame(masked))


def test_paired_differences_score_the_known_cells():
    y, known, rng = cells(17, n=60, labels=3)
    a, b = rng.random(y.shape), rng.random(y.shape)
    patients = [f"p{i // 2}" for i in range(len(y))]
    out = paired_differences(y, a, b, (a >= 0.5).astype(np.uint8), (b >= 0.5).astype(np.uint8), patients,
                             list("abc"), [5, 3, 1], n_boot=20, known=known)
    rows = out.table[(out.table["scope"] == "label") & (out.table["metric"] == "auc")].set_index("name")
    for j, label in enumerate("abc"):
        k = known[:, j]
        expected = roc_auc_score(y[k, j], b[k, j]) - roc_auc_score(y[k, j], a[k, j])
        assert rows.loc[label, "difference"] == pytest.approx(expected, abs=1e-12)


def test_a_label_with_no_known_cell_is_nan_with_a_warning():
    y, known, rng = cells(19, n=20, labels=2)
    known[:, 1] = False
    y[:, 1] = 0
    scores = rng.random(y.shape)
    with pytest.warns(MetricWarning, match="no known cell"):
        rows = evaluate(y, scores, (scores >= 0.5).astype(np.uint8), ["a", "b"], known)
    assert all(np.isnan(r["value"]) for r in rows if r["label"] == "b")


# -- the folder benchmark's ignore policy ------------------------------------------------------------------
def test_the_folder_ignore_policy_makes_uncertain_cells_unknown(tmp_path):
    from mlbench import DataSource
    from mlbench_folder.benchmarks import folder
    from mlbench_folder.dataset import FolderDataset

    images = tmp_path / "images"
    images.mkdir()
    rows = ["path,patient,a,b,c"]
    cells_of = ["1,0,-1", "-1,1,", "0,-1,1", "1,,0", "-1,-1,1", "1,1,0", "0,1,-1", "1,0,1"] * 2
    for k, line in enumerate(cells_of):
        (images / f"x{k}.png").write_bytes(b"not empty")
        rows.append(f"x{k}.png,p{k // 2},{line}")
    csv = tmp_path / "labels.csv"
    csv.write_text("\n".join(rows) + "\n")
    source = DataSource(csv, images)
    splits = {}
    for policy in ("ones", "zeros", "ignore"):
        records = FolderDataset(min_count=1, policy=policy).read(source)
        splits[policy] = split_benchmark(records, folder())
    ignore = splits["ignore"]
    raw = np.array([[c for c in line.split(",")] for line in cells_of])
    order = [int(i[1:-4]) for i in ignore.frame["image_id"]]
    np.testing.assert_array_equal(ignore.known, raw[order] != "-1")
    np.testing.assert_array_equal(ignore.Y, raw[order] == "1")  # blank stays 0, uncertain is 0 and unknown
    assert splits["ones"].known is None and splits["zeros"].known is None
    assert ignore.splits.tolist() == splits["ones"].splits.tolist() == splits["zeros"].splits.tolist()
    np.testing.assert_array_equal(splits["ones"].Y, (raw[order] == "1") | (raw[order] == "-1"))
