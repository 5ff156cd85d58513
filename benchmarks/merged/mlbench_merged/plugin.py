"""Registers the merged PadChest + NIH dataset and benchmark with mlbench.

Factories are named, not imported (:class:`mlbench.LazyFactory`): ``mlbench plugins`` stays fast, and the
sources' own plugins are looked up only when a factory is called.
"""

from mlbench import LazyFactory, hookimpl


@hookimpl
def register_datasets(register):
    register("padchest-nih", LazyFactory("mlbench_merged.dataset:padchest_nih"),
             summary="PadChest + NIH ChestX-ray14 from one sources file (TOML), on their shared findings")


@hookimpl
def register_benchmarks(register):
    register("padchest-nih", LazyFactory("mlbench_merged.benchmarks:padchest_nih"),
             summary="PadChest + NIH trained together on the 12 findings both label; NIH's official test patients in test only")
