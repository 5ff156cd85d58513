"""``mlbench grid BENCHMARK ...`` and ``mlbench grid status GRID_DIR``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from mlbench.foundations.options import parse_pairs
from mlbench.cli import comma_names, config_option, executor_options, executor_resources, pretrained_option
from mlbench.cli.output import CliConsole, esc, make_console, p_text, print_submitted, text
from mlbench.results.profiles import ScoringProfile, order_metrics, run_profile
from mlbench.training.progress import MODES


class _GridGroup(click.Group):
    """``grid status DIR`` is a subcommand; anything else is ``grid run ...`` (``mlbench grid BENCH``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _seeds(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected comma-separated integers", param_hint="--seeds") from None


@click.group("grid", cls=_GridGroup)
def grid_group() -> None:
    """Imbalance remedies side by side: `mlbench grid BENCHMARK --remedies ...`, `mlbench grid status DIR`."""


@grid_group.command("run")
@click.argument("benchmark")
@click.option("--remedies", required=True,
              help="Comma-separated remedies, the first is the baseline: samplers (uniform, ml-ros, class-aware), "
                   "losses (class-balanced, ...), val-f1, or +-joined combinations.")
@click.option("--backbones", help="Comma-separated backbones [default: the recipe's].")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated training seeds.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Grid directory.")
@click.option("--demo", is_flag=True, help="On the embedded synthetic demo corpus (results labelled synthetic).")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="The dataset's label CSV.")
@click.option("--images", type=click.Path(path_type=Path), help="Root folder of the dataset's images.")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE",
              help="Option the dataset declares, for every cell (repeatable), e.g. policy=zeros.")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs of every cell.")
@pretrained_option
@click.option("--image-size", type=click.IntRange(min=16), help="Training image size of every cell.")
@click.option("--ensembles", help="Comma-separated ensembles of every cell [default: the recipe's].")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Patient-bootstrap replicates for every CI (cells and the paired comparison).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(min=1), help="Threads decoding and cropping images [default: all cores].")
@executor_options
@click.option("--tracker", "tracker", help="Comma-separated experiment trackers for every cell (tensorboard, mlflow, "
                                           "or a plugin's), written in each cell's RUN_DIR/trackers.")
@click.option("--progress", type=click.Choice(MODES), default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@config_option()
def grid_run_command(benchmark, remedies, backbones, seeds, out, demo, csv_path, images, dataset_option, epochs, pretrained, image_size,
                     ensembles,
                     n_boot, device, workers, executor, gpus_per_node, cpus_per_task, mem_gb, timeout_min,
                     partition, slurm_param, parallel, no_wait, tracker, progress, quiet):
    """Run every remedy x seed (each an ordinary run directory) and compare each remedy with the first."""
    from mlbench.api import run_grid
    from mlbench.execution.executors import JobsSubmitted
    from mlbench.results.griddir import GridDir

    console = make_console()
    comparison_file = GridDir(out).comparison_file
    try:
        result = run_grid(benchmark, comma_names(remedies, "--remedies"), out,
                          backbones=comma_names(backbones, "--backbones"), seeds=_seeds(seeds), demo=demo,
                          csv=csv_path, images=images,
                          dataset_options=parse_pairs(dataset_option, "--dataset-option") or None, max_epochs=epochs, pretrained=pretrained, image_size=image_size,
                          ensembles=comma_names(ensembles, "--ensembles"), n_boot=n_boot, device=device,
                          workers=workers, progress="quiet" if quiet else progress, executor=executor,
                          trackers=comma_names(tracker, "--tracker"),
                          wait=not no_wait, say=console.say,
                          resources=executor_resources(gpus_per_node, cpus_per_task, mem_gb, timeout_min, partition,
                                                       slurm_param, parallel))
    except JobsSubmitted as submitted:
        print_submitted(console, submitted, f"watch them with `mlbench grid status {out}`, then run this same "
                        f"command again: it resubmits failed jobs, or writes {comparison_file} "
                        "once every cell is done")
        return
    print_comparison(console, result.comparison, run_profile(result.cells[0].run_dir))
    console.say(f"wrote {comparison_file}")


def print_comparison(console: CliConsole, comparison, profile: ScoringProfile) -> None:
    """Macro and frequency-group rows, one table per metric: the cells' scoring profile's metrics first."""
    if comparison.empty:
        console.print("one remedy only: nothing to compare (the first remedy is the baseline)")
        return
    shown = comparison[comparison["scope"] != "label"]
    console.say(f"metrics in the order of the cells' scoring profile, {profile.describe()}")
    for metric in order_metrics(shown["metric"], profile):
        rows = shown[shown["metric"] == metric]
        table = Table(title=esc(f"{metric}: remedy minus baseline ({rows['baseline'].iloc[0]}), paired 95% CI"))
        numbers = ("difference", "sd", "95% CI", "seeds", "p (Holm)")
        for column in ("remedy", "entry", "scope", "name", *numbers, "verdict"):
            table.add_column(column, justify="right" if column in numbers else "left")
        for r in rows.itertuples(index=False):
            style = {"helps": "green", "hurts": "red"}.get(r.verdict, "")
            ci = "-" if r.ci_low != r.ci_low else f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]"
            sd = "-" if r.sd != r.sd else f"{r.sd:.4f}"
            table.add_row(text(r.remedy), text(r.entry), text(r.scope), text(r.name), f"{r.difference:+.4f}", sd,
                          text(ci), str(r.n_seeds), p_text(r.p_adjusted), text(r.verdict, style))
        console.print(table)
    console.print("helps / hurts: the 95% CI excludes 0 and the p-value, Holm-adjusted over every remedy and name "
                  "within one entry, scope and metric, is below 0.05 (the CIs themselves are per row)")


@grid_group.command("status")
@click.argument("grid_dir", type=click.Path(path_type=Path))
def grid_status_command(grid_dir):
    """Every cell's state: done, running, pending, interrupted or failed (with the tail of its log).

    A started cell that no process runs any more (its grid was killed or stopped) is interrupted, and
    the command that resumes it is printed. Cells with SLURM jobs show each job's state (sacct), and a
    job that ended badly shows as failed.
    """
    from mlbench.api import grid_status

    status = grid_status(grid_dir)
    table = Table(title=esc(f"grid {grid_dir}"))
    for column in ("remedy", "seed", "state", "detail"):
        table.add_column(column)
    for c in status.cells:
        style = {"done": "green", "failed": "bold red", "running": "yellow", "interrupted": "magenta"}.get(c.state, "")
        table.add_row(text(c.remedy), str(c.seed), text(c.state, style), text(c.detail))
    make_console().print(table)
    click.echo(", ".join(f"{n} {s}" for s, n in status.counts.items() if s != "interrupted" or n))
    if status.resume:
        click.echo(f"resume with: {status.resume}")
    if not status.sacct:
        click.echo("no sacct on PATH: the SLURM jobs' states are not shown, only what their files say")
