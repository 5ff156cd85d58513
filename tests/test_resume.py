"""A run killed mid-training resumes from its last epoch and ends where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pandas as pd
import torch

ARGS = ["run", "padchest-specific", "--demo", "--demo-option", "n_patients=60", "--demo-option", "image_size=96",
        "--image-size", "32", "--epochs", "4", "--backbones", "resnet10t", "--ensembles", "ctp",
        "--workers", "1", "--no-progress"]


def _cmd(out):
    return [sys.executable, "-m", "mlbench", *ARGS, "--out", str(out)]


def test_killed_run_resumes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    last = resumed / "backbones" / "resnet10t" / "last.pt"
    proc = subprocess.Popen(_cmd(resumed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert last.exists() and proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = torch.load(last, weights_only=False)["state"]
    assert 0 < before["epoch"] < 4
    assert not (resumed / "leaderboard.parquet").exists()

    subprocess.run(_cmd(resumed), env=env, check=True, capture_output=True, timeout=600)
    history = json.loads((resumed / "backbones" / "resnet10t" / "history.json").read_text())["history"]
    assert len(history) == 4
    # The epochs finished before the kill were kept, not re-trained (their timings carry over).
    assert history[: before["epoch"]] == before["history"]

    subprocess.run(_cmd(straight), env=env, check=True, capture_output=True, timeout=600)
    a, b = (pq.read_table(d / "leaderboard.parquet").to_pandas()[["entry", "label", "metric", "value"]]
            for d in (resumed, straight))
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)
