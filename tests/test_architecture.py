"""The design rules, read statically from the source (ast): no import cycle, the CLI as a skin,
no private names across modules, plugins apart from one another, a core that names no dataset.

Every rule reports each offence with its file and line, so a failure says what to fix.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "mlbench"
# Plugin roots (each a separately installable package) and the top-level packages they own.
PLUGIN_ROOTS = {
    REPO / "benchmarks" / "padchest": {"mlbench_padchest"},
    REPO / "benchmarks" / "nih": {"mlbench_nih"},
    REPO / "benchmarks" / "folder": {"mlbench_folder"},
    **{root: {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
       for root in sorted((REPO / "plugins").iterdir()) if root.is_dir()},
}
PLUGIN_PACKAGES = set().union(*PLUGIN_ROOTS.values())
# The built-in plugins' registration modules: a plugin of its own, not core for other plugins.
BUILTIN_PLUGIN_PACKAGE = "mlbench.plugins"
FIRST_PARTY = {"mlbench"} | PLUGIN_PACKAGES
SCANNED = [CORE, REPO / "benchmarks", REPO / "perf", REPO / "plugins", REPO / "tests"]
# Names of datasets and benchmarks the core must not spell in code (docstrings and comments may).
DATASET_WORDS = re.compile(r"padchest|chestx|chest x-?ray ?14|\bnih\b|mimic|chexpert", re.IGNORECASE)


def python_files(*roots: Path) -> list[Path]:
    skip = {"__pycache__", "build", "dist", ".eggs"}
    return sorted(p for root in roots for p in root.rglob("*.py")
                  if not skip.intersection(p.relative_to(REPO).parts) and ".egg-info" not in str(p))


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"


def is_test(path: Path) -> bool:
    return "tests" in path.relative_to(REPO).parts


def core_module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


CORE_MODULES = {core_module_name(p): p for p in python_files(CORE)}


def type_checking_nodes(tree: ast.Module) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:``: never imported at run time."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def package_of(path: Path) -> list[str]:
    """The dotted package a file belongs to (for relative imports), from its folders' __init__ files."""
    parts: list[str] = []
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return parts


def imports(path: Path) -> list[tuple[str, list[str], ast.AST]]:
    """Every run-time import anywhere in the file (functions included): (module, imported names, node).

    ``import a.b`` gives ("a.b", []); ``from a import b, c`` gives ("a", ["b", "c"]); relative
    imports are resolved against the file's package.
    """
    tree = parse(path)
    skipped = type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = package_of(path)
                package = package[:len(package) - (node.level - 1)]
                module = ".".join(package + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names], node))
    return found


def import_targets(path: Path) -> list[tuple[str, ast.AST]]:
    """The full dotted names a file imports: ``from a import b`` gives ``a.b`` (a module or a name in a)."""
    targets = []
    for module, names, node in imports(path):
        targets += [(module, node)] if not names else [(f"{module}.{n}", node) for n in names]
    return targets


def core_module(name: str) -> str | None:
    """The mlbench module a dotted name lives in (its longest prefix that is a module file)."""
    while name and name not in CORE_MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, dict[str, str]]:
    """module -> {imported module: where}. The root package ``mlbench`` is left out: Python runs it
    before any submodule anyway, and its lazy ``__getattr__`` (the public API) reaches every layer
    by design; ``test_the_root_package_imports_only_the_hook_markers`` keeps it light instead."""
    graph: dict[str, dict[str, str]] = {}
    for name, path in CORE_MODULES.items():
        if name == "mlbench":
            continue
        edges = graph.setdefault(name, {})
        for target, node in import_targets(path):
            module = core_module(target) if target.split(".")[0] == "mlbench" else None
            if module and module not in (name, "mlbench"):
                edges.setdefault(module, where(path, node))
    return graph


