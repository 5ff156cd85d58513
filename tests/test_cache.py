"""The preprocessing cache: keyed by config, resumable, skips listed, reads in order."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pandas as pd
import pytest

from mlbench.preprocessing.cache import Cache, build_cache, cache_key
from mlbench.preprocessing.resize import Resize


def _images(root, n, size=40):
    rows = []
    for i in range(n):
        img = np.full((size, size), 1000 * (i + 1), dtype=np.uint16)
        img[: size // 2] = 60000
        path = root / f"img{i:03d}.png"
        cv2.imwrite(str(path), img)
        rows.append((f"img{i:03d}.png", str(path)))
    return pd.DataFrame(rows, columns=["image_id", "image_path"])


def test_config_changes_the_key():
    assert cache_key(Resize(32).config()) != cache_key(Resize(64).config())
    assert cache_key(Resize(32).config()) == cache_key(Resize(32).config())


def test_build_load_and_skip(tmp_path):
    items = _images(tmp_path, 6)
    broken = tmp_path / "broken.png"
    broken.write_bytes(cv2.imencode(".png", np.zeros((40, 40), np.uint16))[1].tobytes()[:30])  # truncated
    items.loc[len(items)] = ["broken.png", str(broken)]
    items.loc[len(items)] = ["gone.png", str(tmp_path / "gone.png")]
    cache = build_cache(items, Resize(16), 16, tmp_path / "cache", workers=1)
    ids = ["img003.png", "img000.png"]
    arrays = cache.load(ids)
    assert arrays.shape == (2, 16, 16) and arrays.dtype == np.uint8
    assert arrays[0, 0, 0] == 255 and arrays[0, -1, -1] == 0  # bright top half, dark bottom after windowing
    skipped = {s.item: s.reason for s in cache.skipped(items["image_id"])}
    assert skipped == {"broken.png": "truncated", "gone.png": "missing_file"}
    with pytest.raises(KeyError, match="broken.png"):
        cache.load(["broken.png"])
    summary = cache.write_manifest(items["image_id"].tolist(), tmp_path / "out")
    assert summary["ok"] == 6 and summary["skipped"] == 2
    crops = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert list(crops.loc[crops["status"] == "ok", ["x0", "y0", "x1", "y1"]].iloc[0]) == [0, 0, 40, 40]


def test_resume_processes_only_missing_images(tmp_path):
    items = _images(tmp_path, 10)
    first = build_cache(items.iloc[:4], Resize(16), 16, tmp_path / "cache", workers=1)
    shard_files = {p: p.stat().st_mtime_ns for p in (first.root / "shards").iterdir()}
    calls = []

    class Counting(Resize):
        def __call__(self, image):
            calls.append(1)
            return super().__call__(image)

    cache = build_cache(items, Counting(16), 16, tmp_path / "cache", workers=1)
    assert len(calls) == 6
    assert all(p.stat().st_mtime_ns == t for p, t in shard_files.items())  # finished shards untouched
    np.testing.assert_array_equal(cache.load(items["image_id"].iloc[:4]), first.load(items["image_id"].iloc[:4]))


class _Slow(Resize):
    def __call__(self, image):
        time.sleep(0.05)
        return super().__call__(image)


def test_killed_build_resumes(tmp_path):
    items = _images(tmp_path, 60)
    items.to_csv(tmp_path / "items.csv", index=False)
    script = textwrap.dedent(f"""
        import sys, time, pandas as pd
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_cache import _Slow
        from mlbench.preprocessing.cache import build_cache
        build_cache(pd.read_csv({str(tmp_path / 'items.csv')!r}), _Slow(16), 16, {str(tmp_path / 'cache')!r},
                    workers=1, shard_size=16)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    shards = lambda: list((tmp_path / "cache").glob("*/shards/*.parquet"))  # noqa: E731
    while not shards() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = shards()
    assert 0 < len(done_before) < 4, "kill the build between shards"
    kept = {p: p.stat().st_mtime_ns for p in done_before}
    cache = build_cache(items, Resize(16), 16, tmp_path / "cache", workers=1, shard_size=16)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())
    assert len(cache.load(items["image_id"])) == 60
    for parquet in shards():  # a shard that counts as done always has its array
        assert parquet.with_suffix(".npy").exists()


class _Counting(Resize):
    """Resize that records which images it was called on (by their top-left pixel)."""

    def __init__(self, size, calls):
        super().__init__(size)
        self.calls = calls

    def __call__(self, image):
        self.calls.append(float(image[0, 0]))
        return super().__call__(image)


def _write_film(path, value, size=40):
    image = np.full((size, size), value, dtype=np.uint16)
    image[: size // 2] = 60000
    assert cv2.imwrite(str(path), image)


def test_a_repaired_image_is_processed_again(tmp_path):
    items = _images(tmp_path, 3)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    items.loc[len(items)] = ["empty.png", str(empty)]
    items.loc[len(items)] = ["late.png", str(tmp_path / "late.png")]
    first = build_cache(items, Resize(16), 16, tmp_path / "cache", workers=1)
    assert {s.item: s.reason for s in first.skipped(items["image_id"])} == {"empty.png": "empty_image",
                                                                            "late.png": "missing_file"}
    _write_film(empty, 30000)  # repaired
    _write_film(tmp_path / "late.png", 20000)  # arrived
    calls = []
    cache = build_cache(items, _Counting(16, calls), 16, tmp_path / "cache", workers=1)
    assert len(calls) == 2  # only the two whose files changed
    assert cache.skipped(items["image_id"]) == []
    assert cache.load(["empty.png", "late.png"]).shape == (2, 16, 16)


def test_a_changed_image_is_processed_again_and_its_new_pixels_win(tmp_path):
    items = _images(tmp_path, 3)
    path = tmp_path / "img001.png"
    before = build_cache(items, Resize(16), 16, tmp_path / "cache", workers=1).load(["img001.png"])
    flipped = np.full((48, 48), 60000, dtype=np.uint16)
    flipped[:24] = 5000
    assert cv2.imwrite(str(path), flipped)  # another film under the same id: dark top, another size on disk
    calls = []
    after = build_cache(items, _Counting(16, calls), 16, tmp_path / "cache", workers=1)
    assert calls == [pytest.approx(5000 / 65535)]
    assert not np.array_equal(after.load(["img001.png"]), before)
    np.testing.assert_array_equal(after.load(["img001.png"]), Cache.open(after.root).load(["img001.png"]))
    # same size, newer modification time (an editor saving in place): processed again too
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    calls.clear()
    build_cache(items, _Counting(16, calls), 16, tmp_path / "cache", workers=1)
    assert len(calls) == 1


def test_unchanged_images_and_skips_are_reused_without_preprocessing(tmp_path):
    items = _images(tmp_path, 5)
    (tmp_path / "empty.png").write_bytes(b"")
    items.loc[len(items)] = ["empty.png", str(tmp_path / "empty.png")]
    items.loc[len(items)] = ["gone.png", str(tmp_path / "gone.png")]
    first = build_cache(items, Resize(16), 16, tmp_path / "cache", workers=1)
    calls = []
    again = build_cache(items, _Counting(16, calls), 16, tmp_path / "cache", workers=1)
    assert calls == []
    assert {s.item for s in again.skipped(items["image_id"])} == {"empty.png", "gone.png"}
    ids = items["image_id"].iloc[:5]
    np.testing.assert_array_equal(again.load(ids), first.load(ids))
