"""Dataset options (``--dataset-option KEY=VALUE``): what a dataset declares, and the one check of what is given.

A dataset declares its options as a plain mapping on the class (or function) its factory builds,
so a plugin needs nothing from mlbench to declare one::

    class MyDataset:
        OPTIONS = {"policy": {"type": "str", "default": "ones", "choices": ["ones", "zeros"],
                              "changes_labels": True, "help": "what an uncertain (-1) cell becomes"}}
        def __init__(self, *, policy="ones"): ...

Every declared option is a keyword of the factory; the factory gets every option, given or at its
default. A dataset that declares nothing takes no option. An unknown key, a value of the wrong type,
outside ``choices`` or below ``minimum``, or a value the dataset ``refuses`` (a value it names but
cannot honour yet) is one :class:`DatasetOptionError` line naming the option, before any data work.

Options that change the labels (``changes_labels``) enter the split's hash
(:func:`mlbench.data.splits.split_hash`); every option enters the run's identity and manifest.

``unknown_cells`` lists the values with which the reader leaves some label cells unknown (e.g. an
uncertainty ``policy`` of ``ignore``: mlbench.data.UNKNOWN_COLUMN); a dataset that always may sets
``PARTIAL_LABELS = True`` on its class instead. The planner then refuses, before any data work, a
recipe that cannot train or score with unknown cells (:func:`unknown_cells_reason`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from mlbench.contracts.registry import LazyFactory, Registry
from mlbench.data import DataSource, Records
from mlbench.foundations.options import OptionError, shown

OPTION = "--dataset-option"
TYPES = ("str", "int", "float", "bool")


class DatasetOptionError(OptionError):
    """A ``--dataset-option`` the dataset does not take, or a value it cannot use."""


@dataclass(frozen=True)
class DatasetOption:
    """One declared option: its type (``str``, ``int``, ``float``, ``bool``), default and checks."""

    name: str
    type: str
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    changes_labels: bool = False
    refused: Mapping[Any, str] = field(default_factory=dict)  # value -> why it cannot be used yet
    unknown_cells: tuple[Any, ...] = ()  # values with which the reader leaves some label cells unknown

    def check(self, value: Any, dataset: str, option: str = OPTION) -> Any:
        """``value`` converted to the option's type, or one DatasetOptionError naming it."""
        where = f"{option} {self.name}={shown(value)}"
        if self.type == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # a column named 2020 reads as a number
        elif self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        python = {"str": str, "int": int, "float": float, "bool": bool}[self.type]
        wrong = not isinstance(value, python) or (self.type in ("int", "float") and isinstance(value, bool))
        if wrong or (self.type == "float" and not math.isfinite(value)):
            a = {"str": "a string", "int": "an integer", "float": "a finite number", "bool": "true or false"}
            raise DatasetOptionError(f"{where}: dataset '{dataset}' expects {self.name} to be {a[self.type]}")
        if value in self.refused:
            raise DatasetOptionError(f"{where}: dataset '{dataset}' cannot use it yet: {self.refused[value]}")
        if self.choices is not None and value not in self.choices:
            usable = [c for c in self.choices if c not in self.refused]
            raise DatasetOptionError(f"{where}: dataset '{dataset}' expects {self.name} to be one of "
                                     f"{', '.join(map(str, usable))}")
        if self.minimum is not None and value < self.minimum:
            raise DatasetOptionError(f"{where}: dataset '{dataset}' expects {self.name} >= {self.minimum:g}")
        return value

    def describe(self) -> dict[str, Any]:
        """The option as plain data (``datasets inspect``, ``plugins``)."""
        return {"name": self.name, "type": self.type, "default": self.default, "choices": self.choices,
                "minimum": self.minimum, "changes_labels": self.changes_labels,
                "refused": dict(self.refused), "unknown_cells": list(self.unknown_cells), "help": self.help}


def _target(factory: Any) -> Any:
    """What a registered factory builds (lazy and partial wrappers removed)."""
    target = factory.resolve() if isinstance(factory, LazyFactory) else factory
    while isinstance(target, functools.partial):
        target = target.func
    return target


