"""The submission bundle: one zip of a finished run that a board's keeper verifies without trusting it.

This module is the one owner of the format. A bundle is a zip archive (deflate) whose members are
JSON and parquet only, so nothing in it is ever executed or unpickled::

    bundle.json           the index: format, format_version, kind ("run" | "external"), created_at,
                          and every other member with its sha256 and uncompressed size
    manifest.json         the run's manifest as the runner wrote it
    environment.json      python, torch, the CUDA version torch was built with, the GPU the run
                          recorded, and per plugin the run used: its distribution, version and one
                          sha256 over that distribution's installed files
    predictions.parquet   validation and test probabilities of every entry (backbones, ensembles)
    leaderboard.parquet   the run's claimed rows (absent in an external bundle)
    histories.json        backbone -> its training history
    skipped.json          stage -> image id -> why that stage left the image out
    checkpoints.json      backbone -> sha256 and size of its best.pt
    weights/NAME.parquet  with --with-checkpoints: the best checkpoint's tensors, one row each
                          (name, dtype, shape, little-endian raw bytes)

:func:`open_bundle` believes nothing of an archive: names, entry types, sizes, compression
ratios, hashes, JSON shapes and parquet schemas are all checked before anything is used, every
read is in memory with a cap, and a refusal is one :class:`BundleError` line naming the member
and the check (never the member's content).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import stat
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import mlbench
from mlbench.contracts.registry import PluginError, get_registry
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import atomic_path, sha256_file
from mlbench.foundations.paths import shown
from mlbench.results import leaderboard, predictions
from mlbench.results.predictions import SCHEMA as PREDICTIONS_SCHEMA
from mlbench.results.rundir import LEADERBOARD, MANIFEST, PREDICTIONS, RunDir, backbone_folder_name, now

if TYPE_CHECKING:
    import torch

FORMAT = "mlbench-bundle"
FORMAT_VERSION = 1
KINDS = ("run", "external")
INDEX = "bundle.json"
ENVIRONMENT = "environment.json"
HISTORIES = "histories.json"
SKIPPED = "skipped.json"
CHECKPOINTS = "checkpoints.json"
WEIGHTS_DIR = "weights/"
# weights/<backbone folder name>.parquet: the folder names RunDir gives backbones, never starting with a dot.
WEIGHTS_MEMBER = re.compile(r"weights/[A-Za-z0-9_-][A-Za-z0-9._-]*\.parquet")
MEMBER_EXTENSIONS = (".json", ".parquet")
REQUIRED = {"run": (MANIFEST, ENVIRONMENT, PREDICTIONS, LEADERBOARD, HISTORIES, SKIPPED, CHECKPOINTS),
            "external": (MANIFEST, ENVIRONMENT, PREDICTIONS, HISTORIES, SKIPPED, CHECKPOINTS)}
OPTIONAL = {"run": (), "external": (LEADERBOARD,)}

# 4 GiB uncompressed in all: the five paper backbones' float32 weights are about 0.5 GB and a full
# padchest-specific prediction table well under 0.2 GB, so an honest bundle stays far below it,
# while a reader is never asked to hold more than this in memory.
DEFAULT_MAX_BYTES = 4 << 30
# Deflate of JSON text reaches ~20:1; parquet members are compressed inside (zstd), so ~1:1. A
# member beyond 200:1 is a zip bomb; members under 1 MiB cannot hurt whatever their ratio.
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20
MAX_INDEX_BYTES = 4 << 20
MAX_MEMBERS = 1024
MAX_JSON_DEPTH = 32
MAX_TENSOR_DIMS = 32
READ_CHUNK = 1 << 20
PREDICTION_SPLITS = ("val", "test")
# Every member's timestamp: the archive's bytes depend on its content only (created_at says when).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
PARQUET_COMPRESSION = "zstd"
LONG_FORMAT_DICTIONARY_BYTES = 64 << 20
# Parquet members are already compressed: a light deflate pass costs little and gains little.
DEFLATE_LEVEL = {".json": 6, ".parquet": 1}

# Tensors a weights member may hold: plain numeric (and boolean mask) dtypes, as torch names them.
WEIGHT_DTYPES = ("float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool")
WEIGHTS_SCHEMA = pa.schema([("name", pa.string()), ("dtype", pa.string()), ("shape", pa.list_(pa.int64())),
                            ("data", pa.binary())])
# The key-value metadata each parquet member may carry besides arrow's own schema record: pandas'
# (index and dtype reconstruction) or an extension type's would make reading more than reading.
ARROW_SCHEMA_KEY = b"ARROW:schema"
ALLOWED_METADATA = {PREDICTIONS: set(), LEADERBOARD: set(leaderboard.SCHEMA.metadata or {}), "weights": set()}


class BundleError(UserError):
    """A bundle cannot be written or read (one line: the file or member, and the check that failed)."""


# -- writing --------------------------------------------------------------------------------------
def write_bundle(run_dir: str | os.PathLike, out: str | os.PathLike, *, with_checkpoints: bool = False) -> Path:
    """The bundle of the finished run in ``run_dir``, written atomically to ``out``; returns ``out``.

    An unfinished run is refused naming the missing file, and so is a run whose recorded python,
    torch, timm or plugin versions are not the installed ones (environment.json describes the
    software installed here, so it must be the software that made the run)."""
    rundir, out = RunDir(run_dir), Path(out)
    if not rundir.path.is_dir():
        raise BundleError(f"{rundir.path}: no such run directory")
    manifest = rundir.manifest()
    recipe = rundir.recipe()
    backbones = list(recipe.backbones)
    needed = [rundir.predictions_file, rundir.leaderboard_file]
    for name in backbones:
        needed += [rundir.best_checkpoint(name), rundir.history_file(name)]
    missing = next((p for p in needed if not p.is_file()), None)
    if missing is not None:
        raise BundleError(f"{missing}: no such file; the run is not finished (run the same `mlbench run` again "
                          "to finish it)")
    if not manifest.get("finished_at"):
        raise BundleError(f"{rundir.manifest_file}: records no finished_at; the run is not finished (run the same "
                          "`mlbench run` again to finish it)")
    check_out(out, rundir)
    plugins = plugin_records(manifest, rundir.manifest_file)  # refuses before any heavy work

    entries = backbones + list(recipe.ensembles)
    frame = _read_run_predictions(rundir, entries)
    members: dict[str, bytes] = {
        MANIFEST: json_bytes(manifest),
        ENVIRONMENT: json_bytes(environment_record(manifest, plugins)),
        PREDICTIONS: parquet_bytes(predictions_table(frame), long_format=True),
        LEADERBOARD: parquet_bytes(rundir.leaderboard()),
        HISTORIES: json_bytes({name: _read_history(rundir, name) for name in backbones}),
        SKIPPED: json_bytes(_skips_by_stage(rundir, manifest)),
        CHECKPOINTS: json_bytes({name: {"sha256": sha256_file(rundir.best_checkpoint(name)),
                                        "bytes": rundir.best_checkpoint(name).stat().st_size}
                                 for name in backbones}),
    }
    weights = {}
    if with_checkpoints:
        for name in backbones:
            weights[f"{WEIGHTS_DIR}{backbone_folder_name(name)}.parquet"] = lambda name=name: parquet_bytes(
                weights_table(_best_state(rundir, name), rundir.best_checkpoint(name)))
    return _write_archive(out, "run", members, weights)


def write_external_bundle(predictions: pd.DataFrame, *, benchmark: str, benchmark_version: str, describe: str,
                          out: str | os.PathLike) -> Path:
    """A bundle of predictions made by code outside mlbench (kind "external"): columns image_id, split
    (val or test), entry, label, probability; no checkpoints and no claimed leaderboard rows."""
    out = Path(out)
    for value, what in ((benchmark, "benchmark"), (benchmark_version, "benchmark_version"), (describe, "describe")):
        if not isinstance(value, str) or not value.strip():
            raise BundleError(f"external bundle: {what} {shown(value)}: expected a non-empty string")
    if not isinstance(predictions, pd.DataFrame):
        raise BundleError(f"external bundle: predictions is a {type(predictions).__name__}; expected a "
                          f"pandas DataFrame with columns {', '.join(PREDICTIONS_SCHEMA.names)}")
    extra = [str(c) for c in predictions.columns if c not in PREDICTIONS_SCHEMA.names]
    if extra:
        raise BundleError(f"external bundle: predictions has column {shown(extra[0])}; expected only "
                          f"{', '.join(PREDICTIONS_SCHEMA.names)}")
    check_out(out, None)
    try:
        table = pa.Table.from_pandas(predictions, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise BundleError(f"external bundle: predictions cannot be stored as a table ({type(exc).__name__}); "
                          f"expected columns {', '.join(PREDICTIONS_SCHEMA.names)} of strings and floats") from None
    frame = _validated_predictions(table, "external bundle: predictions")
    manifest = {"benchmark": benchmark, "benchmark_version": benchmark_version,
                "recipe": {"external": True, "description": describe}, "created_at": now(),
                "entries": sorted(frame["entry"].unique().tolist()), "mlbench_version": mlbench.__version__}
    members = {
        MANIFEST: json_bytes(manifest),
        ENVIRONMENT: json_bytes(environment_record({}, [])),
        PREDICTIONS: parquet_bytes(predictions_table(frame), long_format=True),
        HISTORIES: json_bytes({}), SKIPPED: json_bytes({}), CHECKPOINTS: json_bytes({}),
    }
    return _write_archive(out, "external", members, {})


def check_out(out: Path, rundir: RunDir | None) -> None:
    """``out`` can take the bundle: not a folder, not under a file, not one of a run directory's own files."""
    if out.is_dir():
        raise BundleError(f"{out}: is a folder; expected the bundle's file name (--out)")
    blocker = next((p for p in out.parents if os.path.lexists(p)), None)
    if blocker is not None and not blocker.is_dir():
        raise BundleError(f"{out}: cannot be written, {blocker} is a file; expected a folder (--out)")
    if rundir is not None and rundir.owns(out):
        raise BundleError(f"{out}: is one of the run directory's own files; choose another --out")


