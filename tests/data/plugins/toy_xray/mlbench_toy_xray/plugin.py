"""Registers the ``toy-xray`` dataset and benchmark with mlbench.

Factories import their modules lazily, so that ``mlbench plugins`` stays fast.
"""

from mlbench import hookimpl


def _dataset(**options):
    from mlbench_toy_xray.dataset import ToyXrayDataset

    return ToyXrayDataset(**options)


def _benchmark():
    from mlbench_toy_xray.benchmark import toy_xray

    return toy_xray()


@hookimpl
def register_datasets(register):
    register("toy-xray", _dataset, summary="Toy X-ray label file (film, subject, codes) + PNGs, and its demo")


@hookimpl
def register_benchmarks(register):
    register("toy-xray", _benchmark, summary="3 labels, one tiny backbone; a made-up published board (test fixture)")