def parse_declaration(dataset: str, declared: Any) -> dict[str, DatasetOption]:
    """A dataset's ``OPTIONS`` mapping as DatasetOptions; a malformed one is the plugin's bug (ValueError)."""
    if declared is None:
        return {}
    if not isinstance(declared, Mapping):
        raise ValueError(f"dataset '{dataset}': OPTIONS must be a mapping of option name to its declaration")
    out: dict[str, DatasetOption] = {}
    known = {"type", "default", "help", "choices", "minimum", "changes_labels", "refused", "unknown_cells"}
    for name, spec in declared.items():
        if not isinstance(name, str) or not name.isidentifier() or not isinstance(spec, Mapping):
            raise ValueError(f"dataset '{dataset}': OPTIONS[{name!r}] must be a mapping under an identifier")
        extra = set(spec) - known
        if extra or spec.get("type") not in TYPES or "default" not in spec:
            raise ValueError(f"dataset '{dataset}': OPTIONS[{name!r}] needs a type ({', '.join(TYPES)}) and a "
                             f"default, and takes only {', '.join(sorted(known))}")
        choices = spec.get("choices")
        out[name] = DatasetOption(name, spec["type"], spec["default"], str(spec.get("help", "")),
                                  None if choices is None else tuple(choices), spec.get("minimum"),
                                  bool(spec.get("changes_labels", False)), dict(spec.get("refused") or {}),
                                  tuple(spec.get("unknown_cells") or ()))
    return out


def declared_options(registry: Registry, dataset: str) -> dict[str, DatasetOption]:
    """The options dataset plugin ``dataset`` declares (empty when it declares none)."""
    target = _target(registry.get("dataset", dataset).factory)
    return parse_declaration(dataset, getattr(target, "OPTIONS", None))


def check_dataset_options(registry: Registry, dataset: str, given: Mapping[str, Any] | None,
                          option: str = OPTION) -> dict[str, Any]:
    """Every declared option of ``dataset``, ``given`` ones checked and the rest at their defaults."""
    specs = declared_options(registry, dataset)
    given = dict(given or {})
    for key in given:
        if key not in specs:
            takes = f"it takes {', '.join(specs)}" if specs else "it takes none"
            raise DatasetOptionError(f"{option} {key}=...: dataset '{dataset}' has no option '{key}'; {takes}")
    return {name: spec.check(given[name], dataset, option) if name in given else spec.default
            for name, spec in specs.items()}


def unknown_cells_reason(registry: Registry, dataset: str, resolved: Mapping[str, Any]) -> str | None:
    """Why dataset ``dataset`` read with options ``resolved`` may leave label cells unknown (None: it will not)."""
    if getattr(_target(registry.get("dataset", dataset).factory), "PARTIAL_LABELS", False):
        return f"dataset '{dataset}' has unknown label cells"
    for name, spec in declared_options(registry, dataset).items():
        if name in resolved and resolved[name] in spec.unknown_cells:
            return f"{OPTION} {name}={shown(resolved[name])} leaves unknown label cells"
    return None


def label_options(registry: Registry, dataset: str, resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The options among ``resolved`` that change the labels (they enter the split's hash)."""
    specs = declared_options(registry, dataset)
    return {k: v for k, v in sorted(resolved.items()) if k in specs and specs[k].changes_labels}


def open_dataset(registry: Registry, dataset: str, options: Mapping[str, Any] | None = None) -> Any:
    """The dataset plugin built with its options (checked; defaults filled)."""
    return registry.create("dataset", dataset, **check_dataset_options(registry, dataset, options))


def read_dataset(registry: Registry, dataset: str, source: DataSource,
                 options: Mapping[str, Any] | None = None) -> Records:
    """The dataset read with its options; ``records.label_options`` says which of them shaped the labels."""
    resolved = check_dataset_options(registry, dataset, options)
    records = registry.create("dataset", dataset, **resolved).read(source)
    records.label_options = label_options(registry, dataset, resolved)
    return records
