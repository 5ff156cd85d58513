"""``mlbench run``: dataset -> split -> preprocess/cache -> train -> predictions -> ensembles -> metrics.

Each stage reads what the previous one wrote. Outputs land in RUN_DIR (CONTRACTS.md):
manifest.json, split.parquet, backbones/<name>/ (checkpoints, history, predictions),
predictions.parquet, leaderboard.parquet, skipped.parquet. Running the same command again
resumes: finished stages are reused, a backbone in training continues from its last epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import platform
import subprocess
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import mlbench
from mlbench import checkpoint, leaderboard, manifest, predictions
from mlbench.benchmark import Benchmark, Recipe
from mlbench.data import DataSource, Records, Skip
from mlbench.data.labels import label_matrix
from mlbench.data.splits import assert_patient_disjoint, patient_split, split_hash, split_table
from mlbench.distributed import from_environment, shutdown
from mlbench.io import write_json, write_parquet
from mlbench.metrics import MetricWarning
from mlbench.stats import metric_intervals
from mlbench.preprocessing.cache import Cache, build_cache
from mlbench.registry import PluginError, Registry, get_registry
from mlbench.training import backbone_plugin, build_backbone, pick_device, predict, train

SPLITS = ("train", "val", "test")
BOOTSTRAP_SEED = 0
EVAL_SPLITS = ("val", "test")
# Listed one by one in manifest.json up to this many; all of them always go to skipped.parquet.
MANIFEST_SKIP_ITEMS = 1000


class RunError(Exception):
    """The run cannot proceed (the message says what to fix)."""


@dataclass
class RunOptions:
    """Everything ``mlbench run`` can be told. None means: the benchmark's recipe decides."""

    benchmark: str
    out: Path
    csv: Path | None = None
    images: Path | None = None
    demo: bool = False
    demo_dir: Path | None = None
    cache: Path | None = None
    backbones: Sequence[str] | None = None
    loss: str | None = None
    ensembles: Sequence[str] | None = None
    crop: bool | None = None
    augment: bool | None = None
    max_epochs: int | None = None
    image_size: int | None = None
    seed: int | None = None
    demo_options: dict[str, Any] | None = None  # passed to the dataset's write_demo (e.g. n_patients)
    loss_options: dict[str, Any] | None = None
    backbone_options: dict[str, dict[str, Any]] | None = None  # backbone name -> factory options
    device: str = "auto"
    workers: int | None = None
    only_backbones: Sequence[str] | None = None
    ensemble_only: bool = False
    n_boot: int = 1000  # patient-bootstrap replicates for the 95% CIs (0: no intervals)
    compile: bool = False  # torch.compile the training step (a speed option; results are the same model)
    progress: bool = True


@dataclass
class RunResult:
    run_dir: Path
    leaderboard: pd.DataFrame | None
    manifest: dict[str, Any]
    is_main: bool = True  # False on the other ranks of a torchrun job (they write nothing)


def make_recipe(bench: Benchmark, opts: RunOptions) -> Recipe:
    recipe = bench.demo_recipe if opts.demo else bench.recipe
    changes: dict[str, Any] = {}
    for field_name, value in (("backbones", opts.backbones), ("loss", opts.loss), ("ensembles", opts.ensembles),
                              ("crop", opts.crop), ("augment", opts.augment), ("max_epochs", opts.max_epochs),
                              ("image_size", opts.image_size), ("seed", opts.seed)):
        if value is not None:
            changes[field_name] = tuple(value) if isinstance(value, (list, tuple)) else value
    if opts.loss_options:
        changes["loss_options"] = {**dict(recipe.loss_options), **opts.loss_options}
    if opts.backbone_options:
        merged = {k: dict(v) for k, v in recipe.backbone_options.items()}
        for name, extra in opts.backbone_options.items():
            merged[name] = {**merged.get(name, {}), **extra}
        changes["backbone_options"] = merged
    return recipe.replace(**changes)


