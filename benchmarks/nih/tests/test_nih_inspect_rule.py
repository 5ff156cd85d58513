"""`datasets inspect` sets a selection rule against the pinned labels only where a benchmark declares one.

NIH's 14 findings are given, not selected by a count, so its report has no rule table; PadChest's
labels came from Liz et al.'s "at least 200 images" rule, so its report keeps it, with that count.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import mlbench
from mlbench.cli import main


@pytest.fixture(scope="module")
def nih_demo(tmp_path_factory):
    return mlbench.write_demo_data("nih-cxr14", tmp_path_factory.mktemp("nih"))


def test_a_benchmark_without_a_selection_rule_shows_no_rule_table(nih_demo):
    report = mlbench.inspect_dataset("nih-cxr14", nih_demo.csv, images=nih_demo.images)
    assert report["benchmarks"] and all(b["selection"] == [] for b in report["benchmarks"])
    shown = CliRunner().invoke(main, ["datasets", "inspect", "nih-cxr14", "--csv", str(nih_demo.csv),
                                      "--images", str(nih_demo.images)])
    assert shown.exit_code == 0, shown.output
    assert "selection rule" not in shown.output and "200 images" not in shown.output
    assert "split hash" in shown.output  # the rest of the report is still there


def test_a_benchmark_declaring_its_rule_is_compared_with_it(tmp_path):
    demo = mlbench.write_demo_data("padchest-specific", tmp_path / "pc")
    report = mlbench.inspect_dataset("padchest", demo.csv, images=demo.images)
    rules = [r["rule"] for b in report["benchmarks"] for r in b["selection"]]
    assert rules and all(">= 200 images" in r for r in rules)


def test_a_rule_count_must_be_a_positive_integer():
    good = mlbench.PAPER_RECIPE
    with pytest.raises(ValueError, match="label_rule_min_images"):
        mlbench.Benchmark(name="b", version="1", dataset="d", labels=("a",), targets=lambda f: f,
                          recipe=good, demo_recipe=good, label_rule_min_images=0)
