"""A finished run's test scores read back from its files, and its metrics recomputed from them.

``submit`` recomputes every value it accepts, ``compare`` recomputes intervals a run lacks, and
paired comparisons read two runs' scores on the same test images: all through this module, which
reads only what :class:`mlbench.results.rundir.RunDir` gives it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from mlbench.foundations.errors import UserError
from mlbench.results import predictions, thresholds
from mlbench.results.paired import BootstrapDifferences, paired_differences
from mlbench.results.metrics import MetricWarning
from mlbench.data.splits import split_labels
from mlbench.results.rundir import SPLIT_KEY_COLUMNS, RunDir
from mlbench.results.stats import STORED_METRICS, EntryReplicates, entry_statistics

DEFAULT_N_BOOT = 1000
DEFAULT_BOOT_SEED = 0


class StoredRunError(UserError, ValueError):
    """A run's stored predictions do not cover what its split says (``problems`` lists each gap)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass
class StoredRun:
    """A finished run's test-split arrays, read back from its files."""

    run_dir: Path
    manifest: dict[str, Any]
    labels: list[str]
    test_ids: list[str]
    patient_ids: list[str]
    y: np.ndarray  # (test images, labels) 0/1
    train_counts: np.ndarray  # positives per label in the training images the run could use
    entries: dict[str, str]  # entry -> entry_kind, in the run's order
    scores: dict[str, np.ndarray]  # entry -> (test images, labels)
    threshold: float
    skipped: dict[str, str] = field(default_factory=dict)  # image id -> reason (preprocessing)
    threshold_rule: str = "fixed"
    y_val: np.ndarray | None = None  # validation labels and scores: what tuned thresholds are fitted on
    val_scores: dict[str, np.ndarray] = field(default_factory=dict)
    known: np.ndarray | None = None  # test cells whose label is known (None: all of them; split.parquet's nulls)
    known_val: np.ndarray | None = None
    # (n_boot, seed) -> what RunDir.read_replicates gave for those draws (stored_replicates reads it once)
    replicate_store: dict[tuple[int, int], list[EntryReplicates]] = field(default_factory=dict, repr=False)


def bootstrap_settings(manifest: dict[str, Any]) -> tuple[int, int]:
    """(n_boot, seed) the run's intervals were computed with (``manifest["bootstrap"]``, else the defaults)."""
    settings = manifest.get("bootstrap") or {}
    return int(settings.get("n_boot", DEFAULT_N_BOOT)), int(settings.get("seed", DEFAULT_BOOT_SEED))


def load_stored_run(run_dir: str | Path, split: pd.DataFrame | None = None) -> StoredRun:
    """Read RUN_DIR's test labels (``split``, default its split.parquet) and every entry's test scores."""
    rundir = RunDir(run_dir)
    m = rundir.manifest()
    if split is None:
        split = rundir.split()
    labels = [c for c in split.columns if c not in SPLIT_KEY_COLUMNS]
    skipped = rundir.skips("preprocess")
    usable = ~split["image_id"].astype(str).isin(skipped)
    test = split[(split["split"] == "test") & usable]
    train = split[(split["split"] == "train") & usable]
    entries = {**{b: "backbone" for b in m.get("backbones", [])}, **{e: "ensemble" for e in m.get("ensembles", [])}}
    rule = str(m.get("recipe", {}).get("threshold_rule", "fixed"))
    subsets = {"test": test} if rule == "fixed" else {"test": test, "val": split[(split["split"] == "val") & usable]}
    wanted = {s: rows["image_id"].astype(str).tolist() for s, rows in subsets.items()}
    try:  # every (image, label) of each subset the scores are read for, valid probabilities
        stored = predictions.read(rundir.predictions_file,
                                  [predictions.Coverage(s, ids, list(entries), labels) for s, ids in wanted.items()])
    except predictions.PredictionsError as exc:
        raise StoredRunError([str(exc)]) from None
    scores = {s: {entry: predictions.wide(stored[stored["split"] == s], entry, ids, labels) for entry in entries}
              for s, ids in wanted.items()}
    ids = test["image_id"].astype(str).tolist()
    y, known = split_labels(test, labels)  # a null label cell is unknown
    y_val, known_val = split_labels(subsets["val"], labels) if "val" in subsets else (None, None)
    return StoredRun(run_dir=rundir.path, manifest=m, labels=labels, test_ids=ids,
                     patient_ids=test["patient_id"].astype(str).tolist(),
                     y=y, train_counts=split_labels(train, labels)[0].sum(axis=0),
                     entries=entries, scores=scores["test"], threshold=float(m["recipe"]["threshold"]),
                     skipped=skipped, threshold_rule=rule, y_val=y_val, val_scores=scores.get("val", {}),
                     known=known, known_val=known_val)


