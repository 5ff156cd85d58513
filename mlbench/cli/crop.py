"""``mlbench crop``: crop chest X-rays to their lungs and say where each crop came from.

:func:`mlbench.api.crop_images` does the work (the cropper's defaults included); the command parses
options, shows a rich progress bar and prints a summary.
"""

from __future__ import annotations

from pathlib import Path

import click

from mlbench.cli.output import make_console
from mlbench.foundations.options import parse_pairs


@click.command("crop")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the cropped PNGs and crops.csv.")
@click.option("--size", default=224, show_default=True, help="Side of the square crop in pixels.")
@click.option("--preprocessor", help="A registered preprocessor (see `mlbench plugins`) [default: the one "
              "registered besides resize].")
@click.option("--segmenter", default=None, help="Lung segmenter: threshold (weight-free) or torch.")
@click.option("--weights", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Lung-segmentation network for --segmenter torch (.pt2 or TorchScript).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Extra preprocessor option, repeatable (e.g. -o margin=0.08).")
@click.option("--invert", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True,
              help="Flip MONOCHROME1 images: detect, always or never.")
@click.option("--bits", type=click.Choice(["8", "16"]), default="16", show_default=True,
              help="Bit depth of the written PNGs.")
def crop(inputs: tuple[Path, ...], out_dir: Path, size: int, preprocessor: str, segmenter: str | None,
         weights: str | None, options: tuple[str, ...], invert: str, bits: str) -> None:
    """Crop chest X-rays (files or folders) to the lungs; write PNGs and OUT/crops.csv."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from mlbench.api import crop_images  # OpenCV: not for --help

    console = make_console(stderr=True)
    columns = (TextColumn("cropping"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("crop", total=None)
        report = crop_images(list(inputs), out_dir, size=size, preprocessor=preprocessor, segmenter=segmenter,
                             weights=weights, options=parse_pairs(options, "-o/--option"),
                             invert={"auto": None, "yes": True, "no": False}[invert], bits=int(bits),
                             on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.say(f"{report.n_cropped} cropped ({report.n_fallback} kept whole: see the reason column), "
                f"{len(report.skipped)} skipped -> {report.csv_path}")
    for skip in report.skipped:
        console.say(f"  skipped {skip.item}: {skip.reason} {skip.detail}".rstrip())
    if report.missing:
        raise click.ClickException(f"{', '.join(report.missing)}: no such file or folder (the other inputs were cropped)")
