"""The one base class of every mistake a user can fix.

Each room keeps its own error class (``RunError``, ``DatasetError``, ``LeaderboardError`` ...),
all derived from :class:`UserError`, whose message names the file, row, field or option and
what was expected. The CLI turns a ``UserError`` into one line and a non-zero exit; anything
else is a bug in mlbench or a plugin and keeps its traceback.
"""


class UserError(Exception):
    """A mistake the user can fix; its message is the whole explanation."""
