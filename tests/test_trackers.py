"""Experiment trackers: a tiny run's curves read back with each tracker's own reader equal the run's
history; a resumed, rerun or moved run sends nothing twice; a missing package, an unknown name and a
tracker that raises are one line each; a third party's tracker registered through the hook gets the epochs."""

from __future__ import annotations

import json
import shutil
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlbench.contracts.benchmark import Recipe
from mlbench.contracts.hookspecs import hookimpl
from mlbench.contracts.registry import build_registry, get_registry
from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.results.metrics import MetricWarning
from mlbench.results.rundir import RunDir
from mlbench.training import trackers as tracking
from mlbench.training.loop import train
from mlbench.training.runner import RunOptions, plan_run, run

BACKBONE = "mobilenetv3_small_050"
CURVES = {"train_loss": "train_loss", "val_loss": "val_loss", "lr": "lr", "epoch_seconds": "seconds"}


def tiny(root: Path, *, max_epochs: int = 2, ensembles=("ctp",), **more) -> RunOptions:
    """A tiny demo run in ROOT/run (its corpus in ROOT/demo): one backbone at 32 px, from scratch."""
    return RunOptions(benchmark="padchest-specific", out=root / "run", demo=True, demo_dir=root / "demo",
                      demo_options={"n_patients": 48, "image_size": 64, "n_corrupt": 0}, image_size=32,
                      max_epochs=max_epochs, backbones=(BACKBONE,), ensembles=ensembles, pretrained=False, seed=0,
                      progress=False, workers=1, n_boot=20, **more)


def quiet_run(opts, registry=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)  # labels without test positives in a tiny demo
        return run(opts, registry)


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    return quiet_run(tiny(tmp_path_factory.mktemp("tracked"), trackers=("tensorboard", "mlflow"))).run_dir


def history(run_dir: Path) -> list[dict]:
    return json.loads(RunDir(run_dir).history_file(BACKBONE).read_text())["history"]


def global_metrics(run_dir: Path, entry: str) -> dict[str, float]:
    board = pd.read_parquet(RunDir(run_dir).leaderboard_file)
    rows = board[(board["label"] == GLOBAL_LABEL) & (board["entry"] == entry)]
    return {m: v for m, v in zip(rows["metric"], rows["value"]) if v == v}


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def mlflow_client(run_dir: Path):
    from mlflow.tracking import MlflowClient

    store = RunDir(run_dir).tracker_dir("mlflow") / tracking.MLFLOW_STORE
    return MlflowClient(tracking_uri=f"sqlite:///{store.resolve()}")


def mlflow_runs(run_dir: Path):
    client = mlflow_client(run_dir)
    experiment = client.get_experiment_by_name("padchest-specific")
    return client, client.search_runs([experiment.experiment_id])


def test_tensorboard_curves_are_the_runs_history_per_epoch(tracked):
    scalars = tensorboard_scalars(RunDir(tracked).tracker_dir("tensorboard") / BACKBONE)
    epochs = history(tracked)
    assert [r["epoch"] for r in epochs] == [0, 1]
    for curve, key in CURVES.items():
        assert [step for step, _ in scalars[curve]] == [0, 1], curve  # the step is the epoch
        # Event files hold float32: equal to the history at that precision.
        np.testing.assert_allclose([v for _, v in scalars[curve]], [r[key] for r in epochs], rtol=1e-6)
    assert all(r["lr"] == RunDir(tracked).recipe().lr for r in epochs)
    for entry in (BACKBONE, "ctp"):
        final = tensorboard_scalars(RunDir(tracked).tracker_dir("tensorboard") / entry)
        want = global_metrics(tracked, entry)
        assert want and {k.removeprefix("test/") for k in final if k.startswith("test/")} == set(want)
        np.testing.assert_allclose([final[f"test/{m}"][0][1] for m in want], list(want.values()), rtol=1e-6)


def test_mlflow_run_holds_the_curves_the_final_metrics_and_the_recipe(tracked):
    client, runs = mlflow_runs(tracked)
    assert len(runs) == 1
    found = runs[0]
    m = RunDir(tracked).manifest()
    assert found.data.tags[tracking.MLFLOW_RUN_TAG] == m["run_id"] and found.info.status == "FINISHED"
    epochs = history(tracked)
    for curve, key in CURVES.items():
        points = client.get_metric_history(found.info.run_id, f"{BACKBONE}/{curve}")
        assert sorted((p.step, p.value) for p in points) == [(r["epoch"], r[key]) for r in epochs], curve
    for entry in (BACKBONE, "ctp"):
        want = global_metrics(tracked, entry)
        got = {k.split("/test_", 1)[1]: v for k, v in found.data.metrics.items() if k.startswith(f"{entry}/test_")}
        assert got == pytest.approx(want)
    recipe = RunDir(tracked).recipe()
    params = found.data.params
    assert params["lr"] == str(recipe.lr) and params["max_epochs"] == "2"
    assert json.loads(params["backbones"]) == [BACKBONE] and params["benchmark"] == "padchest-specific"


