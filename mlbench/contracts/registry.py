"""Plugin discovery and the registry of everything plugins register.

Every plugin, built-in or third-party, is a module named by an entry point in the ``mlbench``
group. Loading one plugin can fail (import error, a name clash) without taking the others down:
the failure is kept in ``Registry.errors`` and shown by ``mlbench plugins``.

Learning what the plugins register imports none of their modules once the registry cache is
current (see :func:`build_registry`; docs/architecture.md, "Lazy plugin registration"): a
plugin's module is imported when one of its factories is first called.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pluggy

from mlbench.foundations.errors import UserError
from mlbench.contracts import hookspecs

# kind -> the hook that registers it
KINDS: dict[str, str] = {
    "dataset": "register_datasets",
    "loss": "register_losses",
    "backbone": "register_backbones",
    "ensemble": "register_ensembles",
    "explainer": "register_explainers",
    "preprocessor": "register_preprocessors",
    "sampler": "register_samplers",
    "schedule": "register_schedules",
    "adjuster": "register_adjusters",
    "tracker": "register_trackers",
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


@dataclass(frozen=True)
class _Registration:
    kind: str
    name: str
    factory: Callable[..., Any]
    info: dict[str, Any]


@dataclass
class _Loaded:
    """What one plugin registered, and the errors its hooks raised (kind, message)."""

    plugin: str
    package: str | None
    version: str | None
    registrations: list[_Registration] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def _registrar(registrations: list[_Registration], kind: str, plugin: str):
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
        registrations.append(_Registration(kind, name, factory, dict(info)))

    return register


def _collect(pm: pluggy.PluginManager, plugin: str, package: str | None, version: str | None) -> _Loaded:
    """Run the hooks of ``plugin`` (registered in ``pm``), kind by kind."""
    loaded = _Loaded(plugin, package, version)
    for kind, hook_name in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name != plugin:
                continue
            register = _registrar(loaded.registrations, kind, plugin)
            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except Exception as exc:  # one broken plugin must not take the others down
                loaded.errors.append((kind, f"{hook_name} failed: {exc!r}"))
    return loaded


def _assemble(registry: Registry, plugins: list[_Loaded]) -> None:
    """Add everything, kind by kind and plugin by plugin (the order clashes and listings follow)."""
    for kind in KINDS:
        for p in plugins:
            for r in p.registrations:
                if r.kind == kind:
                    registry.add(PluginEntry(kind, r.name, r.factory, p.plugin, p.package, p.version, r.info))
            registry.errors += [LoadError(p.plugin, p.package, message) for k, message in p.errors if k == kind]


# ---------------------------------------------------------------------------------------------
# Entry points, and the registry cache that spares importing plugin modules to learn their names.
#
# The cache is one JSON file per interpreter and sys.path. It holds the entry points found and,
# per plugin that loaded cleanly, what it registered: kind, name, info, and either the
# LazyFactory target it gave or nothing (the factory is then looked up by importing the plugin's
# module on first call). It is used only when its "environment" equals the one computed now,
# and a plugin's record only when its module's file is the same (path, size, CRC-32).

CACHE_ENV = "MLBENCH_CACHE_DIR"
CACHE_FORMAT = "mlbench-registry-cache/1"
CACHE_KEEP = 16  # registry cache files kept in the folder (one per interpreter and sys.path)
CACHE_MAX_BYTES = 8 << 20
# Distribution folders importlib.metadata reads, and the files in them that say what they are.
_DIST_FILES = {".dist-info": ("entry_points.txt", "METADATA"), ".egg-info": ("entry_points.txt", "PKG-INFO"),
               ".egg": ("EGG-INFO/entry_points.txt", "EGG-INFO/PKG-INFO")}


@dataclass(frozen=True)
class _EntryPoint:
    name: str
    value: str
    package: str | None
    version: str | None

    @property
    def module(self) -> str:
        return split_entry_point(self.value)[0]


def split_entry_point(value: str) -> tuple[str, list[str]]:
    """``"pkg.mod:obj.attr [extra]"`` -> ``("pkg.mod", ["obj", "attr"])``, as importlib.metadata reads it."""
    module, _, attrs = value.split("[", 1)[0].partition(":")
    return module.strip(), [a for a in attrs.strip().split(".") if a]


def load_entry_point(value: str) -> Any:
    """The object an entry point's value names (``module`` or ``module:attr.attr``), as ``EntryPoint.load``."""
    module, attrs = split_entry_point(value)
    target = importlib.import_module(module)
    for attr in attrs:
        target = getattr(target, attr)
    return target


