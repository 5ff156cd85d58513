"""The public page of a board repository (``mlbench report --board BOARD --out index.html``).

Everything on it comes from the board's own files: ``board.parquet`` (built from verified
submissions only), ``published.parquet``, and each submission's bundle (its recipe and plugins)
and verdict. Submissions are ranked by the board's scoring profile (board.json; ``paper`` for a board
made before profiles): its primary metric on the macro row, with 95% CIs, per frequency group, ties
broken by the profile's next metrics (shown beside it); each is set against the best published entry
of its variant.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from mlbench.judging.board import BOARD_TABLE, BUNDLE_FILE, VERDICT_FILE, open_board, ranking
from mlbench.judging.bundle import BundleError, open_bundle
from mlbench.judging.compare import best_entries, published_verdict
from mlbench.report.collect import ReportError
from mlbench.report.html import METRIC_NAMES, Cell, ci, kv, num, page, table
from mlbench.results import leaderboard
from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.results.profiles import ScoringProfile, sort_entries
from mlbench.results.stats import GROUP_NAMES, group_label


def render_board(folder: str | Path) -> str:
    board = open_board(folder)
    path = board.root / BOARD_TABLE
    if not path.is_file():
        raise ReportError(f"{path}: no such file; run mlbench board build {board.root} first")
    rows = leaderboard.read(path).to_pandas()
    profile = board.profile
    metric, ties = profile.primary, profile.metrics[1:]
    runs, published = rows[rows["source"] == "run"], rows[rows["source"] == "published"]
    ranked = _ranking(runs, published, profile)
    title = f"{board.benchmark} board"
    names = [METRIC_NAMES.get(m, m) for m in profile.metrics]
    parts = [f"<h1>{escape(title)}</h1>",
             f'<p class="sub">{len(ranked["run_id"].unique()) if len(ranked) else 0} verified submissions, ranked by '
             f"the {escape(profile.name)} scoring profile ({escape(profile.summary)}): macro {escape(names[0])} with "
             f"95% patient-bootstrap CIs, ties broken by {escape(', then '.join(names[1:]) or 'nothing')}; benchmark "
             f"version {escape(str(board.config.get('benchmark_version')))}; label file "
             f"{escape(_pins(board.config))}.</p>"]
    headers = ["rank", "submission", "entry", "variant", metric, "95% CI",
               *[f"{g} {metric}" for g in GROUP_NAMES], *ties, "vs published"]
    body = [[Cell(str(i + 1), i + 1), Cell(r.run_id), Cell(r.entry), Cell(str(r.variant)), num(r.value),
             ci(r.ci_low, r.ci_high), *[num(getattr(r, f"g_{g}")) for g in GROUP_NAMES],
             *[num(value) for value in r.ties], Cell(r.verdict)]
            for i, r in enumerate(ranked.itertuples(index=False))]
    numeric = (4, *range(6, 6 + len(GROUP_NAMES) + len(ties)))
    parts.append('<section id="ranking"><h2>Ranking</h2>'
                 + (table("ranking-table", headers, body, filterable=True, numeric=numeric)
                    if body else "<p>No verified submission yet.</p>") + "</section>")
    if len(published):
        parts.append(_published_section(published, profile))
    parts.append('<section id="submissions"><h2>Submissions</h2>'
                 + "".join(_submission(folder) for folder in board.submissions())
                 + "</section>")
    parts.append("<footer>Written by <code>mlbench report --board</code> from board.parquet, published.parquet and "
                 "each submission's bundle and verdict.</footer>")
    banner = ("SYNTHETIC DATA — this practice board is pinned to a generated demo corpus: its numbers exercise "
              "the pipeline and say nothing about real images.") if board.synthetic else None
    return page(("[SYNTHETIC] " if board.synthetic else "") + title, "".join(parts), banner)


def _pins(config: dict[str, Any]) -> str:
    pins = config.get("canonical_sources") or []
    if pins:
        return ", ".join(f"{p['release']} (sha256 {p['content_sha256'][:12]}…)" for p in pins)
    pinned = config.get("pinned_file") or {}
    return f"{pinned.get('name')} (sha256 {str(pinned.get('content_sha256'))[:12]}…)"


def _ranking(runs: pd.DataFrame, published: pd.DataFrame, profile: ScoringProfile) -> pd.DataFrame:
    """One row per (submission, entry), best first by the profile: the primary metric's macro value, its CI,
    the groups' values, the next metrics' macro values (``ties``) and the verdict."""
    metric = profile.primary
    macro = runs[(runs["label"] == GLOBAL_LABEL) & (runs["metric"] == metric)].copy()
    for g in GROUP_NAMES:
        part = runs[(runs["label"] == group_label(g)) & (runs["metric"] == metric)]
        macro = macro.merge(part[["run_id", "entry", "value"]].rename(columns={"value": f"g_{g}"}),
                            on=["run_id", "entry"], how="left")
    verdicts = []
    for r in macro.itertuples(index=False):
        same = published[published["variant"] == r.variant]
        best = best_entries(same, metric).get(GLOBAL_LABEL) if len(same) else None
        value = (same[(same["entry"] == best) & (same["label"] == GLOBAL_LABEL) & (same["metric"] == metric)]["value"]
                 .iloc[0] if best else float("nan"))
        verdict = published_verdict(r.value, r.ci_low, r.ci_high, value, metric, True)
        verdicts.append(f"{verdict} ({best} {value:.3f})" if best else verdict)
    macro["verdict"] = verdicts
    glob = runs[runs["label"] == GLOBAL_LABEL].drop_duplicates(["run_id", "entry", "metric"])
    glob = glob.set_index(["run_id", "entry", "metric"])["value"]
    macro["ties"] = [[glob.get((r.run_id, r.entry, m), float("nan")) for m in profile.metrics[1:]]
                     for r in macro.itertuples(index=False)]
    place = {key: i for i, key in enumerate(ranking(runs, profile))}
    order = sorted(range(len(macro)), key=lambda i: place[(macro["run_id"].iloc[i], macro["entry"].iloc[i])])
    return macro.iloc[order]


def _published_section(published: pd.DataFrame, profile: ScoringProfile) -> str:
    """The published entries' macro values of the primary metric, best first by the profile."""
    metric, keys = profile.primary, ["variant", "entry", "run_id"]
    macro = sort_entries(published, profile, keys=keys)
    macro = macro[(macro["label"] == GLOBAL_LABEL) & (macro["metric"] == metric)]
    body = [[Cell(str(r.variant)), Cell(r.entry), num(r.value), ci(r.ci_low, r.ci_high), Cell(str(r.run_id))]
            for r in macro.itertuples(index=False)]
    return ('<section id="published"><h2>Published baseline</h2>'
            + table("published-table", ["variant", "entry", metric, "95% CI", "source"], body, numeric=(2,))
            + "</section>")