def find_cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first search (empty when the graph is acyclic)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def describe(cycle: list[str], graph: dict[str, dict[str, str]]) -> str:
    return " -> ".join(f"{a} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


# -- the rules -------------------------------------------------------------------------------------
def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b": "a.py:3"}, "b": {"c": "b.py:9"}, "c": {"a": "c.py:40"}, "d": {"a": "d.py:1"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    tree = ast.parse("def f():\n    from mlbench import compare\n")
    assert [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] == ["mlbench"]


def test_no_import_cycle_among_mlbench_modules_function_level_imports_included():
    graph = import_graph()
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100  # the graph was really read
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(describe(c, graph) for c in cycles)


def test_the_root_package_imports_only_the_hook_markers():
    # ``import mlbench`` must stay light: the public API loads on first use (module __getattr__).
    tree = parse(CORE / "__init__.py")
    eager = [(n, where(CORE / "__init__.py", n)) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = sorted({n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n, _ in eager})
    assert modules in ([], ["mlbench.contracts.hookspecs"]), f"mlbench/__init__.py imports {modules} at import time"


def test_nothing_outside_the_cli_imports_it():
    offences = []
    for path in python_files(*SCANNED):
        inside = path.is_relative_to(CORE / "cli")
        if inside:
            continue
        for target, node in import_targets(path):
            if not (target == "mlbench.cli" or target.startswith("mlbench.cli.")):
                continue
            entry_point = target == "mlbench.cli.main" and (is_test(path) or path == CORE / "__main__.py")
            if not entry_point:
                offences.append(f"{where(path, node)} imports {target}")
    assert not offences, "only mlbench/cli/ imports the CLI (tests and __main__: mlbench.cli.main):\n" + \
        "\n".join(offences)


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def first_party(module: str) -> bool:
    return module.split(".")[0] in FIRST_PARTY


def module_aliases(path: Path) -> dict[str, str]:
    """Local names bound to first-party modules: ``import mlbench.x as y`` -> {y: mlbench.x}, etc."""
    aliases = {}
    tree = parse(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if first_party(alias.name):
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                        alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and not node.level and first_party(node.module or ""):
            for alias in node.names:
                if alias.name[:1].islower() and _is_module(f"{node.module}.{alias.name}"):
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _is_module(name: str) -> bool:
    if name in CORE_MODULES:
        return True
    top, _, rest = name.partition(".")
    for root, packages in PLUGIN_ROOTS.items():
        if top in packages:
            base = root.joinpath(top, *rest.split(".")) if rest else root / top
            return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()
    return False


def dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id] + parts)
    return None


def test_no_module_uses_another_modules_private_names():
    offences = []
    for path in python_files(*SCANNED):
        for module, names, node in imports(path):
            if first_party(module):
                offences += [f"{where(path, node)} imports {module}.{n}" for n in names if private(n)]
                if any(private(part) for part in module.split(".")):
                    offences.append(f"{where(path, node)} imports private module {module}")
        aliases = module_aliases(path)
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Attribute) and private(node.attr):
                owner = dotted(node.value)
                if owner and owner.split(".")[0] in aliases:
                    offences.append(f"{where(path, node)} reads {owner}.{node.attr}")
    assert not offences, "private names used across modules (make the helper public):\n" + "\n".join(offences)


def test_plugins_import_only_the_core_never_another_plugin():
    offences = []
    for root, own in PLUGIN_ROOTS.items():
        foreign = (PLUGIN_PACKAGES - own)
        for path in python_files(root):
            for target, node in import_targets(path):
                top = target.split(".")[0]
                if top in foreign:
                    offences.append(f"{where(path, node)} imports another plugin's module {target}")
                elif target == BUILTIN_PLUGIN_PACKAGE or target.startswith(BUILTIN_PLUGIN_PACKAGE + "."):
                    offences.append(f"{where(path, node)} imports the built-in plugins' registration {target}")
    assert len(PLUGIN_ROOTS) >= 3, PLUGIN_ROOTS
    assert not offences, "\n".join(offences)


# Plugin packages (what gets installed, not their tools or tests): the built-in families, the
# example plugins and the test plugins.
PLUGIN_CODE_ROOTS = [root / package for root, packages in PLUGIN_ROOTS.items() for package in sorted(packages)] + [
    package for folder in sorted((REPO / "tests" / "data" / "plugins").iterdir()) if folder.is_dir()
    for package in sorted(folder.iterdir()) if (package / "__init__.py").is_file()]


def plugin_surface() -> set[str]:
    """The names ``mlbench`` offers plugins, read from its __init__ (the hook markers and PLUGIN_API)."""
    tree = parse(CORE / "__init__.py")
    names = {"hookimpl", "hookspec", "__version__"}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PLUGIN_API" for t in node.targets):
            names |= {k.value for k in node.value.keys}
    assert len(names) > 10, "PLUGIN_API not found in mlbench/__init__.py"
    return names


