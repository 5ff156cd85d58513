"""Registers the PadChest dataset, preprocessors and benchmarks with mlbench.

Each factory is named, not imported (:class:`mlbench.contracts.registry.LazyFactory`), so that ``mlbench
plugins`` stays fast while ``inspect.signature`` still sees the real factory's parameters.
"""

from mlbench import hookimpl, LazyFactory


@hookimpl
def register_datasets(register):
    register("padchest", LazyFactory("mlbench_padchest.dataset:PadChestDataset"),
             summary="PadChest CSV + 16-bit PNG folders (and its synthetic demo)")


@hookimpl
def register_preprocessors(register):
    register("padchest-lung-crop", LazyFactory("mlbench_padchest.lungcrop:LungCrop"),
             summary="Lung-field crop (weight-free segmentation) + resize")


@hookimpl
def register_benchmarks(register):
    register("padchest-specific", LazyFactory("mlbench_padchest.benchmarks:specific"),
             summary="35 specific labels, Table 8 (Liz et al. 2023)")
    register("padchest-general", LazyFactory("mlbench_padchest.benchmarks:general"),
             summary="54 general labels, Table 10 (Liz et al. 2023)")
