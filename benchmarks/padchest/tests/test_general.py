"""The padchest-general benchmark: Table 10's 54 labels as term-tree nodes, expanded targets."""

import numpy as np
import pandas as pd

from mlbench.data import Records
from mlbench.data.labels import label_matrix
from mlbench.registry import get_registry
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
