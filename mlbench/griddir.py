"""The layout of a grid directory (``mlbench grid --out``): the names its files and folders go by.

A cell is an ordinary run directory at ``GRID/cells/REMEDY/seed-N`` whose corpus and cache live in
the grid's ``shared/`` folder, so the cell's stored paths may lead up to the grid, and no further.
"""

from __future__ import annotations

from pathlib import Path

GRID_FILE = "grid.json"
CELLS = "cells"
SHARED = "shared"


def enclosing_grid(run_dir: str | Path) -> Path | None:
    """The grid directory holding ``run_dir`` as a cell, or None for a run of its own."""
    path = Path(run_dir)
    grid = path.parent.parent.parent
    if path.parent.parent.name == CELLS and path.name.startswith("seed-") and (grid / GRID_FILE).is_file():
        return grid
    return None
