"""Issue 15's GPU acceptance in one command: measure, then print one markdown report naming the GPU.

    python perf/gpu_acceptance.py --dry-run                  # the plan, versions, missing packages; any machine
    python perf/gpu_acceptance.py --out gpu-table.md         # on a CUDA machine, at most 8 minutes
    bash perf/gpu_run.sh                                     # offline install from .gpu-wheels/, then the above

Sections, each with a time budget inside the 8-minute total. A section that cannot start with its
minimum time left is skipped with the reason printed; one that runs past its budget is stopped
and keeps what it measured. The clock starts when the script starts, imports included.

throughput
    per backbone of the padchest-specific recipe (the paper's five; ``pretrained=False``, random
    weights train at the same speed) at 224 px, batch 32: training images/s through mlbench's data
    path (uint8 host tensor -> ``mlbench.training.loop.train_step``, bf16 autocast, channels_last,
    cudnn.benchmark, as ``train`` runs it) and on data already on the GPU, their ratio (the median
    over back-to-back sample pairs; issue 7's goal is >= 0.90) and peak GPU memory. The measuring is
    ``perf/throughput.py``'s ``measure``, given the backbone's share of the budget.
projection
    GPU hours of the full padchest-specific baseline from those rates (see ``project``): the
    benchmark's own split of the public CSV (59,807 / 8,633 / 17,015 images), the recipe's
    maximum epochs as the upper bound, and early stopping after the recipe's patience past a
    best epoch of 35 (docs/performance.md) as the expected figure.
cache
    a cache epoch vs decoding epochs (host side, one thread) on synthetic films of PadChest's size
    (2,800 px 16-bit PNGs, a few dozen), lung crop to 224 px: ``perf/bench_cache_epoch.py``.
gradcam
    mlbench's batched Grad-CAM vs one pytorch-grad-cam call per (model, image, label), the five
    backbones at 224 px: ``perf/bench_explain.py``.

Without CUDA the script says so in one line and exits 2 (``--cpu-rehearsal`` runs every section on
the CPU at toy sizes to check the script itself; its figures are not GPU figures).
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # the 8 minutes include imports and CUDA start-up

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.metadata as metadata  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # the sibling scripts whose measuring functions this one calls

DISTRIBUTION = "mlbench-imbalanced"
BENCHMARK = "padchest-specific"
TOTAL_LIMIT_S = 480.0
EXIT_MARGIN_S = 10.0  # kept back for writing the report and exiting
OVERRUN_GRACE_S = 15.0  # a section is interrupted this long after its budget ends
# `mlbench split padchest-specific` on the public label CSV, seed 0 (split hash 9fe666655ac5...):
# 85,455 PA images. Counted once here; the GPU machine does not have the CSV.
SPLIT_IMAGES = {"train": 59_807, "val": 8_633, "test": 17_015}
# Fine-tuning ImageNet weights reaches its best validation loss around this epoch (docs/performance.md).
ASSUMED_BEST_EPOCH = 35
GOAL_RATIO = 0.90
# grad-cam imports these at run time; `pip install --no-deps` leaves them to us.
RUNTIME_EXTRAS = ("ttach", "tqdm")
# distribution -> the module it provides, where the names differ
MODULES = {"scikit-learn": "sklearn", "iterative-stratification": "iterstrat", "grad-cam": "pytorch_grad_cam",
           "opencv-python": "cv2", "pillow": "PIL", "pyyaml": "yaml"}
# any of these satisfies a requirement on the first
ALTERNATIVES = {"opencv-python": ("opencv-python-headless", "opencv-contrib-python",
                                  "opencv-contrib-python-headless")}


class SectionOverrun(Exception):
    """A section ran past its budget plus the grace period."""


class Refusal(Exception):
    """Why the script cannot measure on this machine; one line, exit status 2 or 3."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Section:
    key: str
    budget_s: float
    min_s: float  # not started with less time than this left
    what: str


@dataclass(frozen=True)
class Plan:
    size: int
    batch: int
    warmup: int
    steps: int
    rounds: int
    film_size: int
    film_patients: int  # demo patients of 1-4 films each; only PA films with a label are kept
    epochs: int  # of each cache/decoding kind; the fastest counts
    gradcam_images: int
    gradcam_labels: int
    gradcam_repeats: int
    sections: tuple[Section, ...]


