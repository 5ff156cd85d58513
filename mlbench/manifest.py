"""manifest.json: what a run is (benchmark, data, recipe, versions) and what it did (stages, skips).

Several processes may share one RUN_DIR (one job per backbone), so every update is a locked
read-modify-write followed by an atomic replace.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from pathlib import Path
from typing import Any, Callable, Iterator

from mlbench.io import write_json

MANIFEST = "manifest.json"


class ManifestError(Exception):
    """RUN_DIR holds a different run."""


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    if not path.exists():
        raise ManifestError(f"{run_dir}: no {MANIFEST}; is this a run directory?")
    return json.loads(path.read_text())


def update(run_dir: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply ``change`` to the manifest under the lock and write it back atomically."""
    with _locked(run_dir):
        path = run_dir / MANIFEST
        manifest = json.loads(path.read_text()) if path.exists() else {}
        change(manifest)
        write_json(path, manifest)
        return manifest


def start(run_dir: Path, identity: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Create the manifest, or check that an existing one describes the same run (resume)."""

    def change(manifest: dict[str, Any]) -> None:
        if manifest and manifest.get("identity") != identity:
            old = manifest.get("identity", {})
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise ManifestError(
                f"{run_dir} holds another run (differs in: {', '.join(diff)}); choose a new --out or delete it")
        if not manifest:
            manifest.update(identity=identity, **fields, stages={}, skipped={"counts": {}, "items": []})
        else:
            manifest.update({k: v for k, v in fields.items() if k not in manifest})

    return update(run_dir, change)