def cache_folder() -> Path | None:
    """``$MLBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlbench``, else ``~/.cache/mlbench`` (None without a home)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG rule: a relative value is ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "mlbench"


def cache_path() -> Path | None:
    """This interpreter's registry cache file (``registry-HASH.json`` in :func:`cache_folder`)."""
    folder = cache_folder()
    try:
        where = json.dumps([sys.executable, [entry or os.getcwd() for entry in sys.path]])
    except OSError:  # the working folder is gone
        return None
    return None if folder is None else folder / f"registry-{zlib.crc32(where.encode()):08x}.json"


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def installed_distributions() -> list[Any]:
    """Per ``sys.path`` entry, each distribution folder with the stats of its entry points and metadata.

    Listing folders is what importlib.metadata does too, so a current cache is recognised without
    importing it; pip's installs, upgrades, removals and reinstalls (editable ones included) all
    change this. The metadata file is looked at only in folders that have entry points.
    """
    places: list[Any] = []
    for entry in sys.path:
        where = entry or os.curdir
        try:
            with os.scandir(where) as found:
                names = sorted(d.name for d in found if os.path.splitext(d.name)[1].lower() in _DIST_FILES)
        except OSError:  # a zip file, a path hook's name, a missing folder
            places.append(_stat(where))
            continue
        dists = []
        for name in names:
            entry_points, meta = (os.path.join(where, name, f) for f in _DIST_FILES[os.path.splitext(name)[1].lower()])
            found_eps = _stat(entry_points)
            dists.append([name, found_eps] if found_eps is None else [name, found_eps, _stat(meta)])
        places.append(dists)
    return places


def _find_spec(name: str, path: list[str] | None) -> Any:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, path)
        except Exception:  # noqa: BLE001 - someone's finder failing: that plugin is just not cached
            return None
        if spec is not None:
            return spec
    return None


def module_file(module: str) -> str | None:
    """The file ``module`` would import from, found without importing it or its parent packages.

    (``importlib.util.find_spec("a.b")`` imports ``a``; this asks the finders level by level.)
    """
    parts = module.split(".")
    spec, path = None, None
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        loaded = sys.modules.get(name)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else _find_spec(name, path)
        if spec is None:
            return None
        path = spec.submodule_search_locations
        if depth < len(parts) and path is None:
            return None
    origin = getattr(spec, "origin", None)
    return origin if getattr(spec, "has_location", False) and origin and os.path.isfile(origin) else None


def module_fingerprint(module: str) -> list[Any] | None:
    """[file, size, CRC-32 of the content] of a plugin's module, or None when it cannot be found."""
    file = module_file(module)
    if file is None:
        return None
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return [file, len(data), zlib.crc32(data)]


def _encode(value: Any) -> Any:
    """Plain JSON with lists, tuples and dicts tagged, so that info reads back exactly as registered."""
    kind = type(value)
    if value is None or kind in (str, int, float, bool):
        return value
    if kind in (list, tuple):
        return {kind.__name__: [_encode(v) for v in value]}
    if kind is dict and all(type(k) is str for k in value):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    raise TypeError(f"{kind.__name__} values are not cached")


def _decode(value: Any) -> Any:
    if value is None or type(value) in (str, int, float, bool):
        return value
    if type(value) is dict and len(value) == 1:
        [(tag, inner)] = value.items()
        if tag in ("list", "tuple") and type(inner) is list:
            items = [_decode(v) for v in inner]
            return items if tag == "list" else tuple(items)
        if tag == "dict" and type(inner) is dict:
            return {k: _decode(v) for k, v in inner.items()}
    raise ValueError("not an encoded value")


def _record(loaded: _Loaded, ep: _EntryPoint, fingerprint: list[Any] | None) -> dict[str, Any] | None:
    """The cache's record of a plugin that loaded cleanly, or None when it must be imported every time."""
    if loaded.errors or fingerprint is None:
        return None
    items = []
    for r in loaded.registrations:
        try:
            info = _encode(r.info)
            factory = None
            if type(r.factory) is LazyFactory:
                factory = {"target": r.factory.target, "bound": _encode(r.factory.bound)}
        except (TypeError, ValueError, RecursionError):
            return None
        items.append({"kind": r.kind, "name": r.name, "info": info, "factory": factory})
    return {"value": ep.value, "module": fingerprint, "items": items}