def _write_archive(out: Path, kind: str, members: dict[str, bytes], deferred: dict[str, Any]) -> Path:
    """The archive: members (``deferred`` ones built one at a time, so one checkpoint is in memory at once),
    then the index that lists them. Refused, nothing written, when a default reader would refuse its size."""
    listed: dict[str, dict[str, Any]] = {}
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            if deferred:
                _add_directory(archive, WEIGHTS_DIR)
            for name, data in [*members.items(), *deferred.items()]:
                data = data() if callable(data) else data
                _add_member(archive, name, data)
                listed[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                del data
            total = sum(m["bytes"] for m in listed.values())
            if total > DEFAULT_MAX_BYTES:
                raise BundleError(f"{out}: the bundle would hold {total} bytes uncompressed, above the "
                                  f"{DEFAULT_MAX_BYTES} a keeper reads by default; bundle without --with-checkpoints")
            index = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "created_at": now(),
                     "members": listed}
            _add_member(archive, INDEX, json_bytes(index))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
    return out


def _add_member(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix: the mode below is what it says
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    archive.writestr(info, data, compresslevel=DEFLATE_LEVEL[Path(name).suffix])


def _add_directory(archive: zipfile.ZipFile, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.create_system = 3
    info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10  # 0x10: the MS-DOS directory flag
    archive.writestr(info, b"")


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, default=str) + "\n").encode("utf-8")


