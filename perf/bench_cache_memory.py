"""Resident memory of N training processes reading one preprocessing cache: copied vs memory-mapped.

    python perf/bench_cache_memory.py                              # 85,000 x 224 px (4.3 GB) in a temp folder
    python perf/bench_cache_memory.py --images 20000 --size 128    # a smaller cache
    python perf/bench_cache_memory.py --dir /scratch/memcache      # build it there once, reuse it later

Issue 24 (part 3): at padchest-specific's full size every DDP rank or ``grid --parallel`` worker held
its own copy of the cache's images. The script writes a synthetic cache in the cache's real layout
(:func:`~mlbench.preprocessing.cache.cache_folder` and
:func:`~mlbench.preprocessing.cache.write_shard`, ``--shard-size`` images per shard, ids in sorted
order as :func:`~mlbench.preprocessing.cache.build_cache` lays them out), a random 70% of the ids as
the training split, so that the split is scattered over the shards as a patient-grouped split is.
The shards are read once to put them in the OS page cache. Then, for 1, 2 and 4 processes at once,
each process opens the cache as a training process does and gathers random batches (``--batch``
64) from the training split for ``--seconds`` (20):

copy
    the old path: ``torch.from_numpy(cache.load(ids))``, the split copied into the process's memory,
    then ``images[idx]`` on that tensor.
shared
    what ``mlbench run`` does now: ``cache.images(ids)``, the memory-mapped shards read in place.

When every process has finished its loop (they are still alive), the script reads each one's
``/proc/PID/smaps_rollup``: RSS counts every page a process maps, shared or not; PSS divides each
shared page among the processes mapping it, so the PSS total is the machine's real cost. ``base``
is a process's PSS after its imports and ``Cache.open``, before it reads an image (the interpreter,
torch, the index). Copy-mode process counts that would not fit in the available memory are skipped
and say so. A temporary cache is deleted at the end; one in ``--dir`` is kept for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import describe_machine

CONFIG = {"preprocessor": "bench-cache-memory synthetic", "size": None}
TRAIN_FRACTION = 0.7
MODES = ("copy", "shared")


def image_ids(n: int) -> list[str]:
    return [f"synthetic{i:06d}" for i in range(n)]


def training_ids(n: int, seed: int) -> list[str]:
    ids = image_ids(n)
    chosen = np.random.default_rng(seed).permutation(n)[: int(n * TRAIN_FRACTION)]
    return [ids[i] for i in chosen]


def synthetic_cache(directory: Path, n: int, size: int, shard_size: int, seed: int) -> tuple[Path, float]:
    """The cache's folder with ``n`` random images in shards, built unless already there; seconds spent."""
    from mlbench.preprocessing.cache import Cache, cache_folder, shard_folder, write_shard

    root = cache_folder(directory, {**CONFIG, "size": size, "images": n, "shard_size": shard_size})
    have = Cache.open(root).index
    if len(have) == n:
        return root, 0.0
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    ids, done = image_ids(n), set(have["image_id"])
    for start in range(0, n, shard_size):
        chunk = ids[start:start + shard_size]
        if chunk[0] in done:  # a shard a killed earlier build finished
            continue
        rows = [{"image_id": image_id, "row": row, "status": "ok", "source_size": 0, "source_mtime_ns": 0,
                 "built_ns": time.time_ns()} for row, image_id in enumerate(chunk)]
        write_shard(shard_folder(root), rows, rng.integers(0, 256, size=(len(chunk), size, size), dtype=np.uint8))
    return root, time.perf_counter() - started


def read_through(folder: Path) -> int:
    """Read every file once (into the OS page cache); bytes read."""
    total = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                while chunk := f.read(1 << 24):
                    total += len(chunk)
    return total


