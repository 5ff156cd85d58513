"""mlbench plugins test: built-in plugins pass; each broken contract fails with a reason that names it."""

import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import mlbench.conformance as conformance
from mlbench import hookimpl
from mlbench.contracts.benchmark import Benchmark, Recipe
from mlbench.cli import main
from mlbench.conformance import FAIL, PASS, SKIP, ConformanceError, check_plugin
from mlbench.preprocessing import Preprocessed
from mlbench.contracts.registry import build_registry

WIDE = {"COLUMNS": "200"}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def plugin(name: str, **hooks) -> types.ModuleType:
    """An in-process plugin module implementing ``hooks`` (hook name -> function taking register)."""
    module = types.ModuleType(name)
    for hook, body in hooks.items():
        setattr(module, hook, hookimpl(specname=hook)(body))
    return module


def registry_with(*modules):
    return build_registry(plugins=list(modules))


def results(report):
    return {(r.kind, r.name): r for r in report.results}


def test_built_in_plugins_pass():
    for name in ("losses", "ensembles", "padchest", "preprocessors", "explainers"):
        report = check_plugin(name)
        assert report.passed, [(r.name, r.detail) for r in report.results if r.status != PASS]
        assert report.package == "mlbench-imbalanced"
    padchest = results(check_plugin("padchest"))
    assert set(padchest) == {("dataset", "padchest"), ("preprocessor", "padchest-lung-crop"),
                             ("benchmark", "padchest-specific"), ("benchmark", "padchest-general")}


class NanLoss(nn.Module):
    def forward(self, logits, targets):
        return (logits * targets).sum() * float("nan")


class BroadcastingLoss(nn.Module):
    def forward(self, logits, targets):
        return (logits.sigmoid().mean(dim=1) - targets.mean(dim=1)).pow(2).mean()  # any label count "works"


def test_broken_losses_fail_with_the_reason():
    module = plugin("broken_losses", register_losses=lambda register: (
        register("nan", lambda label_counts, n_samples: NanLoss()),
        register("broadcasting", lambda label_counts, n_samples: BroadcastingLoss()),
        register("function", lambda label_counts, n_samples: nn.functional.binary_cross_entropy_with_logits),
        register("divides-by-count", lambda label_counts, n_samples: WeightedByInverse(label_counts)),
    ))
    found = results(check_plugin("broken_losses", registry_with(module)))
    assert found[("loss", "nan")].status == FAIL and "the loss is nan" in found[("loss", "nan")].detail
    assert "gave a value instead of an error" in found[("loss", "broadcasting")].detail
    assert "expected a torch.nn.Module" in found[("loss", "function")].detail
    # 1 / count is infinite for the absent label that small demo splits have
    assert found[("loss", "divides-by-count")].detail == "random logits: the loss is nan"


class WeightedByInverse(nn.Module):
    def __init__(self, counts):
        super().__init__()
        self.register_buffer("w", 1.0 / torch.tensor(counts, dtype=torch.float32))

    def forward(self, logits, targets):
        if logits.shape != targets.shape:
            raise ValueError("shapes differ")
        return nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.w)


