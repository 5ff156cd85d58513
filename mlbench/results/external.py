"""A predictions file that code outside mlbench can write: what ``mlbench score`` reads and ``mlbench predict`` writes.

The format (docs/leaderboard.md, "Predictions from any framework"): a CSV file (``.csv``, or
gzipped ``.csv.gz``) or a parquet file (``.parquet``), chosen by the file name's suffix, in long
form, one row per (image, label):

=============== ======== ==================================================================
``image_id``    required the image as the benchmark's label file names it
``label``       required a benchmark label, spelled as the benchmark spells it
``probability`` required a number in [0, 1] (a 0/1 decision is a probability too)
``entry``       optional the model's name, when the file holds several; absent: one entry, ``external``
``split``       optional ``test`` or ``val``; absent: every row is a test row
=============== ======== ==================================================================

Any other column is refused (a CSV written with pandas' index needs ``index=False``). Ids are read
as text with surrounding spaces removed. The file is outside input: its size and row count are
checked before it is parsed, and each mistake is one :class:`ExternalPredictionsError` naming the
file, the row as a spreadsheet numbers it (a CSV's header is row 1, so its first prediction is
row 2; a parquet file has no header row, its first prediction is row 1) and the column, and how
many rows share the mistake. Messages name ids (image, entry, label) but never quote a
probability or a cell that is not an id; a header's names are shown only when they are plain names.

What :func:`read_external` returns has the columns and types of
:mod:`mlbench.results.predictions` (image_id, split, entry, label, probability), so the one
coverage check (:func:`mlbench.results.predictions.validate`) applies to it unchanged.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlbench.foundations.io import atomic_path, os_reason, write_parquet
from mlbench.results import predictions
from mlbench.results.predictions import PredictionsError, show

REQUIRED = ("image_id", "label", "probability")
OPTIONAL = ("entry", "split")
ID_COLUMNS = ("image_id", "entry", "label", "split")
DEFAULT_ENTRY = "external"  # the one entry of a file without an entry column
SPLITS = ("test", "val")
DEFAULT_SPLIT = "test"
SUFFIXES = {".csv": "csv", ".csv.gz": "csv.gz", ".parquet": "parquet"}
# Limits checked before a file is parsed: far above a real test split (PadChest: ~25,000 test
# images x a few dozen labels x a few entries is a few million rows).
MAX_BYTES = 4 << 30  # on disk, and the decompressed text of a .csv.gz
MAX_ROWS = 25_000_000
CSV_CHUNK_ROWS = 1_000_000
# A header name shown in a message: plain words only (a hostile header could hold anything).
PLAIN_NAME = re.compile(r"[A-Za-z0-9_ .()-]{1,64}")
NAN_WORDS = frozenset({"", "nan", "na", "n/a", "null", "none"})
# The columns in the order mlbench writes them.
COLUMNS = ("image_id", "split", "entry", "label", "probability")


class ExternalPredictionsError(PredictionsError):
    """An outside predictions file cannot be used (one line: the file, the row, the column, what was expected)."""


def file_format(path: str | os.PathLike) -> str:
    """``csv``, ``csv.gz`` or ``parquet`` from the file name's suffix (any case); else refused naming the file."""
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):  # .csv.gz before .gz-less .csv
        if name.endswith(suffix) and len(name) > len(suffix):
            return SUFFIXES[suffix]
    raise ExternalPredictionsError(f"{path}: not a predictions file name; expected a name ending in "
                                   f"{', '.join(SUFFIXES)}")


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _column_name(name: Any, position: int) -> str:
    """A header cell as a message may show it: its name when plain, else its position."""
    text = "" if name is None else str(name)
    return f"'{text}'" if PLAIN_NAME.fullmatch(text) else f"{position} (its name is not a plain name)"


def _check_columns(path: Path, names: list[Any]) -> None:
    """Every required column present, nothing else, none twice."""
    expected = f"expected columns {', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)}"
    for position, name in enumerate(names, start=1):
        text = "" if name is None else str(name)
        if text.strip() == "" and position == 1:
            raise ExternalPredictionsError(f"{path}: column 1 has no name (an index written with the data? "
                                           f"pandas: to_csv(..., index=False)); {expected}")
        if text not in REQUIRED + OPTIONAL:
            raise ExternalPredictionsError(f"{path}: column {_column_name(name, position)} is not a column of "
                                           f"the format; {expected}")
        if names[:position - 1].count(name):
            raise ExternalPredictionsError(f"{path}: column '{text}' appears twice in the header; "
                                           f"{expected} once each")
    for name in REQUIRED:
        if name not in names:
            raise ExternalPredictionsError(f"{path}: column '{name}' is missing; {expected}")