def parquet_bytes(table: pa.Table, *, long_format: bool = False) -> bytes:
    """A table as parquet in memory. ``long_format`` (the predictions): one row group with one dictionary per
    id column (parquet's 1 MB dictionary page limit would drop 25,000 image ids back to plain strings) and
    byte-stream-split floats; on a full padchest-specific table that is 23 MB instead of 33 MB."""
    sink = pa.BufferOutputStream()
    options: dict[str, Any] = {}
    if long_format:
        strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
        floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
        options = dict(use_dictionary=strings, use_byte_stream_split=floats, row_group_size=max(table.num_rows, 1),
                       dictionary_pagesize_limit=LONG_FORMAT_DICTIONARY_BYTES)
    pq.write_table(table, sink, compression=PARQUET_COMPRESSION, **options)
    return sink.getvalue().to_pybytes()


def predictions_table(frame: pd.DataFrame) -> pa.Table:
    """A validated predictions frame as the bundle stores it: the predictions schema, no pandas metadata."""
    return predictions.from_frame(frame).replace_schema_metadata(None)


def _validated_predictions(table: pa.Table, where: str) -> pd.DataFrame:
    """:func:`mlbench.results.predictions.validate`, and only the val and test splits."""
    try:
        frame = predictions.validate(table, where)
    except predictions.PredictionsError as exc:
        raise BundleError(str(exc)) from None
    _check_splits(frame, where)
    return frame


def _check_splits(frame: pd.DataFrame, where: str) -> None:
    other = ~frame["split"].isin(PREDICTION_SPLITS)
    if other.any():
        row = int(other.to_numpy().argmax())
        raise BundleError(f"{where}: column 'split' is {predictions.show(frame['split'].iloc[row])} in "
                          f"{int(other.sum())} rows; expected {' or '.join(PREDICTION_SPLITS)}")


def _read_run_predictions(rundir: RunDir, entries: list[str]) -> pd.DataFrame:
    """RUN_DIR/predictions.parquet (the ensemble stage writes every entry's val and test rows there), checked."""
    frame = predictions.read(rundir.predictions_file)  # values checked there
    where = str(rundir.predictions_file)
    _check_splits(frame, where)
    have = set(zip(frame["entry"], frame["split"]))
    for entry in entries:
        for split in PREDICTION_SPLITS:
            if (entry, split) not in have:
                raise BundleError(f"{where}: entry '{predictions.show(entry)}' has no {split} rows; expected every "
                                  f"backbone and ensemble of the run on {' and '.join(PREDICTION_SPLITS)}")
    return frame


def _read_history(rundir: RunDir, name: str) -> dict[str, Any]:
    path = rundir.history_file(name)
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not readable JSON ({type(exc).__name__}); expected the history training writes") \
            from None
    if not isinstance(history, dict):
        raise BundleError(f"{path}: expected a JSON object, found {type(history).__name__}")
    return history


