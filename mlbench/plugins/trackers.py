"""Registers the built-in experiment trackers (implemented in :mod:`mlbench.training.trackers`).

Each is registered whatever is installed (names only: nothing is imported here); ``requires`` names
the modules it needs, so a run naming a tracker whose package is missing is refused when planned,
with ``install`` saying how to get it.
"""

from mlbench.contracts.hookspecs import hookimpl
from mlbench.contracts.registry import LazyFactory

IMPLEMENTATION = "mlbench.training.trackers"


@hookimpl
def register_trackers(register):
    register("tensorboard", LazyFactory(f"{IMPLEMENTATION}:tensorboard_tracker"),
             summary="TensorBoard event files in RUN_DIR/trackers/tensorboard, a run per backbone",
             requires=("tensorboard",), install="pip install 'mlbench-imbalanced[tensorboard]'")
    register("mlflow", LazyFactory(f"{IMPLEMENTATION}:mlflow_tracker"),
             summary="An MLflow run in a SQLite store, RUN_DIR/trackers/mlflow/mlflow.db",
             requires=("mlflow", "sqlalchemy", "alembic"), install="pip install 'mlbench-imbalanced[mlflow]'")
