"""Training one backbone from cached arrays: early stopping, best checkpoint, resume after a kill.

Images arrive as one uint8 tensor (n, size, size). Each batch is gathered with one indexing op,
copied to the device (pinned, non-blocking on CUDA), scaled to [0, 1] and augmented there, so
the data path never waits on Python per image. Every epoch ends with an atomic ``last.pt``; a
restarted run continues from it and, because shuffling, dropout and augmentation are seeded per
epoch, reaches the same result as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from mlbench.foundations.errors import UserError
from mlbench.contracts.benchmark import Recipe
from mlbench.training.distributed import SINGLE, Group
from mlbench.training import checkpoint
from mlbench.results.rundir import BackboneFiles
from mlbench.models.samplers import Sampler, UniformSampler, epoch_seed


@dataclass
class TrainState:
    epoch: int = 0  # epochs finished
    best_val_loss: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class DeviceError(UserError, ValueError):
    """The requested device does not exist here (the message names it)."""


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; refuses a device this machine lacks."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"--device {name}: not a device name; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: CUDA is not available on this machine; expected auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"expected cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif device.type != "cpu":
        raise DeviceError(f"--device {name}: unsupported device type; expected auto, cpu, cuda or cuda:N")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def _autocast(device: torch.device):
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (b, h, w) on the host -> float (b, 1, h, w) in [0, 1] on the device."""
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
        return (batch.unsqueeze(1).float() / 255.0).contiguous(memory_format=torch.channels_last)
    return batch.unsqueeze(1).float() / 255.0


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 128) -> np.ndarray:
    """Sigmoid probabilities (n, labels) for uint8 images (n, size, size)."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_device(images[start:start + batch_size], device)
        with _autocast(device):
            logits = model(x)
        out.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


@torch.no_grad()
def mean_loss(model: nn.Module, loss_fn: nn.Module, images: torch.Tensor, targets: torch.Tensor,
               device: torch.device, batch_size: int, group: Group = SINGLE) -> float:
    """Mean loss over all images; under DDP each rank scores its share and the sums are reduced."""
    model.eval()
    mine = torch.arange(len(images))[group.rank::group.world]
    total, count = 0.0, 0
    for start in range(0, len(mine), batch_size):
        idx = mine[start:start + batch_size]
        x = to_device(images[idx], device)
        y = targets[idx].to(device)
        with _autocast(device):
            logits = model(x)
        total += float(loss_fn(logits.float(), y)) * len(idx)
        count += len(idx)
    total, count = group.sum([total, float(count)], device)
    return total / max(count, 1)


def optimize(net: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
             y: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One forward/backward/update on a batch already on the device; the loss stays on the device."""
    with _autocast(device):
        logits = net(x)
    loss = loss_fn(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_step(net: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               targets: torch.Tensor, idx: torch.Tensor, device: torch.device,
               augment: Callable | None = None) -> torch.Tensor:
    """The data path plus one update: gather uint8 rows ``idx`` -> device -> [0, 1] -> augment -> optimize."""
    x = to_device(images[idx], device)
    y = targets[idx].to(device, non_blocking=True)
    if augment is not None:
        x = augment(x)
    return optimize(net, loss_fn, optimizer, x, y, device)


def train(model: nn.Module, loss_fn: nn.Module, recipe: Recipe, *, train_images: torch.Tensor,
          train_targets: torch.Tensor, val_images: torch.Tensor, val_targets: torch.Tensor,
          checkpoint_dir: Path, device: torch.device, augmenter_factory: Callable[[int], Callable] | None = None,
          progress: Any = None, name: str = "model", group: Group = SINGLE, compile: bool = False,
          sampler: Sampler | None = None) -> TrainState:
    """Train with Adam and early stopping on validation loss; leave the best checkpoint in ``checkpoint_dir``
    (a backbone folder: :class:`mlbench.results.rundir.BackboneFiles` names its files).

    ``augmenter_factory(seed)`` returns a batch augmenter (None: no augmentation). Under DDP
    (``group.world`` > 1) every rank walks the same shuffled order and takes its slice of each
    global batch of ``recipe.batch_size`` images; rank 0 alone writes checkpoints. ``compile``
    runs the training forward/backward through ``torch.compile``. ``sampler.epoch(i)`` gives each
    epoch's indices into the training images (default: the uniform sampler, the paper's order).
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    files = BackboneFiles(checkpoint_dir)
    net = _place(model, loss_fn, device, group, compile)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=recipe.lr)
    state = _resume(files.last, model, optimizer, device)
    learner = _Learner(net, loss_fn, optimizer, device, group)
    train_targets = train_targets.float()
    val_targets = val_targets.float()
    if len(train_images) == 0 or len(val_images) == 0:
        raise ValueError(f"{name}: need training and validation images, got {len(train_images)} and "
                         f"{len(val_images)}")
    if sampler is None:
        sampler = UniformSampler(np.zeros((len(train_images), 1), dtype=np.uint8), recipe.seed)
    bars = _Bars(progress, name, recipe.max_epochs, state.epoch)
    while state.epoch < recipe.max_epochs and state.bad_epochs < recipe.patience:
        epoch = state.epoch
        seed = epoch_seed(recipe.seed, epoch)
        order = torch.from_numpy(np.ascontiguousarray(sampler.epoch(epoch), dtype=np.int64))
        torch.manual_seed(seed)  # dropout
        augment = augmenter_factory(seed * group.world + group.rank) if augmenter_factory is not None else None
        started = time.perf_counter()
        train_loss = _train_epoch(learner, order, train_images, train_targets, recipe.batch_size, augment, bars)
        val_loss = mean_loss(model, loss_fn, val_images, val_targets, device, recipe.batch_size * 4, group)
        train_loss = group.sum([train_loss], device)[0] / len(order)
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                  "seconds": time.perf_counter() - started}
        _end_epoch(state, record, model, optimizer, files, recipe.min_delta, group)
        bars.end_epoch(state, record)
    bars.close()
    group.barrier()  # rank 0 has written the best checkpoint
    best = checkpoint.load(files.best, device=device)
    model.load_state_dict(best["model"])
    if group.is_main:
        files.write_history({"best_epoch": state.best_epoch, "best_val_loss": state.best_val_loss,
                             "epochs": state.epoch, "history": state.history})
    return state


def _place(model: nn.Module, loss_fn: nn.Module, device: torch.device, group: Group, compile: bool) -> nn.Module:
    """Model and loss on the device; the module that trains (DDP and compile wrap ``model``'s weights)."""
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    loss_fn.to(device)
    net = model
    if group.active:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        net = torch.compile(net)  # the weights stay shared with ``model``, which saving and eval use
    return net


def _resume(last_path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> TrainState:
    """The state after the last finished epoch (weights and optimizer restored), or a fresh one."""
    if not last_path.exists():
        return TrainState()
    saved = checkpoint.load(last_path, device=device, keys=("model", "optimizer", "state"))
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    return TrainState(**saved["state"])


@dataclass(frozen=True)
class _Learner:
    """What one optimisation step needs: the module that trains, its loss and optimizer, where and with whom."""

    net: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    group: Group


def _train_epoch(learner: _Learner, order: torch.Tensor, images: torch.Tensor, targets: torch.Tensor,
                 batch_size: int, augment: Callable | None, bars: _Bars) -> float:
    """One pass over ``order``; the sum of this rank's batch losses times their sizes."""
    net, device, group = learner.net, learner.device, learner.group
    n = len(order)
    # Under DDP a final global batch too small to give every rank an image is dropped on all ranks.
    steps = math.ceil(n / batch_size) if not group.active else max(1, (n - group.world) // batch_size + 1)
    net.train()
    # The running loss stays on the device: reading it every step would stall the GPU queue.
    running = torch.zeros((), device=device)
    bars.start_epoch(steps)
    for step in range(steps):
        idx = order[step * batch_size:(step + 1) * batch_size][group.rank::group.world]
        running += train_step(net, learner.loss_fn, learner.optimizer, images, targets, idx, device, augment) * len(idx)
        bars.step()
    return float(running)


def _end_epoch(state: TrainState, record: dict[str, float], model: nn.Module, optimizer: torch.optim.Optimizer,
               files: BackboneFiles, min_delta: float, group: Group) -> None:
    """Record the epoch, count it for early stopping, and write ``best.pt`` (if better) and ``last.pt``."""
    epoch, val_loss = record["epoch"], record["val_loss"]
    state.history.append(record)
    state.epoch = epoch + 1
    if val_loss < state.best_val_loss - min_delta:
        state.best_val_loss, state.best_epoch, state.bad_epochs = val_loss, epoch, 0
        if group.is_main:
            checkpoint.save(files.best, {"model": model.state_dict(), "epoch": epoch, "val_loss": val_loss})
    else:
        state.bad_epochs += 1
    if group.is_main:
        checkpoint.save(files.last, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "state": state.__dict__})


class _Bars:
    """One backbone's epoch and batch bars; every call does nothing without a progress object."""

    def __init__(self, progress: Any, name: str, total: int, done: int) -> None:
        self.progress, self.name = progress, name
        self.epochs = progress.add_task(f"{name} epochs", total=total, completed=done) if progress else None
        self.batches = progress.add_task(f"{name} batches", total=1) if progress else None

    def start_epoch(self, steps: int) -> None:
        if self.progress:
            self.progress.reset(self.batches, total=steps)

    def step(self) -> None:
        if self.progress:
            self.progress.advance(self.batches)

    def end_epoch(self, state: TrainState, record: dict[str, float]) -> None:
        if self.progress:
            self.progress.update(self.epochs, completed=state.epoch,
                                 description=f"{self.name} epoch {state.epoch}: loss {record['train_loss']:.4f}, "
                                             f"val loss {record['val_loss']:.4f} (best {state.best_val_loss:.4f}, "
                                             f"epoch {state.best_epoch + 1}), {record['seconds']:.1f}s")

    def close(self) -> None:
        if self.progress:
            self.progress.remove_task(self.batches)
            self.progress.remove_task(self.epochs)


def accepted_options(factory: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that ``factory`` names (all of them if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return options
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return options
    names = {p.name for p in params}
    return {k: v for k, v in options.items() if k in names}


def build_backbone(registry: Any, name: str, num_labels: int, recipe: Recipe) -> torch.nn.Module:
    """A registered backbone name, or ``timm:MODEL`` for any timm model.

    The recipe's head options (head_units, dropout, freeze_fraction) are offered to the factory;
    a third-party factory receives those it names. ``recipe.backbone_options[name]`` always goes in.
    """
    plugin, model_name = name.split(":", 1) if ":" in name else (name, None)
    offered = dict(head_units=recipe.head_units, dropout=recipe.dropout, freeze_fraction=recipe.freeze_fraction)
    options = {**accepted_options(registry.get("backbone", plugin).factory, offered),
               **recipe.backbone_options.get(name, {})}
    if model_name:
        options["model_name"] = model_name
    # --backbone-option NAME.pretrained=... overrides the recipe's for that one backbone.
    pretrained = options.pop("pretrained", recipe.pretrained)
    return registry.create("backbone", plugin, num_labels=num_labels, in_chans=recipe.in_chans,
                           pretrained=pretrained, **options)


def backbone_plugin(name: str) -> str:
    """The plugin part of a backbone name (``timm:convnext_tiny`` -> ``timm``)."""
    return name.split(":", 1)[0]
