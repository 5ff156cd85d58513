"""predictions.parquet: long format, one row per (image, entry, label) probability.

Columns: image_id, split, entry, label, probability. For the PTC ensembles the "probability" is
their 0/1 decision (they decide before combining); every entry's decision is probability >= the
run's threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlbench.errors import UserError
from mlbench.io import write_parquet

SCHEMA = pa.schema([
    ("image_id", pa.string()), ("split", pa.string()), ("entry", pa.string()),
    ("label", pa.string()), ("probability", pa.float64()),
])


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
    """A predictions file is missing or unreadable (the message names it)."""


def read(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    try:
        return pq.read_table(path, schema=SCHEMA).to_pandas()
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise PredictionsError(f"{path}: not a readable predictions file ({str(exc).splitlines()[0]}); "
                               f"expected columns {SCHEMA.names}") from None


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
