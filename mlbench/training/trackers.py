"""Experiment trackers: a run's live curves and results in the tool a researcher already watches.

A tracker is a plugin kind (``register_trackers``). Its factory is called as
``factory(folder, run_id, benchmark, **options)``: ``folder`` is ``RUN_DIR/trackers/NAME`` (created;
a tracker that writes locally writes there, so a moved run directory keeps its curves), ``run_id``
is the run's id from its manifest (the same on every resume: the key to find what an earlier
invocation started) and ``benchmark`` the benchmark's name. The object it returns has:

- ``log_params(params)``: the run's recipe and benchmark, flat ``{name: str | int | float | bool}``;
- ``log_epoch(backbone, record)``: one finished epoch of one backbone, ``record`` holding ``epoch``
  (0-based, the step), ``stage``, ``train_loss``, ``val_loss``, ``lr`` and ``seconds``;
- ``log_metrics(entry, metrics)``: one entry's (backbone or ensemble) test metrics, macro over labels;
- ``close()``.

:class:`Trackers` is what the runner holds: it calls every tracker the run names, each thing once
over all invocations of the run (what each tracker received is kept in the manifest, under
``trackers``), and turns a tracker's exception into one line naming it and its plugin. A tracker
named on a resume receives what it missed (the earlier epochs replayed from the history).

Built in: ``tensorboard`` (event files, one TensorBoard run per backbone or ensemble) and ``mlflow``
(one MLflow run in a SQLite store at ``folder/mlflow.db``). Their packages are imported when a
tracker is opened, never at import or registration.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import math
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from mlbench.contracts.registry import PluginEntry, PluginError, Registry
from mlbench.foundations.errors import UserError
from mlbench.results.rundir import backbone_folder_name

# What a record's numbers are called in the trackers: the curves every tracker draws.
EPOCH_CURVES = {"train_loss": "train_loss", "val_loss": "val_loss", "lr": "lr", "seconds": "epoch_seconds"}
DISTRIBUTION = "mlbench-imbalanced"  # the name the extras are installed under


class TrackerError(UserError):
    """A tracker cannot be used: unknown, its package missing, or it raised (the message names it)."""


def install_hint(entry: PluginEntry) -> str:
    """How to get a tracker's packages: its registration's ``install``, else pip of what it requires."""
    given = entry.info.get("install")
    if isinstance(given, str) and given:
        return given
    return "pip install " + " ".join(str(r) for r in entry.info.get("requires", ()))


def missing_modules(entry: PluginEntry) -> list[str]:
    """The modules a tracker's registration ``requires`` that this Python cannot import (none imported)."""
    required = entry.info.get("requires", ())
    if isinstance(required, str):
        required = (required,)
    return [m for m in required if isinstance(m, str) and importlib.util.find_spec(m.split(".")[0]) is None]


def check_trackers(registry: Registry, names: Sequence[str]) -> list[PluginEntry]:
    """Every tracker named is registered and has its packages: one line naming the first that is not."""
    entries = []
    if len(set(names)) != len(names):
        raise TrackerError(f"--tracker {','.join(names)}: a tracker is named twice")
    for name in names:
        try:
            entry = registry.get("tracker", name)
        except PluginError as exc:
            raise TrackerError(f"--tracker {name}: {exc}") from None
        missing = missing_modules(entry)
        if missing:
            raise TrackerError(f"--tracker {name}: needs the {', '.join(missing)} package"
                               f"{'s' if len(missing) > 1 else ''}, not installed here; install it with "
                               f"{install_hint(entry)}")
        entries.append(entry)
    return entries


def flat_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """A nested recipe as flat parameters: ``{"loss_options": {"gamma": 2}}`` -> ``{"loss_options.gamma": 2}``;
    lists as JSON text, None as ``"None"`` (trackers take scalars only)."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif isinstance(value, Mapping):
            flat[name] = "{}"
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(list(value), default=str)
        else:
            flat[name] = str(value)
    return flat


def epoch_curves(record: Mapping[str, Any]) -> dict[str, float]:
    """A record's finite numbers under their curve names (a record from an older run may lack ``lr``)."""
    out = {}
    for key, curve in EPOCH_CURVES.items():
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[curve] = float(value)
    return out