def _skips_by_stage(rundir: RunDir, manifest: dict[str, Any]) -> dict[str, dict[str, str]]:
    """stage -> item -> reason, for each stage the manifest counts skips of."""
    counts = (manifest.get("skipped") or {}).get("counts") or {}
    stages = sorted({str(key).partition(":")[0] for key in counts})
    return {stage: rundir.skips(stage) for stage in stages}


def _best_state(rundir: RunDir, name: str) -> dict[str, Any]:
    from mlbench.training import checkpoint

    path = rundir.best_checkpoint(name)
    state = checkpoint.load(path)["model"]  # weights_only: nothing in it runs
    if not isinstance(state, dict):
        raise BundleError(f"{path}: 'model' is not a state dict; expected the checkpoint training writes")
    return state


def weights_table(state: dict[str, Any], where: str | os.PathLike) -> pa.Table:
    """A state dict as the weights schema: one row per tensor, its bytes little-endian."""
    import torch

    names, dtypes, shapes, data = [], [], [], []
    for key, tensor in state.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise BundleError(f"{where}: entry {shown(key)} of the state dict is not a named tensor")
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype not in WEIGHT_DTYPES or tensor.layout is not torch.strided:
            raise BundleError(f"{where}: tensor {shown(key)} is {dtype} ({tensor.layout}); a bundle holds dense "
                              f"tensors of {', '.join(WEIGHT_DTYPES)}")
        names.append(key)
        dtypes.append(dtype)
        shapes.append(list(tensor.shape))
        data.append(tensor_bytes(tensor))
    return pa.table([pa.array(names, pa.string()), pa.array(dtypes, pa.string()),
                     pa.array(shapes, pa.list_(pa.int64())), pa.array(data, pa.binary())], schema=WEIGHTS_SCHEMA)


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    import torch

    flat = tensor.detach().cpu().contiguous().reshape(-1)
    raw = flat.view(torch.uint8).numpy() if flat.numel() else b""
    size = flat.element_size()
    if sys.byteorder == "big" and size > 1 and len(raw):
        raw = raw.reshape(-1, size)[:, ::-1]
    return bytes(raw) if isinstance(raw, bytes) else raw.tobytes()


# -- the environment ------------------------------------------------------------------------------
def plugin_records(manifest: dict[str, Any], where: str | os.PathLike) -> list[dict[str, Any]]:
    """Each plugin the manifest records (``versions.plugins``: "kind:name" -> "package==version") with its
    installed distribution's files hashed; refused when it is not installed here at the recorded version."""
    import torch

    versions = manifest.get("versions") or {}
    installed = {"python": platform.python_version(), "torch": torch.__version__, "mlbench": mlbench.__version__}
    try:
        installed["timm"] = metadata.version("timm")
    except metadata.PackageNotFoundError:
        installed["timm"] = None
    for package in ("python", "torch", "timm", "mlbench"):
        if package in versions and versions[package] != installed[package]:
            raise BundleError(f"{where}: the run used {package} {shown(versions[package])}, installed here is "
                              f"{installed[package]}; bundle the run where it was made (environment.json "
                              "describes the installed software)")
    recorded = versions.get("plugins")
    if not isinstance(recorded, dict) or not recorded:
        raise BundleError(f"{where}: records no plugin versions (versions.plugins); expected the manifest "
                          "`mlbench run` writes")
    registry, records, hashed = get_registry(), [], {}
    for key, pinned in recorded.items():
        kind, _, name = str(key).partition(":")
        try:
            entry = registry.get(kind, name)
        except PluginError:
            raise BundleError(f"{where}: the run used {kind} {shown(name)}, which is not registered here; install "
                              "its plugin or bundle the run where it was made") from None
        now_pinned = f"{entry.package or entry.plugin}=={entry.version or 'unknown'}"
        if pinned != now_pinned:
            raise BundleError(f"{where}: the run used {kind} '{name}' from {shown(pinned)}, installed here is "
                              f"{now_pinned}; bundle the run where it was made")
        if entry.package not in hashed:
            hashed[entry.package] = distribution_files(entry.package)
        files_sha256, counted, missing = hashed[entry.package]
        records.append({"kind": kind, "name": name, "plugin": entry.plugin, "distribution": entry.package,
                        "version": entry.version, "files_sha256": files_sha256, "files_hashed": counted,
                        "files_missing": missing})
    return records


def distribution_files(distribution: str | None) -> tuple[str | None, int, int]:
    """(sha256, files hashed, files missing) of a distribution's installed files: one sha256 over the
    sorted lines "relative path<TAB>sha256 of its content"; bytecode caches are left out. (None, 0, 0)
    when there is no such distribution or it lists no files."""
    if distribution is None:
        return None, 0, 0
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None, 0, 0
    files = dist.files
    if files is None:
        return None, 0, 0
    lines, missing = [], 0
    for file in files:
        if "__pycache__" in file.parts or file.suffix == ".pyc":
            continue
        located = Path(dist.locate_file(file))
        if not located.is_file():
            missing += 1
            continue
        lines.append(f"{file.as_posix()}\t{sha256_file(located)}\n")
    digest = hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()
    return digest, len(lines), missing


