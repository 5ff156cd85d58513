"""``mlbench verify`` and ``mlbench board init | add | build``: a keeper's commands.

Thin: each parses its options, calls one :mod:`mlbench.api` function (``verify_bundle``,
``init_board``, ``add_to_board``, ``build_board``) and prints the result.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlbench.cli.output import esc, make_console
from mlbench.results.profiles import known_profiles

FILE = click.Path(path_type=Path, dir_okay=False)
FOLDER = click.Path(path_type=Path, file_okay=False)


def keeper_options(command):
    """The keeper's files, shared by verify and board add."""
    options = [
        click.option("--csv", type=FILE, required=True,
                     help="The benchmark's label file (a canonical release, or the file the board is pinned to)."),
        click.option("--images", type=FOLDER,
                     help="The image folder: checks the claimed skips and re-infers a sample of test images with "
                          "the bundle's weights."),
        click.option("--labels", type=FILE,
                     help="Sealed test labels: a private label file of the same dataset, the truth for the test "
                          "images."),
        click.option("--sample", type=click.IntRange(min=0), default=64, show_default=True,
                     help="Test images re-inferred per backbone (seeded by the bundle's sha256)."),
        click.option("--tolerance", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True), default=1e-2,
                     show_default=True, help="Largest difference accepted between re-inferred and bundled "
                                             "probabilities."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def print_verdict(verdict, console) -> None:
    for check in verdict.checks:
        mark = "[green]PASS[/]" if check.ok else "[red]FAIL[/]"
        console.print(f"{mark} {esc(check.name)}: {esc('; '.join(check.details))}")
    for note in verdict.not_checked:
        console.print(f"[yellow]NOT CHECKED[/] {esc(note)}")


@click.command("verify")
@click.argument("bundle", type=FILE)
@keeper_options
@click.option("--synthetic", is_flag=True, help="Accept a synthetic demo label file (a practice check).")
@click.option("--verdict", "verdict_file", type=FILE, help="Write the verdict JSON here.")
def verify_command(bundle, csv, images, labels, sample, tolerance, synthetic, verdict_file):
    """Verify BUNDLE from the keeper's own files, believing nothing it says."""
    from mlbench.api import verify_bundle

    verdict = verify_bundle(bundle, csv=csv, images=images, labels=labels, sample=sample, tolerance=tolerance,
                            synthetic=synthetic, verdict_file=verdict_file)
    console = make_console()
    print_verdict(verdict, console)
    if not verdict.accepted:
        raise click.ClickException(f"{bundle}: refused: " + " | ".join(verdict.failures))
    console.print(f"[green]accepted[/]: {esc(str(bundle))} (sha256 {verdict.bundle_sha256[:12]}...)")


@click.group("board")
def board_group() -> None:
    """A shared board kept as a git repository: init, add a bundle, rebuild."""


@board_group.command("init")
@click.argument("folder", type=FOLDER)
@click.option("--benchmark", required=True, help="The benchmark the board ranks.")
@click.option("--csv", type=FILE,
              help="Pin the board to this label file (a benchmark without canonical releases, or a demo corpus "
                   "with --synthetic) [default: the benchmark's canonical releases].")
@click.option("--synthetic", is_flag=True, help="A practice board of a synthetic demo corpus (--csv).")
@click.option("--profile", metavar="NAME",
              help=f"The scoring profile ranking the board: {known_profiles()} [default: the benchmark's].")
def init_command(folder, benchmark, csv, synthetic, profile):
    """Lay out a new board repository in FOLDER."""
    from mlbench.api import init_board

    board = init_board(folder, benchmark, csv=csv, synthetic=synthetic,
                       **({"profile": profile} if profile is not None else {}))
    click.echo(f"board of {board.benchmark} in {board.root}, ranked by scoring profile {board.profile.describe()}: "
               "commit it, and submissions arrive as pull requests")


@board_group.command("add")
@click.argument("folder", type=FOLDER)
@click.argument("bundle", type=FILE)
@keeper_options
@click.option("--check", "check_only", is_flag=True, help="Verify only; file nothing (what the board's CI runs).")
def add_command(folder, bundle, csv, images, labels, sample, tolerance, check_only):
    """Verify BUNDLE and file it on the board in FOLDER."""
    from mlbench.api import add_to_board

    result = add_to_board(folder, bundle, csv=csv, images=images, labels=labels, sample=sample,
                          tolerance=tolerance, check_only=check_only)
    console = make_console()
    print_verdict(result.verdict, console)
    if result.submission is None:
        console.print(f"[green]accepted[/]: {esc(str(bundle))} would be filed (--check: nothing written)")
    else:
        console.print(f"[green]filed[/] as {esc(str(result.submission))}; board.parquet has {result.rows_in_board} rows")


@board_group.command("build")
@click.argument("folder", type=FOLDER)
@click.option("--csv", type=FILE, help="Re-verify every bundle against this label file as well.")
@click.option("--images", type=FOLDER, help="With --csv: the image folder.")
def build_command(folder, csv, images):
    """Rebuild FOLDER/board.parquet from its submissions (deterministic)."""
    from mlbench.api import build_board

    result = build_board(folder, csv=csv, images=images)
    for name, why in result.dropped.items():
        click.echo(f"dropped {name}: {why}", err=True)
    click.echo(f"{result.path}: {result.rows} rows from {len(result.included)} submissions"
               + (f" ({len(result.dropped)} dropped)" if result.dropped else ""))
    if result.ranking:
        run_id, entry = result.ranking[0]
        click.echo(f"ranked by scoring profile {result.profile.describe()}; first: {run_id} {entry}")
