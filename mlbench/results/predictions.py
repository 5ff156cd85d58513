"""predictions.parquet: long format, one row per (image, entry, label) probability.

Columns: image_id, split, entry, label, probability. For the PTC ensembles the "probability" is
their 0/1 decision (they decide before combining); every entry's decision is probability >= the
run's threshold.

A predictions file may come from anywhere (a copied run directory, a SLURM job's backbone
folder), so every reader goes through :func:`read`, which checks it with :func:`validate`: the
columns and their types, ids present, every probability finite and in [0, 1], no duplicated
(image_id, split, entry, label) row, and the coverage the caller asks for (:class:`Coverage`).
A failure is one :class:`PredictionsError` naming the file, the column, how many rows and one
example key; it never quotes a probability or anything else of the file but its ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlbench.foundations.errors import UserError
from mlbench.foundations.io import write_parquet

SCHEMA = pa.schema([
    ("image_id", pa.string()), ("split", pa.string()), ("entry", pa.string()),
    ("label", pa.string()), ("probability", pa.float64()),
])
KEY = ("image_id", "split", "entry", "label")
# Ids from a hostile file are shown only this long (and escaped when not printable).
SHOWN_ID = 80


def to_table(image_ids: Sequence[str], splits: Sequence[str], entry: str, labels: Sequence[str],
             probs: np.ndarray) -> pa.Table:
    probs = np.asarray(probs, dtype=np.float64)
    n, n_labels = probs.shape
    if n != len(image_ids) or n != len(splits) or n_labels != len(labels):
        raise ValueError(f"predictions for '{entry}': {probs.shape} probabilities for {len(image_ids)} images "
                         f"and {len(labels)} labels")
    return pa.table({
        "image_id": np.repeat(np.asarray(image_ids, dtype=object), n_labels),
        "split": np.repeat(np.asarray(splits, dtype=object), n_labels),
        "entry": np.full(n * n_labels, entry, dtype=object),
        "label": np.tile(np.asarray(labels, dtype=object), n),
        "probability": probs.reshape(-1),
    }, schema=SCHEMA)


def write(path: str | Path, tables: Sequence[pa.Table]) -> None:
    write_parquet(path, pa.concat_tables(tables) if tables else SCHEMA.empty_table())


def from_frame(frame: pd.DataFrame) -> pa.Table:
    """A frame :func:`read` returned, back as a table of this schema."""
    return pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)


class PredictionsError(UserError, ValueError):
    """A predictions file is missing, unreadable or not what its reader needs (the message names it)."""


@dataclass(frozen=True)
class Coverage:
    """What a reader needs from the file: for every entry, exactly these images x labels in ``split``
    (no (image, label) row missing, none outside them; other splits and entries are not looked at)."""

    split: str
    image_ids: Sequence[str]
    entries: Sequence[str]
    labels: Sequence[str]


def show(value: object) -> str:
    """An id from a file, safe on one line: plain when printable and short, else escaped and cut."""
    text = str(value)
    if text.isprintable() and len(text) <= SHOWN_ID:
        return text
    return repr(text[:SHOWN_ID]) + ("..." if len(text) > SHOWN_ID else "")


class _Keys:
    """The four id columns as integer codes (pyarrow dictionary encoding: fast on millions of rows)."""

    def __init__(self, table: pa.Table) -> None:
        self.codes: dict[str, np.ndarray] = {}
        self.values: dict[str, list[str]] = {}
        for column in KEY:
            self.codes[column], self.values[column] = _encode(table.column(column))

    def code(self, column: str, value: str) -> int:
        try:
            return self.values[column].index(value)
        except ValueError:
            return -1

    def describe(self, row: int) -> str:
        return ", ".join(f"{c.removesuffix('_id')} {show(self.values[c][self.codes[c][row]])}" for c in KEY)

    def duplicated(self) -> np.ndarray:
        """True for each row whose key an earlier row has."""
        n = len(self.codes[KEY[0]])
        sizes = [max(len(self.values[c]), 1) for c in KEY]
        if float(np.prod(sizes, dtype=float)) >= 2.0 ** 62:
            return pd.DataFrame(self.codes).duplicated(keep="first").to_numpy()
        combined = np.zeros(n, dtype=np.int64)
        for column, size in zip(KEY, sizes):
            combined *= size
            combined += self.codes[column]
        order = np.argsort(combined, kind="stable")
        ordered = combined[order]
        repeats = np.zeros(n, dtype=bool)
        repeats[order[1:]] = ordered[1:] == ordered[:-1]  # stable sort: the first of equal keys stays unflagged
        return repeats


def _encode(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """(int64 codes, values) of a string column; pyarrow's chunked encoding grows one dictionary
    chunk by chunk, so every chunk's dictionary is a prefix of the last one's (checked, else re-encoded)."""
    encoded = column.dictionary_encode()
    chunks = [c for c in encoded.chunks if len(c)]
    if chunks and all(c.dictionary.equals(chunks[-1].dictionary.slice(0, len(c.dictionary))) for c in chunks):
        codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]).astype(np.int64)
        return codes, chunks[-1].dictionary.to_pylist()
    whole = column.combine_chunks().dictionary_encode() if chunks else pa.array([], pa.string()).dictionary_encode()
    return whole.indices.to_numpy(zero_copy_only=False).astype(np.int64), whole.dictionary.to_pylist()


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def validate(table: pa.Table, where: str | Path, coverage: Iterable[Coverage] = ()) -> pd.DataFrame:
    """Check a predictions table (module docstring); return it as a frame of :data:`SCHEMA`'s types.

    ``where`` names the file in every message; ``coverage`` lists what the caller needs.
    """
    where = str(where)
    missing = [c for c in SCHEMA.names if c not in table.column_names]
    if missing:
        raise PredictionsError(f"{where}: column '{missing[0]}' is missing; expected columns "
                               f"{', '.join(SCHEMA.names)}")
    for f in SCHEMA:
        have = table.schema.field(f.name).type
        if pa.types.is_dictionary(have):  # pandas categoricals
            have = have.value_type
        if f.type == pa.string():
            ok = pa.types.is_string(have) or pa.types.is_large_string(have) or pa.types.is_null(have)
            expected = "strings"
        else:
            ok = pa.types.is_floating(have) or pa.types.is_null(have)
            expected = "floating-point probabilities (double), not strings or integers"
        if not ok:
            raise PredictionsError(f"{where}: column '{f.name}' has type {have}; expected {expected}")
    table = table.select(SCHEMA.names).cast(pa.schema(list(SCHEMA)))
    for column in KEY:
        empty = table.column(column).null_count
        if empty:
            raise PredictionsError(f"{where}: column '{column}' is empty in {_rows(empty)}; expected an id in every row")
    keys = _Keys(table)
    p = table.column("probability").to_numpy()
    bad = ~np.isfinite(p)
    if bad.any():
        raise PredictionsError(f"{where}: column 'probability' is NaN, empty or infinite in {_rows(int(bad.sum()))}, "
                               f"e.g. {keys.describe(int(np.argmax(bad)))}; expected a probability in [0, 1]")
    bad = (p < 0) | (p > 1)
    if bad.any():
        raise PredictionsError(f"{where}: column 'probability' is outside [0, 1] in {_rows(int(bad.sum()))}, "
                               f"e.g. {keys.describe(int(np.argmax(bad)))}")
    dupes = keys.duplicated()
    if dupes.any():
        n = int(dupes.sum())
        raise PredictionsError(f"{where}: {_rows(n)} {'repeats' if n == 1 else 'repeat'} an earlier (image_id, split, entry, label), "
                               f"e.g. {keys.describe(int(np.argmax(dupes)))}; expected each once")
    for want in coverage:
        _check_coverage(keys, want, where)
    return table.to_pandas()


def _check_coverage(keys: _Keys, want: Coverage, where: str) -> None:
    images, labels = pd.Index(list(want.image_ids)), pd.Index(list(want.labels))
    # file code -> position in the wanted images / labels (-1: not wanted)
    image_pos = images.get_indexer(pd.Index(keys.values["image_id"], dtype=object)) if len(images) else None
    label_pos = labels.get_indexer(pd.Index(keys.values["label"], dtype=object))
    in_split = keys.codes["split"] == keys.code("split", want.split)
    for entry in want.entries:
        rows = np.flatnonzero(in_split & (keys.codes["entry"] == keys.code("entry", entry)))
        if not len(rows):
            raise PredictionsError(f"{where}: entry '{show(entry)}' has no {want.split} rows; expected "
                                   f"{len(images)} images x {len(labels)} labels")
        image_at = image_pos[keys.codes["image_id"][rows]] if image_pos is not None else np.full(len(rows), -1)
        label_at = label_pos[keys.codes["label"][rows]]
        outside = (image_at < 0) | (label_at < 0)
        if outside.any():
            raise PredictionsError(f"{where}: entry '{show(entry)}' has {_rows(int(outside.sum()))} outside the "
                                   f"{len(images)} {want.split} images and {len(labels)} labels expected, "
                                   f"e.g. {keys.describe(int(rows[np.argmax(outside)]))}")
        have = np.zeros(len(images) * len(labels), dtype=bool)
        have[image_at * len(labels) + label_at] = True  # no duplicates (checked before): one row per cell
        if not have.all():
            lacking = np.flatnonzero(~have)
            i, j = divmod(int(lacking[0]), len(labels))
            n_images = len(np.unique(lacking // len(labels)))
            raise PredictionsError(f"{where}: entry '{show(entry)}' lacks {want.split} images {show(images[i])}"
                                   f"{f' and {n_images - 1} more' if n_images > 1 else ''} "
                                   f"({_rows(len(lacking))} missing, e.g. label {show(labels[j])}; expected every "
                                   f"label of the {len(images)} {want.split} images)")


def read(path: str | Path, coverage: Iterable[Coverage] = ()) -> pd.DataFrame:
    """Read and :func:`validate` a predictions file."""
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise PredictionsError(f"{path}: not a readable parquet file ({reason}); "
                               f"expected a predictions file with columns {', '.join(SCHEMA.names)}") from None
    return validate(table, path, coverage)


def wide(frame: pd.DataFrame, entry: str, image_ids: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """The (images, labels) matrix of one entry, rows and columns in the order given.

    Raises if an image or label is missing, so a recomputation never silently drops a row.
    """
    sub = frame[frame["entry"] == entry]
    table = sub.pivot(index="image_id", columns="label", values="probability")
    missing_images = pd.Index(image_ids).difference(table.index)
    missing_labels = pd.Index(labels).difference(table.columns)
    if len(missing_images) or len(missing_labels):
        raise KeyError(f"predictions of '{entry}' lack {len(missing_images)} images "
                       f"(e.g. {list(missing_images[:3])}) and labels {list(missing_labels)}")
    return table.loc[list(image_ids), list(labels)].to_numpy(dtype=np.float64)