def _git_commit() -> str | None:
    root = Path(mlbench.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def _versions(registry: Registry, used: dict[str, Sequence[str]]) -> dict[str, Any]:
    plugins: dict[str, str] = {}
    for kind, names in used.items():
        for name in names:
            entry = registry.get(kind, name)
            plugins[f"{kind}:{name}"] = f"{entry.package or entry.plugin}=={entry.version or 'unknown'}"
    return {"mlbench": mlbench.__version__, "torch": torch.__version__, "timm": metadata.version("timm"),
            "python": platform.python_version(), "plugins": plugins}


def _dir_name(name: str) -> str:
    return name.replace(":", "--").replace("/", "_")


def _progress_bars(enabled: bool):
    """A rich Progress for bars (a no-op context when disabled)."""
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=True)


class Run:
    """One run directory being filled, stage by stage."""

    def __init__(self, opts: RunOptions, registry: Registry | None = None) -> None:
        self.opts = opts
        self.registry = registry or get_registry()
        self.bench: Benchmark = self.registry.create("benchmark", opts.benchmark)
        self.recipe = make_recipe(self.bench, opts)
        self.dir = Path(opts.out)
        self.group, device_name = from_environment(opts.device)
        self.device = pick_device(device_name)
        self._check_plugins()

    # -- setup -----------------------------------------------------------------------------
    def _check_plugins(self) -> None:
        """Fail before any work if a named plugin does not exist."""
        self.registry.get("dataset", self.bench.dataset)
        self.registry.get("loss", self.recipe.loss)
        self.registry.get("preprocessor", self.recipe.active_preprocessor)
        for b in self.recipe.backbones:
            self.registry.get("backbone", backbone_plugin(b))
        for e in self.recipe.ensembles:
            self.registry.get("ensemble", e)
        unknown = [b for b in (self.opts.only_backbones or ()) if b not in self.recipe.backbones]
        if unknown:
            raise RunError(f"--only-backbone {unknown}: not in this run's backbones {list(self.recipe.backbones)}")

    def _source(self) -> DataSource:
        dataset = self.registry.create("dataset", self.bench.dataset)
        if self.opts.demo:
            if not hasattr(dataset, "write_demo"):
                raise RunError(f"dataset '{self.bench.dataset}' has no demo corpus (no write_demo method)")
            demo_dir = Path(self.opts.demo_dir or self.dir / "demo-data")
            done = demo_dir / "mlbench-source.json"  # ours, written once the corpus is complete
            if done.exists():
                saved = json.loads(done.read_text())
                return DataSource(csv=Path(saved["csv"]), images=Path(saved["images"]))
            options = {**dict(self.bench.demo_options), **(self.opts.demo_options or {})}
            source = dataset.write_demo(demo_dir, seed=self.recipe.seed, **options)
            write_json(done, {"csv": str(source.csv), "images": str(source.images)})
            return source
        if self.opts.csv is None or self.opts.images is None:
            raise RunError("give --csv and --images (the dataset's label file and image folder), or --demo")
        if not Path(self.opts.csv).is_file():
            raise RunError(f"--csv {self.opts.csv}: no such file")
        if not Path(self.opts.images).is_dir():
            raise RunError(f"--images {self.opts.images}: no such folder")
        return DataSource(csv=Path(self.opts.csv), images=Path(self.opts.images))

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        seconds = round(time.perf_counter() - started, 3)
        if self.group.is_main:
            manifest.update(self.dir, lambda m: m["stages"].__setitem__(name, {"seconds": seconds,
                                                                               "status": "done"}))

    def _record_skips(self, stage: str, skips: list[Skip]) -> None:
        if not skips or not self.group.is_main:
            return
        table = pa.table({"stage": [stage] * len(skips), "item": [s.item for s in skips],
                          "reason": [s.reason for s in skips], "detail": [s.detail for s in skips]})
        path = self.dir / "skipped.parquet"
        if path.exists():
            old = pq.read_table(path)
            old = old.filter(pa.compute.not_equal(old["stage"], stage))  # a re-run replaces its stage's list
            table = pa.concat_tables([old, table])
        write_parquet(path, table)

        def change(m: dict[str, Any]) -> None:
            counts = {f"{stage}:{k}": v for k, v in Counter(s.reason for s in skips).items()}
            m["skipped"]["counts"] = {**{k: v for k, v in m["skipped"]["counts"].items()
                                         if not k.startswith(f"{stage}:")}, **counts}
            items = [i for i in m["skipped"]["items"] if i.get("stage") != stage]
            items += [{"stage": stage, **s.as_dict()} for s in skips]
            m["skipped"]["items"] = items[:MANIFEST_SKIP_ITEMS]
            m["skipped"]["total"] = sum(m["skipped"]["counts"].values())
            m["skipped"]["file"] = "skipped.parquet"

        manifest.update(self.dir, change)

    # -- stages ----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Data, split and cache: everything training needs. Under torchrun rank 0 writes, others wait."""
        if self.group.is_main:
            source = self._source()
        self.group.barrier()
        if not self.group.is_main:
            source = self._source()  # finds the corpus rank 0 wrote
        started = time.perf_counter()
        dataset = self.registry.create("dataset", self.bench.dataset)
        records: Records = dataset.read(source)
        frame, Y, no_label = label_matrix(records, self.bench)
        data_seconds = round(time.perf_counter() - started, 3)
        if len(frame) == 0:
            raise RunError(f"{source.csv}: no image carries a label of benchmark '{self.bench.name}'")
        identity = {"benchmark": self.bench.name, "benchmark_version": self.bench.version,
                    "variant": self.recipe.variant, "dataset_kind": records.kind,
                    "csv_sha256": records.source_sha256, "recipe": self.recipe.to_dict()}
        used = {"benchmark": [self.bench.name], "dataset": [self.bench.dataset], "loss": [self.recipe.loss],
                "preprocessor": [self.recipe.active_preprocessor],
                "backbone": sorted({backbone_plugin(b) for b in self.recipe.backbones}),
                "ensemble": list(self.recipe.ensembles)}
        self.versions = _versions(self.registry, used)
        fields = {**{k: v for k, v in identity.items() if k != "recipe"}, "recipe": self.recipe.to_dict(),
                  "run_id": f"{self.bench.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
                  "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "seed": self.recipe.seed, "backbones": list(self.recipe.backbones),
                  "loss": self.recipe.loss, "ensembles": list(self.recipe.ensembles),
                  "versions": self.versions, "git_commit": _git_commit(), "device": device_name(self.device),
                  "source": {"csv": str(source.csv), "images": str(source.images)}}
        if self.group.is_main:
            manifest.start(self.dir, identity, fields)
            # The manifest exists now: stage times and skips can be recorded.
            manifest.update(self.dir, lambda m: m["stages"].__setitem__("data", {"seconds": data_seconds,
                                                                                 "status": "done"}))
            self._record_skips("data", list(records.skipped) + no_label)
        self.group.barrier()

        with self.stage("split"):
            splits = patient_split(frame["patient_id"].astype(str).tolist(), Y, self.bench.split_fractions,
                                   self.bench.split_seed)
            assert_patient_disjoint(frame["patient_id"].astype(str).tolist(), splits)
            digest = split_hash(frame["image_id"].astype(str).tolist(), splits)
            if self.group.is_main:
                write_parquet(self.dir / "split.parquet", split_table(frame, Y, splits, self.bench.labels))
                manifest.update(self.dir, lambda m: m.update(split_hash=digest, n_images={
                    s: int((splits == s).sum()) for s in SPLITS}))
        self.frame, self.Y, self.splits, self.split_hash = frame, Y, np.asarray(splits), digest

        with self.stage("preprocess"):
            preprocessor = self.registry.create("preprocessor", self.recipe.active_preprocessor,
                                                size=self.recipe.image_size, **dict(self.recipe.preprocessor_options))
            items = frame[["image_id", "image_path"]]
            cache_dir = self.opts.cache or self.dir / "cache"
            if self.group.is_main:
                with self._progress() as progress:
                    cache = build_cache(items, preprocessor, self.recipe.image_size, cache_dir,
                                        workers=self.opts.workers, progress=progress)
            self.group.barrier()
            if not self.group.is_main:  # everything is cached now: this only opens it
                cache = build_cache(items, preprocessor, self.recipe.image_size, cache_dir, workers=1)
            cache_skips = cache.skipped(frame["image_id"].astype(str).tolist())
            if self.group.is_main:
                cache.write_manifest(frame["image_id"].astype(str).tolist(), self.dir / "preprocess")
                self._record_skips("preprocess", cache_skips)
                manifest.update(self.dir, lambda m: m.update(cache={"path": str(cache.root), "config": json.loads(
                    (cache.root / "config.json").read_text())}))
        unusable = {s.item for s in cache_skips}
        self.usable = ~frame["image_id"].astype(str).isin(unusable).to_numpy()
        self.cache = cache

    def _rows(self, split: str) -> np.ndarray:
        return np.flatnonzero((self.splits == split) & self.usable)

    def _progress(self):
        return _progress_bars(self.opts.progress)

    def train_backbone(self, name: str) -> None:
        out_dir = self.dir / "backbones" / _dir_name(name)
        pred_path = out_dir / "predictions.parquet"
        if pred_path.exists():  # finished earlier: a re-run is a no-op
            return
        with self.stage(f"train:{name}"):
            tr = self._rows("train")
            if len(tr) == 0:
                raise RunError("the training split is empty")
            counts = self.Y[tr].sum(axis=0).astype(int).tolist()
            loss_fn = self.registry.create("loss", self.recipe.loss, label_counts=counts, n_samples=len(tr),
                                           **dict(self.recipe.loss_options))
            torch.manual_seed(self.recipe.seed)
            model = build_backbone(self.registry, name, len(self.bench.labels), self.recipe)
            images = {s: torch.from_numpy(self.cache.load(self.frame["image_id"].iloc[self._rows(s)].tolist()))
                      for s in SPLITS}
            targets = {s: torch.from_numpy(self.Y[self._rows(s)]) for s in SPLITS}
            augmenter_factory = None
            if self.recipe.augment:
                from mlbench.preprocessing.augment import Augmenter

                augmenter_factory = Augmenter
            with self._progress() if self.group.is_main else contextlib.nullcontext(None) as progress:
                state = train(model, loss_fn, self.recipe, train_images=images["train"],
                              train_targets=targets["train"], val_images=images["val"], val_targets=targets["val"],
                              checkpoint_dir=out_dir, device=self.device, augmenter_factory=augmenter_factory,
                              progress=progress, name=name, group=self.group, compile=self.opts.compile)
            if not self.group.is_main:
                return
            tables = []
            for split in EVAL_SPLITS:
                rows = self._rows(split)
                probs = predict(model, images[split], self.device, batch_size=self.recipe.batch_size * 4)
                tables.append(predictions.to_table(self.frame["image_id"].iloc[rows].tolist(), [split] * len(rows),
                                                   name, self.bench.labels, probs))
            predictions.write(pred_path, tables)
            write_json(out_dir / "done.json", {"best_epoch": state.best_epoch, "epochs": state.epoch,
                                               "best_val_loss": state.best_val_loss, "device": device_name(self.device)})

    def combine_and_score(self) -> pd.DataFrame:
        """Ensembles from the stored per-backbone predictions, then metrics on the test split."""
        labels = list(self.bench.labels)
        missing = [b for b in self.recipe.backbones
                   if not (self.dir / "backbones" / _dir_name(b) / "predictions.parquet").exists()]
        if missing:
            raise RunError(f"{self.dir}: backbones {missing} have no predictions yet; train them first")
        with self.stage("ensemble"):
            frames = [predictions.read(self.dir / "backbones" / _dir_name(b) / "predictions.parquet")
                      for b in self.recipe.backbones]
            tables = [pa.Table.from_pandas(f, schema=predictions.SCHEMA, preserve_index=False) for f in frames]
            per_split: dict[str, tuple[list[str], np.ndarray]] = {}
            for split in EVAL_SPLITS:
                ids = self.frame["image_id"].iloc[self._rows(split)].tolist()
                probs = np.stack([predictions.wide(f, b, ids, labels) for f, b in zip(frames, self.recipe.backbones)])
                per_split[split] = (ids, probs)
            decisions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for name in self.recipe.ensembles:
                ensemble = self.registry.create("ensemble", name, threshold=self.recipe.threshold)
                for split in EVAL_SPLITS:
                    ids, probs = per_split[split]
                    scores, decided = ensemble.combine(probs)
                    tables.append(predictions.to_table(ids, [split] * len(ids), name, labels, scores))
                    if split == "test":
                        decisions[name] = (scores, decided)
            predictions.write(self.dir / "predictions.parquet", tables)

        with self.stage("metrics"):
            ids, probs = per_split["test"]
            test_rows = self._rows("test")
            y = self.Y[test_rows]
            patients = self.frame["patient_id"].astype(str).to_numpy()[test_rows]
            train_counts = self.Y[self._rows("train")].sum(axis=0)
            rows = []
            entries = [(b, "backbone", probs[i], (probs[i] >= self.recipe.threshold).astype(np.uint8))
                       for i, b in enumerate(self.recipe.backbones)]
            entries += [(n, "ensemble", s, d) for n, (s, d) in decisions.items()]
            m = manifest.read(self.dir)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", MetricWarning)
                for entry, kind, scores, decided in entries:
                    wall = m["stages"].get(f"train:{entry}", {}).get("seconds") if kind == "backbone" else None
                    for row in metric_intervals(y, scores, decided, patients, labels, train_counts=train_counts,
                                                n_boot=self.opts.n_boot, seed=BOOTSTRAP_SEED):
                        rows.append(self._leaderboard_row(m, entry, kind, row, wall))
            notes = sorted({str(w.message) for w in caught if issubclass(w.category, MetricWarning)})
            for note in notes:  # once per label, not once per entry
                warnings.warn(note, MetricWarning, stacklevel=2)
            manifest.update(self.dir, lambda m: m.update(
                metric_warnings=notes, bootstrap={"n_boot": self.opts.n_boot, "seed": BOOTSTRAP_SEED,
                                                  "resampled": "patients"}))
            table = leaderboard.to_table(rows)
            leaderboard.write(self.dir / "leaderboard.parquet", table)
        return table.to_pandas()

    def _leaderboard_row(self, m: dict[str, Any], entry: str, kind: str, row: dict[str, Any],
                         wall: float | None) -> dict[str, Any]:
        return {
            "benchmark": self.bench.name, "benchmark_version": self.bench.version, "variant": self.recipe.variant,
            "dataset_kind": m["dataset_kind"], "split_hash": m["split_hash"], "entry": entry, "entry_kind": kind,
            "label": row["label"], "metric": row["metric"], "value": row["value"], "ci_low": row["ci_low"],
            "ci_high": row["ci_high"],
            "n_positive": row["n_positive"], "source": "run", "run_id": m["run_id"],
            "backbones": ",".join(self.recipe.backbones), "loss": self.recipe.loss, "seed": self.recipe.seed,
            "mlbench_version": mlbench.__version__, "git_commit": m.get("git_commit"),
            "plugin_versions": json.dumps(m["versions"]["plugins"], sort_keys=True), "device": m["device"],
            "wall_time_s": wall, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "schema_version": leaderboard.SCHEMA_VERSION,
        }


