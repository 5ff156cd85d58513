"""``KEY=VALUE`` options (``--loss-option``, ``--backbone-option``, ``-o``): one parser, one typing rule.

A value is read as JSON when it is a JSON literal (``3``, ``0.5``, ``[1, 2]``, ``{"a": 1}``,
``true``, ``null``), and Python's spellings ``True``, ``False`` and ``None`` mean the same;
anything else stays the plain string (a path, a name).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from mlbench.errors import UserError

_PYTHON_WORDS = {"True": True, "False": False, "None": None}


class OptionError(UserError, ValueError):
    """A KEY=VALUE option is malformed (the message names the option)."""


def parse_value(text: str) -> Any:
    text = text.strip()
    if text in _PYTHON_WORDS:
        return _PYTHON_WORDS[text]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_pairs(pairs: Iterable[str], option: str) -> dict[str, Any]:
    """``["gamma=2", "alpha=0.25"]`` -> ``{"gamma": 2, "alpha": 0.25}``; errors name ``option``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"{option} {pair!r}: expected KEY=VALUE")
        out[key] = parse_value(value)
    return out


def parse_scoped_pairs(pairs: Iterable[str], option: str, scopes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``[SCOPE.]KEY=VALUE``: with a scope the option goes to that one, without it to every scope."""
    scopes = tuple(scopes)
    out: dict[str, dict[str, Any]] = {}
    for key, value in parse_pairs(pairs, option).items():
        scope, dot, name = key.rpartition(".")
        if dot and not name:
            raise OptionError(f"{option} {key}=...: expected [NAME.]KEY=VALUE")
        for target in ([scope] if dot else scopes):
            out.setdefault(target, {})[name] = value
    return out
