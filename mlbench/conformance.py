"""``mlbench plugins test NAME``: does an installed plugin honour the contracts mlbench relies on?

Every item the plugin registers is exercised on CPU with tiny inputs, as the runner would use it:

- loss: built with imbalanced label counts (one label absent, as in small demo splits); a finite
  scalar and finite, non-zero gradients on random and on extreme (+-50) logits; mismatched
  logits/targets shapes must raise, not broadcast silently; it must be an ``nn.Module`` (the
  trainer moves it to the device).
- backbone: built with ``pretrained=False``; a forward pass on (2, 1, 96, 96) images gives finite
  (2, labels) logits and the backward pass reaches the parameters. (96 px: the Inception
  backbones need at least 75.)
- ensemble: ``combine`` on random (models, samples, labels) probabilities, one model included,
  gives (samples, labels) finite scores and 0/1 predictions equal to ``scores >= threshold`` (the
  rule predictions.parquet relies on; mlbench submit recomputes decisions that way); 2-D input
  must raise.
- preprocessor: on an image of a demo corpus, the (size, size) output lies in [0, 1], the box
  lies inside the image, ``config()`` is JSON, and the same input gives the same output.
- dataset: a demo corpus written to a temporary folder (``write_demo``) reads into ``Records``
  with the documented columns, unique image ids, existing image files, tuple-of-string findings
  and the source CSV's sha256; a missing CSV raises ``DatasetError``.
- benchmark: unique labels that do not clash with reserved names, a registered dataset, every
  plugin its recipes name registered, and ``targets()`` maps the demo corpus's findings into the
  label set (at least one image gets a label).
- explainer: explains two tiny CNNs on (2, 1, 32, 32) images: heatmaps (2, 2, K, 32, 32) in
  [0, 1] and probabilities (2, 2, K) in [0, 1].
- sampler: built on a (1000, 7) training label matrix with PadChest-like imbalance, one absent
  label and images without labels; epochs 0-2 are non-empty 1-D integer indices into the split,
  the same when asked again and from a second sampler built with the same seed; 1-D labels
  raise. A sampler that lists ``guarantees`` in its registration has them checked
  (``SAMPLER_GUARANTEES``).
- schedule: built with the demo label counts and a 20-epoch budget; ``stages()`` is a non-empty
  list of ``Stage`` with distinct names, whole epochs >= 1 and a known ``trains``, the same when
  asked again; every sampler a stage names is registered.
- adjuster: fitted on random validation probabilities (with a head's norms and biases) and
  applied to others: probabilities of the same shape in [0, 1], the same when applied again and
  from a second adjuster fitted on the same data; ``fitted()`` is JSON; a shape mismatch raises.
- tracker: opened in a scratch folder, sent a recipe, three epochs of one backbone and its final
  metrics, closed; opened again on the same folder and run id (a resume) and sent a fourth epoch;
  it writes nothing beside its folder. Skipped, with how to install them, without its packages.

A factory that needs options beyond the contract's arguments can list example values in its
registration info: ``register(name, factory, conformance_options={"model_name": "resnet10t"})``.
Without them such an item is reported as skipped, with the reason.

``CHECKS`` is the one list of checks: ``check_plugin`` (the command) and ``mlbench.testing`` (pytest
parametrised over a plugin's items) both run an item through ``run_item``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from mlbench.foundations.errors import UserError
from mlbench.contracts.registry import PluginEntry, Registry, get_registry
from mlbench.results.rundir import PREDICTIONS, SPLIT, SPLIT_KEY_COLUMNS

PASS, FAIL, SKIP = "pass", "fail", "skip"
# Positives per label in 1,000 training images: PadChest-like imbalance and one absent label.
DEMO_LABEL_COUNTS = (400, 90, 70, 30, 12, 3, 0)
DEMO_SAMPLES = 1000
BACKBONE_IMAGE_SIZE = 96
PREPROCESSOR_SIZE = 64
# Labels a benchmark may not use: mlbench's own rows and split.parquet's columns.
RESERVED_LABELS = SPLIT_KEY_COLUMNS
CONTRACT_ARGS = {
    "loss": {"label_counts", "n_samples"},
    "backbone": {"num_labels", "in_chans", "pretrained"},
    "preprocessor": {"size"},
    "sampler": {"labels", "seed"},
    "schedule": {"label_counts", "n_samples", "max_epochs"},
    "adjuster": {"val_probs", "val_targets", "label_counts", "n_samples", "head"},
    "tracker": {"folder", "run_id", "benchmark"},
}
SCHEDULE_EPOCHS = 20
# What a sampler may promise in its registration (``guarantees=(...)``); conformance checks it.
SAMPLER_GUARANTEES = {
    "never-lowers-label-counts": "every label appears in an epoch at least as often as in the split",
    "draws-every-label": "every label with a positive image appears in every epoch",
}
SAMPLER_EPOCHS = 3


class ConformanceError(UserError):
    """The plugin cannot be tested at all (unknown name, failed to load)."""


@dataclass
class ItemResult:
    """One registered item's verdict: ``status`` is pass, fail or skip; ``detail`` says why."""

    kind: str
    name: str
    status: str
    detail: str
    checks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "status": self.status, "detail": self.detail,
                "checks": self.checks, "seconds": round(self.seconds, 3)}


