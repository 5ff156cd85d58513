"""``mlbench score FILE``: predictions made by any framework, scored as a run is scored.

The file is the documented outside format (:mod:`mlbench.results.external`). Nothing in it but
the probabilities is taken: the labels come from the label file given (``--csv``), read with the
benchmark's dataset plugin, and the test images from the benchmark's split of it, recomputed
exactly as ``mlbench run`` computes it (:func:`mlbench.judging.submit.canonical_split`). Then:

1. coverage: every entry has a probability for every (test image x benchmark label), and nothing
   else. A label the benchmark lacks, an image outside the test split and a test image the file
   lacks are refused with examples. With ``--images``, a test image the file lacks is accepted
   when its file cannot be read (missing, empty, not an image format mlbench opens, a header
   without a size, too large, truncated: the checks :func:`mlbench.preprocessing.images.read_grayscale`
   makes before decoding), as a run leaves such an image out; each is reported.
2. scores: every entry through the one scoring loop of a run
   (:func:`mlbench.results.rescoring.score_entries`): decisions at the benchmark recipe's
   threshold, patient-bootstrap 95% CIs (``n_boot``, ``seed``), frequency groups by the training
   split's positives. With ``--images`` the training images whose files fail the same checks are
   not counted, as a run counts only the training images it could read (a run also drops an image
   that decodes badly or that its preprocessor fails on; those are not looked for here: the
   checks read each file's first and last bytes only). When the file has validation rows
   (``split`` = ``val``) for every entry, the ``*_tuned`` rows follow, thresholds fitted on them,
   as ``mlbench run --thresholds val-f1`` does.

The rows follow the leaderboard schema (:mod:`mlbench.results.leaderboard`): ``source`` ``run``,
``run_id`` ``external-`` and the first 12 hex digits of the file's sha256, ``variant``
``external`` (how the models were trained is not known), ``entry_kind`` ``backbone`` (the schema
has no kind for an outside model; every entry is scored alike), no training provenance.
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

import mlbench
from mlbench.contracts.registry import Registry, get_registry
from mlbench.data import DataSource, Skip
from mlbench.data.splits import BenchmarkSplit
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import sha256_file
from mlbench.judging.submit import canonical_split
from mlbench.preprocessing.images import MAX_PIXELS, header_size, image_format, is_truncated
from mlbench.results import external, leaderboard, predictions
from mlbench.results.metrics import MetricWarning
from mlbench.results.predictions import show
from mlbench.results.rescoring import DEFAULT_BOOT_SEED, DEFAULT_N_BOOT, score_entries

RUN_ID_PREFIX = "external-"
VARIANT = "external"
ENTRY_KIND = "backbone"  # leaderboard.ENTRY_KINDS has no kind for an outside model
EXAMPLES = 3
HEAD_BYTES = 1 << 18  # enough for any header's size field (a JPEG's may follow a large EXIF block)
TAIL_BYTES = 4096  # what is_truncated looks at
CHECK_THREADS = 8  # file checks wait on the disk, not the CPU


class ScoreError(UserError, ValueError):
    """The predictions cannot be scored against this benchmark and label file (the message says why)."""


@dataclass
class ScoreResult:
    """``rows``: the leaderboard rows (schema columns), entries in the file's order; ``table`` the same
    rows as a schema table. ``left_out``: test (and validation) images the file lacks because they
    cannot be read; ``train_unreadable``: training images not counted for the frequency groups."""

    file: Path
    sha256: str
    run_id: str
    benchmark: str
    dataset_kind: str
    split_hash: str
    entries: list[str]
    n_test: int
    rows: pd.DataFrame
    table: pa.Table
    left_out: list[Skip] = field(default_factory=list)
    train_unreadable: list[Skip] = field(default_factory=list)
    tuned: bool = False
    notes: list[str] = field(default_factory=list)
    comparison: Any = None  # a PublishedComparison, when the caller compared the rows (mlbench.api)


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _examples(items: list[str]) -> str:
    shown = ", ".join(show(i) for i in items[:EXAMPLES])
    return shown + (f" and {len(items) - EXAMPLES} more" if len(items) > EXAMPLES else "")


# -- which files cannot be read ------------------------------------------------------------------------
def file_fault(path: str | os.PathLike) -> Skip | None:
    """Why a decoder would refuse the file before decoding it (``read_grayscale``'s checks of the header
    and the end, from the first and last bytes only); None when it passes them."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            tail = b""
            if size > len(head):
                f.seek(max(size - TAIL_BYTES, len(head)))
                tail = f.read(TAIL_BYTES)
    except (OSError, ValueError):
        return Skip(str(path), "missing_file")
    data = head + tail  # is_truncated reads the signature from the start and the end marker from the end
    if not head:
        return Skip(str(path), "empty_image", "the file has 0 bytes")
    if image_format(head) is None:
        return Skip(str(path), "unsupported_format", "not PNG, JPEG, TIFF, BMP, GIF or WebP")
    dims = header_size(head)
    if dims is None:
        return Skip(str(path), "unreadable_image", "the header does not give the image size")
    if dims[0] == 0 or dims[1] == 0:
        return Skip(str(path), "empty_image", f"the header says {dims[0]} x {dims[1]} pixels")
    if dims[0] * dims[1] > MAX_PIXELS:
        return Skip(str(path), "too_large", f"{dims[0]} x {dims[1]} pixels exceeds the limit of {MAX_PIXELS:,}")
    if is_truncated(data):
        return Skip(str(path), "truncated", "the file ends before the image's end marker")
    return None


