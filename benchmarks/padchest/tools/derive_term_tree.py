"""Derive ``mlbench_padchest/term_tree.json`` from the PadChest authors' ``trees_code.txt``.

A maintainer tool, run by hand when the source tree changes; neither the package nor its tests
run it. The source is the multi-document YAML of auriml/Rx-thorax-automatic-captioning
(``manual_review/trees_code.txt``, commit 787bf0bb4258e2c2df6bb71a3033faabf7189331, sha256
3c7cce7121ea410752dcf1e0a89e70357c64d6d01cb6a8da46eeed5a52b63c98). That file is not committed
here: only the derived facts below ship (label, parents, CUI, root).

Usage::

    python benchmarks/padchest/tools/derive_term_tree.py PATH/TO/trees_code.txt

The output format (version 1)::

    {"format": "mlbench-padchest-term-tree", "version": 1, "source": {...},
     "roots": ["normal", ...],
     "nodes": {"label": {"root": "...", "parents": [...], "cuis": [[cui, name], ...],
                         "single_label": bool, "placements": int}, ...}}

``parents`` keeps the order of first appearance in the source; ``placements`` is how many times the
label appears in the source file (a label listed under two parents, or twice under one, has 2).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import yaml

SOURCE = {
    "repository": "https://github.com/auriml/Rx-thorax-automatic-captioning",
    "path": "manual_review/trees_code.txt",
    "commit": "787bf0bb4258e2c2df6bb71a3033faabf7189331",
    "authors": "Bustos et al., PadChest (University of Alicante / BIMCV)",
}
EXPECTED_SHA256 = "3c7cce7121ea410752dcf1e0a89e70357c64d6d01cb6a8da46eeed5a52b63c98"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "mlbench_padchest" / "term_tree.json"

# "(C0205307)  Normal" -> ("C0205307", "Normal")
_CONCEPT = re.compile(r"^\((C\d+)\)\s*(.*)$")


def _parse_concept(text: str, label: str) -> tuple[str, str]:
    match = _CONCEPT.match(text.strip())
    if not match:
        raise ValueError(f"label '{label}': concept {text!r} is not '(CUI) name'")
    return match.group(1), match.group(2).strip()


def derive(text: str) -> dict:
    """Turn the YAML stream into the term-tree document (see the module docstring)."""
    roots: list[str] = []
    nodes: dict[str, dict] = {}

    def visit(node: dict, parent: str | None, root: str) -> None:
        label = node["label"]
        entry = nodes.setdefault(label, {"root": root, "parents": [], "cuis": [],
                                         "single_label": False, "placements": 0})
        if entry["root"] != root:
            raise ValueError(f"label '{label}' appears under roots '{entry['root']}' and '{root}'")
        entry["placements"] += 1
        if parent is not None and parent not in entry["parents"]:
            entry["parents"].append(parent)
        if "concept" in node:
            cui = list(_parse_concept(node["concept"], label))
            if cui not in entry["cuis"]:
                entry["cuis"].append(cui)
        if str(node.get("single_label", "")).upper() == "Y":
            entry["single_label"] = True
        for child in node.get("children") or []:
            visit(child, label, root)

    for document in yaml.safe_load_all(text):
        if not document:
            continue
        roots.append(document["label"])
        visit(document, None, document["label"])
    return {"format": "mlbench-padchest-term-tree", "version": 1, "source": SOURCE,
            "roots": roots, "nodes": nodes}


def render(tree: dict) -> str:
    """JSON with one node per line, so that a diff of the tree reads as a diff of labels."""
    head = {k: v for k, v in tree.items() if k != "nodes"}
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "nodes": {']
    items = list(tree["nodes"].items())
    for i, (label, node) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f" {json.dumps(label, ensure_ascii=False)}: {json.dumps(node, ensure_ascii=False)}{comma}")
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees_code", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    raw = args.trees_code.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256:
        print(f"warning: {args.trees_code} has sha256 {digest}, expected {EXPECTED_SHA256}", file=sys.stderr)
    tree = derive(raw.decode("utf-8"))
    tree["source"] = {**SOURCE, "sha256": digest}
    # A maintainer tool writing into the source tree; mlbench.foundations.io keeps the write atomic.
    from mlbench.foundations.io import write_text

    write_text(args.out, render(tree))
    multi = sum(1 for n in tree["nodes"].values() if len(n["parents"]) > 1)
    print(f"wrote {args.out}: {len(tree['roots'])} roots, {len(tree['nodes'])} labels, "
          f"{multi} with several parents")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