@dataclass
class ConformanceReport:
    plugin: str
    package: str | None
    version: str | None
    results: list[ItemResult]

    @property
    def passed(self) -> bool:
        return all(r.status != FAIL for r in self.results)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in (PASS, FAIL, SKIP)}


class Failed(Exception):
    """A contract check failed (the message says which and why)."""


class Skipped(Exception):
    """An item cannot be exercised here (the message says why)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


class DemoData:
    """A demo corpus per dataset plugin, written once per conformance run into a temporary folder."""

    def __init__(self, registry: Registry, root: Path) -> None:
        self.registry = registry
        self.root = root
        self._written: dict[str, Any] = {}

    def source(self, dataset_name: str):
        """(dataset object, DataSource) of ``dataset_name``'s demo corpus; Skipped if it has none."""
        if dataset_name not in self._written:
            dataset = self.registry.create("dataset", dataset_name)
            if not callable(getattr(dataset, "write_demo", None)):
                raise Skipped(f"dataset '{dataset_name}' has no demo corpus (write_demo), so nothing to read")
            out = self.root / f"demo-{dataset_name}"
            try:
                source = dataset.write_demo(out, seed=0, n_patients=8, image_size=128)
            except TypeError:  # a write_demo without those options: its defaults
                source = dataset.write_demo(out, seed=0)
            self._written[dataset_name] = (dataset, source)
        return self._written[dataset_name]

    def any_image(self) -> np.ndarray:
        """A readable image from the first dataset plugin with a demo corpus."""
        from mlbench.preprocessing.images import ImageReadError, read_grayscale

        for name in self.registry.names("dataset"):
            try:
                dataset, source = self.source(name)
            except Skipped:
                continue
            for path in dataset.read(source).frame["image_path"]:
                with contextlib.suppress(ImageReadError):
                    return read_grayscale(path)
        raise Skipped("no installed dataset plugin writes a demo corpus to take an image from")


def _factory_options(entry: PluginEntry, kind: str) -> dict[str, Any]:
    """Example options from the registration info; Skipped when the factory needs options it lacks."""
    options = dict(entry.info.get("conformance_options") or {})
    try:
        params = inspect.signature(entry.factory).parameters.values()
    except (TypeError, ValueError):
        return options
    needed = [p.name for p in params if p.default is inspect.Parameter.empty
              and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
              and p.name not in CONTRACT_ARGS.get(kind, set()) and p.name not in options]
    if needed:
        raise Skipped(f"the factory needs option(s) {', '.join(needed)} beyond the contract; register it with "
                      f"conformance_options={{...}} to have it tested")
    return options