GPU_PLAN = Plan(
    size=224, batch=32, warmup=10, steps=50, rounds=3, film_size=2800, film_patients=16, epochs=2,
    gradcam_images=8, gradcam_labels=4, gradcam_repeats=2,
    sections=(
        Section("throughput", 240, 30, "training images/s, data path vs on-device ceiling, peak memory"),
        Section("projection", 0, 0, "GPU hours of the full padchest-specific baseline (computed)"),
        Section("cache", 110, 40, "cache epoch vs decoding epochs on 2,800 px 16-bit films (host)"),
        Section("gradcam", 80, 20, "batched vs per-pair Grad-CAM"),
    ),
)
# Toy sizes that run every code path on a CPU in a few minutes; the figures mean nothing.
CPU_REHEARSAL_PLAN = Plan(
    size=96, batch=4, warmup=1, steps=2, rounds=1, film_size=2800, film_patients=3, epochs=1,
    gradcam_images=1, gradcam_labels=2, gradcam_repeats=1, sections=GPU_PLAN.sections,
)


def scaled(plan: Plan, factor: float) -> Plan:
    """The plan with every section's budget and minimum times ``factor`` (a shorter --time-limit)."""
    sections = tuple(replace(s, budget_s=round(s.budget_s * factor), min_s=round(s.min_s * factor))
                     for s in plan.sections)
    return replace(plan, sections=sections)


def elapsed() -> float:
    return time.monotonic() - STARTED


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries the report alone."""
    print(f"[{elapsed():5.0f} s] {message}", file=sys.stderr, flush=True)


# --- what this machine has --------------------------------------------------------------------


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def declared_requirements() -> tuple[list[str], str]:
    """mlbench's dependencies: from the installed metadata, else from pyproject.toml."""
    try:
        requires = metadata.requires(DISTRIBUTION)
        if requires is not None:
            return [r for r in requires if "extra ==" not in r], f"installed {DISTRIBUTION} metadata"
    except metadata.PackageNotFoundError:
        pass
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return [], "nowhere (mlbench is not installed and Python < 3.11 has no tomllib)"
    with open(REPO / "pyproject.toml", "rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"]), "pyproject.toml"


@dataclass
class PackageCheck:
    missing: list[str] = field(default_factory=list)  # "name (module m)"
    off_pin: list[str] = field(default_factory=list)  # "torch 2.11.0 outside ==2.14.1"
    source: str = ""


def check_packages() -> PackageCheck:
    """Which of mlbench's requirements (and grad-cam's run-time imports) this Python lacks."""
    requirements, source = declared_requirements()
    check = PackageCheck(source=source)
    try:
        from packaging.requirements import Requirement
    except ImportError:
        Requirement = None  # noqa: N806 - names only, no version check
    for text in [*requirements, *RUNTIME_EXTRAS]:
        if Requirement is not None:
            requirement = Requirement(text)
            name, specifier = requirement.name.lower(), requirement.specifier
        else:
            name, specifier = re.split(r"[<>=!~ ;\[]", text, maxsplit=1)[0].lower(), None
        found = next(((d, v) for d in (name, *ALTERNATIVES.get(name, ())) if (v := installed_version(d))), None)
        module = MODULES.get(name, name.replace("-", "_"))
        if found is None:
            if importlib.util.find_spec(module) is None:  # a build without pip metadata still counts
                check.missing.append(f"{name} (module {module})")
            continue
        dist, version = found
        if specifier is not None and not specifier.contains(version, prereleases=True):
            check.off_pin.append(f"{dist} {version} outside {name}{specifier}")
    return check


def found_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "timm", "grad-cam", DISTRIBUTION):
        versions[name] = installed_version(name) or "not installed"
    return versions


def driver_version() -> str:
    """The NVIDIA driver, from nvidia-smi (torch does not report it)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "unknown (no nvidia-smi on PATH)"
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown (nvidia-smi: {type(exc).__name__})"
    return out[0] if out else "unknown (nvidia-smi printed nothing)"


def load_recipe() -> tuple[Any, str]:
    """The padchest-specific recipe (backbones, epochs, patience), or None and why mlbench did not load."""
    try:
        from mlbench.contracts.registry import get_registry

        return get_registry().create("benchmark", BENCHMARK).recipe, ""
    except Exception as exc:  # noqa: BLE001 - the dry run reports any reason mlbench does not load
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def expected_epochs(recipe: Any) -> int:
    """Epochs of a run that early-stops: the assumed best epoch plus the recipe's patience."""
    return min(recipe.max_epochs, ASSUMED_BEST_EPOCH + recipe.patience)