def test_the_manifest_names_the_trackers_with_relative_folders_and_the_identity_stays(tracked, tmp_path):
    m = RunDir(tracked).manifest()
    record = m["trackers"]
    assert set(record) == {"tensorboard", "mlflow"}
    assert record["tensorboard"]["folder"] == "trackers/tensorboard" and record["mlflow"]["plugin"] == "trackers"
    assert record["mlflow"]["epochs"] == {BACKBONE: 2} and record["tensorboard"]["metrics"] == {BACKBONE: True,
                                                                                               "ctp": True}
    assert str(Path(tracked).resolve()) not in json.dumps(record)
    assert "trackers" not in json.dumps(m["identity"])
    # Planned again without trackers, the same run directory is the same run (no refusal).
    plan = plan_run(tiny(Path(tracked).parent))
    assert plan.identity["recipe"] == m["identity"]["recipe"]


def test_a_moved_run_resumed_with_another_tracker_set_sends_nothing_twice(tracked, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(Path(tracked).parent, moved)  # the run and its demo corpus, as a user moves them
    seen: list[tuple] = []
    registry = build_registry(plugins=[recording_plugin(seen)])
    quiet_run(tiny(moved, trackers=("mlflow", "tensorboard", "recorder")), registry)
    # The trackers that had everything get nothing more: no duplicated step in either reader.
    scalars = tensorboard_scalars(RunDir(moved / "run").tracker_dir("tensorboard") / BACKBONE)
    assert [step for step, _ in scalars["train_loss"]] == [0, 1]
    client, runs = mlflow_runs(moved / "run")
    assert len(runs) == 1  # found again where the run directory is now
    assert len(client.get_metric_history(runs[0].info.run_id, f"{BACKBONE}/val_loss")) == 2
    # The tracker named only now receives what it missed, once: the recipe, both epochs, the final metrics.
    kinds = [s[0] for s in seen]
    assert kinds.count("params") == 1 and kinds.count("close") == 1
    assert [(s[1], s[2]["epoch"]) for s in seen if s[0] == "epoch"] == [(BACKBONE, 0), (BACKBONE, 1)]
    assert sorted(s[1] for s in seen if s[0] == "metrics") == sorted([BACKBONE, "ctp"])


class Recorder:
    """A third party's tracker: everything it is sent, in order."""

    def __init__(self, seen: list, folder: Path) -> None:
        self.seen, self.folder = seen, folder

    def log_params(self, params):
        self.seen.append(("params", params))

    def log_epoch(self, backbone, record):
        self.seen.append(("epoch", backbone, record))

    def log_metrics(self, entry, metrics):
        self.seen.append(("metrics", entry, metrics))

    def close(self):
        self.seen.append(("close",))


def recording_plugin(seen: list, fail_in: str | None = None) -> types.ModuleType:
    module = types.ModuleType("recording_trackers")

    def factory(folder, run_id, benchmark):
        recorder = Recorder(seen, folder)
        if fail_in is not None:
            def broken(*args):
                raise RuntimeError("the tracking server said no\nsecond line")
            setattr(recorder, fail_in, broken)
        return recorder

    @hookimpl
    def register_trackers(register):
        register("recorder", factory, summary="records what it is sent")

    module.register_trackers = register_trackers
    return module


def test_a_third_party_tracker_receives_each_epoch_as_it_trains(tmp_path):
    seen: list[tuple] = []
    registry = build_registry(plugins=[recording_plugin(seen)])
    run_dir = quiet_run(tiny(tmp_path, max_epochs=1, ensembles=(), trackers=("recorder",)), registry).run_dir
    epochs = [s[2] for s in seen if s[0] == "epoch"]
    assert epochs == history(run_dir)  # the loop's own records: epoch, stage, losses, lr, seconds
    assert {"epoch", "stage", "train_loss", "val_loss", "lr", "seconds"} <= set(epochs[0])
    assert seen[0][0] == "params" and seen[0][1]["lr"] == RunDir(run_dir).recipe().lr
    assert [s[0] for s in seen][-2:] == ["metrics", "close"] and seen[-2][2] == global_metrics(run_dir, BACKBONE)
    assert RunDir(run_dir).tracker_dir("recorder").is_dir()


class Killed(Exception):
    """Stands for a kill between an epoch's checkpoint and its trackers."""


def test_a_resumed_backbone_replays_its_earlier_epochs_and_trackers_keep_each_once(tmp_path):
    """The loop hands a resume's earlier epochs over again; the ledger drops what was sent, so a
    tracker gets every epoch once, the one lost to the kill included."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    images = torch.randint(0, 255, (8, 4, 4), dtype=torch.uint8)
    targets = (torch.arange(16).reshape(8, 2) % 3 == 0).float()
    seen, ledger = [], {}

    def persist(tracker, what, key, value):
        ledger.setdefault(tracker, {}).setdefault(what, {})[key] = value

    def invocation(kill_at=None):
        registry = build_registry(entry_points=False, plugins=[recording_plugin(seen)])
        session = tracking.open_trackers(registry, ["recorder"], folder_of=lambda name: tmp_path / name, run_id="r",
                                         benchmark="b", ledger=json.loads(json.dumps(ledger)), persist=persist)
        received = []

        def on_epoch(record):
            if record["epoch"] == kill_at:
                raise Killed
            received.append(record["epoch"])
            session.epoch("x", record)

        try:
            train(model, torch.nn.BCEWithLogitsLoss(), Recipe(backbones=("x",), max_epochs=3, batch_size=4,
                                                                 patience=10), train_images=images,
                  train_targets=targets, val_images=images, val_targets=targets, checkpoint_dir=tmp_path / "ckpt",
                  device=torch.device("cpu"), on_epoch=on_epoch)
        finally:
            session.close()
        return received

    with pytest.raises(Killed):
        invocation(kill_at=1)  # epoch 1 is saved in last.pt, its trackers never heard of it
    assert invocation() == [0, 1, 2]  # the resume replays epochs 0 and 1, then trains 2
    assert [s[2]["epoch"] for s in seen if s[0] == "epoch"] == [0, 1, 2]
    assert ledger["recorder"]["epochs"] == {"x": 3}


def test_an_unknown_tracker_is_one_line_listing_the_registered_ones(tmp_path):
    with pytest.raises(tracking.TrackerError) as caught:
        plan_run(tiny(tmp_path, trackers=("wandb",)))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--tracker wandb: no tracker named 'wandb'")
    assert "mlflow" in message and "tensorboard" in message


def test_a_missing_package_is_refused_when_planned_naming_the_extra(tmp_path, monkeypatch):
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(tracking.TrackerError) as caught:
        plan_run(tiny(tmp_path, trackers=("mlflow", "tensorboard")))
    assert str(caught.value) == ("--tracker tensorboard: needs the tensorboard package, not installed here; "
                                 "install it with pip install 'mlbench-imbalanced[tensorboard]'")
    assert not (tmp_path / "run").exists() and not (tmp_path / "demo").exists()  # before any data work


def test_a_tracker_that_raises_is_one_line_naming_it_and_its_plugin(tmp_path):
    registry = build_registry(entry_points=False, plugins=[recording_plugin([], fail_in="log_epoch")])
    session = tracking.open_trackers(registry, ["recorder"], folder_of=lambda name: tmp_path / name, run_id="r",
                                     benchmark="b", ledger=None, persist=lambda *a: None)
    with pytest.raises(tracking.TrackerError) as caught:
        session.epoch("x", {"epoch": 0, "train_loss": 1.0})
    assert str(caught.value) == ("tracker 'recorder' from plugin 'recording_trackers' (not installed) failed in "
                                 "log_epoch: RuntimeError: the tracking server said no")


def test_the_cli_takes_tracker_on_run_and_grid(tmp_path):
    from click.testing import CliRunner

    from mlbench.cli import main

    for command in (["run", "padchest-specific", "--demo", "--out", str(tmp_path / "r")],
                    ["grid", "padchest-specific", "--demo", "--remedies", "uniform", "--out", str(tmp_path / "g")]):
        result = CliRunner().invoke(main, [*command, "--tracker", "tensorboard,nope"])
        assert result.exit_code == 1 and "Error: --tracker nope: no tracker named 'nope'" in result.output
        assert "Traceback" not in result.output and not (tmp_path / "g" / "cells").exists()


def test_building_the_registry_and_importing_mlbench_import_no_tracker_package():
    import subprocess
    import sys

    code = ("import sys, mlbench\nfrom mlbench.contracts.registry import build_registry\n"
            "r = build_registry(cache=False)\nimport mlbench.training.trackers\n"
            "print(sorted(r.names('tracker')), [m for m in ('tensorboard', 'mlflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['mlflow', 'tensorboard'] []"


def test_tensorboard_passes_conformance_and_a_tracker_without_its_package_is_skipped(monkeypatch):
    # (mlflow's conformance, `mlbench plugins test trackers`, makes a second store: ~10 s of schema migrations.)
    from mlbench.conformance import PASS, SKIP, check_plugin

    report = check_plugin("trackers", get_registry(), names=("tensorboard",))
    assert [(r.name, r.status) for r in report.results] == [("tensorboard", PASS)], report.results
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    (skipped,) = check_plugin("trackers", get_registry(), names=("mlflow",)).results
    assert skipped.status == SKIP and "pip install 'mlbench-imbalanced[mlflow]'" in skipped.detail


def test_a_grid_gives_every_cell_its_trackers_outside_the_grid_identity(tmp_path):
    from mlbench.grid.cells import GridSpec, plan_grid

    registry = build_registry(plugins=[recording_plugin([])])
    spec = dict(benchmark="padchest-specific", out=tmp_path / "grid", remedies=["uniform", "ml-ros"], demo=True,
                backbones=[BACKBONE], seeds=[0], run_options={"max_epochs": 1, "pretrained": False}, progress=False)
    cells = plan_grid(GridSpec(**spec, trackers=("recorder",)), registry)
    assert [tuple(c.options.trackers) for c in cells] == [("recorder",), ("recorder",)]
    assert GridSpec(**spec, trackers=("recorder",)).identity() == GridSpec(**spec).identity()
