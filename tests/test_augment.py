"""Batch augmentation (Table 2): each transform does what Keras' does, seeded, on the batch's device."""

from __future__ import annotations

import math

import pytest
import torch

from mlbench.preprocessing.augment import Augmenter

torch.set_num_threads(1)

NOTHING = dict(rotation=0.0, shear=0.0, zoom=0.0, shift=0.0, hflip=False, brightness=None, channel_shift=0.0)


def only(**kwargs) -> dict:
    return {**NOTHING, **kwargs}


def marker_batch(n: int, h: int, w: int, row: int, col: int, channels: int = 1) -> torch.Tensor:
    batch = torch.zeros(n, channels, h, w)
    batch[:, :, row - 1:row + 2, col - 1:col + 2] = 1.0
    return batch


def centroids(batch: torch.Tensor) -> torch.Tensor:
    """(n, 2) centroid (x, y) of each image's first channel, in pixels."""
    mass = batch[:, 0]
    ys = torch.arange(mass.shape[1], dtype=mass.dtype).view(1, -1, 1)
    xs = torch.arange(mass.shape[2], dtype=mass.dtype).view(1, 1, -1)
    total = mass.sum(dim=(1, 2))
    return torch.stack([(mass * xs).sum(dim=(1, 2)) / total, (mass * ys).sum(dim=(1, 2)) / total], dim=1)


def test_identity_when_every_range_is_zero():
    batch = torch.rand(5, 3, 24, 40)
    out = Augmenter(7, **NOTHING)(batch)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    torch.testing.assert_close(out, batch, atol=1e-5, rtol=0)


def test_horizontal_flip_mirrors_the_marker():
    batch = marker_batch(32, 16, 20, row=5, col=3)
    out = Augmenter(1, **only(hflip=True))(batch)
    mirrored = batch.flip(-1)
    flipped = [bool(torch.allclose(o, m, atol=1e-5)) for o, m in zip(out, mirrored)]
    kept = [bool(torch.allclose(o, b, atol=1e-5)) for o, b in zip(out, batch)]
    assert all(f != k for f, k in zip(flipped, kept)), "each image is either mirrored or untouched"
    assert 4 <= sum(flipped) <= 28  # about half, for this seed
    assert torch.allclose(out[flipped.index(True), 0, 4:7, 15:18], torch.ones(3, 3))  # column 20 - 1 - 3


def test_same_seed_same_output_and_new_draws_each_call():
    batch = torch.rand(6, 1, 32, 32)
    a, b = Augmenter(42), Augmenter(42)
    first_a, first_b = a(batch), b(batch)
    assert torch.equal(first_a, first_b)
    assert not torch.equal(a(batch), first_a), "a second call draws new transforms"
    assert not torch.equal(Augmenter(43)(batch), first_b)
    # and one transform per image: images that were equal come out different
    same = torch.rand(1, 1, 32, 32).expand(6, 1, 32, 32).contiguous()
    out = Augmenter(0)(same)
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_share_one_transform(channels):
    grey = torch.rand(4, 1, 28, 28)
    out = Augmenter(3)(grey.expand(4, channels, 28, 28).contiguous())
    assert out.shape == (4, channels, 28, 28)
    for c in range(1, channels):
        torch.testing.assert_close(out[:, c], out[:, 0])
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_rotation_turns_about_the_centre_within_the_range():
    h = w = 41
    batch = marker_batch(24, h, w, row=20, col=32)  # 12 px right of the centre (20, 20)
    out = Augmenter(5, **only(rotation=45.0))(batch)
    offsets = centroids(out) - torch.tensor([20.0, 20.0])
    radius = offsets.norm(dim=1)
    angles = torch.rad2deg(torch.atan2(offsets[:, 1], offsets[:, 0]))
    assert torch.allclose(radius, torch.full_like(radius, 12.0), atol=0.6)
    assert angles.abs().max() <= 45.5 and angles.abs().max() > 20  # spread over the range


def test_non_square_images_rotate_without_stretching():
    batch = marker_batch(16, 31, 61, row=15, col=40)  # 10 px right of the centre (30, 15)
    out = Augmenter(9, **only(rotation=45.0))(batch)
    radius = (centroids(out) - torch.tensor([30.0, 15.0])).norm(dim=1)
    assert torch.allclose(radius, torch.full_like(radius, 10.0), atol=0.6)


def test_shift_moves_by_at_most_a_tenth_of_the_size():
    batch = marker_batch(24, 40, 60, row=20, col=30)
    moved = centroids(Augmenter(2, **only(shift=0.1))(batch)) - centroids(batch)
    assert moved[:, 0].abs().max() <= 6.0 + 0.5 and moved[:, 1].abs().max() <= 4.0 + 0.5
    assert moved[:, 0].abs().max() > 2.0 and moved[:, 1].abs().max() > 1.0


