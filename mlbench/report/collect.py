"""Every file the report reads, in one place.

A run directory (its file names come from :class:`mlbench.results.rundir.RunDir`): ``manifest.json``,
``leaderboard.parquet``, ``split.parquet``, ``skipped.parquet``, ``predictions.parquet`` (the test
scores the reliability diagrams bin), ``backbones/NAME/history.json``;
``mlbench explain`` output (``explain.json``, per image ``explanation.json`` and panel PNGs) wherever
``--out`` put it. A grid directory: ``grid.json``, ``comparison.parquet`` and ordinary run directories
under ``cells/<remedy>/seed-<n>/`` (:class:`mlbench.results.griddir.GridDir` knows the layout).

A run or grid directory is hostile (downloaded, shared, half written): what the page cannot do
without (the manifest, the leaderboard, a training history) is checked and refused in one line
naming the file and what was expected; what it can do without (split.parquet, skipped.parquet) is
left out with a note that the page and the command both show. No message quotes a file's content.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mlbench.data.splits import split_labels
from mlbench.results import leaderboard, predictions
from mlbench.foundations.errors import UserError
from mlbench.results import griddir
from mlbench.results.griddir import GridDir, GridError
from mlbench.foundations.paths import is_inside
from mlbench.results.rundir import SPLIT_KEY_COLUMNS, RunDir, RunDirError

COMPARISON = griddir.COMPARISON  # build names it in messages
EXPLAIN_SUMMARY = "explain.json"
EXPLANATION = "explanation.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A panel larger than this (pixels per side) is not a panel `mlbench explain` drew: left out.
MAX_PANEL_SIDE = 4096


class ReportError(UserError, ValueError):
    """A run or grid directory cannot be reported (the message names the file and what is wrong)."""


@dataclass
class ExplainFiles:
    """One ``mlbench explain`` output folder: its summary and, per image, its explanation JSON."""

    folder: Path
    summary: dict[str, Any]
    images: list[tuple[Path, dict[str, Any]]]  # (image folder, explanation.json)


@dataclass
class ScoredTestSplit:
    """Every entry's test scores (images, labels) and the images' 0/1 labels, rows in one order."""

    labels: list[str]
    y: np.ndarray
    scores: dict[str, np.ndarray]
    known: np.ndarray | None = None  # False where a label cell is unknown (a null in split.parquet); None: all known


@dataclass
class RunFiles:
    run_dir: Path
    manifest: dict[str, Any]
    board: pd.DataFrame
    split: pd.DataFrame | None
    histories: dict[str, dict[str, Any]]  # backbone name -> history.json (checked)
    explains: list[ExplainFiles] = field(default_factory=list)
    history_files: dict[str, str] = field(default_factory=dict)  # backbone name -> path inside the run
    notes: list[str] = field(default_factory=list)  # what the page leaves out and why (shown on it and printed)
    test: ScoredTestSplit | None = None  # the entries' test scores with their labels (None: no usable split or predictions)


@dataclass
class GridFiles:
    grid_dir: Path
    comparison: pd.DataFrame
    cells: list[dict[str, Any]]  # remedy, backbones, seed, path, run_id, finished, dataset_kind


def is_grid(path: Path) -> bool:
    return GridDir(path).looks_like_grid()


def read_json_file(path: Path, expected: str = "expected the JSON file mlbench writes") -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # the decoder's message gives a position, never the content
        raise ReportError(f"{path}: cannot read JSON ({exc}); {expected}") from None


def read_run(run_dir: Path, explain_dirs: list[Path] | None = None) -> RunFiles:
    """Read a finished run directory; ``explain_dirs`` adds explain output kept elsewhere."""
    run_dir = Path(run_dir)
    rundir = RunDir(run_dir)
    if not rundir.manifest_file.is_file():
        raise ReportError(f"{rundir.manifest_file}: no such file; expected a run directory (the --out of "
                          f"`mlbench run`) or a grid directory (the --out of `mlbench grid`, holding "
                          f"{GridDir(run_dir).spec_file.name})")
    try:
        info = rundir.manifest()
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    check_manifest(rundir.manifest_file, info)
    board_path = rundir.leaderboard_file
    if not board_path.is_file():
        raise ReportError(f"{board_path}: no such file; expected the leaderboard a finished run writes (is the run "
                          "finished?)")
    board = leaderboard.read(board_path).to_pandas()
    if board.empty:
        raise ReportError(f"{board_path}: the leaderboard is empty")
    notes: list[str] = []
    split = read_split(rundir, notes)
    check_skips(rundir, notes)
    histories, history_files = read_histories(rundir, info, notes)
    test = read_test_scores(rundir, info, split, notes) if split is not None else None
    folders = [Path(d) for d in explain_dirs or []]
    for folder in folders:
        if not (folder / EXPLAIN_SUMMARY).is_file():
            raise ReportError(f"--explain {folder}: no {EXPLAIN_SUMMARY}; expected a folder `mlbench explain --out` wrote")
    # explain has no default --out; an output folder placed inside the run directory is found too.
    folders += [p.parent for p in sorted(run_dir.glob(f"*/{EXPLAIN_SUMMARY}")) if p.parent not in folders]
    explains = [read_explain(folder) for folder in folders]
    return RunFiles(run_dir, info, board, split, histories, explains, history_files, notes, test)


# The manifest fields the page reads, and the JSON type each must have when present.
MANIFEST_FIELDS = {"skipped": dict, "stages": dict, "versions": dict, "n_images": dict, "recipe": dict,
                   "bootstrap": dict, "backbones": list, "ensembles": list, "metric_warnings": list}
JSON_TYPES = {dict: "an object", list: "a list"}


def check_manifest(path: Path, info: dict[str, Any]) -> None:
    for key, kind in MANIFEST_FIELDS.items():
        if key in info and info[key] is not None and not isinstance(info[key], kind):
            raise ReportError(f"{path}: field '{key}' must be {JSON_TYPES[kind]}; expected the manifest "
                              "`mlbench run` writes")
    for key in ("backbones", "ensembles", "metric_warnings"):
        if not all(isinstance(v, str) for v in info.get(key) or []):
            raise ReportError(f"{path}: field '{key}' must be a list of strings; expected the manifest "
                              "`mlbench run` writes")
    skipped = info.get("skipped") or {}
    counts = skipped.get("counts", {})
    if not isinstance(counts, dict) or not all(is_int(v) and v >= 0 for v in counts.values()):
        raise ReportError(f"{path}: field 'skipped.counts' must map reasons to counts; expected the manifest "
                          "`mlbench run` writes")
    if not all(isinstance(v, dict) for v in (info.get("stages") or {}).values()):
        raise ReportError(f"{path}: field 'stages' must map each stage to an object; expected the manifest "
                          "`mlbench run` writes")
    if not isinstance((info.get("versions") or {}).get("plugins", {}), dict):
        raise ReportError(f"{path}: field 'versions.plugins' must be an object; expected the manifest "
                          "`mlbench run` writes")


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


WITHOUT_SPLIT = ("the page leaves out the label frequencies, prevalence and imbalance measures and the reliability "
                 "diagrams, and orders labels by the leaderboard's test positives")
WITHOUT_PREDICTIONS = "the page leaves out the reliability diagrams (the calibration rows are still shown)"


def read_split(rundir: RunDir, notes: list[str]) -> pd.DataFrame | None:
    """split.parquet as a frame, or None with a note saying why the page goes without it."""
    path = rundir.split_file
    if not path.is_file():
        notes.append(f"{path}: no such file; expected the split `mlbench run` writes; {WITHOUT_SPLIT}")
        return None
    try:
        split = rundir.split()
    except RunDirError as exc:
        notes.append(f"{exc}; {WITHOUT_SPLIT}")
        return None
    labels = [c for c in split.columns if c not in SPLIT_KEY_COLUMNS]
    bad = next((i for i, c in enumerate(split.columns) if c in labels and not is_binary(split[c])), None)
    if not labels or bad is not None:
        problem = "no label columns" if not labels else f"column {bad + 1} holds values other than 0 and 1"
        notes.append(f"{path}: {problem}; expected {list(SPLIT_KEY_COLUMNS)} then one 0/1 column per label "
                     "(a null for an unknown cell); "
                     f"{WITHOUT_SPLIT}")
        return None
    return split


def read_test_scores(rundir: RunDir, info: dict[str, Any], split: pd.DataFrame,
                     notes: list[str]) -> ScoredTestSplit | None:
    """The manifest's entries' test scores from predictions.parquet, with split.parquet's labels; a note when unusable.

    The images are those the predictions hold for the test split (images preprocessing skipped
    have none, as in the metrics); each must be a test image of split.parquet, and every entry
    must score the same images on every label.
    """
    path = rundir.predictions_file
    entries = (info.get("backbones") or []) + (info.get("ensembles") or [])
    if not entries:
        return None
    labels = [c for c in split.columns if c not in SPLIT_KEY_COLUMNS]
    try:
        frame = predictions.read(path)
    except predictions.PredictionsError as exc:
        notes.append(f"{exc}; {WITHOUT_PREDICTIONS}")
        return None
    frame = frame[frame["split"] == "test"]
    test = split[split["split"] == "test"].drop_duplicates("image_id").set_index("image_id")
    test.index = test.index.astype(str)
    ids = list(dict.fromkeys(frame["image_id"]))
    outside = [i for i in ids if i not in test.index]
    problem = None
    if not ids:
        problem = "holds no test predictions"
    elif outside:
        problem = (f"holds test predictions of {len(outside)} images that are not test images of "
                   f"{rundir.split_file.name}, e.g. {predictions.show(outside[0])}")
    scores: dict[str, np.ndarray] = {}
    for entry in entries if problem is None else []:
        try:
            scores[entry] = predictions.wide(frame, entry, ids, labels)
        except KeyError:
            problem = f"lacks test predictions of entry '{predictions.show(entry)}' for some of its images or labels"
            break
    if problem is not None:
        notes.append(f"{path}: {problem}; expected every entry's scores on the same test images; "
                     f"{WITHOUT_PREDICTIONS}")
        return None
    y, known = split_labels(test.loc[ids], labels)
    return ScoredTestSplit(labels, y, scores, known)


def is_binary(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return True
    # nulls are unknown label cells (partial labels); every known cell is 0 or 1
    return (pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_complex_dtype(column)
            and bool(column.dropna().isin([0, 1]).all()))


def check_skips(rundir: RunDir, notes: list[str]) -> None:
    """skipped.parquet (every skipped item) is readable; a note otherwise (the counts come from the manifest)."""
    path = rundir.skipped_file
    without = "the skip counts on the page come from manifest.json alone"
    if not path.is_file():
        notes.append(f"{path}: no such file; expected the list of skipped items `mlbench run` writes; {without}")
        return
    try:
        rundir.skips()
    except RunDirError as exc:
        notes.append(f"{exc}; {without}")
    except (KeyError, TypeError, ValueError):  # readable parquet, not the skip list's columns
        notes.append(f"{path}: not the list of skipped items `mlbench run` writes (stage, item, reason, detail); "
                     f"{without}")


HISTORY_EXPECTED = ("expected the JSON object training writes: best_epoch, best_val_loss, epochs and a 'history' "
                    "list of {epoch, train_loss, val_loss}")


def read_histories(rundir: RunDir, info: dict[str, Any],
                   notes: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each backbone's history.json, checked; a backbone without one gets a note (no training curve)."""
    histories, files = {}, {}
    names = info.get("backbones") or (info.get("recipe") or {}).get("backbones") or []
    for name in [n for n in names if isinstance(n, str)] if isinstance(names, list) else []:
        path = rundir.history_file(name)
        if not path.is_file():
            notes.append(f"{path}: no such file; expected the training history of backbone {name!r}; the page "
                         "shows no training curve for it")
            continue
        if not is_inside(path, rundir.path):
            raise ReportError(f"{path}: leads outside {rundir.path}; expected the training history inside the run "
                              "directory")
        data = read_json_file(path, HISTORY_EXPECTED)
        problem = history_problem(data)
        if problem:
            raise ReportError(f"{path}: {problem}; {HISTORY_EXPECTED}")
        histories[name], files[name] = data, os.path.relpath(path, rundir.path)
    return histories, files


