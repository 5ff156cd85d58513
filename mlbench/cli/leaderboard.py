"""``mlbench leaderboard show``, ``mlbench compare`` and ``mlbench submit``.

Thin: each command parses its options, calls one function of :mod:`mlbench.api`
(``show_leaderboard``, ``compare_run``, ``submit_run``) and prints the result. Reading and comparing
leaderboards imports no torch; ``leaderboard show`` imports no pandas either (it prints the pyarrow
table ``show_leaderboard(..., arrow=True)`` returns: docs/performance.md, issue 24).
"""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.table import Table

from mlbench.cli.output import esc, make_console, p_text, print_published_comparison, ranked_by, text
from mlbench.demo import is_synthetic
from mlbench.results.leaderboard import METRICS, SOURCES
from mlbench.results.profiles import get_profile, known_profiles, ranking_metrics


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def _ci(low, high) -> str:
    if low is None or high is None or any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return "-"
    return f"[{low:.3f}, {high:.3f}]"


@click.group("leaderboard")
def leaderboard_group() -> None:
    """Read leaderboard files (the published baselines and submitted runs)."""


@leaderboard_group.command("show")
@click.argument("benchmark")
@click.option("--label", help="A benchmark label [default: __global__, the macro row].")
@click.option("--metric", help=f"One of {', '.join(METRICS)} (or cam_...) [default: the profile's first].")
@click.option("--variant", help="crop+aug, crop, none ... [default: every variant].")
@click.option("--source", type=click.Choice(SOURCES), help="Only published or only run rows.")
@click.option("--file", "file", type=click.Path(path_type=Path),
              help="Leaderboard file [default: your leaderboards/BENCHMARK.parquet, else the published board].")
@click.option("--profile", metavar="NAME",
              help=f"The scoring profile ranking the entries: {known_profiles()} [default: the benchmark's].")
def show_command(benchmark, label, metric, variant, source, file, profile):
    """Show BENCHMARK's leaderboard: one label and metric per entry, best first (ties by the profile's next)."""
    from mlbench.api import show_leaderboard

    given = {k: v for k, v in (("metric", metric), ("profile", profile)) if v is not None}
    shown = show_leaderboard(benchmark, label=label, variant=variant, source=source, file=file, arrow=True, **given)
    about = {key.decode(): value.decode() for key, value in shown.schema.metadata.items()}
    path, metric, profile = about["file"], about["metric"], get_profile(about["profile"])
    ties = ", then ".join(ranking_metrics(profile, metric)[1:])
    table = Table(title=esc(f"{benchmark}: {label or '__global__'} {metric}, best first, ties by {ties} (scoring "
                            f"profile {profile.name}) ({path})"))
    rows = shown.to_pylist()  # a missing value is None here (pandas would give NaN): the cells print both as "-"
    kinds = [r["dataset_kind"] for r in rows]
    mixed = len({k for k in kinds if k is not None}) > 1 or any(is_synthetic(k) for k in kinds)
    columns = ["variant", "entry", metric, "95% CI", "n pos", "source"] + (["data"] if mixed else [])
    for column in columns:
        table.add_column(column, justify="right" if column in (metric, "n pos") else "left",
                         no_wrap=column in ("variant", "entry", metric, "95% CI"))
    for r in rows:
        n_pos = r["n_positive"]
        cells = [text(r["variant"]), text(r["entry"]), _fmt(r["value"]), text(_ci(r["ci_low"], r["ci_high"])),
                 "-" if n_pos is None or (isinstance(n_pos, float) and math.isnan(n_pos)) else str(int(n_pos)),
                 text(f"{r['source']} {r['run_id']}")]
        if mixed:
            cells.append(text(r["dataset_kind"], "yellow" if is_synthetic(r["dataset_kind"]) else ""))
        table.add_row(*cells)
    make_console().print(table)


@click.command("compare")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--against", default="published", show_default=True,
              help="'published' (the benchmark's published rows) or another RUN_DIR (paired differences).")
@click.option("--variant", help="Published variant to compare with [default: the run's].")
@click.option("--metric", help="The metric compared with the published board, or shown of two runs' "
                                "differences [default: the profile's first; of two runs, the profile's metrics].")
