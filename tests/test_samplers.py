"""Samplers: the built-ins' algorithms on small hand-made label matrices, and their conformance."""

import types

import numpy as np
import pytest

import mlbench.models.samplers as samplers
from mlbench import hookimpl
from mlbench.conformance import FAIL, PASS, check_plugin, demo_label_matrix
from mlbench.data.imbalance import imbalance_report
from mlbench.contracts.registry import build_registry
from mlbench.models.samplers import minority_majority, ml_ros_indices, ml_rus_indices


def imbalanced(n=600, seed=0):
    """Label 0 on 60% of images, then rarer labels; some images unlabelled."""
    rng = np.random.default_rng(seed)
    prevalence = np.array([0.6, 0.3, 0.1, 0.04, 0.02])
    return (rng.random((n, len(prevalence))) < prevalence).astype(np.uint8)


def test_uniform_is_a_permutation_per_epoch_and_deterministic():
    Y = imbalanced()
    sampler = samplers.uniform(Y, seed=5)
    first, second = sampler.epoch(0), sampler.epoch(1)
    assert first.dtype == np.int64
    assert sorted(first) == list(range(len(Y))) == sorted(second)
    assert not np.array_equal(first, second)
    assert np.array_equal(samplers.uniform(Y, seed=5).epoch(1), second)  # order of calls does not matter
    assert not np.array_equal(samplers.uniform(Y, seed=6).epoch(0), first)


def test_minority_and_majority_labels_follow_irlbl_against_meanir():
    # counts 8, 4, 2, 1 -> IRLbl 1, 2, 4, 8; MeanIR 3.75
    Y = np.zeros((8, 4), dtype=np.uint8)
    Y[:8, 0] = 1
    Y[:4, 1] = 1
    Y[:2, 2] = 1
    Y[:1, 3] = 1
    minority, majority, mean = minority_majority(Y)
    assert mean == pytest.approx(3.75)
    assert minority.tolist() == [2, 3] and majority.tolist() == [0, 1]


def test_ml_ros_clones_minority_images_until_the_bags_reach_meanir():
    Y = imbalanced(2000)
    before = Y.sum(axis=0)
    minority, _, mean = minority_majority(Y)
    out = ml_ros_indices(Y.astype(bool), 10.0, np.random.default_rng(0))
    original, clones = out[: len(Y)], out[len(Y):]
    assert np.array_equal(original, np.arange(len(Y)))
    assert 0 < len(clones) <= 200
    assert Y[clones][:, minority].any(axis=1).all()  # every clone carries a minority label
    after = Y[out].sum(axis=0)
    assert (after >= before).all()
    assert imbalance_report(Y[out], list("abcde")).mean_ir < imbalance_report(Y, list("abcde")).mean_ir
    if len(clones) < 200:  # it stopped early: every minority label got to MeanIR or below
        assert (after.max() / after[minority] <= mean).all()


def test_ml_ros_stops_when_the_bag_reaches_meanir_or_the_percentage_is_spent():
    # counts 900, 90, 10 -> IRLbl 1, 10, 90; MeanIR 33.67: only label 2 is a minority label. Its
    # IRLbl drops to MeanIR or below at 900 / 33.67 = 26.7 -> 27 positives: 17 clones.
    Y = np.zeros((1000, 3), dtype=bool)
    Y[:900, 0] = True
    Y[900:990, 1] = True
    Y[990:, 2] = True
    out = ml_ros_indices(Y, 10.0, np.random.default_rng(1))
    assert len(out) == 1017
    assert set(out[1000:]) <= set(range(990, 1000))
    assert len(ml_ros_indices(Y, 1.0, np.random.default_rng(1))) == 1010  # 1% of 1000 = 10 clones


def test_ml_rus_deletes_the_percentage_and_never_an_image_with_a_minority_label():
    Y = imbalanced(2000, seed=1)
    minority, majority, _ = minority_majority(Y)
    kept = ml_rus_indices(Y.astype(bool), 10.0, np.random.default_rng(0))
    deleted = np.setdiff1d(np.arange(len(Y)), kept)
    assert len(deleted) == 200
    assert not Y[deleted][:, minority].any()
    assert Y[deleted][:, majority].any(axis=1).all()  # deleted images came from majority bags
    assert np.array_equal(kept, np.unique(kept))


def test_resampling_samplers_fixed_per_seed_and_permuted_per_epoch():
    Y = imbalanced()
    ros = samplers.ml_ros(Y, seed=2)
    a, b = ros.epoch(0), ros.epoch(1)
    assert len(a) > len(Y) and np.array_equal(np.sort(a), np.sort(b)) and not np.array_equal(a, b)
    redrawn = samplers.ml_ros(Y, seed=2, resample_each_epoch=True)
    assert not np.array_equal(np.sort(redrawn.epoch(0)), np.sort(redrawn.epoch(1)))  # other clones
    assert np.array_equal(redrawn.epoch(3), samplers.ml_ros(Y, seed=2, resample_each_epoch=True).epoch(3))
    rus = samplers.ml_rus(Y, seed=2, percentage=20)
    assert len(rus.epoch(0)) == len(Y) - int(len(Y) * 0.2)
    assert len(samplers.ml_rus(Y, seed=2, percentage=0).epoch(0)) == len(Y)


