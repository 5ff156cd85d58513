"""The ``mlbench`` command. Each command parses options, calls one library function and prints.

Commands load lazily: ``COMMANDS`` names the module of each, and only the module of the command
being run is imported (``mlbench leaderboard show`` never imports the training stack). Command
modules import nothing from each other: what two of them share is here (the option helpers below)
or in :mod:`mlbench.cli.output` (printing); this module imports them only through ``COMMANDS``,
so the package has no import cycle.

The group is the CLI's one error boundary: a :class:`mlbench.foundations.errors.UserError` raised anywhere
below becomes ``Error: <message>`` and exit status 1, with no traceback; any other exception is a
bug and keeps its traceback, followed by a line asking to report it.
"""

import importlib
import sys

import click

from mlbench import __version__
from mlbench.foundations.errors import UserError

BUG_HINT = ("mlbench: this is a bug in mlbench or one of its plugins, not a mistake of yours; please report it "
            "with the traceback above (mlbench --version and `mlbench plugins` help too)")


# command name -> "module:attribute" of its click command
COMMANDS = {
    "plugins": "mlbench.cli.plugins:plugins",
    "run": "mlbench.cli.run:run_command",
    "demo-data": "mlbench.cli.run:demo_data_command",
    "preprocess": "mlbench.cli.run:preprocess_command",
    "datasets": "mlbench.cli.data:datasets",
    "split": "mlbench.cli.data:split_command",
    "labels": "mlbench.cli.data:labels",
    "explain": "mlbench.cli.explain:explain_command",
    "grid": "mlbench.cli.grid:grid_group",
    "crop": "mlbench.cli.crop:crop",
    "leaderboard": "mlbench.cli.leaderboard:leaderboard_group",
    "compare": "mlbench.cli.leaderboard:compare_command",
    "submit": "mlbench.cli.leaderboard:submit_command",
    "report": "mlbench.cli.report:report_command",
    "bundle": "mlbench.cli.bundle:bundle_command",
    "score": "mlbench.cli.score:score_command",
    "predict": "mlbench.cli.predict:predict_command",
    "verify": "mlbench.cli.board:verify_command",
    "board": "mlbench.cli.board:board_group",
    "reproduce": "mlbench.cli.reproduce:reproduce_command",
    "config": "mlbench.cli.config:config_command",
    "evaluate": "mlbench.cli.evaluate:evaluate_command",
}

# command name -> the first paragraph of its help, which `mlbench --help` lists without importing the
# command's module (each imports its own dependencies: pyarrow, rich, the api). A test holds every entry
# equal to the command's own help; a command missing here is imported to list it.
SUMMARIES = {
    "plugins": "List every registered plugin (kind, name, package, version).",
    "run": "Run BENCHMARK end to end: split, preprocess, train, ensemble, score.",
    "demo-data": "Write the synthetic demo corpus (the dataset's own format) to OUT_DIR.",
    "preprocess": "Decode, crop and resize every image of BENCHMARK once into CACHE (parallel, resumable).",
    "datasets": "Inspect dataset sources.",
    "split": "Patient-grouped stratified train/val/test split of BENCHMARK; prints its hash and timings.",
    "labels": "Label hierarchies of datasets.",
    "explain": "Explain IMAGE files (or --split) with the run's ensemble: one panel per label, std map, JSON, scores.",
    "grid": "Imbalance remedies side by side: `mlbench grid BENCHMARK --remedies ...`, `mlbench grid status DIR`.",
    "crop": "Crop chest X-rays (files or folders) to the lungs; write PNGs and OUT/crops.csv.",
    "leaderboard": "Read leaderboard files (the published baselines and submitted runs).",
    "compare": "Per-label deltas of RUN_DIR vs the published baseline (or paired differences vs another RUN_DIR).",
    "submit": "Validate RUN_DIR (recompute split, coverage, every metric) and append it to a leaderboard.",
    "report": "Write one self-contained HTML report of a run directory, a remedy grid directory or a board.",
    "bundle": "Write the submission bundle of the finished run in RUN_DIR: manifest, environment, predictions, "
              "claimed leaderboard rows, histories, skips and checkpoint hashes, each member indexed by sha256. "
              "With --predictions, an external bundle of a predictions file instead (no recipe, no weights).",
    "score": "Score FILE (image_id, label, probability[, entry, split]; CSV or parquet) on BENCHMARK's test split.",
    "predict": "Predict the images under --images with every backbone and ensemble of RUN_DIR into --out.",
    "verify": "Verify BUNDLE from the keeper's own files, believing nothing it says.",
    "board": "A shared board kept as a git repository: init, add a bundle, rebuild.",
    "reproduce": "Train the recipe of run BUNDLE again on --csv/--images into --out and compare with the bundle's "
                 "predictions on the same test patients: reproduced when 0 lies in every entry's macro AUC interval.",
    "config": "Print RUN_DIR's plan as a TOML config file: `mlbench run BENCHMARK --config FILE` plans the same "
              "recipe.",
    "evaluate": "Score RUN_DIR on BENCHMARK's test split for the labels the two benchmarks share (external "
                "validation).",
}


