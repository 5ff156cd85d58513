"""Did run B do better than run A on the same test images? Paired patient-bootstrap differences.

Two runs scored on the same test split share its sampling noise: a patient that is hard for A is
usually hard for B. Resampling the same patients for both runs in each bootstrap replicate
(``paired_differences``) keeps that shared part out of the difference, so its interval is
narrower than one from independent resamples per run (``unpaired_differences``, kept for
comparison) whenever the runs' errors are correlated.

Rows (a pandas DataFrame; columns ``COLUMNS``), each a difference B - A:

- ``scope="label"``: per label, ``name`` the label;
- ``scope="group"``: the macro mean over a frequency group's labels (``frequent`` / ``medium`` /
  ``rare``, thirds by training positives: :func:`mlbench.results.stats.label_groups`);
- ``scope="macro"``: the macro mean over all labels, ``name`` ``__global__``.

Metrics are those of :mod:`mlbench.results.stats` (AUC and AUPRC from scores, F1 — the paper's mean of
both classes' F1 — from the 0/1 decisions, and the calibration of the scores: ``ece_15`` and
``brier``), computed the same way on the whole split and on each replicate; macro means average,
within a replicate, the labels defined there. Each run's ECE keeps the equal-mass bins of its own
scores on the whole split in every replicate. The interval is the percentile 95% interval of the
replicates' differences; it is per row, not adjusted.

Many rows are tested at once (every label, every metric, and in a grid every remedy), so some
intervals exclude 0 by chance alone. ``p_value`` is the two-sided p-value of "no difference" from
the bootstrap standard error (z = difference / sd of the replicates, normal approximation). Counting
replicates beyond 0 instead could not go below about 2 / n_boot, and Holm over 100 labels needs
p < 0.0005 for the first verdict: 1,000 replicates could never give one. ``p_adjusted`` is Holm's
step-down adjustment of those p-values within a
*family*: the rows of one (scope, metric) of a comparison (:data:`FAMILY`), and in a grid the same
rows over every remedy against the baseline (:func:`adjust`). Holm controls the chance of any
false "helps" or "hurts" in a family at 5% whatever the dependence between its rows.
``verdict`` is ``helps`` when the interval lies wholly on the better side of 0 *and*
``p_adjusted`` < 0.05, ``hurts`` likewise on the worse side, else ``no evidence``. The better side
is above 0 for AUC, AUPRC and F1 and below it for the lower-is-better metrics (``hamming``,
``ece_15``, ``brier``: :func:`mlbench.results.metrics.lower_is_better`): B - A < 0 there means B
errs less.

Across training seeds, :func:`combine_seeds` gives the mean difference, its standard deviation
across seeds and the interval of the mean over seeds (the seeds' comparisons share the bootstrap
draws, so replicate r of every seed resamples the same patients).

Unknown cells (``known``, False where a label is unknown; both runs scored on the same labels, so
one mask): each label is scored on its known cells, on the whole split and in every replicate, as
in :mod:`mlbench.results.stats`; without a mask nothing changes.

Each run's metrics per replicate are the costly part (at PadChest's size about a second per
entry). A comparison computes them once per run even when B is A, and inside
:func:`sharing_replicates` (a grid's comparison) once per run entry across every comparison:
the baseline's are reused by every remedy (:class:`ReplicateCache`). A caller holding a run entry's
replicates already (``stored``, or offered to the shared cache with :meth:`ReplicateCache.offering`: what a
run's metrics stage kept, :class:`mlbench.results.stats.EntryReplicates`) has them used instead where their
key is that of this comparison's arrays, patients and draws, and their shapes fit; anything else is computed.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from mlbench.data.labels import check_known
from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.foundations.missing import finite_mean
from mlbench.results.metrics import BRIER, ECE, lower_is_better
from mlbench.results.stats import (CI_LEVEL, EntryReplicates, PatientBootstrap, calibration_metrics, decision_metrics,
                                   label_groups, patient_bootstrap, ranking_metrics, replicates_key, with_whole_split)

COLUMNS = ("scope", "name", "metric", "difference", "ci_low", "ci_high", "sd", "n_seeds", "p_value", "p_adjusted",
           "verdict")
# The rows Holm's adjustment treats as one family of tests within one comparison.
FAMILY = ("scope", "metric")
ALPHA = 1 - CI_LEVEL
DEFAULT_METRICS = ("auc", "auprc", "f1", ECE, BRIER)
RANKING = ("auc", "auprc")
DECISION = ("f1", "f1_pos", "hamming")
CALIBRATION = (ECE, BRIER)
KNOWN = RANKING + DECISION + CALIBRATION
HELPS, HURTS, NO_EVIDENCE = "helps", "hurts", "no evidence"
# The unpaired variant draws run B's replicates from this offset of the seed.
UNPAIRED_SEED_OFFSET = 1


@dataclass(frozen=True)
class BootstrapDifferences:
    """The table and, aligned with its rows, each row's difference per bootstrap replicate.

    ``replicates`` is (rows, n_boot) (NaN where a replicate leaves the row undefined);
    ``bootstrap`` identifies the draws (n_boot, seed, patients) so that only comparisons on the
    same draws are combined across seeds.
    """

    table: pd.DataFrame
    replicates: np.ndarray
    bootstrap: tuple[int, int, str]


def _fingerprint(patient_ids: Sequence[str]) -> str:
    ids = sorted({str(p) for p in patient_ids})
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()[:16]


def _inputs(y, scores_a, scores_b, decisions_a, decisions_b, patient_ids, labels, train_counts, metrics, known=None):
    y = np.asarray(y)
    arrays = {"scores_a": scores_a, "scores_b": scores_b, "decisions_a": decisions_a, "decisions_b": decisions_b}
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if y.ndim != 2 or y.shape[1] != len(labels):
        raise ValueError(f"paired: y has shape {y.shape}; expected (test images, {len(labels)} labels)")
    for name, a in arrays.items():
        if a.shape != y.shape:
            raise ValueError(f"paired: {name} has shape {a.shape}; expected {y.shape} like y (the same test images)")
    for name in ("scores_a", "scores_b"):
        if not np.isfinite(arrays[name].astype(np.float64)).all():
            raise ValueError(f"paired: {name} contain NaN or infinity")
    for name in ("decisions_a", "decisions_b"):
        if not np.isin(arrays[name], (0, 1)).all():
            raise ValueError(f"paired: {name} must hold only 0 and 1")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("paired: y must hold only 0 and 1")
    if len(patient_ids) != y.shape[0]:
        raise ValueError(f"paired: {len(patient_ids)} patient ids for {y.shape[0]} test images")
    unknown = [m for m in metrics if m not in KNOWN]
    if unknown or not metrics:
        raise ValueError(f"paired: unknown metrics {unknown or list(metrics)}; expected some of {', '.join(KNOWN)}")
    groups = label_groups(train_counts, list(labels))
    known = check_known(known, y.shape, "paired")
    if known is not None:
        y = np.where(known, y, 0)  # an unknown cell is never a positive
    return y, arrays, groups, known


def _per_replicate(y, scores, decisions, boot: PatientBootstrap, metrics, known=None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if any(m in RANKING for m in metrics):
        out.update(ranking_metrics(y, scores, boot, known))
    if any(m in DECISION for m in metrics):
        out.update(decision_metrics(y, decisions, boot, known))
    if any(m in CALIBRATION for m in metrics):
        out.update(calibration_metrics(y, scores, boot, known))
    return {m: out[m] for m in metrics}


def _content_key(*arrays: np.ndarray) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


class ReplicateCache:
    """One run entry's metrics on the whole split and per replicate, computed once for many comparisons.

    A grid compares every remedy with one baseline on the same draws: the baseline's replicates
    are computed once per seed and entry instead of once per remedy. Entries are keyed by the
    arrays' content, the metrics and the draws (the same :class:`PatientBootstrap` object, which
    :func:`mlbench.results.stats.patient_bootstrap` returns again for the same draws), so a hit is
    always the same computation. Entries are dropped, least recently used first, once they hold
    more than ``max_bytes`` (the one just computed is always kept).
    """

    def __init__(self, max_bytes: int = 2**26) -> None:
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple, tuple[dict, dict]] = OrderedDict()
        self._sizes: dict[tuple, int] = {}
        self._stacked: dict[int, tuple[PatientBootstrap, PatientBootstrap]] = {}
        self._offered: dict[str, EntryReplicates] = {}

    @contextmanager
    def offering(self, replicates: Sequence[EntryReplicates]) -> Iterator[None]:
        """Within the block, comparisons use these kept replicates where their key fits (module docstring)."""
        added = [r.key for r in replicates if r.key not in self._offered]
        self._offered.update({r.key: r for r in replicates})
        try:
            yield
        finally:
            for key in added:
                self._offered.pop(key, None)

    def offered(self, key: str) -> EntryReplicates | None:
        return self._offered.get(key)

    def metrics(self, y, scores, decisions, boot: PatientBootstrap, metrics: Sequence[str],
                known: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(whole split, per replicate): metric -> (1, labels) and (n_boot, labels); ``known``: False at unknown cells."""
        # the key holds on to boot (through _stacked), so its id names these draws while the cache lives
        content = _content_key(y, scores, decisions) if known is None else _content_key(y, scores, decisions, known)
        key = (id(boot), tuple(metrics), content)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        if id(boot) not in self._stacked:
            self._stacked[id(boot)] = (boot, with_whole_split(boot))
        values = _per_replicate(y, scores, decisions, self._stacked[id(boot)][1], metrics, known)
        for v in values.values():
            v.setflags(write=False)  # handed to every comparison that asks again
        result = ({m: v[:1] for m, v in values.items()}, {m: v[1:] for m, v in values.items()})
        self._entries[key] = result
        self._sizes[key] = sum(v.nbytes for v in values.values())
        while len(self._entries) > 1 and sum(self._sizes.values()) > self.max_bytes:
            dropped, _ = self._entries.popitem(last=False)
            del self._sizes[dropped]
        return result


