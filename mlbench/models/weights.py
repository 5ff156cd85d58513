"""Where a backbone's pretrained weights come from, checked when a run is planned and recorded in its manifest.

A timm model's weights live in one of three places, tried in timm's own order:

- a local file the user names (``--backbone-option NAME.weights=FILE``);
- the Hugging Face hub (``hf_hub_id`` of timm's pretrained config), cached under ``HF_HUB_CACHE``;
  timm prefers ``model.safetensors`` and falls back to ``pytorch_model.bin``;
- a URL (older configs), cached under torch hub's ``checkpoints`` folder.

``locate`` finds the weights before any data work: in the cache, or by downloading them now when the
hub can be reached. A missing file is one line naming the backbone, where the weights were looked for
and how to get them or train from scratch (``--no-pretrained``), instead of a minute of network
retries after preprocessing. ``Weights.record()`` is what the manifest keeps: the source and the
file's sha256, so two runs can say whether they started from the same bytes.

A third-party backbone's factory loads its own weights: it is recorded as ``plugin`` and not checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlbench.foundations.errors import UserError
from mlbench.foundations.io import sha256_file

HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # timm's order on the hub


class WeightsError(UserError):
    """Pretrained weights that are not on this machine and cannot be fetched (the message says how to get them)."""


@dataclass(frozen=True)
class Weights:
    """One backbone's pretrained weights: where they come from and the local file that holds them."""

    backbone: str
    source: str  # "file", "hf-hub", "url" or "plugin" (the factory's own business)
    location: str  # the file as given, ``REPO_ID/FILENAME`` or the URL
    path: Path | None  # the local file, None for a plugin's weights

    def record(self) -> dict[str, Any]:
        """The manifest's entry: source, location and the sha256 of the bytes training starts from."""
        return {"source": self.source, "location": self.location,
                "sha256": sha256_file(self.path) if self.path is not None else None}


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _how_to_get(backbone: str, where: str) -> str:
    return (f"download them on a machine with network access into {where}, pass "
            f"--backbone-option {backbone}.weights=FILE, or train from scratch with --no-pretrained")


def _from_hub(backbone: str, repo_id: str, filename: str | None) -> Weights:
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    names = (filename,) if filename else HF_WEIGHT_FILES
    for name in names:
        cached = try_to_load_from_cache(repo_id, name)
        if isinstance(cached, str):
            return Weights(backbone, "hf-hub", f"{repo_id}/{name}", Path(cached))
    failure = "not in the hub cache and the hub is offline (HF_HUB_OFFLINE)"
    if not _offline():
        for name in names:
            try:
                return Weights(backbone, "hf-hub", f"{repo_id}/{name}", Path(hf_hub_download(repo_id, name)))
            except Exception as exc:  # noqa: BLE001 - no network, no such file, a hub error: all say "not here"
                failure = f"not in the hub cache and not downloadable ({type(exc).__name__})"
    raise WeightsError(f"--backbones {backbone}: pretrained weights {repo_id} are {failure}; "
                       + _how_to_get(backbone, constants.HF_HUB_CACHE))


def _from_url(backbone: str, url: str) -> Weights:
    import torch.hub

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / os.path.basename(urlparse(url).path)
    if path.is_file():
        return Weights(backbone, "url", url, path)
    failure = "not in torch hub's cache and the hub is offline (HF_HUB_OFFLINE)"
    if not _offline():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), progress=False)
            return Weights(backbone, "url", url, path)
        except Exception as exc:  # noqa: BLE001 - as for the hub
            failure = f"not in torch hub's cache and not downloadable ({type(exc).__name__})"
    raise WeightsError(f"--backbones {backbone}: pretrained weights {url} are {failure}; "
                       + _how_to_get(backbone, str(folder)))


def locate(backbone: str, model_name: str | None, weights_file: str | os.PathLike | None = None) -> Weights:
    """The weights backbone ``backbone`` (timm model ``model_name``; None: a plugin's own) starts from.

    Raises WeightsError, one line, when they are neither on this machine nor downloadable now."""
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsError(f"--backbone-option {backbone}.weights={weights_file}: no such file")
        return Weights(backbone, "file", str(weights_file), path)
    if model_name is None:
        return Weights(backbone, "plugin", backbone, None)
    from timm.models import get_pretrained_cfg, parse_model_name

    source, name = parse_model_name(model_name)
    if source == "hf-hub":
        return _from_hub(backbone, name, None)
    if source == "local-dir":
        return Weights(backbone, "plugin", model_name, None)  # timm reads the folder; its files are the user's
    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError:  # a tag the architecture does not have (the model check named it already)
        cfg = None
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise WeightsError(f"--backbones {backbone}: timm has no pretrained weights for '{model_name}'; "
                           "train it from scratch with --no-pretrained")
    if cfg.file:  # timm's config names a file first: it is on this machine or nowhere
        if not Path(cfg.file).is_file():
            raise WeightsError(f"--backbones {backbone}: timm's config for '{model_name}' names weights file "
                               f"{cfg.file}, which is not there; " + _how_to_get(backbone, str(cfg.file)))
        return Weights(backbone, "file", str(cfg.file), Path(cfg.file))
    if cfg.hf_hub_id:
        return _from_hub(backbone, cfg.hf_hub_id, cfg.hf_hub_filename)
    return _from_url(backbone, cfg.url)
