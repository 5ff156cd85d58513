"""Explain a trained run: pick images and labels, explain them in batches, write panels, JSON and scores.

What ``mlbench explain`` does (the CLI only parses options and calls :func:`explain_run`):

- Images: files given by path (read and prepared by the run's own preprocessor) or the first
  ``limit`` images of a split of the run (from its preprocessing cache).
- Labels per image: the ones asked for (``labels``), else every label whose ensemble probability
  reaches the threshold (at least the most probable one).
- Per batch: one no-grad forward per model gives every label's probability (to choose labels and
  fill the JSON); then the explainer makes the maps of the chosen labels (one forward per model).
- Ensemble map: mean of the models' maps; every model contributes, also those below the threshold,
  unless ``agreeing_only`` (then only the models that reach it, or every model when none does).
  The std map is the per-pixel standard deviation over the same models.
- Scoring (``score``): where a box file is known (``--boxes``, or the ``findings.csv`` beside the
  run's source CSV, as the demo corpus writes it) every finding with a box is explained too and
  scored (:mod:`mlbench.explainers.scoring`); for ``split="test"`` the scores are appended to the
  run's ``leaderboard.parquet``.

Files in ``out``: ``<image>/<label>.png`` (one panel per shown label), ``<image>/std.png``,
``<image>/explanation.json``, ``cam_scores.csv`` (one row per scored finding) and ``explain.json``
(the whole call: settings, target layers, counts, skipped items and the score summary).
``<image>`` is the image's file stem made file-name-safe, with a short hash of its id added when
another image of the call, or earlier output in ``out``, has that name (``explain.json``'s
``folders`` maps each id to its folder); an image's folder never receives another image's files.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from mlbench.data import DataSource, Skip
from mlbench.data.imagepaths import OUTSIDE_ROOT
from mlbench.demo import findings_beside, lungs_beside
from mlbench.explainers import ExplainError, Explanation
from mlbench.explainers import render, scoring
from mlbench.results import leaderboard
from mlbench.foundations.io import write_json, write_text
from mlbench.results.rundir import RunDirError
from mlbench.training.loop import device_name

SPLITS = ("train", "val", "test")


@dataclass
class ExplainRequest:
    """Everything ``mlbench explain`` can be told; None means the run's recipe decides."""

    run_dir: Path
    out: Path
    images: Sequence[Path] = ()
    split: str | None = None
    limit: int | None = None
    labels: Sequence[str] | None = None
    threshold: float | None = None
    ensemble: str = "ctp"
    device: str = "auto"
    batch_size: int = 16
    agreeing_only: bool = False
    score: bool = True
    boxes: Path | None = None
    lungs: Path | None = None
    explainer: str | None = None
    explainer_options: Mapping[str, Any] = field(default_factory=dict)
    # Where the run's data is when it is not inside the run directory (the manifest's paths are
    # followed only inside it): the preprocessing cache, the label file and its image folder.
    cache: Path | None = None
    csv: Path | None = None
    image_root: Path | None = None


@dataclass
class ExplainReport:
    out: Path
    explained: list[str]
    skipped: list[Skip]
    scores: pd.DataFrame | None
    summary: list[dict[str, Any]]
    leaderboard_rows: int
    seconds: float
    target_layers: dict[str, str]


@dataclass
class _Item:
    image_id: str
    patient_id: str
    image: np.ndarray  # (S, S) float32 in [0, 1]: the model input
    crop: tuple[int, int, int, int]  # the input's box in original pixels
    original: Path | None  # where the original image is, for display


