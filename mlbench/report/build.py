"""From a run or grid directory's files to plain data the HTML renderer lays out (no HTML here)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlbench.data.imbalance import ImbalanceReport, imbalance_by_split
from mlbench.data.splits import split_labels
from mlbench.demo import is_synthetic
from mlbench.results.leaderboard import GLOBAL_LABEL, METRICS
from mlbench.results.metrics import BRIER, ECE, ECE_BINS, equal_mass_bins, expected_calibration_error
from mlbench.report import collect
from mlbench.report.collect import ReportError
from mlbench.results.rundir import HISTORY, SPLIT, SPLIT_KEY_COLUMNS, RunDir
from mlbench.results.stats import GROUP_NAMES, group_label, label_groups

# The gallery embeds PNG bytes: it stops at this many images or bytes and says how many it left out.
GALLERY_MAX_IMAGES = 12
GALLERY_MAX_BYTES = 6_000_000


def _num(x: Any) -> float:
    return float(x) if x is not None and not (isinstance(x, float) and math.isnan(x)) else float("nan")


@dataclass
class Measure:
    value: float
    ci_low: float
    ci_high: float
    n_positive: int | None = None


@dataclass
class LabelRow:
    label: str
    n_train: int | None
    n_test: int | None
    prevalence: float  # share of the images in split.parquet carrying the label, among those whose cell is known
    auc: Measure
    published: float = float("nan")


@dataclass
class Reliability:
    """One entry's reliability diagram for one frequency group, pooling the (image, label) cells of its labels.

    ``bins``: (mean score, observed positive rate, cells) per non-empty equal-mass bin of the pooled
    scores; ``pooled_ece`` the ECE of exactly those bins. ``ece`` and ``brier`` are the
    leaderboard's group rows: means over the group's labels of each label's own value.
    """

    group: str
    n_labels: int
    cells: int
    bins: list[tuple[float, float, int]]
    pooled_ece: float
    ece: Measure
    brier: Measure


@dataclass
class Panel:
    label: str
    caption: str
    png: bytes


@dataclass
class GalleryImage:
    image_id: str
    panels: list[Panel]
    std_png: bytes | None


@dataclass
class Gallery:
    folder: str
    settings: list[tuple[str, str]]
    scores: list[dict[str, Any]]  # explain.json "scores": label, metric, value, ci_low, ci_high, n_positive
    chance: list[tuple[str, str]]
    images: list[GalleryImage]
    left_out: int
    skipped: int


@dataclass
class RunReport:
    title: str
    synthetic: bool
    dataset_kind: str
    identity: list[tuple[str, str]]
    versions: list[tuple[str, str]]
    plugins: list[tuple[str, str]]
    stages: list[tuple[str, float, str]]
    skips: list[tuple[str, str, int]]
    skips_total: int
    metric_warnings: list[str]
    entries: list[tuple[str, str]]  # (entry, entry_kind) of backbones and ensembles, board order
    global_table: dict[str, dict[str, Measure]]  # entry -> metric -> measure
    groups: dict[str, dict[str, dict[str, Measure]]]  # entry -> group -> metric -> measure
    group_members: dict[str, int]  # group -> labels in it
    per_label: dict[str, list[LabelRow]]  # entry -> rows, most frequent label first
    frequency_basis: str
    published: dict[str, Any] | None  # reference per entry, variant, notes, comparable
    imbalance: dict[str, ImbalanceReport]
    labels: list[str]
    histories: dict[str, dict[str, Any]]
    explainer_rows: pd.DataFrame
    galleries: list[Gallery] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the page leaves out and why (collect.RunFiles.notes)
    reliability: dict[str, list[Reliability]] = field(default_factory=dict)  # entry -> one per frequency group
    # The run on other benchmarks' test splits (mlbench evaluate): internal vs external per shared label.
    external: list[Any] = field(default_factory=list)  # mlbench.judging.compare.ExternalComparison


def build_run(run_dir: Path, against: str | None = None, explain_dirs: list[Path] | None = None) -> RunReport:
    files = collect.read_run(run_dir, explain_dirs)
    m = files.manifest
    board = files.board[files.board["source"] == "run"]
    if board.empty:
        raise ReportError(f"{RunDir(files.run_dir).leaderboard_file}: no rows with source 'run'")
    first = board.iloc[0]
    kind = str(m.get("dataset_kind", first["dataset_kind"]))
    labels = _labels(files, board)
    n_train, n_test, prevalence, basis = _frequencies(files.split, labels, board)

    entries = list(dict.fromkeys(zip(board.loc[board["entry_kind"] != "explainer", "entry"],
                                     board.loc[board["entry_kind"] != "explainer", "entry_kind"])))
    keyed = {(r.entry, r.label, r.metric): Measure(_num(r.value), _num(r.ci_low), _num(r.ci_high),
                                                   None if pd.isna(r.n_positive) else int(r.n_positive))
             for r in board.itertuples(index=False)}
    missing = Measure(float("nan"), float("nan"), float("nan"))
    global_table = {e: {metric: keyed.get((e, GLOBAL_LABEL, metric), missing) for metric in METRICS} for e, _ in entries}
    groups = {e: {g: {metric: keyed[(e, group_label(g), metric)] for metric in METRICS
                      if (e, group_label(g), metric) in keyed}
                  for g in GROUP_NAMES} for e, _ in entries}
    group_members = _group_sizes(n_train, labels)

    published = None
    pub_values: dict[tuple[str, str], float] = {}
    if against is not None:
        comparison = collect.read_published(files.run_dir, against)
        refs = dict(zip(comparison.rows["entry"], comparison.rows["reference"]))
        pub_values = {(r.entry, r.label): _num(r.published) for r in comparison.rows.itertuples(index=False)}
        published = {"variant": comparison.published_variant, "references": refs, "notes": comparison.notes,
                     "comparable": comparison.comparable}

    per_label = {}
    for e, _ in entries:
        rows = [LabelRow(label, n_train.get(label), n_test.get(label), prevalence.get(label, float("nan")),
                         keyed.get((e, label, "auc"), missing), pub_values.get((e, label), float("nan")))
                for label in labels]
        # most frequent first (the paper's order); ties keep the benchmark's order
        rows.sort(key=lambda r: -(r.n_train if r.n_train is not None else -1))
        per_label[e] = rows

    imbalance = {}
    if files.split is not None:
        Y, known = split_labels(files.split, labels)
        imbalance = imbalance_by_split(Y, labels, files.split["split"].astype(str).to_numpy(), known)

    skipped = m.get("skipped") or {}
    skips = []
    for key, count in sorted((skipped.get("counts") or {}).items()):
        stage, _, reason = key.partition(":")
        skips.append((stage, reason or key, int(count)))
    versions = {k: v for k, v in (m.get("versions") or {}).items() if k != "plugins"}
    identity = [
        ("benchmark", f"{m.get('benchmark', first['benchmark'])} (version {m.get('benchmark_version', first['benchmark_version'])})"),
        ("variant", str(m.get("variant", first["variant"]))),
        ("dataset kind", kind),
        ("run id", str(m.get("run_id", first["run_id"]))),
        ("created", str(m.get("created_at", ""))),
        ("split hash", str(m.get("split_hash", first["split_hash"]))),
        ("images per split", ", ".join(f"{k} {v}" for k, v in (m.get("n_images") or {}).items())),
        ("label CSV sha256", str(m.get("csv_sha256", ""))),
        ("git commit", str(m.get("git_commit") or "unknown")),
        ("device", str(m.get("device", ""))),
        ("loss", str(m.get("loss", ""))),
        ("backbones", ", ".join(m.get("backbones") or [])),
        ("ensembles", ", ".join(m.get("ensembles") or [])),
        ("seed", str(m.get("seed", ""))),
        ("bootstrap", _bootstrap_note(m.get("bootstrap"))),
        ("total wall time", f"{m['wall_time_s']:.1f} s" if collect.is_number(m.get("wall_time_s")) else "-"),
        ("recipe", json.dumps(m.get("recipe", {}), sort_keys=True)),
    ]
    histories = {}
    for name, h in files.histories.items():
        hist = h.get("history", [])
        histories[name] = {"epoch": [r.get("epoch") for r in hist], "train_loss": [r.get("train_loss") for r in hist],
                           "val_loss": [r.get("val_loss") for r in hist], "best_epoch": h.get("best_epoch"),
                           "epochs": h.get("epochs"), "best_val_loss": h.get("best_val_loss"),
                           "source": files.history_files.get(name, HISTORY)}
    return RunReport(
        title=f"{m.get('benchmark', first['benchmark'])} · {m.get('variant', first['variant'])} · "
              f"{m.get('run_id', first['run_id'])}",
        synthetic=is_synthetic(kind), dataset_kind=kind, identity=identity,
        versions=[(k, str(v)) for k, v in versions.items()],
        plugins=sorted((k, str(v)) for k, v in ((m.get("versions") or {}).get("plugins") or {}).items()),
        stages=[(str(k), _num(v.get("seconds")) if collect.is_number(v.get("seconds")) else float("nan"),
                 str(v.get("status", ""))) for k, v in (m.get("stages") or {}).items()],
        skips=skips, skips_total=int(skipped["total"]) if collect.is_int(skipped.get("total")) else sum(c for *_, c in skips),
        metric_warnings=list(m.get("metric_warnings") or []),
        entries=entries, global_table=global_table, groups=groups, group_members=group_members,
        per_label=per_label, frequency_basis=basis, published=published, imbalance=imbalance, labels=labels,
        histories=histories, explainer_rows=files.board[files.board["entry_kind"] == "explainer"].copy(),
        galleries=[_gallery(e) for e in files.explains], notes=list(files.notes),
        reliability=_reliability(files.test, n_train, entries, groups),
        external=_external(files.run_dir),
    )


def _external(run_dir: Path) -> list[Any]:
    """Internal vs external per shared label, for each external evaluation of the run (a bad file: one line)."""
    from mlbench.judging.compare import compare_external
    from mlbench.results.rundir import RunDirError

    try:
        return compare_external(run_dir)
    except RunDirError as exc:
        raise ReportError(str(exc)) from None


def _bootstrap_note(info: Any) -> str:
    if not isinstance(info, dict):
        return "-"
    return f"{info.get('n_boot')} replicates resampling {info.get('resampled', '?')}, seed {info.get('seed')}"


def _labels(files: collect.RunFiles, board: pd.DataFrame) -> list[str]:
    if files.split is not None:
        return [c for c in files.split.columns if c not in SPLIT_KEY_COLUMNS]
    return [lab for lab in dict.fromkeys(board["label"]) if not str(lab).startswith("__")]


def _frequencies(split: pd.DataFrame | None, labels: list[str], board: pd.DataFrame):
    """Training and test positives per label, prevalence over all images, and what the order rests on."""
    if split is None:
        test = board[(board["metric"] == "auc")].drop_duplicates("label").set_index("label")["n_positive"]
        n_test = {lab: int(test[lab]) for lab in labels if lab in test.index and not pd.isna(test[lab])}
        return n_test, n_test, {}, f"test positives (leaderboard n_positive; {SPLIT} missing)"
    # sums skip nulls (unknown cells); prevalence is over each label's known cells
    n_train = {lab: int(v) for lab, v in split.loc[split["split"] == "train", labels].sum().items()}
    n_test = {lab: int(v) for lab, v in split.loc[split["split"] == "test", labels].sum().items()}
    known = split[labels].notna().sum()
    prevalence = {lab: float(v) / max(int(known[lab]), 1) for lab, v in split[labels].sum().items()}
    return n_train, n_test, prevalence, f"training-split positives ({SPLIT}), as the frequency groups"


def _group_sizes(n_train: dict[str, int], labels: list[str]) -> dict[str, int]:
    from mlbench.results.stats import label_groups

    if not n_train:
        return {}
    counts = [n_train.get(lab, 0) for lab in labels]
    return {g: len(members) for g, members in label_groups(counts, labels).items()}


def reliability_bins(y: np.ndarray, score: np.ndarray) -> tuple[list[tuple[float, float, int]], float]:
    """(mean score, positive rate, count) per non-empty equal-mass bin, and the ECE of those bins."""
    y, score = np.asarray(y, dtype=np.float64).ravel(), np.asarray(score, dtype=np.float64).ravel()
    if score.size == 0:
        return [], float("nan")
    bins = equal_mass_bins(score, ECE_BINS)
    counts = np.bincount(bins, minlength=ECE_BINS)
    mean_score = np.bincount(bins, weights=score, minlength=ECE_BINS)
    positives = np.bincount(bins, weights=y, minlength=ECE_BINS)
    points = [(float(mean_score[b] / counts[b]), float(positives[b] / counts[b]), int(counts[b]))
              for b in range(ECE_BINS) if counts[b]]
    return points, expected_calibration_error(y, score, bins=bins)


def _reliability(test: collect.ScoredTestSplit | None, n_train: dict[str, int], entries: list[tuple[str, str]],
                 groups: dict[str, dict[str, dict[str, Measure]]]) -> dict[str, list[Reliability]]:
    """Each entry's diagrams, one per frequency group (the groups of the page's group table)."""
    if test is None or not n_train:
        return {}
    members = label_groups([n_train.get(lab, 0) for lab in test.labels], test.labels)
    index = {lab: j for j, lab in enumerate(test.labels)}
    missing = Measure(float("nan"), float("nan"), float("nan"))
    out: dict[str, list[Reliability]] = {}
    for entry, _ in entries:
        if entry not in test.scores:
            continue
        diagrams = []
        for group, labels in members.items():
            columns = [index[lab] for lab in labels]
            # the pooled cells of the group's labels, unknown cells left out
            cells = slice(None) if test.known is None else test.known[:, columns]
            points, pooled = reliability_bins(test.y[:, columns][cells], test.scores[entry][:, columns][cells])
            rows = groups.get(entry, {}).get(group, {})
            n_cells = test.y.shape[0] * len(columns) if test.known is None else int(test.known[:, columns].sum())
            diagrams.append(Reliability(group, len(labels), n_cells, points, pooled,
                                        rows.get(ECE, missing), rows.get(BRIER, missing)))
        out[entry] = diagrams
    return out


def _gallery(files: collect.ExplainFiles) -> Gallery:
    s = files.summary
    settings = [("explainer", str(s.get("explainer"))), ("ensemble", str(s.get("ensemble"))),
                ("threshold", str(s.get("threshold"))), ("agreement", str(s.get("agreement"))),
                ("ensemble map", str(s.get("ensemble_map"))), ("split", str(s.get("split"))),
                ("images explained", str(len(s.get("images", [])))),
                ("target layers", ", ".join(f"{k}: {v}" for k, v in (s.get("target_layers") or {}).items()))]
    chance = [(k, str(s[k])) for k in ("pointing_chance", "mass_in_box_chance") if s.get(k) is not None]
    images, used, left_out = [], 0, 0
    for folder, explanation in files.images:
        panels = []
        for label, entry in explanation.get("labels", {}).items():
            png = collect.png_bytes(folder, entry.get("panel")) if entry.get("shown") else None
            if png is not None:
                caption = f"{label} — p={entry.get('probability')} — {entry.get('agreement')} models"
                panels.append(Panel(label, caption, png))
        std = collect.png_bytes(folder, explanation.get("std_map"))
        size = sum(len(p.png) for p in panels) + len(std or b"")
        if not panels:
            continue
        if len(images) >= GALLERY_MAX_IMAGES or used + size > GALLERY_MAX_BYTES:
            left_out += 1
            continue
        used += size
        images.append(GalleryImage(str(explanation.get("image_id", folder.name)), panels, std))
    return Gallery(str(files.folder), settings, list(s.get("scores", [])), chance, images, left_out,
                   int((s.get("skipped") or {}).get("total", 0)))


# -- grids -----------------------------------------------------------------------------------------
GRID_COLUMNS = ("remedy", "baseline", "entry", "scope", "name", "metric", "difference", "ci_low", "ci_high",
                "n_seeds", "verdict")
SCOPES = ("macro", "group", "label")
VERDICTS = ("helps", "hurts", "no evidence")


@dataclass
class GridReport:
    title: str
    grid_dir: str
    rows: pd.DataFrame  # comparison.parquet, checked, with a display ``name``
    remedies: list[str]
    metrics: list[str]
    cells: list[dict[str, Any]]
    synthetic_kinds: list[str]  # dataset kinds of cells run on synthetic data (empty: none)


def group_name(name: str) -> str:
    """``__group_rare__`` or ``rare`` -> ``rare``."""
    text = str(name)
    return text[len("__group_"):-2] if text.startswith("__group_") and text.endswith("__") else text


def build_grid(grid_dir: Path) -> GridReport:
    files = collect.read_grid(grid_dir)
    frame = files.comparison
    where = Path(grid_dir) / collect.COMPARISON
    missing = [c for c in GRID_COLUMNS if c not in frame.columns]
    if missing:
        raise ReportError(f"{where}: missing columns {missing}; expected {list(GRID_COLUMNS)}")
    if frame.empty:
        raise ReportError(f"{where}: no rows")
    for column, allowed in (("scope", SCOPES), ("verdict", VERDICTS)):
        bad = ~frame[column].isin(allowed)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ReportError(f"{where}: row {i}: {column} {frame[column].iloc[i]!r} is not one of {list(allowed)}")
    for column in ("difference", "ci_low", "ci_high"):
        try:
            frame[column] = frame[column].astype(float)
        except (TypeError, ValueError):
            raise ReportError(f"{where}: column '{column}' must hold numbers") from None
    frame = frame[list(GRID_COLUMNS)].assign(
        # grids written before verdicts were Holm-adjusted have no p-values: shown as "–"
        p_adjusted=frame["p_adjusted"].astype(float) if "p_adjusted" in frame.columns else np.nan)
    frame["name"] = [group_name(n) if s == "group" else str(n) for s, n in zip(frame["scope"], frame["name"])]
    order = {"macro": 0, "group": 1, "label": 2}
    group_order = {g: i for i, g in enumerate(GROUP_NAMES)}
    frame["_scope"] = frame["scope"].map(order)
    frame["_group"] = [group_order.get(n, len(group_order)) if s == "group" else 0
                       for s, n in zip(frame["scope"], frame["name"])]
    frame = frame.sort_values(["remedy", "metric", "entry", "_scope", "_group", "name"], kind="stable")
    frame = frame.drop(columns=["_scope", "_group"]).reset_index(drop=True)
    metrics = sorted(frame["metric"].unique(), key=lambda m: (METRICS.index(m) if m in METRICS else len(METRICS), m))
    return GridReport(title=f"remedy grid · {Path(grid_dir).resolve().name}", grid_dir=str(grid_dir), rows=frame,
                      remedies=list(dict.fromkeys(frame["remedy"])), metrics=metrics, cells=files.cells,
                      synthetic_kinds=sorted({str(c["dataset_kind"]) for c in files.cells
                                              if is_synthetic(c["dataset_kind"])}))