def faults(image_ids: list[str], paths: list[str]) -> dict[str, Skip]:
    """image id -> its file's fault, for the images whose file fails :func:`file_fault`."""
    with ThreadPoolExecutor(max_workers=CHECK_THREADS, thread_name_prefix="mlbench-score-check") as pool:
        found = list(pool.map(file_fault, paths))
    return {i: Skip(i, f.reason, f.detail) for i, f in zip(image_ids, found) if f is not None}


# -- scoring ------------------------------------------------------------------------------------------
def _subset(canon: BenchmarkSplit, name: str) -> pd.DataFrame:
    frame = canon.frame[["image_id", "patient_id", "image_path"]].astype({"image_id": str, "patient_id": str})
    return frame[canon.splits == name].assign(row=np.flatnonzero(canon.splits == name))


def _check_names(table: pa.Table, file: Path, canon: BenchmarkSplit, benchmark: str, csv: Path) -> None:
    """Labels the benchmark lacks, and images outside the subset they are given for, named with examples."""
    frame = table.select(["image_id", "split", "label"]).to_pandas()
    unknown = sorted(set(frame["label"]) - set(canon.labels))
    if unknown:
        raise ScoreError(f"{file}: column 'label' has {len(unknown)} name{'s' if len(unknown) > 1 else ''} that "
                         f"benchmark '{benchmark}' does not have: {_examples(unknown)}; expected its labels as it "
                         f"spells them ({', '.join(canon.labels[:6])}{' ...' if len(canon.labels) > 6 else ''})")
    where = dict(zip(canon.frame["image_id"].astype(str), canon.splits.astype(str)))
    for subset in external.SPLITS:
        given = pd.unique(frame.loc[frame["split"] == subset, "image_id"])
        extra = [i for i in given if where.get(i) != subset]
        if extra:
            elsewhere = sum(i in where for i in extra)
            others = " or ".join(s for s in ("train", "val", "test") if s != subset)
            also = f"; {elsewhere} of them in its {others} split" if elsewhere else ""
            raise ScoreError(f"{file}: {_images(len(extra))} not among the {subset} images of '{benchmark}' split from "
                             f"{csv}: {_examples(extra)}{also}; expected the benchmark's {subset} images only")


