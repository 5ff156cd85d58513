"""NIH's labels as shared findings (external validation): the mapping, and its counts on the real label file.

The counts come from mlbench.data.findings (the benchmark's own label matrix) and are checked against
an independent pandas count of the label file's ``Finding Labels`` column and NIH's official test list.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from mlbench.contracts.registry import get_registry
from mlbench.data import DataSource
from mlbench.data.findings import finding_counts, share
from mlbench_nih.benchmarks import nih_cxr14
from mlbench_nih.dataset import NIHDataset
from mlbench_nih.labels import LABELS


def test_every_nih_label_is_exactly_its_vocabulary_term():
    findings = nih_cxr14().findings
    assert findings.vocabulary == "torchxrayvision"
    assert {label: (f.term, f.relation) for label, f in findings.labels.items()} == {
        label: (label, "exact") for label in LABELS}


def test_a_nih_run_on_padchest_scores_only_what_padchest_labels_exactly():
    registry = get_registry()
    nih = registry.create("benchmark", "nih-cxr14")
    specific = share(nih, registry.create("benchmark", "padchest-specific"))
    assert [(s.label, s.target_label) for s in specific.shared] == [("Cardiomegaly", "cardiomegaly")]
    assert "only one kind of Effusion" in specific.not_shared["Effusion"]  # specific's raw term is no truth
    assert "labels no Edema" in specific.not_shared["Edema"]
    general = share(nih, registry.create("benchmark", "padchest-general"))
    assert len(general.shared) == 11 and {"Edema", "Consolidation", "Hernia"} == set(general.not_shared)


def _real_csv() -> Path:
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("needs NIH's label file shipped in torchxrayvision==1.5.7 (the test extra)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "Data_Entry_2017_v2020.csv.gz"


@pytest.mark.realcsv
def test_the_mapping_s_counts_on_the_real_label_file_match_an_independent_count():
    csv = _real_csv()
    counts = finding_counts(nih_cxr14(), NIHDataset().read(DataSource(csv, csv.parent))).set_index("label")
    raw = pd.read_csv(csv, usecols=["Image Index", "Finding Labels", "Patient ID"])
    findings = raw["Finding Labels"].str.split("|")
    patients = {int(line) for line in (Path(__import__("mlbench_nih").__file__).parent / "data" /
                                       "official_test_patients.txt").read_text().split()}
    test = raw["Patient ID"].isin(patients)
    assert test.sum() == 25_596
    for label in LABELS:
        has = findings.map(lambda names, label=label: label in names)
        assert counts.loc[label, "n_images"] == has.sum(), label
        assert counts.loc[label, "n_test"] == (has & test).sum(), label
    assert counts.loc["Effusion", "n_images"] == 13_317 and counts.loc["Hernia", "n_test"] == 86