def test_plugins_import_from_mlbench_only_its_plugin_surface():
    """Plugins import ``from mlbench import NAME`` only, so the core's modules may move under them."""
    surface, offences = plugin_surface(), []
    assert len(PLUGIN_CODE_ROOTS) >= 5, PLUGIN_CODE_ROOTS
    for root in PLUGIN_CODE_ROOTS:
        for path in python_files(root):
            if is_test(path):
                continue
            for module, names, node in imports(path):
                if module.split(".")[0] != "mlbench":
                    continue
                if module != "mlbench":
                    offences.append(f"{where(path, node)} imports {module}; import its names from mlbench")
                offences += [f"{where(path, node)} imports mlbench.{n}, which is not in mlbench.PLUGIN_API"
                             for n in names if n not in surface]
    assert not offences, "\n".join(offences)


def test_every_name_of_the_plugin_surface_resolves_without_torch():
    import subprocess
    import sys

    code = ("import sys, mlbench\n"
            "missing = [n for n in mlbench.PLUGIN_API if getattr(mlbench, n, None) is None]\n"
            "print(missing, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] False", out


def docstring_nodes(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def test_the_core_names_no_dataset_or_benchmark_in_code():
    offences = []
    for path in python_files(CORE):
        tree = parse(path)
        docs = docstring_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                hit = DATASET_WORDS.search(node.value)
                if hit:
                    offences.append(f"{where(path, node)} {hit.group(0)!r} in {node.value[:60]!r}")
    assert not offences, "the core asks the registry; it names no dataset or benchmark:\n" + "\n".join(offences)


def test_the_dataset_rule_sees_strings_but_not_docstrings():
    tree = ast.parse('"""About PadChest."""\nX = "padchest-specific"\ndef f():\n    """NIH."""\n    return f"nih {1}"\n')
    docs = docstring_nodes(tree)
    hits = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs and DATASET_WORDS.search(n.value)]
    assert hits == ["padchest-specific", "nih "]


def test_every_top_level_command_is_in_the_lazy_command_table():
    # A command module is imported only through mlbench.cli.COMMANDS: one left out is unreachable.
    table = next(node.value for node in parse(CORE / "cli" / "__init__.py").body
                 if isinstance(node, ast.Assign) and [dotted(t) for t in node.targets] == ["COMMANDS"])
    commands = ast.literal_eval(table)
    defined = set()
    for path in python_files(CORE / "cli"):
        if path.name == "__init__.py":  # the group itself
            continue
        for node in parse(path).body:
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and dotted(d.func) in ("click.command", "click.group")
                    for d in node.decorator_list):
                defined.add(f"{core_module_name(path)}:{node.name}")
    assert defined and defined == set(commands.values()), sorted(defined ^ set(commands.values()))


# -- the folders are the layers ---------------------------------------------------------------------
# mlbench/'s top-level folders and modules, top to bottom (docs/architecture.md, "Rooms"); a unit
# imports from its own row or a row below, never one above. mlbench/__init__.py is the surface
# (lazy), not a layer.
LAYERS = [["__main__"], ["cli"], ["api"], ["testing"], ["conformance"], ["grid"], ["execution"], ["report"],
          ["explainers", "judging"], ["training"], ["preprocessing", "demo", "models"], ["results"], ["data"],
          ["contracts", "plugins"], ["foundations"]]


def layer_climbs(files: dict[str, Path]) -> list[str]:
    rank = {unit: i for i, row in enumerate(LAYERS) for unit in row}
    offences = []
    for name, path in files.items():
        parts = name.split(".")
        unit = parts[1] if len(parts) > 1 else None
        if unit is None:
            continue
        assert unit in rank, f"{path.relative_to(REPO)}: mlbench.{unit} is in no row of LAYERS; give it one"
        for target, node in import_targets(path):
            module = core_module(target)
            if module and module.count(".") >= 1 and rank.get(module.split(".")[1], len(LAYERS)) < rank[unit]:
                offences.append(f"{where(path, node)} {name} imports {module}, a layer above it")
    return offences


def test_every_mlbench_folder_imports_only_its_own_layer_or_those_below():
    offences = layer_climbs(CORE_MODULES)
    assert not offences, "move the shared piece down (or the importer up):\n" + "\n".join(offences)


def test_the_layer_rule_sees_a_module_climbing_up():
    fake = {"mlbench.foundations.io": CORE / "results" / "rundir.py"}  # rundir's imports, as if it were io's
    assert layer_climbs(fake), "rundir imports results and data: from foundations that climbs"


