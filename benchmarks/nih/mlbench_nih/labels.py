"""NIH ChestX-ray14's label set and its official test patients."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

# The 14 labels in the order of Wang et al. 2017 and most later papers.
LABELS: tuple[str, ...] = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)
NO_FINDING = "No Finding"  # the label file's word for an image with none of the 14
VERSION = "1.0"
# sha256 of the sorted official test image names joined by "\n" (data/ATTRIBUTION.md).
OFFICIAL_TEST_SHA256 = "38ca5ef7f756092946f57c1a59faca882ed589a1ab1f72590b45dc06c6d5e1cc"
OFFICIAL_TEST_IMAGES = 25_596


def normalize_patient_id(value: str) -> str:
    """The label file writes ``Patient ID`` as an integer; ``00042`` and ``42`` are one patient."""
    value = value.strip()
    # isdigit alone accepts '²', which int() refuses: a hostile cell must not stop the read.
    return str(int(value)) if value.isascii() and value.isdigit() else value


@lru_cache(maxsize=1)
def official_test_patients() -> frozenset[str]:
    """The 2,797 patients of NIH's official test split (package data, see data/ATTRIBUTION.md)."""
    text = resources.files("mlbench_nih").joinpath("data", "official_test_patients.txt").read_text("utf-8")
    return frozenset(normalize_patient_id(line) for line in text.splitlines() if line.strip())
