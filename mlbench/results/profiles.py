"""Scoring profiles: which metric ranks a benchmark's entries, and which break its ties.

Benchmarks are ranked differently in the literature: Liz et al. 2023 ranks by AUC; the CXR-LT
challenges (2023, 2024, 2026) rank by mAP (macro average precision, mlbench's ``auprc``), then mAUC,
then mF1. A :class:`ScoringProfile` names that order. Everything that ranks entries or lists metrics
asks one: entries sort by the first (primary) metric's macro row (``__global__``), ties broken by
the next metrics, each in its own direction (:func:`lower_is_better`); tables list the profile's
metrics first, in its order (:func:`order_metrics`).

The profile a run was scored under (:func:`profile_of`): the run manifest's ``scoring_profile``
(``mlbench run --profile NAME`` writes it), else the benchmark's ``scoring_profile`` field, else
``paper``. A command's ``--profile NAME`` overrides both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from mlbench.foundations.errors import UserError
from mlbench.results.leaderboard import GLOBAL_LABEL, LOWER_IS_BETTER, is_missing, selected_order, take_rows

if TYPE_CHECKING:  # annotations only: `leaderboard show` ranks a pyarrow table and never imports pandas
    import pandas as pd
    import pyarrow as pa

# The key naming a profile in a run's manifest and in a board's board.json.
PROFILE_KEY = "scoring_profile"
DEFAULT_PROFILE = "paper"


@dataclass(frozen=True)
class ScoringProfile:
    """A named ranking: ``metrics`` in order, the first is the primary metric."""

    name: str
    metrics: tuple[str, ...]
    summary: str

    @property
    def primary(self) -> str:
        return self.metrics[0]

    def describe(self) -> str:
        """'cxr-lt (auprc, then auc, then f1)': what a page or table title says ranks it."""
        return f"{self.name} ({', then '.join(self.metrics)})"


PROFILES: dict[str, ScoringProfile] = {p.name: p for p in (
    ScoringProfile("paper", ("auc", "auprc", "f1"), "Liz et al. 2023: AUC first"),
    ScoringProfile("cxr-lt", ("auprc", "auc", "f1"), "CXR-LT challenges: mAP, then mAUC, then mF1"),
)}


def known_profiles() -> str:
    """'paper (Liz et al. 2023: AUC first), cxr-lt (...)': what a --profile option's help lists."""
    return ", ".join(f"{p.name} ({p.summary})" for p in PROFILES.values())


class ProfileError(UserError, ValueError):
    """An unknown scoring profile (the message names where it was given and the known ones)."""


def get_profile(name: str, *, given_as: str = "--profile", quote: bool = True, hint: str = "") -> ScoringProfile:
    """The profile called ``name``. ``given_as`` says where the name came from; ``quote=False`` keeps a
    name read from a file out of the message; ``hint`` ends it."""
    if isinstance(name, str) and name in PROFILES:
        return PROFILES[name]
    shown = f" {name}" if quote and isinstance(name, str) and name.isprintable() and len(name) <= 40 else ""
    raise ProfileError(f"{given_as}{shown}: not a scoring profile; expected one of {', '.join(PROFILES)}{hint}")


def profile_of(manifest: Mapping[str, Any] | None, benchmark: Any = None, *,
               chosen: str | None = None) -> ScoringProfile:
    """The profile a run is ranked under: ``chosen`` (a command's --profile), else the manifest's
    ``scoring_profile``, else ``benchmark``'s (a Benchmark, or a registered benchmark's name), else paper."""
    if chosen is not None:
        return get_profile(chosen)
    if manifest and manifest.get(PROFILE_KEY) is not None:
        return get_profile(manifest[PROFILE_KEY], given_as=f"the run manifest's {PROFILE_KEY}", quote=False,
                           hint="; --profile NAME ranks the run by another")
    bench = _benchmark(benchmark)
    declared = getattr(bench, "scoring_profile", None)
    if declared is not None:
        return get_profile(declared, given_as=f"benchmark '{getattr(bench, 'name', '?')}' scoring_profile")
    return PROFILES[DEFAULT_PROFILE]


def run_profile(run_dir: Any, benchmark: Any = None, *, chosen: str | None = None) -> ScoringProfile:
    """The profile a run directory is ranked under: :func:`profile_of` its manifest (none: the benchmark's);
    ``benchmark`` defaults to the manifest's."""
    from mlbench.results.rundir import RunDir

    rundir = RunDir(run_dir)
    manifest = rundir.manifest() if rundir.exists() else {}
    return profile_of(manifest, benchmark if benchmark is not None else manifest.get("benchmark"), chosen=chosen)


