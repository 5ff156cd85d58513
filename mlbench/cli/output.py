"""How every command prints with rich: the one place that decides wrapping, widths and markup.

What a user copies must come out whole. Plain lines are never wrapped or cropped by rich
(``soft_wrap``): off a terminal (a log, a pipe, CliRunner) rich would otherwise break them at 80
columns or at ``COLUMNS``, and on a terminal a newline rich inserts into a path breaks it when
copied (the terminal folds a long line itself). A table never truncates or ellipsises a cell: a
column is never narrower than its longest word (its longest cell when it does not wrap); off a
terminal a table is as wide as its cells need, on a terminal it may wrap cells at spaces.

Strings from files, plugins or the user (entry, label and plugin names, paths, messages) go to
rich through :func:`esc` or as :class:`rich.text.Text` (:func:`text`), never as markup: a name
``[/oops]`` would crash rich and ``[reverse]x[/reverse]`` would turn into styling.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

UNLIMITED = 1_000_000  # the width a table is measured at: as wide as its cells need


def esc(value: Any) -> str:
    """``value`` as a string rich prints literally inside markup."""
    return escape(str(value))


def text(value: Any, style: str = "") -> Text:
    """A table cell or line that is never read as markup (None: empty, as rich shows it)."""
    return Text("" if value is None else str(value), style=style)


def fit_table(console: Console, table: Table) -> Table:
    """Give every column the width its longest word needs; off a terminal, the whole table its natural width."""
    wide = console.options.update_width(UNLIMITED)
    for column in table.columns:
        need = 0
        for cell in (column.header, *column.cells):
            measured = Measurement.get(console, wide, cell)
            need = max(need, measured.maximum if column.no_wrap else measured.minimum)
        column.min_width = max(column.min_width or 0, need)
    if not console.is_terminal:
        table.width = Measurement.get(console, wide, table).maximum
    return table


class CliConsole(Console):
    """A rich Console that never wraps a line and fits its tables (module docstring)."""

    def __init__(self, *, stderr: bool = False) -> None:
        super().__init__(stderr=stderr, soft_wrap=True)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        for obj in objects:
            if isinstance(obj, Table):
                fit_table(self, obj)
        super().print(*objects, **kwargs)

    def say(self, message: Any) -> None:
        """One literal line (a library's progress message): no markup, no highlighting."""
        super().print(str(message), markup=False, highlight=False)


def make_console(*, stderr: bool = False) -> CliConsole:
    """The console a command prints with (stdout, or stderr for progress bars)."""
    return CliConsole(stderr=stderr)


# -- lines two commands print ----------------------------------------------------------------------
def p_text(p: Any) -> str:
    """A p-value as read: three decimals, or "<0.001" rather than a misleading 0.000."""
    if p is None or p != p:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def print_submitted(console: CliConsole, submitted: Any, then: str) -> None:
    """What --no-wait queued, and the commands that follow (literal lines: they hold paths to copy)."""
    new = [t.job.job_id for t in submitted.tasks if not t.reused]
    old = [t.job.job_id for t in submitted.tasks if t.reused]
    if new:
        console.say(f"submitted {len(new)} SLURM job(s): {' '.join(new)}")
    if old:
        console.say(f"still queued or running from before: {' '.join(old)}")
    console.say(f"not waiting for them (every submission is in {submitted.record_file}); {then}")


def ranked_by(profile: Any) -> str:
    """The line saying how the entries below are ordered: 'entries best first by macro auprc, then auc, then f1
    (scoring profile cxr-lt)'."""
    return f"entries best first by macro {', then '.join(profile.metrics)} (scoring profile {profile.name})"


def _number(x: Any, digits: int = 3) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"  # x != x: NaN


def print_published_comparison(console: Any, comparison: Any, value_header: str) -> None:
    """A comparison with the published board (``compare`` of a run, ``score --against published``): its notes,
    then one table per entry, entries best first by the profile, labels by test positives, the verdict from the
    interval alone."""
    for note in comparison.notes:
        console.print(text(note, "bold red" if note.startswith("NOT COMPARABLE") else ""))
    console.say(ranked_by(comparison.profile))
    for entry, rows in comparison.rows.groupby("entry", sort=False):
        table = Table(title=esc(f"{entry} vs published {rows['reference'].iloc[0]} ({comparison.published_variant}), "
                                f"{comparison.metric}; labels by test positives"))
        for column in ("label", "n pos", value_header, "95% CI", "published", "delta", "verdict"):
            table.add_column(column, justify="left" if column in ("label", "verdict") else "right")
        for r in rows.sort_values("n_positive", ascending=False, kind="stable").itertuples(index=False):
            style = {"beats published": "green", "below published": "red"}.get(r.verdict, "")
            interval = ("-" if r.ci_low is None or r.ci_high is None or r.ci_low != r.ci_low or r.ci_high != r.ci_high
                        else f"[{r.ci_low:.3f}, {r.ci_high:.3f}]")
            table.add_row(text(r.label), "-" if r.n_positive is None else str(r.n_positive), _number(r.value),
                          text(interval), _number(r.published), _number(r.delta), text(r.verdict, style))
        console.print(table)