# -- per kind ----------------------------------------------------------------------------------------
def check_loss(entry: PluginEntry, ctx: DemoData) -> list[str]:
    import torch

    counts = list(DEMO_LABEL_COUNTS)
    n_labels = len(counts)
    loss_fn = entry.factory(label_counts=counts, n_samples=DEMO_SAMPLES, **_factory_options(entry, "loss"))
    _check(isinstance(loss_fn, torch.nn.Module), f"the factory returned {type(loss_fn).__name__}, expected a "
           "torch.nn.Module (the trainer calls .to(device) on it)")
    done = ["built with imbalanced label counts (one label absent)"]
    generator = torch.Generator().manual_seed(0)
    prevalence = torch.tensor(counts, dtype=torch.float32) / DEMO_SAMPLES
    targets = (torch.rand(16, n_labels, generator=generator) < prevalence).float()
    for what, scale in (("random logits", 3.0), ("extreme logits (+-50)", 50.0)):
        logits = (torch.randn(16, n_labels, generator=generator) * scale).clamp(-scale, scale).requires_grad_(True)
        value = loss_fn(logits, targets)
        _check(isinstance(value, torch.Tensor), f"{what}: returned {type(value).__name__}, expected a tensor")
        _check(value.dim() == 0, f"{what}: returned shape {tuple(value.shape)}, expected a scalar")
        _check(bool(torch.isfinite(value)), f"{what}: the loss is {value.item()}")
        value.backward()
        _check(logits.grad is not None and bool(torch.isfinite(logits.grad).all()),
               f"{what}: gradients are missing or not finite")
        if what == "random logits":
            _check(bool(logits.grad.abs().sum() > 0), f"{what}: every gradient is zero")
        done.append(f"{what}: finite scalar and finite gradients")
    try:
        loss_fn(torch.zeros(16, n_labels), torch.zeros(16, n_labels - 1))
    except Exception:  # noqa: BLE001 - any clear refusal will do
        done.append("mismatched logits/targets shapes raise")
    else:
        raise Failed(f"logits (16, {n_labels}) with targets (16, {n_labels - 1}) gave a value instead of an error")
    return done


def check_backbone(entry: PluginEntry, ctx: DemoData) -> list[str]:
    import torch

    n_labels = 5
    torch.manual_seed(0)
    model = entry.factory(num_labels=n_labels, in_chans=1, pretrained=False, **_factory_options(entry, "backbone"))
    _check(isinstance(model, torch.nn.Module), f"the factory returned {type(model).__name__}, expected an nn.Module")
    model.train()
    images = torch.rand(2, 1, BACKBONE_IMAGE_SIZE, BACKBONE_IMAGE_SIZE)
    logits = model(images)
    _check(isinstance(logits, torch.Tensor) and tuple(logits.shape) == (2, n_labels),
           f"a (2, 1, {BACKBONE_IMAGE_SIZE}, {BACKBONE_IMAGE_SIZE}) batch gave "
           f"{tuple(getattr(logits, 'shape', ())) or type(logits).__name__}, expected (2, {n_labels}) logits")
    _check(bool(torch.isfinite(logits).all()), "the logits are not finite")
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    _check(bool(grads), "the backward pass reached no trainable parameter")
    _check(all(bool(torch.isfinite(g).all()) for g in grads), "some gradients are not finite")
    model.eval()
    with torch.no_grad():
        _check(tuple(model(images).shape) == (2, n_labels), "eval mode gives another output shape")
    return [f"forward at {BACKBONE_IMAGE_SIZE} px gives finite (2, {n_labels}) logits",
            "backward reaches the trainable parameters", "eval mode works"]


def check_ensemble(entry: PluginEntry, ctx: DemoData) -> list[str]:
    rng = np.random.default_rng(0)
    done = []
    for threshold in (0.5, 0.3):
        ensemble = entry.factory(threshold=threshold, **_factory_options(entry, "ensemble"))
        _check(callable(getattr(ensemble, "combine", None)), "the factory's object has no combine(probs) method")
        for models in (3, 1):
            probs = rng.random((models, 40, 5))
            probs[:, :3] = np.round(probs[:, :3])  # exact 0s and 1s, as confident models give
            scores, predictions = ensemble.combine(probs)
            scores, predictions = np.asarray(scores), np.asarray(predictions)
            where = f"{models} model(s), threshold {threshold}"
            _check(scores.shape == (40, 5) and predictions.shape == (40, 5),
                   f"{where}: scores {scores.shape} and predictions {predictions.shape}, expected (40, 5)")
            _check(bool(np.isfinite(scores).all()), f"{where}: scores are not finite")
            _check(bool(np.isin(predictions, (0, 1)).all()), f"{where}: predictions are not all 0 or 1")
            _check(bool(((scores >= threshold) == predictions.astype(bool)).all()),
                   f"{where}: predictions differ from scores >= threshold; mlbench stores only the scores "
                   f"({PREDICTIONS}) and recomputes decisions as score >= threshold")
        done.append(f"threshold {threshold}: (40, 5) finite scores and 0/1 predictions = scores >= threshold, "
                    "for 3 models and for 1")
    try:
        entry.factory(threshold=0.5).combine(rng.random((40, 5)))
    except Exception:  # noqa: BLE001
        done.append("2-D probabilities raise")
    else:
        raise Failed("probabilities of shape (40, 5) (no models axis) gave a result instead of an error")
    return done


