"""The padchest-general benchmark: Table 10's 54 labels as term-tree nodes, expanded targets."""

import json

import numpy as np
import pandas as pd

from mlbench.data import Records
from mlbench.data.labels import label_matrix
from mlbench.contracts.registry import get_registry
from mlbench_padchest import general
from mlbench_padchest.benchmarks import general as general_benchmark, specific
from mlbench_padchest.tree import load_tree


def test_54_labels_in_table_10_order_spelled_as_the_tree():
    labels = general.GENERAL_LABELS
    assert len(labels) == 54 == len(set(labels))
    assert labels[:4] == ("normal", "COPD signs", "cardiomegaly", "thoracic cage deformation")
    assert labels[-3:] == ("mediastinic lipomatosis", "pneumothorax", "vascular redistribution")
    assert all(label in load_tree().nodes for label in labels)
    assert [general.PAPER_NAMES[label] for label in labels] == list(general.TABLE10_SAMPLES)
    assert general.PAPER_NAMES["COPD signs"] == "Copd signs"


def test_targets_expand_findings_to_their_general_labels():
    assert general.targets(["callus rib fracture"]) == {"fracture"}
    assert general.targets(["hydropneumothorax"]) == {"pneumothorax", "pleural effusion"}
    assert general.targets(["supra aortic elongation"]) == {"aortic elongation", "mediastinal enlargement"}
    assert general.targets(["pacemaker", "normal"]) == {"electrical device", "normal"}
    assert general.targets(["sternotomy"]) == {"surgery"}
    assert general.targets(["lipomatosis-like unknown"]) == frozenset()


def test_benchmark_is_registered_and_maps_records():
    bench = get_registry().create("benchmark", "padchest-general")
    assert (bench.name, bench.version, bench.dataset) == ("padchest-general", "1.0", "padchest")
    assert bench.labels == general.GENERAL_LABELS
    assert bench.recipe == specific().recipe and bench.demo_recipe == specific().demo_recipe
    assert general_benchmark().labels == bench.labels

    frame = pd.DataFrame({
        "image_id": ["a", "b", "c"], "patient_id": ["p", "p", "q"], "image_path": ["/a", "/b", "/c"],
        "findings": [("callus rib fracture",), ("suture material",), ("hypoexpansion basal",)],
    })
    kept, Y, skipped = label_matrix(Records(frame, "padchest", "0" * 64), bench)
    assert kept["image_id"].tolist() == ["a", "b"]
    assert Y[0, bench.labels.index("fracture")] == 1 and Y[0].sum() == 1
    assert Y[1, bench.labels.index("surgery")] == 1 and Y[1].sum() == 1
    assert [s.item for s in skipped] == ["c"]
    assert Y.dtype == np.uint8


def tiny_padchest_csv(path, n_patients: int = 40):
    """A small CSV in PadChest's format whose findings exercise the tree expansion."""
    rng = np.random.RandomState(0)
    choices = [["normal"], ["callus rib fracture", "COPD signs"], ["pacemaker"], ["hydropneumothorax"],
               ["cardiomegaly", "sternotomy"], ["normal", "exclude"]]
    rows = []
    for p in range(n_patients):
        for k in range(2):
            labels = choices[rng.randint(len(choices))]
            rows.append({"ImageID": f"im{p}_{k}.png", "ImageDir": str(p % 3), "StudyID": f"s{p}",
                         "PatientID": f"pat{p:03d}", "Projection": "PA", "Labels": repr(labels)})
    rows.append({"ImageID": "side.png", "ImageDir": "0", "StudyID": "s", "PatientID": "pat000",
                 "Projection": "L", "Labels": "['normal']"})
    rows.append({"ImageID": "empty.png", "ImageDir": "0", "StudyID": "s", "PatientID": "pat001",
                 "Projection": "PA", "Labels": ""})
    pd.DataFrame(rows).to_csv(path)
    return path


def test_split_command_on_a_small_csv(tmp_path):
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from mlbench.cli import main

    csv = tiny_padchest_csv(tmp_path / "labels.csv")
    args = ["split", "padchest-general", "--csv", str(csv), "--out", str(tmp_path / "a")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(main, args[:-1] + [str(tmp_path / "b")])
    summary_a = json.loads((tmp_path / "a" / "summary.json").read_text())
    summary_b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary_a["split_hash"] == summary_b["split_hash"]
    assert summary_a["split_hash"] in first.output.replace("\n", "")
    assert summary_a["n_images"] == 80 and summary_a["n_patients"] == 40
    assert summary_a["skipped"]["not_pa"]["count"] == 1 and summary_a["skipped"]["nan_labels"]["count"] == 1
    table = pq.read_table(tmp_path / "a" / "split.parquet").to_pandas()
    assert list(table.columns[:3]) == ["image_id", "patient_id", "split"]
    assert list(table.columns[3:]) == list(general.GENERAL_LABELS)
    assert table.groupby("patient_id")["split"].nunique().max() == 1
    other_seed = CliRunner().invoke(main, args[:-1] + [str(tmp_path / "c"), "--seed", "5"])
    assert other_seed.exit_code == 0, other_seed.output
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["seed"] == 5


def test_inspect_report_on_a_small_csv(tmp_path):
    from click.testing import CliRunner

    from mlbench.cli import main
    from mlbench.data import DataSource
    from mlbench.data.inspect import inspect_dataset

    csv = tiny_padchest_csv(tmp_path / "labels.csv")
    report = inspect_dataset("padchest", DataSource(csv, tmp_path))
    assert report["profile"]["rows"] == 82
    assert report["profile"]["projections"] == {"PA": 81, "L": 1}
    assert report["skipped"]["not_pa"]["count"] == 1
    assert report["skipped"]["nan_labels"]["examples"][0]["item"] == "empty.png"
    by_name = {b["benchmark"]: b for b in report["benchmarks"]}
    assert set(by_name) >= {"padchest-specific", "padchest-general"}
    gen = by_name["padchest-general"]
    assert gen["images_kept"] == 80
    assert gen["imbalance"]["all"]["n_instances"] == 80
    assert "fracture" in gen["imbalance"]["all"]["irlbl"]
    rules = {r["rule"]: r for r in gen["selection"]}
    assert any("expanded" in name for name in rules)  # the dataset offers its tree expansion
    shown = CliRunner().invoke(main, ["datasets", "inspect", "padchest", "--csv", str(csv)], terminal_width=120)
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "padchest-general" in text and "MaxIR" in text and "not_pa" in text
