"""The NIH demo: a deterministic synthetic corpus in NIH ChestX-ray14's own format.

Real NIH films are not shipped, so the benchmark also runs on this corpus. It is laid out as the
release is unpacked from its tarballs and read by the real reader:

``Data_Entry_2017_v2020.csv``          NIH's columns, one row per image
``images_001/images/*.png``, ``images_002/images/*.png``   8-bit grayscale PNGs named
                                        ``<Patient ID, 8 digits>_<Follow-up #, 3 digits>.png``
``findings.csv``                       image_id, label, x0, y0, x1, y1: each drawn finding's box
``mlbench-demo.json``                  the marker that makes the reader say ``synthetic``
(``DataSource.images`` is the corpus folder itself.)

What is realistic
    Label sets keep NIH's imbalance: about 54% of films are ``No Finding``; the others carry labels
    drawn with NIH's per-label frequencies among abnormal films (LABEL_COUNTS, from the 2020 label
    file), with a floor (MIN_LABEL_SHARE) so that the rarest label (Hernia, 0.2%) still reaches every
    split of a 2,000-image demo. Patients have 1-6 films (``Follow-up #`` 0, 1, ...), later films
    often repeat the first one's findings, PA and AP views mix (60:40, as in NIH), and
    ``n_corrupt`` PNGs are truncated and ``n_missing`` rows name a file that was never written.

The official test set
    Patient IDs are real NIH ID numbers: a ``test_share`` of the demo's patients take IDs from NIH's
    official test list and the others IDs outside it, so the benchmark's one rule (a patient in the
    official list is a test patient) pins the demo's test set too.

What is synthetic
    The images, drawn by :mod:`mlbench.demo.films` (each label's painter is in FINDING_PAINTERS).
    The same (seed, options) gives byte-identical files, whatever the number of threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from mlbench import (DatasetError, DataSource, films, FINDINGS_FILE, mark_synthetic, write_bytes,
                    write_findings, write_text)
from mlbench_nih.labels import LABELS, NO_FINDING, official_test_patients

GENERATOR_VERSION = "1"
CSV_NAME = "Data_Entry_2017_v2020.csv"
FINDINGS_NAME = FINDINGS_FILE  # the core owns the sidecar names (mlbench.demo)
IMAGE_FOLDERS = ("images_001/images", "images_002/images")
NIH_COLUMNS: tuple[str, ...] = (
    "Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender",
    "View Position", "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]",
)
# Label counts of Data_Entry_2017_v2020.csv (112,120 images; 60,361 No Finding).
LABEL_COUNTS = {
    "Atelectasis": 11_559, "Cardiomegaly": 2_776, "Effusion": 13_317, "Infiltration": 19_894,
    "Mass": 5_782, "Nodule": 6_331, "Pneumonia": 1_431, "Pneumothorax": 5_302, "Consolidation": 4_667,
    "Edema": 2_303, "Emphysema": 2_516, "Fibrosis": 1_686, "Pleural_Thickening": 3_385, "Hernia": 227,
}
NIH_IMAGES, NIH_NO_FINDING = 112_120, 60_361
MIN_LABEL_SHARE = 0.03  # among abnormal films: Hernia's real 0.4% would leave splits without it
DEFAULT_PATIENTS = 700  # about 2,000 films
MAX_NIH_PATIENT_ID = 30_805

# Each label's drawn signature (shape changes alter the chest before it is drawn).
SHAPE_CHANGES: dict[str, films.ShapeChange] = {
    "Cardiomegaly": films.enlarged_heart,
    "Emphysema": films.hyperinflation,
}
FINDING_PAINTERS: dict[str, films.Draw] = {
    "Atelectasis": films.laminar_atelectasis,
    "Effusion": films.pleural_effusion,
    "Infiltration": films.infiltrate,
    "Mass": films.mass,
    "Nodule": films.nodule,
    "Pneumonia": films.pneumonia,
    "Pneumothorax": films.pneumothorax,
    "Consolidation": films.increased_density,
    "Edema": films.alveolar_pattern,
    "Fibrosis": films.interstitial_pattern,
    "Pleural_Thickening": films.apical_pleural_thickening,
    "Hernia": films.hiatal_hernia,
}
assert sorted((*SHAPE_CHANGES, *FINDING_PAINTERS)) == sorted(LABELS), "every NIH label needs a signature"


def label_probabilities() -> np.ndarray:
    """P(label | abnormal film) in LABELS order, floored at MIN_LABEL_SHARE."""
    abnormal = NIH_IMAGES - NIH_NO_FINDING
    return np.maximum(np.array([LABEL_COUNTS[label] for label in LABELS]) / abnormal, MIN_LABEL_SHARE)


def sample_findings(rng: np.random.Generator) -> tuple[str, ...]:
    """One film's labels: none with NIH's No Finding share, else independent draws (at least one)."""
    if rng.random() < NIH_NO_FINDING / NIH_IMAGES:
        return ()
    p = label_probabilities()
    chosen = np.flatnonzero(rng.random(len(LABELS)) < p)
    if not len(chosen):
        chosen = [int(rng.choice(len(LABELS), p=p / p.sum()))]
    return tuple(LABELS[j] for j in chosen)


def demo_patient_ids(n_patients: int, test_share: float, rng: np.random.Generator) -> list[tuple[int, bool]]:
    """(NIH patient ID, in the official test list) per demo patient, in ID order."""
    test_pool = sorted(int(p) for p in official_test_patients())
    taken = set(test_pool)
    other_pool = [p for p in range(1, MAX_NIH_PATIENT_ID + 1) if p not in taken]
    n_test = int(round(test_share * n_patients))
    if n_patients >= 2:
        n_test = min(max(n_test, 1), n_patients - 1)  # a demo always has both kinds
    test = rng.choice(test_pool, size=n_test, replace=False)
    other = rng.choice(other_pool, size=n_patients - n_test, replace=False)
    return sorted([(int(p), True) for p in test] + [(int(p), False) for p in other])


def _plan_rows(n_patients: int, test_share: float, rng: np.random.Generator) -> list[dict]:
    rows: list[dict] = []
    for patient, _ in demo_patient_ids(n_patients, test_share, rng):
        n_films = 1 + int(rng.choice(6, p=[0.35, 0.25, 0.15, 0.1, 0.1, 0.05]))
        age = int(np.clip(rng.normal(47, 17), 1, 95))
        sex = "M" if rng.random() < 0.56 else "F"
        first = sample_findings(rng)
        for follow_up in range(n_films):
            findings = first if follow_up and rng.random() < 0.5 else sample_findings(rng)
            rows.append({
                "Image Index": f"{patient:08d}_{follow_up:03d}.png", "findings": findings,
                "Follow-up #": follow_up, "Patient ID": patient, "Patient Age": age + follow_up // 3,
                "Patient Gender": sex, "View Position": "PA" if rng.random() < 0.6 else "AP",
            })
    return rows


def write_demo_corpus(out_dir: str | Path, *, seed: int = 0, n_patients: int = DEFAULT_PATIENTS,
                      image_size: int = 256, n_corrupt: int = 2, n_missing: int = 1,
                      test_share: float = 0.2, workers: int = 4) -> DataSource:
    """Write the synthetic NIH-format corpus into ``out_dir`` and return its DataSource."""
    if n_patients < 1:
        raise DatasetError(f"n_patients must be at least 1, got {n_patients}")
    if image_size < 64:
        raise DatasetError(f"image_size must be at least 64 px (findings are drawn to scale), got {image_size}")
    if n_corrupt < 0 or n_missing < 0:
        raise DatasetError(f"n_corrupt and n_missing must be 0 or more, got {n_corrupt} and {n_missing}")
    if not 0.0 <= test_share < 1.0:
        raise DatasetError(f"test_share must be in [0, 1), got {test_share}")
    out = Path(out_dir)
    plan_rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    rows = _plan_rows(n_patients, test_share, plan_rng)
    if n_corrupt + n_missing > len(rows):
        raise DatasetError(f"n_corrupt + n_missing = {n_corrupt + n_missing} but the corpus has only {len(rows)} films")
    damaged = plan_rng.choice(len(rows), size=n_corrupt + n_missing, replace=False).tolist()
    corrupt, missing = set(damaged[:n_corrupt]), set(damaged[n_corrupt:])

    def make(i: int) -> list[tuple]:
        # one generator per image: the bytes do not depend on the order threads run in
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, i]))
        row = rows[i]
        image, boxes, _ = films.draw_frontal(row["findings"], image_size, rng,
                                             shape_changes=SHAPE_CHANGES, painters=FINDING_PAINTERS)
        if i not in missing:
            data = films.encode_png(films.to_8bit(image), row["Image Index"])
            if i in corrupt:
                data = data[: len(data) // 3]
            folder = IMAGE_FOLDERS[i * len(IMAGE_FOLDERS) // len(rows)]
            write_bytes(out / folder / row["Image Index"], data)
        return [(row["Image Index"], label, *box) for label, box in boxes.items()]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        boxes = [b for made in pool.map(make, range(len(rows))) for b in made]

    frame = pd.DataFrame([{
        "Image Index": r["Image Index"],
        "Finding Labels": "|".join(sorted(r["findings"])) or NO_FINDING,
        "Follow-up #": r["Follow-up #"], "Patient ID": r["Patient ID"], "Patient Age": r["Patient Age"],
        "Patient Gender": r["Patient Gender"], "View Position": r["View Position"],
        "OriginalImage[Width": image_size, "Height]": image_size,
        "OriginalImagePixelSpacing[x": 0.143, "y]": 0.143,
    } for r in rows], columns=list(NIH_COLUMNS))
    csv_path = out / CSV_NAME
    write_text(csv_path, frame.to_csv(index=False, lineterminator="\n"))
    write_findings(out, boxes)
    mark_synthetic(out, **{
        "generator": "mlbench_nih.demo",
        "generator_version": GENERATOR_VERSION,
        "statement": "Synthetic data: drawn images in NIH ChestX-ray14's format, not radiographs of any person. "
                     "Label sets follow NIH's label frequencies; patient IDs are NIH ID numbers chosen so "
                     "that the official test list pins the demo's test patients.",
        "seed": seed,
        "parameters": {"n_patients": n_patients, "image_size": image_size, "n_corrupt": n_corrupt,
                       "n_missing": n_missing, "test_share": test_share},
        "counts": {"images": len(rows), "no_finding": int(sum(not r["findings"] for r in rows)),
                   "corrupt": n_corrupt, "missing": n_missing},
        "files": {"csv": CSV_NAME, "images": list(IMAGE_FOLDERS), "findings": FINDINGS_NAME},
    })
    return DataSource(csv=csv_path, images=out)
