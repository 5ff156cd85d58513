"""Training throughput per backbone: the real data path vs random tensors already on the device.

    python perf/throughput.py                              # CPU defaults: 64 px, batch 16, 2 backbones
    python perf/throughput.py --device cuda --size 224 --batch 32 --steps 50 --backbones all

For each backbone the model is built the way ``mlbench run`` builds it (the benchmark recipe's
head, frozen first 10% of convs, in_chans 1, ``pretrained=False`` so nothing is downloaded) and
trained with Adam and the recipe's loss in two ways:

data path
    :func:`mlbench.training.loop.train_step`, the step ``train`` itself runs: a uint8 host tensor
    (n, S, S) gathered by a permutation slice, copied pinned and non-blocking on CUDA, scaled to
    [0, 1], channels_last, the Table 2 :class:`Augmenter` on the device, bf16 autocast on CUDA,
    forward, loss, backward, Adam step; the loss is read once per measurement, as ``train`` reads
    it once per epoch.
ceiling
    the same model, loss and optimizer fed float batches that already sit on the device: no
    gather, no copy, no augmentation, no per-step host sync. Nothing can train faster.

The ratio data path / ceiling is what the GPU acceptance of issue 7 asks for (>= 90%). Each mode
first runs ``--warmup`` untimed steps. On CUDA a timing sample is a run of ``--steps`` steps (the
device queues work ahead; the clock is read after a synchronise), ``--rounds`` samples per mode. On
a CPU a sample is one step and the modes alternate step by step, ``--steps`` x ``--rounds``
samples each, so a burst of load from another process lands on both modes alike. The fastest
sample gives the images/s (other processes on a shared machine only ever add time). The ratio is
the median over pairs of neighbouring samples (ceiling time / data-path time): a pair runs
back to back, so a slow change of load cancels out within it. "prep ms/batch" times the data
path's own work without the model (gather, copy, scale, augment): when the ratio falls short,
this says whether the data path or something else is to blame.

Validation images/s is :func:`mlbench.training.loop.mean_loss` itself (no_grad, batches of 4 x the
training batch), timed the same way. From both rates the script projects the wall time of the full
padchest-specific baseline at the measured size and device: per epoch, every training image once
plus the validation loss; after training, one prediction pass over validation and test. Counts
default to the paper's Table 3 (59,753 / 8,532 / 17,082 images). Epochs: the paper's maximum of
350 is the upper bound; the "expected" figure assumes early stopping at ``--expected-epochs``
(default 60: the best validation loss around epoch 35 when fine-tuning ImageNet weights, plus the
patience of 25 epochs). Checkpoint writes (one ``last.pt`` per epoch) are not included: a fraction
of a second per epoch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from _machine import describe_machine
from mlbench.contracts.benchmark import PAPER_BACKBONES
from mlbench.preprocessing.augment import Augmenter
from mlbench.contracts.registry import get_registry
from mlbench.training.loop import build_backbone, mean_loss, optimize, pick_device, to_device, train_step

# Inception-v3 and Inception-ResNet-v2 need >= 75 px: the CPU default size of 64 px suits these two.
CPU_DEFAULT_BACKBONES = ("efficientnet_b0", "legacy_xception")
BENCHMARK = "padchest-specific"
# Table 3 of Liz et al. 2023, specific labels: 85,367 images split 70/10/20.
PAPER_TRAIN, PAPER_VAL, PAPER_TEST = 59_753, 8_532, 17_082
PAPER_MAX_EPOCHS = 350
LABEL_PREVALENCE = 0.046  # mean prevalence of the 35 labels on the real PA images


@dataclass
class Measurement:
    backbone: str
    ceiling_ips: float  # training images/s, inputs already on the device
    data_path_ips: float  # training images/s, mlbench's real data path
    eval_ips: float  # validation images/s (no_grad)
    paired_ratio: float  # median over neighbouring sample pairs of ceiling time / data-path time
    prep_ms: float  # the data path's own work per batch: gather, copy, scale, augment (no model)
    timed_steps: int = 0  # timed steps per mode (fewer than asked when a time budget lowered them)

    def epoch_seconds(self, n_train: int, n_val: int) -> float:
        return n_train / self.data_path_ips + n_val / self.eval_ips

    def run_seconds(self, epochs: int, n_train: int, n_val: int, n_test: int) -> float:
        """``epochs`` epochs, then the final prediction over validation and test."""
        return epochs * self.epoch_seconds(n_train, n_val) + (n_val + n_test) / self.eval_ips


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run_steps: Callable[[int], None], steps: int, device: torch.device) -> float:
    """Wall seconds for ``steps`` steps, the device's queue drained at both ends."""
    _sync(device)
    start = time.perf_counter()
    run_steps(steps)
    _sync(device)
    return time.perf_counter() - start


