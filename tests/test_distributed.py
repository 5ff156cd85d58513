"""torchrun with two gloo CPU processes gives the same run as one process."""

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq

ARGS = ["padchest-specific", "--demo", "--demo-option", "n_patients=60", "--demo-option", "image_size=96",
        "--image-size", "32", "--epochs", "2", "--backbones", "resnet10t,mobilenetv3_small_050", "--no-augment",
        "--workers", "1", "--no-progress"]


def _run(cmd, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*cmd, "run", *ARGS, "--out", str(out)], check=True, env=env, capture_output=True, timeout=600)


def _files(root):
    skip = ("cache", "demo-data")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.parts[len(root.parts)] not in skip
                  and not p.name.startswith("."))


def test_two_process_ddp_matches_single_process(tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _run([sys.executable, "-m", "mlbench"], single)
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "mlbench"], ddp)
    assert _files(single) == _files(ddp)
    m1, m2 = (json.loads((d / "manifest.json").read_text()) for d in (single, ddp))
    assert m1["split_hash"] == m2["split_hash"]
    for name in ("resnet10t", "mobilenetv3_small_050"):
        h1, h2 = (json.loads((d / "backbones" / name / "history.json").read_text()) for d in (single, ddp))
        v1 = np.array([e["val_loss"] for e in h1["history"]])
        v2 = np.array([e["val_loss"] for e in h2["history"]])
        # Same global batches and seeds; only BatchNorm statistics (per rank) and float order differ.
        np.testing.assert_allclose(v1, v2, rtol=0.01)
    p1, p2 = (pq.read_table(d / "predictions.parquet").to_pandas().sort_values(["entry", "image_id", "label"])
              for d in (single, ddp))
    assert (p1[["image_id", "split", "entry", "label"]].to_numpy() == p2[["image_id", "split", "entry", "label"]].to_numpy()).all()
    backbone = p1["entry"].isin(["resnet10t", "mobilenetv3_small_050"]).to_numpy()
    diff = np.abs(p1["probability"].to_numpy() - p2["probability"].to_numpy())[backbone]
    assert diff.mean() < 0.02
