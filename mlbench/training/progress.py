"""What a long command shows while it works: bars on a terminal, plain lines elsewhere, or nothing.

Under SLURM, nohup or CI stdout is not a terminal and rich's bars print nothing until the end, so
there :class:`LineProgress` prints one line per finished epoch or stage step instead. Both offer
the few ``rich.progress.Progress`` methods mlbench calls (add_task, advance, update, reset,
remove_task), so the code that reports progress does not care which one it got.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, TextIO

MODES = ("auto", "bars", "lines", "quiet")
LINE_EVERY_S = 15.0  # a counting task (images cached, batches) prints at most this often


def resolve_mode(mode: str | bool | None, stream: TextIO | None = None) -> str:
    """``auto`` becomes ``bars`` on a terminal and ``lines`` elsewhere; True/False mean auto/quiet."""
    if mode is True or mode is None:
        mode = "auto"
    if mode is False:
        mode = "quiet"
    if mode not in MODES:
        raise ValueError(f"progress mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == "auto":
        stream = stream or sys.stdout
        return "bars" if getattr(stream, "isatty", lambda: False)() else "lines"
    return mode


class LineProgress:
    """Plain progress lines: a task prints when its description changes or it finishes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.perf_counter()
        self._tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def line(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:8.1f}s] {text}", file=self.stream, flush=True)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **_: Any) -> int:
        task = len(self._tasks)
        self._tasks[task] = {"description": description, "total": total, "completed": completed, "printed": 0.0}
        return task

    def reset(self, task: int, total: float | None = None, **_: Any) -> None:
        t = self._tasks[task]
        t["completed"] = 0
        if total is not None:
            t["total"] = total

    def advance(self, task: int, advance: float = 1) -> None:
        t = self._tasks[task]
        t["completed"] += advance
        now = time.perf_counter()
        done = t["total"] is not None and t["completed"] >= t["total"]
        if t["total"] and t["total"] > 50 and (done or now - t["printed"] >= LINE_EVERY_S):
            t["printed"] = now
            self.line(f"{t['description']}: {t['completed']:.0f}/{t['total']:.0f}")

    def update(self, task: int, *, completed: float | None = None, description: str | None = None,
               total: float | None = None, **_: Any) -> None:
        t = self._tasks[task]
        if total is not None:
            t["total"] = total
        if completed is not None:
            t["completed"] = completed
        if description is not None and description != t["description"]:
            t["description"] = description
            of = f"{t['completed']:.0f}/{t['total']:.0f} " if t["total"] else ""
            self.line(f"{of}{description}")

    def remove_task(self, task: int) -> None:
        self._tasks.pop(task, None)


class Reporter:
    """The one object a command passes around: stage lines and a progress display of its mode."""

    def __init__(self, mode: str | bool | None = "auto", stream: TextIO | None = None) -> None:
        self.mode = resolve_mode(mode, stream)
        self.stream = stream or sys.stdout
        self._lines = LineProgress(self.stream) if self.mode == "lines" else None

    def say(self, text: str) -> None:
        """A plain line (a stage started or ended); bars mode prints it too, quiet nothing."""
        if self._lines is not None:
            self._lines.line(text)
        elif self.mode == "bars":
            print(text, file=self.stream, flush=True)

    def bars(self):
        """A context giving a progress object (or None in quiet mode)."""
        if self.mode == "quiet":
            return contextlib.nullcontext(None)
        if self._lines is not None:
            return contextlib.nullcontext(self._lines)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        # A description holds names and paths: shown literally, never read as markup.
        return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), transient=True)
