"""The ``mlbench`` command. Each command parses options, calls one library function and prints.

Commands load lazily: ``COMMANDS`` names the module of each, and only the module of the command
being run is imported (``mlbench leaderboard show`` never imports the training stack). The
command modules import nothing from this package, so the package has no import cycle.

The group is the CLI's one error boundary: a :class:`mlbench.errors.UserError` raised anywhere
below becomes ``Error: <message>`` and exit status 1, with no traceback; any other exception is a
bug and keeps its traceback, followed by a line asking to report it.
"""

import importlib
import sys

import click

from mlbench import __version__
from mlbench.errors import UserError

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
