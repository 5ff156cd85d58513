"""``mlbench evaluate RUN_DIR --on BENCHMARK``: a trained run scored on another benchmark's test split.

Does the model hold on another hospital's films? The run's benchmark and BENCHMARK each map their
labels onto a shared vocabulary of findings (``Benchmark.findings``); the labels they share
(:func:`mlbench.data.findings.share`) are scored on BENCHMARK's test split (its pinned official test
set when it has one), the other labels are listed with the reason they are not.

The pieces are the run's own: BENCHMARK's dataset is read and split by the one split function;
each test image is prepared by the run's preprocessor at the run's size
(:func:`mlbench.training.predict.prepare_chunk`, so the model sees what it was trained on); every
backbone scores it from its best checkpoint (weights only), the run's adjuster is refitted on the
run's own validation outputs and the run's ensembles combine, as ``mlbench predict`` does; the
metrics and patient-bootstrap CIs are the run's own scoring loop
(:func:`mlbench.results.rescoring.score_entries`) with the run's bootstrap settings, at the run's
fixed threshold.

Written inside the run directory (:meth:`mlbench.results.rundir.RunDir.external_dir`):
``predictions.parquet`` (split ``test``), ``leaderboard.parquet`` — leaderboard rows (the leaderboard
schema, so any leaderboard reader reads them) plus a ``scope`` column ``external:BENCHMARK``; labels
are named as the RUN's benchmark spells them, ``dataset_kind`` and ``split_hash`` are BENCHMARK's —
and ``evaluation.json``, written last: what was scored and on what, the pairs, the labels not
shared and why, every image skipped (counts by reason), and the run's internal test values over the
same labels. A killed evaluation resumes from its finished chunks (``parts/``); a finished one is
reused when nothing it depends on changed (the run, its checkpoints, the label file, the options).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

import mlbench
from mlbench.contracts.benchmark import Benchmark, with_data_labels
from mlbench.contracts.registry import PluginError, Registry, get_registry
from mlbench.data import DataSource, Skip
from mlbench.data.datasetoptions import check_dataset_options, read_dataset
from mlbench.data.findings import Sharing, share
from mlbench.data.imagepaths import OUTSIDE_ROOT
from mlbench.data.splits import SplitError, split_benchmark
from mlbench.demo import is_synthetic, read_source_record, write_source_record
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import sha256_file, write_json, write_parquet
from mlbench.results import leaderboard, predictions
from mlbench.results.evaluations import (RECORD_FORMAT, RECORD_VERSION, SCHEMA, SCOPE_COLUMN, read_record,
                                         read_rows, scope_of)
from mlbench.results.metrics import MetricWarning
from mlbench.results.profiles import ranked_entries, run_profile
from mlbench.results.rescoring import StoredRunError, bootstrap_settings, load_stored_run, score_entries
from mlbench.results.rundir import MANIFEST_SKIP_ITEMS, RunDir, RunDirError
from mlbench.training.adjusting import refit_run_adjusters
from mlbench.training.loop import device_name, pick_device
from mlbench.training.predict import (SKIPPED_COLUMNS, SKIPS_SCHEMA, ImageItem, chunk_name, finished_chunk,
                                      predict_chunk, prepare_chunk)
from mlbench.training.progress import Reporter
from mlbench.training.runner import load_trained

CHUNK_IMAGES = 1024
SPLIT = "test"


class EvaluateError(UserError, ValueError):
    """The run cannot be evaluated on that benchmark as asked (the message names the option or file)."""


@dataclass
class EvaluationResult:
    """What ``evaluate_run`` did (``reused``: a finished evaluation with the same inputs, nothing recomputed)."""

    run_dir: Path
    benchmark: str
    record_file: Path
    record: dict[str, Any]
    leaderboard: pd.DataFrame  # the external rows, scope column included
    reused: bool = False
    chunks: int = 0
    chunks_reused: int = 0
    skipped: list[Skip] = field(default_factory=list)

    @property
    def shared(self) -> list[dict[str, Any]]:
        return list(self.record.get("shared", []))

    @property
    def not_shared(self) -> dict[str, str]:
        return dict(self.record.get("not_shared", {}))


@dataclass
class Checked:
    """Everything checked before any data work."""

    rundir: RunDir
    manifest: dict[str, Any]
    run_benchmark: Benchmark
    target: Benchmark
    sharing: Sharing
    dataset_options: dict[str, Any]
    registry: Registry


# -- the checks, before any expensive work -----------------------------------------------------------
def check(run_dir: str | os.PathLike, on: str, *, csv: Any = None, images: Any = None, demo: bool = False,
          dataset_options: Mapping[str, Any] | None = None, registry: Registry | None = None) -> Checked:
    """Refuse, each in one line, an unfinished or hostile run, an unknown benchmark, no shared label, bad data options."""
    rundir = RunDir(run_dir)
    if not rundir.path.is_dir():
        raise EvaluateError(f"RUN_DIR {rundir.path}: no such folder; expected a finished run directory")
    manifest = rundir.manifest()
    if not rundir.finished():
        raise EvaluateError(f"{rundir.path}: the run is not finished (no leaderboard, or {rundir.manifest_file.name} "
                            "records no finished_at); finish it first by running its `mlbench run` command again")
    registry = registry or get_registry()
    name = manifest.get("benchmark")
    if not isinstance(name, str):
        raise RunDirError(f"{rundir.manifest_file}: names no benchmark; expected the manifest of a run")
    try:
        run_bench: Benchmark = registry.create("benchmark", name)
    except PluginError as exc:
        raise EvaluateError(f"{rundir.manifest_file}: the run's benchmark is not installed ({exc})") from None
    if run_bench.version != manifest.get("benchmark_version"):
        raise EvaluateError(f"{rundir.path} was made with {name} {manifest.get('benchmark_version')}, installed is "
                            f"{run_bench.version}")
    run_bench = with_data_labels(run_bench, rundir.labels(), str(rundir.split_file))
    try:
        target: Benchmark = registry.create("benchmark", on)
    except PluginError as exc:
        names = ", ".join(registry.names("benchmark"))
        raise EvaluateError(f"--on {on}: {exc}; installed benchmarks: {names}") from None
    if target.name == run_bench.name:
        raise EvaluateError(f"--on {on}: is the run's own benchmark, whose test split the run was scored on; "
                            "expected another benchmark (for the run's own test, `mlbench compare RUN_DIR`)")
    if target.dataset == run_bench.dataset:
        raise EvaluateError(f"--on {on}: reads the same dataset ('{target.dataset}') as the run's benchmark "
                            f"{run_bench.name}; its test split may hold the run's training images, so it is no "
                            "external validation; expected a benchmark of another dataset")
    sharing = share(run_bench, target)
    if not sharing.shared:
        label, why = next(iter(sharing.not_shared.items()), ("-", "the run has no labels"))
        raise EvaluateError(f"--on {on}: shares no label with the run's benchmark {run_bench.name} (e.g. "
                            f"'{label}': {why}); expected a benchmark whose labels map to the same findings")
    options = check_dataset_options(registry, target.dataset, dataset_options)
    if demo:
        if csv is not None or images is not None:
            raise EvaluateError("--demo: takes no --csv or --images (the demo corpus is generated)")
        if not hasattr(registry.create("dataset", target.dataset), "write_demo"):
            raise EvaluateError(f"--demo: dataset '{target.dataset}' of {target.name} has no demo corpus")
    else:
        if csv is None or images is None:
            raise EvaluateError(f"--csv and --images: give {target.name}'s label file and image folder, or --demo")
        if not Path(csv).is_file():
            raise EvaluateError(f"--csv {csv}: no such file; expected {target.name}'s label file")
        if not Path(images).is_dir():
            raise EvaluateError(f"--images {images}: no such folder; expected {target.name}'s image folder")
    # A run directory from elsewhere: what evaluate reads and writes must stay inside it.
    recipe = rundir.recipe()
    for backbone in recipe.backbones:
        best = rundir.best_checkpoint(backbone)
        if not best.is_file():
            raise EvaluateError(f"{best}: no such file; the run did not train backbone '{backbone}'")
        rundir.check_inside(best, f"backbone '{backbone}''s checkpoint")
    for path, what in ((rundir.external_root, "the external evaluations folder"),
                       (rundir.external_dir(target.name), f"the evaluation folder of {target.name}"),
                       (rundir.predictions_file, "the run's predictions"), (rundir.split_file, "the run's split")):
        if path.exists() or path.is_symlink():
            rundir.check_inside(path, what)
    return Checked(rundir, manifest, run_bench, target, sharing, options, registry)


# -- the evaluation ---------------------------------------------------------------------------------
def evaluate_run(run_dir: str | os.PathLike, on: str, *, csv: str | os.PathLike | None = None,
                 images: str | os.PathLike | None = None, demo: bool = False,
                 demo_options: Mapping[str, Any] | None = None, dataset_options: Mapping[str, Any] | None = None,
                 device: str = "auto", batch_size: int | None = None, workers: int | None = None,
                 progress: bool | str = "auto", chunk_size: int = CHUNK_IMAGES,
                 registry: Registry | None = None) -> EvaluationResult:
    """Score RUN_DIR's entries on ``on``'s test split for the labels the two benchmarks share (module docstring)."""
    checked = check(run_dir, on, csv=csv, images=images, demo=demo, dataset_options=dataset_options,
                    registry=registry)
    rundir, target, sharing = checked.rundir, checked.target, checked.sharing
    torch_device = pick_device(device)
    started = time.perf_counter()
    reporter = Reporter(progress)
    folder = rundir.external_dir(target.name)
    record_file = rundir.external_record(target.name)

    source = _source(checked, Path(csv) if csv is not None else None, Path(images) if images is not None else None,
                     demo, demo_options)
    trained = load_trained(rundir.path, torch_device, checked.registry)  # weights_only checkpoints
    preprocessor = trained.preprocessor()
    size = int(trained.recipe.image_size)
    identity = {"run_id": checked.manifest.get("run_id"), "benchmark": target.name,
                "benchmark_version": target.version, "csv_sha256": sha256_file(source.csv),
                "dataset_options": checked.dataset_options, "preprocessor": preprocessor.config(), "size": size,
                "labels": list(trained.labels), "shared": [s.as_dict() for s in sharing.shared],
                "checkpoints": {b: _state(rundir.best_checkpoint(b)) for b in trained.models}}
    stored = _finished(rundir, target.name, identity)
    if stored is not None:
        return EvaluationResult(rundir.path, target.name, record_file, stored[0], stored[1], reused=True)
    with contextlib.suppress(FileNotFoundError):
        record_file.unlink()  # another evaluation's record must not mark this one finished

    reporter.say(f"evaluate on {target.name}: read and split its label file")
    records = read_dataset(checked.registry, target.dataset, source, checked.dataset_options)
    try:
        split = split_benchmark(records, target)
    except SplitError as exc:
        raise EvaluateError(f"{source.csv}: {exc}") from None
    test = np.flatnonzero(split.splits == SPLIT)
    target_index = {label: j for j, label in enumerate(split.labels)}
    columns = [target_index[t] for t in sharing.target_labels]
    if split.known is not None and not split.known[np.ix_(test, columns)].all():
        unknown = [t for t, j in zip(sharing.target_labels, columns) if not split.known[test, j].all()]
        raise EvaluateError(f"{source.csv}: {target.name}'s test split has unknown cells for {', '.join(unknown)}; "
                            "scoring partial labels on another benchmark is not supported yet")
    frame = split.frame.iloc[test]
    root = Path(os.path.realpath(source.images))
    items, refused = _items(frame, root)

    backbones, labels = list(trained.models), list(trained.labels)
    key = json.dumps(identity, sort_keys=True, default=str)
    parts = rundir.external_parts(target.name)
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    frames, skipped, reused = [], list(refused), 0
    threads = max(1, workers or os.cpu_count() or 1)
    batch = batch_size or trained.recipe.batch_size * 4
    reporter.say(f"evaluate on {target.name}: {len(items)} test images, {len(chunks)} chunks, "
                 f"{len(sharing.shared)} shared labels")
    with reporter.bars() as bar:
        task = bar.add_task(f"evaluate {target.name}", total=len(items)) if bar is not None else None
        for chunk in chunks:
            name = chunk_name(key, root, chunk)
            done = finished_chunk(parts, name, chunk, backbones, labels)
            if done is None:
                kept, arrays, skips = prepare_chunk(chunk, root, preprocessor, size, threads)
                table = predict_chunk(trained, arrays, [item.image_id for item in kept], torch_device, batch)
                skips_table = pa.table({c: [getattr(s, a) for s in skips] for c, a in
                                        zip(SKIPPED_COLUMNS, ("item", "reason", "detail"))}, schema=SKIPS_SCHEMA)
                write_parquet(parts / f"{name}.skips.parquet", skips_table)  # first: the part marks it done
                write_parquet(parts / f"{name}.parquet", table)
                done = (table.to_pandas(), skips)
            else:
                reused += 1
            frames.append(done[0])
            skipped += done[1]
            if bar is not None:
                bar.advance(task, len(chunk))
    left = {s.item for s in skipped}
    kept_rows = [i for i, item in enumerate(items) if item.relative not in left]
    if not kept_rows:
        reasons = ", ".join(f"{r} {n}" for r, n in Counter(s.reason for s in skipped).most_common())
        raise EvaluateError(f"--images {source.images}: none of the {len(items)} test images of {target.name} could "
                            f"be used ({reasons}); expected the folder its label file's image paths are relative to")
    ids = [items[i].image_id for i in kept_rows]
    stored = pd.concat(frames, ignore_index=True)
    probs = np.stack([predictions.wide(stored, b, ids, labels) for b in backbones])
    recipe = trained.recipe
    adjusters = refit_run_adjusters(trained.rundir, trained.registry, recipe, labels)
    if adjusters is not None:  # as the runner adjusted its own test outputs, before the ensembles
        probs = np.stack([np.clip(a.apply(p), 0.0, 1.0) for a, p in zip(adjusters, probs)])
    entries = [(b, "backbone", probs[i]) for i, b in enumerate(backbones)]
    for name in recipe.ensembles:  # as the runner's ensemble stage combines them
        ensemble = trained.registry.create("ensemble", name, threshold=recipe.threshold)
        entries.append((name, "ensemble", np.asarray(ensemble.combine(probs)[0])))

    # Keep the shared labels: the run's columns, BENCHMARK's truth, named in the run's spelling.
    mine = [labels.index(label) for label in sharing.labels]
    y = split.Y[test][kept_rows][:, columns].astype(np.uint8)
    patients = frame["patient_id"].astype(str).to_numpy()[kept_rows]
    train_counts = _train_counts(trained.split, sharing.labels)
    n_boot, seed = bootstrap_settings(checked.manifest)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetricWarning)
        scored, _ = score_entries([(n, kind, s[:, mine], (s[:, mine] >= recipe.threshold).astype(np.uint8), None)
                                   for n, kind, s in entries], y, patients, sharing.labels, train_counts=train_counts,
                                  n_boot=n_boot, seed=seed)
    metric_notes = sorted({str(w.message) for w in caught if issubclass(w.category, MetricWarning)})
    base = {**rundir.provenance(checked.manifest), "dataset_kind": records.kind,
            "split_hash": split.summary.get("split_hash"), "wall_time_s": None}
    rows = [{**base, **{k: row[k] for k in ("entry", "entry_kind", "label", "metric", "value", "ci_low", "ci_high",
                                            "n_positive")}} for row in scored]
    table = leaderboard.to_table(rows)
    table = table.append_column(SCOPE_COLUMN, pa.array([scope_of(target.name)] * table.num_rows, pa.string()))

    pred_tables = [predictions.to_table(ids, [SPLIT] * len(ids), n, sharing.labels, s[:, mine]) for n, _, s in entries]
    predictions.write(rundir.external_predictions(target.name), pred_tables)
    write_parquet(rundir.external_leaderboard(target.name), table.cast(SCHEMA))
    internal = _internal_over_shared(rundir, sharing.labels, n_boot, seed)
    positives = {r["label"]: r["n_positive"] for r in scored if r["metric"] == "auc"}
    stage_skips = ([("data", s) for s in records.skipped] + [("split", s) for s in split.skipped]
                   + [("preprocess", s) for s in skipped])
    notes = [f"labels are named as {checked.run_benchmark.name} spells them; their truth is {target.name}'s column "
             "of the same finding (target_label)",
             f"decisions at the run's fixed threshold {recipe.threshold}"
             + (" (the run's tuned validation thresholds are not applied here)" if recipe.threshold_rule != "fixed"
                else "")]
    if any(s.relation != "exact" for s in sharing.shared):
        notes.append("a 'narrower' label is one kind of its finding in the run's benchmark: its model is asked to find "
                     "every kind on the other benchmark's films")
    if is_synthetic(records.kind) or is_synthetic(checked.manifest.get("dataset_kind")):
        notes.append("SYNTHETIC DEMO DATA: this evaluation exercises the method; it says nothing about real films")
    scoring = run_profile(rundir.path, checked.run_benchmark.name)
    ranked = ranked_entries(rundir.leaderboard().to_pandas(), scoring)
    record = {
        "headline_entry": ranked[0][0] if ranked else entries[0][0], "scoring_profile": scoring.name,
        "format": RECORD_FORMAT, "version": RECORD_VERSION, "identity": identity, "scope": scope_of(target.name),
        "benchmark": target.name, "benchmark_version": target.version, "run_benchmark": checked.run_benchmark.name,
        "run_id": checked.manifest.get("run_id"), "vocabulary": sharing.vocabulary, "dataset_kind": records.kind,
        "csv_sha256": records.source_sha256, "split_hash": split.summary.get("split_hash"),
        "test_split": "pinned official test set" if target.fixed_test is not None else "the benchmark's stratified split",
        "source": {"csv": rundir.stored_path(source.csv), "images": rundir.stored_path(source.images)},
        "dataset_options": checked.dataset_options, "n_test_images": len(items), "n_scored": len(ids),
        "shared": [{**s.as_dict(), "n_positive": positives.get(s.label)} for s in sharing.shared],
        "not_shared": dict(sharing.not_shared),
        "skipped": {"counts": dict(Counter(f"{stage}:{s.reason}" for stage, s in stage_skips)),
                    "total": len(stage_skips), "not_shared_labels": len(sharing.not_shared),
                    "items": [{"stage": stage, **s.as_dict()} for stage, s in stage_skips
                              if stage == "preprocess"][:MANIFEST_SKIP_ITEMS]},
        "entries": [n for n, _, _ in entries], "threshold": recipe.threshold,
        "bootstrap": {"n_boot": n_boot, "seed": seed, "resampled": "patients"},
        "internal_over_shared": internal, "metric_warnings": metric_notes, "notes": notes,
        "preprocessor": preprocessor.config(), "image_size": size, "device": device_name(torch_device),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "mlbench_version": mlbench.__version__,
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    write_json(record_file, record)  # last: its presence says the evaluation is finished
    _remove_parts(parts)
    board = table.to_pandas()
    return EvaluationResult(rundir.path, target.name, record_file, record, board, chunks=len(chunks),
                            chunks_reused=reused, skipped=skipped)


def _source(checked: Checked, csv: Path | None, images: Path | None, demo: bool,
            demo_options: Mapping[str, Any] | None) -> DataSource:
    """The target's label file and images, or its demo corpus (written once into the evaluation's folder)."""
    if not demo:
        return DataSource(csv=csv, images=images)
    demo_dir = checked.rundir.external_demo_dir(checked.target.name)
    written = read_source_record(demo_dir)
    if written is not None:
        return written
    dataset = checked.registry.create("dataset", checked.target.dataset)
    options = {**dict(checked.target.demo_options), **dict(demo_options or {})}
    source = dataset.write_demo(demo_dir, seed=0, **options)
    write_source_record(demo_dir, source)
    return source


def _items(frame: pd.DataFrame, root: Path) -> tuple[list[ImageItem], list[Skip]]:
    """Each test image as a path under the image folder; one the reader placed outside it is skipped."""
    prefix = str(root).rstrip(os.sep) + os.sep
    items, refused = [], []
    for image_id, path in zip(frame["image_id"].astype(str), frame["image_path"].astype(str)):
        real = os.path.realpath(path)
        if real.startswith(prefix):
            items.append(ImageItem(image_id, Path(real[len(prefix):]).as_posix()))
        else:
            refused.append(Skip(image_id, OUTSIDE_ROOT, "the image lies outside --images"))
    return items, refused


def _state(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _train_counts(split: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """The run's training positives of each label: its frequency groups, as in its own metrics."""
    train = split[split["split"] == "train"]
    return train[list(labels)].to_numpy().sum(axis=0)


