"""Plugin discovery and the registry of everything plugins register.

Every plugin, built-in or third-party, is a module named by an entry point in the ``mlbench``
group. Loading one plugin can fail (import error, a name clash) without taking the others down:
the failure is kept in ``Registry.errors`` and shown by ``mlbench plugins``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable

import pluggy

from mlbench.errors import UserError
from mlbench import hookspecs

# kind -> the hook that registers it
KINDS: dict[str, str] = {
    "dataset": "register_datasets",
    "loss": "register_losses",
    "backbone": "register_backbones",
    "ensemble": "register_ensembles",
    "explainer": "register_explainers",
    "preprocessor": "register_preprocessors",
    "sampler": "register_samplers",
    "benchmark": "register_benchmarks",
}

ENTRY_POINT_GROUP = "mlbench"
# Comma-separated entry-point names: load only these (like llm's LLM_LOAD_PLUGINS).
ONLY_PLUGINS_ENV = "MLBENCH_PLUGINS"


class PluginError(UserError):
    """A plugin could not be found, loaded or used."""


class LazyFactory:
    """A factory named ``"module:attribute"``, imported on its first call.

    A plugin module registers these so that building the registry (``mlbench plugins``,
    ``mlbench leaderboard show``) imports no torch. ``bound`` keyword arguments are fixed as with
    :func:`functools.partial`. :func:`inspect.signature` sees the real factory's signature (less
    the bound arguments), which is what option filtering and conformance read.
    """

    def __init__(self, target: str, /, **bound: Any) -> None:
        module, sep, attribute = target.partition(":")
        if not sep or not module or not attribute:
            raise ValueError(f"lazy factory target must be 'module:attribute', got {target!r}")
        self.target = target
        self.bound = bound
        self._resolved: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """Import the target (once) and return it with the bound arguments applied."""
        if self._resolved is None:
            module, _, attribute = self.target.partition(":")
            factory = getattr(importlib.import_module(module), attribute)
            self._resolved = functools.partial(factory, **self.bound) if self.bound else factory
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.resolve())

    def __repr__(self) -> str:
        bound = "".join(f", {k}={v!r}" for k, v in self.bound.items())
        return f"LazyFactory({self.target!r}{bound})"


@dataclass(frozen=True)
class PluginEntry:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    package: str | None
    version: str | None
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "package": self.package,
            "version": self.version,
            "kind": self.kind,
            "name": self.name,
            **{k: v for k, v in self.info.items() if isinstance(v, (str, int, float, bool))},
        }


@dataclass(frozen=True)
class LoadError:
    plugin: str
    package: str | None
    message: str


class Registry:
    """Named factories per kind. Build it with :func:`build_registry`."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in KINDS}
        self._clashes: dict[tuple[str, str], list[PluginEntry]] = {}
        self.errors: list[LoadError] = []

    def add(self, entry: PluginEntry) -> None:
        existing = self._entries[entry.kind].get(entry.name)
        key = (entry.kind, entry.name)
        if existing is None and key not in self._clashes:
            self._entries[entry.kind][entry.name] = entry
            return
        # Neither side wins silently: the name becomes unusable until one plugin is removed.
        clash = self._clashes.setdefault(key, [existing] if existing else [])
        clash.append(entry)
        self._entries[entry.kind].pop(entry.name, None)
        who = " and ".join(f"plugin '{e.plugin}' ({e.package or 'not installed'})" for e in clash)
        self.errors.append(
            LoadError(entry.plugin, entry.package, f"{entry.kind} name '{entry.name}' is registered by {who}")
        )

    def get(self, kind: str, name: str) -> PluginEntry:
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind '{kind}'; expected one of {sorted(KINDS)}")
        if (kind, name) in self._clashes:
            who = ", ".join(f"'{e.plugin}' ({e.package})" for e in self._clashes[(kind, name)])
            raise PluginError(f"{kind} '{name}' is registered by several plugins: {who}; uninstall one")
        try:
            return self._entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(self._entries[kind])) or "none"
            failed = ""
            if self.errors:
                first = self.errors[0]
                failed = (f" ({len(self.errors)} plugin load error(s), see `mlbench plugins`; first: plugin "
                          f"'{first.plugin}': {first.message})")
            plural = f"{kind}es" if kind.endswith("s") else f"{kind}s"
            raise PluginError(f"no {kind} named '{name}'; registered {plural}: {known}{failed}") from None

    def create(self, kind: str, name: str, /, **kwargs: Any) -> Any:
        """Call the factory registered as ``name``; errors name the plugin that failed."""
        entry = self.get(kind, name)
        try:
            return entry.factory(**kwargs)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"{kind} '{name}' from plugin '{entry.plugin}' ({entry.package}) failed: {exc}"
            ) from exc

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self) -> list[PluginEntry]:
        return [e for kind in KINDS for e in self._entries[kind].values()]


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


