"""``KEY=VALUE`` options (``--loss-option``, ``--backbone-option``, ``-o``): one parser, one typing rule.

A value is read as JSON when it is a JSON literal (``3``, ``0.5``, ``[1, 2]``, ``{"a": 1}``,
``true``, ``null``), and Python's spellings ``True``, ``False`` and ``None`` mean the same;
anything else stays the plain string (a path, a name).
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
from typing import Any, Iterable

from mlbench.foundations.errors import UserError

_PYTHON_WORDS = {"True": True, "False": False, "None": None}


class OptionError(UserError, ValueError):
    """A KEY=VALUE option is malformed (the message names the option)."""


# The command line's flag of a run option whose Python keyword differs or that users type most:
# plan_run and the API's argument checks name both, as either may have set it.
OPTION_FLAGS = {"max_epochs": "--epochs", "image_size": "--image-size", "seed": "--seed", "seeds": "--seeds",
                "workers": "--workers", "n_boot": "--bootstrap", "batch_size": "--batch-size"}
SEED_MAX = 2**32 - 1  # numpy's random generators (demo corpora, samplers) take 0 <= seed < 2**32

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


def shown(value: Any, limit: int = 40) -> str:
    """A value as the user typed it (a string without quotes), cut short."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_number(value: Any) -> bool:
    """A real number, not a bool (JSON's true is no 1.0 here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(value: Any, who: str, key: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, none: bool = False) -> float | None:
    """``value`` as a float inside the range, else one :class:`OptionError` naming ``who``, ``key``, the value
    and the range. NaN and infinities are never in range (a loss or weight computed from them is NaN)."""
    if value is None and none:
        return None
    ok = is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return float(value)
    if low is not None and high is not None:
        span = f"lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        span = f"be a number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        span = f"be a number {'<' if high_open else '<='} {high:g}"
    else:
        span = "be a finite number"
    raise OptionError(f"{who}: {key} must {span}{' (or null)' if none else ''}, got {shown(value)}")


def check_factory_options(factory: Any, values: dict[str, Any], who: str, given: Iterable[str] = ()) -> None:
    """Check ``values`` against ``factory``'s signature before calling it, so a mistake is one line.

    A key the factory does not name (unless it takes ``**options``) is refused with the names it
    does take, less the ``given`` ones the caller passes itself; a key whose default is a number
    must be a finite number (the factory checks its own ranges).
    """
    try:
        params = {p.name: p for p in inspect.signature(factory).parameters.values()}
    except (TypeError, ValueError):
        return
    given = set(given)
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if n not in given and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    for key, value in values.items():
        param = params.get(key)
        if key in given:
            raise OptionError(f"{who}: {key} is not an option (mlbench computes it)")
        if param is None:
            if open_ended:
                continue
            raise OptionError(f"{who}: no option '{key}'; {'it takes ' + ', '.join(named) if named else 'it takes none'}")
        if is_number(param.default):
            check_number(value, who, key)
        elif isinstance(param.default, bool) and not isinstance(value, bool):
            raise OptionError(f"{who}: {key} must be true or false, got {shown(value)}")
