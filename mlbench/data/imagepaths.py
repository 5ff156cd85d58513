"""Image paths that stay inside their image root.

An image folder is outside input: a file or a folder in it may be a symbolic link to anywhere on
the disk, and a stored relative path may hold ``..``. Every reader and every command that opens
images found under a root (the dataset readers, the preprocessing cache, ``mlbench crop DIR``,
``mlbench explain``'s original films) asks :class:`ImageRoot` for each image's real path: it is
given back when ``os.path.realpath`` of the path lies inside the real root (links that stay inside
are fine), else refused, and the caller counts a :class:`~mlbench.data.Skip` with reason
:data:`OUTSIDE_ROOT` (:meth:`ImageRoot.refusal`), so the refusal lands in the manifest and
``skipped.parquet`` like any other skip. A file the user names explicitly is not under a root and
is not checked here: that is the user's own choice.

Only paths are resolved: nothing is read, and no folder is listed, through a link.
"""

from __future__ import annotations

import os
import stat
from typing import Union

from mlbench.data import Skip

OUTSIDE_ROOT = "outside_root"  # the Skip reason of an image whose real path leaves its root

PathLike = Union[str, "os.PathLike[str]"]


class ImageRoot:
    """One image root, resolved once, that resolves the image paths below it.

    ``cache_folders``: resolve each folder once and then only ``lstat`` each file, resolving it in
    full only when it is a link (a reader's 160k rows sit in a few dozen folders). A check made
    again right before decoding passes False: every path is resolved in full, so a folder swapped
    for a link since the last image is still seen.
    """

    def __init__(self, root: PathLike, *, cache_folders: bool = True) -> None:
        self.root = os.fspath(root)
        self.real = os.path.realpath(self.root)
        self._cache_folders = cache_folders
        self._prefix = self.real.rstrip(os.sep) + os.sep
        self._folders: dict[str, tuple[str, bool]] = {}  # folder -> (real path, exists)

    def resolve(self, path: PathLike) -> str | None:
        """The real path of ``path`` (relative to the root, or absolute) when it lies inside the real
        root, else None. A file that does not exist resolves too: whoever opens it reports it missing."""
        path = os.fspath(path)
        full = path if os.path.isabs(path) else self._prefix + path
        try:
            real = self._realpath(full)
        except ValueError:  # a NUL byte: no such file can exist, and the opener says so
            return full
        return real if real == self.real or real.startswith(self._prefix) else None

    def refusal(self, item: str, path: PathLike) -> Skip:
        """The Skip of an image refused by :meth:`resolve` (``item`` names it: image id or file)."""
        return Skip(item, OUTSIDE_ROOT, f"{os.fspath(path)} leads outside the image root {self.root} "
                                        "(a symbolic link or '..'); expected a file inside it")

    def _realpath(self, full: str) -> str:
        cut = full.rfind(os.sep)
        folder, name = full[:cut] or os.sep, full[cut + 1:]
        if not self._cache_folders or name in ("", ".", ".."):
            return os.path.realpath(full)
        known = self._folders.get(folder)
        if known is None:
            real_folder = os.path.realpath(folder)
            known = self._folders[folder] = (real_folder, os.path.isdir(real_folder))
        real = known[0].rstrip(os.sep) + os.sep + name
        if not known[1]:  # no such folder (a split from the label file alone): nothing to follow
            return real
        try:
            if stat.S_ISLNK(os.lstat(real).st_mode):
                return os.path.realpath(real)
        except OSError:  # missing or unreadable: the path stays as it is (nothing to follow)
            pass
        return real


def resolve_image(root: PathLike, path: PathLike) -> str | None:
    """One path's real path when it stays inside ``root``, else None (see :meth:`ImageRoot.resolve`)."""
    return ImageRoot(root, cache_folders=False).resolve(path)
