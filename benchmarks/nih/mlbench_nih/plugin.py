"""Registers the NIH ChestX-ray14 datasets and benchmarks with mlbench.

Each factory is named, not imported (:class:`mlbench.contracts.registry.LazyFactory`), so that ``mlbench
plugins`` stays fast while ``inspect.signature`` still sees the real factory's parameters.
"""

from mlbench import hookimpl, LazyFactory

DATASET = "mlbench_nih.dataset:NIHDataset"


@hookimpl
def register_datasets(register):
    register("nih-cxr14", LazyFactory(DATASET),
             summary="NIH ChestX-ray14 label file + 8-bit PNGs, PA and AP (and its synthetic demo)")
    register("nih-cxr14-pa", LazyFactory(DATASET, projections=("PA",)), summary="NIH ChestX-ray14, PA films only")


@hookimpl
def register_benchmarks(register):
    register("nih-cxr14", LazyFactory("mlbench_nih.benchmarks:nih_cxr14"),
             summary="14 labels, PA+AP, NIH's official test patients (Wang et al. 2017)")
    register("nih-cxr14-pa", LazyFactory("mlbench_nih.benchmarks:nih_cxr14_pa"),
             summary="14 labels, PA only, NIH's official test patients")