def check_preprocessor(entry: PluginEntry, ctx: DemoData) -> list[str]:
    from mlbench.preprocessing import Preprocessed

    image = ctx.any_image()
    size = PREPROCESSOR_SIZE
    pre = entry.factory(size=size, **_factory_options(entry, "preprocessor"))
    config = pre.config()
    _check(isinstance(config, dict), f"config() returned {type(config).__name__}, expected a dict")
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise Failed(f"config() is not JSON-serialisable ({exc}); it keys the preprocessing cache") from None
    out = pre(image)
    _check(isinstance(out, Preprocessed), f"returned {type(out).__name__}, expected mlbench.preprocessing.Preprocessed")
    arr = np.asarray(out.image)
    _check(arr.shape == (size, size), f"the image has shape {arr.shape}, expected ({size}, {size})")
    _check(np.issubdtype(arr.dtype, np.floating), f"the image has dtype {arr.dtype}, expected float")
    _check(bool(np.isfinite(arr).all()) and arr.min() >= 0 and arr.max() <= 1,
           f"values span [{arr.min():.3g}, {arr.max():.3g}], expected [0, 1]")
    h, w = image.shape
    x0, y0, x1, y1 = (int(v) for v in out.box)
    _check(0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h,
           f"box {tuple(out.box)} does not lie inside the {w} x {h} input (x0 < x1 <= width, y0 < y1 <= height)")
    _check(isinstance(out.fallback, (bool, np.bool_)), f"fallback is {type(out.fallback).__name__}, expected bool")
    _check(np.array_equal(np.asarray(pre(image).image), arr), "the same image gave a different output the second time")
    return [f"({size}, {size}) float image in [0, 1]", f"box {x0, y0, x1, y1} inside the {w} x {h} input",
            "config() is JSON", "deterministic" + (f"; fell back: {out.reason}" if out.fallback else "")]


def check_dataset(entry: PluginEntry, ctx: DemoData) -> list[str]:
    from mlbench.data import RECORD_COLUMNS, DataSource, DatasetError, Records, Skip
    from mlbench.foundations.io import sha256_file

    dataset, source = ctx.source(entry.name)
    _check(callable(getattr(dataset, "read", None)), "the factory's object has no read(source) method")
    records = dataset.read(source)
    _check(isinstance(records, Records), f"read() returned {type(records).__name__}, expected mlbench.data.Records")
    frame = records.frame
    _check(len(frame) > 0, "the demo corpus read into no records")
    missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
    _check(not missing, f"records lack columns {missing}")
    dupes = frame["image_id"][frame["image_id"].duplicated()]
    _check(dupes.empty, f"image ids repeat: {list(dupes[:3])}")
    absent = [p for p in frame["image_path"] if not Path(p).is_file()]
    _check(not absent, f"{len(absent)} image paths do not exist, e.g. {absent[:2]}")
    bad = [f for f in frame["findings"] if not (isinstance(f, tuple) and all(isinstance(x, str) for x in f))]
    _check(not bad, f"findings must be tuples of strings; found {bad[:2]}")
    _check(isinstance(records.kind, str) and records.kind, "records.kind must name the dataset kind")
    _check(records.source_sha256 == sha256_file(source.csv),
           "records.source_sha256 is not the sha256 of the source CSV (mlbench submit compares them)")
    _check(all(isinstance(s, Skip) for s in records.skipped), "records.skipped holds something other than Skip")
    try:
        dataset.read(DataSource(ctx.root / "no-such-file.csv", ctx.root))
    except DatasetError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise Failed(f"a missing CSV raised {type(exc).__name__} ({exc}), expected mlbench.data.DatasetError") from None
    else:
        raise Failed("a missing CSV gave records instead of a DatasetError")
    return [f"demo corpus: {len(frame)} records of kind '{records.kind}', {len(records.skipped)} skips listed",
            "columns, unique ids, existing files, findings, CSV sha256", "a missing CSV raises DatasetError"]


