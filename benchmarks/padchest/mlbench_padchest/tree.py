"""PadChest's term tree: labels, their parents, and expansion of findings to general labels.

The tree is a DAG with six roots (normal, exclude, suboptimal study, radiological finding,
differential diagnosis, localization); some labels have several parents. It ships as
``term_tree.json``, derived from the PadChest authors' ``trees_code.txt`` by
``benchmarks/padchest/tools/derive_term_tree.py``. The Labels column of the CSV is not propagated
upward: an image holds a general label when it carries that node or any of its descendants,
which is what :func:`expand` computes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Iterable

TREE_FILE = "term_tree.json"
# The localization tree names places (Localizations column), not findings (Labels column).
LOCALIZATION_ROOT = "localization"


@dataclass(frozen=True)
class Node:
    """One label of the tree."""

    label: str
    root: str
    parents: tuple[str, ...]
    cuis: tuple[tuple[str, str], ...]  # (UMLS CUI, UMLS name)
    single_label: bool
    placements: int  # times the label appears in the source file


@dataclass(frozen=True)
class TermTree:
    """The loaded tree; use :func:`load_tree` to get the shared instance."""

    roots: tuple[str, ...]
    nodes: dict[str, Node]
    children: dict[str, tuple[str, ...]]
    source: dict

    def describe(self, label: str) -> str:
        """A short note on ``label`` for display: its UMLS concepts and its other parents."""
        node = self.node(label)
        parts = [f"{cui} {name}" for cui, name in node.cuis]
        if len(node.parents) > 1:
            parts.append("parents: " + ", ".join(node.parents))
        return "; ".join(parts)

    def node(self, label: str) -> Node:
        try:
            return self.nodes[label]
        except KeyError:
            raise KeyError(f"'{label}' is not a PadChest term-tree label") from None


def _build(document: dict) -> TermTree:
    if document.get("format") != "mlbench-padchest-term-tree" or document.get("version") != 1:
        raise ValueError(f"{TREE_FILE}: unexpected format {document.get('format')!r} "
                         f"version {document.get('version')!r}")
    nodes = {
        label: Node(label, raw["root"], tuple(raw["parents"]), tuple(tuple(c) for c in raw["cuis"]),
                    bool(raw["single_label"]), int(raw["placements"]))
        for label, raw in document["nodes"].items()
    }
    children: dict[str, list[str]] = {label: [] for label in nodes}
    for node in nodes.values():
        for parent in node.parents:
            children[parent].append(node.label)
    return TermTree(tuple(document["roots"]), nodes,
                    {k: tuple(v) for k, v in children.items()}, document["source"])


@lru_cache(maxsize=1)
def load_tree() -> TermTree:
    """The term tree shipped with the package (read once per process)."""
    text = resources.files("mlbench_padchest").joinpath(TREE_FILE).read_text(encoding="utf-8")
    return _build(json.loads(text))


@lru_cache(maxsize=None)
def ancestors(label: str) -> frozenset[str]:
    """Every label above ``label`` along any path to its root (the label itself excluded)."""
    tree = load_tree()
    seen: set[str] = set()
    stack = list(tree.node(label).parents)
    while stack:
        parent = stack.pop()
        if parent not in seen:
            seen.add(parent)
            stack.extend(tree.nodes[parent].parents)
    return frozenset(seen)


@lru_cache(maxsize=None)
def descendants(label: str) -> frozenset[str]:
    """Every label below ``label`` (the label itself excluded)."""
    tree = load_tree()
    tree.node(label)
    seen: set[str] = set()
    stack = list(tree.children[label])
    while stack:
        child = stack.pop()
        if child not in seen:
            seen.add(child)
            stack.extend(tree.children[child])
    return frozenset(seen)


def expand(findings: Iterable[str]) -> frozenset[str]:
    """Each finding plus all its ancestors; findings outside the tree are kept as they are."""
    tree = load_tree()
    out: set[str] = set()
    for finding in findings:
        out.add(finding)
        if finding in tree.nodes:
            out |= ancestors(finding)
    return frozenset(out)


@lru_cache(maxsize=1)
def _by_lower() -> dict[str, str]:
    return {label.lower(): label for label in load_tree().nodes}


def find(name: str) -> str | None:
    """The tree's spelling of ``name``, matched case-insensitively and ignoring outer spaces."""
    return _by_lower().get(name.strip().lower())


@lru_cache(maxsize=2)
def known_labels(*, include_localization: bool = False) -> frozenset[str]:
    """Labels an image's Labels column may carry (the localization tree names places, not findings)."""
    return frozenset(label for label, node in load_tree().nodes.items()
                     if include_localization or node.root != LOCALIZATION_ROOT)
