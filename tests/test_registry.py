"""Plugin discovery: in-process registration, real entry points, clashes and broken plugins."""

import json
import subprocess
import sys
import textwrap
import types

import pytest

from mlbench import hookimpl
from mlbench.contracts.registry import KINDS, PluginError, build_registry


def _plugin(name, **hooks):
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, hookimpl(fn))
    return module


def test_in_process_plugin_registers_a_loss():
    def register_losses(register):
        register("l1", lambda label_counts, n_samples: "an L1 loss", summary="test loss")

    registry = build_registry(entry_points=False, plugins=[_plugin("p1", register_losses=register_losses)])
    assert registry.names("loss") == ["l1"]
    entry = registry.get("loss", "l1")
    assert entry.plugin == "p1" and entry.info["summary"] == "test loss"
    assert registry.create("loss", "l1", label_counts=[1], n_samples=2) == "an L1 loss"


def test_name_clash_names_both_plugins_and_keeps_the_others():
    def one(register):
        register("same", lambda: 1)
        register("only-one", lambda: 1)

    def two(register):
        register("same", lambda: 2)

    registry = build_registry(entry_points=False, plugins=[_plugin("alpha", register_ensembles=one),
                                                           _plugin("beta", register_ensembles=two)])
    assert registry.names("ensemble") == ["only-one"]
    assert any("alpha" in e.message and "beta" in e.message for e in registry.errors)
    with pytest.raises(PluginError, match="alpha.*beta"):
        registry.get("ensemble", "same")


def test_broken_hook_does_not_take_others_down():
    def broken(register):
        raise RuntimeError("boom")

    def fine(register):
        register("ok", lambda **kw: "ok")

    registry = build_registry(entry_points=False, plugins=[_plugin("bad", register_losses=broken),
                                                           _plugin("good", register_losses=fine)])
    assert registry.names("loss") == ["ok"]
    assert [e.plugin for e in registry.errors] == ["bad"] and "boom" in registry.errors[0].message


def test_unknown_name_lists_what_exists():
    registry = build_registry(entry_points=False, plugins=[_plugin("p", register_losses=lambda register: register("a", dict))])
    with pytest.raises(PluginError, match="no loss named 'zzz'; registered losses: a"):
        registry.get("loss", "zzz")


def test_factory_failure_names_the_plugin():
    def register_losses(register):
        register("needs-x", lambda x: x)

    registry = build_registry(entry_points=False, plugins=[_plugin("strict", register_losses=register_losses)])
    with pytest.raises(PluginError, match="loss 'needs-x' from plugin 'strict'"):
        registry.create("loss", "needs-x", y=1)


def test_builtin_plugins_cover_every_kind():
    registry = build_registry()
    assert not [e for e in registry.errors if e.package == "mlbench-imbalanced"], registry.errors
    for kind in KINDS:
        assert registry.names(kind), f"no built-in {kind}"


def _install_fake_distribution(site, dist, module, source, version="0.3.0"):
    """A distribution on sys.path exactly as pip leaves one: a module plus dist-info with entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[mlbench]\n{module} = {module}\n")


@pytest.fixture
def site_with_plugins(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install_fake_distribution(site, "mlbench-test-plugin", "mlbench_test_plugin", """
        from mlbench import hookimpl

        @hookimpl
        def register_losses(register):
            register("test-l2", lambda label_counts, n_samples: None, summary="from an installed package")
    """)
    _install_fake_distribution(site, "mlbench-broken-plugin", "mlbench_broken_plugin", """
        raise ImportError("this plugin is broken on purpose")
    """, version="9.9")
    return site


def test_entry_point_discovery_and_broken_package(site_with_plugins, monkeypatch):
    monkeypatch.syspath_prepend(str(site_with_plugins))
    registry = build_registry()
    entry = registry.get("loss", "test-l2")
    assert (entry.plugin, entry.package, entry.version) == ("mlbench_test_plugin", "mlbench-test-plugin", "0.3.0")
    broken = [e for e in registry.errors if e.plugin == "mlbench_broken_plugin"]
    assert broken and broken[0].package == "mlbench-broken-plugin" and "broken on purpose" in broken[0].message
    assert "weighted-bce" in registry.names("loss")  # the built-ins still load


def test_cli_plugins_json_lists_installed_and_reports_broken(site_with_plugins):
    env_path = f"{site_with_plugins}"
    out = subprocess.run([sys.executable, "-m", "mlbench", "plugins", "--json"], capture_output=True, text=True,
                         env={**__import__("os").environ, "PYTHONPATH": env_path}, check=True)
    rows = json.loads(out.stdout)
    assert {"plugin", "package", "version", "kind", "name"} <= set(rows[0])
    assert any(r["name"] == "test-l2" and r["package"] == "mlbench-test-plugin" for r in rows)
    assert any(r["kind"] == "error" and r["plugin"] == "mlbench_broken_plugin" for r in rows)
    kinds = {r["kind"] for r in rows}
    assert set(KINDS) <= kinds


def test_only_plugins_env_restricts_loading(site_with_plugins, monkeypatch):
    monkeypatch.syspath_prepend(str(site_with_plugins))
    monkeypatch.setenv("MLBENCH_PLUGINS", "mlbench_test_plugin,losses")
    registry = build_registry()
    assert set(registry.names("loss")) >= {"test-l2", "weighted-bce"}
    assert registry.names("ensemble") == [] and not registry.errors