def _wanted(table: pa.Table, subset: pd.DataFrame, split: str, images_given: bool) -> tuple[pd.DataFrame, list[Skip]]:
    """The subset's images the file must cover, and those it may lack because their file cannot be read."""
    keys = table.select(["image_id", "split"]).to_pandas()
    present = set(keys.loc[keys["split"] == split, "image_id"])
    absent = subset[~subset["image_id"].isin(present)]
    if not images_given or absent.empty:
        return subset, []
    unreadable = faults(absent["image_id"].tolist(), absent["image_path"].astype(str).tolist())
    return subset[~subset["image_id"].isin(unreadable)], list(unreadable.values())


def score_predictions(file: str | os.PathLike, benchmark: str, csv: str | os.PathLike, *,
                      images: str | os.PathLike | None = None, n_boot: int = DEFAULT_N_BOOT,
                      seed: int = DEFAULT_BOOT_SEED, registry: Registry | None = None) -> ScoreResult:
    """Score an outside predictions file against ``benchmark`` on the label file ``csv`` (module docstring).

    ``images``: the image folder the label file's paths are relative to (default: the label file's
    folder; given, it lets unreadable images be told from missing predictions)."""
    file, csv = Path(file), Path(csv)
    external.file_format(file)
    if not file.is_file():
        raise ScoreError(f"{file}: no such predictions file")
    if not csv.is_file():
        raise ScoreError(f"--csv {csv}: no such label file")
    if images is not None and not Path(images).is_dir():
        raise ScoreError(f"--images {images}: no such folder; expected the folder the label file's image paths "
                         "are relative to")
    registry = registry or get_registry()
    bench = registry.create("benchmark", benchmark)  # an unknown name: one line naming the ones there are
    table = external.read_external_table(file)
    canon = canonical_split(benchmark, DataSource(csv, Path(images) if images is not None else csv.parent), registry)
    _check_names(table, file, canon, benchmark, csv)
    labels = list(canon.labels)
    entries = [str(e) for e in pd.unique(np.asarray(table.column("entry").to_pylist(), dtype=object))]
    with_val = bool(np.isin(np.asarray(table.column("split").to_pylist(), dtype=object), ["val"]).any())
    left_out: list[Skip] = []
    wanted: dict[str, pd.DataFrame] = {}
    for split in ("test", "val") if with_val else ("test",):
        wanted[split], lacking = _wanted(table, _subset(canon, split), split, images is not None)
        left_out += lacking
        if wanted[split].empty:
            raise ScoreError(f"{file}: benchmark '{benchmark}' has no readable {split} image in {csv}; nothing to "
                             "score")
    # One validation of a predictions table, asked for exactly the images and labels needed.
    frame = predictions.validate(table, file, [predictions.Coverage(split, rows["image_id"].tolist(), entries, labels)
                                              for split, rows in wanted.items()])
    train = _subset(canon, "train")
    unreadable_train: list[Skip] = []
    if images is not None and len(train):
        unreadable = faults(train["image_id"].tolist(), train["image_path"].astype(str).tolist())
        if len(unreadable) == len(train):
            raise ScoreError(f"--images {images}: none of the {len(train)} training images of '{benchmark}' can be "
                             f"read there (e.g. {show(train['image_path'].iloc[0])}: "
                             f"{next(iter(unreadable.values())).reason}); expected the folder the label file's image "
                             "paths are relative to")
        unreadable_train = list(unreadable.values())
        train = train[~train["image_id"].isin(unreadable)]
    train_counts = canon.Y[train["row"].to_numpy()].sum(axis=0)
    test = wanted["test"]
    threshold = float(bench.recipe.threshold)
    scored = []
    split_rows = {s: frame[frame["split"] == s] for s in wanted}
    for entry in entries:
        scores = predictions.wide(split_rows["test"], entry, test["image_id"].tolist(), labels)
        val = (predictions.wide(split_rows["val"], entry, wanted["val"]["image_id"].tolist(), labels)
               if with_val else None)
        scored.append((entry, ENTRY_KIND, scores, (scores >= threshold).astype(np.uint8), val))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)  # a label without test positives is NaN by design
        rows, _ = score_entries(scored, canon.Y[test["row"].to_numpy()], test["patient_id"].tolist(), labels,
                                train_counts=train_counts, n_boot=n_boot, seed=seed,
                                threshold_rule="val-f1" if with_val else "fixed",
                                y_val=canon.Y[wanted["val"]["row"].to_numpy()] if with_val else None)
    digest = sha256_file(file)
    run_id = RUN_ID_PREFIX + digest[:12]
    base = _provenance(bench, canon, run_id, registry)
    table_rows = leaderboard.to_table([{**base, **row, "wall_time_s": None} for row in rows])
    notes = []
    if left_out:
        notes.append(f"left out {_images(len(left_out))} the file lacks and whose files cannot be read (as a run "
                     f"leaves them out): {_examples([f'{s.item} ({s.reason})' for s in left_out])}")
    if unreadable_train:
        named = _examples([f"{s.item} ({s.reason})" for s in unreadable_train])
        notes.append(f"not counted for the label frequency groups: {_images(len(unreadable_train))} of the training "
                     f"split whose files cannot be read: {named}")
    return ScoreResult(file=file, sha256=digest, run_id=run_id, benchmark=bench.name,
                       dataset_kind=str(canon.summary["dataset_kind"]), split_hash=str(canon.summary["split_hash"]),
                       entries=entries, n_test=len(test), rows=table_rows.to_pandas(), table=table_rows,
                       left_out=left_out, train_unreadable=unreadable_train, tuned=with_val, notes=notes)