# --- the plan ---------------------------------------------------------------------------------


def describe_plan(plan: Plan, recipe: Any, backbones: tuple[str, ...] | None, rehearsal: bool,
                  limit_s: float) -> list[str]:
    names = ", ".join(backbones) if backbones else "the padchest-specific recipe's (mlbench did not load)"
    n_models = len(backbones) if backbones else 5
    where = "CPU rehearsal (toy sizes; figures mean nothing)" if rehearsal else "one CUDA GPU"
    epochs_rule = (f"upper bound the recipe's max_epochs; expected: best epoch {ASSUMED_BEST_EPOCH} (assumed, "
                   f"docs/performance.md) + the recipe's patience")
    if recipe is not None:
        epochs_rule += f" = {recipe.max_epochs} and {expected_epochs(recipe)} epochs"
    details = {
        "throughput": (f"{names}; {plan.size} px, batch {plan.batch}, bf16 autocast (fp16 where bf16 is missing), "
                       f"augmentation on; {plan.warmup} warm-up + up to {plan.rounds} x {plan.steps} timed steps "
                       f"per mode, fewer when the budget is short"),
        "projection": (f"{SPLIT_IMAGES['train']:,} train / {SPLIT_IMAGES['val']:,} val / {SPLIT_IMAGES['test']:,} "
                       f"test images per epoch and final pass; {epochs_rule}"),
        "cache": (f"synthetic corpus of {plan.film_patients} patients (1-4 films each, PA kept), {plan.film_size} px "
                  f"16-bit PNG; lung crop to {plan.size} px, batch {plan.batch}, {plan.epochs} epoch(s) per kind"),
        "gradcam": (f"{n_models} models x {plan.gradcam_images} images x {plan.gradcam_labels} labels at "
                    f"{plan.size} px, best of {plan.gradcam_repeats}"),
    }
    lines = [f"device: {where}; total limit {limit_s:.0f} s from the start of the script",
             "sections (budget s / minimum s to start):"]
    for s in plan.sections:
        lines.append(f"  {s.key:11s} {s.budget_s:4.0f} / {s.min_s:3.0f}  {s.what}: {details[s.key]}")
    return lines


