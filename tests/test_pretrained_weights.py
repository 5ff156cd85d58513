"""Pretrained weights are found before any data work, and the manifest says which bytes each backbone
started from: the hub cache, a local file, or one line saying how to get them (never a download in a
test: conftest keeps the hub offline)."""

from __future__ import annotations

import hashlib

import pytest
import safetensors.torch

from cli_checks import assert_one_error, cli
from hub_cache import fill, hub_cache  # noqa: F401 - the fixture
from mlbench.models.weights import WeightsError
from mlbench.training.loop import build_backbone
from mlbench.training.runner import RunOptions, plan_run, pretrained_weights, run
import tiny_bundles

BENCH = "padchest-specific"


def _plan(tmp_path, **more):
    return plan_run(RunOptions(benchmark=BENCH, demo=True, out=tmp_path / "run", device="cpu", **more))


def test_missing_weights_are_one_line_before_any_data_work(tmp_path, hub_cache):
    with pytest.raises(WeightsError) as err:
        _plan(tmp_path, pretrained=True, backbones=("resnet10t",))
    message = str(err.value)
    assert "\n" not in message
    assert "--backbones resnet10t" in message and "timm/resnet10t.c3_in1k" in message
    assert "HF_HUB_OFFLINE" in message and "--no-pretrained" in message and str(hub_cache) in message
    out = tmp_path / "cli-run"
    result = cli("run", BENCH, "--demo", "--pretrained", "--out", str(out))
    assert_one_error(result, "--backbones", "--no-pretrained")
    assert not out.exists()  # nothing written: the demo corpus would land inside it


def test_cached_weights_are_located_hashed_and_loaded(tmp_path, hub_cache):
    path = fill(hub_cache, "resnet10t", seed=3)
    plan = _plan(tmp_path, pretrained=True, backbones=("resnet10t",))
    found = pretrained_weights(plan.registry, plan.recipe)
    record = found["resnet10t"].record()
    assert record == {"source": "hf-hub", "location": "timm/resnet10t.c3_in1k/model.safetensors",
                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    model = build_backbone(plan.registry, "resnet10t", len(plan.benchmark.labels), plan.recipe)
    stored = safetensors.torch.load_file(str(path))
    # The bytes that were hashed are the ones training starts from (a body layer, untouched by the
    # one-channel stem and the new head).
    assert (model.backbone.state_dict()["layer1.0.conv1.weight"] == stored["layer1.0.conv1.weight"]).all()


def test_a_weights_file_is_checked_and_recorded(tmp_path, hub_cache):
    with pytest.raises(WeightsError, match=r"--backbone-option resnet10t.weights=.*nowhere.pt: no such file"):
        _plan(tmp_path, backbones=("resnet10t",), backbone_options={"resnet10t": {"weights": str(tmp_path / "nowhere.pt")}})
    path = fill(hub_cache, "resnet10t")
    plan = _plan(tmp_path, backbones=("resnet10t",), backbone_options={"resnet10t": {"weights": str(path)}})
    record = pretrained_weights(plan.registry, plan.recipe)["resnet10t"].record()
    assert record["source"] == "file" and record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_from_scratch_needs_no_weights_per_backbone_or_for_all(tmp_path, hub_cache):
    plan = _plan(tmp_path, pretrained=True, backbones=("resnet10t",),
                 backbone_options={"resnet10t": {"pretrained": False}})
    assert pretrained_weights(plan.registry, plan.recipe) == {}
    build_backbone(plan.registry, "resnet10t", len(plan.benchmark.labels), plan.recipe)  # builds, nothing fetched
    scratch = _plan(tmp_path, pretrained=False)
    assert pretrained_weights(scratch.registry, scratch.recipe) == {}


def test_the_manifest_records_each_backbones_weights(tmp_path, hub_cache):
    path = fill(hub_cache, "mobilenetv3_small_050")
    manifest = run(tiny_bundles.options(tmp_path, seed=0, pretrained=True)).manifest
    assert manifest["pretrained"] == {"mobilenetv3_small_050": True}
    assert manifest["weights"]["mobilenetv3_small_050"] == {
        "source": "hf-hub", "location": "timm/mobilenetv3_small_050.lamb_in1k/model.safetensors",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
