"""Checkpoints are hostile files: a crafted pickle runs nothing, garbage is refused with one line."""

import os
import pickle
import random
from pathlib import Path

import pytest
import torch

from mlbench.training import checkpoint
from mlbench.training.checkpoint import CheckpointError


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _crafted(path: Path, marker: Path) -> Path:
    # torch.save pickles arbitrary objects: exactly what an attacker would ship as best.pt.
    torch.save({"model": _Payload(marker)}, path)
    return path


def test_crafted_checkpoint_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = _crafted(tmp_path / "best.pt", marker)
    with pytest.raises(CheckpointError, match="best.pt: not a valid mlbench checkpoint"):
        checkpoint.load(path)
    assert not marker.exists()
    # Sanity: the file really would run code under an unsafe load.
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", pickle.dumps([1, 2, 3])])
def test_garbage_is_refused_naming_the_file(tmp_path, content):
    path = tmp_path / "last.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"last\.pt"):
        checkpoint.load(path)


def test_random_bytes_are_refused_whatever_they_hold(tmp_path):
    # The weights-only unpickler fails in many ways on garbage (IndexError, KeyError, ...): each is one line.
    path = tmp_path / "best.pt"
    for seed in range(200):
        rng = random.Random(seed)
        head = rng.choice([b"", b"PK\x03\x04", pickle.dumps({"model": 1})[:8], b"\x80\x02"])
        path.write_bytes(head + rng.randbytes(rng.randrange(1, 2048)))
        with pytest.raises(CheckpointError, match="best.pt"):
            checkpoint.load(path)


def test_missing_keys_and_missing_file(tmp_path):
    checkpoint.save(tmp_path / "x.pt", {"weights": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="expected a dict with keys"):
        checkpoint.load(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "nothing.pt")


def test_round_trip_keeps_tensors_and_plain_state(tmp_path):
    model = torch.nn.Linear(3, 2)
    state = {"epoch": 2, "best_val_loss": float("inf"), "history": [{"epoch": 0, "val_loss": 0.5}]}
    checkpoint.save(tmp_path / "last.pt", {"model": model.state_dict(), "state": state})
    back = checkpoint.load(tmp_path / "last.pt", keys=("model", "state"))
    assert back["state"] == state
    assert torch.equal(back["model"]["weight"], model.state_dict()["weight"])


def test_resume_from_a_crafted_last_checkpoint_runs_nothing(tmp_path):
    from mlbench.contracts.benchmark import Recipe
    from mlbench.training.loop import train

    marker = tmp_path / "pwned"
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save({"model": _Payload(marker), "optimizer": {}, "state": {}}, ckpt / "last.pt")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    images = torch.zeros(4, 4, 4, dtype=torch.uint8)
    targets = torch.zeros(4, 2)
    with pytest.raises(CheckpointError):
        train(model, torch.nn.BCEWithLogitsLoss(), Recipe(backbones=("x",), max_epochs=1), train_images=images,
              train_targets=targets, val_images=images, val_targets=targets, checkpoint_dir=ckpt,
              device=torch.device("cpu"))
    assert not marker.exists()
