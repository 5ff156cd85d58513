"""The 54 general labels of Liz et al. 2023 (Table 10), each a node of PadChest's term tree.

An image holds a general label when it carries that node or any of its descendants (the Labels
column is not propagated upward), so :func:`targets` expands an image's findings to their
ancestors before intersecting with the label set. Labels are named as the tree spells them
(Table 10 writes "Copd signs" for the tree's "COPD signs"); ``PAPER_NAMES`` keeps Table 10's
spelling for display.
"""

from __future__ import annotations

from typing import Iterable

from mlbench_padchest.tree import expand, find

GENERAL_VERSION = "1.0"

# Table 10's rows in Table 10's order: name as printed -> its "# Samples" column.
TABLE10_SAMPLES: dict[str, int] = {
    "Normal": 34327,
    "Copd signs": 13419,
    "Cardiomegaly": 8120,
    "Thoracic cage deformation": 7778,
    "Aortic elongation": 7436,
    "Infiltrates": 6706,
    "Unchanged": 6487,
    "Chronic changes": 4312,
    "Surgery": 3928,
    "Atelectasis": 3565,
    "Costophrenic angle blunting": 3306,
    "Calcified densities": 3253,
    "Vertebral degenerative changes": 3203,
    "Hilar enlargement": 3162,
    "Pleural thickening": 3010,
    "Mediastinal enlargement": 2813,
    "Air trapping": 2765,
    "Fracture": 2529,
    "Pleural effusion": 2436,
    "Granuloma": 2306,
    "Nodule": 1936,
    "Fibrotic band": 1781,
    "Electrical device": 1772,
    "Pneumonia": 1652,
    "Aortic atheromatosis": 1581,
    "Pseudonodule": 1451,
    "Bronchiectasis": 1430,
    "Hiatal hernia": 1362,
    "Hemidiaphragm elevation": 1231,
    "Increased density": 1133,
    "Diaphragmatic eventration": 757,
    "Volume loss": 684,
    "Adenopathy": 659,
    "Bronchovascular markings": 602,
    "Mass": 574,
    "Artificial heart valve": 562,
    "Catheter": 545,
    "Suboptimal study": 544,
    "Pulmonary fibrosis": 523,
    "Heart insufficiency": 520,
    "Hypoexpansion": 476,
    "Gynecomastia": 437,
    "Emphysema": 410,
    "Sclerotic bone lesion": 352,
    "Fissure thickening": 336,
    "Hilar congestion": 318,
    "Osteopenia": 318,
    "Tuberculosis": 299,
    "Bullas": 290,
    "Hyperinflated lung": 272,
    "Cavitation": 243,
    "Mediastinic lipomatosis": 212,
    "Pneumothorax": 210,
    "Vascular redistribution": 204,
}


def _tree_names(paper_names: Iterable[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for paper_name in paper_names:
        node = find(paper_name)
        if node is None:
            raise ValueError(f"Table 10 label {paper_name!r} matches no term-tree node")
        mapping[node] = paper_name
    return mapping


# tree spelling -> Table 10 spelling, in Table 10's order
PAPER_NAMES: dict[str, str] = _tree_names(TABLE10_SAMPLES)
GENERAL_LABELS: tuple[str, ...] = tuple(PAPER_NAMES)
assert len(GENERAL_LABELS) == 54

_WANTED = frozenset(GENERAL_LABELS)


def targets(findings: Iterable[str]) -> frozenset[str]:
    """The general labels an image holds: its findings and their ancestors, within the 54."""
    return expand(findings) & _WANTED
