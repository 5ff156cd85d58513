"""``mlbench evaluate RUN_DIR --on BENCHMARK``: a trained run scored on another benchmark's test split.

Thin: parses the options, calls :func:`mlbench.api.evaluate_run` and prints the shared labels, the
external values with their CIs, what was skipped and where the files are.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import click
from rich.table import Table

from mlbench.cli.output import esc, make_console, text
from mlbench.foundations.options import parse_pairs
from mlbench.training.progress import MODES


def _fmt(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


@click.command("evaluate")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--on", "on", required=True, metavar="BENCHMARK", help="The other benchmark whose test split is scored.")
@click.option("--demo", is_flag=True, help="Its synthetic demo corpus (results are labelled synthetic).")
@click.option("--demo-option", "demo_option", multiple=True, metavar="KEY=VALUE",
              help="Option for its demo corpus generator (repeatable), e.g. n_patients=60.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Its label file.")
@click.option("--images", type=click.Path(path_type=Path), help="Its image folder.")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE",
              help="Option its dataset declares (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per model call [default: the recipe's x 4].")
@click.option("--workers", type=click.IntRange(min=1), help="Threads preparing images [default: all cores].")
@click.option("--progress", type=click.Choice(MODES), default="auto", show_default=True,
              help="Bars on a terminal, lines elsewhere (auto), or quiet.")
def evaluate_command(run_dir, on, demo, demo_option, csv_path, images, dataset_option, device, batch_size, workers,
                     progress):
    """Score RUN_DIR on BENCHMARK's test split for the labels the two benchmarks share (external validation)."""
    from mlbench.api import evaluate_run

    result = evaluate_run(run_dir, on=on, csv=csv_path, images=images, demo=demo,
                          demo_options=parse_pairs(demo_option, "--demo-option") or None,
                          dataset_options=parse_pairs(dataset_option, "--dataset-option") or None, device=device,
                          batch_size=batch_size, workers=workers, progress=progress)
    record, board = result.record, result.leaderboard
    console = make_console()
    for note in record.get("notes", []):
        console.print(text(note, "bold red" if note.startswith("SYNTHETIC") else ""))
    if result.reused:
        console.say(f"reused: {result.record_file} was made from the same run, label file and options")
    elif result.chunks_reused:
        console.say(f"resumed: {result.chunks_reused} of {result.chunks} chunks were finished before")
    entry = record.get("headline_entry")
    table = Table(title=esc(f"{record['run_benchmark']} run {record['run_id']} on {record['benchmark']}'s test split "
                            f"({record['n_scored']} images, {record['test_split']}): AUC of {entry}"))
    for column in ("label", "as", "finding", "relation", "n pos", "AUC", "95% CI"):
        table.add_column(column, justify="right" if column in ("n pos", "AUC") else "left")
    auc = board[(board["metric"] == "auc") & (board["entry"] == entry)].set_index("label")
    for pair in record["shared"]:
        row = auc.loc[pair["label"]] if pair["label"] in auc.index else None
        cells = ("-", "-") if row is None else (_fmt(row["value"]), f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]")
        table.add_row(text(pair["label"]), text(pair["target_label"]), text(pair["term"]), text(pair["relation"]),
                      str(pair.get("n_positive") if pair.get("n_positive") is not None else "-"), *cells)
    console.print(table)
    console.say(f"labels not shared: {len(record['not_shared'])} (each with its reason in {result.record_file})")
    counts = record.get("skipped", {}).get("counts", {})
    if counts:
        shown = ", ".join(f"{k} {v}" for k, v in Counter(counts).most_common())
        console.say(f"skipped: {shown}")
    console.say(f"wrote {result.record_file.parent} (rows of scope {record['scope']}); `mlbench compare {run_dir}` "
                "and `mlbench report` show internal vs external")
