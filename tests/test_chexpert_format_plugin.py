"""A CheXpert-format dataset + benchmark plugin (tests/data/plugins/chexpert_format) with the ``ignore`` policy.

The acceptance of issue 23, part 1: a third-party plugin reading 1 / 0 / -1 / blank cells runs end to end
with ``--dataset-option policy=ignore`` (its uncertain cells unknown: out of the loss and the metrics),
and an ignore run compares paired with a ones run of the same label file when their test labels
coincide, or the refusal says exactly why.

Two tiny generated corpora share their images and patients. In the first, uncertain cells fall
anywhere, test patients included: ignore vs ones is refused, naming the unknown test cells. The second
is the first with every test patient's uncertain cell written as 1: the split, which stratifies on
"uncertain counts as positive", is the same, the ignore run's test labels are then the ones run's,
and the comparison is paired.
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlbench.contracts.registry
from mlbench.cli import main
from mlbench.contracts.registry import build_registry
from mlbench.data import DataSource, UNKNOWN_COLUMN
from mlbench.data.splits import split_benchmark
from mlbench.foundations import io
from mlbench.judging.compare import CompareError, compare_runs
from mlbench.results.rescoring import load_stored_run

FIXTURE = Path(__file__).resolve().parent / "data" / "plugins" / "chexpert_format"
FINDINGS = ("No Finding", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion",
            "Fracture")
FAST = ["--bootstrap", "20", "--workers", "1", "--quiet", "--epochs", "1", "--no-pretrained"]


def write_corpus(folder: Path, *, n_patients: int = 30, seed: int = 3) -> tuple[Path, pd.DataFrame]:
    """CheXpert-format films (32 px JPEGs under CheXpert-v1.0-small/train/patientNNNNN/...) and train.csv."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for study in range(1 + p % 2):
            image = rng.normal(100, 12, (32, 32))
            cells = {}
            for k, finding in enumerate(FINDINGS):
                value = rng.choice(["1.0", "0.0", "-1.0", ""], p=[0.3, 0.35, 0.15, 0.2])
                cells[finding] = value
                if value in ("1.0", "-1.0"):
                    image[4 * k:4 * k + 4, :] += 60  # a band a CNN can find, uncertain or not
            path = f"CheXpert-v1.0-small/train/patient{p:05d}/study{study + 1}/view1_frontal.jpg"
            ok, jpg = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8))
            assert ok
            io.write_bytes(folder / path, jpg.tobytes())
            rows.append({"Path": path, "Sex": "Female" if p % 2 else "Male", "Age": str(40 + p),
                         "Frontal/Lateral": "Frontal", "AP/PA": "AP", **cells})
    frame = pd.DataFrame(rows)
    csv = folder / "train.csv"
    io.write_text(csv, frame.to_csv(index=False, lineterminator="\n"))
    return csv, frame


def _cli(registry, *args, code: int = 0) -> str:
    mlbench.contracts.registry.use_registry(registry)
    result = CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "200"})
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.output


@pytest.fixture(scope="module")
def chexpert(tmp_path_factory):
    root = tmp_path_factory.mktemp("chexpert-format")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(FIXTURE))
        mp.delenv("MLBENCH_PLUGINS", raising=False)
        mp.chdir(root)
        import mlbench_chexpert_format.plugin

        registry = build_registry(plugins=[mlbench_chexpert_format.plugin])
        mlbench.contracts.registry.use_registry(registry)
        first = root / "first"
        csv1, frame = write_corpus(first)
        # The second corpus: the first with each test patient's uncertain cells written as positive.
        bench = registry.create("benchmark", "chexpert-format")
        records = registry.create("dataset", "chexpert-format", policy="ones").read(DataSource(csv1, first))
        split = split_benchmark(records, bench)
        test_patients = set(split.frame.loc[split.splits == "test", "patient_id"])
        second = root / "second"
        for path in frame["Path"]:
            io.write_bytes(second / path, (first / path).read_bytes())
        in_test = frame["Path"].str.extract(r"(patient\d+)")[0].isin(test_patients)
        changed = frame.copy()
        for finding in FINDINGS:
            changed.loc[in_test & (changed[finding] == "-1.0"), finding] = "1.0"
        csv2 = second / "train.csv"
        io.write_text(csv2, changed.to_csv(index=False, lineterminator="\n"))
        runs = {}
        for name, csv, images, policy in (("first-ignore", csv1, first, "ignore"), ("first-ones", csv1, first, "ones"),
                                          ("second-ignore", csv2, second, "ignore"),
                                          ("second-ones", csv2, second, "ones")):
            _cli(registry, "run", "chexpert-format", "--csv", csv, "--images", images, "--out", root / name,
                 "--dataset-option", f"policy={policy}", *FAST)
            runs[name] = root / name
        yield {"registry": registry, "root": root, "runs": runs, "frame": frame, "test_patients": test_patients,
               "csv1": csv1, "first": first}
        mlbench.contracts.registry.use_registry(None)


@pytest.fixture(autouse=True)
def _registry(chexpert, _fresh_registry):
    mlbench.contracts.registry.use_registry(chexpert["registry"])
    yield
    mlbench.contracts.registry.use_registry(None)


