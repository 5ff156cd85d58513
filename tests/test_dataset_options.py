"""``--dataset-option KEY=VALUE``: what a dataset declares, the one check, and where the options go
(issue 23 part 2): refused in one line before any work, label-changing ones in the split's hash."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import mlbench
from mlbench.foundations.errors import UserError
from mlbench.cli import main
from mlbench.contracts.registry import get_registry
from mlbench.data.datasetoptions import (DatasetOptionError, check_dataset_options, label_options,
                                         parse_declaration)
from mlbench.data.splits import split_hash
from mlbench.results.rescoring import StoredRun, StoredRunError, compare_stored


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def last_error(result) -> str:
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output[-2000:]
    assert lines[-1].startswith("Error: ") and sum(line.startswith("Error:") for line in lines) == 1, result.output
    return lines[-1]


DECLARED = {"policy": {"type": "str", "default": "ones", "choices": ["ones", "zeros", "ignore"],
                       "refused": {"ignore": "needs masked labels"}, "changes_labels": True},
            "min_count": {"type": "int", "default": 5, "minimum": 1, "changes_labels": True},
            "weight": {"type": "float", "default": 0.5},
            "column": {"type": "str", "default": "path"},
            "strict": {"type": "bool", "default": False}}


@pytest.mark.parametrize("name, value, expected", [
    ("policy", "zeros", "zeros"), ("min_count", 7, 7), ("weight", 2, 2.0), ("column", 2020, "2020"),
    ("strict", True, True),
])
def test_values_are_checked_and_converted_to_the_declared_type(name, value, expected):
    options = parse_declaration("toy", DECLARED)
    assert options[name].check(value, "toy") == expected


@pytest.mark.parametrize("name, value, message", [
    ("policy", "maybe", "--dataset-option policy=maybe: dataset 'toy' expects policy to be one of ones, zeros"),
    ("policy", "ignore", "--dataset-option policy=ignore: dataset 'toy' cannot use it yet: needs masked labels"),
    ("min_count", 0, "--dataset-option min_count=0: dataset 'toy' expects min_count >= 1"),
    ("min_count", True, "expects min_count to be an integer"),
    ("min_count", "five", "expects min_count to be an integer"),
    ("weight", float("nan"), "expects weight to be a finite number"),
    ("strict", "yes", "expects strict to be true or false"),
    ("column", [1], "expects column to be a string"),
])
def test_a_bad_value_is_one_line_naming_the_option_and_what_is_allowed(name, value, message):
    with pytest.raises(DatasetOptionError) as caught:
        parse_declaration("toy", DECLARED)[name].check(value, "toy")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("declared", [["policy"], {"policy": {"default": 1}}, {"policy": {"type": "list", "default": 1}},
                                      {"policy": {"type": "str", "default": "a", "colour": 1}}, {"2x": {"type": "int",
                                                                                                       "default": 1}}])
def test_a_malformed_declaration_is_the_plugins_bug(declared):
    with pytest.raises(ValueError, match="dataset 'toy'"):
        parse_declaration("toy", declared)


def test_the_folder_datasets_declaration_and_a_dataset_that_declares_none():
    registry = get_registry()
    resolved = check_dataset_options(registry, "folder", {"policy": "zeros"})
    assert resolved["policy"] == "zeros" and resolved["min_count"] == 5 and resolved["path_column"] == "path"
    assert label_options(registry, "folder", resolved) == {"labels": "auto", "min_count": 5, "policy": "zeros",
                                                          "separator": "|"}
    assert check_dataset_options(registry, "nih-cxr14", None) == {}
    with pytest.raises(DatasetOptionError, match="dataset 'nih-cxr14' has no option 'policy'; it takes none"):
        check_dataset_options(registry, "nih-cxr14", {"policy": "ones"})


def test_the_split_hash_takes_label_options_and_is_unchanged_without_them():
    ids, splits = ["a", "b", "c"], ["train", "val", "test"]
    plain = split_hash(ids, splits)
    assert split_hash(ids, splits, {}) == plain == split_hash(ids[::-1], splits[::-1])
    ones, zeros = split_hash(ids, splits, {"policy": "ones"}), split_hash(ids, splits, {"policy": "zeros"})
    assert len({plain, ones, zeros}) == 3


def stored(y: np.ndarray, name: str) -> StoredRun:
    rng = np.random.default_rng(0)
    scores = {"m": rng.random(y.shape)}
    return StoredRun(run_dir=name, manifest={}, labels=["a", "b"], test_ids=[f"i{k}" for k in range(len(y))],
                     patient_ids=[f"p{k}" for k in range(len(y))], y=y, train_counts=np.array([3, 3]),
                     entries={"m": "backbone"}, scores=scores, threshold=0.5)


def test_a_paired_comparison_needs_the_same_test_labels_not_the_same_split_hash():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], dtype=np.uint8)
    assert set(compare_stored(stored(y, "A"), stored(y.copy(), "B"), n_boot=5)) == {"m"}
    other = y.copy()
    other[2, 1] = 0  # an uncertain cell read as 0 by the other run's policy
    with pytest.raises(StoredRunError, match=r"same test images but other test labels \(1 images differ, e.g. i2"):
        compare_stored(stored(y, "A"), stored(other, "B"), n_boot=5)


def test_every_command_refuses_a_bad_dataset_option_before_any_work(tmp_path):
    out = tmp_path / "out"
    demo = mlbench.write_demo_data("folder", tmp_path / "demo", options={"n_patients": 6, "image_size": 32})
    commands = [
        ("run", "folder", "--demo", "--out", out, "--no-pretrained"),
        ("grid", "folder", "--demo", "--remedies", "uniform", "--out", out, "--no-pretrained"),
        ("split", "folder", "--csv", demo.csv, "--out", out),
        ("preprocess", "folder", "--csv", demo.csv, "--images", demo.images, "--cache", out),
        ("datasets", "inspect", "folder", "--csv", demo.csv),
    ]
    for command in commands:
        line = last_error(cli(*command, "--dataset-option", "polcy=zeros"))
        assert "--dataset-option polcy=...: dataset 'folder' has no option 'polcy'" in line, command
        assert not out.exists(), command
    line = last_error(cli("run", "nih-cxr14", "--demo", "--out", out, "--dataset-option", "policy=ones"))
    assert "dataset 'nih-cxr14' has no option 'policy'; it takes none" in line
    # ignore leaves unknown cells: a recipe that cannot use them is refused at plan time, in one line
    with pytest.raises(UserError, match="policy=ignore leaves unknown label cells"):
        mlbench.run_benchmark("folder", demo=True, out=out, dataset_options={"policy": "ignore"},
                              adjuster="temperature")
    assert not out.exists()


def test_preprocess_and_split_take_the_options(tmp_path):
    demo = mlbench.write_demo_data("folder", tmp_path / "demo", options={"n_patients": 6, "image_size": 32})
    summary = mlbench.preprocess_images("folder", demo.csv, demo.images, tmp_path / "cache", size=32,
                                        dataset_options={"min_count": 1}, workers=1)
    assert summary["ok"] > 0 and summary["skipped"] == 0
    split = mlbench.split_dataset("folder", demo.csv, tmp_path / "split", dataset_options={"min_count": 1})
    assert split["dataset_options"] == {"labels": "auto", "min_count": 1, "policy": "ones", "separator": "|"}
