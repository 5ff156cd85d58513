"""``mlbench explain``: Grad-CAM panels, uncertainty maps and heatmap scores for a trained run."""

from __future__ import annotations

from pathlib import Path

import click

from mlbench.foundations.options import parse_pairs


@click.command("explain")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder for the panels, maps and JSON.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), help="Explain this split of the run instead of files.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many images of --split (in split order).")
@click.option("--labels", help="Comma-separated labels to explain [default: those the ensemble predicts].")
@click.option("--threshold", type=float, help="Decision threshold for labels and agreement [default: the run's, 0.5].")
@click.option("--ensemble", default="ctp", show_default=True, help="Ensemble plugin giving the probability in titles.")
@click.option("--agreeing-only", is_flag=True, help="Average only the maps of models that reach the threshold.")
@click.option("--no-score", is_flag=True, help="Do not score heatmaps against finding boxes.")
@click.option("--boxes", type=click.Path(path_type=Path), help="Finding boxes CSV (image_id,label,x0,y0,x1,y1) "
              "[default: findings.csv beside the run's label CSV, as the demo writes it].")
@click.option("--lungs", type=click.Path(path_type=Path), help="Lung-field boxes CSV (image_id,side,x0,y0,x1,y1) "
              "[default: lungs.csv beside the run's label CSV].")
@click.option("--explainer", help="Explainer plugin [default: the run's recipe, gradcam].")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Explainer option, repeatable (e.g. target_layer=backbone.layer4, min_map_size=2).")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1), help="Images per batch.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--cache", type=click.Path(path_type=Path, file_okay=False),
              help="The run's preprocessing cache, when it is not inside RUN_DIR [default: the one RUN_DIR holds].")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path, dir_okay=False),
              help="The run's label file, when it is not inside RUN_DIR (for original images and box files).")
@click.option("--image-root", type=click.Path(path_type=Path, file_okay=False),
              help="The folder the label file's image paths are relative to, when it is not inside RUN_DIR.")
def explain_command(run_dir, images, out, split, limit, labels, threshold, ensemble, agreeing_only, no_score, boxes,
                    lungs, explainer, options, batch_size, device, cache, csv_path, image_root):
    """Explain IMAGE files (or --split) with the run's ensemble: one panel per label, std map, JSON, scores."""
    from mlbench.api import explain_images

    # The option pairs that exclude each other, spelled as options (the API says the same in its terms).
    if limit and not split:  # checked first: it is the more precise message
        raise click.UsageError("--limit goes with --split; expected --split train, val or test")
    if images and split:
        raise click.UsageError("give IMAGE files or --split, not both")
    if not images and not split:
        raise click.UsageError("give IMAGE files to explain, or --split test")
    names = [n.strip() for n in labels.split(",") if n.strip()] if labels else None
    report = explain_images(run_dir, out, images=list(images), split=split, limit=limit, labels=names,
                            threshold=threshold, ensemble=ensemble, device=device, batch_size=batch_size,
                            agreeing_only=agreeing_only, score=not no_score, boxes=boxes, lungs=lungs,
                            explainer=explainer, explainer_options=parse_pairs(options, "--option"),
                            cache=cache, csv=csv_path, image_root=image_root)
    click.echo(f"explained {len(report.explained)} images in {report.seconds:.1f} s -> {report.out}")
    click.echo("target layers: " + ", ".join(f"{m}: {layer}" for m, layer in report.target_layers.items()))
    for item in report.summary:
        if item["label"] == "__global__":
            ci = (f" [{item['ci_low']:.3f}, {item['ci_high']:.3f}]" if item["ci_low"] is not None else "")
            click.echo(f"{item['metric']}: {item['value']:.3f}{ci} over {item['n_positive']} findings")
    if report.leaderboard_rows:
        from mlbench.results.rundir import RunDir

        click.echo(f"{report.leaderboard_rows} cam_ rows written to {RunDir(run_dir).leaderboard_file}")
    if report.skipped:
        click.echo(f"skipped {len(report.skipped)} items (listed in {report.out / 'explain.json'})")
