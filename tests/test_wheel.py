"""The project's wheel carries the published boards, and an installed wheel shows them (a plugin's too).

What a user gets from ``pip install mlbench-imbalanced`` is the wheel, not this checkout: the test
builds the wheel from a copy of the sources pyproject.toml packages, checks that every benchmark
package's ``leaderboards/*.parquet`` is inside, installs it into a new virtual environment and runs
``mlbench leaderboard show`` there from an empty folder, so nothing but the installed package data
can supply the published rows. The third-party plugin of tests/test_third_party_benchmark.py is
built and installed beside it: its board must travel in its wheel the same way.

The environment also sees the packages of the interpreter running the tests (torch, pandas, ...
are not re-installed), after its own: the wheel's ``mlbench`` comes first, and the test checks
that it is the one imported. Building needs the declared build backend: offline when this
interpreter has it, else pip's build isolation fetches it from the package index.
"""

import os
import shutil
import subprocess
import sys
import zipfile
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
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# A third-party benchmark plugin that ships its own board (tests/test_third_party_benchmark.py).
TOY_PLUGIN = REPO / "tests" / "data" / "plugins" / "toy_xray"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info", "dist")

pytestmark = pytest.mark.slow


def package_folders() -> dict[str, str]:
    """Import package -> its folder in the repository, as pyproject.toml maps them."""
    return dict(PYPROJECT["tool"]["setuptools"]["package-dir"])


def shipped_boards() -> list[str]:
    """Every published board in the sources, as its path inside the wheel."""
    return sorted(f"{package}/{board.relative_to(REPO / folder).as_posix()}"
                  for package, folder in package_folders().items()
                  for board in (REPO / folder).glob("leaderboards/*.parquet"))


def _copy_sources(dest: Path) -> Path:
    """A copy of what the wheel is built from (a build writes build/ and *.egg-info into its source,
    which must not happen in a working tree others use)."""
    dest.mkdir()
    for name in ("pyproject.toml", PYPROJECT["project"]["readme"]):
        shutil.copy2(REPO / name, dest / name)
    for folder in package_folders().values():
        shutil.copytree(REPO / folder, dest / folder, ignore=IGNORE)
    return dest


def _installed(requirement: Requirement) -> bool:
    try:
        return requirement.specifier.contains(metadata.version(requirement.name), prereleases=True)
    except metadata.PackageNotFoundError:
        return False


def can_build_offline(source: Path) -> bool:
    """This interpreter has the declared backend. setuptools from 70.1 builds wheels itself; before
    that it needs the ``wheel`` package too, whatever ``requires`` lists."""
    declared = tomllib.loads((source / "pyproject.toml").read_text())["build-system"]["requires"]
    requires = [Requirement(text) for text in declared]
    setuptools = next((r for r in requires if r.name == "setuptools"), None)
    if setuptools is None or not _installed(setuptools):
        return False
    if Version(metadata.version("setuptools")) >= Version("70.1"):
        return all(_installed(r) for r in requires if r.name not in ("setuptools", "wheel"))
    return all(_installed(r) for r in requires if r.name != "setuptools") and _installed(Requirement("wheel"))


def _site_folders() -> list[str]:
    """This interpreter's package folders (its virtual environment's and the base's)."""
    return [p for p in dict.fromkeys(sys.path) if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MLBENCH_PLUGINS", "MLBENCH_LEADERBOARDS", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1", OMP_NUM_THREADS="1", COLUMNS="200")
    wheels = root / "wheels"
    plugin = root / "toy-src"
    shutil.copytree(TOY_PLUGIN, plugin, ignore=IGNORE)
    for source in (_copy_sources(root / "src"), plugin):
        offline = ["--no-build-isolation", "--no-index"] if can_build_offline(source) else []
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels),
                        *offline, str(source)], check=True, cwd=root, env=env, timeout=300)
    built = sorted(wheels.glob("mlbench_imbalanced-*.whl"))
    toy = sorted(wheels.glob("mlbench_toy_xray-*.whl"))
    assert len(built) == 1 and len(toy) == 1, sorted(wheels.iterdir())

    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The test interpreter's packages after the environment's own, as --system-site-packages would
    # (which, run from a virtual environment, would give the base interpreter's instead).
    (site / "_test_runner_packages.pth").write_text(
        "".join(f"import site; site.addsitedir({folder!r})\n" for folder in _site_folders()))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--quiet", str(built[0]), str(toy[0])], check=True, cwd=root, env=env, timeout=300)
    empty = root / "empty"
    empty.mkdir()
    return {"wheel": built[0], "toy_wheel": toy[0], "python": python, "mlbench": env_dir / "bin" / "mlbench", "site": site,
            "cwd": empty, "env": env}


