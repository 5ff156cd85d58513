"""``mlbench verify BUNDLE --csv LABELFILE``: a board keeper's check of a bundle, believing nothing it says.

The keeper brings the label file (and, to check the models, the images). From those alone mlbench
recomputes the split, the coverage, every ensemble, every metric and every interval, and compares
them with what the bundle claims. Each check is named; the verdict lists each one that failed in
one line, what passed, and what could not be checked (no images, no weights).

Checks, in order (a failed early one makes the later meaningless, so they stop there):

``bundle``       the archive is well formed and every member has its indexed sha256 (:mod:`bundle`)
``benchmark``    the installed benchmark is the bundle's, at its version
``label-file``   the keeper's label file is one of the benchmark's canonical releases (or the board's
                 pinned file), and the split recomputed from it has the pinned hash
``real-data``    the label file is not a synthetic demo corpus (unless the board is a synthetic one)
``split``        the bundle was made on that split (its hash, and its test images are the split's)
``skips``        each test image the run left out is really unusable (needs ``--images``)
``coverage``     test predictions for every test image x label of every entry, nothing else
``ensembles``    every ensemble equals its recomputation from the backbones' scores
``metrics``      every claimed row (value, n_positive, CI) equals mlbench's recomputation
``models``       with ``--images`` and weights in the bundle: a seeded sample of test images re-inferred
                 with the bundle's weights gives the bundle's probabilities (:data:`DEFAULT_TOLERANCE`)

The rows a board accepts carry the manifest's provenance, never what the rows said
(:func:`mlbench.judging.submit.manifest_provenance`).
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from mlbench.contracts.registry import Registry, get_registry
from mlbench.data import DataSource, Skip
from mlbench.data.canonical import content_sha256, pin_for
from mlbench.data.datasetoptions import read_dataset
from mlbench.data.splits import BenchmarkSplit, split_benchmark, split_table
from mlbench.demo import is_synthetic
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import sha256_file, write_json
from mlbench.foundations.options import shown
from mlbench.judging import submit
from mlbench.judging.bundle import Bundle, BundleError, open_bundle
from mlbench.results import leaderboard, predictions
from mlbench.results.metrics import MetricWarning
from mlbench.results.rundir import RunDir

VERDICT_FORMAT = "mlbench-verdict"
VERDICT_VERSION = 1
EXTERNAL_RUN_ID = "external-"  # + the bundle's sha256: an external bundle names no run
DEFAULT_SAMPLE = 64  # test images re-inferred per backbone
# Largest |p_bundle - p_reinferred| accepted: what a GPU under autocast and a CPU in float32 differ by
# on the same weights is well below this; a prediction not made by the model is far above it.
DEFAULT_TOLERANCE = 1e-2


class VerifyError(UserError):
    """A mistake in the keeper's own command (a missing label file): nothing about the bundle."""


@dataclass
class Check:
    name: str
    ok: bool
    details: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "details": list(self.details)}


