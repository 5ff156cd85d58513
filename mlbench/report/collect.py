"""Every file the report reads, in one place (so the run-directory layout is known here only).

A run directory: ``manifest.json``, ``leaderboard.parquet``, ``split.parquet``,
``backbones/NAME/history.json``; ``mlbench explain`` output (``explain.json``, per image
``explanation.json`` and panel PNGs) wherever ``--out`` put it. A grid directory:
``comparison.parquet`` and ordinary run directories under ``cells/<remedy>/seed-<n>/`` (:mod:`mlbench.grid`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from mlbench import leaderboard
from mlbench.rundir import RunDir, RunDirError

COMPARISON = "comparison.parquet"
EXPLAIN_SUMMARY = "explain.json"
EXPLANATION = "explanation.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A panel larger than this (pixels per side) is not a panel `mlbench explain` drew: left out.
MAX_PANEL_SIDE = 4096


class ReportError(ValueError):
    """A run or grid directory cannot be reported (the message names the file and what is wrong)."""


@dataclass
class ExplainFiles:
    """One ``mlbench explain`` output folder: its summary and, per image, its explanation JSON."""

    folder: Path
    summary: dict[str, Any]
    images: list[tuple[Path, dict[str, Any]]]  # (image folder, explanation.json)


@dataclass
class RunFiles:
    run_dir: Path
    manifest: dict[str, Any]
    board: pd.DataFrame
    split: pd.DataFrame | None
    histories: dict[str, dict[str, Any]]  # backbone folder name -> history.json
    explains: list[ExplainFiles] = field(default_factory=list)


@dataclass
class GridFiles:
    grid_dir: Path
    comparison: pd.DataFrame
    cells: list[dict[str, Any]]  # remedy, backbones, seed, path, run_id, finished, dataset_kind


def is_grid(path: Path) -> bool:
    return (Path(path) / COMPARISON).is_file()


def read_json_file(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read JSON ({exc})") from None


def read_run(run_dir: Path, explain_dirs: list[Path] | None = None) -> RunFiles:
    """Read a finished run directory; ``explain_dirs`` adds explain output kept elsewhere."""
    run_dir = Path(run_dir)
    try:
        info = RunDir(run_dir).manifest()
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    board_path = RunDir(run_dir).leaderboard_file
    if not board_path.is_file():
        raise ReportError(f"{run_dir}: no leaderboard.parquet; is the run finished?")
    board = leaderboard.read(board_path).to_pandas()
    if board.empty:
        raise ReportError(f"{board_path}: the leaderboard is empty")
    split_path = run_dir / "split.parquet"
    split = pq.read_table(split_path).to_pandas() if split_path.is_file() else None
    histories = {}
    for path in sorted((run_dir / "backbones").glob("*/history.json")):
        histories[path.parent.name] = read_json_file(path)
    folders = [Path(d) for d in explain_dirs or []]
    for folder in folders:
        if not (folder / EXPLAIN_SUMMARY).is_file():
            raise ReportError(f"--explain {folder}: no {EXPLAIN_SUMMARY}; expected a folder `mlbench explain --out` wrote")
    # explain has no default --out; an output folder placed inside the run directory is found too.
    folders += [p.parent for p in sorted(run_dir.glob(f"*/{EXPLAIN_SUMMARY}")) if p.parent not in folders]
    explains = [read_explain(folder) for folder in folders]
    return RunFiles(run_dir, info, board, split, histories, explains)


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
    grid_dir = Path(grid_dir)
    path = grid_dir / COMPARISON
    try:
        comparison = pq.read_table(path).to_pandas()
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read parquet ({exc})") from None
    cells = []
    for run in sorted((grid_dir / "cells").glob("*/seed-*")):
        if not run.is_dir():
            continue
        remedy, seed = run.parent.name, run.name.removeprefix("seed-")
        cell = RunDir(run)
        info = cell.manifest() if cell.exists() else {}
        cells.append({"remedy": remedy, "backbones": ", ".join(info.get("backbones", [])), "seed": seed,
                      "path": str(run.relative_to(grid_dir)), "run_id": info.get("run_id"),
                      "finished": cell.leaderboard_file.is_file(),
                      "dataset_kind": info.get("dataset_kind")})
    return GridFiles(grid_dir, comparison, cells)


def read_published(run_dir: Path, against: str):
    """The run's per-label AUC next to the published values (:func:`mlbench.compare.compare_run`)."""
    from mlbench.compare import CompareError, compare_run
    from mlbench.leaderboard import LeaderboardError

    try:
        return compare_run(run_dir, against=against, metric="auc")
    except (CompareError, LeaderboardError) as exc:
        raise ReportError(f"--against {against}: {exc}") from None
