"""The registry cache: listing plugins and reading boards import no plugin module (issue 24, part 2).

The subprocess tests install ``tests/data/plugins/torch_at_import`` (a plugin whose module imports
torch at the top) by putting its folder on ``PYTHONPATH`` and ask the child which modules it
imported. The in-process tests install light plugins into a temporary site folder and build the
registry twice: the second build must use the cache, or must not, as the case says.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlbench.contracts.registry import LazyFactory, PluginError, build_registry, cache_path

REPO = Path(__file__).resolve().parents[1]
TORCH_PLUGIN = REPO / "tests" / "data" / "plugins" / "torch_at_import"
WATCHED = ("torch", "mlbench_torch_at_import")
CLI_CHILD = f"""
import json, sys
from mlbench.cli import main
try:
    main.main(args=sys.argv[1:], prog_name="mlbench", standalone_mode=False)
finally:
    print("\\nLOADED=" + json.dumps(sorted(m for m in {WATCHED!r} if m in sys.modules)))
"""


# ---------------------------------------------------------------- subprocesses, the torch plugin

@pytest.fixture(scope="module")
def torch_site(tmp_path_factory):
    """The torch plugin installed (a copy of its site folder), an empty cache folder and working folder."""
    root = tmp_path_factory.mktemp("torch-site")
    shutil.copytree(TORCH_PLUGIN, root / "site")
    (root / "work").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MLBENCH_PLUGINS", "MLBENCH_LEADERBOARDS")}
    env.update(PYTHONPATH=str(root / "site"), MLBENCH_CACHE_DIR=str(root / "cache"), COLUMNS="200")
    return {"env": env, "cwd": root / "work", "cache": root / "cache"}


def _child(site, *argv: str) -> tuple[str, list[str]]:
    done = subprocess.run([sys.executable, *argv], cwd=site["cwd"], env=site["env"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    marker = [line for line in done.stdout.splitlines() if line.startswith("LOADED=")]
    assert marker, done.stdout + done.stderr
    return done.stdout, json.loads(marker[-1].removeprefix("LOADED="))


def _cli(site, *args: str) -> tuple[str, list[str]]:
    return _child(site, "-c", CLI_CHILD, *args)


def test_reads_import_neither_the_plugin_nor_torch(torch_site):
    out, _ = _cli(torch_site, "plugins")  # the first build imports every plugin and writes the cache
    assert "linear-probe" in out and "mlbench-torch-at-import" in out
    assert list(torch_site["cache"].glob("registry-*.json"))

    out, loaded = _cli(torch_site, "plugins", "--json")
    assert loaded == []
    rows = json.loads(out[:out.rindex("LOADED=")])
    probe = [r for r in rows if r["name"] == "linear-probe"]
    assert probe == [{"plugin": "torch_at_import", "package": "mlbench-torch-at-import", "version": "0.1.0",
                      "kind": "backbone", "name": "linear-probe",
                      "summary": "Pooling + one linear layer (a test plugin)"}]
    assert {"weighted-bce", "padchest-specific", "ctp"} <= {r["name"] for r in rows}
    assert not [r for r in rows if r["kind"] == "error"], rows

    out, loaded = _cli(torch_site, "leaderboard", "show", "padchest-specific", "--metric", "auc")
    assert loaded == [] and "padchest-specific: __global__ auc" in out

    api = f"""
import json, sys, mlbench
names = [p["name"] for p in mlbench.list_plugins("backbone")]
print("NAMES=" + json.dumps(names))
print("LOADED=" + json.dumps(sorted(m for m in {WATCHED!r} if m in sys.modules)))
"""
    out, loaded = _child(torch_site, "-c", api)
    assert loaded == [] and "linear-probe" in out


# What a read must not pay for either: pandas (the pandas read's own cost) and scikit-learn (over a second).
READ_HEAVY = (*WATCHED, "pandas", "sklearn", "pyarrow.dataset")
READ_CHILD = f"""
import json, sys
from mlbench.cli import main
try:
    main.main(args=sys.argv[1:], prog_name="mlbench", standalone_mode=False)
