"""``mlbench report``: one self-contained HTML page for a run directory or a remedy grid.

``collect`` reads the files, ``build`` turns them into plain data, ``svg`` draws the plots and
``html`` lays out the page. :func:`write_report` is the one entry point.
"""

from __future__ import annotations

from pathlib import Path

from mlbench.io import write_text
from mlbench.report.collect import ReportError, is_grid

__all__ = ["ReportError", "write_report"]


def write_report(path_in: str | Path, out: str | Path, against: str | None = None,
                 explain_dirs: list[str | Path] | None = None) -> Path:
    """Write the report of ``path_in`` (a run directory, or a grid directory holding
    ``comparison.parquet``) to ``out``; ``against="published"`` adds the published baseline;
    ``explain_dirs`` are ``mlbench explain`` output folders kept outside the run directory."""
    from mlbench.report import build, html

    path_in, out = Path(path_in), Path(out)
    if not path_in.is_dir():
        raise ReportError(f"{path_in}: not a directory; expected a run directory or a grid directory")
    if is_grid(path_in):
        if against is not None or explain_dirs:
            raise ReportError(f"{path_in} is a grid directory: --against and --explain apply to run directories")
        text = html.render_grid(build.build_grid(path_in))
    else:
        report = build.build_run(path_in, against=against, explain_dirs=[Path(d) for d in explain_dirs or []])
        text = html.render_run(report)
    write_text(out, text)
    return out