def environment_record(manifest: dict[str, Any], plugins: list[dict[str, Any]]) -> dict[str, Any]:
    import torch

    device = manifest.get("device")
    gpu = device.partition(":")[2].strip() or None if isinstance(device, str) and device.startswith("cuda") else None
    return {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "gpu": gpu, "mlbench": mlbench.__version__, "plugins": plugins}


# -- reading --------------------------------------------------------------------------------------
@dataclass
class Bundle:
    """An opened bundle: every member checked (names, sizes, hashes, shapes); tables read on request."""

    path: Path
    sha256: str  # of the archive file itself
    kind: str
    index: dict[str, Any]
    manifest: dict[str, Any]
    environment: dict[str, Any]
    histories: dict[str, Any]
    skipped: dict[str, Any]
    checkpoints: dict[str, Any]
    max_bytes: int = DEFAULT_MAX_BYTES
    table_bytes: dict[str, bytes] = field(default_factory=dict, repr=False)  # the predictions and leaderboard members

    def where(self, member: str) -> str:
        return f"{self.path}: {member}"

    def predictions(self) -> pd.DataFrame:
        """Every entry's val and test rows: the predictions schema, finite probabilities in [0, 1], each key once."""
        table = read_parquet(self.table_bytes[PREDICTIONS], predictions.SCHEMA, self.where(PREDICTIONS),
                             ALLOWED_METADATA[PREDICTIONS], self.max_bytes)
        return _validated_predictions(table, self.where(PREDICTIONS))

    def leaderboard(self) -> pa.Table | None:
        """The claimed rows (the leaderboard schema), or None for an external bundle without them."""
        data = self.table_bytes.get(LEADERBOARD)
        if data is None:
            return None
        table = read_parquet(data, leaderboard.SCHEMA, self.where(LEADERBOARD), ALLOWED_METADATA[LEADERBOARD],
                             self.max_bytes)
        try:
            return leaderboard.validate_table(table, where=self.where(LEADERBOARD))
        except leaderboard.LeaderboardError as exc:
            raise BundleError(str(exc)) from None

    def weights_member(self, backbone: str) -> str:
        return f"{WEIGHTS_DIR}{backbone_folder_name(backbone)}.parquet"

    def has_weights(self, backbone: str) -> bool:
        return self.weights_member(backbone) in self.index["members"]

    def weights(self, backbone: str) -> dict[str, torch.Tensor]:
        """The backbone's best checkpoint as a state dict; a row of an unknown dtype, a length that is not
        its shape's, or a repeated name is refused."""
        import torch

        member = self.weights_member(backbone)
        if not self.has_weights(backbone):
            raise BundleError(f"{self.path}: holds no weights of backbone {shown(backbone)} (bundled without "
                              "--with-checkpoints?)")
        declared = self.index["members"][member]
        with open(self.path, "rb") as handle:
            archive = _open_zip(handle, self.path)
            with archive:
                try:
                    info = archive.getinfo(member)
                except KeyError:
                    info = None
                if info is None or info.file_size != declared["bytes"]:
                    raise BundleError(f"{self.where(member)}: is gone or not the size {INDEX} lists; the file "
                                      "changed since it was opened")
                data = _read_member(archive, info, declared, self.where(member))
        table = read_parquet(data, WEIGHTS_SCHEMA, self.where(member), ALLOWED_METADATA["weights"], self.max_bytes)
        del data
        state: dict[str, torch.Tensor] = {}
        row = 0
        for batch in table.to_batches():
            names, dtypes, shapes = (batch.column(c).to_pylist() for c in ("name", "dtype", "shape"))
            blobs = batch.column("data")
            for i in range(batch.num_rows):
                row += 1
                state_key = names[i]
                where = f"{self.where(member)}: row {row}"
                if not state_key:
                    raise BundleError(f"{where}: no tensor name; expected the state dict key")
                if state_key in state:
                    raise BundleError(f"{where}: repeats the name of an earlier row; expected each tensor once")
                state[state_key] = decode_tensor(dtypes[i], shapes[i], blobs[i].as_buffer(), where)
        return state


def decode_tensor(dtype_name: Any, shape: Any, raw: pa.Buffer | None, where: str) -> torch.Tensor:
    import torch

    if dtype_name not in WEIGHT_DTYPES:
        raise BundleError(f"{where}: dtype is not one of {', '.join(WEIGHT_DTYPES)}")
    dtype = getattr(torch, dtype_name)
    if (shape is None or len(shape) > MAX_TENSOR_DIMS
            or any(not isinstance(n, int) or n < 0 for n in shape)):
        raise BundleError(f"{where}: shape is not a list of at most {MAX_TENSOR_DIMS} sizes >= 0")
    if raw is None:
        raise BundleError(f"{where}: no data; expected the tensor's bytes")
    size = torch.empty((), dtype=dtype).element_size()
    expected = math.prod(shape) * size
    if raw.size != expected:
        raise BundleError(f"{where}: holds {raw.size} bytes; its shape and dtype need {expected}")
    if expected == 0:
        return torch.empty(shape, dtype=dtype)
    data = bytearray(raw.to_pybytes())
    if sys.byteorder == "big" and size > 1:
        import numpy as np

        data = bytearray(np.frombuffer(data, np.uint8).reshape(-1, size)[:, ::-1].tobytes())
    return torch.frombuffer(data, dtype=dtype).reshape(shape)