# --- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    title: str
    machine: list[tuple[str, str]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # markdown blocks in section order
    notes: list[str] = field(default_factory=list)  # skipped / stopped / failed sections
    out: Path | None = None
    limit_s: float = TOTAL_LIMIT_S

    def markdown(self) -> str:
        rows = "\n".join(f"| {k} | {v} |" for k, v in self.machine)
        text = [f"# {self.title}", "", "| | |", "|---|---|", rows, ""]
        text += [block + "\n" for block in self.parts]
        if self.notes:
            text += ["## Not measured", "", *[f"- {n}" for n in self.notes], ""]
        text.append(f"Wall time of the script: {elapsed():.0f} s of its {self.limit_s:.0f} s limit.")
        return "\n".join(text) + "\n"

    def save(self) -> None:
        """Rewrite --out after every section: a killed run still leaves what it measured."""
        if self.out is not None:
            from mlbench.foundations.io import write_text

            write_text(self.out, self.markdown())


def markdown_table(header: list[str], rows: list[list[str]], align: str) -> str:
    """``align``: one character per column, l or r."""
    marks = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- sections ---------------------------------------------------------------------------------


@dataclass
class Context:
    plan: Plan
    device: Any  # torch.device
    backbones: tuple[str, ...]
    report: Report
    measurements: list[Any] = field(default_factory=list)  # throughput.Measurement per measured backbone


def free_gpu_memory(ctx: Context) -> None:
    import torch

    gc.collect()
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(ctx.device)


def throughput_section(ctx: Context, deadline: float) -> None:
    import torch
    from throughput import measure

    plan, rows = ctx.plan, []
    header = ["backbone", "ceiling img/s", "data path img/s", f"ratio (goal >= {GOAL_RATIO:.2f})", "peak memory",
              "val img/s", "prep ms/batch", "timed steps per mode"]

    def publish() -> None:
        dtype = "bf16" if ctx.device.type != "cuda" or torch.cuda.is_bf16_supported() else "fp16"
        autocast = f"{dtype} autocast, channels_last, cudnn.benchmark" if ctx.device.type == "cuda" else "CPU, no autocast"
        ctx.report.parts[index] = (
            f"## Training throughput\n\n{plan.size} px, batch {plan.batch}, {autocast}, Table 2 augmentation on the "
            f"device, Adam, weighted BCE, `pretrained=False`. Ratio: data path / ceiling, median over back-to-back "
            f"sample pairs.\n\n" + markdown_table(header, rows, "lrrrrrrr"))
        ctx.report.save()

    index = len(ctx.report.parts)
    ctx.report.parts.append("")
    for i, name in enumerate(ctx.backbones):
        share = (deadline - time.monotonic()) / (len(ctx.backbones) - i)
        if share < 8:
            rows.append([name, "not measured: no time left in this section", "", "", "", "", "", ""])
            continue
        free_gpu_memory(ctx)
        log(f"throughput: {name} ({share:.0f} s)")
        try:
            m = measure(name, size=plan.size, batch=plan.batch, steps=plan.steps, warmup=plan.warmup,
                        rounds=plan.rounds, device=ctx.device, augment=True, budget_s=share)
        except SectionOverrun:
            rows.append([name, "stopped: the section's time ran out", "", "", "", "", "", ""])
            publish()
            raise
        except RuntimeError as exc:  # out of memory, a stem too small for the size: say so, go on
            rows.append([name, f"failed: {str(exc).splitlines()[0][:120]}", "", "", "", "", "", ""])
            publish()
            continue
        peak = (f"{torch.cuda.max_memory_allocated(ctx.device) / 2**30:.1f} GiB" if ctx.device.type == "cuda"
                else "n/a (CPU)")
        ctx.measurements.append(m)
        verdict = "meets" if m.paired_ratio >= GOAL_RATIO else "MISSES"
        rows.append([name, f"{m.ceiling_ips:.1f}", f"{m.data_path_ips:.1f}", f"{m.paired_ratio:.2f} ({verdict})",
                     peak, f"{m.eval_ips:.1f}", f"{m.prep_ms:.1f}", str(m.timed_steps)])
        publish()
    publish()
    free_gpu_memory(ctx)


def project(measurement: Any, epochs: int) -> float:
    """GPU hours of one backbone: ``epochs`` epochs then the final prediction pass (throughput.Measurement)."""
    return measurement.run_seconds(epochs, SPLIT_IMAGES["train"], SPLIT_IMAGES["val"], SPLIT_IMAGES["test"]) / 3600


def projection_section(ctx: Context, deadline: float) -> None:
    from mlbench.contracts.registry import get_registry

    recipe = get_registry().create("benchmark", BENCHMARK).recipe
    if not ctx.measurements:
        ctx.report.notes.append("projection: skipped, no backbone was measured in the throughput section")
        return
    n_expected = expected_epochs(recipe)
    rows, expected_total, upper_total = [], 0.0, 0.0
    for m in ctx.measurements:
        expected, upper = project(m, n_expected), project(m, recipe.max_epochs)
        expected_total, upper_total = expected_total + expected, upper_total + upper
        epoch_min = m.epoch_seconds(SPLIT_IMAGES["train"], SPLIT_IMAGES["val"]) / 60
        rows.append([m.backbone, f"{epoch_min:.1f} min", f"{expected:.1f}", f"{upper:.1f}"])
    rows.append([f"all {len(ctx.measurements)}, one after another", "", f"{expected_total:.1f}", f"{upper_total:.1f}"])
    missing = [n for n in ctx.backbones if n not in {m.backbone for m in ctx.measurements}]
    ctx.report.parts.append(
        f"## Projected GPU hours of the full {BENCHMARK} baseline\n\n"
        f"Computed from the measured data-path and validation rates above, on this "
        f"{'GPU' if ctx.device.type == 'cuda' else 'CPU (a rehearsal: not GPU hours)'}, one backbone at a time. "
        f"An epoch is {SPLIT_IMAGES['train']:,} training images at the data-path rate plus the validation loss over "
        f"{SPLIT_IMAGES['val']:,} images; after training, one prediction pass over validation and "
        f"{SPLIT_IMAGES['test']:,} test images (the benchmark's split of the public CSV, seed 0). Upper bound: the "
        f"recipe's {recipe.max_epochs} epochs. Expected: {n_expected} epochs, assuming the best validation loss "
        f"near epoch {ASSUMED_BEST_EPOCH} (fine-tuning ImageNet weights) and the recipe's patience of "
        f"{recipe.patience}. Checkpoint writes are not counted."
        + (f" Not measured, so not in the total: {', '.join(missing)}." if missing else "") + "\n\n"
        + markdown_table(["backbone", "one epoch", f"GPU hours, expected ({n_expected} epochs)",
                          f"GPU hours, upper bound ({recipe.max_epochs} epochs)"], rows, "lrrr"))
    ctx.report.save()


def cache_section(ctx: Context, deadline: float) -> None:
    import cv2
    import torch
    from bench_cache_epoch import demo_items, time_epochs

    plan = ctx.plan
    workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    threads = torch.get_num_threads(), cv2.getNumThreads()
    with tempfile.TemporaryDirectory(prefix="mlbench-gpu-acceptance-") as tmp:
        log(f"cache: writing {plan.film_patients} patients' {plan.film_size} px films")
        started = time.monotonic()
        items, _ = demo_items(Path(tmp) / "films", plan.film_patients, plan.film_size, workers=workers)
        written_s = time.monotonic() - started
        log(f"cache: {len(items)} films written in {written_s:.0f} s; building the cache and timing epochs")
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        try:
            t = time_epochs(items, Path(tmp) / "cache", size=plan.size, batch=plan.batch, epochs=plan.epochs,
                            workers=workers, budget_s=deadline - time.monotonic())
        finally:
            torch.set_num_threads(threads[0])
            cv2.setNumThreads(threads[1])
    decoding = [name for name in t.seconds if name != "cache"]
    left_out = t.offered - t.images - len(t.skips)
    used = f" ({left_out} more did not fit the time budget)" if left_out > 0 else ""
    row = [f"{t.images}, {t.first_film} first{used}", f"{t.build_s:.1f} s ({t.workers} worker{'s' if t.workers > 1 else ''})", f"{t.cache_s:.3f} s",
           *[f"{t.seconds[n]:.2f} s" for n in decoding], f"{t.speedup:.0f}x"]
    ctx.report.parts.append(
        f"## Cache epoch vs decoding epoch\n\nSynthetic PadChest-format films (mlbench's demo painter, "
        f"{plan.film_size} px 16-bit PNG, written in {written_s:.0f} s); one process, one thread, files in the page "
        f"cache; {t.preprocessor} to {t.size} px, batch {t.batch}; fastest of {plan.epochs} epoch(s) per kind. "
        f"Issue 4 asks for the cache to be >= 20x faster than the cheapest decoding epoch.\n\n"
        + markdown_table(["films", "cache build (once)", "cache epoch", *[f"{n} epoch" for n in decoding],
                          "cache faster by"], [row], "l" + "r" * (len(row) - 1)))
    ctx.report.save()


def gradcam_section(ctx: Context, deadline: float) -> None:
    import torch
    from bench_explain import spread_labels, time_gradcam
    from mlbench.contracts.registry import get_registry
    from mlbench.training.loop import build_backbone

    plan = ctx.plan
    registry = get_registry()
    bench = registry.create("benchmark", BENCHMARK)
    recipe = bench.recipe.replace(pretrained=False, image_size=plan.size)
    torch.manual_seed(0)
    models = [build_backbone(registry, n, len(bench.labels), recipe).to(ctx.device).eval() for n in ctx.backbones]
    images = torch.rand(plan.gradcam_images, 1, plan.size, plan.size, device=ctx.device)
    log(f"gradcam: {len(models)} models x {plan.gradcam_images} images x {plan.gradcam_labels} labels")
    t = time_gradcam(models, list(ctx.backbones), images, spread_labels(len(bench.labels), plan.gradcam_labels),
                     plan.gradcam_repeats, ctx.device)
    del models
    free_gpu_memory(ctx)
    rows = [[f"{len(t.models)} x {t.images} x {t.labels} = {t.maps}", f"{t.batched_s:.2f} s",
             f"{1000 * t.batched_s / t.maps:.1f}", f"{t.per_pair_s:.2f} s", f"{1000 * t.per_pair_s / t.maps:.1f}",
             f"{t.speedup:.1f}x", f"{t.max_gap:.1e}"]]
    layers = ", ".join(f"{m} [{layer}]" for m, layer in zip(t.models, t.target_layers))
    ctx.report.parts.append(
        f"## Grad-CAM at {t.size} px\n\nBatched: mlbench's `gradcam` (one forward per model and batch, one backward "
        f"per label). Per pair: one pytorch-grad-cam call per (model, image, label). Random weights, best of "
        f"{plan.gradcam_repeats}. Layers: {layers}.\n\n"
        + markdown_table(["models x images x labels = maps", "batched", "ms/map", "per pair", "ms/map", "speed-up",
                          "max map difference"], rows, "lrrrrrr"))
    ctx.report.save()


SECTION_RUNNERS: dict[str, Callable[[Context, float], None]] = {
    "throughput": throughput_section, "projection": projection_section, "cache": cache_section,
    "gradcam": gradcam_section,
}


def _overrun(signum: int, frame: Any) -> None:
    raise SectionOverrun()


def run_sections(ctx: Context) -> int:
    """Run each section inside its budget and the total limit; the number that failed."""
    failed = 0
    total_deadline = STARTED + ctx.report.limit_s - EXIT_MARGIN_S
    signal.signal(signal.SIGALRM, _overrun)
    for section in ctx.plan.sections:
        now = time.monotonic()
        left = total_deadline - OVERRUN_GRACE_S - now
        if section.budget_s and left < section.min_s:
            ctx.report.notes.append(f"{section.key}: skipped, {max(left, 0):.0f} s left of the total limit and it "
                                    f"needs at least {section.min_s:.0f} s")
            log(ctx.report.notes[-1])
            continue
        deadline = now + min(section.budget_s, left) if section.budget_s else now
        if section.budget_s:
            signal.setitimer(signal.ITIMER_REAL, deadline + OVERRUN_GRACE_S - now)
        try:
            SECTION_RUNNERS[section.key](ctx, deadline)
        except SectionOverrun:
            ctx.report.notes.append(f"{section.key}: stopped {OVERRUN_GRACE_S:.0f} s past its {section.budget_s:.0f} s "
                                    f"budget; what it had measured is above")
            log(ctx.report.notes[-1])
        except Exception as exc:  # noqa: BLE001 - one broken section must not cost the others their minutes
            failed += 1
            first = str(exc).splitlines()[0] if str(exc) else ""
            ctx.report.notes.append(f"{section.key}: failed, {type(exc).__name__}: {first}")
            traceback.print_exc(file=sys.stderr)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        log(f"{section.key}: done")
        ctx.report.save()
    return failed


def machine_rows(device: Any) -> list[tuple[str, str]]:
    import torch
    from _machine import describe_machine

    versions = found_versions()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        gpu = (f"{torch.cuda.get_device_name(device)} ({props.total_memory / 2**30:.0f} GiB, compute capability "
               f"{props.major}.{props.minor})")
        cudnn = torch.backends.cudnn.version()
        rows = [("GPU", gpu), ("driver", driver_version()),
                ("CUDA (torch build) / cuDNN", f"{torch.version.cuda} / {cudnn}"),
                ("autocast dtype", "bf16" if torch.cuda.is_bf16_supported() else "fp16 (no bf16 on this GPU)")]
    else:
        rows = [("GPU", "none: CPU REHEARSAL, these figures check the script and are not GPU figures")]
    rows += [("torch / torchvision / timm", f"{versions['torch']} / {versions['torchvision']} / {versions['timm']}"),
             ("mlbench / grad-cam / Python", f"{versions[DISTRIBUTION]} / {versions['grad-cam']} / {versions['python']}"),
             ("host", describe_machine()),
             ("measured", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]
    return rows


# --- entry ------------------------------------------------------------------------------------


def dry_run(args: argparse.Namespace, plan: Plan, rehearsal: bool) -> int:
    versions = found_versions()
    packages = check_packages()
    recipe, why = load_recipe()
    backbones = tuple(args.backbones.split(",")) if args.backbones else recipe.backbones if recipe else None
    print("mlbench GPU acceptance: the plan (dry run, nothing is measured)")
    for line in describe_plan(plan, recipe, backbones, rehearsal, args.time_limit):
        print(line)
    print("found: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    cuda = "torch not importable"
    if importlib.util.find_spec("torch") is not None:
        import torch

        cuda = (f"CUDA available: {torch.cuda.get_device_name(0)} (torch built for CUDA {torch.version.cuda})"
                if torch.cuda.is_available() else
                f"CUDA not available (torch built for CUDA {torch.version.cuda or 'none: a CPU build'})")
    print(f"device: {cuda}")
    if not backbones:
        print(f"mlbench did not load: {why}")
    print(f"required packages (from {packages.source}): "
          + ("all present" if not packages.missing else "MISSING " + ", ".join(packages.missing)))
    for note in packages.off_pin:
        print(f"version note: {note} (an install with --no-deps does not enforce it)")
    return 0


def prepare(args: argparse.Namespace, plan: Plan) -> Context:
    """Check what a measuring run needs; raise Refusal with one line when something is missing."""
    if importlib.util.find_spec("torch") is None:
        raise Refusal("gpu_acceptance: torch is not installed in this Python; nothing to measure", 3)
    import torch

    if not args.cpu_rehearsal and not torch.cuda.is_available():
        build = torch.version.cuda or "none: a CPU build"
        raise Refusal(f"gpu_acceptance: CUDA is not available (torch {torch.__version__}, built for CUDA {build}); "
                      f"this script measures a GPU. See the plan with --dry-run.", 2)
    packages = check_packages()
    if packages.missing:
        raise Refusal(f"gpu_acceptance: missing packages {', '.join(packages.missing)}; install them first "
                      f"(offline: bash perf/gpu_run.sh with the .gpu-wheels/ folder)", 3)
    recipe, why = load_recipe()
    if recipe is None:
        raise Refusal(f"gpu_acceptance: mlbench did not load ({why}); install it with pip install --no-deps -e .", 3)
    backbones = tuple(n.strip() for n in args.backbones.split(",") if n.strip()) if args.backbones else recipe.backbones
    device = torch.device("cpu" if args.cpu_rehearsal else "cuda")
    if args.cpu_rehearsal:
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    title = "mlbench GPU acceptance" + (" - CPU REHEARSAL, not GPU figures" if args.cpu_rehearsal else "")
    report = Report(title, out=args.out, limit_s=args.time_limit)
    report.machine = machine_rows(device)
    return Context(plan, device, backbones, report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan, the versions found and the missing packages; measure nothing")
    parser.add_argument("--out", type=Path, help="also write the markdown report to this file (rewritten after "
                                                 "every section)")
    parser.add_argument("--backbones", help="comma-separated backbone names instead of the recipe's five")
    parser.add_argument("--cpu-rehearsal", action="store_true",
                        help="run every section on the CPU at toy sizes to check the script (not GPU figures)")
    parser.add_argument("--time-limit", type=float, default=TOTAL_LIMIT_S,
                        help=f"total seconds, at most {TOTAL_LIMIT_S:.0f}; section budgets shrink in proportion")
    args = parser.parse_args(argv)
    if not 30 <= args.time_limit <= TOTAL_LIMIT_S:
        parser.error(f"--time-limit {args.time_limit:g}: expected 30 to {TOTAL_LIMIT_S:.0f} seconds")
    if args.out is not None and (args.out.is_dir() or not args.out.parent.is_dir()):
        parser.error(f"--out {args.out}: expected a file path inside an existing folder")
    plan = scaled(CPU_REHEARSAL_PLAN if args.cpu_rehearsal else GPU_PLAN, args.time_limit / TOTAL_LIMIT_S)
    if args.dry_run:
        return dry_run(args, plan, args.cpu_rehearsal)
    try:
        ctx = prepare(args, plan)
    except Refusal as refusal:
        print(refusal, file=sys.stderr)
        return refusal.status
    log(f"measuring on {ctx.device}: {', '.join(ctx.backbones)}")
    failed = run_sections(ctx)
    ctx.report.save()
    print(ctx.report.markdown(), end="")
    if args.out is not None:
        log(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