@click.option("--file", "file", type=click.Path(path_type=Path), help="Published leaderboard file [default: found].")
@click.option("--png", type=click.Path(path_type=Path), help="Write per-label bars (run with 95% CI vs published).")
@click.option("--entry", help="Entry to draw in the PNG [default: ctp, else the run's best].")
@click.option("--n-boot", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Replicates, when the run's leaderboard has no intervals.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the comparison as JSON.")
@click.option("--profile", metavar="NAME",
              help=f"The scoring profile ranking the entries: {known_profiles()} [default: the run's].")
def compare_command(run_dir, against, variant, metric, file, png, entry, n_boot, json_path, profile):
    """Per-label deltas of RUN_DIR vs the published baseline (or paired differences vs another RUN_DIR)."""
    from mlbench.api import compare_run

    ranking = {"profile": profile} if profile is not None else {}
    if against != "published":  # two runs: every metric is compared, --metric picks the one shown
        given = {k: v for k, v in (("variant", variant), ("leaderboard_file", file), ("png_file", png),
                                   ("png_entry", entry)) if v is not None}
        _print_paired(compare_run(run_dir, against=against, n_boot=n_boot, json_file=json_path, **given, **ranking),
                      metric)
        return

    chosen = {"metric": metric} if metric is not None else {}
    result = compare_run(run_dir, against=against, variant=variant, leaderboard_file=file, n_boot=n_boot,
                         json_file=json_path, png_file=png, png_entry=entry, **chosen, **ranking)
    console = make_console()
    print_published_comparison(console, result, "run")
    beats = result.beats()
    console.print(f"labels beating published (published value below the run's 95% CI): {len(beats)}"
                  + ("" if result.comparable else " — none counted: not comparable"))
    for external in result.external:
        _print_external(console, external)
    if png:
        console.say(f"wrote {png}")


def _print_external(console, ev) -> None:
    """Internal vs external per shared label for the headline entry (``mlbench evaluate``'s rows)."""
    metric = ev.metric.upper()
    table = Table(title=esc(f"internal vs {ev.scope}: {ev.entry} {metric} per shared label ({ev.n_images} external "
                            f"test images, {ev.test_split})"))
    for column in ("label", "as", "relation", f"internal {metric}", "95% CI", f"external {metric}", "95% CI ",
                   "difference", "verdict"):
        table.add_column(column, justify="right" if metric in column or column == "difference" else "left")
    for r in ev.of().itertuples(index=False):
        table.add_row(text(r.label), text(r.target_label), text(r.relation), _fmt(r.internal),
                      text(_ci(r.internal_ci_low, r.internal_ci_high)), _fmt(r.external),
                      text(_ci(r.external_ci_low, r.external_ci_high)), _fmt(r.difference), text(r.verdict))
    console.print(table)
    for note in ev.notes:
        console.print(text(note, "bold red" if note.startswith("SYNTHETIC") else ""))


def _print_paired(result, metric: str | None) -> None:
    """Per entry, the macro and group differences of ``metric``, else of the profile's metrics in its order."""
    console = make_console()
    for note in result.notes:
        console.print(text(note, "bold red" if note.startswith("SYNTHETIC") else ""))
    metrics = [metric] if metric is not None else list(result.profile.metrics)
    if metric is None:
        console.say(f"metrics of the scoring profile {result.profile.describe()}")
    for entry, rows in result.rows.groupby("entry", sort=False):
        shown = rows[rows["metric"].isin(metrics) & (rows["scope"] != "label")]  # rows: the profile's order
        table = Table(title=esc(f"{entry}: {result.run_b} minus {result.run_a}, {', '.join(metrics)} "
                                "(macro and frequency groups)"))
        for column in ("metric", "scope", "name", "difference", "95% CI", "p (Holm)", "verdict"):
            table.add_column(column, justify="right" if column in ("difference", "95% CI", "p (Holm)") else "left")
        for r in shown.itertuples(index=False):
            style = {"helps": "green", "hurts": "red"}.get(r.verdict, "")
            table.add_row(text(r.metric), text(r.scope), text(r.name), _fmt(r.difference, 4),
                          text(_ci(r.ci_low, r.ci_high)), p_text(r.p_adjusted), text(r.verdict, style))
        console.print(table)
    console.print("helps / hurts: the 95% CI excludes 0 and the p-value, Holm-adjusted within each entry, scope "
                  "and metric, is below 0.05")


@click.command("submit")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--leaderboard", "leaderboard_file", type=click.Path(path_type=Path),
              help="Leaderboard file to append to [default: your leaderboards/BENCHMARK.parquet].")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The dataset's label file (needed unless it lies inside RUN_DIR, as the demo's does: "
                   "paths stored in a run directory are followed only inside it).")
@click.option("--images", type=click.Path(path_type=Path, file_okay=False), help="Its image folder (with --csv).")
def submit_command(run_dir, leaderboard_file, csv_path, images):
    """Validate RUN_DIR (recompute split, coverage, every metric) and append it to a leaderboard."""
    from mlbench.api import submit_run
    from mlbench.judging.submit import SubmissionError

    if (csv_path is None) != (images is None):
        raise click.UsageError("give --csv and --images together")
    console = make_console()
    try:
        result = submit_run(run_dir, leaderboard_file, csv=csv_path, images=images)
    except SubmissionError as exc:
        problems = exc.problems or [str(exc)]
        if len(problems) > 1:  # every reason listed; the closing Error line names the first
            console.print(f"[bold red]refused[/bold red] {esc(run_dir)}: {len(problems)} problems")
            for problem in problems:
                console.say(f"  - {problem}")
        more = f" (and {len(problems) - 1} more, listed above)" if len(problems) > 1 else ""
        raise click.ClickException(f"{run_dir}: submission refused: {problems[0]}{more}") from None
    for check in result.validation.passed:
        console.say(f"  ok: {check}")
    for note in result.validation.left_out:
        console.say(f"  left out: {note}")
    console.print(f"[green]accepted[/green] run {esc(result.run_id)}: {result.rows_appended} rows appended to "
                  f"{esc(result.leaderboard)} ({result.rows_in_file} rows now)")