class MlbenchGroup(click.Group):
    listing = False  # True while --help lists the commands: a command not loaded yet shows its SUMMARIES line

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:  # click's own listing (widths, shortening), fed stand-ins instead of imported modules
            super().format_commands(ctx, formatter)
        finally:
            self.listing = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self.listing and cmd_name not in self.commands and cmd_name in SUMMARIES:
            return click.Command(cmd_name, help=SUMMARIES[cmd_name])
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            message = str(exc).strip() or type(exc).__name__
            raise click.ClickException(message) from None
        except KeyboardInterrupt:
            click.echo("\ninterrupted; run the same command again to resume", err=True)
            raise SystemExit(130) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception:
            # The traceback stays: it is what a bug report needs.
            import traceback

            traceback.print_exc()
            click.echo(BUG_HINT, err=True)
            sys.exit(70)  # EX_SOFTWARE


@click.group(cls=MlbenchGroup)
@click.version_option(__version__, prog_name="mlbench")
def main() -> None:
    """Benchmarks for imbalanced multilabel image datasets."""


# -- option helpers two commands share ----------------------------------------------------------
def comma_names(value: str | None, option: str) -> tuple[str, ...] | None:
    """``a,b`` as names; None when the option was not given."""
    if value is None:
        return None
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise click.BadParameter("expected one or more comma-separated names", param_hint=option)
    return names


# run and grid both train: the same switch for pretrained weights (None keeps the recipe's).
pretrained_option = click.option(
    "--pretrained/--no-pretrained", default=None,
    help="Start every backbone from its pretrained weights, or train from scratch (nothing downloaded) "
         "[default: the recipe's].")