def entry_metrics(table: Any, global_label: str) -> dict[str, dict[str, float]]:
    """``{entry: {metric: value}}`` of a leaderboard frame's rows for ``global_label`` (finite values only)."""
    out: dict[str, dict[str, float]] = {}
    rows = table[table["label"] == global_label]
    for entry, metric, value in zip(rows["entry"], rows["metric"], rows["value"]):
        if value is not None and math.isfinite(float(value)):
            out.setdefault(str(entry), {})[str(metric)] = float(value)
    return out


# -- the runner's side ---------------------------------------------------------------------------------
@dataclass
class OpenTracker:
    name: str
    entry: PluginEntry
    tracker: Any


def what_received(ledger: Any, name: str) -> dict[str, Any]:
    """What tracker ``name`` received in earlier invocations, read from the manifest's ``trackers``
    (a malformed record counts as nothing received: the tracker gets everything again)."""
    mine = ledger.get(name) if isinstance(ledger, dict) else None
    mine = mine if isinstance(mine, dict) else {}
    epochs = mine.get("epochs") if isinstance(mine.get("epochs"), dict) else {}
    metrics = mine.get("metrics") if isinstance(mine.get("metrics"), dict) else {}
    return {"params": mine.get("params") is True,
            "epochs": {str(k): v for k, v in epochs.items()
                       if isinstance(v, int) and not isinstance(v, bool) and v >= 0},
            "metrics": {str(k): True for k, v in metrics.items() if v is True}}


# persist(tracker, field, key, value): record one thing a tracker received (key None: the field itself).
Persist = Callable[[str, str, "str | None", Any], None]


