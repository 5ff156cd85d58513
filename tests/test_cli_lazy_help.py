"""`mlbench --help` lists every command from mlbench.cli.SUMMARIES without importing the command modules
(issue 24, part 2): the listing must be the one click prints from the commands themselves.

tests/test_registry_lazy.py checks, in a fresh process, that `--help` imports neither pandas nor torch.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from mlbench.cli import main


def fresh_group() -> click.Group:
    """A copy of the `mlbench` group with no command loaded yet (as in a new process)."""
    return type(main)(name=main.name, params=main.params, help=main.help)


def names(group: click.Group) -> list[str]:
    return group.list_commands(click.Context(group))


@pytest.mark.parametrize("width", [50, 80, 400])  # 400: no summary shortened
def test_the_lazy_listing_is_what_click_prints_from_the_loaded_commands(width):
    lazy = fresh_group()
    lazy_help = CliRunner().invoke(lazy, ["--help"], terminal_width=width)
    # nothing was imported to list the commands: a command missing from SUMMARIES would have been loaded
    assert lazy_help.exit_code == 0 and not lazy.commands, (
        f"add the first paragraph of each command's help to mlbench.cli.SUMMARIES: {sorted(lazy.commands)}")

    loaded = fresh_group()
    ctx = click.Context(loaded)
    for name in names(loaded):
        assert loaded.get_command(ctx, name).short_help is None, name  # SUMMARIES stands for the help's paragraph
    loaded_help = CliRunner().invoke(loaded, ["--help"], terminal_width=width)
    assert loaded_help.exit_code == 0 and sorted(loaded.commands) == names(loaded) and len(loaded.commands) >= 20
    assert lazy_help.output == loaded_help.output  # every summary is its command's own
    assert all(f"  {name} " in lazy_help.output for name in names(loaded))


def test_a_listed_command_still_runs_as_itself():
    group = fresh_group()
    CliRunner().invoke(group, ["--help"])
    done = CliRunner().invoke(group, ["leaderboard", "--help"])
    assert done.exit_code == 0 and "show" in done.output  # the real group, not its summary stand-in
    assert isinstance(group.commands["leaderboard"], click.Group)