def test_the_plugin_passes_its_conformance_check(chexpert):
    out = _cli(chexpert["registry"], "plugins", "test", "mlbench_chexpert_format.plugin")
    assert "0 failed" in out, out


def test_the_ignore_policy_reads_uncertain_cells_as_unknown(chexpert):
    records = chexpert["registry"].create("dataset", "chexpert-format", policy="ignore").read(
        DataSource(chexpert["csv1"], chexpert["first"]))
    frame = chexpert["frame"].set_index("Path")
    for image_id, findings, unknown in zip(records.frame["image_id"], records.frame["findings"],
                                           records.frame[UNKNOWN_COLUMN]):
        row = frame.loc[image_id]
        assert set(findings) == {f for f in FINDINGS if row[f] == "1.0"}
        assert set(unknown) == {f for f in FINDINGS if row[f] == "-1.0"}
    assert records.frame["patient_id"].str.fullmatch(r"patient\d{5}").all()


def test_an_ignore_run_leaves_its_uncertain_cells_out_of_every_count(chexpert):
    run = chexpert["runs"]["first-ignore"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["dataset"]["options"]["policy"] == "ignore"
    split = pd.read_parquet(run / "split.parquet")
    labels = list(manifest["dataset"]["labels"])
    frame = chexpert["frame"].set_index("Path").loc[split["image_id"]]
    for label in labels:
        # a null cell of split.parquet is exactly an uncertain cell of the label file
        assert split[label].isna().to_numpy().tolist() == (frame[label] == "-1.0").to_numpy().tolist()
    unknown_test = int(split.loc[split["split"] == "test", labels].isna().to_numpy().sum())
    assert unknown_test > 0 and manifest["unknown_cells"]["test"] == unknown_test
    board = pd.read_parquet(run / "leaderboard.parquet")
    test = split[split["split"] == "test"]
    for label in labels:
        positives = int((test[label] == 1).sum())
        rows = board[(board["entry"] == "resnet10t") & (board["label"] == label) & (board["metric"] == "auc")]
        assert int(rows["n_positive"].iloc[0]) == positives
    assert np.isfinite(board.loc[board["metric"] == "auc", "value"].dropna()).all()


def test_every_policy_puts_the_same_patients_in_the_same_subsets(chexpert):
    ignore = pd.read_parquet(chexpert["runs"]["first-ignore"] / "split.parquet")
    ones = pd.read_parquet(chexpert["runs"]["first-ones"] / "split.parquet")
    assert ignore[["image_id", "split"]].equals(ones[["image_id", "split"]])
    hashes = {json.loads((chexpert["runs"][n] / "manifest.json").read_text())["split_hash"]
              for n in ("first-ignore", "first-ones")}
    assert len(hashes) == 2  # the policy shapes the labels, so it enters the split's identity


def test_policies_whose_test_labels_differ_are_refused_saying_exactly_why(chexpert):
    a, b = chexpert["runs"]["first-ones"], chexpert["runs"]["first-ignore"]
    unknown = int((~load_stored_run(b).known).sum())
    with pytest.raises(CompareError) as caught:
        compare_runs(a, b, n_boot=10)
    message = str(caught.value)
    assert "same test images but other test labels" in message
    assert f"0 unknown test label cells in {a}, {unknown} in {b}" in message
    line = _cli(chexpert["registry"], "compare", b, "--against", a, "--n-boot", "10", code=1).strip().splitlines()[-1]
    assert line.startswith("Error:") and "other test labels" in line


def test_policies_whose_test_labels_coincide_compare_paired(chexpert):
    a, b = chexpert["runs"]["second-ones"], chexpert["runs"]["second-ignore"]
    stored = load_stored_run(b)
    assert stored.known is None  # no uncertain cell left in its test split
    assert not json.loads((b / "manifest.json").read_text())["unknown_cells"]["test"]
    assert json.loads((b / "manifest.json").read_text())["unknown_cells"]["train"] > 0  # trained on a mask
    comparison = compare_runs(a, b, n_boot=10)
    assert set(comparison.rows["entry"]) == {"resnet10t", "ctp"}
    assert any("split hashes differ" in note for note in comparison.notes)
    out = _cli(chexpert["registry"], "compare", b, "--against", a, "--n-boot", "10")
    assert "Error" not in out


def test_the_report_of_an_ignore_run_counts_known_cells_and_keeps_every_section(chexpert):
    from mlbench.report.build import build_run

    run = chexpert["runs"]["first-ignore"]
    report = build_run(run)
    assert not [n for n in report.notes if "split.parquet" in n], report.notes  # no section left out for nulls
    split = pd.read_parquet(run / "split.parquet")
    labels = [c for c in split.columns if c not in ("image_id", "patient_id", "split")]
    rows = {r.label: r for r in report.per_label["resnet10t"]}
    for label in labels:
        known = split[label].dropna()
        assert rows[label].prevalence == pytest.approx(known.sum() / len(known))  # over known cells only
        assert rows[label].n_train == int(split.loc[split["split"] == "train", label].sum())
    assert report.imbalance["all"].n_instances == len(split)
    test = split[split["split"] == "test"]
    diagrams = report.reliability["resnet10t"]
    assert diagrams and sum(d.cells for d in diagrams) == int(test[labels].notna().to_numpy().sum())