finally:
    print("\\nLOADED=" + json.dumps(sorted(m for m in {READ_HEAVY!r} if m in sys.modules)))
"""


@pytest.mark.parametrize("args", [("leaderboard", "show", "padchest-specific", "--metric", "auc"),
                                  ("leaderboard", "show", "padchest-general", "--label", "cardiomegaly"),
                                  ("plugins",), ("--help",)])
def test_reads_with_the_torch_plugin_import_no_plugin_torch_pandas_or_sklearn(torch_site, args):
    _cli(torch_site, "plugins")  # the cache exists, whatever ran first
    out, loaded = _child(torch_site, "-c", READ_CHILD, *args)
    assert loaded == [], (args, loaded)
    assert ("best first" in out) if args[0] == "leaderboard" else ("plugins" in out)


def test_calling_a_factory_imports_its_plugin(torch_site):
    _cli(torch_site, "plugins")  # the cache exists, whatever ran first
    code = f"""
import json, sys
from mlbench.contracts.registry import get_registry
registry = get_registry()
entry = registry.get("backbone", "linear-probe")
before = sorted(m for m in {WATCHED!r} if m in sys.modules)
import inspect
params = sorted(inspect.signature(entry.factory).parameters)
model = registry.create("backbone", "linear-probe", num_labels=3, in_chans=1, pretrained=False)
import torch
shape = list(model(torch.zeros(2, 1, 8, 8)).shape)
print("RESULT=" + json.dumps({{"before": before, "params": params, "shape": shape}}))
print("LOADED=" + json.dumps(sorted(m for m in {WATCHED!r} if m in sys.modules)))
"""
    out, loaded = _child(torch_site, "-c", code)
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT="))[len("RESULT="):])
    assert result["before"] == []
    assert result["params"] == ["in_chans", "num_labels", "options", "pretrained"]  # the real signature
    assert result["shape"] == [2, 3] and loaded == sorted(WATCHED)


# ---------------------------------------------------------------- in-process, light plugins

PROBE = """
from mlbench import hookimpl
from mlbench.contracts.registry import LazyFactory

HOOK_RUNS = []


def make_loss(label_counts, n_samples, gamma: float = 2.0):
    return ("loss", gamma)


@hookimpl
def register_losses(register):
    HOOK_RUNS.append(1)
    register("{name}-loss", make_loss, summary="a plain function",
             guarantees=("a", "b"), conformance_options={{"gamma": 1.5, "path": [1, 2]}})
    register("{name}-bce", LazyFactory("mlbench.models.losses:plain_bce"), summary="a lazy factory")
"""


def _install(site: Path, dist: str, module: str, source: str, version: str = "0.1.0") -> Path:
    """A distribution as pip leaves one: the module plus a dist-info naming it in the mlbench group."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[mlbench]\n{module} = {module}\n")
    return info


@pytest.fixture
def site(tmp_path, monkeypatch, request):
    """A site folder on sys.path with one light plugin (a module name of its own per test)."""
    folder = tmp_path / "site"
    folder.mkdir()
    module = f"lazy_probe_{request.node.name.split('[')[0].removeprefix('test_')[:40]}"
    _install(folder, "mlbench-lazy-probe", module, PROBE.format(name=module))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("MLBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLBENCH_PLUGINS", raising=False)
    added = []
    yield {"folder": folder, "module": module, "added": added}
    for name in [module, *added]:
        sys.modules.pop(name, None)


def _build(site, **kwargs):
    """A registry built as a fresh process would: the plugin modules not imported yet."""
    for name in [site["module"], *site["added"]]:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return build_registry(**kwargs)


