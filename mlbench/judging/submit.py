"""``mlbench submit``: check a RUN_DIR from first principles, then append its rows to a leaderboard.

Nothing in the run directory is taken on trust. A run is accepted only if:

1. its ``leaderboard.parquet`` follows the schema, and every row names the run (run id, benchmark,
   version, variant, dataset kind, split hash, loss, seed) as its ``manifest.json`` does;
2. the installed benchmark has the run's version, and the split is the canonical one: mlbench
   reads the dataset source the manifest records (same sha256), recomputes the benchmark's split
   and its hash, and ``split.parquet`` (images, patients, subsets, labels) equals it;
3. the stored test predictions pass :func:`mlbench.results.predictions.validate` (types, finite values in
   [0, 1], no repeated row) and cover exactly every label of the split's test images less those
   the run skipped in preprocessing, and each such skip is real (the image is unreadable, or the
   run's preprocessor fails on it);
4. every ensemble's stored scores equal the ensemble recomputed from the stored backbone scores;
5. every metric, recomputed by mlbench from the predictions and the canonical labels
   (:func:`mlbench.results.stats.metric_intervals`), equals the file's value within 1e-9 — and so does
   each stored confidence interval (recomputed with the bootstrap settings the manifest
   records); no value is NaN or infinite unless the recomputation gives NaN (a label absent
   from the test split);
6. for the benchmark's own board (the default target) of a benchmark that pins its label files
   (``Benchmark.canonical_sources``): the label file re-read here is one of them, by the sha256 of
   its decompressed content (:mod:`mlbench.data.canonical`), and the split recomputed from it has
   the pinned hash. Anything else is a custom run, which goes with ``--leaderboard PATH`` to another
   file. Neither the manifest nor the demo marker decides this; the file's content does.

Provenance (run id, seed, versions, git commit, device, wall times, created_at) cannot be
recomputed either: the submitted rows carry manifest.json's values, whatever the rows said, and the
result names each column it replaced (a score is what is verified; provenance is the record the
checks were made against).

Explainer rows (``cam_*`` heatmap scores) cannot be recomputed from predictions: they are left
out of the submission, and the result says so. Then the rows are appended under an exclusive
lock on the leaderboard's folder: read, check, concatenate, atomic replace (:mod:`mlbench.foundations.io`),
so concurrent submits never lose a row or leave a torn file. A run id already in the leaderboard
is refused (an error, not a silent no-op). Synthetic rows never enter a benchmark's own board
(the default target, or any file holding published or real rows, whatever it is called), and
real runs never enter a file of synthetic rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlbench.foundations.errors import UserError
from mlbench.results import leaderboard, predictions
from mlbench.foundations.io import OutputPathError, make_parent, os_reason
from mlbench.contracts.benchmark import CanonicalSource
from mlbench.data import DataSource, DatasetError
from mlbench.data.canonical import content_sha256, pin_for, releases
from mlbench.data.datasetoptions import read_dataset
from mlbench.data.splits import BenchmarkSplit, split_benchmark, split_hash
from mlbench.demo import SYNTHETIC_KIND, is_synthetic
from mlbench.results.metrics import MetricWarning
from mlbench.foundations.missing import is_unknown
from mlbench.contracts.registry import PluginError, Registry, get_registry
from mlbench.results.rescoring import StoredRun, StoredRunError, bootstrap_settings, load_stored_run, recompute_scores
from mlbench.results.rundir import LEADERBOARD, MANIFEST, PREDICTIONS, SKIPPED, SPLIT, RunDir, RunDirError
from mlbench.results.stats import GROUP_LABELS

TOLERANCE = 1e-9
EXAMPLES = 5  # how many offending items a message names
SYNTHETIC_ONLY_NAMED = ("synthetic (demo) runs never enter a benchmark's own leaderboard; submit them with "
                        "--leaderboard PATH to a file of synthetic rows")


class SubmissionError(UserError):
    """The run was refused; ``problems`` lists every reason found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("submission refused:\n- " + "\n- ".join(self.problems))


def examples(items: Any) -> str:
    items = sorted(map(str, items))
    return ", ".join(items[:EXAMPLES]) + (f" and {len(items) - EXAMPLES} more" if len(items) > EXAMPLES else "")


