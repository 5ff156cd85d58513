"""``mlbench reproduce``: train a run bundle's recipe again on the keeper's data and compare (mlbench.judging.reproduce).

Thin: parse the options, call :func:`mlbench.api.reproduce_bundle`, print the comparison.
"""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.table import Table

from mlbench.cli import executor_options, executor_resources
from mlbench.cli.output import esc, make_console, print_submitted, text
from mlbench.foundations.options import SEED_MAX
from mlbench.training.progress import MODES

FILE = click.Path(path_type=Path, dir_okay=False)
VERDICT_STYLE = {"reproduced": "green", "not reproduced": "red", "undefined": "yellow"}


def number(value: float, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:+.{digits}f}"


def comparison_table(result) -> Table:
    table = Table(title=esc(f"reproduction {result.run_dir} minus bundle {result.bundle}: macro over labels, "
                            f"{result.n_test} test images"))
    for column in ("entry", "metric", "difference", "95% CI", "max |Δp|", "verdict"):
        table.add_column(column, justify="right" if column in ("difference", "95% CI", "max |Δp|") else "left",
                         no_wrap=column == "95% CI")
    for r in result.rows.itertuples(index=False):
        table.add_row(text(r.entry), text(r.metric), number(r.difference),
                      f"[{number(r.ci_low)}, {number(r.ci_high)}]", f"{result.max_abs_difference[r.entry]:.2g}",
                      text(r.verdict, VERDICT_STYLE.get(r.verdict, "")))
    return table


@click.command("reproduce")
@click.argument("bundle", type=FILE)
@click.option("--csv", type=FILE, required=True, help="The benchmark's label file the run was made on.")
@click.option("--images", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="The folder the label file's image paths are relative to.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Run directory of the reproduction (the same command again resumes it).")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Paired patient-bootstrap replicates of the comparison.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0, max=SEED_MAX),
              help="Seed of the comparison's bootstrap draws (the training seed is the bundle's).")
@click.option("--json", "json_file", type=FILE, help="Also write the comparison as JSON.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(min=1), help="Threads decoding and cropping images [default: all cores].")
@click.option("--progress", "progress", type=click.Choice(MODES), default="auto", show_default=True,
              help="Bars on a terminal, plain lines elsewhere (auto), or force one.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output (the comparison still prints).")
@executor_options
def reproduce_command(bundle, csv, images, out, n_boot, seed, json_file, device, workers, progress, quiet, executor,
                      gpus_per_node, cpus_per_task, mem_gb, timeout_min, partition, slurm_param, parallel, no_wait):
    """Train the recipe of run BUNDLE again on --csv/--images into --out and compare with the bundle's
    predictions on the same test patients: reproduced when 0 lies in every entry's macro AUC interval."""
    from mlbench.api import reproduce_bundle
    from mlbench.execution.executors import JobsSubmitted

    console = make_console()
    try:
        result = reproduce_bundle(bundle, csv=csv, images=images, out=out, n_boot=n_boot, seed=seed,
                                  json_file=json_file, device=device, workers=workers,
                                  progress="quiet" if quiet else progress, executor=executor, wait=not no_wait,
                                  say=console.say,
                                  resources=executor_resources(gpus_per_node, cpus_per_task, mem_gb, timeout_min,
                                                               partition, slurm_param, parallel))
    except JobsSubmitted as submitted:
        print_submitted(console, submitted, "run this same command again once they are done to compare")
        return
    for note in result.notes:
        console.print(text(note, "bold red" if note.startswith("SYNTHETIC") else ""))
    console.print(comparison_table(result))
    if json_file is not None:
        console.say(f"wrote {json_file}")
    if not result.reproduced:
        raise click.ClickException(f"{bundle}: not reproduced: " + "; ".join(result.failures))
    console.say(f"reproduced: {bundle} (sha256 {result.bundle_sha256[:12]}...): 0 lies in the 95% CI of every "
                "entry's macro AUC difference")
