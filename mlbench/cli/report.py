"""``mlbench report``: parse options, call :func:`mlbench.api.write_report`, print where it went."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("path_in", metavar="RUN_OR_GRID_DIR", required=False,
                type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--board", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="A board repository (mlbench board init): its public page instead of a run's report.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The HTML file to write.")
@click.option("--against", type=click.Choice(["published"]),
              help="Show the benchmark's published values beside the run's (per-label AUC).")
@click.option("--explain", "explain_dirs", multiple=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="An `mlbench explain --out` folder for the gallery (repeatable) [default: any found inside "
                   "RUN_DIR].")
@click.option("--force", is_flag=True,
              help="Replace a file at --out that is not an mlbench report (a run or grid directory's own files "
                   "are never replaced).")
def report_command(path_in, board, out, against, explain_dirs, force):
    """Write one self-contained HTML report of a run directory, a remedy grid directory or a board."""
    from mlbench.api import write_report

    if (path_in is None) == (board is None):
        raise click.UsageError("give RUN_OR_GRID_DIR or --board BOARD_DIR (one of them)")
    path_in = path_in or board

    # A ReportError, LeaderboardError or RunDirError is a UserError: the group prints it as one line.
    path = write_report(path_in, out, against=against, explain_dirs=list(explain_dirs), force=force,
                        on_note=lambda note: click.echo(f"note: {note}", err=True))
    size = path.stat().st_size
    click.echo(f"report written to {path} ({size / 1e6:.2f} MB)")
