"""The example plugin installs with pip into a fresh virtual environment and works there end to end.

The environment sees the system's site-packages (torch, timm, ... are not re-installed; there is no
network), but mlbench and the plugin are installed into it from copies of their sources, so what
runs is what pip installed: the test checks that both import from the environment, not from
this checkout.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "plugins" / "mlbench-imbalanced-losses"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info", "dist")

pytestmark = pytest.mark.slow


def _sources(dest: Path) -> tuple[Path, Path]:
    """Copies of mlbench's and the plugin's sources (a build writes into its source folder)."""
    core = dest / "mlbench-src"
    core.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, core / name)
    shutil.copytree(REPO / "mlbench", core / "mlbench", ignore=IGNORE)
    shutil.copytree(REPO / "benchmarks" / "padchest" / "mlbench_padchest",
                    core / "benchmarks" / "padchest" / "mlbench_padchest", ignore=IGNORE)
    plugin = dest / "plugin-src"
    shutil.copytree(PLUGIN, plugin, ignore=IGNORE)
    return core, plugin


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh-env")
    core, plugin = _sources(root)
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env_dir)],
                   check=True)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLBENCH_PLUGINS", "VIRTUAL_ENV")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="2")
    for source in (core, plugin):
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                        "--no-build-isolation", "--no-index", "--quiet", str(source)],
                       check=True, cwd=root, env=env)
    return {"python": python, "mlbench": env_dir / "bin" / "mlbench", "env": env, "root": root}


def _run(venv, *args, check=True) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=venv["root"],
                          env={**venv["env"], "COLUMNS": "200"}, check=check, timeout=300)


def test_both_packages_import_from_the_environment(venv):
    out = _run(venv, venv["python"], "-c",
               "import mlbench, mlbench_imbalanced_losses; print(mlbench.__file__); "
               "print(mlbench_imbalanced_losses.__file__)")
    site = str(Path(venv["python"]).parent.parent / "lib")
    paths = out.stdout.split()
    assert len(paths) == 2 and all(p.startswith(site) for p in paths), paths


def test_mlbench_plugins_lists_focal_and_asl_with_their_package(venv):
    rows = json.loads(_run(venv, venv["mlbench"], "plugins", "--json").stdout)
    losses = {r["name"]: r for r in rows if r["kind"] == "loss" and r["plugin"] == "imbalanced_losses"}
    assert set(losses) == {"focal", "asl"}
    for row in losses.values():
        assert row["package"] == "mlbench-imbalanced-losses" and row["version"] == "0.1.0"
    assert not [r for r in rows if r["kind"] == "error"]


def test_the_plugin_passes_its_conformance_check(venv):
    out = _run(venv, venv["mlbench"], "plugins", "test", "imbalanced_losses", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed, 0 failed, 0 skipped" in out.stdout


def test_a_demo_run_with_focal_loss_writes_focal_rows(venv):
    run_dir = venv["root"] / "run"
    # The Python API (the CLI has no switch for the demo corpus's size): what `--loss focal` sets.
    script = (
        "import torch; torch.set_num_threads(2)\n"
        "from mlbench.runner import RunOptions, run\n"
        f"run(RunOptions(out={str(run_dir)!r}, benchmark='padchest-specific', demo=True, loss='focal',\n"
        "    demo_options={'n_patients': 30, 'image_size': 96}, image_size=32, max_epochs=1,\n"
        "    backbones=('mobilenetv3_small_050',), ensembles=('ctp',), progress=False, workers=1))\n")
    out = _run(venv, venv["python"], "-W", "ignore", "-c", script, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    board = pd.read_parquet(run_dir / "leaderboard.parquet")
    assert len(board) and (board["loss"] == "focal").all()
    assert set(board["entry"]) == {"mobilenetv3_small_050", "ctp"}
    versions = json.loads(board["plugin_versions"].iloc[0])
    assert versions["loss:focal"] == "mlbench-imbalanced-losses==0.1.0"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["loss"] == "focal"
