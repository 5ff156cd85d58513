"""The example plugin installs with pip into a fresh virtual environment and works there end to end.

mlbench and the plugin are built into wheels from copies of their sources and installed into a new
virtual environment, so what runs is what pip installed: the test checks that both import from the
environment, not from this checkout. The environment also sees the packages of the interpreter
running the tests (torch, timm, ... are not re-installed), whether that is a virtual environment
or not.

Building needs each source's declared build backend (``[build-system] requires``). When this
interpreter already has it, the wheels are built with it, offline. When it does not (a fresh
machine: setuptools 65 without ``wheel`` cannot make a wheel), pip builds in isolation and fetches
the backend from the package index, as any ``pip install`` of the sources would.
"""

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

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


def _installed(requirement: Requirement) -> bool:
    try:
        return requirement.specifier.contains(metadata.version(requirement.name), prereleases=True)
    except metadata.PackageNotFoundError:
        return False


def missing_build_requirements(source: Path) -> list[str]:
    """The source's build requirements this interpreter lacks (empty: it can build offline)."""
    requires = tomllib.loads((source / "pyproject.toml").read_text())["build-system"]["requires"]
    missing = [text for text in requires if not _installed(Requirement(text))]
    # setuptools before 70.1 has no bdist_wheel of its own: its backend asks for `wheel` as well.
    setuptools = next((Requirement(t) for t in requires if Requirement(t).name == "setuptools"), None)
    if (setuptools is not None and _installed(setuptools) and Version(metadata.version("setuptools")) < Version("70.1")
            and not _installed(Requirement("wheel"))):
        missing.append("wheel")
    return missing


def _build_wheel(source: Path, wheels: Path, env: dict[str, str]) -> None:
    offline = not missing_build_requirements(source)
    flags = ["--no-build-isolation", "--no-index"] if offline else []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels),
                    *flags, str(source)], check=True, cwd=source.parent, env=env)


def _package_folders() -> list[str]:
    """Where this interpreter's installed packages are (its venv's and, under it, the system's)."""
    return [p for p in dict.fromkeys(sys.path) if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh-env")
    core, plugin = _sources(root)
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # After the environment's own packages, as --system-site-packages would (which, run from a
    # virtual environment, would show the base interpreter's packages rather than this one's).
    (Path(site) / "_test_runner_packages.pth").write_text(
        "".join(f"import site; site.addsitedir({folder!r})\n" for folder in _package_folders()))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLBENCH_PLUGINS", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="2")
    wheels = root / "wheels"
    for source in (core, plugin):
        _build_wheel(source, wheels, env)
    built = sorted(wheels.glob("*.whl"))
    assert len(built) == 2, built
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--quiet", *map(str, built)], check=True, cwd=root, env=env)
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
        "from mlbench.training.runner import RunOptions, run\n"
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