@dataclass
class Verdict:
    """What ``verify`` found. ``rows`` are the rows a board takes (None unless accepted)."""

    bundle: Path
    bundle_sha256: str
    checks: list[Check] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # benchmark, version, run id, label file: as verified
    rows: pa.Table | None = None

    @property
    def accepted(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        """One line per failed check."""
        return [f"{c.name}: " + "; ".join(" ".join(line.strip() for line in d.splitlines()) for d in c.details)
                for c in self.checks if not c.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"format": VERDICT_FORMAT, "format_version": VERDICT_VERSION, "bundle_sha256": self.bundle_sha256,
                "accepted": self.accepted, **self.facts, "checks": [c.as_dict() for c in self.checks],
                "not_checked": list(self.not_checked)}

    def write(self, path: str | Path) -> Path:
        write_json(path, self.as_dict())
        return Path(path)


@dataclass
class Keeper:
    """What the keeper brings: the label file, optionally the images and sealed test labels, and the board's rules."""

    csv: Path
    images: Path | None = None
    labels: Path | None = None  # a private label file of the same dataset: the truth for the test images
    pinned_sha256: str | None = None  # a board pinned to one label file (a benchmark without canonical releases)
    allow_synthetic: bool = False  # a board of demo runs (its pages say synthetic everywhere)
    sample: int = DEFAULT_SAMPLE
    tolerance: float = DEFAULT_TOLERANCE


def check_keeper(keeper: Keeper) -> None:
    """The keeper's own files exist: checked before the bundle is opened."""
    for option, path, what in (("--csv", keeper.csv, "file"), ("--labels", keeper.labels, "file"),
                               ("--images", keeper.images, "folder")):
        if path is None:
            continue
        ok = Path(path).is_file() if what == "file" else Path(path).is_dir()
        if not ok:
            raise VerifyError(f"{option} {path}: no such {what}; expected the "
                              + ("benchmark's label file" if option == "--csv" else
                                 "private label file of the test images" if option == "--labels" else
                                 "folder the label file's image paths are relative to"))
    if keeper.sample < 0 or not (0 < keeper.tolerance < 1):
        raise VerifyError(f"--sample {keeper.sample} / --tolerance {keeper.tolerance}: expected a sample of 0 or "
                          "more images and a tolerance between 0 and 1")


def verify_bundle(path: str | Path, keeper: Keeper, *, registry: Registry | None = None) -> Verdict:
    """Every check of the module docstring on the bundle at ``path``; never raises for the bundle's faults."""
    check_keeper(keeper)
    registry = registry or get_registry()
    path = Path(path)
    try:
        bundle = open_bundle(path)
    except BundleError as exc:
        verdict = Verdict(path, sha256_file(path) if path.is_file() else "")
        verdict.checks.append(Check("bundle", False, [str(exc)]))
        return verdict
    verdict = Verdict(path, bundle.sha256)
    verdict.checks.append(Check("bundle", True, [f"{len(bundle.index.get('members', {}))} members, each with its "
                                                 "indexed sha256"]))
    with tempfile.TemporaryDirectory(prefix="mlbench-verify-") as scratch:
        _Verification(bundle, keeper, registry, verdict, Path(scratch)).run()
    return verdict


def accepted_rows(bundle: Bundle) -> pa.Table:
    """The rows a board takes from a verified bundle: its claimed rows less those mlbench cannot recompute
    (explainer scores), each provenance column from the bundle's manifest whatever the rows said."""
    table = bundle.leaderboard()
    if table is None:
        raise BundleError(f"{bundle.path}: claims no leaderboard rows")
    kinds = table.column("entry_kind").to_numpy(zero_copy_only=False)
    table = table.filter(pa.array(kinds != "explainer"))
    entries = table.column("entry").to_pylist()
    try:
        fresh = submit.manifest_provenance(RunDir(bundle.path.parent), bundle.manifest, entries)
        for column, values in fresh.items():
            table = table.set_column(table.schema.get_field_index(column), column,
                                     pa.array(values, type=leaderboard.SCHEMA.field(column).type))
    except (KeyError, TypeError, ValueError, pa.ArrowException):
        raise BundleError(f"{bundle.path}: its manifest cannot give the rows their provenance (a field is missing "
                          "or of the wrong type)") from None
    return table


def preprocess_skips(bundle: Bundle) -> dict[str, str]:
    """Image id -> reason for each image the bundle's run could not preprocess."""
    return {str(k): str(r) for k, r in dict(bundle.skipped.get("preprocess", {})).items()}


def lay_out(bundle: Bundle, rundir: RunDir, split: BenchmarkSplit) -> RunDir:
    """The bundle's run as a run directory (in a new folder): its manifest, predictions, claimed rows and skips,
    with ``split`` (the keeper's, never the bundle's), so the checks and comparisons of run directories apply."""
    rundir.path.mkdir(parents=True)
    manifest = {**bundle.manifest, "skipped": {"counts": {}, "items": [], "total": 0}}  # refilled below
    write_json(rundir.manifest_file, manifest)
    rundir.write_split(split_table(split.frame, split.Y, split.splits, split.labels))
    predictions.write(rundir.predictions_file, [predictions.from_frame(bundle.predictions())])
    claimed = bundle.leaderboard()
    if claimed is not None:
        leaderboard.write(rundir.leaderboard_file, claimed)
    rundir.record_skips("preprocess", [Skip(item, reason) for item, reason in preprocess_skips(bundle).items()])
    return rundir


class _Verification:
    """One bundle against one keeper's files. The bundle's run is laid out as a run directory in a
    scratch folder, with the split the keeper's label file gives, so the checks ``submit`` makes on
    a run directory run unchanged."""

    def __init__(self, bundle: Bundle, keeper: Keeper, registry: Registry, verdict: Verdict, scratch: Path) -> None:
        self.bundle, self.keeper, self.registry, self.verdict = bundle, keeper, registry, verdict
        self.rundir = RunDir(scratch / "run")
        self.m = dict(bundle.manifest)

    def step(self, name: str, work: Callable[[submit.Validation], Any]) -> Any:
        """Run one check on a fresh Validation; record it; return what ``work`` returned (None if it failed)."""
        v = submit.Validation(self.rundir.path, manifest=self.m)
        try:
            out = work(v)
        except UserError as exc:  # a member that reads but does not hold what the format says
            v.problems.append(str(exc))
            out = None
        self.verdict.checks.append(Check(name, v.ok, v.problems if not v.ok else v.passed))
        return out if v.ok else None

    def run(self) -> None:
        bench = self.step("benchmark", lambda v: submit.installed_benchmark(self.m, self.registry, v))
        if bench is None:
            return
        self.verdict.facts.update(benchmark=bench.name, benchmark_version=bench.version,
                                  run_id=str(self.m.get("run_id", "")), kind=self.bundle.kind)
        canon = self.step("label-file", lambda v: self.label_file(bench, v))
        if canon is None or not self.step("real-data", lambda v: self.real_data(canon, v)):
            return
        if self.bundle.kind == "external":
            self.verdict.rows = self.step("scores", lambda v: self.score_external(bench, v))
            return
        canon = self.step("split", lambda v: self.split(bench, canon, v))
        if canon is None:
            return
        board = self.step("claimed rows", lambda v: self.claimed_rows(v))
        if board is None:
            return
        skipped = self.bundle_skips()
        if not self.step("skips", lambda v: self.skips(canon, skipped, v)):
            return
        if not self.step("coverage", lambda v: self.coverage(canon, skipped, v)):
            return
        stored = self.step("scores", lambda v: submit.stored_run(self.rundir.path, canon, list(canon.labels), v))
        if stored is None:
            return
        self.step("ensembles", lambda v: submit.check_ensembles(stored, self.m, self.registry, v) or True)
        self.step("metrics", lambda v: submit.recheck_metrics(board, stored, self.m, v) or True)
        self.models(bench, canon, stored)
        if self.verdict.accepted:
            self.verdict.rows = self.step("provenance", lambda v: accepted_rows(self.bundle))

    # -- the label file and the split -------------------------------------------------------------------
    def dataset_options(self) -> dict[str, Any]:
        """The dataset options the bundle's run was read with: the keeper's file is read the same way."""
        return submit.run_dataset_options(self.m, f"{self.bundle.path}: manifest")

    def label_file(self, bench: Any, v: submit.Validation) -> BenchmarkSplit | None:
        keeper = self.keeper
        digest = content_sha256(keeper.csv)
        pin = pin_for(bench, digest)
        releases = ", ".join(p.release for p in bench.canonical_sources)
        if keeper.pinned_sha256 is not None:
            if digest != keeper.pinned_sha256:
                v.problems.append(f"--csv {keeper.csv}: its content sha256 is {digest[:12]}..., the board is pinned "
                                  f"to {keeper.pinned_sha256[:12]}...")
                return None
        elif pin is None:
            v.problems.append(f"--csv {keeper.csv}: not one of {bench.name}'s canonical label files "
                              f"({releases or 'it declares none: pin the board to a label file'})")
            return None
        source = DataSource(Path(keeper.csv), Path(keeper.images) if keeper.images else Path(keeper.csv).parent)
        try:
            canon = submit.canonical_split(bench.name, source, self.registry, self.dataset_options())
        except UserError as exc:  # the run's recorded dataset options are not this dataset's
            v.problems.append(str(exc))
            return None
        if pin is not None and canon.summary["split_hash"] != pin.split_hash:
            v.problems.append(f"--csv {keeper.csv}: the split recomputed from {pin.release} hashes to "
                              f"{canon.summary['split_hash'][:12]}..., pinned {pin.split_hash[:12]}... (another "
                              "iterative-stratification or numpy?)")
            return None
        self.verdict.facts["label_file"] = {"release": pin.release if pin else None, "content_sha256": digest}
        v.passed.append(f"label file is {pin.release if pin else 'the board’s pinned file'} (content sha256 "
                        f"{digest[:12]}...), split hash {canon.summary['split_hash'][:12]}...")
        return canon

    def real_data(self, canon: BenchmarkSplit, v: submit.Validation) -> bool:
        kind = canon.summary["dataset_kind"]
        if is_synthetic(kind) and not self.keeper.allow_synthetic:
            v.problems.append(f"--csv {self.keeper.csv}: is a synthetic demo corpus; only a synthetic board takes it")
            return False
        v.passed.append(f"dataset kind '{kind}', as the dataset reader says")
        self.verdict.facts["dataset_kind"] = kind
        return True

    def split(self, bench: Any, canon: BenchmarkSplit, v: submit.Validation) -> BenchmarkSplit | None:
        if self.m.get("split_hash") != canon.summary["split_hash"]:
            v.problems.append(f"the bundle's run used split {str(self.m.get('split_hash'))[:12]}..., the label file "
                              f"gives {canon.summary['split_hash'][:12]}...")
            return None
        if self.keeper.labels is not None:
            canon = self.sealed(bench, canon, v)
            if canon is None:
                return None
        lay_out(self.bundle, self.rundir, canon)
        v.passed.append(f"split {canon.summary['split_hash'][:12]}... recomputed from the keeper's label file")
        return canon

    def sealed(self, bench: Any, canon: BenchmarkSplit, v: submit.Validation) -> BenchmarkSplit | None:
        """The canonical split with its test labels taken from the keeper's private label file."""
        private = split_benchmark(read_dataset(self.registry, bench.dataset, DataSource(
            Path(self.keeper.labels), Path(self.keeper.labels).parent), self.dataset_options()), bench)
        truth = pd.DataFrame(private.Y, index=private.frame["image_id"].astype(str).to_numpy())
        ids = canon.frame["image_id"].astype(str).to_numpy()
        test = canon.splits == "test"
        missing = sorted(set(ids[test]) - set(truth.index))
        if missing:
            v.problems.append(f"--labels {self.keeper.labels}: lacks {len(missing)} test images, e.g. "
                              f"{submit.examples(missing)}")
            return None
        Y = canon.Y.copy()
        Y[test] = truth.loc[ids[test]].to_numpy(dtype=Y.dtype)
        v.passed.append(f"test labels of {int(test.sum())} images from the private label file")
        return dataclasses.replace(canon, Y=Y)

    def bundle_skips(self) -> dict[str, str]:
        return preprocess_skips(self.bundle)

    def score_external(self, bench: Any, v: submit.Validation) -> pa.Table | None:
        """An external bundle claims no rows: mlbench scores its predictions as ``mlbench score`` does, and those
        are the rows a board takes (nothing to compare, no weights to re-infer)."""
        from mlbench.judging.score import score_predictions
        from mlbench.results.external import write_external

        if self.keeper.labels is not None:
            v.problems.append("--labels: sealed labels score runs' bundles; score external predictions with "
                              "mlbench score FILE --csv PRIVATE.csv")
            return None
        self.rundir.path.mkdir(parents=True, exist_ok=True)
        file = write_external(self.rundir.path / "external.parquet", self.bundle.predictions())
        result = score_predictions(file, bench.name, self.keeper.csv, images=self.keeper.images,
                                   registry=self.registry)
        self.verdict.facts["run_id"] = EXTERNAL_RUN_ID + self.bundle.sha256[:12]
        self.verdict.not_checked.append("models: an external bundle has no weights; every row is mlbench's own "
                                        "scoring of its predictions")
        table = result.table
        for column, value in (("run_id", self.verdict.facts["run_id"]),
                              ("created_at", str(self.m.get("created_at", "")))):
            field = leaderboard.SCHEMA.field(column)
            table = table.set_column(table.schema.get_field_index(column), field,
                                     pa.array([value] * table.num_rows, type=field.type))
        v.passed.append(f"{result.n_test} test images x {len(bench.labels)} labels of {len(result.entries)} "
                        "entries scored on the keeper's split" + (f"; {'; '.join(result.notes)}" if result.notes
                                                                  else ""))
        return table

    # -- the predictions -----------------------------------------------------------------------------
    def claimed_rows(self, v: submit.Validation) -> pd.DataFrame | None:
        if self.bundle.leaderboard() is None:
            v.problems.append("the bundle claims no leaderboard rows (an external bundle is scored, not verified: "
                              "mlbench score)")
            return None
        board = submit.read_board(self.rundir, v)
        if board is None:
            return None
        self.table = v.table
        submit.check_rows(board, self.m, v)
        return board if v.ok else None

    def skips(self, canon: BenchmarkSplit, skipped: dict[str, str], v: submit.Validation) -> bool:
        test = set(canon.frame["image_id"].astype(str)[canon.splits == "test"])
        claimed = sorted(set(skipped) & test)
        if claimed and self.keeper.images is None:
            v.problems.append(f"{len(claimed)} test images are claimed unusable ({submit.examples(claimed)}); "
                              "pass --images to check them")
            return False
        submit.check_skips(canon, skipped, self.m, self.registry, v)
        if v.ok:
            v.passed.append(f"{len(claimed)} test images left out, each really unusable")
        return v.ok

    def coverage(self, canon: BenchmarkSplit, skipped: dict[str, str], v: submit.Validation) -> bool:
        submit.check_coverage(self.rundir.path, self.m, canon, skipped, v)
        return v.ok

    # -- the models ----------------------------------------------------------------------------------
    def models(self, bench: Any, canon: BenchmarkSplit, stored: Any) -> None:
        backbones = list(self.m.get("backbones", []))
        if self.keeper.images is None:
            self.verdict.not_checked.append("models: no --images, so no test image was re-inferred")
            return
        if self.keeper.sample == 0:
            self.verdict.not_checked.append("models: --sample 0")
            return
        adjuster = (self.m.get("recipe") or {}).get("adjuster", "none")
        if adjuster != "none":
            # The stored outputs are the adjusted ones; the raw outputs the weights give are not in a bundle.
            self.verdict.not_checked.append(f"models: the run's outputs passed through post-hoc adjuster "
                                            f"'{shown(adjuster)}', and a bundle holds only the adjusted ones")
            return
        missing = [b for b in backbones if not self.bundle.has_weights(b)]
        if missing:
            self.verdict.not_checked.append(f"models: the bundle has no weights for {', '.join(missing)} "
                                            "(bundle --with-checkpoints)")
        present = [b for b in backbones if b not in missing]
        if present:
            self.step("models", lambda v: self.reinfer(bench, canon, stored, present, v))

    def reinfer(self, bench: Any, canon: BenchmarkSplit, stored: Any, backbones: list[str],
                v: submit.Validation) -> bool:
        from mlbench.preprocessing.cache import prepare_image
        from mlbench.preprocessing.images import ImageReadError
        from mlbench.results.rundir import recipe_from_dict
        from mlbench.training.loop import build_backbone, on_device, pick_device, predict
        from mlbench.training.runner import weightless
        import torch

        recipe = recipe_from_dict(self.m.get("recipe", {}), "the bundle's manifest")
        rng = np.random.default_rng(int(self.bundle.sha256[:16], 16))
        chosen = sorted(rng.choice(len(stored.test_ids), size=min(self.keeper.sample, len(stored.test_ids)),
                                   replace=False).tolist())
        paths = dict(zip(canon.frame["image_id"].astype(str), canon.frame["image_path"]))
        preprocessor = self.registry.create("preprocessor", recipe.active_preprocessor, size=recipe.image_size,
                                            **dict(recipe.preprocessor_options))
        rows, images = [], []
        for i in chosen:
            try:
                images.append(prepare_image(paths[stored.test_ids[i]], preprocessor, recipe.image_size))
                rows.append(i)
            except (ImageReadError, ValueError, OSError):
                continue  # unreadable now: counted below, never a pass
        if len(rows) < len(chosen):
            v.problems.append(f"{len(chosen) - len(rows)} of the {len(chosen)} sampled test images cannot be read "
                              f"from --images {self.keeper.images}")
            return False
        batch = torch.from_numpy(np.stack(images))
        device = pick_device("auto")
        worst = {}
        for name in backbones:
            model = build_backbone(self.registry, name, len(canon.labels), weightless(recipe))
            try:
                model.load_state_dict(self.bundle.weights(name))
            except RuntimeError:
                v.problems.append(f"the weights of backbone '{name}' do not fit it (keys or shapes)")
                continue
            probs = predict(on_device(model, device).eval(), batch, device, batch_size=recipe.batch_size * 4)
            worst[name] = float(np.abs(probs.astype(np.float64) - stored.scores[name][rows]).max())
        bad = {n: d for n, d in worst.items() if not d <= self.keeper.tolerance}
        if bad:
            v.problems.append("re-inferred probabilities differ from the bundle's by up to "
                              + ", ".join(f"{d:.3g} ({n})" for n, d in bad.items())
                              + f" on {len(rows)} sampled test images; tolerance {self.keeper.tolerance:g}: the "
                              "predictions were not made by these weights")
            return False
        if v.ok:
            v.passed.append(f"{len(rows)} sampled test images re-inferred with the bundle's weights match its "
                            f"probabilities (largest difference {max(worst.values()):.2g}, tolerance "
                            f"{self.keeper.tolerance:g})")
        return v.ok
