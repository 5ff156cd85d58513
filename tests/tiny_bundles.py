"""What the bundle, board and reproduce tests share: a tiny demo run's options, and a hostile submitter's edit."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from mlbench.training.runner import RunOptions


def options(root: Path, seed: int, out: Path | None = None, **more) -> RunOptions:
    """A tiny padchest-specific demo run (one backbone, one epoch, 32 px) on the demo corpus in ROOT/demo."""
    return RunOptions(benchmark="padchest-specific", out=out or root / f"run-{seed}", demo=True, demo_dir=root / "demo",
                      demo_options={"n_patients": 48, "image_size": 64, "n_corrupt": 0}, image_size=32,
                      max_epochs=1, backbones=("mobilenetv3_small_050",), seed=seed, progress=False, workers=1,
                      n_boot=20, **more)


def rewrite(bundle: Path, out: Path, member: str, data: bytes) -> Path:
    """One member replaced and the index re-hashed: a bundle that opens, saying something else (only
    verification can tell)."""
    with zipfile.ZipFile(bundle) as z:
        members = {name: z.read(name) for name in z.namelist()}
    members[member] = data
    index = json.loads(members["bundle.json"])
    index["members"][member] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    members["bundle.json"] = json.dumps(index).encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return out