def test_class_aware_picks_labels_equally_and_only_images_carrying_them():
    Y = imbalanced(3000)
    sampler = samplers.class_aware(Y, seed=0)
    picked, images = sampler.draws(0)
    assert len(images) == len(Y)
    assert Y[images, picked].all()
    picks = np.bincount(picked, minlength=Y.shape[1])
    assert picks.max() - picks.min() <= 1
    # within a label, its images are visited as a shuffled list: no repeat before all are seen
    rare = np.flatnonzero(picked == 4)
    members = np.flatnonzero(Y[:, 4])
    assert len(np.unique(images[rare][: len(members)])) == min(len(members), len(rare))
    assert len(samplers.class_aware(Y, seed=0, epoch_length=77).epoch(0)) == 77
    assert np.array_equal(samplers.class_aware(Y, seed=0).epoch(2), sampler.epoch(2))


def test_class_aware_leaves_out_labels_without_images():
    Y = imbalanced(300)
    Y[:, 2] = 0
    picked, images = samplers.class_aware(Y, seed=1).draws(0)
    assert 2 not in set(picked) and Y[images, picked].all()


@pytest.mark.parametrize("factory", [samplers.uniform, samplers.ml_ros, samplers.ml_rus, samplers.class_aware])
def test_mistakes_give_one_line_errors(factory):
    with pytest.raises(ValueError, match="2-D"):
        factory(np.ones(5), seed=0)
    with pytest.raises(ValueError, match="only 0 and 1"):
        factory(np.full((4, 2), 2), seed=0)
    with pytest.raises(ValueError, match="seed"):
        factory(np.ones((4, 2)), seed=-1)
    with pytest.raises(ValueError, match="epoch"):
        factory(np.ones((4, 2)), seed=0).epoch(-1)


def test_option_mistakes():
    with pytest.raises(ValueError, match="percentage"):
        samplers.ml_ros(imbalanced(), seed=0, percentage=150)
    with pytest.raises(ValueError, match="epoch_length"):
        samplers.class_aware(imbalanced(), seed=0, epoch_length=0)
    with pytest.raises(ValueError, match="no label has a positive"):
        samplers.class_aware(np.zeros((4, 2)), seed=0)


def test_built_in_samplers_pass_conformance():
    report = check_plugin("samplers")
    assert report.passed, [(r.name, r.detail) for r in report.results if r.status != PASS]
    assert {r.name for r in report.results} == {"uniform", "ml-ros", "ml-rus", "class-aware"}
    ros = next(r for r in report.results if r.name == "ml-ros")
    assert "never-lowers-label-counts" in ros.detail


def _sampler_plugin(name, factory, **info):
    module = types.ModuleType(name)

    def register_samplers(register):
        register("broken", factory, **info)

    module.register_samplers = hookimpl(specname="register_samplers")(register_samplers)
    return module


class Fixed:
    def __init__(self, indices):
        self.indices = indices

    def epoch(self, i):
        return np.asarray(self.indices(i))


@pytest.mark.parametrize("indices, info, reason", [
    (lambda i: np.arange(2000), {}, "expected [0, 999]"),
    (lambda i: np.array([], dtype=np.int64), {}, "no index"),
    (lambda i: np.random.default_rng().permutation(1000), {}, "asked twice"),
    (lambda i: np.arange(10.0), {}, "integer indices"),
    (lambda i: np.arange(500), {"guarantees": ("never-lowers-label-counts",)}, "fewer than in the split"),
    (lambda i: np.arange(1), {"guarantees": ("draws-every-label",)}, "never drawn"),
    (lambda i: np.arange(10), {"guarantees": ("balanced",)}, "unknown guarantees"),
])
def test_broken_samplers_fail_with_the_reason(indices, info, reason):
    def factory(labels, seed):
        if np.asarray(labels).ndim != 2:
            raise ValueError("labels must be 2-D")
        return Fixed(indices)

    registry = build_registry(entry_points=False, plugins=[_sampler_plugin("broken_sampler", factory, **info)])
    (result,) = check_plugin("broken_sampler", registry).results
    assert result.status == FAIL and reason in result.detail, result.detail


def test_a_sampler_accepting_1d_labels_fails():
    registry = build_registry(entry_points=False, plugins=[
        _sampler_plugin("lax_sampler", lambda labels, seed: Fixed(lambda i: np.arange(5)))])
    (result,) = check_plugin("lax_sampler", registry).results
    assert result.status == FAIL and "1-D label vector" in result.detail


def test_demo_label_matrix_has_the_documented_counts():
    from mlbench.conformance import DEMO_LABEL_COUNTS

    assert tuple(demo_label_matrix().sum(axis=0)) == DEMO_LABEL_COUNTS


def test_the_documented_sampler_plugin_passes_conformance():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    section = text[text.index("## 10. Write a sampler"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[: code.index("```")]
    module = types.ModuleType("doc_sampler")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    registry = build_registry(entry_points=False, plugins=[module])
    (result,) = check_plugin("doc_sampler", registry).results
    assert result.status == PASS, result.detail
    assert "never-lowers-label-counts" in result.detail
