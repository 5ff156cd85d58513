"""``mlbench.testing``: a plugin's conformance checks as pytest tests, for plugin authors.

    from mlbench.testing import parametrize_with_checks

    @parametrize_with_checks(["focal", "asl"])   # or "loss:focal", a plugin's entry-point name, a kind
    def test_conformance(check):
        check()

``assert_one_error(result, *names)`` checks a CLI mistake the way mlbench's own tests do: one
``Error:`` line naming the option, file or field, a non-zero exit other than 70 (a bug's), no
traceback.

One test per registered item, with the id ``kind:name-check`` (``loss:focal-check_loss``). The
checks are the ones ``mlbench plugins test`` runs (``mlbench.conformance.CHECKS``): a broken
contract fails the test with the reason, an item that cannot be exercised here is skipped with
the reason, a plugin that failed to load fails as ``plugin:NAME-loads``.

pytest is imported here only: ``import mlbench`` does not need it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from mlbench.conformance import FAIL, SKIP, ConformanceError, ItemResult, check_name, load_failures, run_alone
from mlbench.contracts.registry import KINDS, PluginEntry, Registry, get_registry

__all__ = ["Check", "assert_one_error", "checks_for", "parametrize_with_checks"]

FORMS = "an item name ('focal'), 'kind:name' ('loss:focal'), a plugin's entry-point name or a kind ('loss')"


@dataclass(frozen=True, eq=False)
class Check:
    """One registered item's conformance check as a pytest parameter: call it inside the test."""

    id: str
    registry: Registry
    entry: PluginEntry | None = None
    load_error: ItemResult | None = None  # set instead of ``entry`` for a plugin that failed to load

    def __call__(self) -> ItemResult:
        """Run the check; pytest.fail / pytest.skip with the reason, else the passing result."""
        result = self.load_error if self.load_error is not None else run_alone(self.entry, self.registry)
        if result.status == FAIL:
            pytest.fail(f"{self.id}: {result.detail}", pytrace=False)
        if result.status == SKIP:
            pytest.skip(f"{self.id}: {result.detail}")
        return result

    def __repr__(self) -> str:
        return f"Check({self.id})"


def item_check(entry: PluginEntry, registry: Registry) -> Check:
    return Check(f"{entry.kind}:{entry.name}-{check_name(entry.kind)}", registry, entry=entry)


def resolve(item: object, registry: Registry) -> list[Check]:
    """The checks one selector names (see ``FORMS``); ConformanceError when it names nothing."""
    if not isinstance(item, str) or not item:
        raise ConformanceError(f"parametrize_with_checks: got {type(item).__name__} {item!r}; expected {FORMS}")
    kind, qualified, name = item.partition(":")
    if qualified:
        if kind not in KINDS:
            raise ConformanceError(f"parametrize_with_checks: '{item}' names kind '{kind}'; expected one of "
                                   f"{', '.join(sorted(KINDS))}")
        return [item_check(registry.get(kind, name), registry)]  # PluginError names what is registered
    entries = registry.entries()
    named = [e for e in entries if e.name == item]
    if named:
        return [item_check(e, registry) for e in named]
    failures = load_failures(item, registry)
    of_plugin = [e for e in entries if e.plugin == item]
    if failures or of_plugin:
        loads = [Check(f"plugin:{item}-loads", registry, load_error=ItemResult(
            "plugin", item, FAIL, "; ".join(f.detail for f in failures)))] if failures else []
        return loads + [item_check(e, registry) for e in of_plugin]
    of_kind = [e for e in entries if e.kind == item]
    if of_kind:
        return [item_check(e, registry) for e in of_kind]
    hint = ""
    if registry.errors:
        first = registry.errors[0]
        hint = f"; {len(registry.errors)} plugin load error(s), first: plugin '{first.plugin}': {first.message}"
    raise ConformanceError(f"parametrize_with_checks: nothing registered is named '{item}'; expected {FORMS} "
                           f"(`mlbench plugins` lists them){hint}")


def checks_for(items: str | Iterable[str], registry: Registry | None = None) -> list[Check]:
    """The checks ``items`` select, each once, in the order given."""
    registry = registry or get_registry()
    selectors = [items] if isinstance(items, str) else list(items)
    if not selectors:
        raise ConformanceError(f"parametrize_with_checks: no items given; expected {FORMS}")
    found: dict[str, Check] = {}
    for item in selectors:
        for check in resolve(item, registry):
            found.setdefault(check.id, check)
    return list(found.values())


def parametrize_with_checks(items: str | Iterable[str], *, registry: Registry | None = None):
    """``pytest.mark.parametrize("check", ...)`` over the conformance checks of ``items``.

    ``items``: names ('focal'), kind-qualified names ('loss:focal'), plugin entry-point names
    (every item that plugin registers, and its load errors) or kinds ('loss'). ``registry``: the
    installed plugins unless given (an in-process one from ``mlbench.contracts.registry.build_registry``).
    """
    checks = checks_for(items, registry)
    return pytest.mark.parametrize("check", checks, ids=[c.id for c in checks])


def assert_one_error(result, *names: str) -> str:
    """A command's mistake (a click ``Result``): non-zero exit other than 70, no traceback, the output
    ending with exactly one ``Error:`` line that names each of ``names`` (case-insensitive); returns it."""
    output = result.output
    tail = "\n".join(output.strip().splitlines()[-12:])  # enough to see the failure, not a whole report
    assert "Traceback" not in output, tail
    assert result.exit_code not in (0, 70), f"exit {result.exit_code}: {tail}"
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), tail
    assert sum(line.startswith("Error:") for line in lines) == 1, tail
    last = lines[-1]
    for name in names:
        assert name.lower() in last.lower(), f"{name!r} not named in: {last}"
    return last