def check_benchmark(entry: PluginEntry, ctx: DemoData) -> list[str]:
    from mlbench.contracts.benchmark import Benchmark

    bench = entry.factory()
    _check(isinstance(bench, Benchmark), f"the factory returned {type(bench).__name__}, expected "
           "mlbench.contracts.benchmark.Benchmark")
    if bench.labels_from_data:  # its labels are the ones its dataset's demo corpus defines
        from mlbench.contracts.benchmark import with_data_labels

        dataset, source = ctx.source(bench.dataset)
        bench = with_data_labels(bench, dataset.read(source).labels, "its dataset's demo corpus")
    _check(len(bench.labels) > 0, "the benchmark has no labels")
    reserved = [lab for lab in bench.labels if lab in RESERVED_LABELS or lab.startswith("__")]
    _check(not reserved, f"labels {reserved} clash with reserved names ({SPLIT} columns, __global__ rows)")
    _check(isinstance(bench.version, str) and bench.version, "the benchmark has no version string")
    registry = ctx.registry
    missing = [] if bench.dataset in registry.names("dataset") else [f"dataset '{bench.dataset}'"]
    for which, recipe in (("recipe", bench.recipe), ("demo_recipe", bench.demo_recipe)):
        wanted = [("loss", recipe.loss), ("preprocessor", recipe.active_preprocessor),
                  ("explainer", recipe.explainer)]
        wanted += [("backbone", b.split(":", 1)[0]) for b in recipe.backbones]
        wanted += [("ensemble", e) for e in recipe.ensembles]
        missing += [f"{which} {kind} '{name}'" for kind, name in wanted if name not in registry.names(kind)]
    _check(not missing, f"names no registered plugin: {', '.join(dict.fromkeys(missing))}")
    done = [f"{len(bench.labels)} unique labels", "dataset and every recipe plugin are registered"]
    try:
        dataset, source = ctx.source(bench.dataset)
    except Skipped as why:
        return done + [f"targets() not exercised: {why}"]
    records = dataset.read(source)
    labels = set(bench.labels)
    mapped = [set(bench.targets(f)) for f in records.frame["findings"]]
    outside = sorted(set().union(*mapped) - labels) if mapped else []
    _check(not outside, f"targets() returned labels outside the benchmark: {outside[:5]}")
    _check(any(mapped), "targets() gave no demo image a label")
    return done + [f"targets() maps {sum(map(bool, mapped))} of {len(mapped)} demo images into the label set"]


def check_explainer(entry: PluginEntry, ctx: DemoData) -> list[str]:
    import torch
    from torch import nn

    torch.manual_seed(0)

    def tiny() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2, padding=1),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()

    explainer = entry.factory(**_factory_options(entry, "explainer"))
    _check(callable(getattr(explainer, "explain", None)), "the factory's object has no explain() method")
    images = torch.rand(2, 1, 32, 32)
    out = explainer.explain([tiny(), tiny()], images, [0, 2])
    maps, probs = out.heatmaps, out.probabilities
    _check(tuple(maps.shape) == (2, 2, 2, 32, 32),
           f"heatmaps have shape {tuple(maps.shape)}, expected (2, 2, 2, 32, 32)")
    _check(bool(torch.isfinite(maps).all()) and float(maps.min()) >= 0 and float(maps.max()) <= 1,
           "heatmaps are not finite values in [0, 1]")
    _check(tuple(probs.shape) == (2, 2, 2), f"probabilities have shape {tuple(probs.shape)}, expected (2, 2, 2)")
    _check(float(probs.min()) >= 0 and float(probs.max()) <= 1, "probabilities lie outside [0, 1]")
    return ["two tiny CNNs, 2 images, 2 labels: (2, 2, 2, 32, 32) maps in [0, 1], (2, 2, 2) probabilities"]