def resolve_labels(names: Sequence[str], benchmark_labels: Sequence[str], benchmark: str) -> list[int]:
    """Label names -> indices; an unknown name fails with the list of valid ones."""
    index = {label: i for i, label in enumerate(benchmark_labels)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ExplainError(f"unknown label{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)} "
                           f"for benchmark '{benchmark}'; valid labels: {', '.join(benchmark_labels)}")
    return [index[n] for n in names]


def choose_labels(scores: np.ndarray, threshold: float, requested: Sequence[int] | None = None) -> list[list[int]]:
    """Per image (rows of ``scores``, (B, L)): the requested labels, else those reaching the threshold
    by decreasing score, else the single most probable one."""
    if requested is not None:
        return [list(requested) for _ in range(len(scores))]
    out = []
    for row in np.asarray(scores):
        chosen = [int(j) for j in np.argsort(-row, kind="stable") if row[j] >= threshold]
        out.append(chosen or [int(np.argmax(row))])
    return out


def check_input_size(images: torch.Tensor, size: int, in_chans: int, where: str = "images") -> None:
    """The models were trained on (in_chans, size, size) inputs: anything else is refused by name."""
    if images.dim() != 4 or tuple(images.shape[1:]) != (in_chans, size, size):
        raise ExplainError(f"{where}: shape {tuple(images.shape)}, but the run's models take "
                           f"(batch, {in_chans}, {size}, {size}) images (recipe image_size={size})")


def explain_images(trained, images: torch.Tensor, labels: Sequence[str], explainer: str | None = None,
                   **options: Any) -> Explanation:
    """Explain (B, C, S, S) images in [0, 1] with every model of a loaded run (``load_trained``).

    The images must have the run's size and channels; ``labels`` are benchmark label names.
    """
    check_input_size(images, trained.recipe.image_size, trained.recipe.in_chans)
    indices = resolve_labels(labels, trained.labels, trained.benchmark.name)
    device = next(iter(trained.models.values())).parameters().__next__().device
    made = trained.registry.create("explainer", explainer or trained.recipe.explainer, **options)
    return made.explain(list(trained.models.values()), images.to(device), indices)


def slug(text: str) -> str:
    """A file-name-safe form of a label or image id (never ``.``, ``..`` or a hidden name)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:MAX_SLUG] or "item"


MAX_SLUG = 120  # leaves room for a digest suffix under the usual 255-byte file-name limit


def unique_names(keys: Sequence[str], stem: Callable[[str], str] = lambda key: key,
                 taken: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """One file-name-safe name per key that no other key shares, also on a case-insensitive disk.

    A key gets ``slug(stem(key))`` when no other key slugs to it (or ``taken`` says the name holds
    this key's output), else that slug plus the first 8
    hex digits of the key's sha256 (the full digest if even that is in use). ``taken`` holds names
    already in use, each with the key whose output it holds (None: something else's), so earlier
    output of another image is never overwritten. Keys are named in sorted order: the same keys
    and ``taken`` always give the same names.
    """
    owners = {name.lower(): owner for name, owner in (taken or {}).items()}
    bases = {key: slug(stem(key)) for key in keys}
    counts = Counter(base.lower() for base in bases.values())
    used: set[str] = set()
    names: dict[str, str] = {}
    for key in sorted(bases):
        base, digest = bases[key], hashlib.sha256(key.encode()).hexdigest()
        plain = counts[base.lower()] == 1 or owners.get(base.lower()) == key  # alone, or its own earlier output
        candidates = ([base] if plain else []) + [f"{base}-{digest[:8]}", f"{base}-{digest}"]
        for name in candidates:
            folded = name.lower()
            if folded not in used and owners.get(folded, key) == key:
                break
        else:  # would take a sha256 collision
            raise ExplainError(f"no free output name for {key!r}")
        used.add(folded)
        names[key] = name
    return names


def output_folders(out: Path, items: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Image id -> its folder in ``out``: unique in this call and never another image's earlier output.

    ``items`` maps each image id to what identifies its image (written into explanation.json); an
    existing folder is reused only for the image whose identity it records.
    """
    taken: dict[str, str | None] = {}
    by_identity = {json.dumps(dict(identity), sort_keys=True): key for key, identity in items.items()}
    if out.is_dir():
        for entry in out.iterdir():
            owner = None
            try:
                if entry.is_dir() and not any(entry.iterdir()):
                    continue  # an empty folder holds nobody's output
                recorded = json.loads((entry / "explanation.json").read_text())
                identity = {k: recorded.get(k) for k in ("image_id", "file") if recorded.get(k) is not None}
                owner = by_identity.get(json.dumps(identity, sort_keys=True))
            except (OSError, ValueError, AttributeError):
                pass  # a file, or a folder without a readable explanation: not ours to overwrite
            taken[entry.name] = owner
    for own_file in ("explain.json", "cam_scores.csv"):
        taken.setdefault(own_file, None)
    return unique_names(list(items), stem=lambda key: Path(key).stem, taken=taken)


def _sidecar(request_path: Path | None, request: "ExplainRequest", beside: Callable[[Path], Path],
             trained) -> Path | None:
    """A box file: the one given, else ``beside(the run's label file)`` (when that is known safely)."""
    if request_path is not None:
        if not Path(request_path).is_file():
            raise ExplainError(f"{request_path}: no such box file")
        return Path(request_path)
    try:
        csv = _source(trained, request)[0]
    except RunDirError:
        return None  # the label file lies outside the run directory and was not given
    candidate = beside(csv)
    return candidate if candidate.is_file() else None


def _source(trained, request: "ExplainRequest") -> tuple[Path, Path]:
    """The run's label file and image folder: as given on the command line, else as stored in the run."""
    stored = trained.manifest.get("source") or {}
    csv = request.csv or trained.rundir.resolve(stored.get("csv"), "the label file", "--csv")
    images = request.image_root or trained.rundir.resolve(stored.get("images"), "the image folder", "--image-root")
    return Path(csv), Path(images)


def _prepare_files(paths: Sequence[Path], trained) -> list[_Item]:
    from mlbench.preprocessing.images import ImageReadError, read_grayscale

    preprocessor = trained.preprocessor()
    size = trained.recipe.image_size
    items, seen = [], set()
    for path in paths:
        path = Path(path)
        if path.is_dir():
            raise ExplainError(f"{path}: is a folder; expected IMAGE files (.png, .jpg), e.g. {path / '*.png'}, "
                               "or --split to explain the run's own images")
        try:  # a file named by the user is read wherever it is: that is their own choice
            prepared = preprocessor(read_grayscale(path))
        except ImageReadError as exc:
            raise ExplainError(f"{path}: cannot read this image ({exc.reason}{': ' + exc.detail if exc.detail else ''})")
        if prepared.image.shape != (size, size):
            raise ExplainError(f"{path}: the run's preprocessor made a {prepared.image.shape} image; "
                               f"the models take {size} x {size}")
        image_id = path.name
        while image_id in seen:  # two files of one name from different folders
            image_id = f"{path.parent.name}-{image_id}"
        seen.add(image_id)
        items.append(_Item(image_id, "", prepared.image.astype(np.float32), tuple(int(v) for v in prepared.box), path))
    return items


def _original_paths(trained, request: "ExplainRequest") -> tuple[dict[str, Path], str, list[Skip]]:
    """image_id -> original file, through the run's dataset plugin; empty (and why) when unavailable.

    Also the images the reader refused because they lead out of the image folder (``outside_root``):
    they are left out of the explanation rather than shown from an older cache entry."""
    try:
        dataset = trained.registry.create("dataset", trained.benchmark.dataset)
        records = dataset.read(DataSource(*_source(trained, request)))
        refused = [s for s in records.skipped if s.reason == OUTSIDE_ROOT]
        return dict(zip(records.frame["image_id"].astype(str), map(Path, records.frame["image_path"]))), "", refused
    except Exception as exc:  # display falls back to the model input; the reason is reported
        return {}, f"original images unavailable ({exc}); panels show the model input", []


def _split_items(trained, split: str, limit: int | None, skipped: list[Skip],
                 cache_dir: Path | None, refused: Sequence[Skip] = ()) -> tuple[list[str], dict]:
    if split not in SPLITS:
        raise ExplainError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")
    rows = trained.split[trained.split["split"] == split]
    cache = trained.cache(cache_dir)
    ids = rows["image_id"].astype(str).tolist()
    unusable = cache.skipped(ids)
    cached_bad, wanted = {s.item for s in unusable}, set(ids)
    unusable += [s for s in refused if s.item in wanted and s.item not in cached_bad]  # before --limit
    skipped.extend(unusable)
    bad = {s.item for s in unusable}
    rows = rows[~rows["image_id"].astype(str).isin(bad)]
    if limit is not None:
        rows = rows.iloc[:limit]
    return rows["image_id"].astype(str).tolist(), dict(zip(rows["image_id"].astype(str), rows["patient_id"].astype(str)))


def _batches(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def _display_image(item: _Item) -> tuple[np.ndarray, str]:
    """The original film inside the crop box when readable, else the model input."""
    if item.original is not None:
        try:
            from mlbench.preprocessing.images import normalize_intensity, read_grayscale

            x0, y0, x1, y1 = item.crop
            film = read_grayscale(item.original)[y0:y1, x0:x1]
            if film.size:
                return normalize_intensity(film), "original crop"
        except Exception:
            pass
    return item.image, "model input"


class _Boxes:
    """Finding and lung boxes of the images being explained, mapped into model-input pixels."""

    def __init__(self, findings: pd.DataFrame | None, lungs: pd.DataFrame | None, labels: Sequence[str]) -> None:
        known = set(labels)
        self.findings = findings[findings["label"].isin(known)] if findings is not None else None
        self.lungs = lungs
        self.outside_benchmark = int((~findings["label"].isin(known)).sum()) if findings is not None else 0

    def for_image(self, item: _Item, size: int) -> tuple[dict[str, list[scoring.Box]], list[scoring.Box], list[Skip]]:
        found: dict[str, list[scoring.Box]] = {}
        skips: list[Skip] = []
        if self.findings is not None:
            for row in self.findings[self.findings["image_id"] == item.image_id].itertuples():
                box = scoring.box_to_input((row.x0, row.y0, row.x1, row.y1), item.crop, size)
                if box is None:
                    skips.append(Skip(f"{item.image_id}:{row.label}", "box_outside_crop",
                                      f"finding box {(row.x0, row.y0, row.x1, row.y1)} lies outside the crop {item.crop}"))
                else:
                    found.setdefault(row.label, []).append(box)
        lung_boxes: list[scoring.Box] = []
        if self.lungs is not None:
            for row in self.lungs[self.lungs["image_id"] == item.image_id].itertuples():
                box = scoring.box_to_input((row.x0, row.y0, row.x1, row.y1), item.crop, size)
                if box is not None:
                    lung_boxes.append(box)
        return found, lung_boxes, skips


def _peak_json(heatmap: np.ndarray) -> dict[str, Any] | None:
    where = scoring.peak(heatmap)
    return None if where is None else {"x": round(where[0], 2), "y": round(where[1], 2)}


@dataclass(frozen=True)
class _Setting:
    """What every image of one explain call shares: the run's labels, the models, the explainer's choices."""

    labels: list[str]
    panel_names: Mapping[str, str]  # label -> its panel's file stem
    model_names: list[str]
    threshold: float
    explainer_name: str
    tolerance: float  # pointing tolerance in model-input pixels
    labels_requested: bool  # the labels were asked for (else chosen by probability)
    agreeing_only: bool


@dataclass
class _ImageMaps:
    """One image's share of a batch's explanation; ``k`` indexes ``union`` in the map arrays."""

    union: Sequence[int]  # the labels explained (shown or scored)
    shown: Sequence[int]  # the labels that get a panel
    found: Mapping[str, list]  # label -> its finding boxes
    lung_boxes: list
    probs: np.ndarray  # (M, L) each model's probabilities
    scores: np.ndarray  # (L,) the ensemble's
    mean_maps: np.ndarray  # (K, S, S)
    std_maps: np.ndarray  # (K, S, S)
    model_maps: np.ndarray  # (M, K, S, S)
    target_layers: Sequence[str]


class _Images:
    """The images of one call by id, with what identifies each and how its batches are read:
    the files given by path, or a split's arrays from the preprocessing cache."""

    def __init__(self, request: ExplainRequest, trained, skipped: list[Skip]) -> None:
        self.display_note = ""
        self.files: list[_Item] | None = None
        if request.images:
            self.files = _prepare_files(request.images, trained)
            self.ids = [i.image_id for i in self.files]
            # A file given by path is identified by that file in its explanation.json.
            self.identities = {i.image_id: {"image_id": i.image_id, "file": str(Path(i.original).resolve())}
                               for i in self.files}
            return
        self.originals, self.display_note, refused = _original_paths(trained, request)
        self.ids, self.patients = _split_items(trained, request.split, request.limit, skipped, request.cache, refused)
        if not self.ids:
            raise ExplainError(f"{request.run_dir}: split '{request.split}' has no usable image")
        self.crops = trained.crops().set_index("image_id")
        self.cache = trained.cache(request.cache)
        self.identities = {i: {"image_id": i} for i in self.ids}

    def batches(self, size: int) -> Iterator[list[_Item]]:
        for batch_ids in _batches(self.ids, size):
            if self.files is not None:
                wanted = set(batch_ids)
                yield [i for i in self.files if i.image_id in wanted]
                continue
            arrays = self.cache.load(list(batch_ids)).astype(np.float32) / 255.0
            corners = ["x0", "y0", "x1", "y1"]
            yield [_Item(i, self.patients.get(i, ""), a, tuple(int(v) for v in self.crops.loc[i, corners]),
                         self.originals.get(i)) for i, a in zip(batch_ids, arrays)]


def _check_request(request: ExplainRequest) -> None:
    """The options that cost nothing to check, before any model loads."""
    if bool(request.images) == bool(request.split):
        raise ExplainError("give IMAGE files or --split (not both, not neither)")
    if request.limit is not None and request.limit < 1:
        raise ExplainError(f"--limit must be at least 1, got {request.limit}")
    if request.batch_size < 1:
        raise ExplainError(f"--batch-size must be at least 1, got {request.batch_size}")
    # The first existing path at or above --out must be a folder.
    existing = next((p for p in (Path(request.out), *Path(request.out).parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ExplainError(f"--out {request.out}: {existing} is a file; expected a folder for the panels, maps "
                           "and JSON")


def explain_run(request: ExplainRequest, registry=None) -> ExplainReport:
    """Explain images of a trained run and write everything listed in the module docstring."""
    from mlbench.training.runner import load_trained
    from mlbench.training.loop import pick_device

    started = time.perf_counter()
    _check_request(request)
    device = pick_device(request.device)
    trained = load_trained(request.run_dir, device, registry)
    registry = trained.registry
    labels = list(trained.labels)
    requested = resolve_labels(request.labels, labels, trained.benchmark.name) if request.labels else None
    threshold = trained.recipe.threshold if request.threshold is None else float(request.threshold)
    if not 0.0 < threshold < 1.0:
        raise ExplainError(f"--threshold must lie strictly between 0 and 1, got {threshold}")
    size = trained.recipe.image_size
    names = list(trained.models)
    models = [trained.models[n] for n in names]
    explainer_name = request.explainer or trained.recipe.explainer
    explainer = registry.create("explainer", explainer_name, **dict(request.explainer_options))
    ensemble = registry.create("ensemble", request.ensemble, threshold=threshold)
    out = Path(request.out)
    skipped: list[Skip] = []
    images = _Images(request, trained, skipped)
    folders = output_folders(out, images.identities)
    setting = _Setting(labels, unique_names(labels, taken={"std": None}), names, threshold, explainer_name,
                       scoring.default_tolerance(size), bool(request.labels), request.agreeing_only)
    findings_path = _sidecar(request.boxes, request, findings_beside, trained) if request.score else None
    lungs_path = _sidecar(request.lungs, request, lungs_beside, trained) if request.score else None
    boxes = _Boxes(scoring.read_boxes(findings_path) if findings_path else None,
                   scoring.read_boxes(lungs_path, key="side") if lungs_path else None, labels)

    score_rows: list[dict[str, Any]] = []
    layers: dict[str, str] = {}
    explain_seconds = 0.0
    for batch in images.batches(request.batch_size):
        x = _model_input(batch, device, size, trained.recipe.in_chans)
        maps, box_skips, seconds = _explain_batch(batch, x, models, ensemble, explainer, boxes, requested, setting,
                                                  size)
        explain_seconds += seconds
        layers = dict(zip(names, maps[0].target_layers))
        for item, image_maps, skips in zip(batch, maps, box_skips):
            skipped.extend(skips)
            score_rows += _write_image(out / folders[item.image_id], images.identities[item.image_id], item, setting,
                                       image_maps)

    score_frame = pd.DataFrame(score_rows) if score_rows else None
    summary = scoring.summarize(score_frame, labels) if score_frame is not None else []
    n_rows = 0
    if score_frame is not None:
        write_text(out / "cam_scores.csv", score_frame.to_csv(index=False, lineterminator="\n"))
        if request.split == "test":
            n_rows = _append_scores(trained, summary, explainer_name, device, explain_seconds)
    seconds = time.perf_counter() - started
    write_json(out / "explain.json", {
        "run_dir": str(request.run_dir), "run_id": trained.manifest.get("run_id"),
        "benchmark": trained.benchmark.name, "explainer": explainer_name,
        "explainer_options": dict(request.explainer_options), "ensemble": request.ensemble,
        "threshold": threshold, "agreement": f"models whose probability is >= {threshold}",
        "ensemble_map": ("mean of the agreeing models' maps (all models when none agrees)" if request.agreeing_only
                         else "mean of every model's map, including models below the threshold"),
        "map_normalisation": "each model's map divided by its maximum before averaging",
        "target_layers": layers, "image_size": size, "images": images.ids, "split": request.split,
        "folders": {i: folders[i] for i in images.ids},
        "display": images.display_note or "original film inside the crop box when readable, else the model input",
        "boxes": {"findings": str(findings_path) if findings_path else None,
                  "lungs": str(lungs_path) if lungs_path else None,
                  "findings_outside_benchmark": boxes.outside_benchmark,
                  "pointing_tolerance_px": round(setting.tolerance, 3)},
        "scores": summary, "leaderboard_rows_written": n_rows, **_chance_json(score_frame, names),
        "skipped": {"total": len(skipped), "items": [s.as_dict() for s in skipped]},
        "seconds": {"total": round(seconds, 3), "explainer": round(explain_seconds, 3)},
        "versions": {"mlbench": metadata.version("mlbench-imbalanced") if _installed() else None,
                     "torch": torch.__version__},
    })
    return ExplainReport(out, images.ids, skipped, score_frame, summary, n_rows, seconds, layers)


def _model_input(batch: Sequence[_Item], device: torch.device, size: int, in_chans: int) -> torch.Tensor:
    """The batch's (B, C, S, S) model input on the device (a grey image repeated over C channels)."""
    x = torch.from_numpy(np.stack([b.image for b in batch])[:, None]).to(device)
    if in_chans != 1:
        x = x.expand(-1, in_chans, -1, -1)
    check_input_size(x, size, in_chans)
    return x


def _explain_batch(batch: Sequence[_Item], x: torch.Tensor, models: Sequence[torch.nn.Module], ensemble: Any,
                   explainer: Any, boxes: _Boxes, requested: Sequence[int] | None, setting: _Setting,
                   size: int) -> tuple[list[_ImageMaps], list[list[Skip]], float]:
    """Every model's probabilities, the labels each image shows or scores, and their maps: per image,
    its maps and the finding boxes left out, and the seconds the explainer took."""
    with torch.no_grad():
        probs = np.stack([torch.sigmoid(m(x).float()).cpu().numpy() for m in models])  # (M, B, L)
    scores, _ = ensemble.combine(probs)
    per_image_boxes = [boxes.for_image(item, size) for item in batch]
    shown = choose_labels(scores, setting.threshold, requested)
    scored = [[setting.labels.index(name) for name in found] for found, _, _ in per_image_boxes]
    union = sorted({j for row in shown + scored for j in row})
    tick = time.perf_counter()
    explanation: Explanation = explainer.explain(models, x, union)
    seconds = time.perf_counter() - tick
    agree = torch.from_numpy(probs[:, :, union] >= setting.threshold)  # (M, B, K)
    mean_maps, std_maps = explanation.ensemble_maps(agree.to(explanation.heatmaps.device)
                                                    if setting.agreeing_only else None)
    mean_maps, std_maps = mean_maps.cpu().numpy(), std_maps.cpu().numpy()
    model_maps = explanation.heatmaps.cpu().numpy()  # (M, B, K, S, S)
    maps = [_ImageMaps(union, shown[b], found, lung_boxes, probs[:, b], scores[b], mean_maps[b], std_maps[b],
                       model_maps[:, b], explanation.target_layers)
            for b, (found, lung_boxes, _) in enumerate(per_image_boxes)]
    return maps, [box_skips for _, _, box_skips in per_image_boxes], seconds


def _append_scores(trained, summary: list[dict[str, Any]], explainer_name: str, device: torch.device,
                   explain_seconds: float) -> int:
    """The test split's heatmap scores appended to the run's leaderboard; the number of rows."""
    entry = trained.registry.get("explainer", explainer_name)
    rows = scoring.leaderboard_rows(summary, explainer=explainer_name,
                                    plugin_version=f"{entry.package or entry.plugin}=={entry.version or 'unknown'}",
                                    base=trained.rundir.provenance(trained.manifest), device=device_name(device),
                                    wall_time_s=round(explain_seconds, 3))
    # Under the run directory's lock: explain beside submit or another explain loses no row.
    trained.rundir.append_leaderboard(leaderboard.to_table(rows), replace=scoring.superseded_by(rows))
    return len(rows)


def _chance_json(score_frame: pd.DataFrame | None, names: Sequence[str]) -> dict[str, Any]:
    """The scored findings' hit rates by chance and each model's pointing rate (None / empty unscored)."""
    if score_frame is None:
        return {"pointing_chance": None, "mass_in_box_chance": None, "pointing_per_model": {}}
    return {"pointing_chance": round(float(score_frame["pointing_chance"].mean()), 4),
            "mass_in_box_chance": round(float(score_frame["box_share"].mean()), 4),
            "pointing_per_model": {m: round(float(score_frame[f"hit__{m}"].mean()), 4) for m in names}}


def _installed() -> bool:
    try:
        metadata.version("mlbench-imbalanced")
        return True
    except metadata.PackageNotFoundError:
        return False


def _write_image(folder: Path, identity: Mapping[str, str], item: _Item, setting: _Setting,
                 maps: _ImageMaps) -> list[dict[str, Any]]:
    """Panels, std map and JSON of one image; returns its scored findings."""
    xray, display = _display_image(item)
    n_models = len(setting.model_names)
    lung_mask = scoring.box_mask(maps.mean_maps.shape[-2:], maps.lung_boxes) if maps.lung_boxes else None
    entries: dict[str, Any] = {}
    score_rows: list[dict[str, Any]] = []
    std_panels = []
    for k, j in enumerate(maps.union):
        name = setting.labels[j]
        is_shown, has_box = j in maps.shown, name in maps.found
        if not (is_shown or has_box):
            continue
        heat, std = maps.mean_maps[k], maps.std_maps[k]
        agreeing = int((maps.probs[:, j] >= setting.threshold).sum())
        entry = _label_entry(setting, maps, k, j, is_shown, agreeing)
        if lung_mask is not None:
            entry["heatmap"]["mass_in_lungs"] = _round(scoring.mass_inside(heat, lung_mask))
        if has_box:
            row = _score_row(item, setting, maps, k, j, agreeing, lung_mask)
            entry["heatmap"].update(boxes=[[round(v, 2) for v in box] for box in maps.found[name]],
                                    pointing_hit=bool(row["hit"]), mass_in_box=_round(row["mass_in_box"]))
            score_rows.append(row)
        if is_shown:
            panel = f"{setting.panel_names[name]}.png"
            title = render.panel_title(name, float(maps.scores[j]), agreeing, n_models)
            render.write_png(folder / panel, render.overlay_png(xray, heat, title, boxes=maps.found.get(name, ())))
            entry["panel"] = panel
            std_panels.append((name, std))
        entries[name] = entry
    if std_panels:
        render.write_png(folder / "std.png", render.std_png(xray, std_panels, n_models))
    write_json(folder / "explanation.json", {
        **identity, "crop_box": list(item.crop), "display": display, "explainer": setting.explainer_name,
        "models": list(setting.model_names), "target_layers": list(maps.target_layers),
        "threshold": setting.threshold, "std_map": "std.png" if std_panels else None, "labels": entries,
    })
    return score_rows


def _label_entry(setting: _Setting, maps: _ImageMaps, k: int, j: int, is_shown: bool,
                 agreeing: int) -> dict[str, Any]:
    """One label's part of explanation.json: why it is there, the probabilities, each model's peak, the map's."""
    heat, std, probs, threshold = maps.mean_maps[k], maps.std_maps[k], maps.probs, setting.threshold
    return {
        "shown": is_shown, "why": ("requested" if setting.labels_requested else "ensemble probability >= threshold")
        if is_shown else "finding box (scored only)",
        "probability": round(float(maps.scores[j]), 4), "agreement": f"{agreeing}/{len(setting.model_names)}",
        "models": {m: {"probability": round(float(probs[i, j]), 4), "agrees": bool(probs[i, j] >= threshold),
                       "in_map": bool(not setting.agreeing_only or agreeing == 0 or probs[i, j] >= threshold),
                       "peak": _peak_json(maps.model_maps[i, k])}
                   for i, m in enumerate(setting.model_names)},
        "heatmap": {"peak": _peak_json(heat), "max": round(float(heat.max()), 4),
                    "std_mean": round(float(std.mean()), 4), "std_max": round(float(std.max()), 4)},
    }


def _score_row(item: _Item, setting: _Setting, maps: _ImageMaps, k: int, j: int, agreeing: int,
               lung_mask: np.ndarray | None) -> dict[str, Any]:
    """One scored finding of cam_scores.csv: the ensemble map's hit and mass against its boxes, each model's hit."""
    name, heat, tolerance = setting.labels[j], maps.mean_maps[k], setting.tolerance
    found = maps.found[name]
    mask = scoring.box_mask(heat.shape, found)
    peak = scoring.peak(heat) or (None, None)
    return {"image_id": item.image_id, "patient_id": item.patient_id or item.image_id,
            "label": name, "hit": float(any(scoring.pointing_hit(heat, box, tolerance) for box in found)),
            "mass_in_box": scoring.mass_inside(heat, mask),
            "mass_in_lungs": scoring.mass_inside(heat, lung_mask) if lung_mask is not None else None,
            "probability": float(maps.scores[j]), "agreeing": agreeing,
            "peak_x": peak[0], "peak_y": peak[1], "box_share": float(mask.mean()),
            "pointing_chance": max(scoring.pointing_chance(box, heat.shape, tolerance) for box in found),
            **{f"hit__{m}": float(any(scoring.pointing_hit(maps.model_maps[i, k], box, tolerance) for box in found))
               for i, m in enumerate(setting.model_names)}}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
