"""``mlbench run``, ``mlbench demo-data`` and ``mlbench preprocess``."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
from rich.table import Table

from mlbench.cli import (RECIPE_TABLE, comma_names, config_option, executor_options, executor_resources,
                         pretrained_option)
from mlbench.cli.output import esc, make_console, print_submitted, text
from mlbench.demo import is_synthetic
from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.foundations.options import parse_pairs
from mlbench.training.progress import MODES


def results_table(board: pd.DataFrame, title: str, profile=None) -> Table:
    """Per-entry global metrics, one row per backbone/ensemble, the scoring profile's metrics first."""
    from mlbench.results.profiles import get_profile, order_metrics

    glob = board[board["label"] == GLOBAL_LABEL].pivot_table(index=["entry_kind", "entry"], columns="metric",
                                                             values="value", sort=False)
    table = Table(title=esc(title))
    table.add_column("entry", no_wrap=True)
    table.add_column("kind")
    shown = ("auc", "auprc", "f1", "f1_pos", "hamming", "ece_15", "brier")
    metrics = [m for m in order_metrics(shown, profile or get_profile("paper")) if m in glob.columns]
    for m in metrics:
        title = {"f1": "F1 (macro)", "auc": "AUC [95% CI]", "auprc": "mAP (AUPRC)", "ece_15": "ECE (15)"}.get(
            m, m.upper())
        table.add_column(title, justify="right", no_wrap=m == "auc")
    ci = board[(board["label"] == GLOBAL_LABEL) & (board["metric"] == "auc")].set_index("entry")
    for (kind, entry), values in glob.iterrows():
        cells = [f"{values[m]:.3f}" for m in metrics]
        if "auc" in metrics and entry in ci.index and pd.notna(ci.loc[entry, "ci_low"]):
            cells[metrics.index("auc")] += f" [{ci.loc[entry, 'ci_low']:.3f}, {ci.loc[entry, 'ci_high']:.3f}]"
        table.add_row(text(entry), text(kind), *cells)
    return table


@click.command("run")
@click.argument("benchmark")
@click.option("--demo", is_flag=True, help="Run on the embedded synthetic demo corpus (results are labelled synthetic).")
@click.option("--demo-option", "demo_option", multiple=True, metavar="KEY=VALUE",
              help="Option for the demo corpus generator (repeatable), e.g. n_patients=300.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="The dataset's label CSV (.csv or .csv.gz).")
@click.option("--images", type=click.Path(path_type=Path), help="Root folder of the dataset's images.")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE",
              help="Option the dataset declares (repeatable), e.g. policy=zeros (`mlbench datasets inspect DATASET` lists them).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory [default: runs/BENCHMARK-VARIANT[-demo]].")
@click.option("--cache", type=click.Path(path_type=Path, file_okay=False),
              help="Preprocessing cache folder [default: RUN_DIR/cache].")
@click.option("--backbones", help="Comma-separated backbone plugins (or timm:MODEL) replacing the recipe's.")
@click.option("--loss", help="Loss plugin replacing the recipe's.")
@click.option("--ensembles", help="Comma-separated ensemble plugins replacing the recipe's.")
@click.option("--loss-option", "loss_option", multiple=True, metavar="KEY=VALUE",
              help="Option for the loss factory (repeatable), e.g. gamma=2.")
@click.option("--backbone-option", "backbone_option", multiple=True, metavar="[BACKBONE.]KEY=VALUE",
              help="Option for backbone factories (repeatable), e.g. densenet201.weights=/w/densenet201.pth.")
@click.option("--sampler", help="Sampler plugin for the training batch order (uniform, ml-ros, class-aware, ...).")
@click.option("--sampler-option", "sampler_option", multiple=True, metavar="KEY=VALUE",
              help="Option for the sampler factory (repeatable), e.g. percentage=25.")
@click.option("--schedule", help="Schedule plugin: the stages of training (standard, drw, crt, lws, ...).")
@click.option("--schedule-option", "schedule_option", multiple=True, metavar="KEY=VALUE",
              help="Option for the schedule factory (repeatable), e.g. epochs=5.")
