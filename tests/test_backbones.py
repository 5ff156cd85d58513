"""timm backbones with the paper's head: shapes, freezing, offline weights."""

import timm
import torch
from torch import nn

from mlbench.models.backbones import TimmClassifier, freeze_first_convs, timm_backbone


def test_head_and_output_shape():
    model = timm_backbone(35, 1, False, model_name="resnet10t")
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    dropouts = [m for m in model.head if isinstance(m, nn.Dropout)]
    assert [l.out_features for l in linears] == [512, 512, 35]
    assert all(d.p == 0.2 for d in dropouts) and len(dropouts) == 2
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 35)


def test_first_ten_percent_of_convs_frozen():
    model = timm_backbone(3, 1, False, model_name="mobilenetv3_small_050")
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    frozen = [all(not p.requires_grad for p in c.parameters()) for c in convs]
    n = round(len(convs) * 0.1)
    assert model.frozen_convs == n > 0
    assert all(frozen[:n]) and not any(frozen[n:])


def test_freeze_fraction_is_validated():
    import pytest

    with pytest.raises(ValueError, match="freeze_fraction"):
        freeze_first_convs(nn.Conv2d(1, 1, 1), 1.5)


def test_local_weights_file_loads_offline(tmp_path):
    """timm's local-file loading: backbone weights come from the file, the head stays ours."""
    source = timm.create_model("resnet10t", pretrained=False, num_classes=1000)
    path = tmp_path / "resnet10t.pth"
    torch.save(source.state_dict(), path)
    model = TimmClassifier("resnet10t", 4, in_chans=3, weights=path, freeze_fraction=0.0)
    torch.testing.assert_close(model.backbone.conv1[0].weight, source.conv1[0].weight)
    one_channel = TimmClassifier("resnet10t", 4, in_chans=1, weights=path, freeze_fraction=0.0)
    # timm sums the RGB stem for one input channel
    torch.testing.assert_close(one_channel.backbone.conv1[0].weight, source.conv1[0].weight.sum(1, keepdim=True))


def test_slim_resnets_are_narrower_and_have_no_pretrained_weights():
    import pytest

    from mlbench.contracts.registry import PluginError, get_registry
    from mlbench.plugins.backbones import SLIM_BACKBONES

    registry = get_registry()
    for name, (model_name, channels) in SLIM_BACKBONES.items():
        slim = registry.create("backbone", name, num_labels=5, in_chans=1, pretrained=False)
        full = timm.create_model(model_name, pretrained=False, in_chans=1, num_classes=0)
        assert slim.backbone.num_features < full.num_features  # narrower stages
        assert [s[0].conv1.in_channels for s in (slim.backbone.layer2, slim.backbone.layer3)] != [
            s[0].conv1.in_channels for s in (full.layer2, full.layer3)]
        assert slim.backbone.conv1[0].out_channels < full.conv1[0].out_channels  # the narrower stem
        assert slim(torch.rand(2, 1, 64, 64)).shape == (2, 5)
        with pytest.raises(PluginError, match="no pretrained weights"):
            registry.create("backbone", name, num_labels=5, in_chans=1, pretrained=True)
