"""Config files: TOML read with the standard library, and a small TOML writer for what mlbench prints.

:func:`read_config` turns a missing file or one that is not TOML into one :class:`ConfigError` line
naming the file. :func:`dumps` writes the subset of TOML a config file needs: top-level keys whose
values are strings, ints, floats, bools, lists of those or inline tables, then one level of
``[tables]``; each key may carry a comment line above it. Whatever it writes, ``tomllib`` reads
back equal (tests/test_config_file.py checks the round trip).
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

from mlbench.foundations.errors import UserError

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


class ConfigError(UserError):
    """A config file that cannot be used (the message names the file and the key)."""


def read_config(path: str | Path) -> dict[str, Any]:
    """The TOML file at ``path`` as a dict; a missing, unreadable or malformed file is one ConfigError."""
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise ConfigError(f"{path}: {what}; expected a TOML config file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; expected a TOML config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); expected KEY = VALUE lines") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); expected a TOML config file") from None


def key_text(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"a TOML key must be a non-empty str, not {key!r}")
    return key if BARE_KEY.fullmatch(key) else string_text(key)


def string_text(value: str) -> str:
    out = []
    for ch in value:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def value_text(value: Any) -> str:
    """One TOML value: str, bool, int, float, list/tuple or a mapping (as an inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return string_text(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key_text(k)} = {value_text(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"TOML has no value for {type(value).__name__} {value!r} (None is left out)")


def dumps(top: Mapping[str, Any], tables: Mapping[str, Mapping[str, Any]] | None = None, *,
          header: str = "", comments: Mapping[str, str] | None = None) -> str:
    """TOML text: ``header`` (comment lines), the ``top`` keys, then each of ``tables`` as ``[name]``.

    ``comments`` maps a top-level key or a table name to a comment written on the line above it.
    A value of None is left out (TOML has no null)."""
    comments = comments or {}
    lines = [f"# {line}".rstrip() for line in header.splitlines()]

    def put(key: str, value: Any) -> None:
        if value is None:
            return
        if key in comments:
            lines.extend(f"# {line}".rstrip() for line in comments[key].splitlines())
        lines.append(f"{key_text(key)} = {value_text(value)}")

    for key, value in top.items():
        put(key, value)
    for name, table in (tables or {}).items():
        lines.append("")
        if name in comments:
            lines.extend(f"# {line}".rstrip() for line in comments[name].splitlines())
        lines.append(f"[{key_text(name)}]")
        for key, value in table.items():
            if value is not None:
                lines.append(f"{key_text(key)} = {value_text(value)}")
    return "\n".join(lines) + "\n"