@click.option("--adjuster", help="Post-hoc adjuster fitted on validation outputs (none, temperature, logit-adjust, "
                                 "tau-norm, ...).")
@click.option("--adjuster-option", "adjuster_option", multiple=True, metavar="KEY=VALUE",
              help="Option for the adjuster factory (repeatable), e.g. per_label=true.")
@click.option("--profile", help="Scoring profile ordering the tables (paper, cxr-lt) [default: the benchmark's].")
@click.option("--tracker", "tracker", help="Comma-separated experiment trackers receiving the curves, metrics and "
                                           "recipe (tensorboard, mlflow, or a plugin's), written in RUN_DIR/trackers.")
@click.option("--thresholds", "threshold_rule", type=click.Choice(["fixed", "val-f1"]),
              help="val-f1 adds *_tuned rows: decision metrics at per-label thresholds fitted on validation "
                   "[default: fixed, the paper's 0.5 only].")
@click.option("--no-crop", is_flag=True, help="Whole image resized, no lung crop (the paper's Tables 4-5 setting).")
@click.option("--no-augment", is_flag=True, help="No data augmentation (the paper's Tables 4-7 settings).")
@pretrained_option
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs (early stopping may end sooner).")
@click.option("--image-size", type=click.IntRange(min=16), help="Training image size [default: the recipe's].")
@click.option("--seed", type=int, help="Training seed (the split is fixed by the benchmark).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(min=1), help="Threads decoding and cropping images [default: all cores].")
@click.option("--only-backbone", "only_backbone", multiple=True, help="Train only this backbone (repeatable); no ensembles.")
@click.option("--ensemble-only", "ensemble_only", type=click.Path(path_type=Path),
              help="Build ensembles and metrics in this RUN_DIR once every backbone has predictions.")
@click.option("--bootstrap", "n_boot", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Patient-bootstrap replicates for the 95% CIs (0: none).")
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile the training step (GPU speed option).")
@click.option("--progress", "progress", type=click.Choice(MODES), default="auto", show_default=True,
              help="Bars on a terminal, plain lines elsewhere (auto), or force one.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output (the final table still prints).")
@click.option("--no-progress", is_flag=True, hidden=True, help="Same as --quiet (kept for old scripts).")
@executor_options
@config_option(recipe_table=True)
def run_command(benchmark, demo, demo_option, csv_path, images, dataset_option, out, cache, backbones, loss, ensembles, loss_option,
                backbone_option, sampler, sampler_option, schedule, schedule_option, adjuster, adjuster_option, profile,
                tracker, threshold_rule, no_crop, no_augment, pretrained, epochs, image_size, seed, device, workers, only_backbone,
                ensemble_only, n_boot, use_compile, progress, quiet, no_progress, executor, gpus_per_node,
                cpus_per_task, mem_gb, timeout_min, partition, slurm_param, parallel, no_wait):
    """Run BENCHMARK end to end: split, preprocess, train, ensemble, score."""
    from mlbench.api import run_benchmark
    from mlbench.execution.executors import JobsSubmitted

    if only_backbone and ensemble_only:
        raise click.UsageError("--only-backbone and --ensemble-only exclude each other")
    options = dict(out=ensemble_only or out, csv=csv_path, images=images, demo=demo, cache=cache,
                   loss_options=parse_pairs(loss_option, "--loss-option") or None,
                   demo_options=parse_pairs(demo_option, "--demo-option") or None,
                   dataset_options=parse_pairs(dataset_option, "--dataset-option") or None,
                   backbones=comma_names(backbones, "--backbones"), loss=loss,
                   ensembles=comma_names(ensembles, "--ensembles"), sampler=sampler,
                   sampler_options=parse_pairs(sampler_option, "--sampler-option") or None,
                   threshold_rule=threshold_rule, schedule=schedule,
                   schedule_options=parse_pairs(schedule_option, "--schedule-option") or None, adjuster=adjuster,
                   adjuster_options=parse_pairs(adjuster_option, "--adjuster-option") or None, profile=profile,
                   trackers=comma_names(tracker, "--tracker"),
                   crop=False if no_crop else None, augment=False if no_augment else None, pretrained=pretrained,
                   max_epochs=epochs,
                   image_size=image_size, seed=seed, device=device, workers=workers,
                   only_backbones=only_backbone or None, ensemble_only=bool(ensemble_only), n_boot=n_boot,
                   compile=use_compile, progress="quiet" if quiet or no_progress else progress,
                   scoped_backbone_options=parse_pairs(backbone_option, "--backbone-option") or None,
                   executor=executor, wait=not no_wait, say=make_console().say,
                   resources=executor_resources(gpus_per_node, cpus_per_task, mem_gb, timeout_min, partition,
                                                slurm_param, parallel))
    recipe = click.get_current_context().meta.get(RECIPE_TABLE)  # --config's [recipe] table
    if recipe is not None:
        options["recipe"] = recipe
    try:
        result = run_benchmark(benchmark, **options)
    except JobsSubmitted as submitted:
        print_submitted(make_console(), submitted, f"`sacct -j {','.join(submitted.job_ids)}` shows their state; "
                        "run this same command again to resubmit failed jobs, or to print the leaderboard "
                        "once they are done")
        return
    if not result.is_main:  # another rank of a torchrun job: rank 0 reports
        return
    console = make_console()
    if result.leaderboard is None:
        console.say(f"trained {', '.join(only_backbone)} in {result.run_dir}; "
                      f"run with --ensemble-only {result.run_dir} once every backbone is done")
        return
    kind = result.manifest["dataset_kind"]
    title = f"{benchmark} ({result.manifest['variant']}) on {kind} data — test split, macro over labels"
    if is_synthetic(kind):
        title += "\nSYNTHETIC DEMO DATA: not comparable with published results"
    from mlbench.results.profiles import profile_of

    console.print(results_table(result.leaderboard, title, profile_of(result.manifest)))
    skipped = result.manifest.get("skipped", {}).get("counts", {})
    if skipped:
        console.say("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    from mlbench.results.rundir import RunDir

    run = RunDir(result.run_dir)
    files = (run.manifest_file, run.split_file, run.predictions_file, run.leaderboard_file)
    console.say(f"files in {result.run_dir}: {', '.join(f.name for f in files)}")


@click.command("demo-data")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--benchmark", required=True, help="Whose dataset writes the corpus (see `mlbench plugins`).")
@click.option("--seed", default=0, show_default=True, type=int)
def demo_data_command(out_dir, benchmark, seed):
    """Write the synthetic demo corpus (the dataset's own format) to OUT_DIR."""
    from mlbench.api import write_demo_data

    source = write_demo_data(benchmark, out_dir, seed=seed)
    click.echo(f"synthetic demo corpus written: csv={source.csv} images={source.images}")


@click.command("preprocess")
@click.argument("benchmark")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, exists=True, dir_okay=False), required=True)
@click.option("--images", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--cache", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Cache folder (shared by runs).")
@click.option("--no-crop", is_flag=True, help="Cache whole resized images instead of lung crops.")
@click.option("--size", type=click.IntRange(min=16), help="Image size in pixels [default: the benchmark recipe's].")
@click.option("--workers", type=click.IntRange(min=1), help="Threads decoding and cropping images [default: all cores].")
@click.option("--dataset-option", "dataset_option", multiple=True, metavar="KEY=VALUE",
              help="Option the dataset declares (repeatable), e.g. policy=zeros.")
def preprocess_command(benchmark, csv_path, images, cache, no_crop, size, workers, dataset_option):
    """Decode, crop and resize every image of BENCHMARK once into CACHE (parallel, resumable)."""
    from mlbench.api import preprocess_images

    summary = preprocess_images(benchmark, csv_path, images, cache, crop=not no_crop, size=size, workers=workers,
                                dataset_options=parse_pairs(dataset_option, "--dataset-option") or None)
    click.echo(f"cache {summary['path']}: {summary['ok']} images ready, {summary['skipped']} skipped "
               f"(listed in {summary['manifest']})")
