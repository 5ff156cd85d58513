"""The grid's own mistakes (issue 19): a killed grid's cell shows interrupted with the command that resumes it;
a second grid on one directory, a corrupt grid.json, run and grid directories swapped and remedies that
plan the same cells are refused in one line."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlbench.foundations import dirlock
from mlbench.cli import main
from mlbench.grid.cells import GridSpec
from mlbench.results.griddir import GRID_FILE, GridDir, cell_dir
from mlbench.grid.status import grid_status
from mlbench.foundations.io import write_json
from mlbench.contracts.registry import get_registry
from mlbench.results.rundir import RunDir
from cli_checks import assert_one_error, cli

BENCH = "padchest-specific"
TINY = ["--backbones", "resnet10t", "--seeds", "0", "--epochs", "1", "--image-size", "32", "--ensembles", "ctp",
        "--bootstrap", "10", "--workers", "1", "--quiet", "--no-pretrained"]


def identity(out: Path, **changes) -> dict:
    spec = dict(benchmark=BENCH, out=out, remedies=["uniform", "class-balanced"], backbones=["resnet10t"], seeds=[0],
                demo=True, run_options={"n_boot": 10, "device": "auto"}, n_boot=10)
    spec.update(changes)
    return GridSpec(**spec).identity()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    registry = get_registry()
    dataset = registry.create("dataset", registry.create("benchmark", BENCH).dataset)
    return dataset.write_demo(tmp_path_factory.mktemp("corpus"), seed=0, n_patients=40, image_size=96)


# ------------------------------------------------------------------ a killed grid, a second grid


def test_a_sigkilled_grid_shows_its_started_cell_interrupted_with_the_command_that_resumes_it(tmp_path, corpus,
                                                                                            monkeypatch):
    grid_dir = tmp_path / "grid"
    command = ["grid", BENCH, "--remedies", "uniform,class-balanced", *TINY, "--csv", str(corpus.csv), "--images",
               str(corpus.images), "--out", str(grid_dir)]
    grid = subprocess.Popen([sys.executable, "-m", "mlbench", *command], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    first = cell_dir(grid_dir, "uniform", 0)
    try:
        deadline = time.monotonic() + 240
        while not RunDir(first).exists():  # the grid prepares the first cell: its manifest is written
            assert grid.poll() is None and time.monotonic() < deadline, "the grid never started its first cell"
            time.sleep(0.02)
        os.kill(grid.pid, signal.SIGSTOP)
        alive = {c.remedy: c for c in grid_status(grid_dir)}
        assert alive["uniform"].state in ("running", "pending") and f"pid {grid.pid} " in alive["uniform"].detail
        assert alive["class-balanced"].state == "pending" and f"waiting for the grid (pid {grid.pid} " in \
            alive["class-balanced"].detail
        refused = cli(*command)  # a second identical grid meanwhile
        assert_one_error(refused, str(grid_dir), "already being written by `mlbench grid`", f"pid {grid.pid} ")
    finally:
        os.kill(grid.pid, signal.SIGKILL)
        grid.wait(timeout=30)

    cells = {c.remedy: c for c in grid_status(grid_dir)}
    assert cells["uniform"].state == "interrupted", cells["uniform"]
    assert f"`mlbench grid` (pid {grid.pid} " in cells["uniform"].detail and "was killed" in cells["uniform"].detail
    assert (cells["class-balanced"].state, cells["class-balanced"].detail) == ("pending", "")
    shown = cli("grid", "status", grid_dir)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.strip().splitlines()
    assert lines[-2] == "0 done, 0 running, 1 pending, 1 interrupted, 0 failed"
    assert lines[-1].startswith("resume with: mlbench grid ")
    # The command it prints is this grid: the same spec, once --csv and --images are filled in.
    resume = shlex.split(lines[-1].removeprefix("resume with: "))
    resume[resume.index("CSV")], resume[resume.index("IMAGES")] = str(corpus.csv), str(corpus.images)
    import mlbench.grid.cells

    seen = []

    def planned_only(spec, **_):
        seen.append(spec)
        raise SystemExit(0)  # the spec is all this test needs; nothing is run

    monkeypatch.setattr(mlbench.grid.cells, "run_grid", planned_only)
    CliRunner().invoke(main, resume[1:])
    assert seen and seen[0].identity() == GridDir(grid_dir).spec() and Path(seen[0].out) == grid_dir


# ------------------------------------------------------------------ grid.json from outside

CORRUPT = {
    "not json": ("not json", "not valid json"),
    "a list": ("[]", "expected a json object"),
    "a number as benchmark": ('{"benchmark": 5}', "field 'benchmark' must be"),
    "seeds as text": (None, "field 'seeds' must be"),
    "no remedies": (None, "field 'remedies' is missing"),
}


def corrupt_grid(grid_dir: Path, case: str) -> None:
    text, _ = CORRUPT[case]
    if text is None:
        spec = identity(grid_dir)
        if case == "seeds as text":
            spec["seeds"] = "0"
        else:
            del spec["remedies"]
        text = json.dumps(spec)
    grid_dir.mkdir(parents=True)
    (grid_dir / GRID_FILE).write_text(text)


@pytest.mark.parametrize("case", list(CORRUPT))
@pytest.mark.parametrize("command", ["status", "rerun", "report"])
def test_a_corrupt_grid_json_is_one_line_naming_the_file_and_the_field(tmp_path, case, command):
    grid_dir = tmp_path / "grid"
    corrupt_grid(grid_dir, case)
    args = {"status": ["grid", "status", grid_dir],
            "rerun": ["grid", BENCH, "--remedies", "uniform,class-balanced", "--demo", "--out", grid_dir],
            "report": ["report", grid_dir, "--out", tmp_path / "report.html"]}[command]
    last = assert_one_error(cli(*args), str(grid_dir / GRID_FILE), CORRUPT[case][1])
    assert "5" not in last.split(GRID_FILE, 1)[1]  # the file's content is never quoted
    assert sorted(p.name for p in grid_dir.iterdir()) == [GRID_FILE] or command == "rerun"


# ------------------------------------------------------------------ run and grid directories swapped


def test_a_grid_onto_a_run_directory_and_a_run_onto_a_grid_directory_are_refused(tmp_path):
    run_dir = tmp_path / "run"
    write_json(RunDir(run_dir).manifest_file, {"benchmark": BENCH})
    refused = cli("grid", BENCH, "--remedies", "uniform", "--demo", "--out", run_dir)
    assert_one_error(refused, f"--out {run_dir}", "is a run directory")
    assert sorted(p.name for p in run_dir.iterdir()) == ["manifest.json"]  # nothing written inside it

    grid_dir = tmp_path / "grid"
    write_json(grid_dir / GRID_FILE, identity(grid_dir))
    with dirlock.hold(grid_dir, "grid"):  # what every `mlbench grid` on it leaves: who wrote it
        pass
    refused = cli("run", BENCH, "--demo", "--out", grid_dir)
    assert_one_error(refused, str(grid_dir), "is a grid directory", "not a run directory")
    assert not RunDir(grid_dir).exists()


# ------------------------------------------------------------------ the remedy grammar

REMEDIES = {
    "uniform, ml-ros+class-aware": ["ml-ros+class-aware", "2 samplers (ml-ros, class-aware) in one remedy"],
    "uniform,class-balanced+weighted-bce": ["class-balanced+weighted-bce", "2 losses (class-balanced, weighted-bce)"],
    "uniform,fixed+val-f1": ["fixed+val-f1", "2 threshold rules (fixed, val-f1)"],
    "uniform,val-f1+val-f1": ["val-f1+val-f1", "'val-f1' twice in one remedy"],
    "uniform,ml-ros+": ["ml-ros+", "an empty part"],
    "uniform,ml-ros+val-f1,val-f1+ml-ros": ["'ml-ros+val-f1' and 'val-f1+ml-ros' plan the same cells (ml-ros+val-f1)"],
    "uniform,ml-ros,uniform+weighted-bce": [
        "'uniform' and 'uniform+weighted-bce' plan the same cells (the benchmark's own recipe)"],
    "fixed,uniform": ["'fixed' and 'uniform' plan the same cells"],
    "class-balanced,ml-ros,ml-ros+class-balanced,class-balanced+ml-ros+fixed": [
        "'ml-ros+class-balanced' and 'class-balanced+ml-ros+fixed' plan the same cells (ml-ros+class-balanced)"],
}


@pytest.mark.parametrize("remedies", list(REMEDIES))
def test_a_remedy_mistake_is_one_line_naming_the_real_problem_before_any_work(tmp_path, remedies):
    recipe = get_registry().create("benchmark", BENCH).demo_recipe
    assert (recipe.sampler, recipe.loss, recipe.threshold_rule) == ("uniform", "weighted-bce", "fixed")
    refused = cli("grid", BENCH, "--remedies", remedies, "--demo", "--out", tmp_path / "grid")
    assert_one_error(refused, "--remedies", *REMEDIES[remedies])
    assert not (tmp_path / "grid").exists()


def test_remedies_that_differ_after_normalising_are_accepted(tmp_path):
    from mlbench.grid.cells import plan_grid
    from mlbench.grid.remedies import canonical_remedy, parse_remedy

    registry = get_registry()
    recipe = registry.create("benchmark", BENCH).demo_recipe
    assert canonical_remedy(parse_remedy("val-f1+class-balanced+ml-ros", registry), recipe) == \
        "ml-ros+class-balanced+val-f1"
    assert canonical_remedy(parse_remedy("uniform+weighted-bce+fixed", registry), recipe) == ""
    spec = GridSpec(benchmark=BENCH, out=tmp_path / "grid", remedies=["uniform", "ml-ros+fixed", "ml-ros+val-f1"],
                    backbones=["resnet10t"], demo=True)
    cells = plan_grid(spec, registry)
    assert [(c.remedy.sampler, c.remedy.threshold_rule) for c in cells] == [
        ("uniform", None), ("ml-ros", "fixed"), ("ml-ros", "val-f1")]
    assert not (tmp_path / "grid").exists()