@dataclass
class Trackers:
    """The trackers of one invocation of a run; each receives each thing once over all invocations."""

    opened: list[OpenTracker]
    received: dict[str, dict[str, Any]]
    persist: Persist
    closed: bool = False

    def _call(self, tracker: OpenTracker, method: str, *args: Any) -> None:
        try:
            getattr(tracker.tracker, method)(*args)
        except Exception as exc:  # noqa: BLE001 - a plugin's failure: one line naming it, not a traceback
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise TrackerError(f"tracker '{tracker.name}' from plugin '{tracker.entry.plugin}' "
                               f"({tracker.entry.package or 'not installed'}) failed in {method}: "
                               f"{type(exc).__name__}{': ' + detail if detail else ''}") from exc

    def params(self, params: Mapping[str, Any]) -> None:
        for t in self.opened:
            if not self.received[t.name]["params"]:
                self._call(t, "log_params", dict(params))
                self.received[t.name]["params"] = True
                self.persist(t.name, "params", None, True)

    def epoch(self, backbone: str, record: Mapping[str, Any]) -> None:
        """One epoch of ``backbone`` to every tracker that has not received it (epochs arrive in order)."""
        epoch = record.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            return
        for t in self.opened:
            done = self.received[t.name]["epochs"]
            if epoch >= done.get(backbone, 0):
                self._call(t, "log_epoch", backbone, dict(record))
                done[backbone] = epoch + 1
                self.persist(t.name, "epochs", backbone, epoch + 1)

    def history(self, backbone: str, records: Any) -> None:
        """A finished backbone's stored history (history.json's list), for trackers named after it trained."""
        if isinstance(records, list):
            for record in records:
                if isinstance(record, dict):
                    self.epoch(backbone, record)

    def metrics(self, by_entry: Mapping[str, Mapping[str, float]]) -> None:
        for t in self.opened:
            sent = self.received[t.name]["metrics"]
            for entry, metrics in by_entry.items():
                if not sent.get(entry):
                    self._call(t, "log_metrics", entry, dict(metrics))
                    sent[entry] = True
                    self.persist(t.name, "metrics", entry, True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        failures = []
        for t in self.opened:  # every tracker gets its close, even after another's failed
            try:
                self._call(t, "close")
            except TrackerError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


def open_trackers(registry: Registry, names: Sequence[str], *, folder_of: Callable[[str], Path], run_id: str,
                  benchmark: str, ledger: Any, persist: Persist) -> Trackers:
    """Each tracker named, built in its folder; ``ledger`` is the manifest's record of what each received."""
    opened: list[OpenTracker] = []
    try:
        for entry in check_trackers(registry, names):
            folder = folder_of(entry.name)
            folder.mkdir(parents=True, exist_ok=True)
            tracker = registry.create("tracker", entry.name, folder=folder, run_id=run_id, benchmark=benchmark)
            for method in ("log_params", "log_epoch", "log_metrics", "close"):
                if not callable(getattr(tracker, method, None)):
                    raise TrackerError(f"tracker '{entry.name}' from plugin '{entry.plugin}' ({entry.package}): "
                                       f"its factory's object has no {method}() method")
            opened.append(OpenTracker(entry.name, entry, tracker))
    except BaseException:
        with contextlib.suppress(TrackerError):  # the failure to open is the one to report
            Trackers(opened, {}, persist).close()
        raise
    return Trackers(opened, {t.name: what_received(ledger, t.name) for t in opened}, persist)


# -- built in: TensorBoard -----------------------------------------------------------------------------
class TensorBoardTracker:
    """Event files under ``folder``: one TensorBoard run per backbone (its curves, then its test metrics
    as ``test/METRIC``) and per ensemble, the recipe as text in the folder's own run."""

    def __init__(self, folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self.folder, self.make = Path(folder), SummaryWriter
        self.writers: dict[str, Any] = {}

    def writer(self, run: str) -> Any:
        if run not in self.writers:
            where = self.folder / backbone_folder_name(run) if run else self.folder
            self.writers[run] = self.make(log_dir=str(where))
        return self.writers[run]

    def log_params(self, params: Mapping[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(params.items()))
        self.writer("").add_text("recipe", f"| parameter | value |\n|---|---|\n{rows}", global_step=0)
        self.writer("").flush()

    def log_epoch(self, backbone: str, record: Mapping[str, Any]) -> None:
        writer = self.writer(backbone)
        for curve, value in epoch_curves(record).items():
            writer.add_scalar(curve, value, global_step=record["epoch"])
        writer.flush()  # a killed run keeps what the manifest says was sent

    def log_metrics(self, entry: str, metrics: Mapping[str, float]) -> None:
        writer = self.writer(entry)
        for metric, value in metrics.items():
            writer.add_scalar(f"test/{metric}", value, global_step=0)
        writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def tensorboard_tracker(folder: Path, run_id: str, benchmark: str) -> TensorBoardTracker:
    """``tensorboard --logdir RUN_DIR/trackers/tensorboard`` shows the run."""
    return TensorBoardTracker(folder)


# -- built in: MLflow ----------------------------------------------------------------------------------
MLFLOW_STORE = "mlflow.db"
MLFLOW_RUN_TAG = "mlbench_run_id"


class MlflowTracker:
    """One MLflow run per mlbench run, found again on a resume by its ``mlbench_run_id`` tag; metrics are
    ``BACKBONE/CURVE`` per epoch (step = epoch) and ``ENTRY/test_METRIC``, the recipe as parameters."""

    def __init__(self, folder: Path, run_id: str, experiment: str) -> None:
        # Quiet: MLflow's store says at INFO level that it creates its tables.
        for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        folder = Path(folder).resolve()
        self.tracking_uri = f"sqlite:///{folder / MLFLOW_STORE}"  # found from where the run directory is now
        with warnings.catch_warnings():  # MLflow's own use of SQLAlchemy's deprecated API: nothing a user can fix
            warnings.simplefilter("ignore", DeprecationWarning)
            self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(
            experiment, artifact_location=(folder / "artifacts").as_uri())
        key = re.sub(r"[^A-Za-z0-9._:-]", "_", run_id)  # quoted in a filter below: nothing that could end it
        runs = self.client.search_runs([experiment_id], filter_string=f"tags.{MLFLOW_RUN_TAG} = '{key}'",
                                       max_results=1)
        self.run_id = runs[0].info.run_id if runs else self.client.create_run(
            experiment_id, run_name=key, tags={MLFLOW_RUN_TAG: key}).info.run_id
        self.finished = False

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in sorted(params.items())]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log_epoch(self, backbone: str, record: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(f"{backbone}/{curve}", value, now, record["epoch"])
                                                    for curve, value in epoch_curves(record).items()])

    def log_metrics(self, entry: str, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(f"{entry}/test_{m}", v, now, 0)
                                                    for m, v in metrics.items()])
        self.finished = True

    def close(self) -> None:
        if self.finished:  # a run still training stays RUNNING for the next invocation
            self.client.set_terminated(self.run_id, "FINISHED")


def mlflow_tracker(folder: Path, run_id: str, benchmark: str) -> MlflowTracker:
    """``mlflow ui --backend-store-uri sqlite:///RUN_DIR/trackers/mlflow/mlflow.db`` shows the run, in the
    experiment named after the benchmark."""
    return MlflowTracker(folder, run_id, benchmark)
