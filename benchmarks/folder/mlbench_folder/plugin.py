"""Registers the ``folder`` dataset and benchmark: a CSV and an image folder, no plugin of your own.

Factories are named, not imported (``LazyFactory``), so ``mlbench plugins`` stays fast.
"""

from mlbench import hookimpl, LazyFactory


@hookimpl
def register_datasets(register):
    register("folder", LazyFactory("mlbench_folder.dataset:FolderDataset"),
             summary="A CSV (path, optional patient, labels joined or one column each) and an image folder")


@hookimpl
def register_benchmarks(register):
    register("folder", LazyFactory("mlbench_folder.benchmarks:folder"),
             summary="Your own CSV + images: labels kept by min_count, patient-grouped split, the standard recipe")
