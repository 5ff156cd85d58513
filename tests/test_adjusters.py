"""Post-hoc adjusters: each built-in against its paper's definition, and the contract around them."""

import json

import numpy as np
import pytest
import torch

import mlbench.models.adjusters as adjusters
from mlbench.conformance import PASS, check_plugin
from mlbench.contracts.registry import PluginError, build_registry, get_registry
from mlbench.foundations.options import OptionError
from mlbench.models.adjusters import HeadStats, find_head, head_stats, to_logits, to_probs

BUILT_INS = {"none", "temperature", "logit-adjust", "tau-norm"}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def inputs(n=400, n_labels=4, seed=0, **overrides):
    """Contract arguments: probabilities away from 0 and 1, targets drawn from them, a long-tailed prior."""
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.02, 0.98, size=(n, n_labels))
    made = dict(val_probs=probs, val_targets=(rng.uniform(size=probs.shape) < probs).astype(np.uint8),
                label_counts=[500, 100, 20, 3][:n_labels], n_samples=1000,
                head=HeadStats(weight_norm=rng.uniform(0.5, 2.0, n_labels), bias=rng.normal(0, 0.5, n_labels)))
    made.update(overrides)
    return made


def simulated(temperatures, n=20_000, seed=0):
    """Logits z ~ N(0, 3^2) whose true probability is sigmoid(z / T_j): the network is miscalibrated by T_j."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, size=(n, len(temperatures)))
    targets = (rng.uniform(size=z.shape) < sigmoid(z / np.asarray(temperatures))).astype(np.uint8)
    return sigmoid(z), targets


# -- logits ------------------------------------------------------------------------------------------
def test_logit_round_trip_is_exact_away_from_the_clip_and_finite_at_0_and_1():
    p = np.random.default_rng(1).uniform(1e-4, 1 - 1e-4, size=(50, 3))
    np.testing.assert_allclose(to_probs(to_logits(p)), p, rtol=0, atol=1e-12)
    z = to_logits(np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(z, [[np.log(1e-7 / (1 - 1e-7)), np.log((1 - 1e-7) / 1e-7)]])
    assert to_probs(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]  # no overflow warning, no NaN


# -- identities --------------------------------------------------------------------------------------
@pytest.mark.parametrize("factory, options", [(adjusters.tau_norm, {"tau": 0.0}),
                                              (adjusters.temperature_scaling, {"temperature": 1.0}),
                                              (adjusters.logit_adjust, {"tau": 0.0})])
def test_the_neutral_setting_of_each_adjuster_is_the_identity(factory, options):
    args = inputs()
    test = np.random.default_rng(2).uniform(0.01, 0.99, size=(100, 4))
    np.testing.assert_allclose(factory(**args, **options).apply(test), test, rtol=0, atol=1e-12)


def test_none_returns_the_probabilities_unchanged_and_records_nothing():
    adjuster = adjusters.none(**inputs())
    test = np.array([[0.0, 1.0, 0.25, 0.5]])
    out = adjuster.apply(test)
    assert np.array_equal(out, test) and out is not test
    assert adjuster.fitted() == {}


def test_a_prior_of_one_half_is_not_shifted_by_logit_adjustment():
    args = inputs(label_counts=[500, 500, 500, 500])
    test = np.random.default_rng(3).uniform(0.01, 0.99, size=(30, 4))
    np.testing.assert_allclose(adjusters.logit_adjust(**args, tau=2.0).apply(test), test, rtol=0, atol=1e-12)


# -- temperature scaling (Guo et al. 2017) -----------------------------------------------------------
def test_a_shared_temperature_is_recovered_from_miscalibrated_outputs():
    probs, targets = simulated([2.5, 2.5, 2.5])
    adjuster = adjusters.temperature_scaling(val_probs=probs, val_targets=targets, label_counts=[1, 1, 1],
                                             n_samples=2)
    record = adjuster.fitted()
    assert record["per_label"] is False and record["fixed"] is False and record["unfitted_labels"] == []
    assert record["temperature"] == pytest.approx(2.5, abs=0.1)
    assert record["val_nll_after"] < record["val_nll_before"]
    # apply is sigmoid(z / T) with the fitted T
    np.testing.assert_allclose(adjuster.apply(probs), sigmoid(to_logits(probs) / record["temperature"]),
                               rtol=0, atol=1e-12)


def test_per_label_temperatures_are_recovered_label_by_label():
    truth = [0.7, 1.5, 4.0]
    probs, targets = simulated(truth, seed=1)
    record = adjusters.temperature_scaling(val_probs=probs, val_targets=targets, label_counts=[1, 1, 1],
                                           n_samples=2, per_label=True).fitted()
    np.testing.assert_allclose(record["temperature"], truth, rtol=0.05)
    assert record["val_nll_after"] <= record["val_nll_before"]
    shared = adjusters.temperature_scaling(val_probs=probs, val_targets=targets, label_counts=[1, 1, 1],
                                           n_samples=2).fitted()
    assert record["val_nll_after"] < shared["val_nll_after"]  # one T cannot fit three


def test_well_calibrated_outputs_keep_a_temperature_near_one_and_never_lose_likelihood():
    probs, targets = simulated([1.0, 1.0], seed=2)
    record = adjusters.temperature_scaling(val_probs=probs, val_targets=targets, label_counts=[1, 1],
                                           n_samples=2).fitted()
    assert record["temperature"] == pytest.approx(1.0, abs=0.05)
    assert record["val_nll_after"] <= record["val_nll_before"]


def test_a_label_with_one_class_on_validation_keeps_temperature_one_and_is_listed():
    probs, targets = simulated([2.5, 2.5, 2.5], n=2000, seed=3)
    targets[:, 1] = 0  # no positive
    targets[:, 2] = 1  # no negative
    adjuster = adjusters.temperature_scaling(val_probs=probs, val_targets=targets, label_counts=[1, 1, 1],
                                             n_samples=2, per_label=True)
    record = adjuster.fitted()
    assert record["unfitted_labels"] == [1, 2]
    assert record["temperature"][1:] == [1.0, 1.0] and record["temperature"][0] == pytest.approx(2.5, abs=0.3)
    np.testing.assert_allclose(adjuster.apply(probs)[:, 1:], probs[:, 1:], rtol=0, atol=1e-12)


def test_a_fixed_temperature_is_applied_without_fitting():
    args = inputs()
    record = adjusters.temperature_scaling(**args, temperature=3.0).fitted()
    assert record["temperature"] == 3.0 and record["fixed"] is True
    test = np.array([[0.9, 0.1, 0.5, 0.7]])
    np.testing.assert_allclose(adjusters.temperature_scaling(**args, temperature=3.0).apply(test),
                               sigmoid(to_logits(test) / 3.0), rtol=0, atol=1e-12)


# -- logit adjustment (Menon et al. 2021) -------------------------------------------------------------
def test_logit_adjustment_shifts_each_logit_by_minus_tau_times_the_prior_log_odds():
    counts, n = [500, 100, 20, 0], 1000
    adjuster = adjusters.logit_adjust(**inputs(label_counts=counts, n_samples=n), tau=1.5)
    test = np.random.default_rng(4).uniform(0.01, 0.99, size=(60, 4))
    prior = np.array([0.5, 0.1, 0.02, 0.5 / n])  # a label never seen gets half an image
    shift = -1.5 * np.log(prior / (1 - prior))
    np.testing.assert_allclose(to_logits(adjuster.apply(test)) - to_logits(test), np.broadcast_to(shift, test.shape),
                               rtol=0, atol=1e-9)
    record = adjuster.fitted()
    np.testing.assert_allclose(record["prior"], prior)
    np.testing.assert_allclose(record["logit_shift"], shift)
    out = adjuster.apply(test)
    # the prior-0.5 label is untouched; the rarer the label, the more its probabilities rise
    np.testing.assert_allclose(out[:, 0], test[:, 0], rtol=0, atol=1e-12)
    assert (out[:, 1:] > test[:, 1:]).all()
    assert shift[1] < shift[2] < shift[3]


def test_logit_adjustment_lowers_a_label_more_common_than_not():
    adjuster = adjusters.logit_adjust(**inputs(label_counts=[900, 500, 500, 500]), tau=1.0)
    test = np.random.default_rng(5).uniform(0.01, 0.99, size=(20, 4))
    assert (adjuster.apply(test)[:, 0] < test[:, 0]).all()


# -- tau-normalisation (Kang et al. 2020) -------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_tau_norm_equals_logits_from_the_rescaled_weight_rows_of_a_real_linear(tau):
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 5).double()
    with torch.no_grad():
        linear.weight.mul_(torch.tensor([0.3, 0.8, 1.0, 2.0, 4.0], dtype=torch.float64)[:, None])
    features = torch.randn(200, 16, dtype=torch.float64)
    with torch.no_grad():
        probs = torch.sigmoid(linear(features)).numpy()
        w = linear.weight
        rescaled = w / torch.linalg.vector_norm(w, dim=1, keepdim=True) ** tau
        expected = torch.sigmoid(features @ rescaled.T + linear.bias).numpy()
    head = head_stats(linear)
    args = inputs(n=probs.shape[0], n_labels=5, head=head, label_counts=[1] * 5, n_samples=2,
                  val_probs=probs, val_targets=(probs > 0.5).astype(np.uint8))
    adjuster = adjusters.tau_norm(**args, tau=tau)
    np.testing.assert_allclose(adjuster.apply(probs), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(adjuster.fitted()["weight_norm"], torch.linalg.vector_norm(w.detach(), dim=1).numpy())


def test_head_stats_reads_norms_and_biases_and_zero_bias_without_one():
    linear = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]]))
    stats = head_stats(linear)
    np.testing.assert_allclose(stats.weight_norm, [5.0, 2.0])
    assert stats.bias.tolist() == [0.0, 0.0] and stats.weight_norm.dtype == np.float64


def test_find_head_finds_the_last_linear_with_one_output_per_label():
    model = torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.ReLU(), torch.nn.Linear(3, 6),
                                torch.nn.Sequential(torch.nn.Linear(6, 3)), torch.nn.Sigmoid())
    assert find_head(model, 3) is model[3][0]
    assert find_head(model, 6) is model[2]
    with pytest.raises(ValueError, match=r"no torch.nn.Linear with 4 outputs.*3, 6, 3 outputs"):
        find_head(model, 4)
    with pytest.raises(ValueError, match="has no linear layer"):
        find_head(torch.nn.Sequential(torch.nn.ReLU()), 2)


def test_tau_norm_without_a_head_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^tau-norm: needs the backbone's classification head") as caught:
        adjusters.tau_norm(**inputs(head=None))
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="3 outputs but val_probs has 4 labels"):
        adjusters.tau_norm(**inputs(head=HeadStats(weight_norm=np.ones(3), bias=np.zeros(3))))


# -- every adjuster but tau-norm keeps each label's ranking ----------------------------------------------
@pytest.mark.parametrize("factory, options", [(adjusters.temperature_scaling, {}),
                                              (adjusters.temperature_scaling, {"per_label": True}),
                                              (adjusters.temperature_scaling, {"temperature": 19.0}),
                                              (adjusters.logit_adjust, {"tau": 2.0}),
                                              (adjusters.tau_norm, {"tau": 1.0})])
def test_adjusters_are_strictly_increasing_per_label_so_rankings_and_auc_are_unchanged(factory, options):
    adjuster = factory(**inputs(), **options)
    test = np.random.default_rng(6).uniform(0.01, 0.99, size=(1000, 4))
    out = adjuster.apply(test)
    for j in range(test.shape[1]):
        order = np.argsort(test[:, j])
        assert (np.diff(out[order, j]) > 0).all(), f"label {j} lost its order"


# -- the contract ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_apply_is_pure_and_fitted_is_json(name):
    registry = build_registry(entry_points=False, plugins=[adjusters])
    adjuster = registry.create("adjuster", name, **inputs())
    test = np.random.default_rng(7).uniform(0.0, 1.0, size=(10, 4))
    before = test.copy()
    out = adjuster.apply(test)
    assert np.array_equal(test, before) and out.shape == test.shape and ((out >= 0) & (out <= 1)).all()
    assert np.array_equal(adjuster.apply(test), out)
    json.dumps(adjuster.fitted(), allow_nan=False)


@pytest.mark.parametrize("factory, options, option", [
    (adjusters.logit_adjust, {"tau": -1}, "tau"),
    (adjusters.logit_adjust, {"tau": "big"}, "tau"),
    (adjusters.tau_norm, {"tau": float("nan")}, "tau"),
    (adjusters.temperature_scaling, {"per_label": "yes"}, "per_label"),
    (adjusters.temperature_scaling, {"temperature": 0}, "temperature"),
    (adjusters.temperature_scaling, {"temperature": "hot"}, "temperature"),
    (adjusters.temperature_scaling, {"temperature": 2.0, "per_label": True}, "per_label"),
])
def test_option_mistakes_are_one_line_naming_the_option(factory, options, option):
    with pytest.raises(OptionError, match=rf": {option} ") as caught:
        factory(**inputs(), **options)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("factory", [adjusters.none, adjusters.temperature_scaling, adjusters.logit_adjust,
                                     adjusters.tau_norm])
@pytest.mark.parametrize("overrides, message", [
    ({"val_targets": np.zeros((400, 3))}, "val_targets has shape"),
    ({"val_targets": np.full((400, 4), 2)}, "only 0 and 1"),
    ({"val_probs": np.full((400, 4), 1.5)}, r"probabilities in \[0, 1\]"),
    ({"val_probs": np.full((400, 4), np.nan)}, r"probabilities in \[0, 1\]"),
    ({"val_probs": np.full(400, 0.5), "val_targets": np.zeros(400)}, "2-D"),
    ({"label_counts": [1, 2, 3]}, "label_counts has shape"),
    ({"label_counts": [1, 2, 3, 2000]}, "label_counts must lie in"),
    ({"n_samples": 0}, "n_samples must be an integer"),
])
def test_mismatched_or_impossible_inputs_raise_value_error(factory, overrides, message):
    with pytest.raises(ValueError, match=message):
        factory(**inputs(**overrides))


def test_apply_refuses_outputs_with_another_number_of_labels_or_not_probabilities():
    adjuster = adjusters.logit_adjust(**inputs())
    with pytest.raises(ValueError, match="has 3 labels, the adjuster was fitted on 4"):
        adjuster.apply(np.full((5, 3), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjuster.apply(np.full((5, 4), -0.1))


def test_the_module_registers_the_built_ins_and_they_pass_conformance():
    registry = build_registry(entry_points=False, plugins=[adjusters])
    assert set(registry.names("adjuster")) == BUILT_INS
    assert registry.get("adjuster", "tau-norm").info.get("needs_head") is True
    report = check_plugin(adjusters.__name__, registry)
    assert report.passed, [(r.name, r.detail) for r in report.results if r.status != PASS]
    with pytest.raises(PluginError, match="tau must be a number >= 0"):
        registry.create("adjuster", "logit-adjust", **inputs(), tau=-2)


def test_the_installed_entry_point_registers_the_four_built_ins():
    registry = get_registry()
    assert BUILT_INS <= set(registry.names("adjuster")), registry.errors
    record = registry.create("adjuster", "temperature", **inputs()).fitted()
    assert set(record) >= {"temperature", "per_label", "val_nll_before", "val_nll_after", "unfitted_labels"}
