"""Registers the NIH ChestX-ray14 datasets and benchmarks with mlbench.

Factories import their modules lazily so that ``mlbench plugins`` stays fast.
"""

from mlbench import hookimpl


def _dataset(**options):
    from mlbench_nih.dataset import NIHDataset

    return NIHDataset(**options)


def _dataset_pa(**options):
    from mlbench_nih.dataset import NIHDataset

    return NIHDataset(**{"projections": ("PA",), **options})


def _nih_cxr14():
    from mlbench_nih.benchmarks import nih_cxr14

    return nih_cxr14()


def _nih_cxr14_pa():
    from mlbench_nih.benchmarks import nih_cxr14_pa

    return nih_cxr14_pa()


@hookimpl
def register_datasets(register):
    register("nih-cxr14", _dataset, summary="NIH ChestX-ray14 label file + 8-bit PNGs, PA and AP (and its synthetic demo)")
    register("nih-cxr14-pa", _dataset_pa, summary="NIH ChestX-ray14, PA films only")


@hookimpl
def register_benchmarks(register):
    register("nih-cxr14", _nih_cxr14, summary="14 labels, PA+AP, NIH's official test patients (Wang et al. 2017)")
    register("nih-cxr14-pa", _nih_cxr14_pa, summary="14 labels, PA only, NIH's official test patients")