# -- reading -------------------------------------------------------------------------------------------
class _Limited(io.RawIOBase):
    """A binary stream that stops with an error once more than ``limit`` bytes came through."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self.raw, self.limit, self.seen = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.seen += len(data)
        if self.seen > self.limit:
            raise _TooLarge()
        buffer[:len(data)] = data
        return len(data)


class _TooLarge(Exception):
    pass


def _check_size(path: Path) -> None:
    if not path.exists():
        raise ExternalPredictionsError(f"{path}: no such predictions file")
    if not path.is_file():
        raise ExternalPredictionsError(f"{path}: not a file; expected a predictions file ({', '.join(SUFFIXES)})")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ExternalPredictionsError(f"{path}: cannot read it ({os_reason(exc)})") from None
    if size > MAX_BYTES:
        raise ExternalPredictionsError(f"{path}: {size:,} bytes, over the limit of {MAX_BYTES:,} for a predictions file")


def _read_csv(path: Path, compressed: bool) -> tuple[pd.DataFrame, int]:
    """Every cell as text (header included, so repeated names stay visible); the first data row's number."""
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise ExternalPredictionsError(f"{path}: cannot read it ({os_reason(exc)})") from None
    with raw:
        source: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        stream = io.BufferedReader(_Limited(source, MAX_BYTES))
        chunks, n = [], 0
        try:
            reader = pd.read_csv(stream, header=None, dtype=str, na_filter=False, keep_default_na=False,
                                 encoding="utf-8-sig", chunksize=CSV_CHUNK_ROWS, engine="c")
            for chunk in reader:
                n += len(chunk)
                if n > MAX_ROWS + 1:
                    raise ExternalPredictionsError(f"{path}: more than {MAX_ROWS:,} rows, the limit for a "
                                                   "predictions file")
                chunks.append(chunk)
        except _TooLarge:
            raise ExternalPredictionsError(f"{path}: more than {MAX_BYTES:,} bytes of text once decompressed, the "
                                           "limit for a predictions file") from None
        except pd.errors.EmptyDataError:
            raise ExternalPredictionsError(f"{path}: empty; expected a header line ({', '.join(REQUIRED)}, ...) "
                                           "and one row per image and label") from None
        except pd.errors.ParserError as exc:
            line = re.search(r"line (\d+)", str(exc))
            where = f"row {line.group(1)}" if line else "a row"
            raise ExternalPredictionsError(f"{path}: {where} has another number of fields than the header (or "
                                           "an unclosed quote); expected one field per header column") from None
        except UnicodeDecodeError:
            raise ExternalPredictionsError(f"{path}: not UTF-8 text; expected a CSV file in UTF-8") from None
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            what = "not a whole gzip file" if compressed else f"cannot read it ({os_reason(exc)})"
            raise ExternalPredictionsError(f"{path}: {what}; expected a {'gzipped ' if compressed else ''}CSV "
                                           "file") from None
    cells = pd.concat(chunks, ignore_index=True)
    header = [h.strip() if isinstance(h, str) else "" for h in cells.iloc[0].tolist()]
    _check_columns(path, header)
    frame = cells.iloc[1:].reset_index(drop=True)
    frame.columns = header
    return frame, 2


