"""The embedded demo: a deterministic synthetic corpus in PadChest's own format.

Real PadChest images cannot ship, so every feature also runs on this corpus. It is written exactly
as PadChest is laid out (a label CSV with PadChest's columns, 16-bit grayscale PNGs with 12-bit
values under numbered ``ImageDir`` folders), so the demo goes through the real PadChest reader.

What is realistic
    Label sets are sampled from the real PA label sets of the public CSV (``demo_labelsets.json``,
    a count table derived by ``benchmarks/padchest/tools/derive_demo_labelsets.py``), so per-label
    prevalence and co-occurrence follow the real PA data, imbalance included (normal 37%, supra
    aortic elongation 1.1%). Rows carry PadChest's quirks: 1-4 images per patient, lateral and AP
    projections beside PA, a few NaN ``Labels``, stray spaces inside list items, labels outside the
    benchmark's 35 (``consolidation``, ``exclude``, ...), images whose only findings are outside
    the 35, and ``n_corrupt`` truncated PNGs.

What is synthetic
    The images. Each frontal film shows a body, two dark lung fields, a heart shadow, an aortic
    knob, diaphragm domes, spine, clavicles, ribs and noise, with per-image jitter of position,
    scale, densities and exposure. Every one of the 35 labels has a drawn signature at a plausible
    place; ``normal`` draws nothing. Laterals are drawn as side views without findings (the
    benchmark keeps PA only). Sizes and contrasts are tuned to be learnable after the demo's lung
    crop at 64 px, not to look like a radiograph. Sides below are the patient's.

    Changes of anatomy: COPD signs (darker, longer lungs over flat domes), cardiomegaly (heart
    about 1.6 times as wide), aortic elongation (aortic knob 2.5 times larger), scoliosis (S-shaped
    spine crossing into the lung fields), hemidiaphragm elevation (one dome raised and peaked),
    volume loss (one lung smaller: apex lower, lateral wall in).

    Drawn marks: pleural effusion (basal opacity with a meniscus, one or both sides),
    costophrenic angle blunting (dense wedge in the lateral angle), pneumonia (patchy cluster,
    lower-mid zone), infiltrates (hazy blob, right mid zone), alveolar pattern (dense perihilar
    "bat wings"), interstitial pattern (net of short lines, both lower zones), increased density
    (veil over the upper half of one lung), laminar atelectasis (thin horizontal plate, lower
    zone), fibrotic band (oblique band towards the hilum), nodule (round opacity), calcified
    granuloma (tiny, very dense dot), pseudonodule (faint nipple shadows, both lower lateral zones),
    bronchiectasis (cluster of ring shadows, lower medial zone), air trapping (hyperlucent
    thin-walled region, left lower zone), apical pleural thickening (dense apical cap), vascular
    hilar enlargement (lobulated masses at both hila), aortic atheromatosis (dense arc on the
    knob), supra aortic elongation (bulge of the right upper mediastinum), hiatal hernia
    (retrocardiac gas bubble with an air-fluid level), kyphosis (dense, widened upper thoracic
    spine), vertebral degenerative changes (spurs off the lower thoracic spine), vertebral
    anterior compression (one flat, dense mid-thoracic vertebra), callus rib fracture (dense
    spindle on a lateral rib), pacemaker (box under the left clavicle with a lead to the heart),
    sternotomy (wire loops along the midline), suture material (a line of clips, upper zone).

    Not visible on a real film, so given an arbitrary but learnable mark: unchanged (a thick
    ring, right upper zone) and chronic changes (a cross-hatched square, left upper zone). Their
    heatmap scores mean something only on this corpus.

Files written in ``out_dir``
    ``PADCHEST_demo_labels.csv``   PadChest's columns after an unnamed index column
    ``images/<ImageDir>/<ImageID>`` 16-bit PNGs (``DataSource.images`` is ``out_dir/images``)
    ``findings.csv``               image_id, label, x0, y0, x1, y1: each drawn finding's box
    ``lungs.csv``                  image_id, side, x0, y0, x1, y1: each frontal lung field
    ``mlbench-demo.json``          the marker that makes the reader label the data ``synthetic``
Boxes are in image pixels with exclusive ends; ``side`` is the patient's side (in a PA film the
patient's right lung is on the image's left).

The same (seed, parameters) gives byte-identical files: everything random comes from seeded numpy
Generators (one stream per image, so the number of threads does not matter), nothing reads the
clock, the PNG compression settings are fixed, and pixels are computed in float64 before 12-bit
quantisation, so a last-bit difference between CPUs' maths routines would have to fall within
about 1e-13 of a rounding boundary to change a pixel. The PNG bytes come from OpenCV's bundled
zlib: a different OpenCV build may compress differently (same pixels, other bytes).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from mlbench import (DataSource, FINDINGS_FILE, LUNGS_FILE, films, mark_synthetic, write_bytes, write_findings,
                     write_lungs, write_text)
from mlbench_padchest.labels import SPECIFIC_LABELS

GENERATOR_VERSION = "1"
CSV_NAME = "PADCHEST_demo_labels.csv"
IMAGES_DIR = "images"
FINDINGS_NAME, LUNGS_NAME = FINDINGS_FILE, LUNGS_FILE  # the core owns the sidecar names (mlbench.demo)
LABELSETS_FILE = "demo_labelsets.json"

# PadChest's CSV columns, in its order (after the unnamed index column).
PADCHEST_COLUMNS: tuple[str, ...] = (
    "ImageID", "ImageDir", "StudyDate_DICOM", "StudyID", "PatientID", "PatientBirth",
    "PatientSex_DICOM", "ViewPosition_DICOM", "Projection", "MethodProjection", "Pediatric",
    "Modality_DICOM", "Manufacturer_DICOM", "PhotometricInterpretation_DICOM",
    "PixelRepresentation_DICOM", "PixelAspectRatio_DICOM", "SpatialResolution_DICOM",
    "BitsStored_DICOM", "WindowCenter_DICOM", "WindowWidth_DICOM", "Rows_DICOM", "Columns_DICOM",
    "XRayTubeCurrent_DICOM", "Exposure_DICOM", "ExposureInuAs_DICOM", "ExposureTime",
    "RelativeXRayExposure_DICOM", "ReportID", "Report", "MethodLabel", "Labels", "Localizations",
    "LabelsLocalizationsBySentence", "labelCUIS", "LocalizationsCUIS",
)

# Real PadChest labels outside padchest-specific's 35, used for the rows the mapping must drop.
OUTSIDE_LABELS: tuple[str, ...] = (
    "consolidation", "emphysema", "hilar enlargement", "metal", "nipple shadow", "atelectasis",
    "goiter", "pulmonary fibrosis", "suboptimal study", "exclude",
)

DEFAULT_PATIENTS = 1500  # about 2,000 PA images with benchmark labels


# --------------------------------------------------------------------------------------------
# Label sets


@dataclass(frozen=True)
class LabelSetTable:
    """The real PA label sets: frequent sets with their counts, plus a remainder of rare sets
    summarised by set size, per-label counts and pair counts (sampled label by label)."""

    labels: tuple[str, ...]
    sets: tuple[tuple[int, ...], ...]
    set_counts: np.ndarray
    remainder_images: int
    remainder_sizes: np.ndarray  # images with 1, 2, ... labels
    remainder_label_counts: np.ndarray
    remainder_pair_counts: np.ndarray  # (labels, labels), symmetric, zero diagonal


@lru_cache(maxsize=1)
def load_label_sets() -> LabelSetTable:
    """Load the packaged ``demo_labelsets.json`` and check it matches the benchmark's labels."""
    text = resources.files("mlbench_padchest").joinpath(LABELSETS_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    if raw.get("format") != "mlbench-padchest-demo-labelsets" or raw.get("version") != 1:
        raise ValueError(f"{LABELSETS_FILE}: unknown format {raw.get('format')!r} version {raw.get('version')!r}")
    if tuple(raw["labels"]) != SPECIFIC_LABELS:
        raise ValueError(f"{LABELSETS_FILE}: its labels differ from mlbench_padchest.labels.SPECIFIC_LABELS; "
                         "rerun benchmarks/padchest/tools/derive_demo_labelsets.py")
    remainder = raw["remainder"]
    pairs = np.zeros((len(SPECIFIC_LABELS),) * 2, dtype=np.float64)
    for i, j, n in remainder["pair_counts"]:
        pairs[i, j] = pairs[j, i] = n
    return LabelSetTable(
        labels=tuple(raw["labels"]),
        sets=tuple(tuple(s) for s, _ in raw["sets"]),
        set_counts=np.array([n for _, n in raw["sets"]], dtype=np.float64),
        remainder_images=int(remainder["n_images"]),
        remainder_sizes=np.array(remainder["size_counts"], dtype=np.float64),
        remainder_label_counts=np.array(remainder["label_counts"], dtype=np.float64),
        remainder_pair_counts=pairs,
    )


def sample_label_sets(n: int, rng: np.random.Generator | int = 0) -> list[tuple[str, ...]]:
    """Draw ``n`` label sets (tuples of SPECIFIC_LABELS, possibly empty) as the real PA data has them.

    A frequent real set is drawn with its real frequency; with the remainder's share, a set is
    built instead: its size from the remainder's sizes, its first label from the remainder's label
    counts, each further label in proportion to how often it co-occurs there with the labels
    already drawn. An empty tuple means an image whose findings all lie outside the 35.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    table = load_label_sets()
    weights = np.append(table.set_counts, table.remainder_images)
    picks = rng.choice(len(weights), size=n, p=weights / weights.sum())
    size_p = table.remainder_sizes / table.remainder_sizes.sum()
    label_p = table.remainder_label_counts / table.remainder_label_counts.sum()
    out: list[tuple[str, ...]] = []
    for pick in picks:
        if pick < len(table.sets):
            indices: Sequence[int] = table.sets[pick]
        else:
            indices = sorted(_remainder_set(table, rng, size_p, label_p))
        out.append(tuple(table.labels[j] for j in indices))
    return out


def _remainder_set(table: LabelSetTable, rng: np.random.Generator, size_p: np.ndarray, label_p: np.ndarray) -> list[int]:
    size = 1 + int(rng.choice(len(size_p), p=size_p))
    chosen = [int(rng.choice(len(label_p), p=label_p))]
    while len(chosen) < size:
        weights = table.remainder_pair_counts[chosen].sum(axis=0)
        weights[chosen] = 0.0
        if weights.sum() == 0:  # nothing co-occurs with these: fall back to plain frequency
            weights = table.remainder_label_counts.copy()
            weights[chosen] = 0.0
        chosen.append(int(rng.choice(len(weights), p=weights / weights.sum())))
    return chosen


# --------------------------------------------------------------------------------------------
# Findings: the painters of mlbench.demo.films under PadChest's label names, and two marks of its own


def _unchanged(canvas: films.Canvas, rng: np.random.Generator) -> films.Box:
    # synthetic mark (not visible on a real film): a thick bright ring in the upper right lung
    u = canvas.chest.unit()
    x, y = films.lung_point(canvas, 0, rng.uniform(0.55, 0.65), rng.uniform(0.3, 0.36))
    r = 0.6 * u
    layer = canvas.layer()
    layer[canvas.ellipse(x, y, r, r) & ~canvas.ellipse(x, y, 0.5 * r, 0.5 * r)] = 0.35
    return films.add_layer(canvas, layer)


def _chronic_changes(canvas: films.Canvas, rng: np.random.Generator) -> films.Box:
    # synthetic mark (not visible on a real film): a cross-hatched square in the upper left lung
    c, u = canvas.chest, canvas.chest.unit()
    x, y = films.lung_point(canvas, 1, rng.uniform(0.45, 0.55), rng.uniform(0.26, 0.32))
    half = 0.6 * u
    layer = canvas.layer()
    t = films.thickness(c, 0.01)
    for k in np.linspace(-half, half, 4):
        films.line(layer, (x - half, y + k), (x + half, y + k), 0.22, t)
        films.line(layer, (x + k, y - half), (x + k, y + half), 0.22, t)
    return films.add_layer(canvas, layer)


SHAPE_CHANGES: dict[str, films.ShapeChange] = {
    "COPD signs": films.hyperinflation,
    "cardiomegaly": films.enlarged_heart,
    "aortic elongation": films.elongated_aorta,
    "scoliosis": films.scoliosis,
    "hemidiaphragm elevation": films.raised_hemidiaphragm,
    "volume loss": films.volume_loss,
}

DRAWN_FINDINGS: dict[str, films.Draw] = {
    "air trapping": films.air_trapping,
    "unchanged": _unchanged,
    "chronic changes": _chronic_changes,
    "costophrenic angle blunting": films.costophrenic_blunting,
    "pleural effusion": films.pleural_effusion,
    "pneumonia": films.pneumonia,
    "interstitial pattern": films.interstitial_pattern,
    "infiltrates": films.infiltrate,
    "laminar atelectasis": films.laminar_atelectasis,
    "vertebral degenerative changes": films.vertebral_osteophytes,
    "kyphosis": films.kyphosis,
    "apical pleural thickening": films.apical_pleural_thickening,
    "vascular hilar enlargement": films.hilar_enlargement,
    "fibrotic band": films.fibrotic_band,
    "nodule": films.nodule,
    "calcified granuloma": films.calcified_granuloma,
    "callus rib fracture": films.rib_callus,
    "pacemaker": films.pacemaker,
    "aortic atheromatosis": films.aortic_atheromatosis,
    "sternotomy": films.sternotomy_wires,
    "bronchiectasis": films.bronchiectasis,
    "hiatal hernia": films.hiatal_hernia,
    "pseudonodule": films.nipple_shadows,
    "alveolar pattern": films.alveolar_pattern,
    "increased density": films.increased_density,
    "vertebral anterior compression": films.vertebral_compression,
    "suture material": films.suture_clips,
    "supra aortic elongation": films.supra_aortic_widening,
}

# Every benchmark label's synthetic signature: "normal" draws nothing.
SIGNATURES: tuple[str, ...] = ("normal",) + tuple(SHAPE_CHANGES) + tuple(DRAWN_FINDINGS)
assert sorted(SIGNATURES) == sorted(SPECIFIC_LABELS), "every specific label needs a signature"


def draw_frontal(labels: Sequence[str], size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, films.Box], dict[str, films.Box]]:
    """Draw one frontal (PA or AP) film carrying ``labels``, a subset of SPECIFIC_LABELS.

    Returns the 12-bit uint16 image, each drawn finding's box and the two lung boxes
    (``right``/``left``, the patient's sides).
    """
    unknown = [label for label in labels if label not in SIGNATURES]
    if unknown:
        raise ValueError(f"draw_frontal: no synthetic signature for {unknown}; expected labels of SPECIFIC_LABELS")
    drawn = [label for label in labels if label != "normal"]
    return films.draw_frontal(drawn, size, rng, shape_changes=SHAPE_CHANGES, painters=DRAWN_FINDINGS)


# --------------------------------------------------------------------------------------------
# The corpus


def _digits(rng: np.random.Generator, n: int) -> str:
    return str(int(rng.integers(1, 10))) + "".join(map(str, rng.integers(0, 10, size=n - 1)))


def _suffix(rng: np.random.Generator) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=6))


def _labels_text(findings: Sequence[str], rng: np.random.Generator) -> str:
    """PadChest's Labels cell: a Python list literal, sometimes with stray spaces in its items."""
    items = list(findings)
    if items and rng.random() < 0.08:
        k = int(rng.integers(len(items)))
        items[k] = " " + items[k] if rng.random() < 0.7 else items[k] + " "
    return repr(items)


def _plan_rows(n_patients: int, n_dirs: int, rng: np.random.Generator) -> list[dict]:
    """Patients, studies and images with their metadata and findings (no pixels yet)."""
    rows: list[dict] = []
    report_id = 4_000_000
    for p in range(n_patients):
        patient_id = _digits(rng, 38)
        birth = float(int(rng.normal(1953, 18)))
        sex = "M" if rng.random() < 0.5 else "F"
        image_dir = str(p * n_dirs // n_patients)
        n_images = 1 + int(rng.choice(4, p=[0.42, 0.36, 0.14, 0.08]))
        base_set = sample_label_sets(1, rng)[0]
        year = int(rng.integers(2009, 2017))
        while n_images > 0:
            # one study: a frontal film, often a lateral beside it, sharing one report
            study_id = _digits(rng, 38)
            report_id += int(rng.integers(1, 60))
            year = min(2017, year + int(rng.integers(0, 2)))
            date = f"{year}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}"
            frontal = str(rng.choice(["PA", "AP", "AP_horizontal"], p=[0.9, 0.05, 0.05]))
            projections = [frontal]
            if n_images >= 2 and rng.random() < 0.45:
                projections.append("L")
            findings = base_set if rng.random() < 0.6 else sample_label_sets(1, rng)[0]
            findings = list(findings)
            if not findings:
                # the image's findings all lie outside the benchmark's 35: it will be dropped
                findings = list(rng.choice(OUTSIDE_LABELS, size=int(rng.integers(1, 3)), replace=False))
            elif rng.random() < 0.1:
                findings.insert(int(rng.integers(len(findings) + 1)), str(rng.choice(OUTSIDE_LABELS)))
            method = "Physician" if rng.random() < 0.27 else "RNN_model"
            for projection in projections:
                rows.append({
                    "ImageID": f"{study_id}_{_suffix(rng)}.png", "ImageDir": image_dir, "StudyDate_DICOM": date,
                    "StudyID": study_id, "PatientID": patient_id, "PatientBirth": birth,
                    "PatientSex_DICOM": sex, "Projection": projection, "ReportID": report_id,
                    "MethodLabel": method, "findings": [str(f) for f in findings],
                })
            n_images -= len(projections)
    return rows


_VIEW_POSITION = {"PA": "POSTEROANTERIOR", "L": "LATERAL", "AP": "ANTEROPOSTERIOR", "AP_horizontal": None}


def _csv_row(row: dict, image: np.ndarray, size: int, rng: np.random.Generator, labels_text: str | None) -> dict:
    lo, hi = np.percentile(image, [5, 95])
    cr = rng.random() < 0.9
    view = _VIEW_POSITION[row["Projection"]] if rng.random() < 0.6 else None
    return {
        "ImageID": row["ImageID"], "ImageDir": row["ImageDir"], "StudyDate_DICOM": row["StudyDate_DICOM"],
        "StudyID": row["StudyID"], "PatientID": row["PatientID"], "PatientBirth": row["PatientBirth"],
        "PatientSex_DICOM": row["PatientSex_DICOM"], "ViewPosition_DICOM": view, "Projection": row["Projection"],
        "MethodProjection": "Manual review of DICOM fields", "Pediatric": "No",
        "Modality_DICOM": "CR" if cr else "DX",
        "Manufacturer_DICOM": "ImagingDynamicsCompanyLtd" if cr else "PhilipsMedicalSystems",
        "PhotometricInterpretation_DICOM": "MONOCHROME2", "PixelRepresentation_DICOM": 0,
        "PixelAspectRatio_DICOM": None, "SpatialResolution_DICOM": None, "BitsStored_DICOM": 12,
        "WindowCenter_DICOM": float(round((lo + hi) / 2)), "WindowWidth_DICOM": float(round(hi - lo)),
        "Rows_DICOM": size, "Columns_DICOM": size,
        "XRayTubeCurrent_DICOM": None, "Exposure_DICOM": None, "ExposureInuAs_DICOM": None, "ExposureTime": None,
        "RelativeXRayExposure_DICOM": None, "ReportID": row["ReportID"],
        "Report": None if labels_text is None else "synthetic demo image; no report",
        "MethodLabel": row["MethodLabel"], "Labels": labels_text,
        "Localizations": None if labels_text is None else "[]",
        "LabelsLocalizationsBySentence": None if labels_text is None else repr([[f.strip() for f in row["findings"]]]),
        "labelCUIS": None if labels_text is None else "[]",
        "LocalizationsCUIS": None if labels_text is None else "[]",
    }


def write_demo_corpus(out_dir: str | Path, *, seed: int = 0, n_patients: int = DEFAULT_PATIENTS,
                      image_size: int = 256, n_corrupt: int = 1, workers: int = 4) -> DataSource:
    """Write the synthetic PadChest-format corpus into ``out_dir`` and return its DataSource.

    ``n_patients`` patients get 1-4 images each; ``n_corrupt`` PA images are written truncated
    (a reader must skip and list them). ``workers`` threads draw and write images; the same
    arguments give the same bytes whatever ``workers`` is.
    """
    if n_patients < 1:
        raise ValueError(f"n_patients must be at least 1, got {n_patients}")
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 px (findings are drawn to scale), got {image_size}")
    if n_corrupt < 0:
        raise ValueError(f"n_corrupt must be 0 or more, got {n_corrupt}")
    out = Path(out_dir)
    plan_rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    n_dirs = min(n_patients, max(2, n_patients // 300))
    rows = _plan_rows(n_patients, n_dirs, plan_rng)

    # PadChest's quirks, placed by the plan's generator: a few NaN Labels, n_corrupt truncated PAs
    pa_rows = [i for i, r in enumerate(rows) if r["Projection"] == "PA"]
    n_nan = max(2, len(rows) // 400)
    nan_rows = set(plan_rng.choice(len(rows), size=min(n_nan, len(rows)), replace=False).tolist())
    candidates = [i for i in pa_rows if i not in nan_rows and set(rows[i]["findings"]) & set(SPECIFIC_LABELS)]
    if n_corrupt > len(candidates):
        raise ValueError(f"n_corrupt={n_corrupt} but the corpus has only {len(candidates)} labelled PA images")
    corrupt_rows = set(plan_rng.choice(candidates, size=n_corrupt, replace=False).tolist()) if n_corrupt else set()

    def make(i: int) -> tuple[dict, list, list]:
        # one generator per image: the bytes do not depend on the order threads run in
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, i]))
        row = rows[i]
        findings, lungs = [], []
        if row["Projection"] == "L":
            image = films.draw_lateral(image_size, rng)
        else:
            drawn = [] if i in nan_rows else [f for f in row["findings"] if f in SPECIFIC_LABELS]
            image, boxes, lung_boxes = draw_frontal(drawn, image_size, rng)
            findings = [(row["ImageID"], label, *box) for label, box in boxes.items()]
            lungs = [(row["ImageID"], side, *box) for side, box in lung_boxes.items()]
        data = films.encode_png(image, row["ImageID"])
        if i in corrupt_rows:
            data = data[: len(data) // 3]  # truncated, as a couple of dozen real PadChest files are
        write_bytes(out / IMAGES_DIR / row["ImageDir"] / row["ImageID"], data)
        labels_text = None if i in nan_rows else _labels_text(row["findings"], rng)
        return _csv_row(row, image, image_size, rng, labels_text), findings, lungs

    # OpenCV and numpy release the GIL and each file waits on its fsync: threads overlap that
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        made = list(pool.map(make, range(len(rows))))
    csv_rows = [m[0] for m in made]
    finding_rows = [f for m in made for f in m[1]]
    lung_rows = [lung for m in made for lung in m[2]]

    frame = pd.DataFrame(csv_rows, columns=list(PADCHEST_COLUMNS))
    csv_path = out / CSV_NAME
    write_text(csv_path, frame.to_csv(index=True, lineterminator="\n"))
    write_findings(out, finding_rows)
    write_lungs(out, lung_rows)
    mark_synthetic(out, **{
        "generator": "mlbench_padchest.demo",
        "generator_version": GENERATOR_VERSION,
        "statement": "Synthetic data: drawn images in PadChest's format, not radiographs of any person. "
                     "Label sets follow the real PadChest PA label frequencies; images are drawn.",
        "seed": seed,
        "parameters": {"n_patients": n_patients, "image_size": image_size, "n_corrupt": n_corrupt},
        "counts": {"images": len(rows), "pa_images": len(pa_rows), "nan_labels": len(nan_rows), "corrupt": n_corrupt},
        "files": {"csv": CSV_NAME, "images": IMAGES_DIR, "findings": FINDINGS_NAME, "lungs": LUNGS_NAME},
    })
    return DataSource(csv=csv_path, images=out / IMAGES_DIR)
