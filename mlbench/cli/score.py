"""``mlbench score FILE``: predictions from any framework, scored as a run is scored.

Thin: parses the options, calls :func:`mlbench.api.score_predictions` and prints the macro rows
(and, with ``--against published``, the comparison with the benchmark's published board).
"""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.table import Table

from mlbench.cli.output import esc, make_console, print_published_comparison, ranked_by, text
from mlbench.foundations.options import SEED_MAX
from mlbench.results.profiles import order_metrics, profile_of, sort_entries

SHOWN_METRICS = ("auc", "auprc", "f1", "f1_pos", "hamming")


def _cell(value, low=None, high=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if low is None or high is None or any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


@click.command("score")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--benchmark", required=True, help="The benchmark to score against (`mlbench plugins` lists them).")
@click.option("--csv", "csv_path", required=True, type=click.Path(path_type=Path),
              help="The label file (the benchmark's dataset format); the split is recomputed from it.")
@click.option("--images", type=click.Path(path_type=Path),
              help="Its image folder [default: the label file's folder]; given, test images the predictions lack "
                   "are accepted when their files cannot be read.")
@click.option("--n-boot", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Patient-bootstrap replicates for the 95% CIs (0: none).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, SEED_MAX), help="Bootstrap seed.")
@click.option("--against", type=click.Choice(["published"]), help="Also compare with the published board.")
@click.option("--metric", help="The metric compared with --against [default: auc].")
@click.option("--variant", help="The published variant compared with --against [default: the benchmark's recipe].")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the rows as JSON.")
def score_command(file, benchmark, csv_path, images, n_boot, seed, against, metric, variant, json_path):
    """Score FILE (image_id, label, probability[, entry, split]; CSV or parquet) on BENCHMARK's test split."""
    from mlbench.api import score_predictions

    compared = {k: v for k, v in (("metric", metric), ("variant", variant)) if v is not None}
    if compared and against is None:
        raise click.UsageError(f"--{next(iter(compared))} goes with --against published")
    result = score_predictions(file, benchmark, csv_path, images=images, n_boot=n_boot, seed=seed, against=against,
                               json_file=json_path, **compared)
    console = make_console()
    console.say(f"scored {result.file} as run {result.run_id}: {len(result.entries)} entries on {result.n_test} "
                f"test images of {result.benchmark} ({result.dataset_kind} data, split {result.split_hash[:12]})")
    profile = profile_of({}, result.benchmark)  # a file of predictions is ranked as its benchmark ranks
    rows = sort_entries(result.rows[result.rows["label"] == "__global__"], profile)
    shown = order_metrics(SHOWN_METRICS, profile)
    table = Table(title=esc(f"{result.benchmark}: macro scores with 95% CIs ({n_boot} patient-bootstrap replicates, "
                            f"seed {seed}); {ranked_by(profile)}"))
    table.add_column("entry", no_wrap=True)
    for metric_name in shown:
        table.add_column(metric_name, justify="right", no_wrap=True)
    for entry, group in rows.groupby("entry", sort=False):
        by_metric = {r.metric: r for r in group.itertuples(index=False)}
        table.add_row(text(entry), *[_cell(by_metric[m].value, by_metric[m].ci_low, by_metric[m].ci_high)
                                     if m in by_metric else "-" for m in shown])
    console.print(table)
    if result.tuned:
        console.say("the rows include *_tuned metrics at thresholds fitted on the file's validation rows")
    for note in result.notes:
        console.say(note)
    if result.comparison is not None:
        comparison = result.comparison
        print_published_comparison(console, comparison, "score")
        console.print(f"labels beating published (published value below the 95% CI): {len(comparison.beats())}"
                      + ("" if comparison.comparable else " — none counted: not comparable"))
    if json_path is not None:
        console.say(f"wrote {json_path}")