def run(opts: RunOptions, registry: Registry | None = None) -> RunResult:
    """Run (or resume) a benchmark end to end; see the module docstring for what lands where."""
    job = Run(opts, registry)
    started = time.perf_counter()
    try:
        job.prepare()
        if not opts.ensemble_only:
            for name in opts.only_backbones or job.recipe.backbones:
                job.train_backbone(name)
                job.group.barrier()  # rank 0 has written this backbone's predictions
        if not job.group.is_main:
            return RunResult(job.dir, None, {}, is_main=False)
        table = None
        if not opts.only_backbones:
            table = job.combine_and_score()
        manifest.update(job.dir, lambda m: m.update(
            wall_time_s=round(sum(s["seconds"] for s in m["stages"].values()), 3),
            last_invocation_s=round(time.perf_counter() - started, 3)))
        return RunResult(job.dir, table, manifest.read(job.dir))
    finally:
        shutdown(job.group)


def preprocess(benchmark: str, source: DataSource, cache_dir: Path, *, crop: bool = True, size: int | None = None,
               workers: int | None = None, registry: Registry | None = None, progress: bool = True) -> dict[str, Any]:
    """Fill the cache with every image of ``benchmark`` (``mlbench preprocess``); resumable."""
    registry = registry or get_registry()
    bench: Benchmark = registry.create("benchmark", benchmark)
    recipe = bench.recipe.replace(crop=crop, **({"image_size": size} if size else {}))
    records = registry.create("dataset", bench.dataset).read(source)
    frame, _, _ = label_matrix(records, bench)
    preprocessor = registry.create("preprocessor", recipe.active_preprocessor, size=recipe.image_size,
                                   **dict(recipe.preprocessor_options))
    with _progress_bars(progress) as bar:
        cache = build_cache(frame[["image_id", "image_path"]], preprocessor, recipe.image_size, cache_dir,
                            workers=workers, progress=bar)
    return cache.write_manifest(frame["image_id"].astype(str).tolist())