def test_zoom_scales_distances_from_the_centre():
    batch = marker_batch(24, 41, 41, row=20, col=35)  # 15 px right of the centre
    offsets = centroids(Augmenter(4, **only(zoom=0.1))(batch)) - torch.tensor([20.0, 20.0])
    ratio = offsets[:, 0] / 15.0
    # a sampling scale z in [0.9, 1.1] shows the marker at distance 15 / z
    assert ratio.min() >= 1 / 1.1 - 0.03 and ratio.max() <= 1 / 0.9 + 0.03
    assert ratio.max() - ratio.min() > 0.08


def test_keras_shear_is_in_degrees():
    batch = marker_batch(16, 41, 41, row=5, col=20)  # 15 px above the centre
    tiny = centroids(Augmenter(6, **only(shear=0.1))(batch)) - centroids(batch)
    assert tiny.abs().max() < 0.1  # 0.1 degree moves nothing
    large = centroids(Augmenter(6, **only(shear=20.0))(batch)) - centroids(batch)
    assert large.abs().max() > 2.0


def test_nearest_fill_repeats_the_edge():
    flat = torch.full((8, 1, 20, 20), 0.5)
    out = Augmenter(8, rotation=45.0, shift=0.1, zoom=0.1, shear=0.1, brightness=None, channel_shift=0.0)(flat)
    torch.testing.assert_close(out, flat)  # zero padding would darken the corners


def test_brightness_multiplies_within_the_range():
    batch = torch.rand(16, 1, 12, 12) * 0.8 + 0.1
    out = Augmenter(11, **only(brightness=(0.7, 1.1)))(batch)
    factor = out / batch
    per_image_min, per_image_max = factor.amin(dim=(1, 2, 3)), factor.amax(dim=(1, 2, 3))
    unclipped = out.amax(dim=(1, 2, 3)) < 1.0
    assert torch.allclose(per_image_min[unclipped], per_image_max[unclipped], atol=1e-4)
    assert factor.min() >= 0.7 - 1e-5 and factor.max() <= 1.1 + 1e-5


def test_channel_shift_adds_one_offset_clipped_to_the_image_range():
    batch = torch.rand(16, 3, 12, 12) * 0.6 + 0.2
    out = Augmenter(12, **only(channel_shift=0.05))(batch)
    offset = out - batch
    low, high = batch.amin(dim=(1, 2, 3), keepdim=True), batch.amax(dim=(1, 2, 3), keepdim=True)
    inside = (out > low + 1e-6) & (out < high - 1e-6)
    for i in range(16):
        values = offset[i][inside[i]]
        assert values.max() - values.min() < 1e-5 and values.abs().max() <= 0.05 + 1e-6
    assert out.amin(dim=(1, 2, 3)).ge(batch.amin(dim=(1, 2, 3)) - 1e-6).all()


def test_defaults_are_table_2_and_output_stays_in_unit_range():
    augmenter = Augmenter()
    assert augmenter.config() == {"augmenter": "keras-table2", "seed": 0, "rotation": 45.0, "shear": 0.1,
                                  "zoom": 0.1, "shift": 0.1, "hflip": True, "brightness": [0.7, 1.1],
                                  "channel_shift": 0.05}
    out = augmenter(torch.rand(8, 1, 64, 64))
    assert out.min() >= 0 and out.max() <= 1 and out.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_dtype_is_kept(dtype):
    batch = torch.rand(3, 1, 16, 16).to(dtype)
    assert Augmenter(0)(batch).dtype == dtype


def test_bad_input_and_options_are_refused():
    with pytest.raises(ValueError, match="float tensor"):
        Augmenter()(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="float tensor"):
        Augmenter()(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="rotation"):
        Augmenter(rotation=-1)
    with pytest.raises(ValueError, match="zoom"):
        Augmenter(zoom=1.5)
    with pytest.raises(ValueError, match="brightness"):
        Augmenter(brightness=(1.2, 0.8))
    assert Augmenter()(torch.zeros(0, 1, 8, 8)).shape == (0, 1, 8, 8)


def test_stays_on_the_input_device():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        batch = torch.rand(4, 3, 32, 32, device=device)
        out = Augmenter(0)(batch)
        assert out.device == batch.device
    if torch.cuda.is_available():  # seeded per device: the GPU stream is reproducible too
        batch = torch.rand(4, 1, 32, 32, device="cuda")
        assert torch.equal(Augmenter(5)(batch), Augmenter(5)(batch))


def test_rotation_range_is_in_degrees():
    # a 90-degree range turns a marker by up to 90 degrees, not 90 radians
    batch = marker_batch(32, 41, 41, row=20, col=32)
    offsets = centroids(Augmenter(13, **only(rotation=90.0))(batch)) - torch.tensor([20.0, 20.0])
    angles = torch.atan2(offsets[:, 1], offsets[:, 0]).abs()
    assert angles.max() > math.radians(60) and angles.max() <= math.radians(90.5)


def test_sampling_grid_matches_affine_grid():
    import torch.nn.functional as F

    from mlbench.preprocessing.augment import sampling_grid

    matrix = torch.randn(5, 2, 3)
    expected = F.affine_grid(matrix, [5, 1, 12, 20], align_corners=False)
    torch.testing.assert_close(sampling_grid(matrix, 12, 20), expected, atol=1e-5, rtol=0)
