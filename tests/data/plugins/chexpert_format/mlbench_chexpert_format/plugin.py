"""Registers the ``chexpert-format`` dataset and benchmark with mlbench.

The dataset is registered as a LazyFactory naming its class: mlbench reads the class's ``OPTIONS``
(its ``policy`` option) from it without importing pandas until the dataset is used.
"""

from mlbench import hookimpl, LazyFactory


def _benchmark():
    from mlbench_chexpert_format.benchmark import chexpert_format

    return chexpert_format()


@hookimpl
def register_datasets(register):
    register("chexpert-format", LazyFactory("mlbench_chexpert_format.dataset:CheXpertFormatDataset"),
             summary="CheXpert-format label CSV (Path, Sex, Age, views, 1 / 0 / -1 / blank per finding); "
                     "option policy (ones, zeros, ignore)")


@hookimpl
def register_benchmarks(register):
    register("chexpert-format", _benchmark, summary="CheXpert's five competition findings, patient-grouped 70/10/20")
