"""Paired patient-bootstrap differences between two runs on the same test images."""

import numpy as np
import pandas as pd
import pytest

from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.results.metrics import evaluate
from mlbench.results.metrics import lower_is_better
from mlbench.results.paired import (COLUMNS, DEFAULT_METRICS, HELPS, HURTS, NO_EVIDENCE, adjust, combine_seeds, holm,
                            p_value, paired_differences, unpaired_differences, verdict)

LABELS = [f"l{j}" for j in range(6)]
TRAIN_COUNTS = [600, 300, 150, 80, 40, 20]


def split(n=400, seed=0):
    rng = np.random.default_rng(seed)
    prevalence = np.array([0.4, 0.25, 0.15, 0.1, 0.07, 0.05])
    y = (rng.random((n, len(LABELS))) < prevalence).astype(int)
    patients = np.char.add("p", rng.integers(0, n * 3 // 4, n).astype(str))
    shared = rng.normal(size=y.shape)  # what makes some images hard for every model
    return y, patients, shared, rng


def run(y, shared, rng, signal=1.0, noise=0.5):
    logits = signal * (2 * y - 1) + shared + noise * rng.normal(size=y.shape)
    scores = 1 / (1 + np.exp(-logits))
    return scores, (scores >= 0.5).astype(int)


def compare(y, a, b, patients, paired=True, **kw):
    f = paired_differences if paired else unpaired_differences
    return f(y, a[0], b[0], a[1], b[1], patients, LABELS, TRAIN_COUNTS, **kw)


def test_a_run_against_itself_differs_by_exactly_zero():
    y, patients, shared, rng = split()
    a = run(y, shared, rng)
    table = compare(y, a, a, patients, n_boot=200).table
    assert list(table.columns) == list(COLUMNS)
    assert set(table["scope"]) == {"label", "group", "macro"}
    assert (table["difference"] == 0).all() and (table["ci_low"] == 0).all() and (table["ci_high"] == 0).all()
    assert (table["verdict"] == NO_EVIDENCE).all()
    assert len(table) == len(DEFAULT_METRICS) * (len(LABELS) + 3 + 1)


def test_point_differences_are_the_metric_differences_of_evaluate():
    y, patients, shared, rng = split(seed=1)
    a, b = run(y, shared, rng), run(y, shared, rng, signal=1.5)
    table = compare(y, a, b, patients, n_boot=50).table.set_index(["scope", "name", "metric"])
    values_a = {(r["label"], r["metric"]): r["value"] for r in evaluate(y, a[0], a[1], LABELS)}
    values_b = {(r["label"], r["metric"]): r["value"] for r in evaluate(y, b[0], b[1], LABELS)}
    for label in LABELS + [GLOBAL_LABEL]:
        scope = "macro" if label == GLOBAL_LABEL else "label"
        for metric in ("auc", "auprc", "f1"):
            expected = values_b[(label, metric)] - values_a[(label, metric)]
            assert table.loc[(scope, label, metric), "difference"] == pytest.approx(expected, abs=1e-9)
    rare = ["l4", "l5"]  # the last third by training positives
    expected = np.mean([values_b[(m, "auc")] - values_a[(m, "auc")] for m in rare])
    assert table.loc[("group", "rare", "auc"), "difference"] == pytest.approx(expected, abs=1e-9)


def test_a_clearly_better_run_helps_and_the_reverse_hurts():
    y, patients, shared, rng = split(n=800, seed=2)
    weak, strong = run(y, shared, rng, signal=0.5), run(y, shared, rng, signal=2.0)
    better = compare(y, weak, strong, patients, n_boot=300).table
    macro = better[better["scope"] == "macro"].set_index("metric")
    assert (macro["verdict"] == HELPS).all(), macro
    worse = compare(y, strong, weak, patients, n_boot=300).table
    assert (worse[worse["scope"] == "macro"]["verdict"] == HURTS).all()


def test_paired_interval_is_narrower_than_unpaired_for_correlated_runs():
    y, patients, shared, rng = split(n=800, seed=3)
    a, b = run(y, shared, rng), run(y, shared, rng)  # two "seeds" of one recipe
    width = {}
    for paired in (True, False):
        row = compare(y, a, b, patients, paired=paired, n_boot=400).table.query("scope == 'macro' and metric == 'auc'")
        width[paired] = float(row["ci_high"].iloc[0] - row["ci_low"].iloc[0])
    assert width[True] < 0.75 * width[False], width


def test_deterministic_for_a_seed():
    y, patients, shared, rng = split(seed=4)
    a, b = run(y, shared, rng), run(y, shared, rng)
    first, again = compare(y, a, b, patients, n_boot=100, seed=7), compare(y, a, b, patients, n_boot=100, seed=7)
    pd.testing.assert_frame_equal(first.table, again.table)


def test_combine_seeds_mean_sd_and_verdicts():
    y, patients, shared, rng = split(n=800, seed=5)
    base = run(y, shared, rng, signal=0.5)
    per_seed = [compare(y, base, run(y, shared, rng, signal=s), patients, n_boot=200) for s in (1.8, 2.0, 2.2)]
    combined = combine_seeds(per_seed).table
    differences = np.column_stack([c.table["difference"] for c in per_seed])
    assert combined["difference"].to_numpy() == pytest.approx(differences.mean(axis=1))
    assert combined["sd"].to_numpy() == pytest.approx(differences.std(axis=1, ddof=1))
    assert (combined["n_seeds"] == 3).all()
    assert (combined.query("scope == 'macro'")["verdict"] == HELPS).all()
    # one seed on the other side: no evidence, whatever the interval
    mixed = combine_seeds([per_seed[0], compare(y, base, base, patients, n_boot=200)]).table
    assert not (mixed["verdict"] == HELPS).any()
    single = combine_seeds(per_seed[:1]).table
    assert single["sd"].isna().all() and single["difference"].equals(per_seed[0].table["difference"])


def test_combine_seeds_refuses_other_bootstraps():
    y, patients, shared, rng = split(seed=6)
    a = run(y, shared, rng)
    with pytest.raises(ValueError, match="same test patients, n_boot and seed"):
        combine_seeds([compare(y, a, a, patients, n_boot=50), compare(y, a, a, patients, n_boot=60)])


def test_verdict_direction():
    assert verdict("auc", 0.01, 0.02, 0.01) == HELPS and verdict("auc", -0.02, -0.01, 0.01) == HURTS
    assert verdict("hamming", -0.02, -0.01, 0.01) == HELPS and verdict("f1", -0.01, 0.01, 0.01) == NO_EVIDENCE
    assert verdict("auc", float("nan"), float("nan"), 0.01) == NO_EVIDENCE
    assert verdict("auc", 0.01, 0.02, 0.06) == NO_EVIDENCE  # an interval above 0 is not enough alone


def test_a_label_absent_from_the_test_split_has_no_verdict():
    y, patients, shared, rng = split(seed=7)
    y[:, 5] = 0
    a, b = run(y, shared, rng), run(y, shared, rng)
    table = compare(y, a, b, patients, n_boot=50).table.set_index(["scope", "name", "metric"])
    row = table.loc[("label", "l5", "auc")]
    assert np.isnan(row["difference"]) and row["verdict"] == NO_EVIDENCE
    assert np.isfinite(table.loc[("group", "rare", "auc"), "difference"])  # l4 still defines the group


def test_mistakes_are_one_line_errors():
    y, patients, shared, rng = split(seed=8)
    a = run(y, shared, rng)
    with pytest.raises(ValueError, match="scores_b has shape"):
        paired_differences(y, a[0], a[0][:-1], a[1], a[1], patients, LABELS, TRAIN_COUNTS)
    with pytest.raises(ValueError, match="patient ids"):
        paired_differences(y, a[0], a[0], a[1], a[1], patients[:-1], LABELS, TRAIN_COUNTS)
    with pytest.raises(ValueError, match="decisions_a must hold only 0 and 1"):
        paired_differences(y, a[0], a[0], a[0], a[1], patients, LABELS, TRAIN_COUNTS)
    with pytest.raises(ValueError, match="unknown metrics"):
        paired_differences(y, a[0], a[0], a[1], a[1], patients, LABELS, TRAIN_COUNTS, metrics=("accuracy",))


# -- multiplicity: p-values and Holm's adjustment -------------------------------------------------------
def test_holm_matches_the_step_down_by_hand():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> raised to 0.06 (monotone)
    adjusted = holm([0.01, 0.04, 0.03, 0.005, np.nan])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])  # not a test: not counted in m either
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_p_value_is_the_normal_tail_of_difference_over_bootstrap_sd():
    reps = np.random.default_rng(0).normal(0.0, 0.01, 1000)
    sd = reps.std(ddof=1)
    assert p_value(1.96 * sd, reps) == pytest.approx(0.05, abs=1e-4)
    assert p_value(-1.96 * sd, reps) == pytest.approx(0.05, abs=1e-4)  # two-sided
    # far below 1 / n_boot when the difference is many sds away: what Holm over many labels needs
    assert p_value(5 * sd, reps) == pytest.approx(5.7e-7, rel=0.01)
    assert p_value(0.0, np.zeros(50)) == 1.0 and p_value(0.1, np.zeros(50)) == 0.0
    assert np.isnan(p_value(0.1, np.full(10, np.nan))) and np.isnan(p_value(np.nan, reps))