# The cache comparisons use when none is given: a fresh one per comparison, unless inside sharing_replicates.
_SHARED: ContextVar[ReplicateCache | None] = ContextVar("shared_replicates", default=None)


@contextmanager
def sharing_replicates(max_bytes: int = 2**28) -> Iterator[ReplicateCache]:
    """Within the block, every comparison shares one :class:`ReplicateCache` (of at most ``max_bytes``)."""
    cache = ReplicateCache(max_bytes)
    token = _SHARED.set(cache)
    try:
        yield cache
    finally:
        _SHARED.reset(token)


def _interval(replicates: np.ndarray) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1 - CI_LEVEL) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def p_value(difference: float, replicates: np.ndarray) -> float:
    """Two-sided p-value of a zero difference: z = difference / the replicates' sd, normal approximation."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2 or not np.isfinite(difference):
        return float("nan")
    se = float(finite.std(ddof=1))
    if se == 0:
        return 1.0 if difference == 0 else 0.0
    return float(math.erfc(abs(difference) / se / math.sqrt(2)))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))  # monotone: never below a smaller p's
        out[i] = running
    return out


def verdict(metric: str, ci_low: float, ci_high: float, p: float) -> str:
    """helps / hurts / no evidence from an interval of B - A and its p-value (module docstring).

    Rows are first called on their own p-value, then :func:`adjust` calls them again on the adjusted
    one, which is never smaller: the adjustment can only withdraw a verdict.
    """
    if np.isnan(ci_low) or np.isnan(ci_high) or not p < ALPHA:
        return NO_EVIDENCE
    better, worse = ci_low > 0, ci_high < 0
    if lower_is_better(metric):
        better, worse = worse, better
    return HELPS if better else HURTS if worse else NO_EVIDENCE


def adjust(table: pd.DataFrame, family: Sequence[str] = FAMILY) -> pd.DataFrame:
    """``p_adjusted`` by Holm within each family (rows sharing the ``family`` columns), and the verdicts.

    A verdict already withdrawn (its own p-value, or seeds that disagree) stays ``no evidence``;
    adjusting over a larger family can only withdraw more.
    """
    table = table.copy()
    adjusted = np.full(len(table), np.nan)
    for _, rows in table.groupby(list(family), sort=False, dropna=False).indices.items():
        adjusted[rows] = holm(table["p_value"].to_numpy(dtype=float)[rows])
    table["p_adjusted"] = adjusted
    table["verdict"] = [NO_EVIDENCE if old == NO_EVIDENCE else verdict(m, lo, hi, p)
                        for old, m, lo, hi, p in zip(table["verdict"], table["metric"], table["ci_low"],
                                                     table["ci_high"], adjusted)]
    return table


def _compare(y, scores_a, scores_b, decisions_a, decisions_b, patient_ids, labels, train_counts, *,
             n_boot: int, seed: int, metrics: Sequence[str], paired: bool,
             known: np.ndarray | None = None, stored: Sequence[EntryReplicates] = ()) -> BootstrapDifferences:
    metrics = tuple(metrics)
    labels = list(labels)
    y, arrays, groups, known = _inputs(y, scores_a, scores_b, decisions_a, decisions_b, patient_ids, labels,
                                       train_counts, metrics, known)
    if n_boot < 1:
        raise ValueError(f"paired: n_boot must be at least 1, got {n_boot}")
    boot_a = patient_bootstrap(patient_ids, n_boot, seed)
    seed_b = seed if paired else seed + UNPAIRED_SEED_OFFSET
    boot_b = boot_a if paired else patient_bootstrap(patient_ids, n_boot, seed_b)
    cache = _SHARED.get() or ReplicateCache()
    given = {s.key: s for s in stored}

    def run_metrics(run: str, boot: PatientBootstrap, boot_seed: int):
        scores, decisions = arrays[f"scores_{run}"], arrays[f"decisions_{run}"]
        if given or cache._offered:
            key = replicates_key(y, scores, decisions, patient_ids, n_boot=n_boot, seed=boot_seed, known=known)
            hit = given.get(key) or cache.offered(key)
            if hit is not None and all(np.shape(hit.values.get(m)) == (n_boot + 1, len(labels)) for m in metrics):
                return {m: hit.values[m][:1] for m in metrics}, {m: hit.values[m][1:] for m in metrics}
        return cache.metrics(y, scores, decisions, boot, metrics, known)

    point_a, reps_a = run_metrics("a", boot_a, seed)
    point_b, reps_b = run_metrics("b", boot_b, seed_b)

    rows: list[dict] = []
    replicate_rows: list[np.ndarray] = []

    def add(scope: str, name: str, metric: str, columns: list[int]) -> None:
        if scope == "label":
            (j,) = columns
            difference = float(point_b[metric][0, j] - point_a[metric][0, j])
            reps = reps_b[metric][:, j] - reps_a[metric][:, j]
        else:
            difference = float(finite_mean(point_b[metric][:, columns])[0]
                               - finite_mean(point_a[metric][:, columns])[0])
            reps = finite_mean(reps_b[metric][:, columns]) - finite_mean(reps_a[metric][:, columns])
        low, high = _interval(reps) if not np.isnan(difference) else (float("nan"), float("nan"))
        p = p_value(difference, reps)
        rows.append({"scope": scope, "name": name, "metric": metric, "difference": difference, "ci_low": low,
                     "ci_high": high, "sd": float("nan"), "n_seeds": 1, "p_value": p, "p_adjusted": float("nan"),
                     "verdict": verdict(metric, low, high, p)})
        replicate_rows.append(reps)

    index = {label: j for j, label in enumerate(labels)}
    for metric in metrics:
        for j, label in enumerate(labels):
            add("label", label, metric, [j])
        for name, members in groups.items():
            add("group", name, metric, [index[m] for m in members])
        add("macro", GLOBAL_LABEL, metric, list(range(len(labels))))
    table = adjust(pd.DataFrame(rows, columns=list(COLUMNS)))
    return BootstrapDifferences(table, np.vstack(replicate_rows), (int(n_boot), int(seed), _fingerprint(patient_ids)))


def paired_differences(y, scores_a, scores_b, decisions_a, decisions_b, patient_ids, labels, train_counts, *,
                       n_boot: int = 1000, seed: int = 0,
                       metrics: Sequence[str] = DEFAULT_METRICS, known: np.ndarray | None = None,
                       stored: Sequence[EntryReplicates] = ()) -> BootstrapDifferences:
    """B - A per label, frequency group and macro, with paired patient-bootstrap 95% CIs.

    ``y`` (test images, labels) 0/1; ``scores_*`` the runs' scores and ``decisions_*`` their 0/1
    decisions on the same images in the same order; ``patient_ids`` each image's patient;
    ``train_counts`` positives per label in the training split (for the groups); ``known`` False at
    unknown cells (None: every cell known). Deterministic for (patients, n_boot, seed).
    ``stored``: replicates computed before, used where their key fits (module docstring).
    """
    return _compare(y, scores_a, scores_b, decisions_a, decisions_b, patient_ids, labels, train_counts,
                    n_boot=n_boot, seed=seed, metrics=metrics, paired=True, known=known, stored=stored)


def unpaired_differences(y, scores_a, scores_b, decisions_a, decisions_b, patient_ids, labels, train_counts, *,
                         n_boot: int = 1000, seed: int = 0,
                         metrics: Sequence[str] = DEFAULT_METRICS, known: np.ndarray | None = None) -> BootstrapDifferences:
    """As :func:`paired_differences`, but run B's replicates resample patients independently of A's."""
    return _compare(y, scores_a, scores_b, decisions_a, decisions_b, patient_ids, labels, train_counts,
                    n_boot=n_boot, seed=seed, metrics=metrics, paired=False, known=known)


def combine_seeds(comparisons: Sequence[BootstrapDifferences]) -> BootstrapDifferences:
    """One row per (scope, name, metric) over several seeds' paired comparisons.

    ``difference`` is the mean over the seeds with a defined difference (``n_seeds`` of them),
    ``sd`` their sample standard deviation (NaN for one seed), and the interval that of the mean
    over seeds, replicate by replicate (every seed was compared on the same bootstrap draws).
    ``p_value`` is that of the mean over seeds, adjusted by Holm within each (scope, metric).
    ``helps`` / ``hurts`` need that interval to exclude 0, the adjusted p-value to be below 0.05
    and every seed's difference to lie on the same side; otherwise ``no evidence``.
    """
    comparisons = list(comparisons)
    if not comparisons:
        raise ValueError("combine_seeds: no comparison given")
    first = comparisons[0]
    keys = ["scope", "name", "metric"]
    for i, other in enumerate(comparisons[1:], start=2):
        if other.bootstrap != first.bootstrap:
            raise ValueError(f"combine_seeds: comparison {i} used bootstrap {other.bootstrap}, the first "
                             f"{first.bootstrap}; compare every seed on the same test patients, n_boot and seed")
        if not other.table[keys].equals(first.table[keys]):
            raise ValueError(f"combine_seeds: comparison {i} has other rows (labels, groups or metrics) than the first")
    differences = np.column_stack([c.table["difference"].to_numpy(dtype=float) for c in comparisons])
    stacked = np.stack([c.replicates for c in comparisons])  # (seeds, rows, n_boot)
    defined = np.isfinite(differences)
    n_seeds = defined.sum(axis=1)
    mean = finite_mean(differences, axis=1)
    mean_reps = finite_mean(stacked, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = np.where(defined, differences - mean[:, None], 0.0)
        sd = np.where(n_seeds > 1, np.sqrt((centred**2).sum(axis=1) / np.maximum(n_seeds - 1, 1)), np.nan)
    rows = []
    for r, base in enumerate(first.table[keys].itertuples(index=False)):
        if n_seeds[r]:
            low, high = _interval(mean_reps[r])
            p = p_value(float(mean[r]), mean_reps[r])
        else:
            low = high = p = float("nan")
        call = verdict(base.metric, low, high, p)
        seeds = differences[r][defined[r]]
        better = seeds < 0 if lower_is_better(base.metric) else seeds > 0
        worse = seeds > 0 if lower_is_better(base.metric) else seeds < 0
        if (call == HELPS and not better.all()) or (call == HURTS and not worse.all()):
            call = NO_EVIDENCE
        rows.append({"scope": base.scope, "name": base.name, "metric": base.metric, "difference": float(mean[r]),
                     "ci_low": low, "ci_high": high, "sd": float(sd[r]), "n_seeds": int(n_seeds[r]),
                     "p_value": p, "p_adjusted": float("nan"), "verdict": call})
    return BootstrapDifferences(adjust(pd.DataFrame(rows, columns=list(COLUMNS))), mean_reps, first.bootstrap)