def smaps(pid: int | str = "self") -> dict[str, int]:
    """The process's memory totals from /proc/PID/smaps_rollup, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value, *_ = line.split()
        out[key.rstrip(":")] = int(value) * 1024
    return out


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def worker(root: Path, mode: str, n: int, seed: int, batch: int, seconds: float) -> None:
    """One training-like process: open the cache, gather random batches, report, wait to be measured."""
    import torch

    from mlbench.preprocessing.cache import Cache

    torch.set_num_threads(1)
    cache = Cache.open(root)
    ids = training_ids(n, seed)
    base = smaps()
    started = time.perf_counter()
    images = torch.from_numpy(cache.load(ids)) if mode == "copy" else cache.images(ids)
    open_s = time.perf_counter() - started
    generator = torch.Generator().manual_seed(seed)
    batches, checksum = 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        x = images[torch.randint(0, len(images), (batch,), generator=generator)]
        checksum += int(x[0, 0, 0])  # the batch is used, so nothing can skip the gather
        batches += 1
    loop_s = time.perf_counter() - started
    print(json.dumps({"open_s": open_s, "batches": batches, "loop_s": loop_s, "base_pss": base["Pss"],
                      "checksum": checksum}), flush=True)
    sys.stdin.readline()  # the parent reads our smaps_rollup, then lets us go


def run_processes(root: Path, mode: str, count: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", mode, "--root", str(root), "--images", str(args.images),
               "--seed", str(args.seed), "--batch", str(args.batch), "--seconds", str(args.seconds)]
    procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(count)]
    try:
        reports = []
        for proc in procs:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"a {mode} worker died (exit {proc.wait()})")
            reports.append(json.loads(line))
        memory = [smaps(proc.pid) for proc in procs]  # every worker alive and done with its loop
    finally:
        for proc in procs:
            if proc.stdin:
                proc.stdin.close()
            proc.wait()
    return {"reports": reports, "memory": memory}


def gib(n: float) -> str:
    return f"{n / 2**30:6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Memory of N processes reading one cache: copied vs memory-mapped.")
    parser.add_argument("--dir", type=Path, help="build (or reuse) the synthetic cache here and keep it "
                                                 "[default: a temporary folder, deleted at the end]")
    parser.add_argument("--images", type=int, default=85_000, help="images in the cache [85,000: padchest-specific]")
    parser.add_argument("--size", type=int, default=224, help="image size in pixels [224: the paper's]")
    parser.add_argument("--shard-size", type=int, default=512, help="images per shard [512: build_cache's largest]")
    parser.add_argument("--processes", default="1,2,4", help="process counts, comma-separated")
    parser.add_argument("--modes", default="copy,shared", help="copy (the old Cache.load per process), shared, or both")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0, help="each process's gather loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.root, args.worker, args.images, args.seed, args.batch, args.seconds)
        return
    for value, option in ((args.images, "--images"), (args.size, "--size"), (args.shard_size, "--shard-size"),
                          (args.batch, "--batch")):
        if value < 1:
            parser.error(f"{option} must be >= 1, got {value}")
    try:
        counts = [int(c) for c in args.processes.split(",")]
    except ValueError:
        parser.error(f"--processes {args.processes!r}: expected comma-separated integers such as 1,2,4")
    modes = [m.strip() for m in args.modes.split(",")]
    if any(m not in MODES for m in modes) or any(c < 1 for c in counts):
        parser.error(f"--modes takes {', '.join(MODES)}; --processes counts >= 1")

    print(f"machine: {describe_machine()}")
    image_bytes = args.size * args.size
    n_train = int(args.images * TRAIN_FRACTION)
    split_bytes = n_train * image_bytes
    scratch = None if args.dir else tempfile.mkdtemp(prefix="mlbench-cache-memory-")
    try:
        from mlbench.foundations.errors import UserError

        try:
            root, build_s = synthetic_cache(args.dir or Path(scratch), args.images, args.size, args.shard_size,
                                            args.seed)
        except UserError as exc:
            raise SystemExit(str(exc)) from None
        built = f"written in {build_s:.0f} s" if build_s else "reused"
        print(f"cache: {args.images:,} synthetic images of {args.size} x {args.size} uint8 "
              f"({gib(args.images * image_bytes).strip()} GiB) in shards of {args.shard_size}, {built}: {root}")
        started = time.perf_counter()
        read = read_through(root)
        print(f"read once into the page cache: {gib(read).strip()} GiB in {time.perf_counter() - started:.1f} s")
        print(f"each process: the training split, {n_train:,} images ({gib(split_bytes).strip()} GiB), "
              f"random batches of {args.batch} for {args.seconds:g} s, 1 torch thread")
        header = (f"{'mode':6s} {'procs':>5s} {'RSS/proc GiB':>12s} {'PSS/proc GiB':>12s} {'base PSS':>8s} "
                  f"{'PSS total GiB':>13s} {'of it images':>12s} {'RSS total GiB':>13s} {'open s':>6s} "
                  f"{'us/batch':>8s}")
        print(header)
        print("-" * len(header))
        for mode in modes:
            for count in counts:
                needed = count * split_bytes * 1.1 + 2**30 if mode == "copy" else 2**30
                if needed > mem_available():
                    print(f"{mode:6s} {count:5d}  skipped: needs ~{gib(needed).strip()} GiB, "
                          f"{gib(mem_available()).strip()} GiB available")
                    continue
                result = run_processes(root, mode, count, args)
                rss = [m["Rss"] for m in result["memory"]]
                pss = [m["Pss"] for m in result["memory"]]
                reports = result["reports"]
                bases = [r["base_pss"] for r in reports]
                base = np.mean(bases)
                us = np.mean([r["loop_s"] / r["batches"] * 1e6 for r in reports])
                open_s = np.mean([r["open_s"] for r in reports])
                print(f"{mode:6s} {count:5d} {gib(np.mean(rss)):>12s} {gib(np.mean(pss)):>12s} {gib(base):>8s} "
                      f"{gib(sum(pss)):>13s} {gib(sum(pss) - sum(bases)):>12s} {gib(sum(rss)):>13s} {open_s:6.1f} "
                      f"{us:8.0f}")
        print("PSS splits each shared page among the processes mapping it: the PSS total is what the machine pays; "
              "'of it images': the total less the processes' base. us/batch: one gather of a random batch "
              "(more processes than cores take turns).")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
