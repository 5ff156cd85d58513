"""Reading leaderboards and comparing a run with the published baseline, honestly.

Honest means: a run "beats published" on a label only when the published value lies below the
run's 95% confidence interval (patient bootstrap, :mod:`mlbench.results.stats`) — a point estimate above
the published number is not enough, because the run's test split is not the paper's. A run on
the synthetic demo corpus is never comparable with published numbers, and every output says so.

Which metric, and in which order the entries come: the run's scoring profile
(:func:`mlbench.results.profiles.profile_of`, or ``profile`` given): its primary metric is compared
unless ``metric`` is given, entries are ranked by it (ties by the profile's next metrics), and a
comparison of two runs lists the profile's metrics first.

Which published entry a run entry is compared with: the entry of the same name when the
published table has it (the paper's five backbones under their timm names and the ensembles
``ctp``, ``ptc-lw``, ``ptc-mode``); any other entry (a new backbone, a new ensemble) is compared
with the best published entry of that metric and variant, i.e. the one with the best
``__global__`` value (CTP for AUC in every table of the paper): a new method has to beat the best
published one, not a weak one.

Where the published rows come from: ``leaderboard_file`` if given, else
:func:`mlbench.results.leaderboard.find_board` (the user's own board of the benchmark, else the published
board its plugin ships). A run is comparable with them when benchmark and benchmark version match
and its data is real (any dataset kind but synthetic).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlbench.foundations.errors import UserError
from mlbench.results import leaderboard
from mlbench.demo import is_synthetic
from mlbench.foundations.io import write_bytes
from mlbench.results.leaderboard import GLOBAL_LABEL, LOWER_IS_BETTER, find_board
from mlbench.foundations.missing import is_unknown
from mlbench.results.profiles import (DEFAULT_PROFILE, PROFILES, ScoringProfile, order_metrics, profile_of,
                                      ranked_entries, run_profile)
from mlbench.results.rescoring import StoredRunError, compare_stored, load_stored_run, recompute_run
from mlbench.results.rundir import RunDir



class CompareError(UserError, ValueError):
    """A leaderboard or run cannot be compared (the message names the file and what is missing)."""


# -- comparing a run with the published baseline -------------------------------------------------
@dataclass
class PublishedComparison:
    """A run's per-label values next to the published ones (one metric), with verdicts.

    ``rows`` columns: entry, reference (the published entry compared with), label, n_positive
    (the run's test positives), value, ci_low, ci_high, published, delta (value - published),
    verdict, beats_published. ``comparable`` is False for synthetic runs or a different benchmark
    version; ``notes`` says why, and what else the reader must know.
    """

    run_id: str
    benchmark: str
    metric: str
    run_variant: str
    published_variant: str
    dataset_kind: str
    comparable: bool
    ci_source: str
    rows: pd.DataFrame  # entries best first by the profile
    notes: list[str] = field(default_factory=list)
    profile: ScoringProfile = PROFILES[DEFAULT_PROFILE]
    external: list["ExternalComparison"] = field(default_factory=list)  # the run's external evaluations

    def beats(self) -> pd.DataFrame:
        return self.rows[self.rows["beats_published"]]


Comparison = PublishedComparison  # the old name, still imported by mlbench/api.py


def published_verdict(value: float, low: float, high: float, published: float, metric: str, comparable: bool) -> str:
    if is_unknown(published):
        return "no published value"
    if is_unknown(value):
        return "undefined in the run"
    if is_unknown(low) or is_unknown(high):
        return "no CI"
    better_than_ci = published < low if metric not in LOWER_IS_BETTER else published > high
    worse_than_ci = published > high if metric not in LOWER_IS_BETTER else published < low
    if not comparable:
        return "not comparable"
    if better_than_ci:
        return "beats published"
    if worse_than_ci:
        return "below published"
    return "within CI"


def reference_entries(published: pd.DataFrame, run_entries: list[str], metric: str) -> dict[str, str]:
    """Run entry -> the published entry its ``__global__`` row is compared with (module docstring)."""
    names = set(published["entry"])
    best = best_entries(published, metric)
    out = {}
    for entry in run_entries:
        if entry in names:
            out[entry] = entry
        elif GLOBAL_LABEL in best:
            out[entry] = best[GLOBAL_LABEL]
    return out


def best_entries(published: pd.DataFrame, metric: str) -> dict[str, str]:
    """Label -> the published entry with the best ``__global__`` value among those that report that label.

    A board may hold entries with only a mean (NIH's cited papers) beside entries with every label:
    a label is compared with the best entry that has it, not left without a value."""
    rows = published[published["metric"] == metric].dropna(subset=["value"])
    glob = rows[rows["label"] == GLOBAL_LABEL].drop_duplicates("entry").set_index("entry")["value"]
    ranked = list((glob.sort_values() if metric in LOWER_IS_BETTER else glob.sort_values(ascending=False)).index)
    order = {entry: i for i, entry in enumerate(ranked)}  # sort is stable: ties keep the board's order
    best: dict[str, str] = {}
    for label, entries in rows.groupby("label", sort=False)["entry"]:
        candidates = [e for e in dict.fromkeys(entries) if e in order]
        if candidates:
            best[str(label)] = min(candidates, key=order.__getitem__)
    return best


def compare_run(run_dir: str | Path, *, against: str = "published", variant: str | None = None,
                metric: str | None = None, leaderboard_file: str | Path | None = None, n_boot: int = 1000,
                seed: int = 0, profile: str | None = None) -> PublishedComparison:
    """Compare RUN_DIR's leaderboard with the published rows of its benchmark.

    ``variant`` picks the published variant (default: the run's); ``metric`` the metric compared
    (default: the first metric of ``profile``, else of the run's profile, that the published variant
    reports; a note says when that is not the primary one). If the run's leaderboard has no
    confidence intervals (a run made before intervals were computed), they are computed here from
    its predictions with ``n_boot`` replicates (``ci_source`` says which).
    """
    run_dir = Path(run_dir)
    if against != "published":
        raise CompareError(f"--against {against!r}: only 'published' is supported")
    board_path = RunDir(run_dir).leaderboard_file
    if not board_path.is_file():
        raise CompareError(f"{board_path}: no such file; is this a finished run directory?")
    run_board = leaderboard.read(board_path).to_pandas()
    if run_board.empty:
        raise CompareError(f"{board_path}: the leaderboard is empty")
    info = run_board.iloc[0]
    benchmark, run_variant = str(info["benchmark"]), str(info["variant"])
    dataset_kind = str(info["dataset_kind"])
    published_variant = variant or run_variant
    scoring = run_profile(run_dir, benchmark, chosen=profile)

    if leaderboard_file is None and not leaderboard.local_board(benchmark).is_file() \
            and leaderboard.published_board(benchmark) is None:
        raise CompareError(f"benchmark '{benchmark}' ships no published board, so there is nothing published to "
                           f"compare {run_dir} with; compare two runs instead (--against OTHER_RUN_DIR: paired "
                           "differences on the same test images), or give a board with --file")
    published_all = leaderboard.read(find_board(benchmark, leaderboard_file)).to_pandas()
    published_all = published_all[(published_all["source"] == "published") & (published_all["benchmark"] == benchmark)]
    if published_all.empty:
        raise CompareError(f"the leaderboard of '{benchmark}' has no published rows")
    notes: list[str] = []
    if metric is None:
        reported = set(published_all.loc[published_all["variant"] == published_variant, "metric"])
        metric = next((m for m in scoring.metrics if m in reported), scoring.primary)
        if metric != scoring.primary:
            notes.append(f"the published variant '{published_variant}' reports no {scoring.primary} (the first metric "
                         f"of scoring profile {scoring.name}): compared on {metric}, the profile's next it reports.")
    published = published_all[(published_all["variant"] == published_variant) & (published_all["metric"] == metric)]
    if published.empty:
        have = sorted(published_all.loc[published_all["metric"] == metric, "variant"].unique())
        raise CompareError(f"no published '{metric}' rows for variant '{published_variant}'; published variants: "
                           f"{', '.join(have) or 'none'}")

    comparable = True
    if is_synthetic(dataset_kind):
        comparable = False
        notes.append(f"NOT COMPARABLE: this run used the SYNTHETIC demo corpus (dataset_kind {dataset_kind}); the "
                     f"published values are {benchmark} results on real data. The table only exercises the comparison.")
    versions = set(published["benchmark_version"]) - {info["benchmark_version"]}
    if versions:
        comparable = False
        notes.append(f"NOT COMPARABLE: run benchmark version {info['benchmark_version']}, published "
                     f"{', '.join(sorted(versions))}.")
    if published_variant != run_variant:
        notes.append(f"run variant '{run_variant}' is compared with published variant '{published_variant}'.")
    notes.append("Published values may come from another test split than this run's: compare intervals, not points.")
    notes.append("Each label's verdict is its own test (the run's 95% CI against the published value), without a "
                 "multiplicity correction: over many labels a few fall outside by chance.")

    rows = run_board[(run_board["metric"] == metric) & ~run_board["label"].str.startswith("__group_")]
    rank = {entry: i for i, (entry,) in enumerate(ranked_entries(run_board, scoring))}  # the profile, not metric
    rows = rows.iloc[np.argsort(rows["entry"].map(rank).to_numpy(), kind="stable")]
    ci_source = "run"
    if rows[["ci_low", "ci_high"]].isna().all().all():
        rows = _with_recomputed_intervals(run_dir, rows, metric, n_boot, seed)
        ci_source = f"recomputed here ({n_boot} patient-bootstrap replicates, seed {seed})"
        notes.append(f"The run's leaderboard has no confidence intervals: they were {ci_source} from its predictions.")

    refs = reference_entries(published, list(dict.fromkeys(rows["entry"])), metric)
    per_label = best_entries(published, metric)
    for entry, ref in refs.items():
        if entry != ref:
            others = sorted({per_label[label] for label in set(rows["label"]) - {GLOBAL_LABEL}
                             if label in per_label and per_label[label] != ref})
            also = (f" (labels it does not report: with the best entry that does, {', '.join(others)})"
                    if others else "")
            notes.append(f"entry '{entry}' has no published counterpart: compared with the best published "
                         f"entry '{ref}'{also}.")
    pub_values = published.set_index(["entry", "label"])["value"]
    out = []
    for r in rows.itertuples(index=False):
        ref = refs.get(r.entry)
        if ref is not None and ref != r.entry and (ref, r.label) not in pub_values.index:
            ref = per_label.get(r.label, ref)
        pub = float(pub_values.get((ref, r.label), np.nan)) if ref else np.nan
        value = float(r.value) if not is_unknown(r.value) else np.nan
        low = float(r.ci_low) if not is_unknown(r.ci_low) else np.nan
        high = float(r.ci_high) if not is_unknown(r.ci_high) else np.nan
        verdict = published_verdict(value, low, high, pub, metric, comparable)
        out.append({"entry": r.entry, "reference": ref, "label": r.label,
                    "n_positive": None if is_unknown(r.n_positive) else int(r.n_positive), "value": value,
                    "ci_low": low, "ci_high": high, "published": pub, "delta": value - pub, "verdict": verdict,
                    "beats_published": verdict == "beats published"})
    table = pd.DataFrame(out)
    return PublishedComparison(run_id=str(info["run_id"]), benchmark=benchmark, metric=metric,
                               run_variant=run_variant, published_variant=published_variant,
                               dataset_kind=dataset_kind, comparable=comparable, ci_source=ci_source, rows=table,
                               notes=notes, profile=scoring, external=compare_external(run_dir, profile=profile))


def _with_recomputed_intervals(run_dir: Path, rows: pd.DataFrame, metric: str, n_boot: int,
                               seed: int) -> pd.DataFrame:
    try:
        recomputed = recompute_run(run_dir, n_boot=n_boot, seed=seed)
    except StoredRunError as exc:
        raise CompareError(f"{run_dir}: cannot recompute intervals: {exc}") from None
    keyed = recomputed[recomputed["metric"] == metric].set_index(["entry", "label"])
    rows = rows.copy()
    for column in ("ci_low", "ci_high"):
        rows[column] = [keyed[column].get((e, lab), np.nan) for e, lab in zip(rows["entry"], rows["label"])]
    return rows


# -- the picture -----------------------------------------------------------------------------------
def default_plot_entry(comparison: PublishedComparison) -> str:
    """``ctp`` when the run has it (the paper's best), else the run's best entry by the global value."""
    entries = list(dict.fromkeys(comparison.rows["entry"]))
    if "ctp" in entries:
        return "ctp"
    glob = comparison.rows[comparison.rows["label"] == GLOBAL_LABEL].dropna(subset=["value"])
    if glob.empty:
        return entries[0]
    best = glob["value"].idxmin() if comparison.metric in LOWER_IS_BETTER else glob["value"].idxmax()
    return str(glob.loc[best, "entry"])


def plot_comparison(comparison: PublishedComparison, path: str | Path, entry: str | None = None) -> Path:
    """Per-label bars, run (with its 95% CI whiskers) next to published, most frequent label first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entry = entry or default_plot_entry(comparison)
    rows = comparison.rows[(comparison.rows["entry"] == entry) & (comparison.rows["label"] != GLOBAL_LABEL)]
    if rows.empty:
        raise CompareError(f"entry '{entry}' is not in run {comparison.run_id}; entries: "
                           f"{', '.join(dict.fromkeys(comparison.rows['entry']))}")
    rows = rows.sort_values("n_positive", ascending=False, kind="stable")
    x = np.arange(len(rows))
    value = rows["value"].to_numpy(dtype=float)
    low = np.nan_to_num(value - rows["ci_low"].to_numpy(dtype=float), nan=0.0)
    high = np.nan_to_num(rows["ci_high"].to_numpy(dtype=float) - value, nan=0.0)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.32 * len(rows) + 2), 5.5))
    width = 0.4
    ax.bar(x - width / 2, np.nan_to_num(value), width, yerr=np.vstack([low, high]), capsize=2,
           label=f"run: {entry} (95% CI)", color="#1f77b4", error_kw={"elinewidth": 0.8})
    ax.bar(x + width / 2, np.nan_to_num(rows["published"].to_numpy(dtype=float)), width,
           label=f"published: {rows['reference'].iloc[0]} ({comparison.published_variant})", color="#bbbbbb")
    names = [f"{'* ' if b else ''}{lab} ({n})" for lab, n, b in
             zip(rows["label"], rows["n_positive"].fillna(0).astype(int), rows["beats_published"])]
    # Names come from files: ``parse_math=False`` draws a ``$`` literally instead of parsing mathtext.
    ax.set_xticks(x, names, rotation=75, ha="right", fontsize=7, parse_math=False)
    ax.set_ylabel(comparison.metric.upper())
    if comparison.metric == "auc":
        ax.axhline(0.5, color="black", linewidth=0.6, linestyle=":")
    ax.set_ylim(0, 1.05)
    title = (f"{comparison.benchmark} ({comparison.run_variant}) run {comparison.run_id}: per-label "
             f"{comparison.metric.upper()}, labels by test positives; * = beats published (published < CI low)")
    ax.set_title(title, fontsize=8, parse_math=False)
    if not comparison.comparable:
        ax.text(0.5, 0.5, "NOT COMPARABLE\n(" + comparison.dataset_kind + " data)", transform=ax.transAxes,
                ha="center", va="center", fontsize=28, color="red", alpha=0.35, rotation=20, parse_math=False)
    for legend_text in ax.legend(fontsize=7, loc="lower left").get_texts():
        legend_text.set_parse_math(False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    write_bytes(path, buffer.getvalue())
    return Path(path)


# -- one run against another ---------------------------------------------------------------------------
@dataclass
class PairedComparison:
    """RUN_B - RUN_A per entry both have, with paired patient-bootstrap 95% CIs (:mod:`mlbench.results.paired`)."""

    run_a: str
    run_b: str
    rows: pd.DataFrame  # entry + mlbench.results.paired.COLUMNS; each entry's metrics in the profile's order
    notes: list[str] = field(default_factory=list)
    profile: ScoringProfile = PROFILES[DEFAULT_PROFILE]


def compare_runs(run_a: str | Path, run_b: str | Path, *, n_boot: int = 1000, seed: int = 0,
                 profile: str | None = None) -> PairedComparison:
    """Compare two runs of one benchmark on the same test images: differences B - A, paired over patients.

    The metrics come in the order of ``profile`` (default: RUN_B's scoring profile)."""
    try:
        a, b = load_stored_run(run_a), load_stored_run(run_b)
    except StoredRunError as exc:
        raise CompareError(str(exc)) from None
    scoring = profile_of(b.manifest, b.manifest.get("benchmark"), chosen=profile)  # a wrong name: before the work
    for key in ("benchmark", "benchmark_version"):
        if a.manifest.get(key) != b.manifest.get(key):
            raise CompareError(f"{run_b}: {key} {b.manifest.get(key)!r} differs from {run_a}'s "
                               f"{a.manifest.get(key)!r}; a paired comparison needs the same benchmark and split")
    # Split hashes differ too when only a label-changing dataset option does (an uncertainty policy): the
    # pairing then rests on the test images and their labels, which compare_stored checks exactly.
    other_split = a.manifest.get("split_hash") != b.manifest.get("split_hash")
    try:
        compared = compare_stored(a, b, n_boot=n_boot, seed=seed)
    except StoredRunError as exc:
        raise CompareError(str(exc)) from None
    tables = [c.table.assign(entry=entry) for entry, c in compared.items()]
    rows = pd.concat(tables, ignore_index=True)
    rows = rows[["entry"] + [c for c in rows.columns if c != "entry"]]
    place = {m: i for i, m in enumerate(order_metrics(rows["metric"], scoring))}
    entries = {e: i for i, e in enumerate(dict.fromkeys(rows["entry"]))}
    order = rows["entry"].map(entries).to_numpy() * len(place) + rows["metric"].map(place).to_numpy()
    rows = rows.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    notes = [f"differences are {run_b} minus {run_a}, on their {len(a.test_ids)} shared test images; intervals "
             f"resample the same patients for both runs ({n_boot} replicates, seed {seed})"]
    if other_split:
        notes.append(f"the split hashes differ ({a.manifest.get('split_hash')} and {b.manifest.get('split_hash')}: "
                     "other dataset options or another split of the training images); the test images and their "
                     "labels are the same, so the test comparison is paired")
    if is_synthetic(a.manifest.get("dataset_kind")):
        notes.append("SYNTHETIC DEMO DATA: the comparison exercises the method, it says nothing about real data")
    return PairedComparison(str(run_a), str(run_b), rows, notes, scoring)


# -- the run on its own test split and on other benchmarks' (mlbench evaluate) ----------------------------
EXTERNAL_COLUMNS = ("entry", "label", "target_label", "term", "relation", "n_internal", "internal", "internal_ci_low",
                    "internal_ci_high", "n_external", "external", "external_ci_low", "external_ci_high", "difference",
                    "verdict")


@dataclass
class ExternalComparison:
    """A run's internal test values next to one external evaluation's, per shared label, one metric.

    ``rows`` (EXTERNAL_COLUMNS): every entry; per label the run's own test value with its CI, the
    external value on ``benchmark``'s test split with its CI, ``difference`` = external - internal and a
    ``verdict``: ``lower`` / ``higher`` when the two 95% CIs do not overlap, else ``CIs overlap``. The
    ``__global__`` row is the macro mean over the shared labels only, on both sides. ``entry`` is the
    headline entry (the run's best by its scoring profile)."""

    benchmark: str
    scope: str
    metric: str
    entry: str
    rows: pd.DataFrame
    n_images: int
    test_split: str
    synthetic: bool
    notes: list[str] = field(default_factory=list)
    not_shared: dict[str, str] = field(default_factory=dict)

    def of(self, entry: str | None = None) -> pd.DataFrame:
        return self.rows[self.rows["entry"] == (entry or self.entry)]


def external_verdict(internal: tuple[float, float, float], external: tuple[float, float, float]) -> str:
    """``lower`` / ``higher`` externally when the two CIs are apart; the CIs rest on different patients."""
    (i_value, i_low, i_high), (e_value, e_low, e_high) = internal, external
    if is_unknown(e_value) or is_unknown(i_value):
        return "undefined externally" if is_unknown(e_value) else "undefined internally"
    if any(is_unknown(v) for v in (i_low, i_high, e_low, e_high)):
        return "no CI"
    if e_high < i_low:
        return "lower"
    if e_low > i_high:
        return "higher"
    return "CIs overlap"


def compare_external(run_dir: str | Path, *, profile: str | None = None, metric: str | None = None
                     ) -> list[ExternalComparison]:
    """Internal vs external per shared label for every external evaluation of RUN_DIR (none: an empty list).

    ``metric``: default the first of the run's scoring profile (AUC for ``paper``)."""
    from mlbench.results.evaluations import evaluations

    found = evaluations(run_dir)
    if not found:
        return []
    run_board = RunDir(run_dir).leaderboard().to_pandas()
    scoring = run_profile(run_dir, chosen=profile)
    metric = metric or scoring.primary
    out = []
    for ev in found:
        record = ev.record
        internal = run_board[run_board["metric"] == metric].set_index(["entry", "label"])
        macro = {(r.get("entry"), r.get("metric")): r for r in record.get("internal_over_shared", [])
                 if isinstance(r, dict)}
        external = ev.rows[ev.rows["metric"] == metric].set_index(["entry", "label"])
        entries = list(dict.fromkeys(ev.rows["entry"]))
        rows = []
        for entry in entries:
            for pair in [*record["shared"], None]:
                label = GLOBAL_LABEL if pair is None else pair["label"]
                if pair is None:
                    got = macro.get((entry, metric), {})
                    mine = tuple(_number(got.get(k)) for k in ("value", "ci_low", "ci_high"))
                    n_internal = got.get("n_positive")
                else:
                    r = internal.loc[(entry, label)] if (entry, label) in internal.index else None
                    mine = tuple(_number(None if r is None else r[k]) for k in ("value", "ci_low", "ci_high"))
                    n_internal = None if r is None or is_unknown(r["n_positive"]) else int(r["n_positive"])
                e = external.loc[(entry, label)] if (entry, label) in external.index else None
                theirs = tuple(_number(None if e is None else e[k]) for k in ("value", "ci_low", "ci_high"))
                rows.append({"entry": entry, "label": label,
                             "target_label": "(shared labels)" if pair is None else pair["target_label"],
                             "term": "" if pair is None else pair["term"],
                             "relation": "" if pair is None else pair["relation"],
                             "n_internal": n_internal, "internal": mine[0], "internal_ci_low": mine[1],
                             "internal_ci_high": mine[2],
                             "n_external": None if e is None or is_unknown(e["n_positive"]) else int(e["n_positive"]),
                             "external": theirs[0], "external_ci_low": theirs[1], "external_ci_high": theirs[2],
                             "difference": theirs[0] - mine[0], "verdict": external_verdict(mine, theirs)})
        headline = record.get("headline_entry") if record.get("headline_entry") in entries else entries[0]
        notes = [str(n) for n in record.get("notes", []) if isinstance(n, str)]
        notes.append(f"internal: the run's own test split; external: {ev.benchmark}'s test split. The two intervals "
                     "rest on different patients: non-overlapping intervals suggest a real difference, overlapping "
                     "ones do not rule one out.")
        out.append(ExternalComparison(ev.benchmark, str(record.get("scope")), metric, str(headline),
                                      pd.DataFrame(rows, columns=list(EXTERNAL_COLUMNS)),
                                      int(record.get("n_scored") or 0), str(record.get("test_split", "")),
                                      is_synthetic(record.get("dataset_kind")), notes,
                                      {str(k): str(v) for k, v in dict(record.get("not_shared") or {}).items()}))
    return out


def _number(value) -> float:
    return float("nan") if value is None or is_unknown(value) else float(value)

