"""NIH ChestX-ray14's labels as findings of the shared vocabulary (external validation, ``mlbench evaluate``).

The vocabulary is torchxrayvision's common pathology names, which are NIH's own 14 label names: each
label is exactly its finding (as the report-mined label file assigns it, PA and AP films alike).
"""

from __future__ import annotations

from mlbench import EXACT, Finding, SharedFindings
from mlbench_nih.labels import LABELS

VOCABULARY = "torchxrayvision"

FINDINGS = SharedFindings(
    vocabulary=VOCABULARY,
    labels={label: Finding(label, EXACT, "the vocabulary's name is NIH's label") for label in LABELS},
)