def test_a_current_cache_imports_no_plugin_module(site):
    module = site["module"]
    first = _build(site)
    assert module in sys.modules and cache_path().is_file()
    cold = first.get("loss", f"{module}-loss")

    warm = _build(site)
    assert module not in sys.modules
    entry = warm.get("loss", f"{module}-loss")
    assert (entry.plugin, entry.package, entry.version) == (module, "mlbench-lazy-probe", "0.1.0")
    assert entry.info == cold.info == {"summary": "a plain function", "guarantees": ("a", "b"),
                                       "conformance_options": {"gamma": 1.5, "path": [1, 2]}}
    assert [e.as_dict() for e in warm.entries()] == [e.as_dict() for e in first.entries()]
    lazy = warm.get("loss", f"{module}-bce").factory
    assert type(lazy) is LazyFactory and lazy.target == "mlbench.models.losses:plain_bce"
    assert isinstance(entry.factory, LazyFactory) and module not in sys.modules
    assert warm.create("loss", f"{module}-loss", label_counts=[1], n_samples=2, gamma=3.0) == ("loss", 3.0)
    assert module in sys.modules and sys.modules[module].HOOK_RUNS == [1]


def test_a_changed_plugin_file_is_imported_again(site):
    module = site["module"]
    _build(site)
    path = site["folder"] / f"{module}.py"
    path.write_text(path.read_text() + textwrap.dedent(f"""

        @hookimpl
        def register_ensembles(register):
            register("{module}-vote", lambda **kw: "vote")
    """))
    changed = _build(site)
    assert module in sys.modules and f"{module}-vote" in changed.names("ensemble")
    again = _build(site)
    assert module not in sys.modules and f"{module}-vote" in again.names("ensemble")
    assert again.create("ensemble", f"{module}-vote") == "vote"


def test_a_new_version_is_seen(site):
    module = site["module"]
    _build(site)
    old = site["folder"] / "mlbench_lazy_probe-0.1.0.dist-info"
    new = old.rename(site["folder"] / "mlbench_lazy_probe-0.2.0.dist-info")  # what pip install -U leaves
    (new / "METADATA").write_text("Metadata-Version: 2.1\nName: mlbench-lazy-probe\nVersion: 0.2.0\n")
    assert _build(site).get("loss", f"{module}-loss").version == "0.2.0"
    (new / "METADATA").write_text("Metadata-Version: 2.1\nName: mlbench-lazy-probe\nVersion: 0.10.0\n")  # by hand
    assert _build(site).get("loss", f"{module}-loss").version == "0.10.0"
    assert _build(site).get("loss", f"{module}-loss").version == "0.10.0" and module not in sys.modules


def _valid_but_wrong(text: str) -> str:
    data = json.loads(text)
    record = next(iter(data["plugins"].values()))
    record["items"][0]["kind"] = "bogus"
    return json.dumps(data)