def _read_parquet(path: Path) -> tuple[pd.DataFrame, int]:
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ExternalPredictionsError(f"{path}: not a readable parquet file ({reason})") from None
    meta = handle.metadata
    if meta.num_rows > MAX_ROWS:
        raise ExternalPredictionsError(f"{path}: {meta.num_rows:,} rows, over the limit of {MAX_ROWS:,} for a "
                                       "predictions file")
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if unpacked > MAX_BYTES:
        raise ExternalPredictionsError(f"{path}: {unpacked:,} bytes once decompressed, over the limit of "
                                       f"{MAX_BYTES:,} for a predictions file")
    schema = handle.schema_arrow
    _check_columns(path, list(schema.names))
    for name in schema.names:
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind):  # pandas categoricals
            kind = kind.value_type
        if name == "probability":
            ok = pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)
            expected = "numbers"
        else:
            ok = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
            expected = "strings"
        if not ok:
            raise ExternalPredictionsError(f"{path}: column '{name}' has type {kind}; expected {expected}")
    try:
        table = handle.read()
    except (pa.ArrowException, OSError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ExternalPredictionsError(f"{path}: not a readable parquet file ({reason})") from None
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if name == "probability":
            columns[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            columns[name] = np.asarray(column.cast(pa.string()).to_pylist(), dtype=object)
    return pd.DataFrame(columns), 1


def _first(bad: np.ndarray) -> int:
    return int(np.argmax(bad))


def _ids(frame: pd.DataFrame, name: str, path: Path, first_row: int) -> np.ndarray:
    """One id column as stripped strings; an empty cell is refused naming its row."""
    values = frame[name].to_numpy(dtype=object)
    # A row with fewer fields than the header comes back padded with NaN: an empty cell too.
    text = np.array([v.strip() if isinstance(v, str) else "" for v in values], dtype=object)
    empty = text == ""
    if empty.any():
        raise ExternalPredictionsError(f"{path} row {_first(empty) + first_row}: column '{name}' is empty"
                                       f"{_more(empty)}; "
                                       f"expected {'an image id' if name == 'image_id' else 'a name'} in every row")
    return text


def _probabilities(frame: pd.DataFrame, path: Path, first_row: int) -> np.ndarray:
    column = frame["probability"]
    if not pd.api.types.is_numeric_dtype(column):  # CSV text: parsed by Python's float(), exact for what repr() wrote
        # A padded short row holds NaN (float) among the text: "nan" then, empty or NaN below.
        text = np.array([v if isinstance(v, str) else "nan" for v in column.tolist()], dtype=str)
        try:
            values = text.astype(np.float64)
        except ValueError:
            lowered = np.char.lower(np.char.strip(text))
            parsed = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(dtype=np.float64)
            words = np.isin(lowered, list(NAN_WORDS))
            bad = np.isnan(parsed) & ~words
            if bad.any():
                raise ExternalPredictionsError(f"{path} row {_first(bad) + first_row}: column 'probability' is not a "
                                               f"number{_more(bad)}; expected a probability in [0, 1]")
            values = np.where(words, np.nan, parsed)
    else:
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    if missing.any():
        raise ExternalPredictionsError(f"{path} row {_first(missing) + first_row}: column 'probability' is empty or "
                                       f"NaN{_more(missing)}; expected a probability in [0, 1]")
    outside = ~((values >= 0.0) & (values <= 1.0))  # infinities included
    if outside.any():
        raise ExternalPredictionsError(f"{path} row {_first(outside) + first_row}: column 'probability' is outside "
                                       f"[0, 1]{_more(outside)}; expected a probability in [0, 1]")
    return values


def _more(bad: np.ndarray) -> str:
    n = int(bad.sum())
    return f" (and {n - 1} more {'row' if n == 2 else 'rows'})" if n > 1 else ""


def read_external_table(path: str | os.PathLike) -> pa.Table:
    """Read and check an outside predictions file (module docstring); a table of ``predictions.SCHEMA``."""
    path = Path(path)
    kind = file_format(path)
    _check_size(path)
    frame, first_row = _read_parquet(path) if kind == "parquet" else _read_csv(path, kind == "csv.gz")
    n = len(frame)
    image_ids = _ids(frame, "image_id", path, first_row)
    labels = _ids(frame, "label", path, first_row)
    entries = _ids(frame, "entry", path, first_row) if "entry" in frame else np.full(n, DEFAULT_ENTRY, dtype=object)
    if "split" in frame:
        splits = _ids(frame, "split", path, first_row)
        other = ~np.isin(splits, SPLITS)
        if other.any():
            raise ExternalPredictionsError(f"{path} row {_first(other) + first_row}: column 'split' is neither "
                                           f"{' nor '.join(map(repr, SPLITS))}{_more(other)}; expected one of them "
                                           "(or no split column: every row is a test row)")
    else:
        splits = np.full(n, DEFAULT_SPLIT, dtype=object)
    probability = _probabilities(frame, path, first_row)
    keys = pd.DataFrame({"image_id": image_ids, "entry": entries, "label": labels, "split": splits})
    repeated = keys.duplicated(keep="first").to_numpy()
    if repeated.any():
        at = _first(repeated)
        same = (keys == keys.iloc[at]).all(axis=1).to_numpy()
        earlier = _first(same)
        raise ExternalPredictionsError(
            f"{path} row {at + first_row}: repeats row {earlier + first_row}'s (image_id, entry, label, split): "
            f"image {show(image_ids[at])}, entry {show(entries[at])}, label {show(labels[at])}{_more(repeated)}; "
            "expected each once")
    if n == 0:
        raise ExternalPredictionsError(f"{path}: no rows; expected one row per image and label")
    return pa.table({"image_id": image_ids, "split": splits, "entry": entries, "label": labels,
                     "probability": probability}, schema=predictions.SCHEMA)


def read_external(path: str | os.PathLike) -> pd.DataFrame:
    """:func:`read_external_table` as a frame: image_id, split, entry, label, probability."""
    return read_external_table(path).to_pandas()


# -- writing -------------------------------------------------------------------------------------------
def write_external(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """Write ``frame`` (image_id, split, entry, label, probability) atomically in the format the suffix names.

    Floats are written as Python's repr (they read back exactly); a ``.csv.gz`` has no timestamp in
    its header, so the same predictions give the same bytes."""
    path = Path(path)
    kind = file_format(path)
    frame = frame[list(COLUMNS)]
    if kind == "parquet":
        write_parquet(path, pa.Table.from_pandas(frame, schema=predictions.SCHEMA, preserve_index=False))
        return path
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            packed = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") if kind == "csv.gz" else None
            text = io.TextIOWrapper(packed or raw, encoding="utf-8", newline="")
            frame.to_csv(text, index=False)
            text.flush()
            text.detach()  # the binary file stays open: closed (and synced) below
            if packed is not None:
                packed.close()
            raw.flush()
            os.fsync(raw.fileno())
    return path
