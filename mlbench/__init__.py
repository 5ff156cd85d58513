"""mlbench: plugin-based benchmarks for imbalanced multilabel image datasets.

The public Python API (:mod:`mlbench.api`), one call per thing the command line does::

    import mlbench
    result = mlbench.run_benchmark("padchest-specific", demo=True)
    mlbench.compare_run(result.run_dir).rows

Plugins import what they use from here too, and only from here (``from mlbench import hookimpl,
Benchmark, Records, LazyFactory``; :data:`PLUGIN_API` lists it): the one surface that stays put
while the core's modules move.

Its names load on first use (module ``__getattr__``): ``import mlbench`` imports no torch, so a
plugin module that only needs ``hookimpl`` stays cheap to load.
"""

from mlbench.contracts.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

# The public API: name -> the module that defines it (imported on first access).
API = {
    "run_benchmark": "mlbench.api",
    "compare_run": "mlbench.api",
    "submit_run": "mlbench.api",
    "list_plugins": "mlbench.api",
    "show_leaderboard": "mlbench.api",
    "write_report": "mlbench.api",
    "write_demo_data": "mlbench.api",
    "run_grid": "mlbench.api",
    "grid_status": "mlbench.api",
    "preprocess_images": "mlbench.api",
    "inspect_dataset": "mlbench.api",
    "split_dataset": "mlbench.api",
    "label_tree": "mlbench.api",
    "crop_images": "mlbench.api",
    "explain_images": "mlbench.api",
    "test_plugin": "mlbench.api",
    "ArgumentError": "mlbench.api",
    "RunDir": "mlbench.results.rundir",
    "score_predictions": "mlbench.api",
    "predict_images": "mlbench.api",
    "bundle_run": "mlbench.api",
    "verify_bundle": "mlbench.api",
    "init_board": "mlbench.api",
    "add_to_board": "mlbench.api",
    "build_board": "mlbench.api",
    "reproduce_bundle": "mlbench.api",
    "run_config": "mlbench.api",
    "evaluate_run": "mlbench.api",
}

# What a plugin may use: name -> where it lives now. Plugins import these from ``mlbench`` only
# (``from mlbench import Benchmark, Records``; tests/test_architecture.py checks the built-in
# families, the example plugin and the test plugins), so a module may move without breaking one.
# A value of ``"module:"`` is the module itself, used as a namespace (``films.nodule(...)``).
PLUGIN_API = {
    # contracts
    "Benchmark": "mlbench.contracts.benchmark", "Recipe": "mlbench.contracts.benchmark", "PAPER_RECIPE": "mlbench.contracts.benchmark",
    "PAPER_BACKBONES": "mlbench.contracts.benchmark", "DEMO_RECIPE": "mlbench.contracts.benchmark",
    "CanonicalSource": "mlbench.contracts.benchmark",
    "SharedFindings": "mlbench.contracts.benchmark", "Finding": "mlbench.contracts.benchmark",
    "EXACT": "mlbench.contracts.benchmark", "NARROWER": "mlbench.contracts.benchmark",
    "LazyFactory": "mlbench.contracts.registry", "get_registry": "mlbench.contracts.registry",
    # remedies: a schedule's stages; what a post-hoc adjuster knows of a classification head
    "Stage": "mlbench.models.schedules", "Stages": "mlbench.models.schedules", "HeadStats": "mlbench.models.adjusters",
    "to_logits": "mlbench.models.adjusters", "to_probs": "mlbench.models.adjusters",
    # datasets: records, skips, reading a label file and its rows, image paths
    "DataSource": "mlbench.data", "Records": "mlbench.data", "Skip": "mlbench.data", "STRATIFY_COLUMN": "mlbench.data",
    "UNKNOWN_COLUMN": "mlbench.data", "SOURCE_COLUMN": "mlbench.data",
    "DatasetError": "mlbench.data", "read_columns": "mlbench.data.labelfile",
    "RowChecks": "mlbench.data.rows", "RowColumns": "mlbench.data.rows",
    "label_file_profile": "mlbench.data.rows", "unknown_label_counts": "mlbench.data.rows",
    "PROJECTION_NOT_SELECTED": "mlbench.data.rows",
    "ImageRoot": "mlbench.data.imagepaths", "OUTSIDE_ROOT": "mlbench.data.imagepaths",
    "lies_under": "mlbench.foundations.paths",
    # preprocessing
    "Preprocessed": "mlbench.preprocessing", "normalize_intensity": "mlbench.preprocessing.images",
    "area_downscale": "mlbench.preprocessing.images", "resize_square": "mlbench.preprocessing.images",
    # demo corpora
    "films": "mlbench.demo.films:", "SYNTHETIC_KIND": "mlbench.demo", "mark_synthetic": "mlbench.demo",
    "is_marked_synthetic": "mlbench.demo", "FINDINGS_FILE": "mlbench.demo", "LUNGS_FILE": "mlbench.demo",
    "write_findings": "mlbench.demo", "write_lungs": "mlbench.demo",
    # files: atomic writes and hashes; a published board's schema
    "write_bytes": "mlbench.foundations.io", "write_text": "mlbench.foundations.io", "sha256_file": "mlbench.foundations.io",
    "leaderboard": "mlbench.results.leaderboard:",
}

__all__ = ["__version__", "hookimpl", "hookspec", *API, *PLUGIN_API]


def __getattr__(name: str):
    where = API.get(name) or PLUGIN_API.get(name)
    if where is None:
        raise AttributeError(f"module 'mlbench' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(where.rstrip(":"))
    value = module if where.endswith(":") else getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API) | set(PLUGIN_API))
