"""What machine a benchmark figure came from: CPU model, cores, memory, load, torch, GPU.

Shared by the speed scripts in this folder (``throughput.py``, ``bench_cache_epoch.py``,
``bench_demo_stages.py``); a figure printed without this line cannot be compared with anything.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20  # kB -> GiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info() -> dict[str, Any]:
    """The machine as a dict: cpu, cores, ram_gib, load_1min, python, torch, torch_threads, cuda_device."""
    import torch

    cuda = None
    if torch.cuda.is_available():
        cuda = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, {torch.cuda.device_count()} visible)"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        # A 1-minute load above the core count means other processes shared the cores while we timed.
        "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_device": cuda,
    }


def describe_machine() -> str:
    """One line naming the machine, for the top of every benchmark printout."""
    info = machine_info()
    ram = f", {info['ram_gib']:.0f} GiB RAM" if info["ram_gib"] else ""
    load = f", load average {info['load_1min']:.1f}" if info["load_1min"] is not None else ""
    gpu = f", GPU {info['cuda_device']}" if info["cuda_device"] else ", no GPU"
    return (f"{info['cpu']}, {info['cores']} logical cores{ram}{load}; Python {info['python']}, "
            f"torch {info['torch']} ({info['torch_threads']} CPU threads){gpu}")


if __name__ == "__main__":
    print(describe_machine())
