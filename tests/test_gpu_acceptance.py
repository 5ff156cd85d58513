"""perf/gpu_acceptance.py: the plan prints on any machine; without CUDA it refuses in one line."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "perf" / "gpu_acceptance.py"
SECTIONS = ("throughput", "projection", "cache", "gradcam")
CSV_NAME = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_dry_run_prints_the_plan():
    result = run("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "the plan (dry run" in out
    planned = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert planned == list(SECTIONS)
    # the recipe's five backbones, the paper's size and batch, the split counted from the public CSV
    for name in ("densenet201", "efficientnet_b0", "inception_v3", "inception_resnet_v2", "legacy_xception"):
        assert name in out
    assert "224 px, batch 32" in out and "59,807 train / 8,633 val / 17,015 test" in out
    assert "= 350 and 60 epochs" in out
    assert f"torch {torch.__version__.split('+')[0]}" in out
    assert "required packages" in out and "traceback" not in (out + result.stderr).lower()


def script_split_images() -> dict[str, int]:
    saved = list(sys.path)
    try:
        sys.path.insert(0, str(SCRIPT.parent))
        import gpu_acceptance
    finally:
        sys.path[:] = saved  # the script puts perf/ on the path; keep it out of other tests
    return gpu_acceptance.SPLIT_IMAGES


@pytest.mark.realcsv
def test_projection_uses_the_benchmarks_own_split():
    """The GPU machine has no label CSV, so the script carries the counts; they must be the real split's."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("needs the PadChest label CSV shipped in torchxrayvision==1.5.7 (the test extra)")
    csv = Path(next(iter(spec.submodule_search_locations))) / "data" / CSV_NAME
    from mlbench.data import DataSource
    from mlbench.data.splits import split_benchmark
    from mlbench_padchest.benchmarks import specific
    from mlbench_padchest.dataset import PadChestDataset

    split = split_benchmark(PadChestDataset().read(DataSource(csv, csv.parent)), specific())
    assert dict(Counter(split.splits)) == script_split_images()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_one_line_and_nonzero_exit():
    result = run()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0] and "--dry-run" in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_time_limit_names_the_option():
    result = run("--time-limit", "900", "--dry-run")
    assert result.returncode == 2 and "--time-limit 900" in result.stderr
    assert "Traceback" not in result.stderr


def test_cpu_rehearsal_runs_every_section_and_writes_the_report(tmp_path):
    """The script runs for real only when a GPU is lent (rarely, for minutes): every code path is exercised
    here, at toy sizes on the CPU, so a refactor of what it calls cannot leave it broken until that day."""
    out = tmp_path / "gpu-table.md"
    result = run("--cpu-rehearsal", "--backbones", "resnet10t", "--time-limit", "120", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    report = out.read_text()
    assert report == result.stdout  # the file is the printed report
    assert "CPU REHEARSAL" in report and "## Not measured" not in report and "Traceback" not in result.stderr
    for heading in ("## Training throughput", "## Projected GPU hours", "## Cache epoch vs decoding epoch",
                    "## Grad-CAM at 96 px"):
        assert heading in report
    throughput = next(line for line in report.splitlines() if line.startswith("| resnet10t |"))
    ceiling, data_path = (float(cell) for cell in throughput.split("|")[2:4])
    assert ceiling > 0 and data_path > 0
    assert "| all 1, one after another |" in report and "on this CPU (a rehearsal: not GPU hours)" in report
    cache_row = report.split("## Cache epoch")[1].split("## Grad-CAM")[0].strip().splitlines()[-1]
    assert re.search(r"\| \d+x \|$", cache_row), cache_row  # a measured speed-up, not a failure note