def score_entries(entries: Iterable[tuple[str, str, np.ndarray, np.ndarray, np.ndarray | None]], y: np.ndarray,
                  patients: Sequence[str], labels: Sequence[str], *, train_counts: np.ndarray, n_boot: int, seed: int,
                  threshold_rule: str = "fixed", y_val: np.ndarray | None = None,
                  known: np.ndarray | None = None, known_val: np.ndarray | None = None,
                  replicates: dict[str, EntryReplicates] | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """The one scoring loop (``mlbench run``'s metrics stage and every recomputation): each entry's rows.

    ``entries``: (name, kind, test scores, test decisions, validation scores). With ``val-f1`` each
    entry's tuned rows follow its own, their thresholds fitted on the validation labels only; the
    second value gives those thresholds per entry and label. ``known`` / ``known_val``: False at the test /
    validation cells whose label is unknown (None: every cell known). ``replicates``, when given, receives
    each entry's replicates (at its own decisions) for :meth:`RunDir.write_replicates`."""
    out, fitted = [], {}
    for name, kind, scores, decided, val_scores in entries:
        rows, kept = entry_statistics(y, scores, decided, patients, labels, train_counts=train_counts,
                                      n_boot=n_boot, seed=seed, known=known)
        if replicates is not None and kept is not None:
            replicates[name] = kept
        if threshold_rule == "val-f1":
            chosen, extra = thresholds.tuned_rows(y_val, val_scores, y, scores, patients, labels,
                                                  train_counts=train_counts, n_boot=n_boot, seed=seed,
                                                  known_val=known_val, known_test=known)
            fitted[name] = dict(zip(labels, map(float, chosen)))
            rows += extra
        out.extend({"entry": name, "entry_kind": kind, **row} for row in rows)
    return out, fitted


def recompute_scores(stored: StoredRun, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Every leaderboard metric of every entry, with intervals, recomputed from the stored arrays."""
    entries = [(entry, kind, stored.scores[entry], (stored.scores[entry] >= stored.threshold).astype(np.uint8),
                stored.val_scores.get(entry)) for entry, kind in stored.entries.items()]
    rows, _ = score_entries(entries, stored.y, stored.patient_ids, stored.labels, train_counts=stored.train_counts,
                            n_boot=n_boot, seed=seed, threshold_rule=stored.threshold_rule, y_val=stored.y_val,
                            known=stored.known, known_val=stored.known_val)
    return pd.DataFrame(rows)


def recompute_run(run_dir: str | Path, *, n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_BOOT_SEED) -> pd.DataFrame:
    """Recompute RUN_DIR's metrics and 95% CIs from its predictions and split.parquet."""
    stored = load_stored_run(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)  # absent labels are NaN by design
        return recompute_scores(stored, n_boot=n_boot, seed=seed)


# -- two stored runs on the same test images ------------------------------------------------------------
def decisions(stored: StoredRun, entry: str) -> np.ndarray:
    """The entry's test decisions: at the tuned thresholds when the run fitted them, else at its threshold."""
    fitted = stored.manifest.get("thresholds", {}).get("per_entry", {}).get(entry)
    if stored.threshold_rule == "val-f1" and fitted:
        return thresholds.apply(stored.scores[entry], np.array([fitted[label] for label in stored.labels]))
    return (stored.scores[entry] >= stored.threshold).astype(np.uint8)


def write_replicates(run_dir: str | Path, replicates: dict[str, EntryReplicates], *, n_boot: int, seed: int) -> None:
    """Keep each entry's replicates in RUN_DIR (:meth:`RunDir.write_replicates`) for later paired comparisons."""
    RunDir(run_dir).write_replicates({name: (r.key, r.values) for name, r in replicates.items()}, STORED_METRICS,
                                     n_boot=n_boot, seed=seed)


def stored_replicates(stored: StoredRun, *, n_boot: int, seed: int) -> list[EntryReplicates]:
    """The replicates the run's metrics stage kept for these draws, read once per StoredRun; [] when none fit.

    The file is read as hostile (:meth:`RunDir.read_replicates`), and a comparison uses an entry's arrays
    only where their key is that of its own inputs (:func:`mlbench.results.paired.paired_differences`).
    Only for runs one trusts as one's own (a grid's cells): a file that fits is taken at its word.
    """
    draws = (int(n_boot), int(seed))
    if draws not in stored.replicate_store:
        found = RunDir(stored.run_dir).read_replicates(STORED_METRICS, n_boot=n_boot, seed=seed,
                                                       n_labels=len(stored.labels))
        stored.replicate_store[draws] = [EntryReplicates(key, values) for key, values in found.items()]
    return stored.replicate_store[draws]


def compare_stored(a: StoredRun, b: StoredRun, *, n_boot: int, seed: int = 0) -> dict[str, BootstrapDifferences]:
    """Per entry both runs have: B - A with paired patient-bootstrap CIs on their shared test images.

    Replicates offered to the shared cache (:meth:`mlbench.results.paired.ReplicateCache.offering`, as a
    grid offers its own cells' :func:`stored_replicates`) are used where they fit; a run's file is never
    read here, so a bundle someone else sent is always recomputed."""
    if a.test_ids != b.test_ids or a.labels != b.labels:
        raise StoredRunError([f"{b.run_dir} and {a.run_dir} were not scored on the same test images and labels "
                              "(another split, or other skips); a paired comparison needs the same ones"])
    known_a, known_b = (np.ones(np.shape(r.y), dtype=bool) if r.known is None else r.known for r in (a, b))
    if not np.array_equal(known_a, known_b):  # e.g. one uncertainty policy leaves cells unknown, the other not
        differ = np.flatnonzero((known_a != known_b).any(axis=1))
        j = int(np.flatnonzero((known_a != known_b)[differ[0]])[0])
        which = (f"{int((~known_a).sum())} unknown test label cells in {a.run_dir}, {int((~known_b).sum())} in "
                 f"{b.run_dir}")
        raise StoredRunError([f"{b.run_dir} and {a.run_dir} have the same test images but other test labels: "
                              f"{which}; {len(differ)} images differ in which cells are known, e.g. "
                              f"{a.test_ids[differ[0]]} label '{a.labels[j]}' (known in "
                              f"{a.run_dir if known_a[differ[0], j] else b.run_dir} only; another dataset option "
                              "such as an uncertainty policy); a paired comparison needs the same test labels"])
    if not np.array_equal(a.y, b.y):  # same images, other labels: e.g. another uncertainty policy
        differ = np.flatnonzero((np.asarray(a.y) != np.asarray(b.y)).any(axis=1))
        raise StoredRunError([f"{b.run_dir} and {a.run_dir} have the same test images but other test labels "
                              f"({len(differ)} images differ, e.g. {a.test_ids[differ[0]]}; another dataset option "
                              "such as an uncertainty policy); a paired comparison needs the same test labels"])
    out = {}
    for entry in (e for e in a.entries if e in b.entries):
        out[entry] = paired_differences(a.y, a.scores[entry], b.scores[entry], decisions(a, entry),
                                        decisions(b, entry), a.patient_ids, a.labels, a.train_counts,
                                        n_boot=n_boot, seed=seed, known=a.known)
    if not out:
        raise StoredRunError([f"{a.run_dir} and {b.run_dir} share no entry (backbone or ensemble) to compare"])
    return out
