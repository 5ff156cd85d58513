"""The shipped term tree against facts of PadChest's trees_code.txt, checked by hand."""

import pytest

from mlbench_padchest import tree

# Labels listed at more than one place in the finding and diagnosis trees of trees_code.txt:
# 16 under two different parents, and "pericardial effusion" listed twice under radiological finding.
SEVERAL_PLACES = {
    "adenopathy", "air bronchogram", "aortic aneurysm", "ascendent aortic elongation",
    "calcified adenopathy", "calcified granuloma", "calcified pleural plaques",
    "calcified pleural thickening", "descendent aortic elongation", "end on vessel", "hiatal hernia",
    "hydropneumothorax", "loculated fissural effusion", "mediastinal mass", "pleural mass",
    "supra aortic elongation", "pericardial effusion",
}


def test_six_roots():
    t = tree.load_tree()
    assert t.roots == ("normal", "exclude", "suboptimal study", "radiological finding",
                       "differential diagnosis", "localization")
    assert all(not t.nodes[r].parents for r in t.roots)
    assert [label for label, n in t.nodes.items() if not n.parents] == list(t.roots)


def test_seventeen_labels_have_several_places_outside_the_localization_tree():
    t = tree.load_tree()
    findings = {label: n for label, n in t.nodes.items() if n.root != tree.LOCALIZATION_ROOT}
    several = {label for label, n in findings.items() if n.placements > 1}
    assert several == SEVERAL_PLACES
    assert len(several) == 17
    assert {label for label, n in findings.items() if len(n.parents) > 1} == SEVERAL_PLACES - {"pericardial effusion"}
    assert t.nodes["pericardial effusion"].parents == ("radiological finding",)


@pytest.mark.parametrize("label, parents", [
    ("calcified granuloma", {"calcified densities", "granuloma"}),
    ("supra aortic elongation", {"aortic elongation", "superior mediastinal enlargement"}),
    ("hydropneumothorax", {"pneumothorax", "pleural effusion"}),
    ("callus rib fracture", {"rib fracture"}),
    ("pacemaker", {"electrical device"}),
    ("COPD signs", {"differential diagnosis"}),
    ("tuberculosis sequelae", {"tuberculosis"}),
])
def test_hand_checked_parent_links(label, parents):
    assert set(tree.load_tree().node(label).parents) == parents


def test_cuis_are_kept():
    t = tree.load_tree()
    assert ("C0205307", "Normal") in t.nodes["normal"].cuis
    assert ("C0034079", "Lung nodule") in t.nodes["nodule"].cuis
    assert len(t.nodes["adenopathy"].cuis) == 2  # two concepts, one per placement
    assert t.nodes["normal"].single_label and t.nodes["exclude"].single_label


def test_every_parent_exists_and_the_graph_has_no_cycle():
    t = tree.load_tree()
    for label, node in t.nodes.items():
        for parent in node.parents:
            assert parent in t.nodes
            assert t.nodes[parent].root == node.root
        assert label not in tree.ancestors(label)


def test_ancestors_descendants_and_expand():
    # Fig. 4 of Liz et al. 2023: the general label fracture and its specific labels.
    assert tree.descendants("fracture") == {"clavicle fracture", "humeral fracture", "vertebral fracture",
                                            "rib fracture", "callus rib fracture"}
    assert tree.ancestors("callus rib fracture") == {"rib fracture", "fracture", "radiological finding"}
    assert tree.ancestors("supra aortic elongation") == {
        "aortic elongation", "superior mediastinal enlargement", "mediastinal enlargement", "radiological finding"}
    assert tree.ancestors("normal") == frozenset()
    assert tree.expand(["hydropneumothorax", "normal"]) == {
        "hydropneumothorax", "pneumothorax", "pleural effusion", "radiological finding", "normal"}
    assert tree.expand(["not a label"]) == {"not a label"}
    with pytest.raises(KeyError, match="'not a label' is not a PadChest term-tree label"):
        tree.ancestors("not a label")


def test_find_is_case_insensitive():
    assert tree.find("Copd signs") == "COPD signs"
    assert tree.find("  Mediastinic Lipomatosis ") == "mediastinic lipomatosis"
    assert tree.find("martian shadow") is None


def test_known_labels_leave_out_the_localization_tree():
    known = tree.known_labels()
    assert {"normal", "exclude", "COPD signs", "pneumonia"} <= known
    assert "lingula" not in known and "localization" not in known
    assert "lingula" in tree.known_labels(include_localization=True)


def test_labels_tree_command():
    from click.testing import CliRunner

    from mlbench.cli import main

    runner = CliRunner()
    sub = runner.invoke(main, ["labels", "tree", "Fracture"])
    assert sub.exit_code == 0, sub.output
    assert "callus rib fracture" in sub.output and "parents: radiological finding" in sub.output
    assert "pleural effusion" not in sub.output
    whole = runner.invoke(main, ["labels", "tree"])
    assert whole.exit_code == 0 and all(root in whole.output for root in tree.load_tree().roots)
    typo = runner.invoke(main, ["labels", "tree", "pneumotorax"])
    assert typo.exit_code != 0 and "did you mean 'pneumothorax'" in typo.output
