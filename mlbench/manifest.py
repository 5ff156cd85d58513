"""manifest.json: read through :class:`mlbench.rundir.RunDir`, its one owner (kept for old imports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlbench.rundir import MANIFEST, RunDir, RunDirError

ManifestError = RunDirError
__all__ = ["MANIFEST", "ManifestError", "read"]


def read(run_dir: Path) -> dict[str, Any]:
    return RunDir(run_dir).manifest()
