"""mlbench.testing: a plugin's conformance checks as parametrised pytest tests that fail or skip with the reason."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
from torch import nn

import mlbench.conformance as conformance
from mlbench import hookimpl
from mlbench.conformance import ConformanceError
from mlbench.contracts.registry import PluginError, build_registry
from mlbench.testing import checks_for, parametrize_with_checks

pytest_plugins = ["pytester"]

# A plugin with one loss per outcome, and one whose hook raises; the test file pytester runs.
BROKEN_PLUGIN_TESTS = '''
import types

import torch
from torch import nn

from mlbench import hookimpl
from mlbench.contracts.registry import build_registry
from mlbench.testing import parametrize_with_checks

torch.set_num_threads(1)


class NanLoss(nn.Module):
    def forward(self, logits, targets):
        return (logits * targets).sum() * float("nan")


class Bce(nn.Module):
    def forward(self, logits, targets):
        return nn.functional.binary_cross_entropy_with_logits(logits, targets)


def losses(register):
    register("nan-loss", lambda label_counts, n_samples: NanLoss())
    register("bce", lambda label_counts, n_samples: Bce())
    register("needs-width", lambda label_counts, n_samples, *, width: Bce())


def explode(register):
    raise RuntimeError("boom at registration")


def plugin(name, hook, body):
    module = types.ModuleType(name)
    setattr(module, hook, hookimpl(specname=hook)(body))
    return module


REGISTRY = build_registry(entry_points=False, plugins=[plugin("broken_plugin", "register_losses", losses),
                                                       plugin("exploding", "register_losses", explode)])


@parametrize_with_checks(["broken_plugin", "exploding"], registry=REGISTRY)
def test_conformance(check):
    check()
'''


class Bce(nn.Module):
    def forward(self, logits, targets):
        return nn.functional.binary_cross_entropy_with_logits(logits, targets)


def plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, body in hooks.items():
        setattr(module, hook, hookimpl(specname=hook)(body))
    return module


@pytest.fixture()
def registry():
    return build_registry(entry_points=False, plugins=[plugin("tiny_losses", register_losses=lambda register: (
        register("bce-a", lambda label_counts, n_samples: Bce()),
        register("bce-b", lambda label_counts, n_samples: Bce()),
    ))])


def test_a_broken_plugin_fails_its_tests_with_the_reason(pytester):
    pytester.makepyfile(test_broken_plugin=BROKEN_PLUGIN_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rfEsp", "-v")
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*::test_conformance?loss:nan-loss-check_loss? FAILED*",
        "*::test_conformance?loss:bce-check_loss? PASSED*",
        "*::test_conformance?loss:needs-width-check_loss? SKIPPED*",
        "*::test_conformance?plugin:exploding-loads? FAILED*",
    ])
    assert "loss:nan-loss-check_loss: random logits: the loss is nan" in out
    assert "plugin:exploding-loads: register_losses failed: RuntimeError('boom at registration')" in out
    assert "loss:needs-width-check_loss: the factory needs option(s) width beyond the contract" in out
    assert "Traceback" not in out and "def __call__" not in out  # the reason, not mlbench's internals


def test_ids_are_kind_name_check_and_each_item_once(registry):
    checks = checks_for(["loss:bce-a", "bce-a", "tiny_losses", "loss"], registry)
    assert [c.id for c in checks] == ["loss:bce-a-check_loss", "loss:bce-b-check_loss"]
    assert checks_for("bce-b", registry)[0].id == "loss:bce-b-check_loss"  # one name without a list
    mark = parametrize_with_checks(["bce-b"], registry=registry)
    assert mark.args[0] == "check" and [c.id for c in mark.args[1]] == ["loss:bce-b-check_loss"]
    assert mark.kwargs["ids"] == ["loss:bce-b-check_loss"]
    assert checks[0]().status == conformance.PASS


def test_the_command_and_the_module_share_one_list_of_checks(registry, monkeypatch):
    def check_loss_strictly(entry, ctx):
        raise conformance.Failed("stricter today")

    monkeypatch.setitem(conformance.CHECKS, "loss", check_loss_strictly)
    (check,) = checks_for(["bce-a"], registry)
    assert check.id == "loss:bce-a-check_loss_strictly"
    with pytest.raises(pytest.fail.Exception, match="loss:bce-a-check_loss_strictly: stricter today"):
        check()
    report = conformance.check_plugin("tiny_losses", registry)
    assert {r.detail for r in report.results} == {"stricter today"}


@pytest.mark.parametrize(("items", "error", "message"), [
    (["no-such-item"], ConformanceError, "nothing registered is named 'no-such-item'; expected an item name"),
    (["losses:bce-a"], ConformanceError, "'losses:bce-a' names kind 'losses'; expected one of adjuster, backbone,"),
    (["loss:no-such"], PluginError, "no loss named 'no-such'; registered losses: bce-a, bce-b"),
    ([], ConformanceError, "no items given; expected an item name"),
    ([3], ConformanceError, "got int 3; expected an item name"),
])
def test_a_selector_that_names_nothing_is_one_line(registry, items, error, message):
    with pytest.raises(error) as caught:
        parametrize_with_checks(items, registry=registry)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_import_mlbench_needs_no_pytest():
    code = ("import sys, mlbench, mlbench.conformance, mlbench.contracts.registry\n"
            "assert 'pytest' not in sys.modules, sorted(m for m in sys.modules if 'pytest' in m)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