class _PluginModule:
    """A cached plugin's module: imported, and its hooks run, when one of its factories is first needed."""

    def __init__(self, plugin: str, value: str, cache: Path | None) -> None:
        self.plugin, self.value, self.cache = plugin, value, cache
        self._factories: dict[tuple[str, str], Callable[..., Any]] | None = None
        self._errors: list[tuple[str, str]] = []

    def factory(self, kind: str, name: str) -> Callable[..., Any]:
        if self._factories is None:
            pm = _plugin_manager()
            pm.register(load_entry_point(self.value), name=self.plugin)
            loaded = _collect(pm, self.plugin, None, None)
            self._factories = {(r.kind, r.name): r.factory for r in loaded.registrations}
            self._errors = loaded.errors
        try:
            return self._factories[(kind, name)]
        except KeyError:
            why = f" ({self._errors[0][1]})" if self._errors else ""
            raise PluginError(f"plugin '{self.plugin}' no longer registers {kind} '{name}'{why}, but the registry "
                              f"cache says it does; delete {self.cache} to rebuild it") from None


class PluginFactory(LazyFactory):
    """A factory known from the registry cache: the plugin's module is imported on the first call.

    :meth:`resolve` returns what the plugin registered (a :class:`LazyFactory` resolved in turn),
    so signatures and option filtering see the real factory.
    """

    def __init__(self, module: _PluginModule, kind: str, name: str) -> None:
        self.target, self.bound, self._resolved = module.value, {}, None
        self._module, self._kind, self._name = module, kind, name

    def resolve(self) -> Callable[..., Any]:
        if self._resolved is None:
            factory = self._module.factory(self._kind, self._name)
            self._resolved = factory.resolve() if isinstance(factory, LazyFactory) else factory
        return self._resolved

    def __repr__(self) -> str:
        return f"PluginFactory({self._kind} {self._name!r} of plugin {self._module.plugin!r})"


def _restore(record: dict[str, Any], ep: _EntryPoint, cache: Path | None) -> _Loaded:
    module = _PluginModule(ep.name, ep.value, cache)
    loaded = _Loaded(ep.name, ep.package, ep.version)
    for item in record["items"]:
        spec = item["factory"]
        factory = (LazyFactory(spec["target"], **_decode(spec["bound"])) if spec is not None
                   else PluginFactory(module, item["kind"], item["name"]))
        loaded.registrations.append(_Registration(item["kind"], item["name"], factory, _decode(item["info"])))
    return loaded


def _optional_str(value: Any) -> str | None:
    if value is not None and type(value) is not str:
        raise TypeError("expected a string or null")
    return value


def _check_record(record: Any) -> None:
    """Raise unless ``record`` is a well-formed plugin record (a corrupt cache is never half-used)."""
    if type(record) is not dict or type(record["value"]) is not str or type(record["items"]) is not list:
        raise TypeError("bad plugin record")
    file, size, crc = record["module"]
    if type(file) is not str or type(size) is not int or type(crc) is not int:
        raise TypeError("bad module fingerprint")
    for item in record["items"]:
        if item["kind"] not in KINDS or type(item["name"]) is not str or not item["name"]:
            raise TypeError("bad item")
        if type(_decode(item["info"])) is not dict:
            raise TypeError("bad info")
        spec = item["factory"]
        if spec is not None:
            bound = _decode(spec["bound"])
            if type(spec["target"]) is not str or type(bound) is not dict:
                raise TypeError("bad factory")
            LazyFactory(spec["target"], **bound)


