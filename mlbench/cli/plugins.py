"""``mlbench plugins``: what is installed, who registered it, what failed to load."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from mlbench.cli import main
from mlbench.registry import get_registry


def plugin_rows() -> tuple[list[dict], list[dict]]:
    registry = get_registry()
    rows = [e.as_dict() for e in registry.entries()]
    errors = [{"plugin": e.plugin, "package": e.package, "error": e.message} for e in registry.errors]
    return rows, errors


@main.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List every registered plugin (kind, name, package, version)."""
    if ctx.invoked_subcommand is not None:
        return
    rows, errors = plugin_rows()
    if as_json:
        click.echo(json.dumps(rows + [{**e, "kind": "error", "name": None, "version": None} for e in errors], indent=2))
        return
    console = Console()
    table = Table(title="mlbench plugins")
    for col in ("kind", "name", "plugin", "package", "version", "summary"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["kind"], r["name"], r["plugin"], r["package"] or "-", r["version"] or "-", r.get("summary", ""))
    console.print(table)
    for e in errors:
        console.print(f"[red]plugin '{e['plugin']}' ({e['package'] or 'unknown package'}) failed:[/red] {e['error']}")
