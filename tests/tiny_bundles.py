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


# tests/test_submit.py's TINY run (two backbones), with fewer bootstrap replicates: score and predict compare
# their results with its rows.
TWO_BACKBONES = dict(demo=True, demo_options={"n_patients": 60, "image_size": 96}, image_size=32, max_epochs=1,
                     backbones=("mobilenetv3_small_050", "mobilenetv3_small_075"), progress=False, workers=1,
                     n_boot=200)


def two_backbone_run(folder: Path) -> Path:
    """Train the TWO_BACKBONES demo run in FOLDER/run; its run directory."""
    import warnings

    import torch

    import mlbench

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels without test positives in a tiny demo
        return mlbench.run_benchmark("padchest-specific", out=str(folder / "run"), **TWO_BACKBONES).run_dir


def demo_corpus(run_dir: Path) -> tuple[Path, Path]:
    """The run's demo label file and image folder, as its manifest records them."""
    source = json.loads((run_dir / "manifest.json").read_text())["source"]
    return run_dir / source["csv"]["relative"], run_dir / source["images"]["relative"]