def _read_cache(path: Path, environment: list[Any]) -> tuple[list[_EntryPoint], dict[str, Any]] | None:
    """The cached entry points and plugin records, or None if the file is missing, foreign, stale or corrupt."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            owner_ok = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
            if not owner_ok or st.st_mode & 0o002 or st.st_size > CACHE_MAX_BYTES:
                return None  # someone else's, or writable by anyone: not trusted
            data = json.loads(f.read())
        if type(data) is not dict or data.get("format") != CACHE_FORMAT or data.get("environment") != environment:
            return None
        eps = [_EntryPoint(name, value, _optional_str(package), _optional_str(version))
               for name, value, package, version in data["entry_points"]]
        if any(type(ep.name) is not str or type(ep.value) is not str for ep in eps):
            return None
        records = data["plugins"]
        if type(records) is not dict:
            return None
        for record in records.values():
            _check_record(record)
        return eps, records
    except Exception:  # noqa: BLE001 - unreadable or corrupt: ignored, rebuilt and overwritten
        return None


def _write_cache(path: Path, environment: list[Any], eps: list[_EntryPoint], records: dict[str, Any]) -> None:
    """Write the cache atomically; an unwritable folder just means no cache (the import path stays)."""
    from mlbench.foundations import io  # pyarrow comes with it: only when the cache is rebuilt

    data = {"format": CACHE_FORMAT, "environment": environment,
            "entry_points": [[ep.name, ep.value, ep.package, ep.version] for ep in eps], "plugins": records}
    try:
        io.write_text(path, json.dumps(data, separators=(",", ":")))
        olds = sorted(path.parent.glob("registry-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in olds[CACHE_KEEP:]:
            old.unlink()
    except (UserError, OSError):
        pass


def _scan_entry_points() -> list[_EntryPoint]:
    from importlib import metadata  # tens of milliseconds: only when the cache is not current

    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        meta = dist.metadata if dist is not None else None
        found.append(_EntryPoint(ep.name, ep.value, meta["Name"] if meta else None, meta["Version"] if meta else None))
    return found


def _load_entry_points(registry: Registry, pm: pluggy.PluginManager, use_cache: bool) -> list[_Loaded]:
    only = {n.strip() for n in os.environ.get(ONLY_PLUGINS_ENV, "").split(",") if n.strip()}
    path = cache_path() if use_cache else None
    environment = installed_distributions() if path is not None else []
    cached = _read_cache(path, environment) if path is not None else None
    eps, records = cached if cached is not None else (_scan_entry_points(), {})
    records = dict(records)
    changed = cached is None
    installed = {ep.name for ep in eps}
    for unknown in sorted(only - installed):
        registry.errors.append(LoadError(unknown, None, f"{ONLY_PLUGINS_ENV} names '{unknown}', which is not an "
                                         f"installed plugin; installed: {', '.join(sorted(installed))}"))
    packages: dict[str, str | None] = {}
    loaded = []
    for ep in eps:
        if only and ep.name not in only:
            continue
        if ep.name in packages:
            registry.errors.append(LoadError(
                ep.name, ep.package, f"entry point name '{ep.name}' is used by {packages[ep.name]} and {ep.package}"))
            continue
        packages[ep.name] = ep.package
        fingerprint = module_fingerprint(ep.module) if path is not None else None
        record = records.get(ep.name)
        if record is not None and fingerprint == record["module"] and record["value"] == ep.value:
            loaded.append(_restore(record, ep, path))
            continue
        try:
            pm.register(load_entry_point(ep.value), name=ep.name)
        except Exception as exc:
            registry.errors.append(LoadError(ep.name, ep.package, f"import of '{ep.value}' failed: {exc!r}"))
            changed |= records.pop(ep.name, None) is not None
            continue
        plugin = _collect(pm, ep.name, ep.package, ep.version)
        loaded.append(plugin)
        new = _record(plugin, ep, fingerprint)
        if new != record:
            changed = True
            if new is None:
                records.pop(ep.name, None)
            else:
                records[ep.name] = new
    if path is not None and changed:
        _write_cache(path, environment, eps, {k: v for k, v in records.items() if k in installed})
    return loaded


def build_registry(*, entry_points: bool = True, plugins: Iterable[object] = (), cache: bool = True) -> Registry:
    """Load plugins from the ``mlbench`` entry-point group (and ``plugins`` given in-process).

    With ``cache`` (the default), installed plugins whose registry cache record is current are
    not imported: their factories import the plugin's module when first called. In-process
    ``plugins`` are always run.
    """
    registry = Registry()
    pm = _plugin_manager()
    loaded = _load_entry_points(registry, pm, cache) if entry_points else []
    names = []
    for i, plugin in enumerate(plugins):
        name = getattr(plugin, "__name__", None) or f"in-process-{i}"
        pm.register(plugin, name=name)
        names.append(name)
    loaded += [_collect(pm, name, None, None) for name in names]
    _assemble(registry, loaded)
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
