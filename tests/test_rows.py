"""The row checks and profile every label-file reader shares (mlbench.data.rows)."""

from __future__ import annotations

import pandas as pd

from mlbench.data import Skip
from mlbench.data.rows import RowChecks, RowColumns, count_reasons, label_file_profile, unknown_label_counts

COLUMNS = RowColumns(image_id="Image", patient_id="Patient", projection="View", labels="Tags")


def _first_skip(checks: RowChecks, n: int, image_id: str, patient: str, view: str, labels: str,
                folder: tuple[str, str] | None = None) -> Skip | None:
    return (checks.image(n, image_id, folder) or checks.patient(n, image_id, patient)
            or checks.projection(image_id, view) or checks.labels(n, image_id, labels))


def test_checks_in_order_with_the_files_column_names():
    checks = RowChecks(COLUMNS, ("PA",), projection_reason="not_pa", safe_name="a plain name")
    rows = [
        ("", "1", "PA", "x"),            # 1: empty id
        ("../a.png", "1", "PA", "x"),    # 2: unsafe id: the item is the row, not the name
        ("a.png", "", "AP", "NaN"),      # 3: no patient (checked before the view and the labels)
        ("a.png", "1", "PA", "x"),       # 4: a.png was first named in row 3: a duplicate
        ("b.png", "2", "AP", "x"),       # 5: view not kept
        ("c.png", "3", "PA", " n/a "),   # 6: no labels
        ("d.png", "4", "PA", "x"),       # 7: kept
    ]
    got = [_first_skip(checks, n, *row) for n, row in enumerate(rows, start=1)]
    assert got == [
        Skip("row 1", "missing_image_id", "Image is empty"),
        Skip("row 2", "unsafe_path", "Image '../a.png' contains '/'; expected a plain name"),
        Skip("a.png", "missing_patient_id", "row 3: Patient is empty"),
        Skip("a.png", "duplicate_image_id", "row 4 repeats the Image of row 3 (the first is kept)"),
        Skip("b.png", "not_pa", "View AP"),
        Skip("c.png", "nan_labels", "row 6: Tags is empty"),
        None,
    ]
    folder = RowChecks(COLUMNS).image(1, "e.png", ("Dir", "a/b"))
    assert folder == Skip("e.png", "unsafe_path", "Dir 'a/b' contains '/'; expected a plain file name")
    assert RowChecks(COLUMNS).projection("f.png", "") is None  # projections=None keeps every view


def test_profile_counts_rows_views_patients_and_skips():
    skipped = [Skip("a", "unknown_label", "foo"), Skip("b", "nan_labels"), Skip("c", "unknown_label", "foo"),
               Skip("c", "unknown_label", "bar")]
    profile = label_file_profile(pd.Series(["PA", "PA", "AP", "AP"]), pd.Series(["1", "1", "2", ""]), skipped,
                                 extra={"no_finding": 3})
    assert profile == {"rows": 4, "projections": {"PA": 2, "AP": 2}, "patients": 2,
                       "patients_per_projection": {"AP": 1, "PA": 1}, "no_finding": 3,
                       "skipped_by_reason": {"nan_labels": 1, "unknown_label": 3}}
    assert list(profile)[-2:] == ["no_finding", "skipped_by_reason"]
    assert count_reasons([]) == {} and unknown_label_counts(skipped) == {"foo": 2, "bar": 1}
