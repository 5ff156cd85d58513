"""Atomic file writes: every file a run writes appears whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from mlbench.foundations.errors import UserError


class OutputPathError(UserError):
    """A file cannot be written where asked (the message names the path in the way)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def os_reason(exc: OSError) -> str:
    """The OS's words for a failed file operation (never the file's content)."""
    if exc.strerror:
        return exc.strerror
    if exc.errno:
        return os.strerror(exc.errno)
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def make_parent(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` goes in; an ``OutputPathError`` names what is in the way."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists() and not p.is_dir()), path.parent)
        raise OutputPathError(f"{path}: cannot write here, {blocker} is a file; expected a folder") from None
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot create its folder {path.parent} ({os_reason(exc)})") from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    An ``OSError`` (no space left, no permission, a read-only or virtual file system) becomes an
    :class:`OutputPathError` naming ``path`` and the OS's reason; the temporary file is removed and
    whatever was at ``path`` stays as it was.
    """
    path = make_parent(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: is a folder; expected a file name to write")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write a file in {path.parent} ({os_reason(exc)})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600 files; give the result the mode a plain open() would (umask applies).
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        kept = "the file there is unchanged" if os.path.lexists(path) else "nothing was written"
        raise OutputPathError(f"{path}: cannot write it ({os_reason(exc)}); {kept}") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(path: str | os.PathLike, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
