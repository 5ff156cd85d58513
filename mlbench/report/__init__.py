"""``mlbench report``: one self-contained HTML page for a run directory, a remedy grid or a board.

``collect`` reads the files, ``build`` turns them into plain data, ``svg`` draws the plots and
``html`` lays out the page. :func:`write_report` is the one entry point.

``--out`` never lands on a run or grid directory's own files (a report written over
``RUN/manifest.json`` would destroy the run), and replaces an existing file only when it is an
mlbench report (the page carries :data:`mlbench.report.html.MARKER`), unless ``force``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

from mlbench.foundations.io import write_text
from mlbench.report.collect import ReportError, is_grid
from mlbench.results.rundir import RunDir

__all__ = ["ReportError", "ReportNote", "is_report_file", "write_report"]


class ReportNote(UserWarning):
    """Something the page leaves out and why (e.g. an unreadable split.parquet); the page shows it too."""


def write_report(path_in: str | Path, out: str | Path, against: str | None = None,
                 explain_dirs: list[str | Path] | None = None, force: bool = False,
                 on_note: Callable[[str], None] | None = None) -> Path:
    """Write the report of ``path_in`` (a run directory, or a grid directory holding
    ``comparison.parquet``) to ``out``; ``against="published"`` adds the published baseline;
    ``explain_dirs`` are ``mlbench explain`` output folders kept outside the run directory.

    ``force`` replaces a file at ``out`` that is not an mlbench report. Each note (what the page
    leaves out, and why) goes to ``on_note``, else is issued as a :class:`ReportNote` warning."""
    from mlbench.judging.board import BOARD_FILE
    from mlbench.report import build, html

    path_in, out = Path(path_in), Path(out)
    if not path_in.is_dir():
        raise ReportError(f"{path_in}: not a directory; expected a run directory, a grid directory or a board")
    check_out(out, force)
    if (path_in / BOARD_FILE).is_file():
        if against is not None or explain_dirs:
            raise ReportError(f"{path_in} is a board: --against and --explain apply to run directories (the board "
                              "page always sets each submission against the published baseline)")
        from mlbench.report.board import render_board

        text, notes = render_board(path_in), []
    elif is_grid(path_in):
        if against is not None or explain_dirs:
            raise ReportError(f"{path_in} is a grid directory: --against and --explain apply to run directories")
        text, notes = html.render_grid(build.build_grid(path_in)), []
    else:
        report = build.build_run(path_in, against=against, explain_dirs=[Path(d) for d in explain_dirs or []])
        text, notes = html.render_run(report), report.notes
    write_text(out, text)
    for note in notes:
        if on_note is not None:
            on_note(note)
        else:
            warnings.warn(note, ReportNote, stacklevel=2)
    return out


def check_out(out: Path, force: bool) -> None:
    """Refuse an ``out`` that is a folder, a run or grid directory's own file, or someone else's file."""
    if out.is_dir():
        raise ReportError(f"--out {out}: is a folder; expected the path of the HTML file to write")
    # Both spellings: the path as given, and where a symlink on the way leads.
    for target in dict.fromkeys((Path(os.path.abspath(out)), Path(os.path.realpath(out)))):
        for folder in target.parents:
            what = owner_of(folder, target)
            if what:
                raise ReportError(f"--out {out}: is one of the files of {what} {folder}, which the report must not "
                                  f"replace; expected a path outside its own files (e.g. {folder / 'report.html'})")
    if os.path.lexists(out) and not force and not is_report_file(out):
        raise ReportError(f"--out {out}: exists and is not an mlbench report; pass --force (force=True) to replace "
                          "it, or choose another --out")


def owner_of(folder: Path, target: Path) -> str | None:
    """"the run directory" / "the grid directory" when ``target`` is one of ``folder``'s own files."""
    from mlbench.foundations import dirlock
    from mlbench.results import griddir

    rundir, grid = RunDir(folder), griddir.GridDir(folder)
    writer = folder / dirlock.WRITER_DIR  # who drives the directory, in both kinds
    # The executors' records: jobs/ in a run started with --executor, failed.json in a run a job ran in.
    run_extra = (writer, folder / griddir.JOBS_DIR, folder / griddir.FAILURE_FILE)
    if rundir.exists() and (rundir.owns(target) or within(target, run_extra)):
        return "the run directory"
    if grid.looks_like_grid() and within(target, (*grid.own_files(), writer)):
        return "the grid directory"
    from mlbench.judging.board import board_files

    if within(target, board_files(folder)):
        return "the board"
    return None


def within(target: Path, paths: tuple[Path, ...]) -> bool:
    """``target`` is one of ``paths`` or inside one of them."""
    return any(target == path or path in target.parents for path in paths)


def is_report_file(path: str | Path) -> bool:
    """A regular file (not a link) that an ``mlbench report`` wrote: the marker is near its start."""
    from mlbench.report.html import MARKER, MARKER_WITHIN

    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            return MARKER.encode() in f.read(MARKER_WITHIN)
    except OSError:
        return False