def test_backbones_shape_and_options():
    def wrong_width(num_labels, in_chans, pretrained, **options):
        return nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, num_labels + 1))

    def needs_width(num_labels, in_chans, pretrained, *, width, **options):
        return nn.Sequential(nn.Conv2d(in_chans, width, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(width, num_labels))

    module = plugin("odd_backbones", register_backbones=lambda register: (
        register("wrong-width", wrong_width),
        register("needs-width", needs_width),
        register("needs-width-with-example", needs_width, conformance_options={"width": 3}),
    ))
    found = results(check_plugin("odd_backbones", registry_with(module)))
    assert found[("backbone", "wrong-width")].status == FAIL
    assert "expected (2, 5) logits" in found[("backbone", "wrong-width")].detail
    assert found[("backbone", "needs-width")].status == SKIP
    assert "needs option(s) width" in found[("backbone", "needs-width")].detail
    assert found[("backbone", "needs-width-with-example")].status == PASS


class FixedThreshold:
    """Ignores the threshold it is given: its decisions disagree with scores >= threshold."""

    def __init__(self, threshold=0.5):
        pass

    def combine(self, probs):
        scores = np.asarray(probs).mean(axis=0)
        return scores, (scores >= 0.5).astype(np.uint8)


class Soft:
    def __init__(self, threshold=0.5):
        self.threshold = threshold

    def combine(self, probs):
        scores = np.asarray(probs).mean(axis=0)
        return scores, scores  # "predictions" that are not 0/1


def test_ensembles_must_decide_score_at_least_threshold_with_binary_predictions():
    module = plugin("odd_ensembles", register_ensembles=lambda register: (
        register("fixed", FixedThreshold), register("soft", Soft)))
    found = results(check_plugin("odd_ensembles", registry_with(module)))
    assert "threshold 0.3: predictions differ from scores >= threshold" in found[("ensemble", "fixed")].detail
    assert "predictions are not all 0 or 1" in found[("ensemble", "soft")].detail


class OutsideBox:
    def __init__(self, size=224):
        self.size = size

    def config(self):
        return {"size": self.size}

    def __call__(self, image):
        h, w = image.shape
        return Preprocessed(np.zeros((self.size, self.size), np.float32), (0, 0, w + 5, h), "outside")


class Unscaled(OutsideBox):
    def __call__(self, image):
        h, w = image.shape
        return Preprocessed(np.full((self.size, self.size), 255.0, np.float32), (0, 0, w, h), "unscaled")


def test_preprocessors_range_and_box():
    module = plugin("odd_pre", register_preprocessors=lambda register: (
        register("outside", OutsideBox), register("unscaled", Unscaled)))
    found = results(check_plugin("odd_pre", build_registry(plugins=[module])))
    assert "does not lie inside" in found[("preprocessor", "outside")].detail
    assert "expected [0, 1]" in found[("preprocessor", "unscaled")].detail


def test_benchmarks_name_registered_plugins_and_free_labels():
    recipe = Recipe(backbones=("resnet10t",), loss="no-such-loss", ensembles=("ctp",))

    def bad_bench():
        return Benchmark(name="bad", version="1", dataset="padchest", labels=("cardiomegaly", "normal"),
                         targets=lambda f: {"cardiomegaly"} & set(f), recipe=recipe, demo_recipe=recipe)

    def reserved():
        good = Recipe(backbones=("resnet10t",), pretrained=False)
        return Benchmark(name="reserved", version="1", dataset="padchest", labels=("__global__", "normal"),
                         targets=lambda f: set(), recipe=good, demo_recipe=good)

    def outside():
        good = Recipe(backbones=("resnet10t",), pretrained=False)
        return Benchmark(name="outside", version="1", dataset="padchest", labels=("normal",),
                         targets=lambda f: {"something else"}, recipe=good, demo_recipe=good)

    module = plugin("odd_bench", register_benchmarks=lambda register: (
        register("bad", bad_bench), register("reserved", reserved), register("outside", outside)))
    found = results(check_plugin("odd_bench", registry_with(module)))
    assert "recipe loss 'no-such-loss'" in found[("benchmark", "bad")].detail
    assert "clash with reserved names" in found[("benchmark", "reserved")].detail
    assert ("targets() returned labels outside the benchmark: ['something else']"
            in found[("benchmark", "outside")].detail)


def test_datasets_without_a_demo_are_skipped_and_bad_records_fail():
    class NoDemo:
        def read(self, source):
            raise AssertionError("not called")

    class NoColumns:
        def write_demo(self, out_dir, seed=0, **options):
            from mlbench.data import DataSource

            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "x.csv").write_text("a\n1\n")
            return DataSource(out_dir / "x.csv", out_dir)

        def read(self, source):
            import pandas as pd

            from mlbench.data import Records

            frame = pd.DataFrame({"image_id": ["a"], "patient_id": ["p"], "image_path": ["/nonexistent.png"],
                                  "findings": [("x",)]})
            return Records(frame=frame, kind="toy", source_sha256="0" * 64)

    module = plugin("odd_data", register_datasets=lambda register: (
        register("no-demo", NoDemo), register("no-files", NoColumns)))
    found = results(check_plugin("odd_data", registry_with(module)))
    assert found[("dataset", "no-demo")].status == SKIP and "no demo corpus" in found[("dataset", "no-demo")].detail
    assert "image paths do not exist" in found[("dataset", "no-files")].detail


def test_an_explainer_with_wrong_shapes_fails():
    from mlbench.explainers import Explanation

    class Flat:
        def explain(self, models, images, labels):
            m, b, k = len(models), images.shape[0], len(labels)
            return Explanation(torch.zeros(m, b, k, 8, 8), torch.zeros(m, b, k), tuple(labels))

    module = plugin("odd_explainer", register_explainers=lambda register: register("flat", Flat))
    found = results(check_plugin("odd_explainer", registry_with(module)))
    assert "expected (2, 2, 2, 32, 32)" in found[("explainer", "flat")].detail


def test_unknown_and_unloadable_plugins_are_named():
    def broken(register):
        raise RuntimeError("boom")

    module = plugin("explodes", register_losses=broken)
    with pytest.raises(ConformanceError, match="failed to load: .*boom"):
        check_plugin("explodes", registry_with(module))
    with pytest.raises(ConformanceError, match="no plugin named 'nope'.*losses"):
        check_plugin("nope")


def test_cli_exit_code_follows_the_verdict(monkeypatch):
    ok = CliRunner().invoke(main, ["plugins", "test", "ensembles"], env=WIDE)
    assert ok.exit_code == 0, ok.output
    assert "ptc-mode" in ok.output and "3 passed, 0 failed, 0 skipped" in ok.output
    module = plugin("broken_losses", register_losses=lambda register: register(
        "nan", lambda label_counts, n_samples: NanLoss()))
    monkeypatch.setattr(conformance, "get_registry", lambda: registry_with(module))
    bad = CliRunner().invoke(main, ["plugins", "test", "broken_losses", "--json"])
    assert bad.exit_code == 1
    assert '"status": "fail"' in bad.output and "the loss is nan" in bad.output
    missing = CliRunner().invoke(main, ["plugins", "test", "nope"])
    assert missing.exit_code == 1 and "no plugin named 'nope'" in missing.output