# -- the canonical split -----------------------------------------------------------------------------
def canonical_split(benchmark: str, source: DataSource, registry: Registry | None = None,
                    dataset_options: Mapping[str, Any] | None = None) -> BenchmarkSplit:
    """Read ``source`` with the benchmark's dataset plugin (and the run's dataset options) and recompute its
    split, as the runner does; for a benchmark whose labels come from the data, ``labels`` are the data's."""
    registry = registry or get_registry()
    bench = registry.create("benchmark", benchmark)
    return split_benchmark(read_dataset(registry, bench.dataset, source, dataset_options), bench)


def run_dataset_options(m: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The dataset options a run was made with (its identity's ``dataset_options``; none: empty).

    The value comes from a file from outside: anything but a mapping of names to plain values is refused
    in one line naming ``where``; the dataset itself then checks each option as ``--dataset-option``.
    """
    options = (m.get("identity") or {}).get("dataset_options") if isinstance(m.get("identity"), Mapping) else None
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in options.items()):
        raise UserError(f"{where}: identity.dataset_options is not a mapping of option names to plain values")
    return dict(options)


# -- validation ----------------------------------------------------------------------------------------
@dataclass
class Validation:
    """What ``validate_run`` found: ``problems`` (empty = acceptable) and the checks that passed."""

    run_dir: Path
    problems: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    table: pa.Table | None = None  # the run's leaderboard rows that would be submitted
    manifest: dict[str, Any] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # rows of the run not submitted, and why
    # The benchmark's canonical source the re-read label file is (content and recomputed split both
    # match its pin), else None; ``releases``: every release the benchmark pins (none: no gate).
    canonical: CanonicalSource | None = None
    releases: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _close(a: Any, b: Any) -> bool:
    a_missing, b_missing = is_unknown(a), is_unknown(b)
    if a_missing or b_missing:
        return a_missing and b_missing
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= TOLERANCE


def check_rows(board: pd.DataFrame, m: dict[str, Any], v: Validation) -> None:
    expected = {"source": "run", "run_id": m.get("run_id"), "benchmark": m.get("benchmark"),
                "benchmark_version": m.get("benchmark_version"), "variant": m.get("variant"),
                "dataset_kind": m.get("dataset_kind"), "split_hash": m.get("split_hash"), "loss": m.get("loss"),
                "seed": m.get("seed")}
    for column, want in expected.items():
        bad = board[board[column].astype(object).where(board[column].notna(), None) != want]
        if len(bad):
            have = sorted(map(str, bad[column].unique()))
            v.problems.append(f"{LEADERBOARD}: {len(bad)} rows have {column} {examples(have)}; "
                              f"{MANIFEST} says {want!r}")
    entries = {**{b: "backbone" for b in m.get("backbones", [])}, **{e: "ensemble" for e in m.get("ensembles", [])}}
    for entry, kind in board.groupby("entry")["entry_kind"].first().items():
        if entry not in entries:
            v.problems.append(f"{LEADERBOARD}: entry '{entry}' is not one of the run's backbones or ensembles "
                              f"({', '.join(entries)})")
        elif entries[entry] != kind:
            v.problems.append(f"{LEADERBOARD}: entry '{entry}' has entry_kind '{kind}', "
                              f"expected '{entries[entry]}'")
    dupes = board[board.duplicated(["entry", "label", "metric"], keep=False)]
    if len(dupes):
        keys = {f"{r.entry}/{r.label}/{r.metric}" for r in dupes.itertuples()}
        v.problems.append(f"{LEADERBOARD}: duplicated rows for {examples(keys)}")
    numbers = board[["value", "ci_low", "ci_high"]].to_numpy(dtype=float)
    if np.isinf(numbers).any():
        v.problems.append(f"{LEADERBOARD}: infinite values (value, ci_low or ci_high)")
    if not v.problems:
        v.passed.append("leaderboard rows name this run, its benchmark, version, variant, split hash, loss and seed")


def _check_split(run_dir: Path, m: dict[str, Any], canon: BenchmarkSplit, labels: list[str], v: Validation) -> None:
    if canon.summary['csv_sha256'] != m.get("csv_sha256"):
        v.problems.append(f"dataset source: its sha256 is {canon.summary['csv_sha256']}, the run used {m.get('csv_sha256')} "
                          "(another file than the run read)")
    if canon.summary['dataset_kind'] != m.get("dataset_kind"):
        v.problems.append(f"dataset_kind: the dataset reader says '{canon.summary['dataset_kind']}', {MANIFEST} says "
                          f"'{m.get('dataset_kind')}'")
    if canon.summary['split_hash'] != m.get("split_hash"):
        v.problems.append(f"split hash: {MANIFEST} has {m.get('split_hash')}, the canonical split recomputed "
                          f"from the dataset source is {canon.summary['split_hash']}")
    stored = RunDir(run_dir).split()
    stored_hash = split_hash(stored["image_id"].astype(str).tolist(), stored["split"].astype(str).tolist(),
                             canon.summary.get("dataset_options"))  # the options that shaped the labels
    if stored_hash != canon.summary['split_hash']:
        v.problems.append(f"{SPLIT}: its image/subset assignment hashes to {stored_hash}, the canonical split "
                          f"to {canon.summary['split_hash']}")
    want = pd.DataFrame({"image_id": canon.frame["image_id"].astype(str), "patient_id":
                         canon.frame["patient_id"].astype(str), "split": canon.splits.astype(str)})
    for j, label in enumerate(labels):
        want[label] = canon.Y[:, j]
    if list(stored.columns) != list(want.columns):
        v.problems.append(f"{SPLIT}: columns {list(stored.columns)[:6]}... differ from the benchmark's "
                          f"(image_id, patient_id, split, then its {len(labels)} labels)")
    else:
        a = stored.assign(image_id=stored["image_id"].astype(str)).set_index("image_id").sort_index()
        b = want.set_index("image_id").sort_index()
        if not a.index.equals(b.index):
            v.problems.append(f"{SPLIT}: images differ from the canonical split's: missing "
                              f"{examples(b.index.difference(a.index)) or 'none'}, extra "
                              f"{examples(a.index.difference(b.index)) or 'none'}")
        else:
            differs = (a.astype(str) != b.astype(str)).any(axis=1)
            if differs.any():
                v.problems.append(f"{SPLIT}: {int(differs.sum())} images have another patient, subset or "
                                  f"labels than the canonical split: {examples(a.index[differs])}")
    if not v.problems:
        v.passed.append(f"split is canonical (hash {canon.summary['split_hash'][:12]}..., recomputed from the dataset source)")


def check_skips(canon: BenchmarkSplit, skipped: dict[str, str], m: dict[str, Any], registry: Registry,
                 v: Validation) -> None:
    """Each test image the run left out must really be unusable (the reader or preprocessor fails)."""
    from mlbench.preprocessing.images import ImageReadError, read_grayscale

    paths = dict(zip(canon.frame["image_id"].astype(str), canon.frame["image_path"]))
    test = set(canon.frame["image_id"].astype(str)[canon.splits == "test"])
    recipe = m.get("recipe", {})
    name = recipe.get("preprocessor", "resize") if recipe.get("crop", False) else "resize"
    preprocessor = None
    fine = []
    for image_id, reason in skipped.items():
        if image_id not in test:
            continue
        try:
            image = read_grayscale(paths[image_id])
        except (ImageReadError, KeyError):
            continue
        try:
            preprocessor = preprocessor or registry.create("preprocessor", name, size=recipe.get("image_size", 224),
                                                           **recipe.get("preprocessor_options", {}))
            preprocessor(image)
        except Exception:  # noqa: BLE001 - any failure of the run's preprocessor is a real skip
            continue
        fine.append(f"{image_id} ({reason})")
    if fine:
        v.problems.append(f"{SKIPPED}: {len(fine)} test images are listed as skipped but read and preprocess "
                          f"fine: {examples(fine)}")


def check_coverage(run_dir: Path, m: dict[str, Any], canon: BenchmarkSplit, skipped: dict[str, str],
                    v: Validation) -> None:
    test = set(canon.frame["image_id"].astype(str)[canon.splits == "test"])
    want = sorted(test - set(skipped))
    entries = list(m.get("backbones", [])) + list(m.get("ensembles", []))
    try:  # the one validation of a predictions file, asked for the canonical test images x labels
        predictions.read(RunDir(run_dir).predictions_file,
                         [predictions.Coverage("test", want, entries, list(canon.labels))])
    except predictions.PredictionsError as exc:
        v.problems.append(str(exc))  # its test images are the canonical split's less the run's verified skips
        return
    v.passed.append(f"test predictions cover exactly the {len(want)} canonical test images (less "
                    f"{len(set(skipped) & test)} verified skips) and {len(canon.labels)} labels for every entry")


def check_ensembles(stored, m: dict[str, Any], registry: Registry, v: Validation) -> None:
    backbones = list(m.get("backbones", []))
    if not backbones:
        return
    probs = np.stack([stored.scores[b] for b in backbones])
    bad = []
    for name in m.get("ensembles", []):
        try:
            ensemble = registry.create("ensemble", name, threshold=stored.threshold)
        except PluginError as exc:
            v.problems.append(f"ensemble '{name}' cannot be recomputed: {exc}")
            continue
        scores, _ = ensemble.combine(probs)
        if not np.allclose(np.asarray(scores, dtype=float), stored.scores[name], rtol=0, atol=1e-12):
            bad.append(name)
    if bad:
        v.problems.append(f"{PREDICTIONS}: the stored test scores of ensembles {', '.join(bad)} differ from "
                          "the ensembles recomputed from the stored backbone scores")
    elif m.get("ensembles"):
        v.passed.append(f"ensemble scores ({', '.join(m['ensembles'])}) equal their recomputation from the backbones")


def _check_metrics(board: pd.DataFrame, recomputed: pd.DataFrame, check_intervals: bool, settings: str,
                   v: Validation) -> None:
    mine = board.set_index(["entry", "label", "metric"])
    if mine.index.has_duplicates:
        return  # check_rows named the duplicated rows; values of an ambiguous key are not compared
    theirs = recomputed.set_index(["entry", "label", "metric"])
    required = theirs[~theirs.index.get_level_values("label").isin(GROUP_LABELS)]
    missing = required.index.difference(mine.index)
    if len(missing):
        v.problems.append(f"{LEADERBOARD}: lacks {len(missing)} rows mlbench computes, e.g. "
                          f"{examples('/'.join(k) for k in missing)}")
    unknown = mine.index.difference(theirs.index)
    if len(unknown):
        v.problems.append(f"{LEADERBOARD}: {len(unknown)} rows mlbench cannot recompute, e.g. "
                          f"{examples('/'.join(k) for k in unknown)}")
    wrong = []
    for key in mine.index.intersection(theirs.index):
        have, want = mine.loc[key], theirs.loc[key]
        entry, label, metric = key
        if not _close(_num(have["value"]), _num(want["value"])):
            wrong.append(f"entry '{entry}', label '{label}', metric '{metric}': the file says "
                         f"{_num(have['value'])!r}, recomputed {_num(want['value'])!r}")
        if _num(have["n_positive"]) != _num(want["n_positive"]):
            wrong.append(f"entry '{entry}', label '{label}', metric '{metric}': n_positive "
                         f"{_num(have['n_positive'])!r} in the file, {int(want['n_positive'])} recomputed")
        for end in ("ci_low", "ci_high"):
            stored = _num(have[end])
            if stored is None:
                continue  # no interval stored: nothing to verify
            if not check_intervals or not _close(stored, _num(want[end])):
                wrong.append(f"entry '{entry}', label '{label}', metric '{metric}': {end} is {stored!r} in the "
                             f"file, recomputed {_num(want[end])!r} ({settings})")
    if wrong:
        v.problems.append(f"{len(wrong)} metric values differ from mlbench's recomputation (tolerance "
                          f"{TOLERANCE:g}):\n    " + "\n    ".join(wrong[:20])
                          + (f"\n    ... and {len(wrong) - 20} more" if len(wrong) > 20 else ""))
    else:
        v.passed.append(f"all {len(mine)} leaderboard values equal mlbench's recomputation from the predictions"
                        + (f" (intervals too: {settings})" if check_intervals else ""))


def _num(x: Any) -> Any:
    if is_unknown(x):
        return None
    if isinstance(x, (np.integer, int)):
        return int(x)
    return float(x)


def validate_run(run_dir: str | Path, *, source: DataSource | None = None,
                 registry: Registry | None = None, own_board: bool = False) -> Validation:
    """Every check of the module docstring; ``problems`` lists what failed, ``passed`` what held.

    ``source`` replaces the dataset source the manifest records (when the data moved).
    ``own_board``: the run is meant for the benchmark's own board, so a label file that is not one
    of its canonical sources is a problem at once (before the split is recomputed).
    Each step below returns None (or False) after recording a problem that makes the later ones
    meaningless.
    """
    run_dir = Path(run_dir)
    registry = registry or get_registry()
    v = Validation(run_dir)
    rundir = RunDir(run_dir)
    board = read_board(rundir, v)
    if board is None:
        return v
    m = v.manifest
    check_rows(board, m, v)
    bench = installed_benchmark(m, registry, v)
    if bench is None:
        return v
    if source is None:
        source = _recorded_source(rundir, m, v)
        if source is None:
            return v
    if not Path(source.csv).is_file():
        v.problems.append(f"dataset source {source.csv}: no such file, so the split cannot be recomputed; "
                          "pass --csv and --images where the data is now")
        return v
    n_problems = len(v.problems)
    pin = _canonical_pin(bench, source, own_board, v)
    if len(v.problems) > n_problems:
        return v  # an unreadable label file, or one the target board does not take: nothing to recompute
    try:
        canon = canonical_split(m["benchmark"], source, registry, run_dataset_options(m, str(rundir.manifest_file)))
    except UserError as exc:  # the recorded dataset options are not this dataset's
        v.problems.append(str(exc))
        return v
    _check_canonical_split(bench, pin, canon, own_board, v)
    if not _check_data(run_dir, rundir, m, canon, list(canon.labels), registry, v):
        return v
    stored = stored_run(run_dir, canon, list(canon.labels), v)
    if stored is None:
        return v
    check_ensembles(stored, m, registry, v)
    recheck_metrics(board, stored, m, v)
    if v.ok:
        _take_provenance(rundir, m, v)
    return v


def custom_run(benchmark: str, why: str) -> str:
    """The one line refusing a run on a non-canonical label file the benchmark's own board."""
    return (f"{why}, so this is a custom run and does not enter {benchmark}'s own leaderboard; submit it with "
            "--leaderboard PATH to another file")


def _canonical_pin(bench: Any, source: DataSource, own_board: bool, v: Validation) -> CanonicalSource | None:
    """The pin the label file's decompressed content matches (hashed here, never read from the manifest)."""
    v.releases = tuple(pin.release for pin in bench.canonical_sources)
    if not v.releases:
        return None
    try:
        digest = content_sha256(source.csv)
    except DatasetError as exc:
        v.problems.append(str(exc))
        return None
    pin = pin_for(bench, digest)
    if pin is None and own_board:
        v.problems.append(custom_run(bench.name, f"dataset source {source.csv}: the label file is not one of the "
                                                 f"benchmark's canonical releases ({releases(bench)}; its "
                                                 f"decompressed content has sha256 {digest})"))
    return pin


def _check_canonical_split(bench: Any, pin: CanonicalSource | None, canon: BenchmarkSplit, own_board: bool,
                           v: Validation) -> None:
    """A canonical label file counts only when the split recomputed from it is the pinned one."""
    if pin is None:
        return
    recomputed = canon.summary["split_hash"]
    if recomputed == pin.split_hash:
        v.canonical = pin
        v.passed.append(f"label file is the canonical release {pin.release} (content sha256 "
                        f"{pin.content_sha256[:12]}..., split hash as pinned)")
    elif own_board:
        v.problems.append(custom_run(bench.name, f"split hash: the label file is the canonical release "
                                                 f"{pin.release}, but the split recomputed from it is {recomputed}, "
                                                 f"not the pinned {pin.split_hash}"))


def read_board(rundir: RunDir, v: Validation) -> pd.DataFrame | None:
    """The run's files present, its manifest read and its leaderboard's submittable rows (explainer rows left out)."""
    for path in (rundir.manifest_file, rundir.leaderboard_file, rundir.predictions_file, rundir.split_file):
        if not path.is_file():
            v.problems.append(f"{path}: no such file; a finished run directory has {MANIFEST}, {SPLIT}, "
                              f"{PREDICTIONS} and {LEADERBOARD}")
    if v.problems:
        return None
    v.manifest = rundir.manifest()
    try:
        v.table = rundir.leaderboard()
    except leaderboard.LeaderboardError as exc:
        v.problems.append(f"schema: {exc}")
        return None
    board = v.table.to_pandas()
    explained = (board["entry_kind"] == "explainer").to_numpy()
    if explained.any():
        # Heatmap scores (cam_*) would need the checkpoints re-explained: not recomputable from the
        # predictions, so they are not submitted (and said so).
        metrics = ", ".join(sorted(set(board.loc[explained, "metric"])))
        v.left_out.append(f"{int(explained.sum())} explainer rows ({metrics}) are not submitted: mlbench cannot "
                          "recompute them from the run's predictions")
        v.table = v.table.filter(pa.array(~explained))
        board = board[~explained].reset_index(drop=True)
    if board.empty:
        v.problems.append(f"{rundir.leaderboard_file}: no rows")
        return None
    v.passed.append(f"{LEADERBOARD} follows schema version {leaderboard.SCHEMA_VERSION}")
    return board


def installed_benchmark(m: dict[str, Any], registry: Registry, v: Validation) -> Any:
    """The benchmark the run names, as installed (None if it is not); a version other than the run's is a problem."""
    try:
        bench = registry.create("benchmark", m["benchmark"])
    except PluginError as exc:
        v.problems.append(f"benchmark: {exc}")
        return None
    if bench.version != m.get("benchmark_version"):
        v.problems.append(f"benchmark version: the run used {m['benchmark']} {m.get('benchmark_version')}, the "
                          f"installed benchmark is version {bench.version}")
    else:
        v.passed.append(f"benchmark {bench.name} version {bench.version} is the installed one")
    return bench


def _recorded_source(rundir: RunDir, m: dict[str, Any], v: Validation) -> DataSource | None:
    """The dataset source the manifest records, followed only inside the run directory."""
    recorded = m.get("source") if isinstance(m.get("source"), dict) else {}
    try:  # real data outside the run directory is named on the command line
        return DataSource(rundir.resolve(recorded.get("csv"), "the label file", "--csv and --images"),
                          rundir.resolve(recorded.get("images"), "the image folder", "--images"))
    except RunDirError as exc:
        v.problems.append(str(exc))
        return None


def _check_data(run_dir: Path, rundir: RunDir, m: dict[str, Any], canon: BenchmarkSplit, labels: list[str],
                registry: Registry, v: Validation) -> bool:
    """The split, the skips and the coverage against the recomputed split; False if any failed."""
    n_problems = len(v.problems)
    _check_split(run_dir, m, canon, labels, v)
    if len(v.problems) > n_problems:
        return False  # metrics on another split mean nothing
    skipped = rundir.skips("preprocess")
    check_skips(canon, skipped, m, registry, v)
    check_coverage(run_dir, m, canon, skipped, v)
    return len(v.problems) == n_problems


def stored_run(run_dir: Path, canon: BenchmarkSplit, labels: list[str], v: Validation) -> StoredRun | None:
    """The run's stored predictions on the recomputed split (None, with the problems, if unreadable)."""
    split = pd.DataFrame({"image_id": canon.frame["image_id"].astype(str),
                          "patient_id": canon.frame["patient_id"].astype(str), "split": canon.splits})
    for j, label in enumerate(labels):
        split[label] = canon.Y[:, j]
    try:
        return load_stored_run(run_dir, split)
    except StoredRunError as exc:
        v.problems.extend(exc.problems)
        return None


def recheck_metrics(board: pd.DataFrame, stored: StoredRun, m: dict[str, Any], v: Validation) -> None:
    """Every leaderboard value (and interval, where the run has them) against a recomputation."""
    has_intervals = board[["ci_low", "ci_high"]].notna().any().any()
    n_boot, seed = bootstrap_settings(m)
    settings = (f"{n_boot} patient-bootstrap replicates, seed {seed}, "
                + (f"as {MANIFEST} records" if m.get("bootstrap") else f"the defaults: {MANIFEST} records none"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        recomputed = recompute_scores(stored, n_boot=n_boot if has_intervals else 0, seed=seed)
    _check_metrics(board, recomputed, bool(has_intervals), settings, v)


# Columns a row's provenance fills (every column but the measurement itself).
MEASUREMENT = ("entry", "entry_kind", "label", "metric", "value", "ci_low", "ci_high", "n_positive")
# Compared with the rows only to say what was replaced; created_at always differs (row vs run time).
NOT_COMPARED = ("created_at",)


def manifest_provenance(rundir: RunDir, m: dict[str, Any], entries: list[str]) -> dict[str, list[Any]]:
    """Each provenance column, one value per entry in ``entries``, from the manifest alone.

    The runner's own rule: :meth:`RunDir.provenance`, the versions the run recorded, and a backbone
    entry's wall time = its ``train:NAME`` stage (null for ensembles)."""
    base = rundir.provenance(m)
    versions = m.get("versions") if isinstance(m.get("versions"), dict) else {}
    base["mlbench_version"] = versions.get("mlbench", base["mlbench_version"])
    base["created_at"] = m.get("finished_at") or m.get("created_at")
    stages = m.get("stages") if isinstance(m.get("stages"), dict) else {}
    backbones = set(m.get("backbones", []))

    def wall(entry: str) -> Any:
        stage = stages.get(f"train:{entry}") if entry in backbones else None
        return stage.get("seconds") if isinstance(stage, dict) else None

    out = {column: [base.get(column)] * len(entries) for column in leaderboard.COLUMNS if column not in MEASUREMENT}
    out["wall_time_s"] = [wall(e) for e in entries]
    return out


def _take_provenance(rundir: RunDir, m: dict[str, Any], v: Validation) -> None:
    """Every provenance column of the submitted rows from manifest.json, never from the rows: they are
    not recomputable, so the board carries the record submit checked. A row that said otherwise is
    not refused (a score is what is verified), but the replacement is reported."""
    table = v.table
    entries = table.column("entry").to_pylist()
    try:
        fresh = manifest_provenance(rundir, m, entries)
        replaced = []
        for column, values in fresh.items():
            array = pa.array(values, type=leaderboard.SCHEMA.field(column).type)
            old = table.column(column)
            if column not in NOT_COMPARED:
                same = pc.fill_null(pc.equal(old, array), False).to_numpy(zero_copy_only=False)
                both_null = pc.and_(old.is_null(), array.is_null()).to_numpy(zero_copy_only=False)
                n = int((~(same | both_null)).sum())
                if n:
                    replaced.append(f"{column} ({n} rows)")
            table = table.set_column(table.schema.get_field_index(column), column, array)
    except (KeyError, TypeError, ValueError, pa.ArrowException) as exc:
        v.problems.append(f"{MANIFEST}: cannot give the rows their provenance ({type(exc).__name__}: a field "
                          "is missing or of the wrong type); expected the manifest `mlbench run` writes")
        return
    v.table = table
    v.passed.append(f"provenance (run id, seed, versions, device, wall times, ...) is {MANIFEST}'s"
                    + (f"; replaced what the rows said in {', '.join(replaced)}" if replaced else ""))


# -- appending -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the leaderboard's folder (no stray lock file beside the leaderboards)."""
    make_parent(path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot open its folder {path.parent} ({os_reason(exc)})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise OutputPathError(f"{path}: cannot lock its folder {path.parent} ({os_reason(exc)})") from None
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def check_target(path: str | Path) -> Path:
    """Refuse, before any expensive check, a leaderboard path that can never be a file to append to."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: is a folder; expected a leaderboard file to append to (e.g. "
                              f"{path / 'board.parquet'})")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputPathError(f"{path}: cannot write here, {blocker} is a file; expected a folder")
    return path


def append_to_leaderboard(path: str | Path, table: pa.Table) -> int:
    """Append one run's rows to ``path`` under the lock; returns the number of rows now in the file.

    Refuses (``SubmissionError``) a run id already present, another benchmark's file, synthetic rows
    into the benchmark's own board or a file holding published or real rows, and real rows into a
    file of synthetic ones.
    """
    path = Path(path)
    table = leaderboard.validate_table(table, where="submitted rows")
    run_ids = set(table.column("run_id").to_pylist())
    kinds = set(table.column("dataset_kind").to_pylist())
    benchmarks = set(table.column("benchmark").to_pylist())
    if len(run_ids) != 1 or len(benchmarks) != 1:
        raise SubmissionError([f"one submission is one run of one benchmark; got run ids {sorted(run_ids)}, "
                               f"benchmarks {sorted(benchmarks)}"])
    synthetic = any(is_synthetic(k) for k in kinds)
    if synthetic and _is_own_board(path, next(iter(benchmarks))):
        raise SubmissionError([f"{path}: {SYNTHETIC_ONLY_NAMED}"])
    with _folder_lock(path):
        existing = leaderboard.read(path) if path.exists() else None
        if existing is not None and existing.num_rows:
            old = existing.select(["run_id", "dataset_kind", "benchmark", "source"]).to_pandas()
            (run_id,) = run_ids
            if (old["run_id"] == run_id).any():
                raise SubmissionError([f"{path}: run {run_id} is already in this leaderboard; nothing appended"])
            other = set(old["benchmark"]) - benchmarks
            if other:
                raise SubmissionError([f"{path}: holds benchmark {examples(other)}, the run is "
                                       f"{next(iter(benchmarks))}; use that benchmark's leaderboard"])
            old_synthetic = set(old["dataset_kind"]) == {SYNTHETIC_KIND} and not (old["source"] == "published").any()
            if synthetic != old_synthetic:
                what = SYNTHETIC_KIND if synthetic else "real"
                held = "only synthetic rows" if old_synthetic else "published or real rows"
                raise SubmissionError([f"{path}: holds {held}; a {what} run does not mix with them"])
            combined = pa.concat_tables([existing, table])
        else:
            combined = _seeded(path, table)
        leaderboard.write(path, combined)
        return combined.num_rows


def _is_own_board(path: Path, benchmark: str) -> bool:
    """The benchmark's default board (where ``submit`` appends without --leaderboard)."""
    return path.resolve() == leaderboard.local_board(benchmark).resolve()


def _seeded(path: Path, table: pa.Table) -> pa.Table:
    """A new board of a benchmark's own starts with its published rows, so runs sit beside them."""
    (benchmark,) = set(table.column("benchmark").to_pylist())
    if not _is_own_board(path, benchmark) or any(is_synthetic(k) for k in table.column("dataset_kind").to_pylist()):
        return table
    published = leaderboard.published_board(benchmark)
    if published is None:
        return table
    return pa.concat_tables([leaderboard.read(published), table])


@dataclass
class SubmitResult:
    leaderboard: Path
    run_id: str
    rows_appended: int
    rows_in_file: int
    validation: Validation


def submit_run(run_dir: str | Path, leaderboard_file: str | Path | None = None, *,
               source: DataSource | None = None, registry: Registry | None = None) -> SubmitResult:
    """Validate RUN_DIR and append its rows to ``leaderboard_file`` (default: the benchmark's own board,
    :func:`mlbench.results.leaderboard.local_board`). Raises ``SubmissionError`` with every problem found."""
    rundir = RunDir(run_dir)
    # Refuse a synthetic run's wrong destination before the expensive checks (the manifest cannot
    # hide a synthetic corpus: validation compares its dataset_kind with the reader's).
    claimed = rundir.manifest() if rundir.exists() else {}
    if is_synthetic(claimed.get("dataset_kind")):
        if leaderboard_file is None or _is_own_board(Path(leaderboard_file), str(claimed.get("benchmark"))):
            raise SubmissionError([f"--leaderboard: {SYNTHETIC_ONLY_NAMED}"])
    if leaderboard_file is not None:
        check_target(leaderboard_file)
    elif isinstance(claimed.get("benchmark"), str):
        check_target(leaderboard.local_board(claimed["benchmark"]))
    own = leaderboard_file is None or _is_own_board(Path(leaderboard_file), str(claimed.get("benchmark")))
    v = validate_run(rundir.path, source=source, registry=registry, own_board=own)
    if not v.ok:
        raise SubmissionError(v.problems)
    m = v.manifest
    target = check_target(leaderboard_file if leaderboard_file is not None else leaderboard.local_board(m["benchmark"]))
    # Decided again on what validation found (the manifest read there, the content hashed there).
    if v.releases and v.canonical is None and _is_own_board(target, str(m["benchmark"])):
        raise SubmissionError([custom_run(str(m["benchmark"]), f"{target}: the label file is not one of the "
                                                               f"benchmark's canonical releases "
                                                               f"({', '.join(v.releases)})")])
    total = append_to_leaderboard(target, v.table)
    return SubmitResult(target, str(m["run_id"]), v.table.num_rows, total, v)
