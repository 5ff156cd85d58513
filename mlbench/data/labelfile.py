"""Reading a dataset's label file (CSV, plain or gzipped) as text columns, with one-line errors.

Dataset readers call :func:`read_columns` for the columns they need; every way the file can be
unusable as a whole (missing, binary, not CSV, a required column absent, no data row) becomes a
:class:`mlbench.data.DatasetError` naming the file and what was expected. Bad *rows* are the
reader's business: it counts and lists them as skips.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from mlbench.data import DatasetError

_UNSAFE_CHARACTER = re.compile(r"[/\\:\x00-\x1f]")
_CSV_ERRORS = (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError)


def unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` (a file or folder name from a label file) is not one plain name, or None.

    Names with separators, drive colons or control characters could reach outside the image folder."""
    if name in ("", ".", ".."):
        return f"{name!r} is not a file name"
    found = _UNSAFE_CHARACTER.search(name)
    return f"contains {found.group()!r}" if found else None


# The columns found are named only when the first line really is a header of short plain names:
# any other file (a password file, a report) must not have its first line quoted in a message.
_PLAIN_COLUMN = re.compile(r"[A-Za-z0-9 _.()#%+-]{1,64}")
MAX_COLUMNS_SHOWN = 40


def describe_header(header: Sequence[str]) -> str:
    """What a message may say about a label file's first line: its column names, or only their count."""
    named = [c for c in header if not str(c).startswith("Unnamed:")]
    if len(header) >= 2 and named and all(_PLAIN_COLUMN.fullmatch(str(c)) for c in named):
        shown = ", ".join(named[:MAX_COLUMNS_SHOWN])
        return shown + (f" and {len(named) - MAX_COLUMNS_SHOWN} more" if len(named) > MAX_COLUMNS_SHOWN else "")
    return f"{len(header)} field(s) that are not a header of column names (the first line is not shown)"


def looks_binary(path: Path, probe: int = 8192) -> bool:
    """NUL bytes in the header line: an image or archive passed as the label file.

    Only the header: NUL bytes in a data row are a hostile row, skipped and listed by the reader."""
    try:
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rb") as f:
            head = f.read(probe)
    except (OSError, EOFError):  # a broken gzip stream: pandas' read says what is wrong with it
        return False
    return b"\x00" in head.split(b"\n", 1)[0]


def read_columns(path: Path, required: Sequence[str], optional: Sequence[str] = (), *, what: str) -> pd.DataFrame:
    """``required`` and the present ``optional`` columns of the label file as strings (absent optional
    columns become empty strings). ``what`` names the file for messages, e.g. "PadChest's label CSV"."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")
    if looks_binary(path):
        raise DatasetError(f"{path}: binary content (NUL bytes in the header line), not a CSV text file; "
                           f"expected {what} (.csv or .csv.gz)")
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except _CSV_ERRORS as exc:
        raise DatasetError(f"{path}: cannot read it as a CSV file: {exc}") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetError(f"{path}: missing required column(s) {', '.join(missing)}; "
                           f"expected {', '.join(required)}; found {describe_header(header)}")
    wanted = [c for c in (*required, *optional) if c in header]
    try:
        raw = pd.read_csv(path, usecols=wanted, dtype=str, keep_default_na=False, na_filter=False)
    except (*_CSV_ERRORS, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read it as a CSV file: {exc}") from None
    if raw.empty:
        raise DatasetError(f"{path}: no data rows, only a header; expected one row per image")
    for column in optional:
        if column not in raw.columns:
            raw[column] = ""
    return raw
