"""The NIH demo corpus: NIH's format, its quirks, its pinned test patients, determinism."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mlbench.data import DataSource, DatasetError
from mlbench.demo import MARKER_NAME, SYNTHETIC_KIND
from mlbench.preprocessing.images import ImageReadError, read_grayscale
from mlbench_nih import demo
from mlbench_nih.dataset import NIHDataset
from mlbench_nih.labels import LABELS, official_test_patients

N_PATIENTS, SIZE = 40, 64


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nihdemo")
    demo.write_demo_corpus(out, seed=0, n_patients=N_PATIENTS, image_size=SIZE, n_corrupt=2, n_missing=1, workers=2)
    return out


def _csv(corpus: Path) -> pd.DataFrame:
    return pd.read_csv(corpus / demo.CSV_NAME, dtype={"Patient ID": str})


def test_csv_has_nih_columns_and_quirks(corpus):
    header = (corpus / demo.CSV_NAME).read_text(encoding="utf-8").splitlines()[0].split(",")
    assert tuple(header) == demo.NIH_COLUMNS
    frame = _csv(corpus)
    assert frame["Patient ID"].nunique() == N_PATIENTS
    assert frame["Follow-up #"].max() >= 2  # several films per patient
    assert set(frame["View Position"]) == {"PA", "AP"}
    assert (frame["Finding Labels"] == "No Finding").mean() > 0.3
    words = {w for text in frame["Finding Labels"] for w in text.split("|")}
    assert words <= set(LABELS) | {"No Finding"}
    # names follow NIH's pattern: patient id in 8 digits, follow-up in 3
    expected = [f"{int(p):08d}_{int(k):03d}.png" for p, k in zip(frame["Patient ID"], frame["Follow-up #"])]
    assert frame["Image Index"].tolist() == expected


def test_images_are_8bit_pngs_in_tarball_folders_with_damage_listed(corpus):
    frame = _csv(corpus)
    files = {p.name: p for p in corpus.glob("images_00*/images/*.png")}
    assert {p.parent.parent.name for p in files.values()} == {"images_001", "images_002"}
    assert len(files) == len(frame) - 1  # one row names a file that was never written
    truncated = 0
    for path in files.values():
        try:
            image = read_grayscale(path)
        except ImageReadError as exc:
            assert exc.reason == "truncated"
            truncated += 1
            continue
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint8 and raw.shape == (SIZE, SIZE)
        assert image.shape == (SIZE, SIZE)
    assert truncated == 2
    records = NIHDataset().read(DataSource(corpus / demo.CSV_NAME, corpus))
    assert records.kind == SYNTHETIC_KIND
    assert Counter(s.reason for s in records.skipped) == {"missing_image": 1}
    assert len(records.frame) == len(frame) - 1


def test_test_patients_come_from_the_official_list(corpus):
    patients = set(_csv(corpus)["Patient ID"])
    official = official_test_patients()
    in_test = patients & official
    assert 0 < len(in_test) < len(patients)
    assert len(in_test) == round(0.2 * N_PATIENTS)
    marker = json.loads((corpus / MARKER_NAME).read_text())
    assert marker["generator"] == "mlbench_nih.demo" and marker["parameters"]["test_share"] == 0.2


def test_findings_boxes_cover_every_drawn_label(corpus):
    frame = _csv(corpus)
    boxes = pd.read_csv(corpus / demo.FINDINGS_NAME)
    expected = Counter(w for text in frame["Finding Labels"] for w in text.split("|") if w != "No Finding")
    assert Counter(boxes["label"]) == expected
    assert ((boxes.x0 < boxes.x1) & (boxes.y0 < boxes.y1) & (boxes.x1 <= SIZE) & (boxes.y1 <= SIZE)).all()


def test_label_sampling_keeps_nih_imbalance():
    rng = np.random.default_rng(3)
    draws = [demo.sample_findings(rng) for _ in range(20_000)]
    no_finding = sum(1 for d in draws if not d) / len(draws)
    assert no_finding == pytest.approx(60_361 / 112_120, abs=0.02)
    counts = Counter(label for d in draws for label in d)
    ranked = [label for label, _ in counts.most_common()]
    assert ranked[:3] == ["Infiltration", "Effusion", "Atelectasis"]  # NIH's three most frequent
    assert min(counts.values()) > 0 and counts["Infiltration"] > 5 * counts["Hernia"]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_threads(tmp_path):
    options = dict(n_patients=6, image_size=SIZE, n_corrupt=1, n_missing=0)
    demo.write_demo_corpus(tmp_path / "a", seed=3, workers=1, **options)
    demo.write_demo_corpus(tmp_path / "b", seed=3, workers=3, **options)
    demo.write_demo_corpus(tmp_path / "c", seed=4, workers=1, **options)
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a == b and a != c


def test_bad_options_say_what_was_expected(tmp_path):
    with pytest.raises(DatasetError, match="n_patients"):
        demo.write_demo_corpus(tmp_path, n_patients=0)
    with pytest.raises(DatasetError, match="image_size"):
        demo.write_demo_corpus(tmp_path, n_patients=2, image_size=32)
    with pytest.raises(DatasetError, match="test_share"):
        demo.write_demo_corpus(tmp_path, n_patients=2, test_share=1.0)
    with pytest.raises(DatasetError, match="n_corrupt"):
        demo.write_demo_corpus(tmp_path, n_patients=1, image_size=SIZE, n_corrupt=50)
