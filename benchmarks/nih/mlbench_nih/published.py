"""Build NIH ChestX-ray14's published board from the TSV sources in ``leaderboards/nih-cxr14/``.

Sources (README.md beside them says what each holds and where it was read):

- ``published-mean-auc.tsv``: cited mean test AUCs on the official split, one ``__global__`` row each;
- ``wang2017-table17.tsv``: Wang et al. 2017, arXiv:1705.02315, Appendix B, Table 17 (ResNet-50);
- ``guan2018-table1.tsv``: Guan & Huang 2018, Pattern Recognition Letters, Table 1: their CRAL rows,
  and the rows that table restates from other papers (``restated = yes``).

A per-label table gives 14 ``auc`` rows per entry and its ``__global__`` row (the printed mean; where
none is printed, the entry's row of ``published-mean-auc.tsv``). Checks, each failure naming the file,
line and column: the header (the benchmark's 14 labels in its order), numbers in [0, 1], entry names
(own rows start with the paper, e.g. ``guan2018-cral-att1-resnet50``; restated rows end with
``-restated-PAPER``, so the entry names both works and ``run_id`` says "restated"), every mean within
half a unit of the third decimal of its cells' mean, and a restated row of a work the board already
carries (``same_work``) agreeing with it: cells equal to the primary table rounded half up to the printed
decimals (that row is then not shipped twice), or the printed mean equal to the board's mean row.

Rows are written in source order with null provenance, so the same TSVs give the same bytes.

Usage (from a source checkout)::

    python -m mlbench_nih.published          # check the TSVs, write the parquet file
    python -m mlbench_nih.published --check  # check, and fail if the shipped file differs
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from mlbench import leaderboard
from mlbench_nih.labels import LABELS

# The TSVs are repository files, not package data: building needs a source checkout.
SOURCE_DIR = Path(__file__).resolve().parents[3] / "leaderboards" / "nih-cxr14"
OUTPUT = Path(__file__).resolve().parent / "leaderboards" / "nih-cxr14.parquet"
MEAN_FILE = "published-mean-auc.tsv"
MEAN_HEADER = ("entry", "year", "authors", "title", "venue", "mean_auc")
BENCHMARK, BENCHMARK_VERSION, DATASET_KIND = "nih-cxr14", "1.0", "nih-cxr14"
# Whole films, the papers' own augmentation: the benchmark's no-crop setting.
VARIANT = "aug"
TABLE_HEADER = ("entry", "method", "cnn", "backbones", "restated", "same_work", *LABELS, "mean")
# Half a unit in the third decimal: how far a correctly rounded mean can sit from its cells' mean.
ROUNDING_TOLERANCE = Decimal("0.0005")
RESTATED_SUFFIX = "restated"
_MEAN_ENTRY = re.compile(r"[a-z]+\d{4}")
_WORD = r"[a-z0-9]+"
_BACKBONES = re.compile(r"[a-z0-9_]+")


@dataclass(frozen=True)
class PaperTable:
    """One printed per-label table: the paper (first author and year) and its table number."""

    paper: str
    table: int

    @property
    def file_name(self) -> str:
        return f"{self.paper}-table{self.table}.tsv"

    @property
    def run_id(self) -> str:
        return f"{self.paper}-table{self.table}"

    @property
    def restated_run_id(self) -> str:
        return f"{self.run_id}-{RESTATED_SUFFIX}"


# Primary tables first: a restated row is checked against the board built so far.
TABLES = (PaperTable("wang2017", 17), PaperTable("guan2018", 1))


class BuildError(ValueError):
    """A TSV breaks a rule (the message names the file, line and column)."""


@dataclass(frozen=True)
class MeanRow:
    entry: str
    mean_auc: Decimal
    line: int


@dataclass(frozen=True)
class LabelRow:
    """One row of a per-label table, as printed."""

    source: PaperTable
    line: int
    entry: str
    method: str
    cnn: str
    backbones: str | None
    restated: bool
    same_work: str | None
    values: dict[str, Decimal]  # label -> AUC, in LABELS order
    mean: Decimal | None  # None where the paper prints no mean

    @property
    def cells_mean(self) -> Decimal:
        return sum(self.values.values(), Decimal(0)) / len(self.values)

    @property
    def run_id(self) -> str:
        return self.source.restated_run_id if self.restated else self.source.run_id


@dataclass(frozen=True)
class Board:
    """Everything read and checked: the rows to ship and the checks made, for the report."""

    means: tuple[MeanRow, ...]
    shipped: tuple[LabelRow, ...]
    checked_only: tuple[LabelRow, ...]  # restatements of a primary table on the board
    mean_gaps: dict[str, Decimal]  # entry -> |cells' mean - its mean row|


def _tsv(path: Path, header: Sequence[str]) -> list[dict[str, Any]]:
    if not path.is_file():
        raise BuildError(f"{path}: no such file (the board is built from a source checkout)")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        found = next(reader, None)
        if found != list(header):
            raise BuildError(f"{path}: header {found}, expected {list(header)}")
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise BuildError(f"{path}:{line}: {len(cells)} fields, expected {len(header)}")
            rows.append({"_line": line, **dict(zip(header, cells))})
    return rows


def _number(path: Path, row: dict[str, Any], column: str) -> Decimal:
    text = row[column]
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BuildError(f"{path}:{row['_line']} column '{column}': {text!r} is not a number") from None
    if not value.is_finite() or not Decimal(0) <= value <= 1:
        raise BuildError(f"{path}:{row['_line']} column '{column}': {text} is outside [0, 1]")
    return value


def read_means(directory: Path = SOURCE_DIR) -> tuple[MeanRow, ...]:
    """``published-mean-auc.tsv``: one cited mean AUC per paper (entry = first author and year)."""
    path = directory / MEAN_FILE
    out, seen = [], set()
    for row in _tsv(path, MEAN_HEADER):
        where = f"{path}:{row['_line']}"
        entry = row["entry"]
        if not _MEAN_ENTRY.fullmatch(entry) or not entry.endswith(row["year"]):
            raise BuildError(f"{where} column 'entry': {entry!r} must be the first author and year (e.g. wang2017)")
        if entry in seen:
            raise BuildError(f"{where} column 'entry': {entry!r} repeats")
        seen.add(entry)
        if not row["title"].strip() or not row["venue"].strip():
            raise BuildError(f"{where}: title and venue are required")
        value = _number(path, row, "mean_auc")
        if value < Decimal("0.5"):
            raise BuildError(f"{where} column 'mean_auc': {value} is below 0.5")
        out.append(MeanRow(entry, value, row["_line"]))
    return tuple(out)


def read_table(source: PaperTable, directory: Path = SOURCE_DIR) -> tuple[LabelRow, ...]:
    """One per-label table as printed, each row's form checked (not yet against the others)."""
    path = directory / source.file_name
    own = re.compile(rf"{source.paper}(-{_WORD})*")
    restated = re.compile(rf"{_WORD}(-{_WORD})*-{RESTATED_SUFFIX}-{source.paper}")
    out = []
    for row in _tsv(path, TABLE_HEADER):
        where = f"{path}:{row['_line']}"
        entry, flag = row["entry"], row["restated"]
        if flag not in ("yes", "no"):
            raise BuildError(f"{where} column 'restated': {flag!r}, expected yes or no")
        is_restated = flag == "yes"
        pattern, example = ((restated, f"yao-{RESTATED_SUFFIX}-{source.paper}") if is_restated
                            else (own, f"{source.paper}-cral-att1-resnet50"))
        if not pattern.fullmatch(entry):
            raise BuildError(f"{where} column 'entry': {entry!r} does not name "
                             f"{'the restated work and ' if is_restated else ''}the paper (e.g. {example})")
        if row["same_work"] and not is_restated:
            raise BuildError(f"{where} column 'same_work': only a restated row names the board's entry of its work")
        if not row["method"].strip() or not row["cnn"].strip():
            raise BuildError(f"{where}: method and cnn are required (as printed)")
        if row["backbones"] and not _BACKBONES.fullmatch(row["backbones"]):
            raise BuildError(f"{where} column 'backbones': {row['backbones']!r} is not a timm model name")
        values = {label: _number(path, row, label) for label in LABELS}
        mean = _number(path, row, "mean") if row["mean"] else None
        out.append(LabelRow(source, row["_line"], entry, row["method"], row["cnn"], row["backbones"] or None,
                            is_restated, row["same_work"] or None, values, mean))
    if not out:
        raise BuildError(f"{path}: no rows")
    return tuple(out)


