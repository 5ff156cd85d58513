"""Registers the PadChest dataset, preprocessors and benchmarks with mlbench.

Factories import their modules lazily so that ``mlbench plugins`` stays fast.
"""

from mlbench import hookimpl


def _dataset(**options):
    from mlbench_padchest.dataset import PadChestDataset

    return PadChestDataset(**options)


def _lung_crop(size: int = 224, **options):
    from mlbench_padchest.lungcrop import LungCrop

    return LungCrop(size=size, **options)


def _specific():
    from mlbench_padchest.benchmarks import specific

    return specific()


def _general():
    from mlbench_padchest.benchmarks import general

    return general()


@hookimpl
def register_datasets(register):
    register("padchest", _dataset, summary="PadChest CSV + 16-bit PNG folders (and its synthetic demo)")


@hookimpl
def register_preprocessors(register):
    register("padchest-lung-crop", _lung_crop, summary="Lung-field crop (weight-free segmentation) + resize")


@hookimpl
def register_benchmarks(register):
    register("padchest-specific", _specific, summary="35 specific labels, Table 8 (Liz et al. 2023)")
    register("padchest-general", _general, summary="54 general labels, Table 10 (Liz et al. 2023)")
