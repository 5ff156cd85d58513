"""The ``mlbench`` command. Each command parses options, calls one library function and prints.

Commands load lazily: ``COMMANDS`` names the module of each, and only the module of the command
being run is imported (``mlbench leaderboard show`` never imports the training stack). Command
modules import nothing from each other: what two of them share is here (the option helpers below)
or in :mod:`mlbench.cli.output` (printing); this module imports them only through ``COMMANDS``,
so the package has no import cycle.

The group is the CLI's one error boundary: a :class:`mlbench.foundations.errors.UserError` raised anywhere
below becomes ``Error: <message>`` and exit status 1, with no traceback; any other exception is a
bug and keeps its traceback, followed by a line asking to report it.
"""

import importlib
import sys

import click

from mlbench import __version__
from mlbench.foundations.errors import UserError

BUG_HINT = ("mlbench: this is a bug in mlbench or one of its plugins, not a mistake of yours; please report it "
            "with the traceback above (mlbench --version and `mlbench plugins` help too)")


# command name -> "module:attribute" of its click command
COMMANDS = {
    "plugins": "mlbench.cli.plugins:plugins",
    "run": "mlbench.cli.run:run_command",
    "demo-data": "mlbench.cli.run:demo_data_command",
    "preprocess": "mlbench.cli.run:preprocess_command",
    "datasets": "mlbench.cli.data:datasets",
    "split": "mlbench.cli.data:split_command",
    "labels": "mlbench.cli.data:labels",
    "explain": "mlbench.cli.explain:explain_command",
    "grid": "mlbench.cli.grid:grid_group",
    "crop": "mlbench.cli.crop:crop",
    "leaderboard": "mlbench.cli.leaderboard:leaderboard_group",
    "compare": "mlbench.cli.leaderboard:compare_command",
    "submit": "mlbench.cli.leaderboard:submit_command",
    "report": "mlbench.cli.report:report_command",
    "bundle": "mlbench.cli.bundle:bundle_command",
    "score": "mlbench.cli.score:score_command",
    "predict": "mlbench.cli.predict:predict_command",
    "verify": "mlbench.cli.board:verify_command",
    "board": "mlbench.cli.board:board_group",
    "reproduce": "mlbench.cli.reproduce:reproduce_command",
}


class MlbenchGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            message = str(exc).strip() or type(exc).__name__
            raise click.ClickException(message) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted; run the same command again to resume", err=True)
            raise SystemExit(130) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception:
            # The traceback stays: it is what a bug report needs.
            import traceback

            traceback.print_exc()
            click.echo(BUG_HINT, err=True)
            sys.exit(70)  # EX_SOFTWARE


@click.group(cls=MlbenchGroup)
@click.version_option(__version__, prog_name="mlbench")
def main() -> None:
    """Benchmarks for imbalanced multilabel image datasets."""


# -- option helpers two commands share ----------------------------------------------------------
def comma_names(value: str | None, option: str) -> tuple[str, ...] | None:
    """``a,b`` as names; None when the option was not given."""
    if value is None:
        return None
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise click.BadParameter("expected one or more comma-separated names", param_hint=option)
    return names


# run and grid both train: the same switch for pretrained weights (None keeps the recipe's).
pretrained_option = click.option(
    "--pretrained/--no-pretrained", default=None,
    help="Start every backbone from its pretrained weights, or train from scratch (nothing downloaded) "
         "[default: the recipe's].")


def executor_options(command):
    """--executor and the job resources, shared by `mlbench grid` and `mlbench run`."""
    from mlbench.api import EXECUTORS

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


def executor_resources(gpus_per_node, cpus_per_task, mem_gb, timeout_min, partition, slurm_param,
                       parallel) -> dict:
    """The keyword arguments of mlbench.execution.executors.Resources, from the options above."""
    from mlbench.foundations.options import parse_pairs

    extra = {key: str(value) for key, value in parse_pairs(slurm_param, "--slurm-param").items()}
    return {"gpus_per_node": gpus_per_node, "cpus_per_task": cpus_per_task, "mem_gb": mem_gb,
            "timeout_min": timeout_min, "partition": partition, "slurm_parameters": extra, "parallel": parallel}