def _places(value: Decimal) -> Decimal:
    return Decimal(1).scaleb(value.as_tuple().exponent)


def load(directory: Path = SOURCE_DIR) -> Board:
    """Read every TSV and run every check; raise BuildError on the first failure."""
    means = read_means(directory)
    mean_of = {m.entry: m for m in means}
    on_board: dict[str, LabelRow] = {}  # per-label entries shipped so far
    shipped, checked_only, gaps = [], [], {}
    for source in TABLES:
        path = directory / source.file_name
        for row in read_table(source, directory):
            where = f"{path}:{row.line}"
            if row.entry in on_board or row.entry in {r.entry for r in checked_only}:
                raise BuildError(f"{where} column 'entry': {row.entry!r} repeats")
            # Where the paper prints no mean, the entry's cited mean is its __global__ row.
            if row.mean is None and row.entry not in mean_of:
                raise BuildError(f"{where} column 'mean': empty, and {MEAN_FILE} has no row of {row.entry!r}")
            if row.mean is not None and row.entry in mean_of:
                raise BuildError(f"{where} column 'entry': {row.entry!r} also has a row in {MEAN_FILE}; "
                                 "an entry has one mean")
            mean = row.mean if row.mean is not None else mean_of[row.entry].mean_auc
            gap = abs(row.cells_mean - mean)
            if gap > ROUNDING_TOLERANCE:
                raise BuildError(f"{where} column 'mean': {mean} but the mean of the 14 cells is "
                                 f"{row.cells_mean:.6f} (gap {gap:.6f} > {ROUNDING_TOLERANCE})")
            if row.same_work is not None:
                if row.same_work not in on_board and row.same_work not in mean_of:
                    raise BuildError(f"{where} column 'same_work': {row.same_work!r} is no entry of the board")
                cited = mean_of.get(row.same_work)
                if cited is not None and row.mean != cited.mean_auc:
                    raise BuildError(f"{where} column 'mean': {row.mean} but {MEAN_FILE} has {cited.mean_auc} "
                                     f"for {row.same_work!r}")
                if row.same_work in on_board:  # its primary table is on the board: check it, don't ship it twice
                    check_restatement(row, on_board[row.same_work], where)
                    checked_only.append(row)
                    continue
            shipped.append(row)
            on_board[row.entry] = row
            gaps[row.entry] = gap
    return Board(means, tuple(shipped), tuple(checked_only), gaps)


