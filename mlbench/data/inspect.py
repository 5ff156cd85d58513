"""What ``mlbench datasets inspect`` and ``mlbench split`` compute: plain dicts tests call directly.

Datasets and benchmarks come from the plugin registry, so any dataset plugin gets these reports.
A dataset may offer optional extras that the report uses when present: ``profile(source) -> dict``
(whole-file facts), ``expand_findings(findings)`` (a label hierarchy) and ``label_tree()`` (an
object with ``roots``, ``children`` and ``describe(label)``).
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbench.contracts.benchmark import Benchmark
from mlbench.data import DataSource, Records, Skip
from mlbench.data.datasetoptions import check_dataset_options, declared_options, label_options
from mlbench.data.imbalance import imbalance_by_split
from mlbench.data.selection import compare_selection, count_labels, select_labels
from mlbench.data.splits import LABELS_FILE, SPLIT_FILE, SUMMARY_FILE, BenchmarkSplit, SplitError, split_benchmark
from mlbench.foundations.errors import UserError
from mlbench.contracts.registry import Registry, get_registry

SKIP_EXAMPLES = 5


def skip_summary(skips: list[Skip], examples: int = SKIP_EXAMPLES) -> dict[str, dict[str, Any]]:
    """Per reason: how many, and the first few items with their detail."""
    out: dict[str, dict[str, Any]] = {}
    for skip in skips:
        entry = out.setdefault(skip.reason, {"count": 0, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < examples:
            entry["examples"].append(skip.as_dict())
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["count"]))


def benchmarks_of(registry: Registry, dataset: str) -> list[Benchmark]:
    benches = [registry.create("benchmark", name) for name in registry.names("benchmark")]
    return [b for b in benches if b.dataset == dataset]


def top_level_labels(tree_obj) -> set[str]:
    """Standalone roots (no children) and the children of every root: a tree's most general labels."""
    top: set[str] = set()
    for root in tree_obj.roots:
        kids = tree_obj.children.get(root, ())
        top.update(kids if kids else (root,))
    return top


def selection_report(records: Records, benchmark: Benchmark, expand=None, tree_obj=None) -> list[dict[str, Any]]:
    """How the generic selection rule, in its variants, compares with the benchmark's pinned labels.

    With a label hierarchy (``expand``), counts are also taken after expansion to ancestors; with a
    tree, also restricted to its top-level labels (on PadChest that variant finds Table 10's 54
    plus three more).
    """
    n = benchmark.label_rule_min_images
    if n is None:  # the benchmark declares no selection rule: nothing to compare its labels with
        return []
    findings = records.frame["findings"]
    raw = count_labels(findings)
    variants = [
        (f"raw labels, >= {n} images overall", raw, "all"),
        (f"raw labels, >= {n} images in a 20% test split", raw, "test"),
    ]
    if expand is not None:
        expanded = count_labels(expand(f) for f in findings)
        variants.append((f"labels expanded to ancestors, >= {n} images overall", expanded, "all"))
        if tree_obj is not None:
            top = top_level_labels(tree_obj)
            variants.append((f"top-level tree labels, expanded, >= {n} images overall",
                             {k: v for k, v in expanded.items() if k in top}, "all"))
    out = []
    for name, counts, counted_on in variants:
        rule = select_labels(counts, min_count=n, counted_on=counted_on, test_fraction=0.2)
        comparison = compare_selection(rule, benchmark.labels).as_dict()
        out.append({"rule": name, **comparison})
    return out


def split_of(records: Records, benchmark: Benchmark, source: DataSource | None, seed: int | None) -> BenchmarkSplit:
    """:func:`split_benchmark`, its refusal naming the label file it was read from."""
    try:
        return split_benchmark(records, benchmark, seed=seed)
    except SplitError as exc:
        if source is None:
            raise
        raise SplitError(f"{source.csv}: {exc}") from None


def benchmark_report(records: Records, benchmark: Benchmark, expand=None, tree_obj=None,
                     seed: int | None = None, source: DataSource | None = None) -> dict[str, Any]:
    """Kept images, the split summary, imbalance per split and the rule comparison of one benchmark."""
    split = split_of(records, benchmark, source, seed)
    s = split.summary
    imbalance = {name: r.as_dict()
                 for name, r in imbalance_by_split(split.Y, split.labels, split.splits, split.known).items()}
    return {
        "benchmark": benchmark.name,
        "version": benchmark.version,
        "n_labels": len(split.labels),
        "labels": list(split.labels),
        "images_kept": s["n_images"],
        "images_without_benchmark_label": s["images_without_benchmark_label"],
        "patients": s["n_patients"],
        "sizes": s["sizes"],
        "fractions": s["fractions"],
        "patients_per_split": s["patients"],
        "max_prevalence_deviation": s["max_prevalence_deviation"],
        "max_allocation_deviation": s["max_allocation_deviation"],
        "labels_missing_from_a_split": s["labels_missing_from_a_split"],
        "split_hash": s["split_hash"],
        "seconds": split.seconds,
        "imbalance": imbalance,
        "selection": selection_report(records, benchmark, expand, tree_obj),
    }