def history_problem(data: Any) -> str | None:
    """What is wrong with a history.json's shape (None: nothing); names fields, never quotes values."""
    if not isinstance(data, dict):
        return f"holds a JSON {type(data).__name__}, not an object"
    if not isinstance(data.get("history"), list):
        return "field 'history' is missing or not a list"
    for key, test in (("best_epoch", is_int), ("epochs", is_int), ("best_val_loss", is_number)):
        if data.get(key) is not None and not test(data[key]):
            return f"field '{key}' is not a {'number' if test is is_number else 'whole number'}"
    for i, record in enumerate(data["history"]):
        if not isinstance(record, dict):
            return f"history[{i}] is not an object"
        if not is_int(record.get("epoch")):
            return f"history[{i}].epoch is missing or not a whole number"
        for key in ("train_loss", "val_loss"):
            value = record.get(key)
            if not is_number(value) or math.isinf(value):
                return f"history[{i}].{key} is missing or not a finite number"
    return None


def read_explain(folder: Path) -> ExplainFiles:
    summary = read_json_file(folder / EXPLAIN_SUMMARY)
    images = []
    for path in sorted(folder.glob(f"*/{EXPLANATION}")):
        images.append((path.parent, read_json_file(path)))
    return ExplainFiles(folder, summary, images)


