"""``mlbench predict RUN_DIR --images DIR --out FILE``: a trained run's models on images without labels.

Thin: parses the options, calls :func:`mlbench.api.predict_images` and prints what was written,
what was resumed and what was skipped.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from mlbench.cli.output import make_console
from mlbench.training.progress import MODES

SHOWN_SKIPS = 5


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


@click.command("predict")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--images", required=True, type=click.Path(path_type=Path),
              help="The folder of the images (.png, .jpg, .jpeg, searched recursively).")
@click.option("--list", "list_file", type=click.Path(path_type=Path),
              help="Only the images this file names: one path relative to --images per line.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The predictions file to write (.csv, .csv.gz or .parquet); finished chunks wait in OUT.parts/.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per model call [default: the recipe's x 4].")
@click.option("--workers", type=click.IntRange(min=1), help="Threads preparing images [default: all cores].")
@click.option("--progress", type=click.Choice(MODES), default="auto", show_default=True,
              help="Bars on a terminal, lines elsewhere (auto), or quiet.")
def predict_command(run_dir, images, list_file, out, device, batch_size, workers, progress):
    """Predict the images under --images with every backbone and ensemble of RUN_DIR into --out."""
    from mlbench.api import predict_images

    result = predict_images(run_dir, images=images, out=out, list_file=list_file, device=device,
                            batch_size=batch_size, workers=workers, progress=progress)
    console = make_console()
    if result.reused:
        console.say(f"resumed: {result.reused} of {result.chunks} chunks were finished before")
    console.say(f"predicted {_images(result.n_images)} with {len(result.entries)} entries "
                f"({', '.join(result.entries)}) on {result.device}: wrote {result.out}")
    if result.skipped:
        reasons = ", ".join(f"{reason} {n}" for reason, n in Counter(s.reason for s in result.skipped).most_common())
        console.say(f"skipped {_images(len(result.skipped))} ({reasons}), every one listed in {result.skipped_file}:")
        for skip in result.skipped[:SHOWN_SKIPS]:
            console.say(f"  - {skip.item}: {skip.reason}")
        if len(result.skipped) > SHOWN_SKIPS:
            console.say(f"  ... and {len(result.skipped) - SHOWN_SKIPS} more")