def test_a_larger_family_withdraws_a_verdict_a_single_test_would_give():
    row = {"scope": "label", "metric": "auc", "difference": 0.02, "ci_low": 0.005, "ci_high": 0.035, "sd": np.nan,
           "n_seeds": 1, "p_value": 0.01, "p_adjusted": np.nan, "verdict": HELPS}
    alone = adjust(pd.DataFrame([{**row, "name": "l0"}]))
    assert alone["p_adjusted"].tolist() == [0.01] and alone["verdict"].tolist() == [HELPS]
    family = adjust(pd.DataFrame([{**row, "name": f"l{j}"} for j in range(20)]))
    assert family["p_adjusted"].tolist() == pytest.approx([0.2] * 20)
    assert set(family["verdict"]) == {NO_EVIDENCE}
    # other metrics or scopes are other families
    mixed = adjust(pd.DataFrame([{**row, "name": "l0"}, {**row, "name": "l1", "metric": "auprc"}]))
    assert mixed["verdict"].tolist() == [HELPS, HELPS]


def test_holm_keeps_chance_findings_of_a_null_comparison_out_of_the_verdicts():
    # 60 labels, two runs of the same quality: every per-label difference is noise.
    rng = np.random.default_rng(7)
    n, k = 300, 60
    labels = [f"n{j}" for j in range(k)]
    y = (rng.random((n, k)) < 0.3).astype(int)
    patients = np.char.add("p", np.arange(n).astype(str))
    a, b = run(y, 0.0, rng), run(y, 0.0, rng)
    table = paired_differences(y, a[0], b[0], a[1], b[1], patients, labels, [100] * k, n_boot=300,
                               metrics=("auc",)).table
    rows = table[table["scope"] == "label"]
    by_chance = ((rows["ci_low"] > 0) | (rows["ci_high"] < 0)).sum()
    assert by_chance >= 1  # unadjusted, some intervals exclude 0: the family has chance findings to remove
    assert ((rows["p_value"] < 0.05) == (rows["ci_low"] > 0) | (rows["ci_high"] < 0)).mean() > 0.9
    assert (rows["p_adjusted"] >= rows["p_value"]).all()
    assert set(rows["verdict"]) == {NO_EVIDENCE}


