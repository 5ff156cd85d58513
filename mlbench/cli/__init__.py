"""The ``mlbench`` command. Each command parses options, calls one library function and prints.

The group is the CLI's one error boundary: a :class:`mlbench.errors.UserError` raised anywhere
below becomes ``Error: <message>`` and exit status 1, with no traceback; any other exception is a
bug and keeps its traceback, followed by a line asking to report it.
"""

import sys

import click

from mlbench import __version__
from mlbench.errors import UserError

BUG_HINT = ("mlbench: this is a bug in mlbench or one of its plugins, not a mistake of yours; please report it "
            "with the traceback above (mlbench --version and `mlbench plugins` help too)")


class MlbenchGroup(click.Group):
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


# Each module adds its commands to ``main``.
from mlbench.cli import plugins as _plugins  # noqa: E402,F401
from mlbench.cli import run as _run  # noqa: E402,F401
from mlbench.cli import data as _data  # noqa: E402,F401
from mlbench.cli import explain as _explain  # noqa: E402,F401
from mlbench.cli import crop as _crop  # noqa: E402,F401
from mlbench.cli import leaderboard as _leaderboard  # noqa: E402,F401
from mlbench.cli import report as _report  # noqa: E402,F401