@pytest.mark.parametrize("spoil", [
    lambda text: "{not json",
    lambda text: text[: len(text) // 2],
    lambda text: json.dumps({**json.loads(text), "format": "someone-else/9"}),
    _valid_but_wrong,
    lambda text: json.dumps([1, 2, 3]),
], ids=["garbage", "truncated", "foreign-format", "bad-item", "not-an-object"])
def test_a_corrupt_or_foreign_cache_is_ignored_and_rebuilt(site, spoil):
    module = site["module"]
    expected = [e.as_dict() for e in _build(site).entries()]
    path = cache_path()
    path.write_text(spoil(path.read_text()))
    rebuilt = _build(site)
    assert module in sys.modules  # nothing taken from the spoiled file
    assert [e.as_dict() for e in rebuilt.entries()] == expected and not rebuilt.errors
    assert [e.as_dict() for e in _build(site).entries()] == expected and module not in sys.modules  # rewritten


def test_a_cache_file_anyone_may_write_is_not_trusted(site):
    _build(site)
    os.chmod(cache_path(), 0o666)
    _build(site)
    assert site["module"] in sys.modules


def test_an_unwritable_cache_folder_falls_back_to_importing(site, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MLBENCH_CACHE_DIR", str(blocker / "cache"))
    for _ in range(2):
        registry = _build(site)
        assert site["module"] in sys.modules and not registry.errors
        assert f"{site['module']}-loss" in registry.names("loss")


def test_only_plugins_still_restricts(site, monkeypatch):
    module = site["module"]
    monkeypatch.setenv("MLBENCH_PLUGINS", "losses")
    restricted = _build(site)  # a cold cache built without the probe
    assert module not in sys.modules and not restricted.errors
    assert f"{module}-loss" not in restricted.names("loss") and "weighted-bce" in restricted.names("loss")
    monkeypatch.delenv("MLBENCH_PLUGINS")
    assert f"{module}-loss" in _build(site).names("loss") and module in sys.modules  # recorded now
    monkeypatch.setenv("MLBENCH_PLUGINS", f"{module},nope")
    only = _build(site)
    assert module not in sys.modules and only.names("loss") == [f"{module}-bce", f"{module}-loss"]
    assert only.names("backbone") == [] and [e.plugin for e in only.errors] == ["nope"]


def test_clashes_and_load_errors_survive_the_cache(site):
    module = site["module"]
    rival = f"{module}_rival"
    site["added"] += [rival, f"{module}_broken"]
    _install(site["folder"], "mlbench-rival", rival, f"""
        from mlbench import hookimpl

        @hookimpl
        def register_losses(register):
            register("{module}-loss", lambda **kw: "rival")
    """)
    _install(site["folder"], "mlbench-broken", f"{module}_broken", 'raise ImportError("broken on purpose")\n')
    for _ in range(2):  # cold, then warm
        registry = _build(site)
        assert f"{module}-loss" not in registry.names("loss")
        with pytest.raises(PluginError, match=f"'{module}'.*'{rival}'|'{rival}'.*'{module}'"):
            registry.get("loss", f"{module}-loss")
        broken = [e for e in registry.errors if e.plugin == f"{module}_broken"]
        assert broken and "broken on purpose" in broken[0].message  # load errors are never cached
    assert rival not in sys.modules and module not in sys.modules


def test_in_process_plugins_run_every_time(site):
    module = importlib.import_module(site["module"])
    for runs in (1, 2):
        registry = build_registry(entry_points=False, plugins=[module])
        assert module.HOOK_RUNS == [1] * runs and f"{site['module']}-loss" in registry.names("loss")


def test_a_registration_the_cache_cannot_know_says_how_to_rebuild(site):
    """Names kept outside the entry-point module: a change there is not seen until the cache is rebuilt."""
    package = f"{site['module']}_pkg"
    site["added"] += [package, f"{package}.names"]
    (site["folder"] / package).mkdir()
    (site["folder"] / package / "names.py").write_text("NAMES = ['one', 'two']\n")
    (site["folder"] / package / "__init__.py").write_text(textwrap.dedent(f"""
        from mlbench import hookimpl
        from {package}.names import NAMES

        @hookimpl
        def register_ensembles(register):
            for name in NAMES:
                register(name, lambda **kw: "ok")
    """))
    info = site["folder"] / "mlbench_lazy_probe-0.1.0.dist-info"
    (info / "entry_points.txt").write_text(f"[mlbench]\n{site['module']} = {site['module']}\n{package} = {package}\n")
    _build(site)
    (site["folder"] / package / "names.py").write_text("NAMES = ['one']\n")
    stale = _build(site)
    assert stale.create("ensemble", "one") == "ok"
    with pytest.raises(PluginError) as caught:
        stale.create("ensemble", "two")
    message = str(caught.value)
    assert "\n" not in message and f"plugin '{package}' no longer registers ensemble 'two'" in message
    assert f"delete {cache_path()} to rebuild it" in message