def _submission(folder: Path) -> str:
    """One submission: its verdict, recipe and plugins, read from its own files (a bad file is said, not fatal)."""
    head = f'<details id="sub-{escape(folder.name)}"><summary>{escape(folder.name)}</summary>'
    try:
        if any((folder / name).is_symlink() for name in (BUNDLE_FILE, VERDICT_FILE)):
            raise OSError("a link: a board reads only its own files")
        bundle = open_bundle(folder / BUNDLE_FILE)
        verdict = json.loads((folder / VERDICT_FILE).read_text("utf-8"))
    except (BundleError, OSError, ValueError) as exc:
        return head + f"<p>cannot be read: {escape(str(exc))}</p></details>"
    recipe = bundle.manifest.get("recipe") if isinstance(bundle.manifest.get("recipe"), dict) else {}
    pairs = [("accepted", str(verdict.get("accepted") if isinstance(verdict, dict) else False)),
             ("bundle sha256", bundle.sha256), ("kind", bundle.kind)]
    pairs += [(k, _text(recipe.get(k))) for k in ("backbones", "loss", "sampler", "ensembles", "variant",
                                                   "image_size", "max_epochs", "seed") if k in recipe]
    plugins = bundle.environment.get("plugins") if isinstance(bundle.environment.get("plugins"), list) else []
    body = [[Cell(_text(p.get("kind"))), Cell(_text(p.get("name"))), Cell(_text(p.get("distribution"))),
             Cell(_text(p.get("version"))), Cell(_text(p.get("files_sha256"))[:12])]
            for p in plugins if isinstance(p, dict)]
    checks = verdict.get("checks", []) if isinstance(verdict, dict) else []
    passed = ", ".join(_text(c.get("check")) for c in checks if isinstance(c, dict) and c.get("ok"))
    not_checked = verdict.get("not_checked", []) if isinstance(verdict, dict) else []
    return (head + kv(pairs) + f"<p>checks passed: {escape(passed)}</p>"
            + "".join(f"<p>not checked: {escape(_text(n))}</p>" for n in not_checked)
            + table(f"plugins-{folder.name}", ["kind", "name", "distribution", "version", "files sha256"], body)
            + "</details>")


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)
