"""The Grad-CAM explainer: target layers, batched maps, hooks, ensemble maps and heatmap scores."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from mlbench.results import leaderboard
from mlbench.models.backbones import timm_backbone
from mlbench.explainers import ExplainError, Explanation
from mlbench.explainers import scoring
from mlbench.explainers.gradcam import GradCAMExplainer, normalize_maps
from mlbench.explainers.target_layer import feature_stages, find_target_layer



def _bar_model() -> nn.Module:
    """Two hand-set detectors: label 0 fires on vertical bars, label 1 on horizontal bars.

    A kernel adds the pixels on its line and subtracts half of every other pixel, so a flat image
    or a bar of the other direction gives nothing after the ReLU and each bar excites only its own
    channel; global average pooling and an identity head make the logits.
    """
    conv = nn.Conv2d(1, 2, kernel_size=5, padding=2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(-0.5)
        conv.weight[0, 0, :, 2] = 1.0  # vertical line
        conv.weight[1, 0, 2, :] = 1.0  # horizontal line
    head = nn.Linear(2, 2)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
        head.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()


def _bars_image(size: int = 32) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size)
    image[0, 0, 4:12, 7] = 1.0  # vertical bar, top left (x=7, y 4..11)
    image[0, 0, 24, 18:26] = 1.0  # horizontal bar, bottom right (y=24, x 18..25)
    return image


def _hooks(model: nn.Module) -> list[str]:
    kinds = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return [f"{name or 'root'}.{kind}" for name, module in model.named_modules() for kind in kinds
            if getattr(module, kind, None)]


# -- target layers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("densenet201", "backbone.features.norm5"),
    ("efficientnet_b0", "backbone.bn2"),
    ("inception_v3", "backbone.Mixed_7c"),
    ("inception_resnet_v2", "backbone.conv2d_7b"),
    ("legacy_xception", "backbone.act4"),
])
def test_paper_backbones_get_the_paper_layers(name, expected):
    # On the meta device the forward pass that finds the layer computes shapes only: no weights, no maths.
    with torch.device("meta"):
        model = timm_backbone(35, 1, False, model_name=name)
    layer = find_target_layer(model, (1, 224, 224))
    assert layer.name == expected
    assert min(layer.map_size) >= 5


def test_small_inputs_use_the_last_stage_with_a_big_enough_map():
    model = timm_backbone(3, 1, False, model_name="resnet10t")
    assert feature_stages(model)[-1] == "backbone.layer4"
    at_64 = find_target_layer(model, (1, 64, 64))  # layer4 is 2 x 2 and layer3 4 x 4 at 64 px
    assert (at_64.name, at_64.map_size) == ("backbone.layer2", (8, 8))
    assert "feature_info stage" in at_64.rule
    assert find_target_layer(model, (1, 64, 64), min_map_size=2).name == "backbone.layer4"
    assert find_target_layer(model, (1, 128, 128)).name == "backbone.layer3"
    assert find_target_layer(model, (1, 160, 160)).name == "backbone.layer4"


def test_model_without_feature_info_falls_back_to_its_last_feature_map():
    model = _bar_model()
    assert feature_stages(model) == []
    layer = find_target_layer(model, (1, 32, 32))
    assert layer.name == "1" and layer.map_size == (32, 32)  # the ReLU after the conv, not pooling
    explanation = GradCAMExplainer().explain([model], _bars_image(), [0, 1])
    assert explanation.heatmaps.shape == (1, 1, 2, 32, 32)


def test_model_without_any_feature_map_is_a_clear_error():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 3))
    with pytest.raises(ExplainError, match="no layer with a spatial feature map.*target_layer"):
        GradCAMExplainer().explain([mlp], torch.rand(2, 1, 16, 16), [0])


def test_target_layer_overrides():
    model = timm_backbone(3, 1, False, model_name="resnet10t")
    assert find_target_layer(model, (1, 64, 64), override="backbone.layer2").name == "backbone.layer2"
    model.cam_target_layer = "backbone.layer1"
    assert find_target_layer(model, (1, 64, 64)).rule.endswith("cam_target_layer")
    explanation = GradCAMExplainer().explain([model], torch.rand(1, 1, 64, 64), [0])
    assert explanation.target_layers == ("backbone.layer1",)
    with pytest.raises(ExplainError, match="'backbone.layer9' is not a module.*backbone.layer"):
        find_target_layer(model, (1, 64, 64), override="backbone.layer9")


# -- maps ----------------------------------------------------------------------------------------

def test_maps_have_the_documented_shape_range_and_probabilities():
    torch.manual_seed(0)
    models = [timm_backbone(4, 1, False, model_name="resnet10t"),
              timm_backbone(4, 1, False, model_name="mobilenetv3_small_050")]
    images = torch.rand(3, 1, 32, 32)
    explanation = GradCAMExplainer().explain(models, images, [3, 1])
    assert explanation.heatmaps.shape == (2, 3, 2, 32, 32)
    assert explanation.heatmaps.dtype == torch.float32
    assert float(explanation.heatmaps.min()) >= 0.0 and float(explanation.heatmaps.max()) <= 1.0
    peaks = explanation.heatmaps.flatten(-2).amax(-1)
    assert torch.all((peaks == 0) | torch.isclose(peaks, torch.ones(())))  # each map / its own max
    with torch.no_grad():
        expected = torch.stack([torch.sigmoid(m.eval()(images))[:, [3, 1]] for m in models])
    torch.testing.assert_close(explanation.probabilities, expected, atol=1e-5, rtol=1e-4)
    assert explanation.labels == (3, 1)


def test_each_label_points_at_its_own_evidence():
    explanation = GradCAMExplainer().explain([_bar_model()], _bars_image(), [0, 1])
    vertical, horizontal = explanation.heatmaps[0, 0].numpy()
    assert scoring.pointing_hit(vertical, (7, 4, 8, 12), tolerance=1)
    assert not scoring.pointing_hit(vertical, (18, 24, 26, 25), tolerance=1)
    assert scoring.pointing_hit(horizontal, (18, 24, 26, 25), tolerance=1)
    top_left = scoring.box_mask((32, 32), [(0, 0, 16, 16)])
    assert scoring.mass_inside(vertical, top_left) > 0.95
    assert scoring.mass_inside(horizontal, top_left) < 0.05


@pytest.mark.parametrize("method", ["gradcam", "hirescam", "layercam"])
def test_batched_maps_equal_one_library_call_per_image_and_label(method):
    torch.manual_seed(1)
    models = [timm_backbone(5, 1, False, model_name="resnet10t"), _bar_model_5()]
    images = torch.rand(2, 1, 32, 32)
    labels = [4, 0, 2]
    batched = GradCAMExplainer(method, normalize="minmax").explain(models, images, labels)
    per_pair = GradCAMExplainer(method, normalize="minmax", strategy="per-pair").explain(models, images, labels)
    torch.testing.assert_close(batched.heatmaps, per_pair.heatmaps, atol=2e-4, rtol=0)
    torch.testing.assert_close(batched.probabilities, per_pair.probabilities, atol=1e-5, rtol=1e-4)
    # chunking the batch changes nothing either
    chunked = GradCAMExplainer(method, normalize="minmax", batch_size=1).explain(models, images, labels)
    torch.testing.assert_close(batched.heatmaps, chunked.heatmaps, atol=1e-5, rtol=0)


def _bar_model_5() -> nn.Module:
    """The bar detectors with five outputs (mixtures of the two channels)."""
    model = _bar_model()
    head = nn.Linear(2, 5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [0.5, 0.5], [-1.0, 2.0]]))
    model[4] = head
    return model


@pytest.mark.parametrize("strategy", ["batched", "per-pair"])
def test_hooks_are_released_and_modes_restored(strategy):
    model = timm_backbone(3, 1, False, model_name="resnet10t").train()
    explainer = GradCAMExplainer(strategy=strategy)
    explainer.explain([model], torch.rand(2, 1, 32, 32), [0, 2])
    assert _hooks(model) == [] and model.training
    with pytest.raises(ExplainError, match=r"labels \[7\] are outside the model's 3 outputs"):
        explainer.explain([model], torch.rand(2, 1, 32, 32), [7])
    assert _hooks(model) == [] and model.training
    assert all(p.grad is None for p in model.parameters())


def test_bad_images_are_refused_by_shape_and_range():
    model = _bar_model()
    with pytest.raises(ExplainError, match=r"shape \(B, C, H, W\).*\(1, 32, 32\)"):
        GradCAMExplainer().explain([model], torch.rand(1, 32, 32), [0])
    with pytest.raises(ExplainError, match=r"\[0, 1\].*254"):
        GradCAMExplainer().explain([model], torch.rand(1, 1, 32, 32) * 255, [0])
    with pytest.raises(ExplainError, match="at least one label"):
        GradCAMExplainer().explain([model], torch.rand(1, 1, 32, 32), [])


def test_normalisation():
    maps = torch.tensor([[[0.0, 2.0], [1.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[1.0, 2.0], [3.0, 5.0]]])
    by_max = normalize_maps(maps)
    torch.testing.assert_close(by_max[0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]))
    assert torch.equal(by_max[1], torch.zeros(2, 2))
    torch.testing.assert_close(normalize_maps(maps, "minmax")[2], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))


def test_ensemble_maps_average_models_and_can_keep_only_agreeing_ones():
    heat = torch.zeros(3, 1, 1, 2, 2)
    heat[0, 0, 0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    heat[1, 0, 0] = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    heat[2, 0, 0] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    explanation = Explanation(heat, torch.tensor([[[0.9]], [[0.2]], [[0.7]]]), (0,))
    mean, std = explanation.ensemble_maps()
    torch.testing.assert_close(mean[0, 0], torch.tensor([[2 / 3, 1 / 3], [0.0, 1 / 3]]))
    torch.testing.assert_close(std[0, 0, 0, 0], torch.tensor(np.std([1.0, 0.0, 1.0]), dtype=torch.float32))
    agreeing = (explanation.probabilities >= 0.5).float()
    mean, std = explanation.ensemble_maps(agreeing)
    torch.testing.assert_close(mean[0, 0], torch.tensor([[1.0, 0.0], [0.0, 0.5]]))
    torch.testing.assert_close(std[0, 0], torch.tensor([[0.0, 0.0], [0.0, 0.5]]))
    nobody = torch.zeros(3, 1, 1)
    torch.testing.assert_close(explanation.ensemble_maps(nobody)[0], explanation.ensemble_maps()[0])


# -- scoring -------------------------------------------------------------------------------------

def test_boxes_map_from_original_pixels_into_the_cropped_input():
    # crop (100, 50)-(300, 450) of the film, stretched to 64 x 64: x scale 0.32, y scale 0.16
    assert scoring.box_to_input((150, 250, 200, 300), (100, 50, 300, 450), 64) == pytest.approx((16, 32, 32, 40))
    assert scoring.box_to_input((0, 0, 90, 40), (100, 50, 300, 450), 64) is None  # outside the crop
    assert scoring.box_to_input((50, 400, 150, 500), (100, 50, 300, 450), 64) == pytest.approx((0, 56, 16, 64))
    assert scoring.default_tolerance(224) == 15 and scoring.default_tolerance(64) == pytest.approx(4.2857, abs=1e-3)


def test_pointing_game_and_mass():
    heat = np.zeros((8, 8))
    heat[2, 5] = 1.0  # peak at pixel centre (5.5, 2.5)
    heat[6, 1] = 0.5
    assert scoring.peak(heat) == (5.5, 2.5)
    assert scoring.pointing_hit(heat, (5, 2, 6, 3), tolerance=0)
    assert not scoring.pointing_hit(heat, (0, 5, 3, 8), tolerance=0)
    assert scoring.pointing_hit(heat, (0, 5, 3, 8), tolerance=3)  # 2.5 px to the right, 2.5 px up
    assert scoring.mass_inside(heat, scoring.box_mask(heat.shape, [(0, 5, 3, 8)])) == pytest.approx(1 / 3)
    assert scoring.pointing_chance((2, 2, 4, 4), (8, 8), tolerance=0) == pytest.approx(4 / 64)
    assert scoring.pointing_chance((0, 0, 2, 8), (8, 8), tolerance=1) == pytest.approx(3 * 8 / 64)  # clipped
    assert scoring.mass_inside(np.zeros((4, 4)), np.ones((4, 4), bool)) is None
    assert not scoring.pointing_hit(np.zeros((4, 4)), (0, 0, 4, 4), tolerance=1)
    tie = np.zeros((4, 4))
    tie[1, 0] = tie[1, 2] = 1.0
    assert scoring.peak(tie) == (1.5, 1.5)  # the centroid of the tied maxima


def test_box_file_errors_name_the_row(tmp_path):
    path = tmp_path / "findings.csv"
    path.write_text("image_id,label,x0,y0,x1,y1\na.png,nodule,1,2,5,6\nb.png,nodule,9,2,5,6\n")
    with pytest.raises(ValueError, match=r"findings.csv: row 3 has an invalid box"):
        scoring.read_boxes(path)
    path.write_text("image_id,label,x0,y0\n")
    with pytest.raises(ValueError, match=r"missing columns \['x1', 'y1'\]"):
        scoring.read_boxes(path)


def _scores():
    import pandas as pd

    return pd.DataFrame({
        "patient_id": ["p1", "p1", "p2", "p3", "p4"],
        "label": ["nodule", "pacemaker", "nodule", "pacemaker", "pacemaker"],
        "hit": [1.0, 1.0, 0.0, 1.0, 0.0],
        "mass_in_box": [0.5, 0.4, 0.1, None, 0.3],
        "mass_in_lungs": [0.9, 0.8, 0.7, 0.6, 0.5],
    })


def test_summary_is_per_label_plus_pooled_global():
    summary = scoring.summarize(_scores(), ["pacemaker", "nodule", "cardiomegaly"])
    got = {(s["label"], s["metric"]): (s["value"], s["n_positive"]) for s in summary}
    assert got[("nodule", "cam_pointing")] == (0.5, 2)
    assert got[("pacemaker", "cam_pointing")] == (pytest.approx(2 / 3), 3)
    assert got[("__global__", "cam_pointing")] == (0.6, 5)  # pooled over findings, not a mean of labels
    assert got[("pacemaker", "cam_mass_in_box")] == (pytest.approx(0.35), 2)  # a massless map is left out
    assert not any(label == "cardiomegaly" for label, _ in got)
    low, high = next((s["ci_low"], s["ci_high"]) for s in summary if s["label"] == "__global__"
                     and s["metric"] == "cam_pointing")
    assert 0.0 <= low <= 0.6 <= high <= 1.0


def test_rows_fill_the_schema_and_replace_older_cam_rows(tmp_path):
    base = {"benchmark": "padchest-specific", "benchmark_version": "1.0", "variant": "crop+aug",
            "dataset_kind": "synthetic", "split_hash": "abc", "run_id": "run-1", "backbones": "resnet10t",
            "loss": "weighted-bce", "seed": 0, "mlbench_version": "0.1.0", "git_commit": None,
            "plugin_versions": json.dumps({"backbone:resnet10t": "x==1"})}
    auc = {c: None for c in leaderboard.COLUMNS}
    auc.update(base, entry="ctp", entry_kind="ensemble", label="__global__", metric="auc", value=0.8, source="run",
               schema_version=leaderboard.SCHEMA_VERSION)
    path = tmp_path / "leaderboard.parquet"
    leaderboard.write(path, leaderboard.to_table([auc]))
    summary = scoring.summarize(_scores(), ["pacemaker", "nodule"])
    rows = scoring.leaderboard_rows(summary, explainer="gradcam", plugin_version="mlbench-imbalanced==0.1.0",
                                    base=base, device="cpu: test", wall_time_s=1.5)
    assert all(set(r) == set(leaderboard.COLUMNS) for r in rows)
    from mlbench.results.rundir import RunDir

    run = RunDir(tmp_path)
    run.append_leaderboard(leaderboard.to_table(rows), replace=scoring.superseded_by(rows))
    # a second explain replaces, never duplicates
    run.append_leaderboard(leaderboard.to_table(rows), replace=scoring.superseded_by(rows))
    table = leaderboard.validate_table(leaderboard.read(path)).to_pandas()
    cam = table[table["metric"].str.startswith("cam_")]
    assert len(cam) == len(rows) and len(table) == len(rows) + 1
    assert set(cam["entry"]) == {"gradcam"} and set(cam["entry_kind"]) == {"explainer"}
    assert json.loads(cam["plugin_versions"].iloc[0])["explainer:gradcam"] == "mlbench-imbalanced==0.1.0"
    assert cam["run_id"].eq("run-1").all() and cam["split_hash"].eq("abc").all()


# -- plugin and import cost ------------------------------------------------------------------------

def test_gradcam_is_registered_and_mlbench_stays_light():
    code = (
        "import sys\n"
        "from mlbench.cli import main\n"
        "main(['plugins', '--json'], standalone_mode=False)\n"
        "from mlbench.contracts.registry import get_registry\n"
        "explainer = get_registry().create('explainer', 'gradcam')\n"
        "heavy = [m for m in ('pytorch_grad_cam', 'matplotlib', 'ttach') if m in sys.modules]\n"
        "print('HEAVY', heavy, type(explainer).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY [] GradCAMExplainer" in out.stdout
    assert '"kind": "explainer"' in out.stdout and '"name": "gradcam"' in out.stdout
