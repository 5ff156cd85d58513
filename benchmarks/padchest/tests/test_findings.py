"""PadChest's labels as shared findings (external validation): the mapping's choices, and its counts on the
real label file against an independent pandas count of the ``Labels`` column (PA films, term tree read from
its JSON here, not through the package's tree module)."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

import mlbench_padchest
from mlbench.contracts.benchmark import EXACT, NARROWER
from mlbench.contracts.registry import get_registry
from mlbench.data import DataSource
from mlbench.data.findings import finding_counts, share
from mlbench_padchest.benchmarks import general, specific
from mlbench_padchest.dataset import PadChestDataset


def test_the_mapping_is_exact_for_tree_nodes_and_narrower_for_raw_kinds():
    spec, gen = specific().findings.labels, general().findings.labels
    # padchest-general's node holds its children (loculated effusions ...): exactly Effusion; the raw term is a kind.
    assert (gen["pleural effusion"].term, gen["pleural effusion"].relation) == ("Effusion", EXACT)
    assert (spec["pleural effusion"].term, spec["pleural effusion"].relation) == ("Effusion", NARROWER)
    assert spec["cardiomegaly"].relation == EXACT
    # A parent of the finding, and a shadow named like it, map to nothing, each with its reason.
    assert "thoracic cage deformation" not in gen and "parent" in general().findings.left_out["thoracic cage deformation"]
    assert "pseudonodule" not in spec and "not a nodule" in specific().findings.left_out["pseudonodule"]


def test_a_padchest_run_on_nih_shares_most_of_nih_s_findings():
    registry = get_registry()
    nih = registry.create("benchmark", "nih-cxr14")
    gen = share(registry.create("benchmark", "padchest-general"), nih)
    assert len(gen.shared) == 12 and set(gen.target_labels) == set(nih.labels) - {"Edema", "Consolidation"}
    spec = share(registry.create("benchmark", "padchest-specific"), nih)
    assert dict(zip(spec.labels, spec.target_labels))["laminar atelectasis"] == "Atelectasis"
    assert {s.relation for s in spec.shared if s.label != "cardiomegaly"} == {NARROWER}
    assert "maps to no term" in spec.not_shared["normal"] and "left out" in spec.not_shared["pseudonodule"]


def _real_csv() -> Path:
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("needs the PadChest label CSV shipped in torchxrayvision==1.5.7 (the test extra)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / \
        "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"


def _descendants() -> dict[str, set[str]]:
    nodes = json.loads((Path(mlbench_padchest.__file__).parent / "term_tree.json").read_text())["nodes"]
    children: dict[str, set[str]] = {label: set() for label in nodes}
    for label, node in nodes.items():
        for parent in node["parents"]:
            children[parent].add(label)
    out = {}
    for label in nodes:
        seen, stack = set(), list(children[label])
        while stack:
            child = stack.pop()
            if child not in seen:
                seen.add(child)
                stack.extend(children[child])
        out[label] = seen
    return out


@pytest.mark.realcsv
def test_the_mapping_s_counts_on_the_real_label_file_match_an_independent_count():
    csv = _real_csv()
    records = PadChestDataset().read(DataSource(csv, csv.parent))
    raw = pd.read_csv(csv, usecols=["ImageID", "Projection", "Labels"], low_memory=False)
    raw = raw[raw["ImageID"].isin(set(records.frame["image_id"]))]  # the reader's rows (PA, parseable, unique)
    assert len(raw) == len(records.frame)
    findings = raw["Labels"].map(lambda text: {t.strip() for t in ast.literal_eval(text)})
    below = _descendants()
    for bench, tree in ((specific(), False), (general(), True)):
        counts = finding_counts(bench, records).set_index("label")
        assert set(counts.index) == set(bench.findings.labels)
        for label in counts.index:
            wanted = {label} | (below[label] if tree else set())
            n = int(findings.map(lambda f, wanted=wanted: bool(f & wanted)).sum())
            assert counts.loc[label, "n_images"] == n, (bench.name, label)
        assert counts["n_test"].isna().all()  # PadChest pins no test set: its test split is stratified
    assert finding_counts(specific(), records).set_index("label").loc["pleural effusion", "n_images"] == 3260