def _benchmark(benchmark: Any) -> Any:
    """A Benchmark from a name; None for a benchmark not installed (its rows still rank, under paper)."""
    if not isinstance(benchmark, str):
        return benchmark
    from mlbench.contracts.registry import PluginError, get_registry

    try:
        return get_registry().create("benchmark", benchmark)
    except PluginError:
        return None


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` ranks higher (Hamming loss, calibration errors).

    The leaderboard schema's list, which mlbench.results.metrics answers from too: asking that module
    would import scikit-learn (over a second) into every command that only ranks a board."""
    return metric in LOWER_IS_BETTER


def order_metrics(metrics: Iterable[str], profile: ScoringProfile) -> list[str]:
    """``metrics`` with the profile's first, in its order, then the rest in their given order."""
    given = list(dict.fromkeys(metrics))
    return [m for m in profile.metrics if m in given] + [m for m in given if m not in profile.metrics]


def ranking_metrics(profile: ScoringProfile, first: str | None = None) -> tuple[str, ...]:
    """The metrics a ranking compares in turn: ``first`` (default the primary) then the profile's others."""
    first = first or profile.primary
    return (first,) + tuple(m for m in profile.metrics if m != first)


def rank_key(values: Mapping[str, float], profile: ScoringProfile, first: str | None = None) -> tuple:
    """A ``sorted`` key putting the best first: each ranking metric in its direction, a missing value last."""
    key = []
    for metric in ranking_metrics(profile, first):
        value = _number(values.get(metric))
        key.append((1, 0.0) if math.isnan(value) else (0, value if lower_is_better(metric) else -value))
    return tuple(key)


def ranked_entries(table: pd.DataFrame, profile: ScoringProfile, *, keys: Sequence[str] = ("entry",),
                   label: str = GLOBAL_LABEL, first: str | None = None) -> list[tuple]:
    """The entries of a long-format table (one per distinct ``keys``), best first by their ``label`` rows.

    Ties on every ranking metric keep the table's order."""
    keys = list(keys)
    entries = list(dict.fromkeys(table[keys].itertuples(index=False, name=None)))
    rows = table[(table["label"] == label) & table["metric"].isin(ranking_metrics(profile, first))]
    values: dict[tuple, dict[str, float]] = {}
    for *key, metric, value in rows[keys + ["metric", "value"]].itertuples(index=False, name=None):
        values.setdefault(tuple(key), {}).setdefault(metric, _number(value))
    return sorted(entries, key=lambda entry: rank_key(values.get(entry, {}), profile, first))


def sort_entries(table: pd.DataFrame, profile: ScoringProfile, *, keys: Sequence[str] = ("entry",),
                 label: str = GLOBAL_LABEL, first: str | None = None) -> pd.DataFrame:
    """``table``'s rows, entries in rank order (:func:`ranked_entries`), each entry's rows in their order."""
    if table.empty:
        return table
    rank = {entry: i for i, entry in enumerate(ranked_entries(table, profile, keys=keys, label=label, first=first))}
    position = [rank[entry] for entry in table[list(keys)].itertuples(index=False, name=None)]
    return table.iloc[sorted(range(len(table)), key=position.__getitem__)]


def shown_rows(board: pd.DataFrame, profile: ScoringProfile, *, label: str | None = None, metric: str | None = None,
               variant: str | None = None, source: str | None = None) -> pd.DataFrame:
    """The rows ``mlbench leaderboard show`` prints: one label and metric (default the profile's primary),
    per variant best first, ties broken by the profile's other metrics of the same entry and label.
    ``attrs`` name the ``metric`` shown and the ``profile`` ranking them."""
    metric = metric or profile.primary
    order = shown_order({c: board[c].tolist() for c in SHOWN_BY}, profile, label=label, metric=metric,
                        variant=variant, source=source)
    ranked = board.iloc[order].reset_index(drop=True)
    ranked.attrs.update(metric=metric, profile=profile)
    return ranked


def shown_table(board: pa.Table, profile: ScoringProfile, *, label: str | None = None, metric: str | None = None,
                variant: str | None = None, source: str | None = None) -> pa.Table:
    """:func:`shown_rows` of a pyarrow table: the same rows in the same order (metric: the profile's primary)."""
    order = shown_order({c: board.column(c).to_pylist() for c in SHOWN_BY}, profile, label=label,
                        metric=metric or profile.primary, variant=variant, source=source)
    return take_rows(board, order)


# The columns a shown selection reads: an entry's key, then what ranks it.
SHOWN_KEYS = ("variant", "source", "run_id", "entry")
SHOWN_BY = (*SHOWN_KEYS, "label", "metric", "value")


def shown_order(columns: Mapping[str, list], profile: ScoringProfile, *, label: str | None, metric: str,
                variant: str | None = None, source: str | None = None) -> list[int]:
    """The positions :func:`shown_rows` keeps, in its order, from plain column lists (one ranking for both)."""
    label = label or GLOBAL_LABEL
    rows = selected_order(columns, label=label, metric=metric, variant=variant, source=source)  # names what is missing
    # a missing key cell is None whichever library read it (pandas 3 gives NaN for a missing string)
    keys = [tuple(None if is_missing(v) else v for v in key) for key in zip(*(columns[k] for k in SHOWN_KEYS))]
    wanted = {keys[i] for i in rows}
    ranking = ranking_metrics(profile, metric)
    # ranked_entries over the rows of the shown entries: every metric of the profile, the first row of each wins
    entries: dict[tuple, dict[str, float]] = {}
    for i, key in enumerate(keys):
        if key in wanted:
            values = entries.setdefault(key, {})
            if columns["label"][i] == label and columns["metric"][i] in ranking:
                values.setdefault(columns["metric"][i], _number(columns["value"][i]))
    rank = {e: n for n, e in enumerate(sorted(entries, key=lambda e: rank_key(entries[e], profile, metric)))}
    # variants A to Z, a row without one last (as the selection sorts them), each variant's entries by rank
    return sorted(rows, key=lambda i: (keys[i][0] is None, str(keys[i][0]), rank[keys[i]]))


def _number(value: Any) -> float:
    """A value as a float (NaN when missing or not a number)."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