def demo_label_matrix(seed: int = 0) -> np.ndarray:
    """(DEMO_SAMPLES, labels) 0/1 matrix with exactly DEMO_LABEL_COUNTS positives per label."""
    rng = np.random.default_rng(seed)
    Y = np.zeros((DEMO_SAMPLES, len(DEMO_LABEL_COUNTS)), dtype=np.uint8)
    for j, count in enumerate(DEMO_LABEL_COUNTS):
        Y[rng.choice(DEMO_SAMPLES, size=count, replace=False), j] = 1
    return Y


def check_sampler(entry: PluginEntry, ctx: DemoData) -> list[str]:
    Y = demo_label_matrix()
    options = _factory_options(entry, "sampler")
    guarantees = tuple(entry.info.get("guarantees") or ())
    unknown = [g for g in guarantees if g not in SAMPLER_GUARANTEES]
    _check(not unknown, f"registration lists unknown guarantees {unknown}; known: {sorted(SAMPLER_GUARANTEES)}")
    sampler = entry.factory(labels=Y.copy(), seed=3, **options)
    _check(callable(getattr(sampler, "epoch", None)), "the factory's object has no epoch(i) method")
    twin = entry.factory(labels=Y.copy(), seed=3, **options)
    counts = Y.sum(axis=0)
    lengths = []
    for i in range(SAMPLER_EPOCHS):
        indices = np.asarray(sampler.epoch(i))
        where = f"epoch {i}"
        _check(indices.ndim == 1 and np.issubdtype(indices.dtype, np.integer),
               f"{where}: returned {indices.dtype} of shape {indices.shape}, expected 1-D integer indices")
        _check(indices.size > 0, f"{where}: no index (every epoch must train on something)")
        _check(int(indices.min()) >= 0 and int(indices.max()) < len(Y),
               f"{where}: indices span [{indices.min()}, {indices.max()}], expected [0, {len(Y) - 1}]")
        _check(np.array_equal(np.asarray(sampler.epoch(i)), indices), f"{where}: asked twice, gave different indices")
        _check(np.array_equal(np.asarray(twin.epoch(i)), indices),
               f"{where}: a second sampler with the same seed gave different indices")
        seen = Y[indices].sum(axis=0)
        if "never-lowers-label-counts" in guarantees:
            lowered = [j for j in range(len(counts)) if seen[j] < counts[j]]
            _check(not lowered, f"{where}: labels {lowered} appear {seen[lowered].tolist()} times, fewer than in "
                   f"the split ({counts[lowered].tolist()}), though the sampler guarantees never-lowers-label-counts")
        if "draws-every-label" in guarantees:
            missed = [j for j in range(len(counts)) if counts[j] and not seen[j]]
            _check(not missed, f"{where}: labels {missed} are never drawn, though the sampler guarantees "
                   "draws-every-label")
        lengths.append(indices.size)
    try:
        entry.factory(labels=Y[:, 0].copy(), seed=3, **options).epoch(0)
    except Exception:  # noqa: BLE001 - any clear refusal will do
        pass
    else:
        raise Failed("a 1-D label vector (no labels axis) gave indices instead of an error")
    return [f"epochs 0-{SAMPLER_EPOCHS - 1}: non-empty indices in range (lengths {lengths})",
            "deterministic for a seed (asked twice, and from a second sampler)",
            *(f"guarantee {g}: {SAMPLER_GUARANTEES[g]}" for g in guarantees), "1-D labels raise"]


def check_schedule(entry: PluginEntry, ctx: DemoData) -> list[str]:
    from mlbench.models.schedules import TRAINS, Stage

    options = _factory_options(entry, "schedule")
    made = entry.factory(label_counts=list(DEMO_LABEL_COUNTS), n_samples=DEMO_SAMPLES, max_epochs=SCHEDULE_EPOCHS,
                         **options)
    _check(callable(getattr(made, "stages", None)), "the factory's object has no stages() method")
    stages = list(made.stages())
    _check(stages and all(isinstance(s, Stage) for s in stages),
           f"stages() gave {[type(s).__name__ for s in stages]}, expected one or more mlbench.models.schedules.Stage")
    names = [s.name for s in stages]
    _check(len(set(names)) == len(names) and all(isinstance(n, str) and n for n in names),
           f"stage names {names} are not distinct non-empty strings")
    for stage in stages:
        _check(isinstance(stage.epochs, int) and not isinstance(stage.epochs, bool) and stage.epochs >= 1,
               f"stage '{stage.name}': epochs {stage.epochs!r}, expected an integer >= 1")
        _check(stage.trains in TRAINS, f"stage '{stage.name}': trains '{stage.trains}', expected one of {TRAINS}")
        if stage.sampler is not None:
            _check(stage.sampler in ctx.registry.names("sampler"),
                   f"stage '{stage.name}' names sampler '{stage.sampler}', which is not registered")
        json.dumps(stage.describe())
    _check([s.describe() for s in made.stages()] == [s.describe() for s in stages], "stages() changed when asked again")
    return [f"{len(stages)} stage(s) {names} over a {SCHEDULE_EPOCHS}-epoch budget", "stages are well formed",
            "the same when asked again"]


