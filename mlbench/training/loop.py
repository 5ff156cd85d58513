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
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from mlbench.foundations.errors import UserError
from mlbench.contracts.benchmark import Recipe
from mlbench.training.distributed import SINGLE, Group
from mlbench.training import checkpoint
from mlbench.results.rundir import BackboneFiles
from mlbench.models.adjusters import find_head
from mlbench.models.samplers import Sampler, UniformSampler, epoch_seed
from mlbench.models.schedules import Stage


@dataclass
class TrainState:
    epoch: int = 0  # epochs finished
    best_val_loss: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stage: int = 0  # stages of the schedule finished
    stage_start: int = 0  # the epoch the current stage began at
    stages: list[dict[str, Any]] = field(default_factory=list)  # each finished stage's summary


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


def on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` on ``device`` in the layout every forward pass of mlbench uses, training and inference alike.

    Channels-last weights: cuDNN's fastest layout, and on CPU oneDNN runs the depthwise convolutions
    of the mobile backbones about 1.4x faster in it (docs/performance.md, the demo's stage times).
    Inference must use the training layout too: the two layouts round differently (~1e-7), which is
    enough to reorder tied scores of an under-trained model and so move its AUC.
    """
    return model.to(device, memory_format=torch.channels_last)


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


@dataclass
class Phase:
    """One schedule stage made concrete for one backbone: its loss module and its sampler."""

    stage: Stage
    loss_fn: nn.Module
    sampler: Sampler
    mix_sampler: Sampler | None = None  # the stage mixes each batch with one drawn by this sampler


def train(model: nn.Module, loss_fn: nn.Module, recipe: Recipe, *, train_images: torch.Tensor,
          train_targets: torch.Tensor, val_images: torch.Tensor, val_targets: torch.Tensor,
          checkpoint_dir: Path, device: torch.device, augmenter_factory: Callable[[int], Callable] | None = None,
          progress: Any = None, name: str = "model", group: Group = SINGLE, compile: bool = False,
          sampler: Sampler | None = None, phases: Sequence[Phase] | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainState:
    """Train with Adam and early stopping on validation loss; leave the best checkpoint in ``checkpoint_dir``
    (a backbone folder: :class:`mlbench.results.rundir.BackboneFiles` names its files).

    ``augmenter_factory(seed)`` returns a batch augmenter (None: no augmentation). Under DDP
    (``group.world`` > 1) every rank walks the same shuffled order and takes its slice of each
    global batch of ``recipe.batch_size`` images; rank 0 alone writes checkpoints. ``compile``
    runs the training forward/backward through ``torch.compile``. ``sampler.epoch(i)`` gives each
    epoch's indices into the training images (default: the uniform sampler, the paper's order).

    ``phases``: a schedule's stages (:mod:`mlbench.models.schedules`), run in order, each with its
    own loss, sampler, trainable part and early stopping; the default is one stage of
    ``recipe.max_epochs`` with ``loss_fn`` and ``sampler``. The epoch count runs on across stages,
    and ``last.pt`` records the stage, so a killed run resumes inside any stage.

    ``on_epoch(record)`` receives every epoch's record once it is saved (experiment trackers): on a
    resume first the earlier epochs' records, then each new one; the receiver keeps each epoch once.
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    files = BackboneFiles(checkpoint_dir)
    if len(train_images) == 0 or len(val_images) == 0:
        raise ValueError(f"{name}: need training and validation images, got {len(train_images)} and "
                         f"{len(val_images)}")
    if phases is None:
        if sampler is None:
            sampler = UniformSampler(np.zeros((len(train_images), 1), dtype=np.uint8), recipe.seed)
        phases = [Phase(Stage("main", recipe.max_epochs), loss_fn, sampler)]
    on_device(model, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
    saved = _read_last(files.last, device)
    state = TrainState(**saved["state"]) if saved is not None else TrainState()
    if saved is not None:
        model.load_state_dict(saved["model"])
    for past in state.history if on_epoch is not None else ():
        on_epoch(past)
    own_flags = [p.requires_grad for p in model.parameters()]  # the backbone's own freezing (freeze_fraction)
    train_targets, val_targets = train_targets.float(), val_targets.float()
    bars = _Bars(progress, name, sum(p.stage.epochs for p in phases), state.epoch)
    for index, phase in enumerate(phases):
        if state.stage > index:
            continue
        stage = phase.stage
        if state.epoch == state.stage_start:  # the stage begins: its own early stopping
            state.best_val_loss, state.best_epoch, state.bad_epochs = math.inf, -1, 0
        if state.epoch == state.stage_start and stage.reset_head:
            torch.manual_seed(epoch_seed(recipe.seed, state.epoch))  # the same head on a resume
            find_head(model, train_targets.shape[1]).reset_parameters()
        trainer = _StageTrainer(model, stage, own_flags, train_targets.shape[1], device)
        mid_stage = saved is not None and saved.get("optimizer") is not None and state.epoch > state.stage_start
        optimizer = torch.optim.Adam(trainer.parameters(), lr=recipe.lr)
        if mid_stage:
            optimizer.load_state_dict(saved["optimizer"])
            trainer.load_extra(saved.get("extra") or {})
        phase.loss_fn.to(device)
        net = _wrap(trainer.module, device, group, compile)
        learner = _Learner(net, phase.loss_fn, optimizer, device, group, trainer.frozen_body)
        while (state.epoch - state.stage_start < stage.epochs
               and (not stage.early_stopping or state.bad_epochs < recipe.patience)):
            epoch = state.epoch
            seed = epoch_seed(recipe.seed, epoch)
            order = torch.from_numpy(np.ascontiguousarray(phase.sampler.epoch(epoch), dtype=np.int64))
            torch.manual_seed(seed)  # dropout
            augment = augmenter_factory(seed * group.world + group.rank) if augmenter_factory is not None else None
            started = time.perf_counter()
            mixing = mixing_partners(phase, epoch, recipe.seed, len(order), recipe.batch_size)
            train_loss = _train_epoch(learner, order, train_images, train_targets, recipe.batch_size, augment, bars,
                                      mixing)
            val_loss = mean_loss(trainer.module, phase.loss_fn, val_images, val_targets, device,
                                 recipe.batch_size * 4, group)
            train_loss = group.sum([train_loss], device)[0] / len(order)
            record = {"epoch": epoch, "stage": stage.name, "train_loss": train_loss, "val_loss": val_loss,
                      "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
            _end_epoch(state, record, trainer, optimizer, files, recipe.min_delta, group)
            bars.end_epoch(state, record)
            if on_epoch is not None:
                on_epoch(record)
        _end_stage(state, stage, trainer, files, device, group)
        saved = None
    bars.close()
    group.barrier()  # rank 0 has written the best checkpoint
    best = checkpoint.load(files.best, device=device)
    model.load_state_dict(best["model"])
    for param, flag in zip(model.parameters(), own_flags):
        param.requires_grad_(flag)
    if group.is_main:
        files.write_history({"best_epoch": state.best_epoch, "best_val_loss": state.best_val_loss,
                             "epochs": state.epoch, "history": state.history, "stages": state.stages})
    return state


def _wrap(module: nn.Module, device: torch.device, group: Group, compile: bool) -> nn.Module:
    """The module that trains: DDP and compile wrap ``module``'s weights, which saving and eval read directly."""
    net = module
    if group.active:
        net = nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        net = torch.compile(net)
    return net


def _read_last(last_path: Path, device: torch.device) -> dict[str, Any] | None:
    """``last.pt``: the weights, optimizer and state after the last finished epoch (or stage), or None."""
    if not last_path.exists():
        return None
    return checkpoint.load(last_path, device=device, keys=("model", "state"))


class _ScaledLogits(nn.Module):
    """A frozen network whose logits are multiplied by a learnt per-label scale (LWS)."""

    def __init__(self, model: nn.Module, num_labels: int) -> None:
        super().__init__()
        self.model = model
        self.scale = nn.Parameter(torch.ones(num_labels, device=next(model.parameters()).device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.scale


class _StageTrainer:
    """What one stage trains: the module it runs forward, its trainable parameters, and what it saves."""

    def __init__(self, model: nn.Module, stage: Stage, own_flags: list[bool], num_labels: int,
                 device: torch.device) -> None:
        self.model, self.stage, self.num_labels = model, stage, num_labels
        self.frozen_body = stage.trains != "all"
        if stage.trains == "all":
            for param, flag in zip(model.parameters(), own_flags):
                param.requires_grad_(flag)
            self.module: nn.Module = model
            return
        model.requires_grad_(False)
        if stage.trains == "head":
            find_head(model, num_labels).requires_grad_(True)
            self.module = model
        else:  # head-scale
            find_head(model, num_labels)  # refuse a network without one before training
            self.module = _ScaledLogits(model, num_labels)

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]

    def weights(self) -> dict[str, torch.Tensor]:
        """The model's state with a learnt scale folded into the head: a plain checkpoint of the backbone."""
        state = self.model.state_dict()
        if isinstance(self.module, _ScaledLogits):
            head = find_head(self.model, self.num_labels)
            prefix = next(n for n, m in self.model.named_modules() if m is head)
            scale = self.module.scale.detach()
            state = dict(state)
            state[f"{prefix}.weight"] = head.weight.detach() * scale[:, None]
            if head.bias is not None:
                state[f"{prefix}.bias"] = head.bias.detach() * scale
        return state

    def extra(self) -> dict[str, torch.Tensor]:
        """What a resume needs beyond the model's own weights (LWS: the scale, kept unfolded)."""
        return {"scale": self.module.scale.detach()} if isinstance(self.module, _ScaledLogits) else {}

    def load_extra(self, extra: dict[str, torch.Tensor]) -> None:
        if isinstance(self.module, _ScaledLogits) and "scale" in extra:
            with torch.no_grad():
                self.module.scale.copy_(extra["scale"])

    def finish(self) -> None:
        """Fold a learnt scale into the head, so the model alone is the stage's result."""
        if isinstance(self.module, _ScaledLogits):
            self.model.load_state_dict(self.weights())


def _end_stage(state: TrainState, stage: Stage, trainer: _StageTrainer, files: BackboneFiles,
               device: torch.device, group: Group) -> None:
    """The stage's result (its best epoch when it stops early, else its last) in the model, ``best.pt`` and
    ``last.pt``; the next stage starts from it with a fresh early-stopping count."""
    group.barrier()  # rank 0 has written this stage's best checkpoint
    if stage.early_stopping:
        trainer.model.load_state_dict(checkpoint.load(files.best, device=device)["model"])
    else:
        trainer.finish()
    stopped_early = state.epoch - state.stage_start < stage.epochs
    state.stages.append({"name": stage.name, "epochs": state.epoch - state.stage_start, "first_epoch": state.stage_start,
                         "best_epoch": state.best_epoch, "best_val_loss": state.best_val_loss,
                         "stopped_early": stopped_early, "result": "best" if stage.early_stopping else "last"})
    if not stage.early_stopping:  # the stage's result is its last epoch
        state.best_epoch, state.best_val_loss = state.epoch - 1, state.history[-1]["val_loss"]
        state.stages[-1].update(best_epoch=state.best_epoch, best_val_loss=state.best_val_loss)
    state.stage += 1
    state.stage_start = state.epoch
    if group.is_main:
        if not stage.early_stopping:
            checkpoint.save(files.best, {"model": trainer.model.state_dict(), "epoch": state.best_epoch,
                                         "val_loss": state.best_val_loss})
        # No optimizer: the next stage builds its own over what it trains.
        checkpoint.save(files.last, {"model": trainer.model.state_dict(), "optimizer": None, "state": state.__dict__})


@dataclass(frozen=True)
class Mixing:
    """One epoch's mixing partners (an order as long as the epoch's) and one mixing weight per step."""

    order: torch.Tensor
    lam: np.ndarray


def mixing_partners(phase: Phase, epoch: int, seed: int, length: int, batch_size: int) -> Mixing | None:
    """Balanced-MixUp's partners for one epoch: the stage's mixing sampler's order, repeated to ``length``,
    and lambda ~ Beta(mix_alpha, 1) per step, both fixed by (seed, epoch) so a resume mixes alike."""
    if phase.mix_sampler is None:
        return None
    drawn = np.asarray(phase.mix_sampler.epoch(epoch), dtype=np.int64)
    partners = np.resize(drawn, length)  # cycled when shorter than the epoch
    rng = np.random.default_rng([seed, epoch, 7])
    lam = rng.beta(phase.stage.mix_alpha, 1.0, size=math.ceil(length / batch_size) + 1)
    return Mixing(torch.from_numpy(partners), lam.astype(np.float32))


@dataclass(frozen=True)
class _Learner:
    """What one optimisation step needs: the module that trains, its loss and optimizer, where and with whom."""

    net: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    group: Group
    frozen_body: bool = False  # a stage that trains only the head: the body stays in eval mode


def mixed_step(net: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               targets: torch.Tensor, idx: torch.Tensor, partner: torch.Tensor, lam: float, device: torch.device,
               augment: Callable | None = None) -> torch.Tensor:
    """:func:`train_step` on ``lam * batch + (1 - lam) * partner batch``, images and (soft) targets alike."""
    x, x2 = to_device(images[idx], device), to_device(images[partner], device)
    y = targets[idx].to(device, non_blocking=True)
    y2 = targets[partner].to(device, non_blocking=True)
    if augment is not None:
        x, x2 = augment(x), augment(x2)
    return optimize(net, loss_fn, optimizer, lam * x + (1 - lam) * x2, lam * y + (1 - lam) * y2, device)


def _train_epoch(learner: _Learner, order: torch.Tensor, images: torch.Tensor, targets: torch.Tensor,
                 batch_size: int, augment: Callable | None, bars: _Bars, mixing: Mixing | None = None) -> float:
    """One pass over ``order``; the sum of this rank's batch losses times their sizes."""
    net, device, group = learner.net, learner.device, learner.group
    n = len(order)
    # Under DDP a final global batch too small to give every rank an image is dropped on all ranks.
    steps = math.ceil(n / batch_size) if not group.active else max(1, (n - group.world) // batch_size + 1)
    # A frozen body keeps eval mode (batch-norm statistics, dropout): its features stay the same.
    net.train(not learner.frozen_body)
    # The running loss stays on the device: reading it every step would stall the GPU queue.
    running = torch.zeros((), device=device)
    bars.start_epoch(steps)
    for step in range(steps):
        idx = order[step * batch_size:(step + 1) * batch_size][group.rank::group.world]
        if mixing is None:
            loss = train_step(net, learner.loss_fn, learner.optimizer, images, targets, idx, device, augment)
        else:
            partner = mixing.order[step * batch_size:(step + 1) * batch_size][group.rank::group.world][:len(idx)]
            loss = mixed_step(net, learner.loss_fn, learner.optimizer, images, targets, idx, partner,
                              mixing.lam[step], device, augment)
        running += loss * len(idx)
        bars.step()
    return float(running)


def _end_epoch(state: TrainState, record: dict[str, Any], trainer: _StageTrainer, optimizer: torch.optim.Optimizer,
               files: BackboneFiles, min_delta: float, group: Group) -> None:
    """Record the epoch, count it for early stopping, and write ``best.pt`` (if better) and ``last.pt``."""
    epoch, val_loss = record["epoch"], record["val_loss"]
    state.history.append(record)
    state.epoch = epoch + 1
    if val_loss < state.best_val_loss - min_delta:
        state.best_val_loss, state.best_epoch, state.bad_epochs = val_loss, epoch, 0
        if group.is_main:
            checkpoint.save(files.best, {"model": trainer.weights(), "epoch": epoch, "val_loss": val_loss})
    else:
        state.bad_epochs += 1
    if group.is_main:
        checkpoint.save(files.last, {"model": trainer.model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "extra": trainer.extra(), "state": state.__dict__})


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