def open_bundle(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Bundle:
    """Open and check a bundle (module docstring); nothing is written, everything is read in memory."""
    path = Path(path)
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1:
        raise BundleError(f"max_bytes={shown(max_bytes)}: expected an int >= 1")
    if not path.exists():
        raise BundleError(f"{path}: no such bundle file")
    if not path.is_file():
        raise BundleError(f"{path}: is not a regular file; expected a bundle `mlbench bundle` writes")
    size = path.stat().st_size
    if size > max_bytes:
        raise BundleError(f"{path}: is {size} bytes, above the limit of {max_bytes} (max_bytes)")
    with open(path, "rb") as handle:
        digest = hashlib.sha256()
        while block := handle.read(READ_CHUNK):
            digest.update(block)
        handle.seek(0)
        archive = _open_zip(handle, path)
        with archive:
            files = _check_entries(archive.infolist(), path)
            index = _read_index(archive, files, path)
            _check_members(index, files, path, max_bytes)
            parsed: dict[str, Any] = {}
            for name in sorted(n for n in index["members"] if n.endswith(".json")):
                where = f"{path}: {name}"
                parsed[name] = parse_json(_read_member(archive, files[name], index["members"][name], where), where)
            _check_json_members(parsed, index, path)
            tables: dict[str, bytes] = {}
            for name in sorted(n for n in index["members"] if n.endswith(".parquet")):
                where = f"{path}: {name}"
                data = _read_member(archive, files[name], index["members"][name], where)
                if name in (PREDICTIONS, LEADERBOARD):
                    schema = predictions.SCHEMA if name == PREDICTIONS else leaderboard.SCHEMA
                    check_parquet(data, schema, where, ALLOWED_METADATA[name], max_bytes)
                    tables[name] = data
                else:
                    check_parquet(data, WEIGHTS_SCHEMA, where, ALLOWED_METADATA["weights"], max_bytes)
    return Bundle(path=path, sha256=digest.hexdigest(), kind=index["kind"], index=index, manifest=parsed[MANIFEST],
                  environment=parsed[ENVIRONMENT], histories=parsed[HISTORIES], skipped=parsed[SKIPPED],
                  checkpoints=parsed[CHECKPOINTS], max_bytes=max_bytes, table_bytes=tables)


def _open_zip(handle: Any, path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError):
        raise BundleError(f"{path}: not a zip archive, or a truncated or damaged one; expected a bundle "
                          "`mlbench bundle` writes") from None


def _check_entries(infos: list[zipfile.ZipInfo], path: Path) -> dict[str, zipfile.ZipInfo]:
    """Every entry's name and type; the regular files by name (the one folder allowed is weights/)."""
    if len(infos) > MAX_MEMBERS:
        raise BundleError(f"{path}: holds {len(infos)} entries, more than the {MAX_MEMBERS} a bundle may hold")
    files: dict[str, zipfile.ZipInfo] = {}
    seen: set[str] = set()
    for info in infos:
        raw = info.orig_filename  # zipfile cuts the name at a NUL byte; the original keeps it
        member = f"{path}: member {shown(raw)}"
        if "\x00" in raw:
            raise BundleError(f"{member}: its name holds a NUL byte")
        if raw.startswith("/"):
            raise BundleError(f"{member}: its name is an absolute path; expected a name inside the bundle")
        if "\\" in raw:
            raise BundleError(f"{member}: its name holds a backslash; expected '/' between folders")
        if re.match(r"[A-Za-z]:", raw):
            raise BundleError(f"{member}: its name starts with a drive letter; expected a name inside the bundle")
        if ".." in raw.split("/"):
            raise BundleError(f"{member}: its name climbs out with '..'; expected a name inside the bundle")
        if raw in seen:
            raise BundleError(f"{member}: appears more than once; expected each member once")
        seen.add(raw)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if info.is_dir():
            if raw != WEIGHTS_DIR:
                raise BundleError(f"{member}: is a folder; the only folder a bundle holds is {WEIGHTS_DIR}")
            if kind not in (0, stat.S_IFDIR):
                raise BundleError(f"{member}: is not a folder entry; expected {WEIGHTS_DIR} as a plain folder")
            continue
        if stat.S_ISLNK(kind):
            raise BundleError(f"{member}: is a symbolic link; expected a regular file")
        if kind not in (0, stat.S_IFREG):
            raise BundleError(f"{member}: is not a regular file (a device, pipe or socket entry)")
        if info.flag_bits & 0x1:
            raise BundleError(f"{member}: is encrypted; expected a plain member")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"{member}: uses a compression other than deflate")
        files[raw] = info
    return files