def check_adjuster(entry: PluginEntry, ctx: DemoData) -> list[str]:
    from mlbench.models.adjusters import HeadStats

    rng = np.random.default_rng(5)
    n_labels = len(DEMO_LABEL_COUNTS)
    val = rng.uniform(0.01, 0.99, size=(200, n_labels))
    targets = (rng.uniform(size=val.shape) < val).astype(np.uint8)
    test = rng.uniform(0.0, 1.0, size=(50, n_labels))
    head = HeadStats(weight_norm=rng.uniform(0.5, 2.0, n_labels), bias=rng.normal(0, 0.5, n_labels))
    options = _factory_options(entry, "adjuster")

    def fit():
        return entry.factory(val_probs=val.copy(), val_targets=targets.copy(), label_counts=list(DEMO_LABEL_COUNTS),
                             n_samples=DEMO_SAMPLES, head=head, **options)

    adjuster = fit()
    _check(callable(getattr(adjuster, "apply", None)), "the factory's object has no apply(probs) method")
    out = np.asarray(adjuster.apply(test.copy()))
    _check(out.shape == test.shape, f"apply gave shape {out.shape}, expected {test.shape}")
    _check(np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1, "apply gave values outside [0, 1]")
    _check(np.array_equal(np.asarray(adjuster.apply(test.copy())), out), "apply gave different values when asked again")
    _check(np.array_equal(np.asarray(fit().apply(test.copy())), out),
           "a second adjuster fitted on the same data gave different values")
    try:
        json.dumps(adjuster.fitted())
    except (TypeError, ValueError, AttributeError) as exc:
        raise Failed(f"fitted() is not JSON ({type(exc).__name__})") from None
    try:
        entry.factory(val_probs=val, val_targets=targets[:, :-1], label_counts=list(DEMO_LABEL_COUNTS),
                      n_samples=DEMO_SAMPLES, head=head, **options)
    except Exception:  # noqa: BLE001 - any clear refusal will do
        pass
    else:
        raise Failed("validation targets of another shape than the probabilities gave no error")
    return ["apply: probabilities of the same shape in [0, 1]", "deterministic (applied again, and refitted)",
            "fitted() is JSON", "mismatched validation shapes raise"]


def check_tracker(entry: PluginEntry, ctx: DemoData) -> list[str]:
    from mlbench.training.trackers import install_hint, missing_modules

    missing = missing_modules(entry)
    if missing:
        raise Skipped(f"needs {', '.join(missing)}, not installed here ({install_hint(entry)})")
    options = _factory_options(entry, "tracker")
    scratch = ctx.root / f"tracker-{entry.name}"
    folder = scratch / "out"
    folder.mkdir(parents=True)

    def opened():
        tracker = entry.factory(folder=folder, run_id="conformance-run", benchmark="conformance", **options)
        for method in ("log_params", "log_epoch", "log_metrics", "close"):
            _check(callable(getattr(tracker, method, None)), f"the factory's object has no {method}() method")
        return tracker

    def epoch(i: int) -> dict[str, Any]:
        return {"epoch": i, "stage": "main", "train_loss": 1.0 / (i + 1), "val_loss": 1.2 / (i + 1), "lr": 1e-4,
                "seconds": 0.5}

    tracker = opened()
    tracker.log_params({"lr": 1e-4, "backbones": '["tiny"]', "pretrained": False, "max_epochs": 4})
    for i in range(3):
        tracker.log_epoch("tiny", epoch(i))
    tracker.log_metrics("tiny", {"auc": 0.75, "f1": 0.5})
    tracker.close()
    resumed = opened()
    resumed.log_epoch("tiny", epoch(3))
    resumed.close()
    beside = sorted(p.name for p in scratch.iterdir() if p != folder)
    _check(not beside, f"wrote {beside} beside its folder; expected its files inside the folder it is given")
    return ["params, three epochs, final metrics and close", "opened again on the same run (a resume)",
            "nothing written beside its folder"]