def executor_options(command):
    """--executor and the job resources, shared by `mlbench grid` and `mlbench run`."""
    from mlbench.api import EXECUTORS

    options = [
        click.option("--executor", type=click.Choice(EXECUTORS), default="inline", show_default=True,
                     help="inline (this process), local (submitit subprocesses, one job per backbone) or slurm "
                          "(submitit SLURM jobs; the ensembles job waits on its training jobs)."),
        click.option("--gpus-per-node", type=click.IntRange(min=0),
                     help="GPUs per training job, one process each [default: local 1 with CUDA, else 0; slurm 0]."),
        click.option("--cpus-per-task", type=click.IntRange(min=1), help="CPUs per job process (slurm)."),
        click.option("--mem-gb", type=click.FloatRange(min=0, min_open=True), help="Memory per job (slurm)."),
        click.option("--timeout-min", type=click.IntRange(min=1), default=24 * 60, show_default=True,
                     help="Time limit per job; a job hitting it is requeued and resumes from its last epoch."),
        click.option("--partition", help="SLURM partition."),
        click.option("--slurm-param", "slurm_param", multiple=True, metavar="KEY=VALUE",
                     help="Extra #SBATCH --KEY=VALUE line (repeatable), e.g. account=myproj, qos=high."),
        click.option("--parallel", type=click.IntRange(min=1),
                     help="local: jobs at once [default: one per GPU slot, 1 without GPUs]."),
        click.option("--no-wait", is_flag=True,
                     help="slurm: submit the jobs and return; run the same command again later to resubmit "
                          "failed jobs or, once all are done, to write the results."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def executor_resources(gpus_per_node, cpus_per_task, mem_gb, timeout_min, partition, slurm_param,
                       parallel) -> dict:
    """The keyword arguments of mlbench.execution.executors.Resources, from the options above."""
    from mlbench.foundations.options import parse_pairs

    extra = {key: str(value) for key, value in parse_pairs(slurm_param, "--slurm-param").items()}
    return {"gpus_per_node": gpus_per_node, "cpus_per_task": cpus_per_task, "mem_gb": mem_gb,
            "timeout_min": timeout_min, "partition": partition, "slurm_parameters": extra, "parallel": parallel}


# -- --config FILE: a TOML file of the command's options (run and grid) -------------------------
# Options taking comma-separated names or numbers: a TOML list is joined with commas.
COMMA_OPTIONS = {"backbones", "ensembles", "remedies", "seeds"}
RECIPE_TABLE = "recipe"  # `mlbench run`'s table of recipe fields (RunOptions.recipe), only in a config file


def config_option(*, recipe_table: bool = False):
    """An eager ``--config FILE`` whose values become the command's defaults (the command line wins).

    Keys are the long option names without dashes (``-`` or ``_``); ``no-x = true`` for a switch
    ``--x/--no-x`` too. With ``recipe_table``, a ``[recipe]`` table of Recipe fields is kept in
    ``ctx.meta[RECIPE_TABLE]`` for the command to pass on."""
    from pathlib import Path

    def load(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
        if value is None:
            return
        from mlbench.foundations.config import read_config

        data = read_config(value)
        if recipe_table and RECIPE_TABLE in data:
            ctx.meta[RECIPE_TABLE] = config_recipe(value, data.pop(RECIPE_TABLE))
        ctx.default_map = {**(ctx.default_map or {}), **config_defaults(ctx, value, data, recipe_table)}

    return click.option("--config", type=click.Path(path_type=Path, dir_okay=False), is_eager=True,
                        expose_value=False, callback=load,
                        help="TOML file of this command's options (`epochs = 5` style keys: the long option "
                             "names); options on the command line win." +
                             (" A [recipe] table sets recipe fields no option names (lr, patience, ...)."
                              if recipe_table else ""))


def config_keys(command: click.Command) -> dict[str, tuple[click.Option, bool]]:
    """Config key (dashes as underscores) -> (option, the value it stands for is inverted)."""
    keys: dict[str, tuple[click.Option, bool]] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in ("config", "help"):
            continue
        for opt in param.opts:
            if opt.startswith("--"):
                keys[opt[2:].replace("-", "_")] = (param, False)
        for opt in param.secondary_opts:
            if opt.startswith("--"):
                keys[opt[2:].replace("-", "_")] = (param, True)
    return keys


def config_defaults(ctx: click.Context, path, data: dict, recipe_table: bool) -> dict:
    """The file's values as ``ctx.default_map`` (parameter name -> value), each checked by click's own type."""
    from mlbench.foundations.config import ConfigError
    from mlbench.foundations.options import shown

    keys = config_keys(ctx.command)
    arguments = {p.name.replace("-", "_") for p in ctx.command.params if isinstance(p, click.Argument)}
    defaults: dict = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in arguments:
            raise ConfigError(f"{path}: key '{key}' is the command's argument {name.upper()}; "
                              "give it on the command line")
        if name not in keys:
            extra = ", [recipe]" if recipe_table else ""
            raise ConfigError(f"{path}: unknown key '{key}'; expected one of "
                              f"{', '.join(sorted(k.replace('_', '-') for k in keys))}{extra}")
        option, inverted = keys[name]
        wrong = f"{path}: key '{key}' = {shown(value)}: expected "
        if option.multiple:  # repeatable KEY=VALUE: a table, a list of "KEY=VALUE" strings, or one string
            if isinstance(value, dict):
                value = pairs_of(value)
            elif isinstance(value, str):
                value = [value]
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ConfigError(wrong + 'a table {KEY = VALUE, ...} or a list of "KEY=VALUE" strings')
        elif option.is_bool_flag or isinstance(option.type, click.types.BoolParamType):
            if not isinstance(value, bool):
                raise ConfigError(wrong + "true or false")
            value = not value if inverted else value
        elif name in COMMA_OPTIONS and isinstance(value, list):
            if not value or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
                raise ConfigError(wrong + "a non-empty list of names, or one comma-separated string")
            value = ",".join(str(v) for v in value)
        elif isinstance(option.type, (click.types.IntParamType, click.types.FloatParamType)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(wrong + "a number")
        elif not isinstance(value, str):
            raise ConfigError(wrong + "a string")
        if option.name in defaults:
            raise ConfigError(f"{path}: key '{key}' sets --{option.name} twice")
        try:
            option.type_cast_value(ctx, value)
        except click.BadParameter as exc:
            raise ConfigError(f"{path}: key '{key}' = {shown(value)}: {exc.message}") from None
        defaults[option.name] = value
    return defaults


def pairs_of(table: dict, prefix: str = "") -> list[str]:
    """``{gamma = 2}`` -> ``["gamma=2"]``; a nested table is a dotted scope (``{densenet201 = {weights = "w"}}``)."""
    import json

    out: list[str] = []
    for key, value in table.items():
        if isinstance(value, dict):
            out.extend(pairs_of(value, f"{prefix}{key}."))
        else:  # JSON text: mlbench.foundations.options.parse_value reads back the same value
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def config_recipe(path, table) -> dict:
    """``[recipe]``: Recipe fields, each of the type the field holds; one ConfigError line otherwise."""
    import dataclasses

    from mlbench.contracts.benchmark import Recipe
    from mlbench.foundations.config import ConfigError
    from mlbench.foundations.options import shown

    if not isinstance(table, dict):
        raise ConfigError(f"{path}: key 'recipe' = {shown(table)}: expected a [recipe] table of recipe fields")
    sample = Recipe(backbones=("x",))
    fields = {f.name: getattr(sample, f.name) for f in dataclasses.fields(Recipe)}
    out = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise ConfigError(f"{path}: unknown key 'recipe.{key}'; expected one of {', '.join(fields)}")
        default = fields[name]
        if isinstance(default, bool):
            ok, expected = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif isinstance(default, str):
            ok, expected = isinstance(value, str), "a string"
        elif isinstance(default, tuple):
            item = str if key != "head_units" else int
            ok = isinstance(value, list) and all(isinstance(v, item) and not isinstance(v, bool) for v in value)
            expected = f"a list of {'strings' if item is str else 'integers'}"
        else:
            ok, expected = isinstance(value, dict), "a table {KEY = VALUE, ...}"
        if not ok:
            raise ConfigError(f"{path}: key 'recipe.{key}' = {shown(value)}: expected {expected}")
        out[name] = value
    return out