def test_clear_per_label_gains_survive_holm_over_many_labels_with_few_replicates():
    # 60 labels and 300 replicates: counting replicates could not give p below ~2/300, times 60 > 0.05.
    rng = np.random.default_rng(11)
    n, k = 400, 60
    labels = [f"n{j}" for j in range(k)]
    y = (rng.random((n, k)) < 0.3).astype(int)
    patients = np.char.add("p", np.arange(n).astype(str))
    a, b = run(y, 0.0, rng, signal=0.3), run(y, 0.0, rng, signal=2.0)
    table = paired_differences(y, a[0], b[0], a[1], b[1], patients, labels, [100] * k, n_boot=300,
                               metrics=("auc",)).table
    rows = table[table["scope"] == "label"]
    assert (rows["verdict"] == HELPS).mean() > 0.9


def test_every_verdict_has_its_interval_and_its_adjusted_p_value():
    y, patients, shared, rng = split(seed=3)
    a, b = run(y, shared, rng), run(y, shared, rng, signal=1.6)
    table = compare(y, a, b, patients, n_boot=300).table
    lower = table["metric"].map(lower_is_better)
    better_side = table["ci_high"].where(lower, -table["ci_low"]) < 0  # wholly below 0 for ece_15, brier
    helps = table[table["verdict"] == HELPS]
    assert len(helps) > 0 and helps["metric"].map(lower_is_better).any()
    assert better_side[helps.index].all() and (helps["p_adjusted"] < 0.05).all()
    quiet = table[(table["verdict"] == NO_EVIDENCE) & better_side]
    assert (quiet["p_adjusted"] >= 0.05).all()  # an interval on the better side without a verdict: the adjustment said no
