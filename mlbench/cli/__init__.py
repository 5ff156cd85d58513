"""The ``mlbench`` command. Each command parses options and calls one library function."""

import click

from mlbench import __version__


@click.group()
@click.version_option(__version__, prog_name="mlbench")
def main() -> None:
    """Benchmarks for imbalanced multilabel image datasets."""


# Each module adds its commands to ``main``.
from mlbench.cli import plugins as _plugins  # noqa: E402,F401
from mlbench.cli import run as _run  # noqa: E402,F401
from mlbench.cli import data as _data  # noqa: E402,F401
from mlbench.cli import explain as _explain  # noqa: E402,F401
from mlbench.cli import crop as _crop  # noqa: E402,F401
from mlbench.cli import leaderboard as _leaderboard  # noqa: E402,F401
from mlbench.cli import report as _report  # noqa: E402,F401
