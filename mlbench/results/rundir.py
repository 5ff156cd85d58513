"""A run directory, and the one class that knows its layout.

Everything else (the runner's stages, ``submit``, ``compare``, ``explain``, ``report``, grids)
asks :class:`RunDir` for a path, the manifest, the recipe, the split, the stored predictions, the
skips or a leaderboard row's provenance; no other module spells a file name of the layout::

    RUN_DIR/
      manifest.json            what the run is and what it did (stages, skips, versions)
      plan.json                what the driving command resolved (options, benchmark, recipe, identity)
      split.parquet            image_id, patient_id, split, one 0/1 column per label
      image-paths.parquet      image_id, each image's path relative to the image root (a resume's preprocess)
      predictions.parquet      every entry's probabilities on val and test (long format)
      leaderboard.parquet      one row per entry x label x metric, with provenance
      replicates.npz           each entry's metrics per bootstrap replicate (the metrics stage's), keyed by
                               what they were computed from: paired comparisons reuse them (a cache, never needed)
      skipped.parquet          everything a stage left out, and why
      preprocess/manifest.parquet   each image's crop box
      backbones/NAME/          best.pt, last.pt, history.json, predictions.parquet, done.json
      cache/, demo-data/       defaults for the preprocessing cache and the demo corpus
      trackers/NAME/           what each experiment tracker wrote (TensorBoard events, an MLflow store)
      external/BENCHMARK/      the run scored on another benchmark's test split (``mlbench evaluate``):
                               evaluation.json (written last), predictions.parquet, leaderboard.parquet,
                               parts/ (finished chunks while it runs), demo-data/ (that benchmark's demo corpus)

Several processes may write one RUN_DIR (a job per backbone, ``explain`` beside ``submit``), so
every read-modify-write takes :meth:`RunDir.lock` and every file is replaced atomically. Paths in
the manifest are stored relative to the run directory (and absolute as a fallback), so a run
directory keeps working after it is moved or copied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import zipfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import mlbench
from mlbench.foundations.errors import UserError
from mlbench.results import leaderboard
from mlbench.contracts.benchmark import Recipe
from mlbench.data import Skip
from mlbench.data.splits import SPLIT_FILE as SPLIT, SPLIT_KEY_COLUMNS  # the split's own format
from mlbench.results.griddir import enclosing_grid
from mlbench.foundations.io import atomic_path, write_json, write_parquet
from mlbench.foundations.paths import is_inside, shown

MANIFEST = "manifest.json"
PLAN = "plan.json"
IMAGE_PATHS = "image-paths.parquet"
PREDICTIONS = "predictions.parquet"
LEADERBOARD = "leaderboard.parquet"
REPLICATES = "replicates.npz"
# replicates.npz: a zip of .npy members (no pickles): an index (JSON as uint8) and one (metrics, 1 + n_boot,
# labels) float64 array per entry. The index is read only up to this size.
REPLICATES_FORMAT = "mlbench-replicates"
REPLICATES_INDEX = "index"
REPLICATES_INDEX_BYTES = 1 << 20
SKIPPED = "skipped.parquet"
PREPROCESS = "preprocess"
PREPROCESS_MANIFEST = "manifest.parquet"  # in PREPROCESS: what Cache.write_manifest writes there
BACKBONES = "backbones"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
HISTORY = "history.json"
DONE = "done.json"
CACHE = "cache"
DEMO_DATA = "demo-data"
TRACKERS = "trackers"  # TRACKERS/NAME: what each experiment tracker (--tracker) writes
EXTERNAL = "external"  # EXTERNAL/BENCHMARK: an evaluation on another benchmark's test split
EVALUATION = "evaluation.json"  # in EXTERNAL/BENCHMARK: what the evaluation did; written last
EXTERNAL_PARTS = "parts"  # in EXTERNAL/BENCHMARK: each finished chunk's probabilities while it runs
LOCK = ".mlbench.lock"
# Listed one by one in manifest.json up to this many; all of them always go to skipped.parquet.
MANIFEST_SKIP_ITEMS = 1000


class RunDirError(UserError):
    """A run directory is missing, unreadable or holds another run (the message names the file)."""


def backbone_folder_name(name: str) -> str:
    """``timm:convnext_tiny`` -> ``timm--convnext_tiny``: a backbone name as one safe folder name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.replace(":", "--"))


