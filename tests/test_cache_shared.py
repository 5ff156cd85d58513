"""Training reads the cache in place: memory-mapped shards, one copy per machine, hostile shards refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mlbench.contracts.benchmark import Recipe
from mlbench.preprocessing.cache import Cache, CacheFileError, build_cache, prepare_image, shard_folder
from mlbench.preprocessing.resize import Resize
from mlbench.training.loop import train

SIZE = 8


def write_films(folder, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` small 16-bit films of random content (each different), as (image_id, image_path)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        path = folder / f"film{i:03d}.png"
        assert cv2.imwrite(str(path), rng.integers(0, 65535, size=(20, 24), dtype=np.uint16))
        rows.append((path.name, str(path)))
    return pd.DataFrame(rows, columns=["image_id", "image_path"])


@pytest.fixture()
def built(tmp_path):
    """A cache of 40 films in several shards of unequal size (a first build of 24, then a resume)."""
    items = write_films(tmp_path, 40)
    build_cache(items.iloc[:24], Resize(SIZE), SIZE, tmp_path / "cache", workers=1, shard_size=16)
    cache = build_cache(items, Resize(SIZE), SIZE, tmp_path / "cache", workers=1, shard_size=16)
    assert len(list(shard_folder(cache.root).glob("*.npy"))) >= 3
    return cache, items


def shard_of(cache: Cache, image_id: str):
    return shard_folder(cache.root) / f"{cache.index.loc[image_id, 'shard']}.npy"


def test_shared_images_are_the_copied_images_in_any_order(built):
    cache, items = built
    rng = np.random.default_rng(1)
    ids = list(rng.permutation(items["image_id"].to_numpy()))
    shared, copied = cache.images(ids), torch.from_numpy(cache.load(ids))
    assert len(shared) == 40 and shared.shape == tuple(copied.shape) and shared.dtype == copied.dtype == torch.uint8
    # Against the preprocessing itself, so that both readers cannot agree on something wrong.
    by_path = dict(zip(items["image_id"], items["image_path"]))
    expected = np.stack([prepare_image(by_path[i], Resize(SIZE), SIZE) for i in ids])
    assert np.array_equal(copied.numpy(), expected)
    order = torch.from_numpy(rng.permutation(40))
    for idx in (order, order[:7], order[3:19][1::2], torch.tensor([5, 5, 0, 39, 5]), torch.tensor([], dtype=torch.long),
                np.array([39, 0, 12]), slice(0, 13), slice(30, None)):
        got = shared[idx]
        assert got.dtype == torch.uint8 and torch.equal(got, copied[idx])
    assert torch.equal(shared[7], copied[7]) and torch.equal(shared[-1], copied[-1])
    with pytest.raises(IndexError):
        shared[torch.tensor([40])]
    with pytest.raises(IndexError):
        shared[torch.tensor([0.5])]


def test_shared_images_hold_no_copy_and_batches_are_fresh(built):
    cache, items = built
    ids = items["image_id"].tolist()[::-1]
    shared = cache.images(ids)
    shard_files = {shard_of(cache, i) for i in ids}
    assert len(shared.shards) == len(shard_files)
    for array in shared.shards:
        assert isinstance(array.base, np.memmap) and not array.flags.writeable  # a read-only map of the file
    assert {Path(a.base.filename) for a in shared.shards} == shard_files
    batch = shared[torch.arange(4)]
    before = batch.clone()
    batch += 1  # a batch is the caller's to change; the cache is not touched
    assert torch.equal(shared[torch.arange(4)], before)
    # Splits opened from one cache object map each shard once.
    again = cache.images(ids[:5])
    assert all(any(a.base is b.base for b in shared.shards) for a in again.shards)


def refusal(cache: Cache, ids) -> str:
    fresh = Cache.open(cache.root)
    with pytest.raises(CacheFileError) as caught:
        fresh.images(ids)
    with pytest.raises(CacheFileError):
        fresh.load(ids)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_truncated_shard_is_refused_naming_the_file(built):
    cache, items = built
    path = shard_of(cache, "film030.png")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - SIZE * SIZE - 1])
    assert refusal(cache, ["film030.png"]).startswith(f"{path}: not a readable image shard")
    path.write_bytes(data[:40])  # the header itself cut short
    assert str(path) in refusal(cache, ["film030.png"])
    path.write_bytes(b"")
    assert str(path) in refusal(cache, ["film030.png"])
    path.unlink()
    assert str(path) in refusal(cache, ["film030.png"])


@pytest.mark.parametrize("replacement", [np.zeros((16, SIZE + 1, SIZE), np.uint8),
                                         np.zeros((16, SIZE, SIZE), np.float32),
                                         np.zeros((16, SIZE * SIZE), np.uint8),
                                         np.asfortranarray(np.zeros((16, SIZE, SIZE), np.uint8))])
def test_a_shard_of_the_wrong_shape_dtype_or_order_is_refused(built, replacement):
    cache, _ = built
    path = shard_of(cache, "film001.png")
    with open(path, "wb") as f:
        np.save(f, replacement)
    message = refusal(cache, ["film001.png", "film002.png"])
    assert message.startswith(f"{path}: ") and f"(n, {SIZE}, {SIZE})" in message


def test_a_shard_shorter_than_its_parquet_or_holding_objects_is_refused(built):
    cache, _ = built
    path = shard_of(cache, "film030.png")
    row = int(cache.index.loc["film030.png", "row"])
    with open(path, "wb") as f:
        np.save(f, np.zeros((row, SIZE, SIZE), np.uint8))
    assert refusal(cache, ["film030.png"]).startswith(f"{path}: holds {row} images, its parquet names row")
    with open(path, "wb") as f:
        np.save(f, np.array([{"not": "pixels"}], dtype=object), allow_pickle=True)
    assert str(path) in refusal(cache, ["film030.png"])
    path.write_bytes(pickle.dumps(np.zeros((1, SIZE, SIZE), np.uint8)))
    assert str(path) in refusal(cache, ["film030.png"])


def test_a_broken_config_is_one_line_naming_it(built):
    cache, _ = built
    config = cache.root / "config.json"
    for text in ("{not json", json.dumps({"size": "8"}), json.dumps([8]), json.dumps({"size": 0})):
        config.write_text(text)
        with pytest.raises(CacheFileError, match="config.json") as caught:
            Cache.open(cache.root)
        assert str(config) in str(caught.value) and "\n" not in str(caught.value)


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def test_training_from_the_shared_images_matches_training_from_a_copy(built, tmp_path):
    cache, items = built
    ids = items["image_id"].tolist()
    train_ids, val_ids = ids[:28], ids[28:]
    rng = np.random.default_rng(2)
    targets = torch.from_numpy((rng.uniform(size=(40, 2)) < 0.4).astype(np.float32))
    recipe = Recipe(backbones=("tiny",), max_epochs=2, batch_size=8, lr=1e-2, seed=3)
    results = []
    for name, read in (("copied", lambda i: torch.from_numpy(cache.load(i))), ("shared", cache.images)):
        model = tiny_net()
        state = train(model, nn.BCEWithLogitsLoss(), recipe, train_images=read(train_ids), train_targets=targets[:28],
                      val_images=read(val_ids), val_targets=targets[28:], checkpoint_dir=tmp_path / name,
                      device=torch.device("cpu"))
        results.append((state.history, model.state_dict()))
    (history_a, weights_a), (history_b, weights_b) = results
    assert len(history_a) == 2
    assert [h["val_loss"] for h in history_a] == [h["val_loss"] for h in history_b]
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
