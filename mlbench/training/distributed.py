"""Data-parallel training under ``torchrun`` (DistributedDataParallel), and the single-process default.

``torchrun --nproc_per_node N -m mlbench run ...`` starts N processes with RANK/WORLD_SIZE set.
Every rank prepares the same split in memory; rank 0 alone writes files. Backend: NCCL on GPUs,
gloo on CPU (so the path is tested in CI with two CPU processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum of ``values`` over ranks."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()


SINGLE = Group()


def from_environment(device_name: str) -> tuple[Group, str]:
    """Join the process group torchrun describes (if any); return it and the device this rank uses."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE, device_name
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available() or device_name.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return Group(rank, world, local_rank), f"cuda:{local_rank}"
    return Group(rank, world, local_rank), "cpu"


def shutdown(group: Group) -> None:
    if group.active and dist.is_initialized():
        dist.destroy_process_group()
