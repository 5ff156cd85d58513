"""``mlbench grid BENCHMARK ...`` and ``mlbench grid status GRID_DIR``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from mlbench.cli.leaderboard import p_text
from mlbench.cli.output import CliConsole, esc, make_console, text
from mlbench.options import parse_pairs
from mlbench.progress import MODES

EXECUTORS = ("inline", "local", "slurm")


def executor_options(command):
    """--executor and the job resources, shared by `mlbench grid` and `mlbench run`."""
    options = [
        click.option("--executor", type=click.Choice(EXECUTORS), default="inline", show_default=True,
                     help="inline (this process), local (submitit subprocesses, one job per backbone) or slurm "
                          "(submitit SLURM jobs; the ensembles job waits on its training jobs)."),
        click.option("--gpus-per-node", type=click.IntRange(min=0),
                     help="GPUs per training job, one process each [default: local 1 with CUDA, else 0; slurm 0]."),
        click.option("--cpus-per-task", type=click.IntRange(min=1), help="CPUs per job process (slurm)."),
        click.option("--mem-gb", type=click.FloatRange(min=0, min_open=True), help="Memory per job (slurm)."),
        click.option("--timeout-min", type=click.IntRange(min=1), default=24 * 60, show_default=True,
                     help="Time limit per job; a job hitting it is requeued and resumes from its last epoch."),
        click.option("--partition", help="SLURM partition."),
        click.option("--slurm-param", "slurm_param", multiple=True, metavar="KEY=VALUE",
                     help="Extra #SBATCH --KEY=VALUE line (repeatable), e.g. account=myproj, qos=high."),
        click.option("--parallel", type=click.IntRange(min=1),
                     help="local: jobs at once [default: one per GPU slot, 1 without GPUs]."),
        click.option("--no-wait", is_flag=True,
                     help="slurm: submit the jobs and return; run the same command again later to resubmit "
                          "failed jobs or, once all are done, to write the results."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def check_no_wait(executor: str, no_wait: bool) -> None:
    """--no-wait with an executor that runs the work inside this command: one line, before any work."""
    if no_wait:
        from mlbench.executors import check_wait

        check_wait(executor, wait=False)


def print_submitted(console: CliConsole, submitted, then: str) -> None:
    """What --no-wait queued, and the commands that follow (literal lines: they hold paths to copy)."""
    new = [t.job.job_id for t in submitted.tasks if not t.reused]
    old = [t.job.job_id for t in submitted.tasks if t.reused]
    if new:
        console.say(f"submitted {len(new)} SLURM job(s): {' '.join(new)}")
    if old:
        console.say(f"still queued or running from before: {' '.join(old)}")
    console.say(f"not waiting for them (every submission is in {submitted.record_file}); {then}")


def executor_resources(gpus_per_node, cpus_per_task, mem_gb, timeout_min, partition, slurm_param,
                       parallel) -> dict:
    """The keyword arguments of mlbench.executors.Resources."""
    extra = {key: str(value) for key, value in parse_pairs(slurm_param, "--slurm-param").items()}
    return {"gpus_per_node": gpus_per_node, "cpus_per_task": cpus_per_task, "mem_gb": mem_gb,
            "timeout_min": timeout_min, "partition": partition, "slurm_parameters": extra, "parallel": parallel}


class _GridGroup(click.Group):
    """``grid status DIR`` is a subcommand; anything else is ``grid run ...`` (``mlbench grid BENCH``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _names(value: str | None, option: str) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter("expected one or more comma-separated names", param_hint=option)
    return names


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
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs of every cell.")
@click.option("--image-size", type=click.IntRange(min=16), help="Training image size of every cell.")
@click.option("--ensembles", help="Comma-separated ensembles of every cell [default: the recipe's].")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Patient-bootstrap replicates for every CI (cells and the paired comparison).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes for preprocessing [default: all cores].")
@executor_options
@click.option("--progress", type=click.Choice(MODES), default="auto", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def grid_run_command(benchmark, remedies, backbones, seeds, out, demo, csv_path, images, epochs, image_size, ensembles,
                     n_boot, device, workers, executor, gpus_per_node, cpus_per_task, mem_gb, timeout_min,
                     partition, slurm_param, parallel, no_wait, progress, quiet):
    """Run every remedy x seed (each an ordinary run directory) and compare each remedy with the first."""
    check_no_wait(executor, no_wait)
    from mlbench.grid import GridSpec, run_grid
    from mlbench.griddir import GridDir

    run_options = {"n_boot": n_boot, "device": device}
    for key, value in (("max_epochs", epochs), ("image_size", image_size), ("workers", workers),
                       ("ensembles", _names(ensembles, "--ensembles"))):
        if value is not None:
            run_options[key] = value
    spec = GridSpec(benchmark=benchmark, out=out, remedies=_names(remedies, "--remedies"),
                    backbones=_names(backbones, "--backbones"), seeds=_seeds(seeds), demo=demo, csv=csv_path,
                    images=images, run_options=run_options, n_boot=n_boot,
                    progress="quiet" if quiet else progress)
    console = make_console()
    resources = executor_resources(gpus_per_node, cpus_per_task, mem_gb, timeout_min, partition, slurm_param,
                                   parallel)
    execute = _executor(executor, out, console.say, resources, wait=not no_wait)
    comparison_file = GridDir(out).comparison_file
    if no_wait:
        from mlbench.executors import JobsSubmitted

        try:
            result = run_grid(spec, executor=execute, say=console.say)
        except JobsSubmitted as submitted:
            print_submitted(console, submitted, f"watch them with `mlbench grid status {out}`, then run this same "
                            f"command again: it resubmits failed jobs, or writes {comparison_file} "
                            "once every cell is done")
            return
    else:
        result = run_grid(spec, executor=execute, say=console.say)
    print_comparison(console, result.comparison)
    console.say(f"wrote {comparison_file}")


def _executor(name: str, out: Path, say, resources: dict, wait: bool = True):
    from mlbench.grid import run_inline

    if name == "inline":
        return run_inline
    from mlbench.executors import submitit_executor

    return submitit_executor(name, Path(out), say, wait=wait, **resources)


def print_comparison(console: CliConsole, comparison) -> None:
    """Macro and frequency-group rows, one table per metric."""
    if comparison.empty:
        console.print("one remedy only: nothing to compare (the first remedy is the baseline)")
        return
    shown = comparison[comparison["scope"] != "label"]
    for metric, rows in shown.groupby("metric", sort=False):
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
    from mlbench.executors import slurm_job_states
    from mlbench.grid import resume_command
    from mlbench.griddir import GridDir
    from mlbench.gridstatus import STATES, grid_status

    spec = GridDir(grid_dir).spec()  # a corrupt spec: one line, before sacct is asked anything
    job_states = slurm_job_states(grid_dir)
    cells = grid_status(grid_dir, job_states=job_states)
    table = Table(title=esc(f"grid {grid_dir}"))
    for column in ("remedy", "seed", "state", "detail"):
        table.add_column(column)
    for c in cells:
        style = {"done": "green", "failed": "bold red", "running": "yellow", "interrupted": "magenta"}.get(c.state, "")
        table.add_row(text(c.remedy), str(c.seed), text(c.state, style), text(c.detail))
    make_console().print(table)
    counts = {s: sum(c.state == s for c in cells) for s in STATES}
    click.echo(", ".join(f"{n} {s}" for s, n in counts.items() if s != "interrupted" or n))
    if counts["interrupted"]:
        click.echo(f"resume with: {resume_command(grid_dir, spec)}")
    if job_states is None:
        click.echo("no sacct on PATH: the SLURM jobs' states are not shown, only what their files say")
