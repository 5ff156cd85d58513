"""One writer process per run or grid directory: a second ``mlbench run`` or ``mlbench grid`` refuses.

``mlbench run`` and ``mlbench grid`` (the driving command) hold their directory's *writer lock* for
as long as they work on it; a second command on the same directory refuses at once, in one line
naming the first one's pid, host and start time. Each task of a run (``train:BACKBONE``,
``ensembles``) has a lock of its own: a whole run holds all of them, an executor's job or a
hand-split ``--only-backbone`` run holds only its own, so the jobs of one run never refuse each
other while two writers of one backbone do::

    DIR/.mlbench-writer/
      dir.lock, dir.json            the directory's writer (the command driving it) and who it is
      task.NAME.lock, task.NAME.json   one task's writer (NAME: train--BACKBONE, ensembles)

A lock is an exclusive non-blocking ``fcntl.flock`` on the ``.lock`` file, so the kernel releases
it when its process dies, SIGKILL included: there is no stale lock to clear. The ``.json`` beside it
(written atomically through :mod:`mlbench.foundations.io`) records the holder's pid, host and start time, and
stays after the holder ended: ``released_at`` says it let go, its absence that it was killed.
:func:`holder` asks whether anyone holds a lock now (``mlbench grid status`` tells "running" from
"interrupted" with it). A forked child without exec would inherit a lock; mlbench forks none (the
cache builds with threads, submitit starts its jobs with exec).

Refusing beats waiting: a second identical command is almost always a mistake (a doubled
submission, a forgotten terminal), waiting would hold a terminal or a cluster allocation doing
nothing, and when the first one finishes the second would only find the work done. The refusal
says which process to wait for or stop.

:class:`RunDir.lock <mlbench.results.rundir.RunDir.lock>` is another lock: short, blocking, around each
read-modify-write of a file, taken by every process of a run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from mlbench.foundations.errors import UserError
from mlbench.foundations.io import read_json, write_json

WRITER_DIR = ".mlbench-writer"
WHOLE = "dir"
TASK_PREFIX = "task."
# What a directory is, by the kind of command that wrote it.
KINDS = {"run": "a run directory (written by `mlbench run`)", "grid": "a grid directory (written by `mlbench grid`)"}
ROLES = ("command", "job")  # the command driving the directory, or one job of an executor's run
# A lock found held is tried again for this long: a status probe holds it for microseconds, and a
# new holder writes its record a moment after taking the lock.
RETRY_S = 1.0
POLL_S = 0.05
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_TASK = re.compile(r"[A-Za-z0-9._:+-]{1,200}")


class DirectoryBusy(UserError):
    """Another live process writes the directory (the message names it: pid, host, start time)."""


class DirectoryKindError(UserError):
    """The directory belongs to the other kind of command (a grid directory given to ``mlbench run``)."""


@dataclass(frozen=True)
class Writer:
    """Who holds (or last held) a writer lock, as its record says; None where the record is unreadable."""

    pid: int | None = None
    host: str | None = None
    started_at: str | None = None
    kind: str | None = None  # run or grid
    role: str | None = None  # command or job
    task: str | None = None  # None: the directory's own lock
    released_at: str | None = None  # set when it let go; unset after a kill

    def describe(self) -> str:
        """``pid 123 on node7, started 2025-01-02T03:04:05+00:00`` (only what the record holds sanely)."""
        if self.pid is None:
            return "a process whose record is unreadable"
        text = f"pid {self.pid}" + (f" on {self.host}" if self.host else "")
        return text + (f", started {self.started_at}" if self.started_at else "")

    @property
    def by(self) -> str:
        """``mlbench run``, ``mlbench grid``, ``a job of mlbench run`` or ``another process``."""
        if self.kind not in KINDS:
            return "another process"
        return f"a job of `mlbench {self.kind}`" if self.role == "job" else f"`mlbench {self.kind}`"


def file_stem(task: str | None) -> str:
    """The lock's file name without suffix: ``dir``, or ``task.train--resnet10t`` for ``train:resnet10t``."""
    if task is None:
        return WHOLE
    return TASK_PREFIX + re.sub(r"[^A-Za-z0-9._+-]", "_", task.replace(":", "--"))


