"""A grid's remedies: ``ml-ros``, ``class-balanced``, ``crt``, ``temperature``, ``val-f1``, or several joined by ``+``.

Each part of a remedy is one *kind* of change to the recipe, and :data:`KINDS` is the table of them:
the recipe field (and RunOptions field) a part sets, how the kind is named in messages, and where
its names come from. A new kind (a training schedule, a post-hoc adjuster) is one more row here,
one more field of :class:`Remedy` and the RunOptions field it sets; the parsing does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence

from mlbench.results.griddir import GridError
from mlbench.contracts.registry import Registry
from mlbench.results.thresholds import RULES


class RemedyError(GridError):
    """A --remedies entry that names nothing, or two parts of one kind (the message names the entry)."""


@dataclass(frozen=True)
class RemedyKind:
    field: str  # the Recipe / RunOptions field a part of this kind sets (and Remedy's)
    label: str  # "sampler"
    plural: str  # "samplers"
    names: Callable[[Registry], Sequence[str]]  # the names a part of this kind may be


# In the recipe's order: how a remedy is spelled back (canonical_remedy), the order of the message
# naming every kind, and which kind a name belongs to when two kinds both know it.
KINDS: tuple[RemedyKind, ...] = (
    RemedyKind("sampler", "sampler", "samplers", lambda registry: registry.names("sampler")),
    RemedyKind("loss", "loss", "losses", lambda registry: registry.names("loss")),
    RemedyKind("schedule", "schedule", "schedules", lambda registry: registry.names("schedule")),
    RemedyKind("adjuster", "post-hoc adjuster", "post-hoc adjusters", lambda registry: registry.names("adjuster")),
    RemedyKind("threshold_rule", "threshold rule", "threshold rules", lambda _: RULES),
)


@dataclass(frozen=True)
class Remedy:
    """What a remedy changes in the recipe; None keeps the benchmark's choice."""

    name: str
    sampler: str | None = None
    loss: str | None = None
    schedule: str | None = None
    adjuster: str | None = None
    threshold_rule: str | None = None

    def options(self) -> dict[str, str | None]:
        """The RunOptions fields this remedy sets (None: the recipe's own), one per kind."""
        return {kind.field: getattr(self, kind.field) for kind in KINDS}


def _check_table() -> None:
    # A row without its Remedy field would be parsed and then silently dropped.
    missing = {k.field for k in KINDS} - {f.name for f in fields(Remedy)}
    assert not missing, f"Remedy lacks the fields of remedy kinds {sorted(missing)}"


_check_table()


def _listed(kinds: Sequence[RemedyKind], names: dict[str, Sequence[str]]) -> str:
    """'a sampler (a, b), a loss (c) nor a threshold rule (d)'."""
    shown = [f"a {k.label} ({', '.join(names[k.field])})" for k in kinds]
    return ", ".join(shown[:-1]) + f" nor {shown[-1]}" if len(shown) > 1 else shown[0]


def parse_remedy(spec: str, registry: Registry) -> Remedy:
    """``ml-ros``, ``class-balanced``, ``crt``, ``temperature``, ``val-f1`` or ``+``-joined combinations of them
    (one of each kind at most; none a part another part's registration ``excludes``)."""
    names = {kind.field: tuple(kind.names(registry)) for kind in KINDS}
    parts = [p.strip() for p in spec.split("+")]
    if not all(parts):
        raise RemedyError(f"--remedies {spec}: an empty part; expected names joined by + (e.g. ml-ros+val-f1)")
    found: dict[str, list[str]] = {kind.field: [] for kind in KINDS}
    for part in parts:
        kind = next((k for k in KINDS if part in names[k.field]), None)
        if kind is None:
            raise RemedyError(f"--remedies {spec}: '{part}' is neither {_listed(KINDS, names)}")
        found[kind.field].append(part)
    repeated = next((p for p in parts if parts.count(p) > 1), None)
    if repeated is not None:
        raise RemedyError(f"--remedies {spec}: '{repeated}' twice in one remedy; list each part once")
    for kind in KINDS:
        chosen = found[kind.field]
        if len(chosen) > 1:
            at_most = ", ".join(f"one {k.label}" for k in KINDS[:-1]) + f" and one {KINDS[-1].label}"
            raise RemedyError(f"--remedies {spec}: {len(chosen)} {kind.plural} ({', '.join(chosen)}) in one "
                              f"remedy; a remedy combines at most {at_most}")
    remedy = Remedy(spec, **{field: chosen[0] if chosen else None for field, chosen in found.items()})
    _refuse_exclusions(spec, remedy, registry)
    return remedy


def _refuse_exclusions(spec: str, remedy: Remedy, registry: Registry) -> None:
    """A part whose plugin says it ``excludes`` another part of the remedy (e.g. two rebalancings of one
    classifier): one line naming both and the plugin's reason."""
    parts = [(kind, getattr(remedy, kind.field)) for kind in KINDS
             if kind.field != "threshold_rule" and getattr(remedy, kind.field) is not None]
    chosen = {name for _, name in parts}
    for kind, name in parts:
        info = registry.get(kind.field, name).info
        clash = next((other for other in info.get("excludes", ()) if other in chosen), None)
        if clash is not None:
            why = info.get("excludes_why", "they cannot be combined")
            raise RemedyError(f"--remedies {spec}: {kind.label} '{name}' cannot be combined with '{clash}' ({why}); "
                              "list them as separate remedies")


def canonical_remedy(remedy: Remedy, recipe: Any) -> str:
    """What the remedy changes in ``recipe`` (a Recipe), parts in the order of :data:`KINDS`; the
    recipe's own choices dropped (``uniform+weighted-bce`` is the recipe itself: ``''``)."""
    changes = ((getattr(remedy, k.field), getattr(recipe, k.field)) for k in KINDS)
    return "+".join(mine for mine, own in changes if mine is not None and mine != own)