CHECKS: dict[str, Callable[[PluginEntry, DemoData], list[str]]] = {
    "loss": check_loss, "backbone": check_backbone, "ensemble": check_ensemble, "preprocessor": check_preprocessor,
    "dataset": check_dataset, "benchmark": check_benchmark, "explainer": check_explainer,
    "sampler": check_sampler, "schedule": check_schedule, "adjuster": check_adjuster, "tracker": check_tracker,
}


def check_name(kind: str) -> str:
    """The name of the check an item of ``kind`` gets (``check_loss``), as test ids show it."""
    check = CHECKS.get(kind)
    return check.__name__ if check is not None else "no_checks"


def run_item(entry: PluginEntry, ctx: DemoData) -> ItemResult:
    """One item through its kind's check: pass, fail (a broken contract or a crash) or skip, with why."""
    import torch

    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    try:
        if entry.kind not in CHECKS:
            raise Skipped(f"this mlbench has no conformance checks for kind '{entry.kind}'")
        checks = CHECKS[entry.kind](entry, ctx)
        result = ItemResult(entry.kind, entry.name, PASS, "; ".join(checks), checks)
    except Skipped as why:
        result = ItemResult(entry.kind, entry.name, SKIP, str(why))
    except Failed as why:
        result = ItemResult(entry.kind, entry.name, FAIL, str(why))
    except Exception as exc:  # noqa: BLE001 - a crash is a failure, reported with where it happened
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result = ItemResult(entry.kind, entry.name, FAIL,
                            f"raised {type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})")
    finally:
        torch.set_num_threads(threads)
    result.seconds = time.perf_counter() - started
    return result


@contextlib.contextmanager
def demo_data(registry: Registry) -> Iterator[DemoData]:
    """A ``DemoData`` whose demo corpora live in a temporary folder removed on exit."""
    with tempfile.TemporaryDirectory(prefix="mlbench-conformance-") as tmp:
        yield DemoData(registry, Path(tmp))


def run_alone(entry: PluginEntry, registry: Registry | None = None) -> ItemResult:
    """``run_item`` in a scratch folder of its own (one pytest test per item, ``mlbench.testing``)."""
    with demo_data(registry or get_registry()) as ctx:
        return run_item(entry, ctx)


def load_failures(plugin: str, registry: Registry) -> list[ItemResult]:
    """A failed result per load error of ``plugin`` (a hook that raised, a name clash)."""
    return [ItemResult("plugin", plugin, FAIL, e.message) for e in registry.errors if e.plugin == plugin]


def check_plugin(plugin: str, registry: Registry | None = None, *, kinds: tuple[str, ...] | None = None,
                 names: tuple[str, ...] | None = None) -> ConformanceReport:
    """Exercise every item ``plugin`` (an entry-point name) registers; see the module docstring.

    ``kinds`` / ``names`` restrict the items tested. Raises ``ConformanceError`` if the plugin is
    unknown, failed to load, or registers nothing.
    """
    registry = registry or get_registry()
    errors = [e for e in registry.errors if e.plugin == plugin]
    entries = [e for e in registry.entries() if e.plugin == plugin]
    if errors and not entries:
        raise ConformanceError(f"plugin '{plugin}' failed to load: " + "; ".join(e.message for e in errors))
    if not entries:
        known = sorted({e.plugin for e in registry.entries()})
        raise ConformanceError(f"no plugin named '{plugin}' registered anything; installed plugins (entry-point "
                               f"names): {', '.join(known) or 'none'}")
    package, version = entries[0].package, entries[0].version
    wanted = [e for e in entries if (kinds is None or e.kind in kinds) and (names is None or e.name in names)]
    results = load_failures(plugin, registry)
    with demo_data(registry) as ctx:
        results += [run_item(entry, ctx) for entry in wanted]
    return ConformanceReport(plugin, package, version, results)

