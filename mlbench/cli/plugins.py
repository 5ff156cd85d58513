"""``mlbench plugins``: what is installed, who registered it, what failed to load; ``mlbench plugins test``."""

from __future__ import annotations

import json

import click
from rich.table import Table

from mlbench.cli.output import esc, make_console, text


@click.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List every registered plugin (kind, name, package, version)."""
    if ctx.invoked_subcommand is not None:
        return
    from mlbench.api import list_plugins

    listed = list_plugins(errors=True)
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    rows = [r for r in listed if r["kind"] != "error"]
    errors = [r for r in listed if r["kind"] == "error"]
    console = make_console()
    table = Table(title="mlbench plugins")
    for col in ("kind", "name", "plugin", "package", "version", "summary"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(text(v) for v in (r["kind"], r["name"], r["plugin"], r["package"] or "-", r["version"] or "-",
                                            r.get("summary") or "")))
    console.print(table)
    for e in errors:
        console.print(f"[red]plugin '{esc(e['plugin'])}' ({esc(e['package'] or 'unknown package')}) failed:[/red] "
                      f"{esc(e['error'])}")


@plugins.command("test")
@click.argument("plugin")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def plugins_test_command(plugin, as_json):
    """Conformance check of PLUGIN (an entry-point name): every item it registers, on CPU."""
    from mlbench.api import test_plugin
    from mlbench.conformance import FAIL, PASS

    report = test_plugin(plugin)
    if as_json:
        click.echo(json.dumps({"plugin": report.plugin, "package": report.package, "version": report.version,
                               "passed": report.passed, "results": [r.as_dict() for r in report.results]}, indent=2))
    else:
        table = Table(title=esc(f"plugin '{report.plugin}' ({report.package or '?'} {report.version or ''})"))
        for column in ("kind", "name", "result", "seconds", "details"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        for r in report.results:
            style = {PASS: "green", FAIL: "bold red"}.get(r.status, "yellow")
            table.add_row(text(r.kind), text(r.name), text(r.status, style), f"{r.seconds:.2f}",
                          text("\n".join(r.checks) if r.status == PASS else r.detail))
        make_console().print(table)
        counts = report.counts()
        click.echo(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    if not report.passed:
        raise SystemExit(1)
