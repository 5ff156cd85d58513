"""Checkpoint files (``best.pt``, ``last.pt``): saved as tensors and plain types, loaded without pickle code.

Run directories are shared and downloaded (that is what a submission is), so a checkpoint is a
hostile file: ``torch.load(weights_only=True)`` refuses anything but tensors, containers and
numbers, and a file that is not a checkpoint of the expected shape is refused with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch

from mlbench.foundations.errors import UserError
from mlbench.foundations.io import atomic_path


class CheckpointError(UserError):
    """A checkpoint file cannot be used (the message names it and says why)."""


def save(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) atomically."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load(path: str | Path, *, device: str | torch.device = "cpu", keys: Iterable[str] = ("model",)) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; refuse code, garbage and missing ``keys``."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except Exception:  # noqa: BLE001 - weights_only runs no code, so any failure means a bad file
        # torch's message quotes the file's content and advises weights_only=False (running its code): say neither.
        raise CheckpointError(f"{path}: not a valid mlbench checkpoint (not a file mlbench can load safely); "
                              "expected a torch.save file of tensors and plain values") from None
    if not isinstance(payload, dict) or any(k not in payload for k in keys):
        raise CheckpointError(f"{path}: not a valid mlbench checkpoint; expected a dict with keys {sorted(keys)}")
    return payload
