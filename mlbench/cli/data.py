"""Data commands: ``mlbench datasets inspect``, ``mlbench split``, ``mlbench labels tree``.

Each command parses its options, calls one function of :mod:`mlbench.api` (``inspect_dataset``,
``split_dataset``, ``label_tree``) and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.tree import Tree

from mlbench.cli.output import CliConsole, esc, make_console, text
from mlbench.data.splits import SPLITS
from mlbench.foundations.options import parse_pairs

# ---------------------------------------------------------------- printing


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _print_skips(console: CliConsole, skipped: dict[str, dict[str, Any]], title: str) -> None:
    table = Table(title=esc(title))
    for col in ("reason", "count", "examples"):
        table.add_column(col)
    for reason, entry in skipped.items():
        examples = "; ".join(f"{e['item']}" + (f" ({e['detail']})" if e["detail"] else "")
                             for e in entry["examples"][:3])
        table.add_row(text(reason), f"{entry['count']:,}", text(examples))
    console.print(table)


def _print_split(console: CliConsole, b: dict[str, Any]) -> None:
    table = Table(title=esc(f"{b.get('benchmark')} split"))
    for col in ("", *SPLITS):
        table.add_column(col, justify="right")
    table.add_row("images", *(f"{b['sizes'][s]:,}" for s in SPLITS))
    table.add_row("share", *(_pct(b["fractions"][s]) for s in SPLITS))
    patients = b.get("patients_per_split") or b.get("patients")
    table.add_row("patients", *(f"{patients[s]:,}" for s in SPLITS))
    console.print(table)
    prev, alloc = b["max_prevalence_deviation"], b["max_allocation_deviation"]
    console.say(f"max per-label prevalence deviation: {prev['points']:.2f} points ({prev['label']}, {prev['split']}); "
                f"max allocation deviation: {alloc['points']:.2f} points ({alloc['label']}, {alloc['split']})")
    missing = b["labels_missing_from_a_split"]
    console.print("every label present in every split" if not missing else
                  f"[yellow]labels missing from a split:[/yellow] {esc(missing)}")


def _print_imbalance(console: CliConsole, name: str, imbalance: dict[str, dict[str, Any]]) -> None:
    table = Table(title=esc(f"{name}: multilabel imbalance"))
    for col in ("", "images", "MaxIR", "MeanIR", "CVIR", "SCUMBLE", "cardinality", "density", "absent labels"):
        table.add_column(col, justify="right")
    for part, r in imbalance.items():
        table.add_row(text(part), f"{r['n_instances']:,}", f"{r['max_ir']:.1f}", f"{r['mean_ir']:.1f}",
                      f"{r['cvir']:.3f}", f"{r['scumble']:.4f}", f"{r['cardinality']:.3f}", f"{r['density']:.4f}",
                      str(len(r["absent_labels"])))
    console.print(table)


def print_options(console: CliConsole, report: dict[str, Any]) -> None:
    """The options the dataset declares, with the value this report was made with."""
    if not report.get("options"):
        console.say(f"dataset {report['dataset']} takes no --dataset-option")
        return
    table = Table(title=esc(f"{report['dataset']}: --dataset-option KEY=VALUE"))
    for col in ("option", "type", "value", "default", "allowed", "changes labels", "what it does"):
        table.add_column(col)
    for o in report["options"]:
        allowed = ", ".join(map(str, o["choices"])) if o["choices"] else (f">= {o['minimum']:g}"
                                                                        if o["minimum"] is not None else "")
        refused = "; ".join(f"{k}: {v}" for k, v in o["refused"].items())
        table.add_row(text(o["name"]), o["type"], text(str(o["value"])), text(str(o["default"])), text(allowed),
                      "yes" if o["changes_labels"] else "no", text(o["help"] + (f" (not yet: {refused})"
                                                                                 if refused else "")))
    console.print(table)


def print_inspect_report(report: dict[str, Any], console: CliConsole) -> None:
    if "csv" not in report:  # no label file given: the options only
        print_options(console, report)
        return
    console.print(f"[bold]{esc(report['dataset'])}[/bold] "
                  + esc(f"{report['csv']} ({report['kind']}, sha256 {report['csv_sha256'][:12]}…)"))
    profile = report.get("profile") or {}
    # A dataset's profile is optional and free-form: show the facts it has.
    if "rows" in profile:
        console.say(f"rows {profile['rows']:,}; patients {profile.get('patients', 0):,}; projections "
                    + ", ".join(f"{k} {v:,}" for k, v in profile.get("projections", {}).items()))
    if profile.get("patients_per_projection"):
        console.say("patients per projection: "
                    + ", ".join(f"{k} {v:,}" for k, v in profile["patients_per_projection"].items()))
    if "skipped_by_reason" in profile:
        console.say("whole file (all projections): "
                    + (", ".join(f"{k} {v:,}" for k, v in profile["skipped_by_reason"].items()) or "no problem rows"))
    if profile.get("unknown_labels"):
        console.say("unknown labels: " + ", ".join(f"'{k}' ×{v}" for k, v in profile["unknown_labels"].items()))
    console.say(f"kept {report['images_kept']:,} images of {report['patients_kept']:,} patients "
                f"({report['distinct_findings']} distinct findings; {report['images_without_findings']:,} "
                f"images with no finding left); read in {report['read_seconds']:.1f} s")
    _print_skips(console, report["skipped"], "skipped rows and labels")
    if report.get("options"):
        print_options(console, report)
    for name, value in (report.get("facts") or {}).items():  # what the reader counted (cells, dropped labels)
        console.say(f"{name}: {value if isinstance(value, str) else json.dumps(value, default=str)}")
    for b in report["benchmarks"]:
        console.rule(esc(f"{b['benchmark']} {b['version']} ({b['n_labels']} labels)"))
        console.say(f"images kept {b['images_kept']:,} ({b['images_without_benchmark_label']:,} without a benchmark "
                    f"label dropped); patients {b['patients']:,}; split hash {b['split_hash']}")
        _print_split(console, b)
        _print_imbalance(console, b["benchmark"], b["imbalance"])
        if not b["selection"]:  # no selection rule declared: nothing to set against the pinned labels
            continue
        table = Table(title=esc(f"{b['benchmark']}: selection rule vs pinned labels"))
        for col in ("rule", "labels", "same set", "only in rule", "only pinned"):
            table.add_column(col)
        for s in b["selection"]:
            table.add_row(text(s["rule"]), str(s["n_rule"]), "yes" if s["same_set"] else "no",
                          text(_short(s["only_rule"])), text(_short(s["only_pinned"])))
        console.print(table)


def _short(items: list[str], n: int = 6) -> str:
    return ", ".join(items[:n]) + (f" … (+{len(items) - n})" if len(items) > n else "") if items else "-"


# ---------------------------------------------------------------- commands


@click.group("datasets")
def datasets() -> None:
    """Inspect dataset sources."""


@datasets.command("inspect")
@click.argument("dataset")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None,
              help="The dataset's label file (without it: only the options DATASET declares).")
@click.option("--images", type=click.Path(path_type=Path), default=None,
              help="Image root (default: the CSV's folder; images are not opened).")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE",
              help="Option the dataset declares (repeatable), e.g. policy=zeros.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect_command(dataset: str, csv_path: Path | None, images: Path | None, dataset_option: tuple[str, ...],
                    as_json: bool) -> None:
    """Validation report: rows, skips by reason, splits and imbalance of every benchmark of DATASET."""
    from mlbench.api import inspect_dataset

    report = inspect_dataset(dataset, csv_path, images=images,
                             dataset_options=parse_pairs(dataset_option, "--dataset-option") or None)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        print_inspect_report(report, make_console())


@click.command("split")
@click.argument("benchmark")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), required=True, help="The dataset's label file.")
@click.option("--images", type=click.Path(path_type=Path), default=None, help="Image root (default: the CSV's folder).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for split.parquet, labels.json, summary.json.")
@click.option("--seed", type=int, default=None, help="Split seed (default: the benchmark's).")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE",
              help="Option the dataset declares (repeatable), e.g. policy=zeros.")
def split_command(benchmark: str, csv_path: Path, images: Path | None, out_dir: Path, seed: int | None,
                  dataset_option: tuple[str, ...]) -> None:
    """Patient-grouped stratified train/val/test split of BENCHMARK; prints its hash and timings."""
    from mlbench.api import split_dataset

    summary = split_dataset(benchmark, csv_path, out_dir, images=images, seed=seed,
                            dataset_options=parse_pairs(dataset_option, "--dataset-option") or None)
    console = make_console()
    console.print(f"[bold]{esc(summary['benchmark'])} {esc(summary['benchmark_version'])}[/bold] "
                  f"seed {summary['seed']}: "
                  f"{summary['n_images']:,} images, {summary['n_patients']:,} patients, {summary['n_labels']} labels "
                  f"({summary['images_without_benchmark_label']:,} images without a benchmark label dropped)")
    _print_split(console, summary)
    seconds = summary["seconds"]
    console.print(f"time: read {seconds['read']:.1f} s, labels {seconds['label_matrix']:.1f} s, "
                  f"stratify {seconds['stratify']:.1f} s, total {seconds['total']:.1f} s")
    console.say(f"wrote {', '.join(summary['files'].values())}")
    console.print(f"split hash [bold]{esc(summary['split_hash'])}[/bold]")


@click.group("labels")
def labels() -> None:
    """Label hierarchies of datasets."""


def _subtree(found, label: str, seen_path: tuple[str, ...] = ()) -> Tree:
    note = found.describe(label)
    node = Tree(f"[bold]{esc(label)}[/bold]" + (f" [dim]{esc(note)}[/dim]" if note else ""))
    for child in found.tree.children.get(label, ()):
        if child not in seen_path:  # a DAG has no cycles, but a bad tree must not hang the command
            node.children.append(_subtree(found, child, seen_path + (label,)))
    return node


@labels.command("tree")
@click.argument("label", required=False)
@click.option("--dataset", help="Dataset whose label tree to show [default: the one dataset that has a tree].")
def tree_command(label: str | None, dataset: str | None) -> None:
    """Show the label tree (or the subtree under LABEL, matched case-insensitively)."""
    from mlbench.api import label_tree

    found = label_tree(dataset, label)
    console = make_console()
    if found.label is None:
        top = Tree(f"[bold]{esc(found.dataset)}[/bold] label tree")
        for root in found.tree.roots:
            top.children.append(_subtree(found, root))
        console.print(top)
        return
    console.print(_subtree(found, found.label))
    console.say(f"parents: {', '.join(found.parents) if found.parents else '(a root)'}")
