"""``mlbench config RUN_DIR``: a run's plan as a config file for ``mlbench run --config``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("config")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
def config_command(run_dir):
    """Print RUN_DIR's plan as a TOML config file: `mlbench run BENCHMARK --config FILE` plans the same recipe."""
    from mlbench.api import run_config

    click.echo(run_config(run_dir), nl=False)
