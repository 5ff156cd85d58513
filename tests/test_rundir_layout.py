"""RunDir owns every file of a run directory (backbone folders, the preprocess manifest); mlbench.demo
owns the demo corpus's sidecars, written in the shape the explainers' box reader expects."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from mlbench.demo import findings_beside, lungs_beside, write_findings, write_lungs
from mlbench.foundations.errors import UserError
from mlbench.explainers.scoring import read_boxes
from mlbench.foundations.io import write_parquet
from mlbench.results.rundir import RunDir, RunDirError


def test_a_backbone_folder_s_files_are_the_ones_rundir_names(tmp_path):
    run = RunDir(tmp_path)
    files = run.backbone("timm:resnet10t")
    assert files.folder == tmp_path / "backbones" / "timm--resnet10t"
    assert (files.best, files.last, files.history, files.done, files.predictions) == (
        run.best_checkpoint("timm:resnet10t"), run.last_checkpoint("timm:resnet10t"),
        run.history_file("timm:resnet10t"), run.backbone_done("timm:resnet10t"),
        run.backbone_predictions("timm:resnet10t"))
    assert len({files.best, files.last, files.history, files.done, files.predictions}) == 5
    files.write_history({"best_epoch": 0, "epochs": 1, "history": []})
    assert run.history_file("timm:resnet10t").is_file() and run.trained_anything()
    assert all(run.owns(p) for p in (files.best, files.last, run.preprocess_manifest_file))


def test_the_preprocess_manifest_is_read_back_and_a_bad_one_refused_in_one_line(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RunDirError) as missing:
        run.preprocess_manifest()
    assert str(run.preprocess_manifest_file) in str(missing.value) and "\n" not in str(missing.value)
    write_parquet(run.preprocess_manifest_file, pa.table({"image_id": ["a"], "x0": [1], "y0": [2], "x1": [3], "y1": [4]}))
    assert run.preprocess_manifest().set_index("image_id").loc["a", ["x0", "y1"]].tolist() == [1, 4]
    run.preprocess_manifest_file.write_bytes(b"not parquet \x00 secret-content")
    with pytest.raises(UserError) as corrupt:
        run.preprocess_manifest()
    message = str(corrupt.value)
    assert str(run.preprocess_manifest_file) in message and "secret-content" not in message and "\n" not in message


def test_the_demo_sidecars_are_written_where_and_as_the_box_reader_expects(tmp_path):
    label_file = tmp_path / "labels.csv"
    assert write_findings(tmp_path, [("img1", "nodule", 1, 2, 30, 40)]) == findings_beside(label_file)
    assert write_lungs(tmp_path, [("img1", "left", 0, 0, 10, 20), ("img1", "right", 12, 0, 22, 20)]) == \
        lungs_beside(label_file)
    findings = read_boxes(findings_beside(label_file))
    lungs = read_boxes(lungs_beside(label_file), key="side")
    assert findings.iloc[0].tolist() == ["img1", "nodule", 1, 2, 30, 40]
    assert lungs["side"].tolist() == ["left", "right"] and lungs["x1"].tolist() == [10, 22]
    assert list(pd.read_csv(findings_beside(label_file), nrows=0).columns) == ["image_id", "label", "x0", "y0", "x1", "y1"]
    write_findings(tmp_path, [])  # a corpus that drew no finding still has the file, with its header
    assert read_boxes(findings_beside(label_file)).empty