def dataset_options_report(dataset_name: str, *, registry: Registry | None = None,
                           options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The options ``dataset_name`` declares, each with its value under ``options`` (``datasets inspect`` without --csv)."""
    registry = registry or get_registry()
    resolved = check_dataset_options(registry, dataset_name, options)
    return {"dataset": dataset_name, "options": [{**spec.describe(), "value": resolved[name]} for name, spec
                                                 in declared_options(registry, dataset_name).items()]}


def inspect_dataset(dataset_name: str, source: DataSource, *, registry: Registry | None = None,
                    options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The validation report of ``mlbench datasets inspect`` as a dict (``options``: --dataset-option)."""
    registry = registry or get_registry()
    resolved = check_dataset_options(registry, dataset_name, options)
    dataset = registry.create("dataset", dataset_name, **resolved)
    t0 = time.perf_counter()
    records = dataset.read(source)
    records.label_options = label_options(registry, dataset_name, resolved)
    read_seconds = time.perf_counter() - t0
    profile = dataset.profile(source) if hasattr(dataset, "profile") else None
    expand = getattr(dataset, "expand_findings", None)
    tree_obj = dataset.label_tree() if hasattr(dataset, "label_tree") else None
    frame = records.frame
    return {
        "dataset": dataset_name,
        "csv": str(source.csv),
        "csv_sha256": records.source_sha256,
        "kind": records.kind,
        "read_seconds": read_seconds,
        "options": [{**spec.describe(), "value": resolved[name]}
                    for name, spec in declared_options(registry, dataset_name).items()],
        "facts": records.facts,
        "profile": profile,
        "images_kept": int(len(frame)),
        "patients_kept": int(frame["patient_id"].nunique()),
        "images_without_findings": int(sum(1 for f in frame["findings"] if not f)),
        "distinct_findings": len(count_labels(frame["findings"])),
        "skipped": skip_summary(records.skipped),
        "benchmarks": [benchmark_report(records, b, expand, tree_obj, source=source)
                       for b in benchmarks_of(registry, dataset_name)],
    }


def split_to_dir(benchmark_name: str, source: DataSource, out_dir: Path, *, seed: int | None = None,
                 registry: Registry | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read, map, split and write split.parquet, labels.json and summary.json; return the summary."""
    registry = registry or get_registry()
    t0 = time.perf_counter()
    benchmark = registry.create("benchmark", benchmark_name)
    resolved = check_dataset_options(registry, benchmark.dataset, options)
    dataset = registry.create("dataset", benchmark.dataset, **resolved)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():  # refused before reading: the CSV may take a minute
        raise SplitError(f"--out {out_dir}: is a file; expected a folder for {SPLIT_FILE}, {LABELS_FILE} and "
                         f"{SUMMARY_FILE}")
    records = dataset.read(source)
    records.label_options = label_options(registry, benchmark.dataset, resolved)
    t1 = time.perf_counter()
    split = split_of(records, benchmark, source, seed)
    split.summary["skipped"] = skip_summary(list(records.skipped) + split.skipped)
    if resolved:
        split.summary["dataset"] = {"options": resolved, **records.facts}
    split.seconds["read"] = t1 - t0
    split.seconds["total"] = time.perf_counter() - t0
    paths = split.write(out_dir)
    return {**split.summary, "seconds": split.seconds, "files": {k: str(v) for k, v in paths.items()}}


# -- label trees: what ``mlbench labels tree`` shows -------------------------------------------------
class LabelTreeError(UserError):
    """No dataset has a label tree, several do and none was named, or a label is not in the tree."""


@dataclass
class LabelTree:
    """A dataset's label tree (``roots``, ``children``, optional ``describe``), and one label of it
    when asked: ``label`` is the tree's spelling, ``parents`` the nodes it hangs under."""

    dataset: str
    tree: Any
    label: str | None = None
    parents: list[str] = field(default_factory=list)

    def describe(self, label: str) -> str:
        return self.tree.describe(label) if hasattr(self.tree, "describe") else ""


def tree_datasets(registry: Registry) -> list[str]:
    """The registered datasets that offer ``label_tree()``."""
    return [n for n in registry.names("dataset") if hasattr(registry.create("dataset", n), "label_tree")]


def find_label(tree_obj: Any, name: str) -> str:
    """The tree's spelling of ``name`` (case-insensitive), or a LabelTreeError with close matches."""
    by_lower = {label.lower(): label for label in tree_obj.children}
    hit = by_lower.get(name.strip().lower())
    if hit is None:
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=5)
        hint = f"; did you mean {', '.join(repr(by_lower[c]) for c in close)}?" if close else ""
        raise LabelTreeError(f"'{name}' is not a label of the tree{hint}")
    return hit


def label_tree(dataset: str | None = None, label: str | None = None, *,
               registry: Registry | None = None) -> LabelTree:
    """``dataset``'s label tree (default: the one dataset that has a tree), and ``label`` found in it."""
    registry = registry or get_registry()
    if dataset is None:
        with_tree = tree_datasets(registry)
        if len(with_tree) != 1:
            raise LabelTreeError(f"--dataset: expected one of {', '.join(with_tree) or 'none'} "
                                 "(the datasets with a label tree)")
        dataset = with_tree[0]
    ds = registry.create("dataset", dataset)
    if not hasattr(ds, "label_tree"):
        raise LabelTreeError(f"dataset '{dataset}' has no label tree")
    tree_obj = ds.label_tree()
    if label is None:
        return LabelTree(dataset, tree_obj)
    hit = find_label(tree_obj, label)
    return LabelTree(dataset, tree_obj, hit, [p for p, kids in tree_obj.children.items() if hit in kids])