def _run(installed, *args) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=installed["cwd"],
                         env=installed["env"], timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_the_wheel_holds_every_published_board(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    boards = shipped_boards()
    assert {"mlbench_padchest/leaderboards/padchest-specific.parquet",
            "mlbench_padchest/leaderboards/padchest-general.parquet"} <= set(boards)
    if "mlbench_nih" in package_folders():
        assert "mlbench_nih/leaderboards/nih-cxr14.parquet" in boards
    assert [b for b in boards if b not in names] == []


def test_the_installed_packages_are_the_wheels(installed):
    out = _run(installed, installed["python"], "-c",
               "import mlbench, mlbench_padchest; print(mlbench.__file__); print(mlbench_padchest.__file__)")
    paths = [Path(p) for p in out.stdout.split()]
    assert len(paths) == 2 and all(p.is_relative_to(installed["site"]) for p in paths), paths


def _table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table as cells."""
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in text.splitlines()
            if line.startswith("│")]


def test_the_published_board_is_found_in_the_installed_package(installed):
    out = _run(installed, installed["python"], "-c",
               "from mlbench.results.leaderboard import find_board; print(find_board('padchest-specific'))")
    assert Path(out.stdout.strip()) == installed["site"] / "mlbench_padchest" / "leaderboards" / "padchest-specific.parquet"


def test_leaderboard_show_prints_the_published_padchest_rows(installed):
    out = _run(installed, installed["mlbench"], "leaderboard", "show", "padchest-specific", "--variant", "crop+aug")
    rows = _table_rows(out.stdout)
    shown = {(variant, entry): value for variant, entry, value, *_ in rows}
    # Liz et al. 2023: the CTP ensemble's mean AUC with crop and augmentation.
    assert shown[("crop+aug", "ctp")] == "0.840", out.stdout
    source = pd.read_parquet(REPO / "benchmarks/padchest/mlbench_padchest/leaderboards/padchest-specific.parquet")
    source = source[(source["variant"] == "crop+aug") & (source["label"] == "__global__") & (source["metric"] == "auc")]
    assert shown == {("crop+aug", e): f"{v:.3f}" for e, v in zip(source["entry"], source["value"])}
    assert all(r[-1].startswith("published ") for r in rows)


def test_leaderboard_show_prints_the_published_general_rows(installed):
    out = _run(installed, installed["mlbench"], "leaderboard", "show", "padchest-general", "--variant", "crop+aug")
    shown = {entry: value for _, entry, value, *_ in _table_rows(out.stdout)}
    assert shown["ctp"] == "0.819" and len(shown) == 8, out.stdout


def test_a_third_party_plugin_wheel_ships_its_board_and_show_finds_it(installed):
    assert "mlbench_toy_xray/leaderboards/toy-xray.parquet" in zipfile.ZipFile(installed["toy_wheel"]).namelist()
    out = _run(installed, installed["mlbench"], "leaderboard", "show", "toy-xray")
    rows = _table_rows(out.stdout)
    assert {(entry, value) for _, entry, value, *_ in rows} == {("ctp", "0.620"), ("resnet10t", "0.610")}, out.stdout
    assert all(r[-1] == "published toy-fixture-not-a-publication" for r in rows)