def check_restatement(row: LabelRow, primary: LabelRow, where: str) -> None:
    """Each restated cell is the primary cell rounded half up to the restated cell's decimals."""
    for label in LABELS:
        restated, original = row.values[label], primary.values[label]
        expected = original.quantize(_places(restated), rounding=ROUND_HALF_UP)
        if restated != expected:
            raise BuildError(f"{where} column '{label}': restates {original} ({primary.source.file_name}) "
                             f"as {restated}, expected {expected}")


def _row(entry: str, label: str, value: Decimal, run_id: str, backbones: str | None) -> dict[str, Any]:
    return {
        "benchmark": BENCHMARK, "benchmark_version": BENCHMARK_VERSION, "variant": VARIANT,
        "dataset_kind": DATASET_KIND, "split_hash": None, "entry": entry, "entry_kind": "backbone",
        "label": label, "metric": "auc", "value": float(value),
        "ci_low": None, "ci_high": None, "n_positive": None, "source": "published",
        "run_id": run_id,  # the paper and table; "-restated" when that table restates another work
        "backbones": backbones, "loss": None, "seed": None, "mlbench_version": None, "git_commit": None,
        "plugin_versions": None, "device": None, "wall_time_s": None, "created_at": None,
        "schema_version": leaderboard.SCHEMA_VERSION,
    }


def board_rows(board: Board) -> list[dict[str, Any]]:
    """The cited means first (as before), then each table's entries: 14 label rows and a printed mean."""
    rows = [_row(m.entry, leaderboard.GLOBAL_LABEL, m.mean_auc, m.entry, None) for m in board.means]
    for r in board.shipped:
        rows.extend(_row(r.entry, label, value, r.run_id, r.backbones) for label, value in r.values.items())
        if r.mean is not None:
            rows.append(_row(r.entry, leaderboard.GLOBAL_LABEL, r.mean, r.run_id, r.backbones))
    return rows


def build_table(directory: Path = SOURCE_DIR) -> pa.Table:
    table = leaderboard.to_table(board_rows(load(directory)))
    return leaderboard.validate_table(table, where=str(directory))


def report(board: Board) -> str:
    lines = [f"{len(board.means)} cited means, {len(board.shipped)} per-label entries, "
             f"{len(board.checked_only)} restatement(s) checked against their primary table"]
    for r in board.shipped:
        printed = "printed" if r.mean is not None else f"from {MEAN_FILE}"
        lines.append(f"  {r.entry}: |mean of cells - mean ({printed})| = {board.mean_gaps[r.entry]:.6f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the shipped parquet differs from a rebuild")
    args = parser.parse_args(argv)
    try:
        board = load()
        table = leaderboard.validate_table(leaderboard.to_table(board_rows(board)), where=str(SOURCE_DIR))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report(board))
    if args.check:
        try:
            same = leaderboard.read(OUTPUT).equals(table)
        except leaderboard.LeaderboardError as exc:
            print(f"error: {exc}; run python -m mlbench_nih.published", file=sys.stderr)
            return 1
        if not same:
            print(f"error: {OUTPUT} differs from what the TSVs build; run python -m mlbench_nih.published",
                  file=sys.stderr)
            return 1
        print(f"{OUTPUT.name}: {table.num_rows} rows, up to date")
        return 0
    leaderboard.write(OUTPUT, table)
    print(f"wrote {OUTPUT} ({table.num_rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