def recipe_from_dict(saved: dict[str, Any], where: str) -> Recipe:
    """A Recipe from its manifest form; fields the manifest predates take the Recipe's defaults."""
    if not isinstance(saved, dict) or "backbones" not in saved:
        raise RunDirError(f"{where}: no recipe with backbones; expected the manifest of a run")
    fields = {f.name for f in dataclasses.fields(Recipe)}
    values = {k: v for k, v in saved.items() if k in fields}
    for key in ("backbones", "ensembles", "head_units"):
        if key in values:
            values[key] = tuple(values[key])
    try:
        return Recipe(**values)
    except TypeError as exc:
        raise RunDirError(f"{where}: the recipe cannot be rebuilt ({exc})") from None


def identity_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The identity fields in which two runs differ (a recipe field added later counts at its default)."""
    keys = [k for k in set(old) | set(new) if k != "recipe" and old.get(k) != new.get(k)]
    if "recipe" in old or "recipe" in new:
        try:
            same = (recipe_from_dict(old.get("recipe"), "manifest.json").to_dict()
                    == recipe_from_dict(new.get("recipe"), "the new recipe").to_dict())
        except RunDirError:
            same = False
        if not same:
            keys.append("recipe")
    return sorted(keys)


class BackboneFiles:
    """The files of one backbone's folder (``RUN_DIR/backbones/NAME``): checkpoints, history, predictions."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    @property
    def best(self) -> Path:
        return self.folder / BEST_CHECKPOINT

    @property
    def last(self) -> Path:
        return self.folder / LAST_CHECKPOINT

    @property
    def history(self) -> Path:
        return self.folder / HISTORY

    @property
    def done(self) -> Path:
        return self.folder / DONE

    @property
    def predictions(self) -> Path:
        return self.folder / PREDICTIONS

    def write_history(self, data: dict[str, Any]) -> None:
        """history.json: best_epoch, best_val_loss, epochs and the per-epoch losses (report.collect reads it)."""
        write_json(self.history, data)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """The files of one run directory. Cheap to create; reads happen when asked."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- paths ---------------------------------------------------------------------------------
    @property
    def manifest_file(self) -> Path:
        return self.path / MANIFEST

    @property
    def plan_file(self) -> Path:
        return self.path / PLAN

    @property
    def split_file(self) -> Path:
        return self.path / SPLIT

    @property
    def image_paths_file(self) -> Path:
        return self.path / IMAGE_PATHS

    @property
    def predictions_file(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def leaderboard_file(self) -> Path:
        return self.path / LEADERBOARD

    @property
    def replicates_file(self) -> Path:
        return self.path / REPLICATES

    @property
    def skipped_file(self) -> Path:
        return self.path / SKIPPED

    @property
    def preprocess_dir(self) -> Path:
        return self.path / PREPROCESS

    @property
    def preprocess_manifest_file(self) -> Path:
        return self.preprocess_dir / PREPROCESS_MANIFEST

    @property
    def default_cache(self) -> Path:
        return self.path / CACHE

    @property
    def default_demo_dir(self) -> Path:
        return self.path / DEMO_DATA

    @property
    def backbones_dir(self) -> Path:
        return self.path / BACKBONES

    def backbone_dir(self, name: str) -> Path:
        return self.backbones_dir / backbone_folder_name(name)

    def backbone(self, name: str) -> BackboneFiles:
        return BackboneFiles(self.backbone_dir(name))

    def backbone_predictions(self, name: str) -> Path:
        return self.backbone(name).predictions

    def best_checkpoint(self, name: str) -> Path:
        return self.backbone(name).best

    def last_checkpoint(self, name: str) -> Path:
        return self.backbone(name).last

    def backbone_done(self, name: str) -> Path:
        return self.backbone(name).done

    def history_file(self, name: str) -> Path:
        return self.backbone(name).history

    def tracker_dir(self, name: str) -> Path:
        """Where tracker ``name`` writes (``trackers/NAME``): inside the run, so a moved run keeps its curves."""
        return self.path / TRACKERS / backbone_folder_name(name)

    # -- external evaluations (mlbench evaluate RUN_DIR --on BENCHMARK) -------------------------
    @property
    def external_root(self) -> Path:
        return self.path / EXTERNAL

    def external_dir(self, benchmark: str) -> Path:
        """``external/BENCHMARK``: everything an evaluation on ``benchmark``'s test split writes."""
        return self.external_root / backbone_folder_name(benchmark)

    def external_record(self, benchmark: str) -> Path:
        return self.external_dir(benchmark) / EVALUATION

    def external_predictions(self, benchmark: str) -> Path:
        return self.external_dir(benchmark) / PREDICTIONS

    def external_leaderboard(self, benchmark: str) -> Path:
        return self.external_dir(benchmark) / LEADERBOARD

    def external_parts(self, benchmark: str) -> Path:
        return self.external_dir(benchmark) / EXTERNAL_PARTS

    def external_demo_dir(self, benchmark: str) -> Path:
        return self.external_dir(benchmark) / DEMO_DATA

    def external_records(self) -> list[Path]:
        """Every finished evaluation's record, in folder order (links out of the run are not followed)."""
        root = self.external_root
        if not root.is_dir() or not is_inside(root, self.path):
            return []
        return [folder / EVALUATION for folder in sorted(root.iterdir())
                if (folder / EVALUATION).is_file() and is_inside(folder / EVALUATION, self.path)]

    def check_inside(self, path: str | os.PathLike, what: str) -> Path:
        """``path`` when its real path stays inside this run directory; a link leading out is one RunDirError."""
        if not is_inside(path, self.path):
            raise RunDirError(f"{path}: {what} leads outside {self.path} (a link out of the run directory); a run "
                              "directory's files are only followed inside it")
        return Path(path)

    def write_preprocess_manifest(self, cache: Any, image_ids: Sequence[str]) -> None:
        """preprocess/manifest.parquet: ``cache``'s record (crop box, fallback, skip) of this run's images."""
        cache.write_manifest(image_ids, self.preprocess_dir)

    def preprocess_manifest(self) -> pd.DataFrame:
        """preprocess/manifest.parquet: each image's crop box in original pixels (or why it was skipped)."""
        expected = "the preprocess manifest `mlbench run` writes"
        return self._read_parquet(self.preprocess_manifest_file, expected).to_pandas()

    def owns(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` is one of the files or folders of the layout above (or inside one of those
        folders): what only ``mlbench run`` writes, so no other command's output may replace it."""
        own = (self.manifest_file, self.plan_file, self.split_file, self.image_paths_file, self.predictions_file, self.leaderboard_file, self.skipped_file,
               self.replicates_file,
               self.path / LOCK, self.preprocess_dir, self.backbones_dir, self.default_cache, self.default_demo_dir,
               self.external_root)
        target = os.path.abspath(path)
        return any(target == mine or target.startswith(mine + os.sep) for mine in map(os.path.abspath, own))

    # -- locking -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One exclusive lock for every read-modify-write of this run directory's files."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- manifest ------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.manifest_file.is_file()

    def finished(self) -> bool:
        """The run completed: its leaderboard is written and the manifest records ``finished_at``.

        The one definition grids, executors and the report use (a leaderboard alone may be a
        killed re-run's, or ``explain``'s rows appended to an unfinished run)."""
        return self.leaderboard_file.is_file() and self.exists() and bool(self.manifest().get("finished_at"))

    def manifest(self) -> dict[str, Any]:
        return self._read_manifest(required=True)

    def _read_manifest(self, *, required: bool) -> dict[str, Any]:
        path = self.manifest_file
        if not path.is_file():
            if required:
                raise RunDirError(f"{path}: no such file; expected a run directory made by `mlbench run`")
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{path}: not valid JSON ({exc}); expected the manifest `mlbench run` writes") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{path}: expected a JSON object, found {type(data).__name__}")
        return data

    def update_manifest(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the manifest under the lock and write it back atomically."""
        with self.lock():
            data = self._read_manifest(required=False)
            change(data)
            write_json(self.manifest_file, data)
            return data

    def start(self, identity: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """Create the manifest, or check that an existing one describes the same run (resume).

        A manifest of another run is replaced when that run failed before training left anything
        (:meth:`trained_anything`): the corrected command starts over here, reusing the cache and
        the demo corpus (each keyed by its own content). Once training has begun it is refused.
        """

        def change(data: dict[str, Any]) -> None:
            started_over = {}
            if data:
                diff = identity_differences(data.get("identity", {}), identity)
                if diff:
                    self.refuse_other_run(diff)
                    data.clear()
                    # Its skips would be merged stage by stage into the new run's list: drop them whole.
                    self.skipped_file.unlink(missing_ok=True)
                    started_over = {"started_over": {"at": now(), "differs_in": diff}}
            if not data:
                data.update(identity=identity, **fields, stages={}, skipped={"counts": {}, "items": []},
                            **started_over)
            else:
                data.update({k: v for k, v in fields.items() if k not in data})

        return self.update_manifest(change)

    def trained_anything(self) -> bool:
        """Whether training has left a file here: a backbone's checkpoint, history or predictions, or the run's."""
        if self.predictions_file.exists() or self.leaderboard_file.exists():
            return True
        for folder, dirs, files in os.walk(self.backbones_dir):  # links are not followed
            if files or any(os.path.islink(os.path.join(folder, d)) for d in dirs):
                return True
        return False

    def refuse_other_run(self, diff: Sequence[str]) -> None:
        """Another run's manifest is here (``diff``: where it differs): refuse once its training has begun."""
        if diff and self.trained_anything():
            raise RunDirError(f"{self.path} holds another run (differs in: {', '.join(diff)}) whose training has "
                              "begun; choose a new --out or delete it")

    def record_stage(self, name: str, seconds: float) -> None:
        self.update_manifest(lambda m: m["stages"].__setitem__(name, {"seconds": round(seconds, 3),
                                                                      "status": "done"}))

    # -- paths stored in the manifest ------------------------------------------------------------
    def root(self) -> Path:
        """The folder no stored path may leave: this run directory, or the grid holding it as a cell."""
        return enclosing_grid(self.path) or self.path

    def stored_path(self, path: str | os.PathLike) -> dict[str, str]:
        """How a path goes into the manifest: relative to the run directory (the absolute one is for people)."""
        absolute = Path(path).resolve()
        return {"relative": os.path.relpath(absolute, self.path.resolve()), "absolute": str(absolute)}

    def resolve(self, stored: Any, what: str, option: str) -> Path:
        """A stored path back, relative to where the run directory is now.

        A shared run directory is hostile: a path that leads outside :meth:`root` (``..``, an absolute
        path, a symlink out) is refused, and the user passes that file on the command line instead."""
        relative = stored.get("relative") if isinstance(stored, dict) else stored
        if isinstance(relative, str) and relative and "\x00" not in relative and not os.path.isabs(relative):
            candidate = self.path / relative
            if is_inside(candidate, self.root()):
                return candidate
        if relative is None:
            raise RunDirError(f"{self.manifest_file}: records no path of {what}; pass {option}")
        raise RunDirError(f"{self.manifest_file}: {what} is stored as {shown(relative)}, which leads outside "
                          f"{self.root()}; a run directory's stored paths are only followed inside it: "
                          f"pass {option}")

    def cache_path(self, given: str | os.PathLike | None = None) -> Path:
        """The run's preprocessing cache: ``given`` (the user's --cache), else the one the manifest names."""
        if given is not None:
            return Path(given)
        cache = self.manifest().get("cache")
        if not isinstance(cache, dict) or "path" not in cache:
            raise RunDirError(f"{self.manifest_file}: no cache recorded; the run has not preprocessed its images")
        return self.resolve(cache["path"], "the preprocessing cache", "--cache")

    # -- the plan --------------------------------------------------------------------------------
    def write_plan(self, plan: dict[str, Any]) -> None:
        """plan.json: what the driving command resolved, for its jobs to read instead of planning again.

        Kept apart from the manifest: written whole by the driver before any job starts, never
        read-modify-written by a stage, so a job reads it without the lock."""
        write_json(self.plan_file, plan)

    def read_plan(self) -> dict[str, Any]:
        """plan.json back (a JSON object); a missing or unreadable one is one RunDirError."""
        path = self.plan_file
        if not path.is_file():
            raise RunDirError(f"{path}: no such file; expected the plan the driving `mlbench run` writes")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{path}: not valid JSON ({exc}); expected the plan `mlbench run` writes") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{path}: expected a JSON object, found {type(data).__name__}")
        return data

    # -- the recipe ------------------------------------------------------------------------------
    def recipe(self) -> Recipe:
        """The run's recipe rebuilt from the manifest (the Recipe dataclass's defaults fill old fields)."""
        return recipe_from_dict(self.manifest().get("recipe"), str(self.manifest_file))

    # -- split -----------------------------------------------------------------------------------
    def split(self) -> pd.DataFrame:
        """split.parquet: image_id, patient_id, split, then one 0/1 column per label."""
        table = self._read_parquet(self.split_file, "the split `mlbench run` writes")
        missing = [c for c in SPLIT_KEY_COLUMNS if c not in table.column_names]
        if missing:
            raise RunDirError(f"{self.split_file}: missing columns {missing}; expected {list(SPLIT_KEY_COLUMNS)} "
                              "then one column per label")
        frame = table.to_pandas()
        for column in SPLIT_KEY_COLUMNS:
            frame[column] = frame[column].astype(str)
        return frame

    def labels(self) -> list[str]:
        return [c for c in pq.read_schema(self.split_file).names if c not in SPLIT_KEY_COLUMNS]

    def write_split(self, table: pa.Table) -> None:
        write_parquet(self.split_file, table)

    def write_image_paths(self, image_ids: Sequence[str], relative_paths: Sequence[str]) -> None:
        """image-paths.parquet: each split image's path relative to the image root (what a resume decodes)."""
        write_parquet(self.image_paths_file, pa.table({"image_id": pa.array(list(image_ids), pa.string()),
                                                       "path": pa.array(list(relative_paths), pa.string())}))

    def image_paths(self, root: str | os.PathLike) -> pd.DataFrame:
        """image_id and image_path (``root`` joined to each stored relative path), in the stored order.

        The file is hostile: a path that is not relative, or climbs with ``..``, is refused (one line,
        its row named, not its content). Links inside the root are checked again where the image is
        decoded (the cache's ``image_root``)."""
        path = self.image_paths_file
        table = self._read_parquet(path, "the image paths `mlbench run` writes")
        if table.column_names != ["image_id", "path"]:
            raise RunDirError(f"{path}: expected the columns ['image_id', 'path']")
        frame = table.to_pandas()
        rel = frame["path"]
        bad = (~rel.map(lambda p: isinstance(p, str) and p != "" and "\x00" not in p and not os.path.isabs(p)
                        and ".." not in p.split(os.sep)))
        if bad.any():
            raise RunDirError(f"{path}: row {int(bad.to_numpy().argmax()) + 1}: the path leads outside the image "
                              "root; expected a path relative to it (delete the file to read the label file again)")
        prefix = os.path.realpath(root).rstrip(os.sep) + os.sep
        return pd.DataFrame({"image_id": frame["image_id"].astype(str), "image_path": prefix + rel})

    # -- skips -----------------------------------------------------------------------------------
    def record_skips(self, stage: str, skips: Sequence[Skip]) -> None:
        """List ``skips`` in skipped.parquet and count them in the manifest (a re-run replaces its stage's)."""
        with self.lock():
            table = pa.table({"stage": [stage] * len(skips), "item": [s.item for s in skips],
                              "reason": [s.reason for s in skips], "detail": [s.detail for s in skips]},
                             schema=pa.schema([(c, pa.string()) for c in ("stage", "item", "reason", "detail")]))
            if self.skipped_file.exists():
                old = pq.read_table(self.skipped_file)
                table = pa.concat_tables([old.filter(pc.not_equal(old["stage"], stage)), table.cast(old.schema)])
            write_parquet(self.skipped_file, table)
            data = self._read_manifest(required=True)
            counts = {f"{stage}:{k}": v for k, v in Counter(s.reason for s in skips).items()}
            kept = {k: v for k, v in data["skipped"]["counts"].items() if not k.startswith(f"{stage}:")}
            data["skipped"]["counts"] = {**kept, **counts}
            items = [i for i in data["skipped"]["items"] if i.get("stage") != stage]
            items += [{"stage": stage, **s.as_dict()} for s in skips]
            data["skipped"]["items"] = items[:MANIFEST_SKIP_ITEMS]
            data["skipped"]["total"] = sum(data["skipped"]["counts"].values())
            data["skipped"]["file"] = SKIPPED
            write_json(self.manifest_file, data)

    def skips(self, stage: str | None = None) -> dict[str, str]:
        """Item -> reason for everything a stage (or every stage) left out."""
        if not self.skipped_file.is_file():
            return {}
        frame = self._read_parquet(self.skipped_file, "the skip list `mlbench run` writes").to_pandas()
        if stage is not None:
            frame = frame[frame["stage"] == stage]
        return dict(zip(frame["item"].astype(str), frame["reason"].astype(str)))

    # -- leaderboard -----------------------------------------------------------------------------
    def leaderboard(self) -> pa.Table:
        if not self.leaderboard_file.is_file():
            raise RunDirError(f"{self.leaderboard_file}: no such file; is the run finished?")
        return leaderboard.read(self.leaderboard_file)

    def write_leaderboard(self, table: pa.Table) -> None:
        with self.lock():
            leaderboard.write(self.leaderboard_file, table)

    def append_leaderboard(self, rows: pa.Table, replace: Callable[[pa.Table], Any] | None = None) -> pa.Table:
        """Add ``rows`` under the lock; ``replace(old)`` is a boolean mask of old rows they supersede."""
        with self.lock():
            if self.leaderboard_file.exists():
                old = leaderboard.read(self.leaderboard_file)
                if replace is not None:
                    old = old.filter(pc.invert(replace(old)))
                rows = pa.concat_tables([old, rows.cast(old.schema)])
            leaderboard.write(self.leaderboard_file, rows)
            return rows

    def provenance(self, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
        """The identity and provenance columns every leaderboard row of this run carries."""
        m = manifest if manifest is not None else self.manifest()
        recipe = m.get("recipe", {})
        return {
            "benchmark": m["benchmark"], "benchmark_version": m["benchmark_version"],
            "variant": m.get("variant") or recipe.get("variant"), "dataset_kind": m["dataset_kind"],
            "split_hash": m.get("split_hash"), "run_id": m["run_id"],
            "backbones": ",".join(m.get("backbones", recipe.get("backbones", []))),
            "loss": m.get("loss", recipe.get("loss")), "seed": m.get("seed", recipe.get("seed")),
            "mlbench_version": mlbench.__version__, "git_commit": m.get("git_commit"),
            "plugin_versions": json.dumps(m.get("versions", {}).get("plugins", {}), sort_keys=True),
            "device": m.get("device"), "source": "run", "schema_version": leaderboard.SCHEMA_VERSION,
            "created_at": now(),
        }

    # -- stored bootstrap replicates ---------------------------------------------------------
    def write_replicates(self, entries: dict[str, tuple[str, dict[str, np.ndarray]]], metrics: Sequence[str], *,
                         n_boot: int, seed: int) -> None:
        """replicates.npz, atomically: per entry (name -> (key, metric -> (1 + n_boot, labels) array)) the
        arrays of ``metrics`` (:func:`mlbench.results.rescoring.write_replicates` gives the keys)."""
        metrics = list(metrics)
        index = {"format": REPLICATES_FORMAT, "n_boot": int(n_boot), "seed": int(seed), "metrics": metrics,
                 "entries": [{"entry": name, "key": key} for name, (key, _) in entries.items()]}
        with atomic_path(self.replicates_file) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
                members = {REPLICATES_INDEX: np.frombuffer(json.dumps(index).encode("utf-8"), dtype=np.uint8)}
                for i, (_, values) in enumerate(entries.values()):
                    members[f"e{i}"] = np.stack([np.asarray(values[m], dtype="<f8") for m in metrics])
                for name, array in members.items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, array, allow_pickle=False)

    def read_replicates(self, metrics: Sequence[str], *, n_boot: int, seed: int,
                        n_labels: int) -> dict[str, dict[str, np.ndarray]]:
        """replicates.npz read as hostile: key -> metric -> (1 + n_boot, n_labels) float64, read-only.

        Only entries of these draws (``n_boot``, ``seed``) holding every metric of ``metrics`` with exactly
        that shape and dtype come back; a missing, truncated, foreign or malformed file gives nothing (it is a
        cache: the caller computes what is not here). The caller still matches each key to its own inputs."""
        path = self.replicates_file
        if not path.is_file():
            return {}
        shape = (1 + int(n_boot), int(n_labels))
        try:
            with zipfile.ZipFile(path) as archive:
                raw = _read_member(archive, REPLICATES_INDEX, np.uint8, None, REPLICATES_INDEX_BYTES)
                if raw is None:
                    return {}
                index = json.loads(raw.tobytes().decode("utf-8"))
                if not (isinstance(index, dict) and index.get("format") == REPLICATES_FORMAT
                        and index.get("n_boot") == int(n_boot) and index.get("seed") == int(seed)
                        and isinstance(index.get("metrics"), list) and isinstance(index.get("entries"), list)):
                    return {}
                stored_metrics = index["metrics"]
                if not all(m in stored_metrics for m in metrics) or len(set(map(str, stored_metrics))) != len(
                        stored_metrics):
                    return {}
                out = {}
                for i, entry in enumerate(index["entries"]):
                    key = entry.get("key") if isinstance(entry, dict) else None
                    if not (isinstance(key, str) and re.fullmatch(r"[0-9a-f]{16,128}", key)):
                        continue
                    array = _read_member(archive, f"e{i}", np.dtype("<f8"), (len(stored_metrics),) + shape)
                    if array is None or np.isinf(array).any():
                        continue
                    out[key] = {m: array[stored_metrics.index(m)] for m in metrics}
                return out
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, zipfile.BadZipFile,
                zipfile.LargeZipFile):
            return {}

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _read_parquet(path: Path, expected: str) -> pa.Table:
        if not path.is_file():
            raise RunDirError(f"{path}: no such file; expected {expected}")
        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise RunDirError(f"{path}: not a readable parquet file ({str(exc).splitlines()[0]}); "
                              f"expected {expected}") from None



def _read_member(archive: zipfile.ZipFile, name: str, dtype: Any, shape: tuple[int, ...] | None,
                 max_bytes: int = 0) -> np.ndarray | None:
    """One .npy member of a hostile archive, read-only; None unless it exists, holds no pickle and has this
    dtype and ``shape`` (or, with ``shape`` None, is 1-D of at most ``max_bytes``). The header is checked
    before any data is read, so a member claiming a huge array allocates nothing."""
    try:
        info = archive.getinfo(f"{name}.npy")
    except KeyError:
        return None
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            return None
        have_shape, fortran, have_dtype = read_header[version](member)
        dtype = np.dtype(dtype)
        if have_dtype != dtype or fortran or len(have_shape) != (1 if shape is None else len(shape)):
            return None
        if shape is not None and tuple(have_shape) != tuple(shape):
            return None
        n_bytes = int(np.prod(have_shape, dtype=np.int64)) * dtype.itemsize
        if shape is None and n_bytes > max_bytes:
            return None
        data = member.read(n_bytes + 1)
    if len(data) != n_bytes:  # truncated, or more than the header says
        return None
    return np.frombuffer(data, dtype=dtype).reshape(have_shape)