RESERVED_INFO = frozenset({"kind", "plugin", "package", "version", "name"})


def _registrar(registry: Registry, kind: str, plugin: str, package: str | None, version: str | None):
    """The ``register`` a hook receives: kind and plugin are fixed here, out of the plugin's reach."""

    def register(name: str, factory: Callable[..., Any], /, **info: Any) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin '{plugin}' registered a {kind} with an invalid name {name!r}")
        if not callable(factory):
            raise PluginError(f"plugin '{plugin}' registered {kind} '{name}' with a non-callable factory")
        reserved = sorted(RESERVED_INFO.intersection(info) | {k for k in info if k.startswith("_")})
        if reserved:
            raise PluginError(f"plugin '{plugin}' registered {kind} '{name}' with reserved info {reserved}; "
                              "mlbench records the kind and the registering plugin itself")
        registry.add(PluginEntry(kind, name, factory, plugin, package, version, dict(info)))

    return register


def _register_into(registry: Registry, pm: pluggy.PluginManager, sources: dict[str, tuple[str | None, str | None]]):
    for kind, hook_name in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin_name = impl.plugin_name
            package, version = sources.get(plugin_name, (None, None))
            register = _registrar(registry, kind, plugin_name, package, version)
            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except Exception as exc:  # one broken plugin must not take the others down
                registry.errors.append(LoadError(plugin_name, package, f"{hook_name} failed: {exc!r}"))


def build_registry(*, entry_points: bool = True, plugins: Iterable[object] = ()) -> Registry:
    """Load plugins from the ``mlbench`` entry-point group (and ``plugins`` given in-process)."""
    registry = Registry()
    pm = _plugin_manager()
    sources: dict[str, tuple[str | None, str | None]] = {}
    if entry_points:
        only = {n.strip() for n in os.environ.get(ONLY_PLUGINS_ENV, "").split(",") if n.strip()}
        installed = {ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
        for unknown in sorted(only - installed):
            registry.errors.append(LoadError(unknown, None, f"{ONLY_PLUGINS_ENV} names '{unknown}', which is not an "
                                             f"installed plugin; installed: {', '.join(sorted(installed))}"))
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if only and ep.name not in only:
                continue
            dist = getattr(ep, "dist", None)
            package = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            if ep.name in sources:
                registry.errors.append(LoadError(
                    ep.name, package,
                    f"entry point name '{ep.name}' is used by {sources[ep.name][0]} and {package}"))
                continue
            try:
                module = ep.load()
                pm.register(module, name=ep.name)
            except Exception as exc:
                registry.errors.append(LoadError(ep.name, package, f"import of '{ep.value}' failed: {exc!r}"))
                continue
            sources[ep.name] = (package, version)
    for i, plugin in enumerate(plugins):
        name = getattr(plugin, "__name__", None) or f"in-process-{i}"
        pm.register(plugin, name=name)
        sources.setdefault(name, (None, None))
    _register_into(registry, pm, sources)
    return registry


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _default
    if _default is None:
        _default = build_registry()
    return _default


def use_registry(registry: Registry | None) -> None:
    """Make ``registry`` the process-wide one (in-process plugins, tests); None rebuilds on next use."""
    global _default
    _default = registry


def reset_registry() -> None:
    use_registry(None)