def _provenance(bench: Any, canon: BenchmarkSplit, run_id: str, registry: Registry) -> dict[str, Any]:
    """The columns every row carries: what was scored against, by which mlbench and plugins."""
    used = {}
    for kind, name in (("benchmark", bench.name), ("dataset", bench.dataset)):
        entry = registry.get(kind, name)
        used[f"{kind}:{name}"] = f"{entry.package or entry.plugin}=={entry.version or 'unknown'}"
    return {"benchmark": bench.name, "benchmark_version": bench.version, "variant": VARIANT,
            "dataset_kind": canon.summary["dataset_kind"], "split_hash": canon.summary["split_hash"],
            "run_id": run_id, "source": "run", "backbones": None, "loss": None, "seed": None,
            "mlbench_version": mlbench.__version__, "git_commit": None,
            "plugin_versions": json.dumps(used, sort_keys=True), "device": None,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "schema_version": leaderboard.SCHEMA_VERSION}


def compare_with_published(result: ScoreResult, *, metric: str = "auc", variant: str | None = None,
                           registry: Registry | None = None) -> None:
    """``result.comparison``: its rows against the benchmark's published board (verdicts from the
    intervals, :func:`mlbench.judging.compare.compare_run`), at ``variant`` (default: the benchmark
    recipe's, the paper's main setting). A benchmark without a board gets one note instead."""
    import tempfile

    from mlbench.judging import compare
    from mlbench.results.rundir import RunDir

    registry = registry or get_registry()
    bench = registry.create("benchmark", result.benchmark)
    if not leaderboard.local_board(bench.name).is_file() and leaderboard.published_board(bench.name, registry) is None:
        result.notes.append(f"benchmark '{bench.name}' has no published board: nothing published to compare the "
                            "scores with")
        return
    if result.rows[["ci_low", "ci_high"]].isna().all().all():
        raise ScoreError("--against published: the scores have no confidence intervals (--n-boot 0); verdicts come "
                         "from the intervals, expected --n-boot 1 or more")
    # compare_run reads a run directory's leaderboard: the scored rows are one, for the comparison's time.
    with tempfile.TemporaryDirectory(prefix="mlbench-score-") as folder:
        RunDir(folder).write_leaderboard(result.table)
        result.comparison = compare.compare_run(folder, variant=variant or bench.recipe.variant, metric=metric)
