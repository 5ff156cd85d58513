"""``mlbench bundle``: a finished run as one archive a board's keeper verifies (mlbench.judging.bundle).

Thin: parse the options, call :func:`mlbench.api.bundle_run`, print what was written.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlbench.cli.output import make_console


@click.command("bundle")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The bundle file to write (a zip; replaced atomically if it exists).")
@click.option("--with-checkpoints", is_flag=True,
              help="Also each backbone's best weights (as tensors in parquet: nothing in a bundle is unpickled).")
@click.option("--predictions", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Instead of RUN_DIR: a predictions file written outside mlbench (docs/leaderboard.md, "
                   "\"Predictions from any framework\"); needs --benchmark and --describe.")
@click.option("--benchmark", help="With --predictions: the benchmark they are for.")
@click.option("--describe", help="With --predictions: how the predictions were made (one line, shown on boards).")
def bundle_command(run_dir, out, with_checkpoints, predictions, benchmark, describe):
    """Write the submission bundle of the finished run in RUN_DIR: manifest, environment, predictions,
    claimed leaderboard rows, histories, skips and checkpoint hashes, each member indexed by sha256.
    With --predictions, an external bundle of a predictions file instead (no recipe, no weights)."""
    from mlbench.api import bundle_run

    if (run_dir is None) == (predictions is None):
        raise click.UsageError("give RUN_DIR or --predictions FILE (one of them)")
    bundle = bundle_run(run_dir, out, with_checkpoints=with_checkpoints, predictions=predictions,
                        benchmark=benchmark, describe=describe)
    size = bundle.path.stat().st_size
    members = len(bundle.index["members"]) + 1  # and the index itself
    weights = sum(bundle.has_weights(backbone) for backbone in bundle.checkpoints)
    with_weights = f", weights of {weights} backbones" if weights else ""
    make_console().say(f"wrote {bundle.path} ({size / 1e6:.2f} MB, {members} members{with_weights}; "
                       f"sha256 {bundle.sha256})")
