"""Paths that come from a file, kept inside the folder they belong to.

A run directory, a grid, a demo corpus or a bundle is something people download and share, so a
path stored in one of its files is hostile until shown otherwise: it is followed only when its real
path (symlinks resolved) lies inside the folder it was stored for. Paths a user types on the
command line are theirs and are never checked here.
"""

from __future__ import annotations

import os
from pathlib import Path

# Stored paths appear in messages so the user can find them; a hostile one could be long or hold
# control characters, so only a bounded repr of it is ever shown.
SHOWN_CHARACTERS = 120


def shown(stored: object) -> str:
    """A stored value as it may appear in a message: repr'd (control characters escaped), bounded."""
    text = repr(stored)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS - 3] + "..."


def lies_under(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or below it: a plain string test on two absolute paths (give real
    paths, from ``os.path.realpath``, to test where a file really is)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when ``path``'s real path (symlinks resolved, even if it does not exist) is ``root`` or under it."""
    return lies_under(os.path.realpath(path), os.path.realpath(root))


def inside(root: str | os.PathLike, stored: object) -> Path | None:
    """``root / stored`` when ``stored`` is a relative path string that stays inside ``root``, else None."""
    if not isinstance(stored, str) or not stored or "\x00" in stored or os.path.isabs(stored):
        return None
    candidate = Path(root) / stored
    return candidate if is_inside(candidate, root) else None
