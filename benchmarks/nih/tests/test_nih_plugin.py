"""The NIH plugin enters through the third-party door, stands alone, and ships its published board."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mlbench_nih
from mlbench import leaderboard
from mlbench.conformance import check_plugin
from mlbench.contracts.registry import build_registry, get_registry
from mlbench_nih import plugin
from mlbench_nih.labels import LABELS

PACKAGE = Path(mlbench_nih.__file__).parent
REPO = PACKAGE.parents[2]


def test_registers_its_datasets_and_benchmarks_in_process():
    registry = build_registry(entry_points=False, plugins=[plugin])
    assert set(registry.names("dataset")) == {"nih-cxr14", "nih-cxr14-pa"}
    assert set(registry.names("benchmark")) == {"nih-cxr14", "nih-cxr14-pa"}
    bench = registry.create("benchmark", "nih-cxr14")
    assert bench.labels == LABELS and bench.dataset == "nih-cxr14" and bench.keep_unlabelled
    assert bench.recipe.backbones == ("densenet201", "efficientnet_b0", "inception_v3", "inception_resnet_v2",
                                      "legacy_xception")
    assert bench.recipe.loss == "weighted-bce" and bench.recipe.ensembles == ("ctp", "ptc-lw", "ptc-mode")
    assert bench.recipe.variant == "aug" and bench.recipe.active_preprocessor == "resize"
    assert registry.create("dataset", "nih-cxr14-pa").projections == ("PA",)
    assert registry.create("benchmark", "nih-cxr14-pa").published_board is None


def test_neither_family_imports_the_other():
    for package, other in ((PACKAGE, "mlbench_padchest"), (REPO / "benchmarks/padchest/mlbench_padchest", "mlbench_nih")):
        for source in package.glob("*.py"):
            assert other not in source.read_text(encoding="utf-8"), f"{source} names {other}"
    code = ("import sys, mlbench_nih.plugin, mlbench_nih.benchmarks, mlbench_nih.dataset, mlbench_nih.demo, "
            "mlbench_nih.reader; sys.exit('mlbench_padchest' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
    assert not (REPO / "mlbench/demo/films.py").read_text(encoding="utf-8").lower().count("padchest")


def test_published_board_is_package_data_in_the_leaderboard_schema():
    bench = get_registry().create("benchmark", "nih-cxr14")
    assert bench.published_board.is_file()
    table = leaderboard.read(Path(str(bench.published_board)))
    rows = table.to_pylist()
    # The six cited means; per-label rows: test_nih_published_labels.py.
    assert {r["entry"] for r in rows} >= {"wang2017", "guendel2018", "baltruschat2019", "hermoza2020", "kim2021",
                                          "xiao2023"}
    assert all(r["metric"] == "auc" and r["source"] == "published"
               and r["benchmark"] == "nih-cxr14" and r["dataset_kind"] == "nih-cxr14" for r in rows)
    means = {r["entry"]: r["value"] for r in rows if r["label"] == leaderboard.GLOBAL_LABEL}
    assert means["wang2017"] == pytest.approx(0.745)
    assert means["xiao2023"] == pytest.approx(0.830)


def test_board_matches_its_source_tsv():
    build = REPO / "leaderboards" / "nih-cxr14" / "build.py"
    result = subprocess.run([sys.executable, str(build), "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_plugins_test_passes_for_nih():
    report = check_plugin("nih")
    assert report.passed, [(r.kind, r.name, r.detail) for r in report.results if r.status == "fail"]
    assert {(r.kind, r.name) for r in report.results} == {("dataset", "nih-cxr14"), ("dataset", "nih-cxr14-pa"),
                                                           ("benchmark", "nih-cxr14"), ("benchmark", "nih-cxr14-pa")}