def _read_index(archive: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], path: Path) -> dict[str, Any]:
    where = f"{path}: {INDEX}"
    info = files.get(INDEX)
    if info is None:
        raise BundleError(f"{path}: holds no {INDEX} (the index); expected a bundle `mlbench bundle` writes")
    if info.file_size > MAX_INDEX_BYTES:
        raise BundleError(f"{where}: declares {info.file_size} bytes, above the {MAX_INDEX_BYTES} an index may have")
    data = _read_member(archive, info, {"bytes": info.file_size, "sha256": None}, where)
    index = parse_json(data, where)
    if index.get("format") != FORMAT:
        raise BundleError(f"{where}: 'format' is not '{FORMAT}'; expected a bundle `mlbench bundle` writes")
    version = index.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{where}: 'format_version' is not an int >= 1")
    if version != FORMAT_VERSION:
        raise BundleError(f"{where}: format_version {version} is newer than the {FORMAT_VERSION} this mlbench reads; "
                          "upgrade mlbench")
    if index.get("kind") not in KINDS:
        raise BundleError(f"{where}: 'kind' is not one of {', '.join(KINDS)}")
    if not isinstance(index.get("created_at"), str):
        raise BundleError(f"{where}: 'created_at' is not a string")
    members = index.get("members")
    if not isinstance(members, dict):
        raise BundleError(f"{where}: 'members' is not an object of member name -> sha256 and bytes")
    for name, entry in members.items():
        if (not isinstance(entry, dict) or set(entry) != {"sha256", "bytes"}
                or not isinstance(entry["sha256"], str) or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
                or not isinstance(entry["bytes"], int) or isinstance(entry["bytes"], bool) or entry["bytes"] < 0):
            raise BundleError(f"{where}: the entry of member {shown(name)} is not {{\"sha256\": 64 hex digits, "
                              "\"bytes\": an int >= 0}")
    if INDEX in members:
        raise BundleError(f"{where}: lists itself; expected every other member")
    return index


def _known(name: str, kind: str) -> bool:
    return name in REQUIRED[kind] or name in OPTIONAL[kind] or (kind == "run" and bool(WEIGHTS_MEMBER.fullmatch(name)))


def _check_members(index: dict[str, Any], files: dict[str, zipfile.ZipInfo], path: Path, max_bytes: int) -> None:
    """The archive holds exactly the listed members, each one the format knows, within the size limits."""
    listed, kind = index["members"], index["kind"]
    for name in files:
        if name != INDEX and name not in listed:
            raise BundleError(f"{path}: member {shown(name)} is not listed in {INDEX}; expected every member listed")
    for name in listed:
        if name not in files:
            raise BundleError(f"{path}: {INDEX} lists member {shown(name)}, which the archive does not hold")
    for name in listed:
        if not name.endswith(MEMBER_EXTENSIONS):
            raise BundleError(f"{path}: member {shown(name)} is neither .json nor .parquet; a bundle holds only those")
        if not _known(name, kind):
            raise BundleError(f"{path}: member {shown(name)} is not a member the format knows for kind '{kind}'")
    for name in REQUIRED[kind]:
        if name not in listed:
            raise BundleError(f"{path}: holds no {name}; a {kind} bundle has {', '.join(REQUIRED[kind])}")
    total = files[INDEX].file_size + sum(max(files[n].file_size, entry["bytes"]) for n, entry in listed.items())
    if total > max_bytes:
        raise BundleError(f"{path}: declares {total} bytes uncompressed in all, above the limit of {max_bytes} "
                          "(max_bytes)")
    for name, entry in listed.items():
        info = files[name]
        if info.file_size != entry["bytes"]:
            raise BundleError(f"{path}: member {shown(name)}: the archive declares {info.file_size} bytes, "
                              f"{INDEX} {entry['bytes']}; expected the same size")
    for name, info in files.items():
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise BundleError(f"{path}: member {shown(name)} expands {info.file_size // max(info.compress_size, 1)} "
                              f"times, beyond the {MAX_RATIO}:1 a bundle's members reach (a zip bomb?)")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, declared: dict[str, Any], where: str) -> bytes:
    """A member's bytes, read in chunks and never past its declared size; its sha256 checked when declared."""
    limit, got, digest, chunks = declared["bytes"], 0, hashlib.sha256(), []
    try:
        with archive.open(info) as stream:
            while block := stream.read(min(READ_CHUNK, limit - got + 1)):
                got += len(block)
                if got > limit:
                    raise BundleError(f"{where}: holds more than its declared {limit} bytes")
                digest.update(block)
                chunks.append(block)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError, RuntimeError, NotImplementedError):
        raise BundleError(f"{where}: damaged: its data does not decompress to its declared size and CRC") from None
    if got != limit:
        raise BundleError(f"{where}: holds {got} bytes, not its declared {limit}")
    if declared["sha256"] is not None and digest.hexdigest() != declared["sha256"]:
        raise BundleError(f"{where}: its sha256 is not the one {INDEX} lists; the member was changed")
    return b"".join(chunks)


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object repeats a key")
    return result