def _internal_over_shared(rundir: RunDir, labels: Sequence[str], n_boot: int, seed: int) -> list[dict[str, Any]]:
    """The run's own test rows over the shared labels only (their macro mean with its CI included)."""
    try:
        stored = load_stored_run(rundir.path)
    except StoredRunError as exc:
        raise EvaluateError(f"{rundir.path}: its stored test predictions cannot be read back ({exc})") from None
    index = [stored.labels.index(label) for label in labels]
    entries = [(e, kind, stored.scores[e][:, index], (stored.scores[e][:, index] >= stored.threshold).astype(np.uint8),
                None) for e, kind in stored.entries.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)  # said once by the run's own metrics
        rows, _ = score_entries(entries, stored.y[:, index], stored.patient_ids, list(labels),
                                train_counts=stored.train_counts[index], n_boot=n_boot, seed=seed)
    return [{k: _plain(row[k]) for k in ("entry", "label", "metric", "value", "ci_low", "ci_high", "n_positive")}
            for row in rows if row["label"] == leaderboard.GLOBAL_LABEL]


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _remove_parts(folder: Path) -> None:
    if not folder.is_dir():
        return
    for part in folder.iterdir():
        if part.suffix == ".parquet" and part.is_file():
            with contextlib.suppress(OSError):
                part.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _finished(rundir: RunDir, benchmark: str, identity: dict[str, Any]) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """The stored evaluation when it is finished and made from the same inputs; else None."""
    path = rundir.external_record(benchmark)
    if not path.is_file():
        return None
    try:
        record = read_record(path)
        rows = read_rows(rundir.external_leaderboard(benchmark), benchmark)
    except (RunDirError, leaderboard.LeaderboardError):
        return None
    if json.loads(json.dumps(identity, default=str)) != record.get("identity") or \
            not rundir.external_predictions(benchmark).is_file():
        return None
    return record, rows

