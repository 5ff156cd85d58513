"""Reading, showing and comparing leaderboards imports no torch (nor timm, torchvision, OpenCV).

Each command runs in a fresh interpreter through the click ``main`` (as ``mlbench ...`` would) and
the child reports which heavy modules ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlbench.results import leaderboard
from mlbench.results.leaderboard import COLUMNS, GLOBAL_LABEL

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "benchmarks" / "padchest" / "mlbench_padchest" / "leaderboards" / "padchest-specific.parquet"
HEAVY = ("torch", "torchvision", "timm", "cv2", "pytorch_grad_cam", "matplotlib")
CHILD = """
import json, sys
from mlbench.cli import main
try:
    main.main(args=sys.argv[1:], prog_name="mlbench", standalone_mode=False)
finally:
    print("\\nHEAVY=" + json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _run_cli(*args: str, cwd: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-c", CHILD.format(heavy=HEAVY), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**_env(), "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    marker = [line for line in done.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker, done.stdout + done.stderr
    return json.loads(marker[-1].removeprefix("HEAVY="))


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _run_dir(tmp_path: Path) -> Path:
    """A run directory holding only its leaderboard: one backbone with intervals on two labels."""
    run = tmp_path / "run"
    base = {c: None for c in COLUMNS}
    base.update(benchmark="padchest-specific", benchmark_version="1.0", variant="crop+aug", dataset_kind="padchest",
                split_hash="abc", entry_kind="backbone", entry="densenet201", source="run", run_id="r1",
                schema_version=1, metric="auc")
    rows = [{**base, "label": label, "value": value, "ci_low": value - 0.02, "ci_high": value + 0.02,
             "n_positive": n} for label, value, n in (("cardiomegaly", 0.9, 300), (GLOBAL_LABEL, 0.8, 3000))]
    leaderboard.write(run / "leaderboard.parquet", leaderboard.to_table(rows))
    return run


def test_leaderboard_show_imports_no_torch(tmp_path):
    assert _run_cli("leaderboard", "show", "padchest-specific", cwd=tmp_path) == []


def test_leaderboard_show_with_a_file_imports_no_torch(tmp_path):
    assert _run_cli("leaderboard", "show", "padchest-specific", "--file", str(PUBLISHED), "--metric", "auc",
                    cwd=tmp_path) == []


def test_compare_on_a_run_directory_imports_no_torch(tmp_path):
    run = _run_dir(tmp_path)
    out = tmp_path / "compare.json"
    assert _run_cli("compare", str(run), "--file", str(PUBLISHED), "--json", str(out), cwd=tmp_path) == []
    rows = json.loads(out.read_text())["rows"]
    assert {r["label"] for r in rows} == {"cardiomegaly", GLOBAL_LABEL}


@pytest.mark.parametrize("args", [("plugins",), ("--help",)])
def test_listing_plugins_and_help_import_no_torch(tmp_path, args):
    assert _run_cli(*args, cwd=tmp_path) == []