def parse_json(data: bytes, where: str) -> dict[str, Any]:
    """A JSON object of at most MAX_JSON_DEPTH levels with no repeated key (else one BundleError)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"{where}: not UTF-8 text; expected JSON") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_repeated_keys)
    except RecursionError:
        raise BundleError(f"{where}: nests deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # the hook's
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BundleError(f"{where}: holds a JSON {type(value).__name__}; expected an object")
    if _depth(value) > MAX_JSON_DEPTH:
        raise BundleError(f"{where}: nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _check_json_members(parsed: dict[str, Any], index: dict[str, Any], path: Path) -> None:
    """The shapes the format gives its JSON members (their values are the verifier's to judge)."""
    manifest = parsed[MANIFEST]
    for key in ("benchmark", "benchmark_version"):
        if not isinstance(manifest.get(key), str):
            raise BundleError(f"{path}: {MANIFEST}: '{key}' is not a string")
    if not isinstance(parsed[ENVIRONMENT].get("plugins"), list) or not all(
            isinstance(p, dict) for p in parsed[ENVIRONMENT]["plugins"]):
        raise BundleError(f"{path}: {ENVIRONMENT}: 'plugins' is not a list of objects")
    if not all(isinstance(h, dict) for h in parsed[HISTORIES].values()):
        raise BundleError(f"{path}: {HISTORIES}: expected backbone -> its history (an object)")
    if not all(isinstance(items, dict) and all(isinstance(r, str) for r in items.values())
               for items in parsed[SKIPPED].values()):
        raise BundleError(f"{path}: {SKIPPED}: expected stage -> image id -> reason (strings)")
    checkpoints = parsed[CHECKPOINTS]
    for name, entry in checkpoints.items():
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
                or not isinstance(entry.get("bytes"), int) or isinstance(entry.get("bytes"), bool)):
            raise BundleError(f"{path}: {CHECKPOINTS}: the entry of backbone {shown(name)} is not {{\"sha256\": "
                              "64 hex digits, \"bytes\": an int}")
    if index["kind"] == "external" and checkpoints:
        raise BundleError(f"{path}: {CHECKPOINTS}: an external bundle holds no checkpoints")
    folders = {f"{WEIGHTS_DIR}{backbone_folder_name(name)}.parquet" for name in checkpoints}
    for name in index["members"]:
        if name.startswith(WEIGHTS_DIR) and name not in folders:
            raise BundleError(f"{path}: member {shown(name)} holds the weights of no backbone {CHECKPOINTS} lists")


def check_parquet(data: bytes, expected: pa.Schema, where: str, allowed: Iterable[bytes], max_bytes: int) -> pq.ParquetFile:
    """A parquet member's footer and schema, checked before any row is decoded: exactly ``expected``'s
    columns and types (an extension type is never equal to one), no field metadata, no key-value
    metadata but arrow's schema record and ``allowed``, and a declared uncompressed size within limits."""
    allowed = set(allowed)
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        meta, schema = parquet.metadata, parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError):
        raise BundleError(f"{where}: not a readable parquet file") from None
    if set(meta.metadata or {}) - allowed - {ARROW_SCHEMA_KEY} or set(schema.metadata or {}) - allowed:
        raise BundleError(f"{where}: carries metadata the bundle format does not write (pandas' or an extension "
                          "type's); expected a plain table")
    names = list(expected.names)
    if schema.names != names:
        raise BundleError(f"{where}: has {len(schema.names)} columns that are not {', '.join(names)} in this order")
    for have, want in zip(schema, expected):
        if have.type != want.type or have.metadata:
            raise BundleError(f"{where}: column '{want.name}' is not of type {want.type}")
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if declared > max_bytes:
        raise BundleError(f"{where}: declares {declared} bytes of rows, above the limit of {max_bytes} (max_bytes)")
    return parquet


def read_parquet(data: bytes, expected: pa.Schema, where: str, allowed: Iterable[bytes], max_bytes: int) -> pa.Table:
    """A parquet member checked by :func:`check_parquet`, then decoded; metadata dropped before any pandas use."""
    parquet = check_parquet(data, expected, where, allowed, max_bytes)
    try:
        table = parquet.read()
    except (pa.ArrowException, OSError, ValueError):
        raise BundleError(f"{where}: its rows cannot be decoded; the parquet data is damaged") from None
    return table.replace_schema_metadata(expected.metadata)