# -- layouts: RunDir and GridDir own the file names of their directories ------------------------------
LAYOUT_OWNERS = {"run": CORE / "results" / "rundir.py", "grid": CORE / "results" / "griddir.py",
                 "split": CORE / "data" / "splits.py", "demo": CORE / "demo" / "__init__.py",
                 "bundle": CORE / "judging" / "bundle.py"}
LAYOUT_SCANNED = [CORE, REPO / "benchmarks", REPO / "plugins"]
# A file name has an extension; folder names (preprocess, backbones, cache, cells, shared) are
# also ordinary words (a stage, a recipe field, an option), so only files are looked for.
FILE_NAME = re.compile(r"\.?[\w-]+\.[A-Za-z]+")
# Another layout that shares a name: the preprocessing cache writes its own manifest pair into its
# folder, or into RUN_DIR/preprocess when RunDir.write_preprocess_manifest asks it to.
OTHER_LAYOUTS = {CORE / "preprocessing" / "cache.py": {"manifest.parquet", "manifest.json"}}


def layout_file_names(owner: Path) -> dict[str, str]:
    """File name -> constant, read from the owner's module-level ``NAME = "file.ext"`` assignments."""
    names = {}
    for node in parse(owner).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                isinstance(node.value.value, str) and FILE_NAME.fullmatch(node.value.value):
            names[node.value.value] = ", ".join(dotted(t) or "?" for t in node.targets)
    return names


def spells(value: str, name: str) -> bool:
    """``value`` is ``name`` or ends in it as a whole word (``backbones/*/history.json``, ``no manifest.json``)."""
    return value == name or (value.endswith(name) and not re.match(r"[\w.-]", value[-len(name) - 1]))


def layout_spellings(names: set[str], owner: Path) -> list[str]:
    offences = []
    for path in python_files(*LAYOUT_SCANNED):
        if path == owner or is_test(path):
            continue
        tree = parse(path)
        docs = docstring_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                offences += [f"{where(path, node)} spells {name!r} in {node.value[-60:]!r}"
                             for name in sorted(names - OTHER_LAYOUTS.get(path, set())) if spells(node.value, name)]
    return offences


def test_the_layout_rule_sees_names_in_strings_and_paths_but_not_docstrings_or_other_words():
    assert spells("backbones/*/history.json", "history.json") and spells("no manifest.json", "manifest.json")
    assert not spells("old-history.json", "history.json") and not spells("manifest.json: bad", "manifest.json")
    run = layout_file_names(LAYOUT_OWNERS["run"])
    assert {"manifest.json", "best.pt", "last.pt", "history.json", "done.json"} <= set(run), run
    assert "preprocess" not in run and "backbones" not in run  # folders are words too: not looked for


def test_no_module_but_rundir_spells_a_file_name_of_the_run_layout():
    names = layout_file_names(LAYOUT_OWNERS["run"])
    offences = layout_spellings(set(names), LAYOUT_OWNERS["run"])
    assert not offences, "ask mlbench.results.rundir.RunDir (or import its constant) instead:\n" + "\n".join(offences)


def test_no_module_but_griddir_spells_a_file_name_of_the_grid_layout():
    names = set(layout_file_names(LAYOUT_OWNERS["grid"]))
    assert {"grid.json", "comparison.parquet", "failed.json", "submissions.json"} <= names, names
    offences = layout_spellings(names, LAYOUT_OWNERS["grid"])
    assert not offences, "ask mlbench.results.griddir instead:\n" + "\n".join(offences)


def test_no_module_but_data_splits_spells_a_file_name_of_the_split_folder():
    names = layout_file_names(LAYOUT_OWNERS["split"])
    assert {"split.parquet", "labels.json", "summary.json"} <= set(names), names
    offences = layout_spellings(set(names), LAYOUT_OWNERS["split"])
    assert not offences, "ask mlbench.data.splits (SPLIT_FILE, SPLIT_KEY_COLUMNS) instead:\n" + "\n".join(offences)


def test_no_module_but_mlbench_demo_spells_a_demo_sidecar_file_name():
    names = layout_file_names(LAYOUT_OWNERS["demo"])
    assert {"findings.csv", "lungs.csv"} <= set(names), names
    offences = layout_spellings(set(names), LAYOUT_OWNERS["demo"])
    assert not offences, "ask mlbench.demo (FINDINGS_FILE, write_findings, ...) instead:\n" + "\n".join(offences)