def _paths(directory: Path, task: str | None) -> tuple[Path, Path]:
    folder = Path(directory) / WRITER_DIR
    stem = file_stem(task)
    return folder / f"{stem}.lock", folder / f"{stem}.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_record(path: Path) -> Writer | None:
    """The record at ``path`` (None when there is none); each field kept only when sane (the file is hostile)."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return Writer()
    if not isinstance(data, dict):
        return Writer()

    def text(key: str, pattern: re.Pattern[str]) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and pattern.fullmatch(value) else None

    def when(key: str) -> str | None:
        value = data.get(key)
        if not isinstance(value, str) or len(value) > 64:
            return None
        try:
            return datetime.fromisoformat(value).isoformat(timespec="seconds")
        except ValueError:
            return None

    pid = data.get("pid")
    kind, role = data.get("kind"), data.get("role")
    return Writer(pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
                  host=text("host", _HOST), started_at=when("started_at"), kind=kind if kind in KINDS else None,
                  role=role if role in ROLES else None, task=text("task", _TASK), released_at=when("released_at"))


def recorded_kind(directory: str | os.PathLike) -> str | None:
    """run or grid: the kind of command that last held DIRECTORY's own lock (None: none known)."""
    record = read_record(_paths(Path(directory), None)[1])
    return record.kind if record else None


def _alive_here(writer: Writer) -> bool:
    """False only for a record of this host whose pid is gone (a previous holder's, not the current one's)."""
    if writer.pid is None or writer.host != socket.gethostname():
        return True
    try:
        os.kill(writer.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _current(record: Writer | None) -> bool:
    """Whether a held lock's record is its holder's (not a previous holder's left behind)."""
    return record is not None and record.pid is not None and record.released_at is None and _alive_here(record)


def holder(directory: str | os.PathLike, task: str | None = None) -> Writer | None:
    """Who holds DIRECTORY's lock (or ``task``'s) now; None when nobody does. Creates nothing."""
    lock_file, record_file = _paths(Path(directory), task)
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # never locked (or unreadable: nothing to tell)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            record = read_record(record_file)
            return record if _current(record) else Writer(task=task)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def live_writers(directory: str | os.PathLike) -> list[Writer]:
    """Every lock under DIRECTORY held now (its own first, then its tasks')."""
    folder = Path(directory) / WRITER_DIR
    if not folder.is_dir():
        return []
    out = []
    for lock_file in sorted(folder.glob("*.lock"), key=lambda p: (p.stem != WHOLE, p.name)):
        record_task = None
        if lock_file.stem != WHOLE:
            record = read_record(lock_file.with_suffix(".json"))
            record_task = record.task if record and record.task and file_stem(record.task) == lock_file.stem else None
            if record_task is None:
                record_task = lock_file.stem.removeprefix(TASK_PREFIX)
        found = holder(directory, record_task) if lock_file.stem != WHOLE else holder(directory)
        if found is not None:
            out.append(found)
    return out


def last_writer(directory: str | os.PathLike, task: str | None = None) -> Writer | None:
    """The record of whoever held the lock last, live or not (None: never held)."""
    return read_record(_paths(Path(directory), task)[1])


def _refusal(directory: Path, task: str | None, record: Writer | None) -> DirectoryBusy:
    writer = record if _current(record) else Writer()
    what = f"{directory}" + (f" ({task})" if task else "")
    who = f"{writer.by} ({writer.describe()})" if writer.pid is not None else "another process (not yet recorded)"
    return DirectoryBusy(f"{what}: already being written by {who}; wait for it to finish or stop it, "
                         "or choose another --out")


@contextlib.contextmanager
def hold(directory: str | os.PathLike, kind: str, *, whole: bool = True, tasks: Sequence[str] = (),
         role: str = "command") -> Iterator[None]:
    """Hold DIRECTORY's writer lock (``whole``) and each task's for the block, or raise at once.

    Raises :class:`DirectoryBusy` naming the live holder of the first lock found held (every lock
    taken so far is let go), or :class:`DirectoryKindError` when DIRECTORY was written by the other
    kind of command. Nothing is waited for beyond :data:`RETRY_S`.
    """
    if kind not in KINDS or role not in ROLES:
        raise ValueError(f"kind {kind!r}, role {role!r}: expected one of {sorted(KINDS)} and {ROLES}")
    directory = Path(directory)
    known = recorded_kind(directory)
    if known is not None and known != kind:
        raise DirectoryKindError(f"{directory}: is {KINDS[known]}, not {KINDS[kind].split(' (')[0]}; "
                                 "choose another --out")
    (directory / WRITER_DIR).mkdir(parents=True, exist_ok=True)
    wanted = ([None] if whole else []) + list(dict.fromkeys(tasks))
    held: list[tuple[int, Path, dict]] = []
    try:
        for task in wanted:
            lock_file, record_file = _paths(directory, task)
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            deadline = time.monotonic() + RETRY_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        os.close(fd)
                        raise
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        raise _refusal(directory, task, read_record(record_file)) from None
                    time.sleep(POLL_S)
            info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": _now(), "kind": kind,
                    "role": role, "task": task}
            held.append((fd, record_file, info))
            write_json(record_file, info)
        yield
    finally:
        for fd, record_file, info in reversed(held):
            with contextlib.suppress(OSError):  # a full disk must not hide why the block ended
                write_json(record_file, {**info, "released_at": _now()})
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