def png_bytes(folder: Path, name: str | None) -> bytes | None:
    """A panel's bytes when ``name`` is a PNG inside ``folder`` of a sane size (checked from the
    header, never decoded); None otherwise."""
    if not name:
        return None
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        return None  # a name in explanation.json must not lead outside its folder
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    if not (0 < width <= MAX_PANEL_SIDE and 0 < height <= MAX_PANEL_SIDE):
        return None
    return path.read_bytes()


def read_grid(grid_dir: Path) -> GridFiles:
    grid = GridDir(grid_dir)
    if grid.exists():
        try:
            grid.spec()  # a corrupt grid.json: one line naming the field
        except GridError as exc:
            raise ReportError(str(exc)) from None
    path = grid.comparison_file
    if not path.is_file():  # grid.json is there: the grid started and has not finished
        raise ReportError(f"{path}: no such file; expected the comparison `mlbench grid` writes once every cell "
                          f"has run (the grid is unfinished: `mlbench grid status {grid.path}` shows its cells)")
    try:
        comparison = pq.read_table(path).to_pandas()
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: not a readable parquet file ({str(exc).splitlines()[0] if str(exc) else ''}); "
                          "expected the comparison `mlbench grid` writes") from None
    cells = []
    for remedy, seed, run in grid.cells_on_disk():
        cell = RunDir(run)
        info = cell.manifest() if cell.exists() else {}
        backbones = info.get("backbones") if isinstance(info.get("backbones"), list) else []
        cells.append({"remedy": remedy, "backbones": ", ".join(b for b in backbones if isinstance(b, str)),
                      "seed": seed, "path": str(run.relative_to(grid.path)),
                      "run_id": None if info.get("run_id") is None else str(info["run_id"]),
                      "finished": cell.finished(),
                      "dataset_kind": None if info.get("dataset_kind") is None else str(info["dataset_kind"])})
    return GridFiles(grid.path, comparison, cells)


def read_published(run_dir: Path, against: str):
    """The run's per-label AUC next to the published values (:func:`mlbench.judging.compare.compare_run`)."""
    from mlbench.judging.compare import CompareError, compare_run
    from mlbench.results.leaderboard import LeaderboardError

    try:
        return compare_run(run_dir, against=against, metric="auc")
    except (CompareError, LeaderboardError) as exc:
        raise ReportError(f"--against {against}: {exc}") from None