@dataclass
class TrainedRun:
    """A finished run loaded back: what explainers and scorers need."""

    run_dir: Path
    manifest: dict[str, Any]
    benchmark: Benchmark
    recipe: Recipe
    models: dict[str, torch.nn.Module]  # backbone name -> model in eval mode, best checkpoint
    split: pd.DataFrame  # split.parquet
    registry: Registry

    @property
    def labels(self) -> tuple[str, ...]:
        return self.benchmark.labels

    def preprocessor(self):
        """The run's preprocessor (to prepare images that are not in the cache)."""
        return self.registry.create("preprocessor", self.recipe.active_preprocessor, size=self.recipe.image_size,
                                    **dict(self.recipe.preprocessor_options))

    def cache(self) -> Cache:
        return Cache.open(Path(self.manifest["cache"]["path"]))

    def crops(self) -> pd.DataFrame:
        """Each image's crop box in original pixels (preprocess/manifest.parquet)."""
        return pq.read_table(self.run_dir / "preprocess" / "manifest.parquet").to_pandas()


def load_trained(run_dir: str | Path, device: str | torch.device = "cpu", registry: Registry | None = None) -> TrainedRun:
    """Rebuild every trained backbone of RUN_DIR from its best checkpoint."""
    run_dir = Path(run_dir)
    registry = registry or get_registry()
    m = manifest.read(run_dir)
    bench: Benchmark = registry.create("benchmark", m["benchmark"])
    if bench.version != m["benchmark_version"]:
        raise RunError(f"{run_dir} was made with {bench.name} {m['benchmark_version']}, installed is {bench.version}")
    recipe_fields = {f.name for f in dataclasses.fields(Recipe)}
    saved = {k: v for k, v in m["recipe"].items() if k in recipe_fields}
    for key in ("backbones", "ensembles", "head_units"):
        saved[key] = tuple(saved[key])
    recipe = Recipe(**saved)
    device = torch.device(device)
    models = {}
    for name in recipe.backbones:
        best = run_dir / "backbones" / _dir_name(name) / "best.pt"
        if not best.exists():
            raise RunError(f"{run_dir}: backbone '{name}' has no best.pt; the run did not train it")
        model = build_backbone(registry, name, len(bench.labels), recipe.replace(pretrained=False))
        model.load_state_dict(checkpoint.load(best, device=device)["model"])
        models[name] = model.to(device).eval()
    split = pq.read_table(run_dir / "split.parquet").to_pandas()
    return TrainedRun(run_dir, m, bench, recipe, models, split, registry)