def measure(name: str, *, size: int, batch: int, steps: int, warmup: int, rounds: int, device: torch.device,
            augment: bool, seed: int = 0, budget_s: float | None = None) -> Measurement:
    """Ceiling, data-path and validation images/s of one backbone (see the module docstring).

    With ``budget_s`` the warm-up is timed and ``steps`` lowered (to no fewer than 5) so that the
    timed part should end within that many seconds of the call: a script with a total time limit
    gets fewer samples of each backbone rather than fewer backbones.
    """
    called = time.perf_counter()
    registry = get_registry()
    bench = registry.create("benchmark", BENCHMARK)
    recipe = bench.recipe.replace(pretrained=False, image_size=size, batch_size=batch)
    n_labels = len(bench.labels)
    torch.manual_seed(seed)
    model = build_backbone(registry, name, n_labels, recipe)
    model.to(device)
    if device.type == "cuda":  # as mlbench.training.loop.train does
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True

    generator = torch.Generator().manual_seed(seed)
    n_pool = batch * (warmup + steps)
    # The host side of training: one uint8 tensor of cached images, targets as floats.
    host_images = torch.randint(0, 256, (n_pool, size, size), dtype=torch.uint8, generator=generator)
    host_targets = (torch.rand(n_pool, n_labels, generator=generator) < LABEL_PREVALENCE).float()
    counts = host_targets.sum(0).clamp(min=1).long().tolist()
    loss_fn = registry.create("loss", recipe.loss, label_counts=counts, n_samples=n_pool,
                              **dict(recipe.loss_options)).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.lr)
    augmenter = Augmenter(seed) if augment else None
    model.train()
    order = torch.randperm(n_pool, generator=generator)
    cursor = 0

    def data_path_steps(n: int) -> None:
        # The step mlbench.training.loop.train runs, on a pool of host images.
        nonlocal order, cursor
        running = torch.zeros(())
        for _ in range(n):
            if cursor + batch > n_pool:  # a new "epoch" over the pool
                order, cursor = torch.randperm(n_pool, generator=generator), 0
            idx = order[cursor:cursor + batch]
            cursor += batch
            running = running + train_step(model, loss_fn, optimizer, host_images, host_targets, idx, device,
                                           augmenter) * len(idx)
        float(running)  # one sync per measurement, as train() reads the loss once per epoch

    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    device_batches = [(torch.rand(batch, 1, size, size, device=device).contiguous(memory_format=fmt),
                       (torch.rand(batch, n_labels, device=device) < LABEL_PREVALENCE).float()) for _ in range(2)]

    def ceiling_steps(n: int) -> None:
        for step in range(n):
            x, y = device_batches[step % len(device_batches)]
            optimize(model, loss_fn, optimizer, x, y, device)

    val_batch = batch * 4  # what train() passes to mean_loss
    val_images, val_targets = host_images[:val_batch], host_targets[:val_batch]

    def prep_steps(n: int) -> None:
        # Only what the data path adds before the model: where its time goes when the ratio drops.
        for step in range(n):
            idx = order[(step * batch) % (n_pool - batch + 1):][:batch]
            x = to_device(host_images[idx], device)
            host_targets[idx].to(device, non_blocking=True)
            if augmenter is not None:
                augmenter(x)

    def eval_steps(n: int) -> None:
        for _ in range(n):
            mean_loss(model, loss_fn, val_images, val_targets, device, val_batch)
        model.train()

    ceiling_steps(warmup)
    warm_data_s = _timed(data_path_steps, max(warmup, 1), device)
    eval_steps(1)
    if budget_s is not None:
        steps = _steps_within(budget_s - (time.perf_counter() - called), warm_data_s / max(warmup, 1), steps, rounds)
    # On a GPU a sample is a run of `steps` steps (the device queues work ahead; timing single
    # steps would hide that). On a shared CPU a sample is one step, ceiling and data path
    # alternating, so a burst of load from another process hits single samples of both modes.
    chunk = steps if device.type == "cuda" else 1
    ceiling, data, evals = [], [], []
    for sample in range(rounds * max(1, steps // chunk)):
        pair = [(ceiling, ceiling_steps), (data, data_path_steps)]
        for times, run_steps in (pair if sample % 2 == 0 else pair[::-1]):
            times.append(_timed(run_steps, chunk, device))
    preps = []
    for _ in range(rounds):
        evals.append(_timed(eval_steps, 1, device))
        preps.append(_timed(prep_steps, max(steps, 5), device))
    # The fastest sample counts: other processes only ever add time.
    best_ceiling, best_data, best_eval = min(ceiling), min(data), min(evals)
    paired_ratio = statistics.median(c / d for c, d in zip(ceiling, data))
    return Measurement(name, batch * chunk / best_ceiling, batch * chunk / best_data,
                       val_batch / best_eval, paired_ratio, 1000 * min(preps) / max(steps, 5), len(data) * chunk)


def _steps_within(seconds_left: float, step_s: float, steps: int, rounds: int) -> int:
    """The most steps per sample (at least 5, or ``steps`` if fewer) whose timed part fits ``seconds_left``.

    Per round: a sample of each mode, a validation pass and a prep run, about 4 x ``steps`` steps'
    worth counted generously (warm-up steps run slower than timed ones, validation is 4 batches).
    """
    affordable = int(seconds_left / (rounds * 4 * max(step_s, 1e-6)))
    return max(min(5, steps), min(steps, affordable))


def _hours(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def main() -> None:
    parser = argparse.ArgumentParser(description="Training images/s: mlbench's data path vs on-device random "
                                                 "tensors, and the projected padchest-specific baseline time.")
    parser.add_argument("--backbones", default=None,
                        help="comma-separated backbone plugins (or timm:NAME), 'all' for the paper's five "
                             f"[default: {','.join(CPU_DEFAULT_BACKBONES)} on CPU, all five on CUDA]")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--size", type=int, default=None, help="image size [default: 64 on CPU, 224 on CUDA]")
    parser.add_argument("--batch", type=int, default=None, help="batch size [default: 16 on CPU, 32 on CUDA]")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per mode and round [default: 4 CPU, 50 CUDA]")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps per mode first [default: 3 CPU, 10 CUDA]")
    parser.add_argument("--rounds", type=int, default=None,
                        help="timing rounds (see the module docstring) [default: 2 CPU, 3 CUDA]")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads [default: 2 on CPU; torch's own default with CUDA]")
    parser.add_argument("--no-augment", action="store_true", help="data path without the Table 2 augmentation")
    parser.add_argument("--train-images", type=int, default=PAPER_TRAIN)
    parser.add_argument("--val-images", type=int, default=PAPER_VAL)
    parser.add_argument("--test-images", type=int, default=PAPER_TEST)
    parser.add_argument("--expected-epochs", type=int, default=60,
                        help="epochs until early stopping, for the 'expected' projection")
    args = parser.parse_args()

    device = pick_device(args.device)
    on_gpu = device.type == "cuda"
    size = args.size if args.size is not None else (224 if on_gpu else 64)
    batch = args.batch if args.batch is not None else (32 if on_gpu else 16)
    steps = args.steps if args.steps is not None else (50 if on_gpu else 4)
    warmup = args.warmup if args.warmup is not None else (10 if on_gpu else 3)
    rounds = args.rounds if args.rounds is not None else (3 if on_gpu else 2)
    threads = args.threads or (None if on_gpu else 2)
    if threads:
        torch.set_num_threads(threads)
    if args.backbones in (None, ""):
        names = PAPER_BACKBONES if on_gpu else CPU_DEFAULT_BACKBONES
    elif args.backbones == "all":
        names = PAPER_BACKBONES
    else:
        names = tuple(n.strip() for n in args.backbones.split(",") if n.strip())
    for value, option in ((size, "--size"), (batch, "--batch"), (steps, "--steps"), (rounds, "--rounds")):
        if value < 1:
            parser.error(f"{option} must be >= 1, got {value}")
    if warmup < 0:
        parser.error(f"--warmup must be >= 0, got {warmup}")

    print(f"machine: {describe_machine()}")
    timing = (f"{rounds} timed runs of {steps} steps" if on_gpu
              else f"{steps * rounds} timed single steps, modes alternating")
    print(f"device {device}; {size} px, batch {batch}; per mode {warmup} warm-up steps + {timing} (fastest kept); "
          f"augmentation {'off' if args.no_augment else 'on'}; pretrained=False; "
          f"autocast {'bf16/fp16 + channels_last' if on_gpu else 'off (CPU, as mlbench.training.loop)'}")
    results: list[Measurement] = []
    header = (f"{'backbone':22s} {'ceiling img/s':>13s} {'data path img/s':>15s} {'ratio':>6s} "
              f"{'val img/s':>10s} {'step ms':>8s} {'prep ms/batch':>13s}")
    print(header)
    print("-" * len(header))
    for name in names:
        try:
            m = measure(name, size=size, batch=batch, steps=steps, warmup=warmup, rounds=rounds,
                        device=device, augment=not args.no_augment)
        except RuntimeError as exc:  # e.g. an Inception stem at < 75 px: say so, measure the others
            print(f"{name:22s} failed at {size} px: {str(exc).splitlines()[0][:100]}", flush=True)
            continue
        results.append(m)
        print(f"{name:22s} {m.ceiling_ips:13.1f} {m.data_path_ips:15.1f} {100 * m.paired_ratio:5.0f}% "
              f"{m.eval_ips:10.1f} {1000 * batch / m.ceiling_ips:8.0f} {m.prep_ms:13.1f}", flush=True)
    print("(ratio: data-path / ceiling speed, the median over back-to-back sample pairs; step ms: one ceiling "
          "step; prep ms/batch: the data path's own work - gather, copy, scale, augment - without the model)")

    n_train, n_val, n_test = args.train_images, args.val_images, args.test_images
    print(f"\nprojected padchest-specific baseline at {size} px, batch {batch} on {device} "
          f"({n_train:,} train / {n_val:,} val / {n_test:,} test images; one epoch = every training image "
          f"once + the validation loss):")
    header = (f"{'backbone':22s} {'epoch':>10s} {f'expected ({args.expected_epochs} ep)':>20s} "
              f"{f'upper bound ({PAPER_MAX_EPOCHS} ep)':>24s}")
    print(header)
    print("-" * len(header))
    expected_total = upper_total = 0.0
    for m in results:
        expected = m.run_seconds(args.expected_epochs, n_train, n_val, n_test)
        upper = m.run_seconds(PAPER_MAX_EPOCHS, n_train, n_val, n_test)
        expected_total, upper_total = expected_total + expected, upper_total + upper
        print(f"{m.backbone:22s} {_hours(m.epoch_seconds(n_train, n_val)):>10s} {_hours(expected):>20s} "
              f"{_hours(upper):>24s}")
    if len(results) > 1:
        print(f"{'all, one after another':22s} {'':>10s} {_hours(expected_total):>20s} {_hours(upper_total):>24s}")
    missing = [n for n in PAPER_BACKBONES if n not in {m.backbone for m in results}]
    if missing:
        print(f"(not measured here: {', '.join(missing)}; the total covers only the rows above)")
    if size != 224:
        print("(the paper trains at 224 px: pass --size 224 for the baseline's own figure)")


if __name__ == "__main__":
    main()