def test_no_module_but_the_bundle_module_spells_a_member_name_of_the_bundle_format():
    names = layout_file_names(LAYOUT_OWNERS["bundle"])
    assert {"bundle.json", "environment.json", "checkpoints.json"} <= set(names), names
    offences = layout_spellings(set(names), LAYOUT_OWNERS["bundle"])
    assert not offences, "ask mlbench.judging.bundle (INDEX, ENVIRONMENT, ...) instead:\n" + "\n".join(offences)


# -- the CLI is a skin: one mlbench.api call per command, no command module importing another ------
CLI = CORE / "cli"
# What command modules may import from the CLI: the package's shared option helpers and the printing.
CLI_SHARED = {"mlbench.cli", "mlbench.cli.output"}


def cli_command_modules() -> list[Path]:
    return [p for p in python_files(CLI) if p.name not in ("__init__.py", "output.py")]


def cli_imports_of_other_commands(path: Path) -> list[str]:
    offences = []
    for target, node in import_targets(path):
        if target.split(".")[:2] != ["mlbench", "cli"]:
            continue
        module = core_module(target)
        if module not in CLI_SHARED and module != core_module_name(path):
            offences.append(f"{where(path, node)} imports {target}")
    return offences


def test_cli_command_modules_import_nothing_from_each_other():
    assert len(cli_command_modules()) >= 8
    offences = [o for path in cli_command_modules() for o in cli_imports_of_other_commands(path)]
    assert not offences, ("a command module imports only mlbench.cli (its shared option helpers) and "
                          "mlbench.cli.output; move what two commands share there or into the library:\n"
                          + "\n".join(offences))


def is_click_command(node: ast.AST) -> str | None:
    """'command' or 'group' for a function decorated as a click command or group (``x.command(...)`` too)."""
    if not isinstance(node, ast.FunctionDef):
        return None
    for d in node.decorator_list:
        name = dotted(d.func) if isinstance(d, ast.Call) else dotted(d)
        last = (name or "").rpartition(".")[2]
        if last in ("command", "group"):
            return last
    return None


def calls_the_api(function: ast.FunctionDef) -> bool:
    """The body imports a name from mlbench.api and calls it (or calls ``mlbench.api.NAME`` / ``api.NAME``)."""
    imported = {alias.asname or alias.name for node in ast.walk(function) if isinstance(node, ast.ImportFrom)
                and node.module == "mlbench.api" for alias in node.names}
    api_modules = {alias.asname or "api" for node in ast.walk(function) if isinstance(node, ast.ImportFrom)
                   and node.module == "mlbench" for alias in node.names if alias.name == "api"}
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            name = dotted(node.func) or ""
            if name in imported or name.startswith("mlbench.api.") or name.rpartition(".")[0] in api_modules:
                return True
    return False


def commands_without_api_call(path: Path) -> list[str]:
    offences = []
    for node in parse(path).body:
        kind = is_click_command(node)
        if kind is None:
            continue
        body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        container = kind == "group" and all(isinstance(s, ast.Pass) for s in body)
        if not container and not calls_the_api(node):
            offences.append(f"{where(path, node)} {node.name}")
    return offences


def test_the_command_rule_sees_a_command_without_an_api_call():
    source = ("import click\n@click.group('g')\ndef g():\n    '''A group.'''\n"
              "@g.command('a')\ndef a():\n    from mlbench.api import label_tree\n    label_tree()\n"
              "@g.command('b')\ndef b():\n    from mlbench.data.inspect import label_tree\n    label_tree()\n"
              "@click.command('c')\ndef c():\n    from mlbench import api\n    api.grid_status('x')\n")
    tree = ast.parse(source)
    found = {n.name: calls_the_api(n) for n in tree.body if is_click_command(n)}
    assert found == {"g": False, "a": True, "b": False, "c": True}


def test_every_command_in_the_table_calls_an_mlbench_api_function():
    table = next(node.value for node in parse(CLI / "__init__.py").body
                 if isinstance(node, ast.Assign) and [dotted(t) for t in node.targets] == ["COMMANDS"])
    modules = {CORE_MODULES[target.partition(":")[0]] for target in ast.literal_eval(table).values()}
    commands = [node for path in modules for node in parse(path).body if is_click_command(node) == "command"]
    assert len(commands) >= 14, len(commands)  # every command and subcommand was read
    offences = [o for path in sorted(modules) for o in commands_without_api_call(path)]
    assert not offences, "each command parses, calls one mlbench.api function and prints:\n" + "\n".join(offences)
