"""A grid directory (``mlbench grid --out``) and the one class that knows its layout::

    GRID_DIR/
      grid.json                 the grid's spec (GridSpec.identity); a re-run with another spec is refused
      shared/demo-data/         the demo corpus (--demo), written once
      shared/cache/             the preprocessing cache, built once
      cells/REMEDY/seed-N/      one ordinary run directory per remedy and seed
      jobs/                     with --executor local|slurm: the executors' job records (mlbench.execution.jobs)
      comparison.parquet        every remedy against the baseline (mlbench.grid.cells.compare_cells)

A cell's corpus and cache live in the grid's ``shared/`` folder, so the cell's stored paths may lead
up to the grid, and no further. This module imports no other grid or run module (``rundir`` asks it
for :func:`enclosing_grid`): whether a cell finished is :meth:`mlbench.results.rundir.RunDir.finished`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa

from mlbench.foundations.errors import UserError
from mlbench.foundations.io import read_json, write_json, write_parquet

GRID_FILE = "grid.json"
CELLS = "cells"
SHARED = "shared"
DEMO_DATA = "demo-data"
CACHE = "cache"
COMPARISON = "comparison.parquet"
SEED_PREFIX = "seed-"
# The executors' records (read and written by mlbench.execution.jobs). The same jobs/ folder sits in a lone
# ``mlbench run --executor`` run directory, and failed.json in any run directory a job ran in; they are
# named here because a grid's cells are where they mostly live, and rundir imports this module.
JOBS_DIR = "jobs"
SUBMISSIONS_FILE = "submissions.json"
FAILURE_FILE = "failed.json"


class GridError(UserError):
    """The grid cannot run as asked (the message names the option or file)."""


def enclosing_grid(run_dir: str | Path) -> Path | None:
    """The grid directory holding ``run_dir`` as a cell, or None for a run of its own."""
    path = Path(run_dir)
    grid = path.parent.parent.parent
    if path.parent.parent.name == CELLS and path.name.startswith(SEED_PREFIX) and (grid / GRID_FILE).is_file():
        return grid
    return None


def folder_name(remedy: str) -> str:
    """A remedy's name as one safe folder name under ``cells/``."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", remedy)


def cell_dir(grid_dir: str | Path, remedy: str, seed: int) -> Path:
    """GRID_DIR/cells/REMEDY/seed-N (:meth:`GridDir.cell_dir`)."""
    return GridDir(grid_dir).cell_dir(remedy, seed)


# -- what grid.json's fields must hold (the file is read as hostile) ----------------------------------
def is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and value.isprintable() and value.strip(".") != ""


def is_names_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(is_name(v) for v in value) and len(set(value)) == len(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# The fields of grid.json (GridSpec.identity) and what each must hold.
SPEC_FIELDS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("benchmark", is_name, "a benchmark name"),
    ("remedies", is_names_list, "a list of distinct remedy names"),
    ("backbones", lambda v: v is None or is_names_list(v), "null or a list of distinct backbone names"),
    ("seeds", lambda v: isinstance(v, list) and bool(v) and all(map(is_integer, v)) and len(set(v)) == len(v),
     "a list of distinct integer seeds"),
    ("demo", lambda v: isinstance(v, bool), "true or false"),
    ("run_options", lambda v: isinstance(v, dict), "an object of run options"),
    ("n_boot", lambda v: is_integer(v) and v >= 1, "a positive integer"),
)


class GridDir:
    """The files of one grid directory. Cheap to create; reads happen when asked."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"GridDir({str(self.path)!r})"

    # -- paths ---------------------------------------------------------------------------------
    @property
    def spec_file(self) -> Path:
        return self.path / GRID_FILE

    @property
    def cells_dir(self) -> Path:
        return self.path / CELLS

    def cell_dir(self, remedy: str, seed: int) -> Path:
        return self.cells_dir / folder_name(remedy) / f"{SEED_PREFIX}{seed}"

    @property
    def shared_dir(self) -> Path:
        return self.path / SHARED

    @property
    def demo_dir(self) -> Path:
        return self.shared_dir / DEMO_DATA

    @property
    def cache_dir(self) -> Path:
        return self.shared_dir / CACHE

    @property
    def comparison_file(self) -> Path:
        return self.path / COMPARISON

    @property
    def jobs_dir(self) -> Path:
        return self.path / JOBS_DIR

    def own_files(self) -> tuple[Path, ...]:
        """What only ``mlbench grid`` writes here (cells/ holds run directories: RunDir owns theirs)."""
        return self.spec_file, self.comparison_file, self.shared_dir, self.jobs_dir

    # -- what the folder is ----------------------------------------------------------------------
    def exists(self) -> bool:
        """A grid started here (grid.json is written before any cell runs)."""
        return self.spec_file.is_file()

    def looks_like_grid(self) -> bool:
        """grid.json or comparison.parquet: what tells a grid directory from a run directory."""
        return self.exists() or self.comparison_file.is_file()

    # -- grid.json -------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """grid.json, checked field by field; a GridError naming the file and the field otherwise."""
        path = self.spec_file
        if not path.is_file():
            raise GridError(f"{path}: no such file; expected a grid directory made by `mlbench grid`")
        try:
            data = read_json(path)
        except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise GridError(f"{path}: not valid JSON; expected the grid spec `mlbench grid` writes") from None
        if not isinstance(data, dict):
            raise GridError(f"{path}: expected a JSON object (the grid spec `mlbench grid` writes)")
        for key, valid, expected in SPEC_FIELDS:
            if key not in data:
                raise GridError(f"{path}: field '{key}' is missing; expected {expected}")
            if not valid(data[key]):
                raise GridError(f"{path}: field '{key}' must be {expected}")
        return data

    def write_spec(self, identity: dict[str, Any]) -> None:
        write_json(self.spec_file, identity)

    # -- cells and the comparison ------------------------------------------------------------------
    def cells_on_disk(self) -> Iterator[tuple[str, str, Path]]:
        """(remedy folder, seed, run directory) of every cells/REMEDY/seed-N folder, sorted by path."""
        for run in sorted(self.cells_dir.glob(f"*/{SEED_PREFIX}*")):
            if run.is_dir():
                yield run.parent.name, run.name.removeprefix(SEED_PREFIX), run

    def write_comparison(self, table: pa.Table) -> None:
        write_parquet(self.comparison_file, table)
