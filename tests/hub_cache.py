"""A Hugging Face hub cache on disk, filled as a download would fill it, with real timm weights made here.

Tests never reach the hub (conftest sets HF_HUB_OFFLINE): a test that wants "pretrained weights are
on this machine" points ``huggingface_hub.constants.HF_HUB_CACHE`` at this folder. The weights are a
freshly initialised model of the same architecture, saved as ``model.safetensors``: timm loads them
exactly as it would ImageNet's, so a test can tell which bytes a model started from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

COMMIT = "0" * 40  # the snapshot a download would name by its commit


def fill(cache: Path, model_name: str, seed: int = 0) -> Path:
    """Write ``model_name``'s weights where the hub cache keeps its hf_hub_id; return the file."""
    import safetensors.torch
    import timm
    import torch
    from timm.models import get_pretrained_cfg

    repo_id = get_pretrained_cfg(model_name).hf_hub_id
    torch.manual_seed(seed)
    state = timm.create_model(model_name, pretrained=False).state_dict()
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    path = repo / "snapshots" / COMMIT / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty hub cache this test's lookups and timm's loads use (fill it with :func:`fill`)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache
