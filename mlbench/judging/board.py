"""A shared board kept as a git repository: the one owner of its layout.

::

    BOARD/board.json                     the benchmark, its version, the label files it is pinned to, the
                                         scoring profile that ranks it (mlbench.results.profiles)
    BOARD/published.parquet              the benchmark's published rows (when it ships a board)
    BOARD/submissions/ID/bundle.zip      each accepted submission's bundle, as sent
    BOARD/submissions/ID/verdict.json    and the verdict ``mlbench verify`` gave it
    BOARD/submissions/ID/rows.parquet    an external bundle's rows, as mlbench scored its predictions
    BOARD/board.parquet                  built from the above by :func:`build_board`, never edited
    BOARD/.github/workflows/verify.yml   CI: every pull request's new bundles are verified
    BOARD/README.md                      how to submit

Nothing in ``board.parquet`` is typed in: :func:`build_board` takes each submission's rows from its
bundle (provenance from its manifest, :func:`mlbench.judging.verify.accepted_rows`) only while its
verdict still holds — the bundle is the one verified (same sha256), the verdict accepted it, against
the label file the board is pinned to and the benchmark version installed — and sorts them, so the
same submissions give a byte-identical file. An external bundle claims no rows: its rows are the ones
mlbench scored when it was filed (``rows.parquet``, whose sha256 the verdict records). ``--csv``
re-verifies every bundle from scratch.

The board ranks its submissions' entries by its scoring profile (``board init --profile NAME``, default
the benchmark's; a board made before profiles has none in board.json and ranks by ``paper``): the
primary metric's macro row, ties broken by the profile's next metrics (:func:`ranking`).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from mlbench.contracts.registry import PluginError, Registry, get_registry
from mlbench.data.canonical import content_sha256, pin_for
from mlbench.demo import is_synthetic
from mlbench.foundations.errors import UserError
from mlbench.foundations.io import atomic_path, read_json, sha256_file, write_json, write_text
from mlbench.judging.bundle import BundleError, open_bundle
from mlbench.judging.verify import VERDICT_FORMAT, Keeper, Verdict, accepted_rows, verify_bundle
from mlbench.results import leaderboard
from mlbench.results.profiles import (DEFAULT_PROFILE, PROFILE_KEY, ScoringProfile, get_profile, profile_of,
                                      ranked_entries)

BOARD_FILE = "board.json"
BOARD_TABLE = "board.parquet"
PUBLISHED_TABLE = "published.parquet"
SUBMISSIONS = "submissions"
BUNDLE_FILE = "bundle.zip"
VERDICT_FILE = "verdict.json"
ROWS_FILE = "rows.parquet"  # an external bundle's rows, as mlbench scored them when it was filed
WORKFLOW_FILE = ".github/workflows/verify.yml"
README_FILE = "README.md"
BOARD_FORMAT = "mlbench-board"
BOARD_VERSION = 1
SORT_KEYS = ("source", "run_id", "entry", "label", "metric")
ID_CHARS = re.compile(r"[^A-Za-z0-9._+-]")


class BoardError(UserError):
    """A board command refused (a wrong folder, a refused bundle, a submission already filed)."""


@dataclass
class Board:
    """A board folder and its ``board.json``."""

    root: Path
    config: dict[str, Any]

    @property
    def benchmark(self) -> str:
        return str(self.config["benchmark"])

    @property
    def synthetic(self) -> bool:
        return bool(self.config.get("synthetic"))

    @property
    def profile(self) -> ScoringProfile:
        """The scoring profile ranking the board (``paper`` for a board made before profiles)."""
        return get_profile(self.config.get(PROFILE_KEY, DEFAULT_PROFILE), quote=False,
                           given_as=f"{self.root / BOARD_FILE}: {PROFILE_KEY}")

    @property
    def pinned_sha256(self) -> str | None:
        """The one label file a board of a benchmark without canonical releases is pinned to."""
        return self.config.get("pinned_file", {}).get("content_sha256") if self.config.get("pinned_file") else None

    def submission(self, submission_id: str) -> Path:
        return self.root / SUBMISSIONS / submission_id

    def submissions(self) -> list[Path]:
        folder = self.root / SUBMISSIONS
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()) if folder.is_dir() else []

    def keeper(self, csv: str | Path, images: str | Path | None = None, labels: str | Path | None = None,
               **options: Any) -> Keeper:
        return Keeper(Path(csv), Path(images) if images else None, Path(labels) if labels else None,
                      pinned_sha256=self.pinned_sha256, allow_synthetic=self.synthetic, **options)


def board_files(folder: str | Path) -> tuple[Path, ...]:
    """A board's own files and folders (empty when ``folder`` is no board): what nothing else may overwrite."""
    root = Path(folder)
    if not (root / BOARD_FILE).is_file():
        return ()
    return tuple(root / name for name in (BOARD_FILE, BOARD_TABLE, PUBLISHED_TABLE, SUBMISSIONS, WORKFLOW_FILE,
                                         README_FILE))


def open_board(folder: str | Path) -> Board:
    root = Path(folder)
    path = root / BOARD_FILE
    if not path.is_file() or path.is_symlink():
        raise BoardError(f"{root}: not a board ({BOARD_FILE} missing); make one with mlbench board init")
    try:
        config = read_json(path)
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict) or config.get("format") != BOARD_FORMAT or not isinstance(config.get("benchmark"), str):
        raise BoardError(f"{path}: not a board file (expected the {BOARD_FORMAT} object mlbench board init writes)")
    return Board(root, config)


# -- init --------------------------------------------------------------------------------------------
def init_board(folder: str | Path, benchmark: str, *, csv: str | Path | None = None, synthetic: bool = False,
               profile: str | None = None, registry: Registry | None = None) -> Board:
    """Lay out a new board of ``benchmark`` in ``folder`` (absent or empty), ranked by ``profile``
    (default: the benchmark's scoring profile)."""
    registry = registry or get_registry()
    root = Path(folder)
    if root.exists() and (not root.is_dir() or any(p.name != ".git" for p in root.iterdir())):
        raise BoardError(f"{root}: exists and is not an empty folder; expected a new folder for the board")
    try:
        bench = registry.create("benchmark", benchmark)
    except PluginError as exc:
        raise BoardError(f"--benchmark: {exc}") from None
    scoring = profile_of({}, bench, chosen=profile)
    pins = [{"release": p.release, "content_sha256": p.content_sha256, "split_hash": p.split_hash}
            for p in bench.canonical_sources]
    pinned_file = None
    if csv is not None:
        if not Path(csv).is_file():
            raise BoardError(f"--csv {csv}: no such file; expected the label file the board is pinned to")
        digest = content_sha256(csv)
        if pin_for(bench, digest) is None:
            if pins and not synthetic:
                raise BoardError(f"--csv {csv}: not one of {bench.name}'s canonical label files "
                                 f"({', '.join(p['release'] for p in pins)}); a board of its own file is a "
                                 "practice board: pass --synthetic for a demo corpus")
            pinned_file = {"name": Path(csv).name, "content_sha256": digest}
    elif not pins:
        raise BoardError(f"--csv: benchmark '{bench.name}' declares no canonical label file; pin the board to "
                         "yours with --csv LABELFILE")
    if synthetic:
        kind = _dataset_kind(bench, csv, registry) if csv is not None else None
        if pinned_file is None or not is_synthetic(kind):
            raise BoardError(f"--synthetic: --csv {csv} is not a synthetic demo corpus; a synthetic board is pinned "
                             "to one (mlbench demo-data)")
    config = {"format": BOARD_FORMAT, "format_version": BOARD_VERSION, "benchmark": bench.name,
              "benchmark_version": bench.version, PROFILE_KEY: scoring.name, "synthetic": synthetic,
              "canonical_sources": [] if pinned_file else pins, "pinned_file": pinned_file}
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / BOARD_FILE, config)
    board = Board(root, config)
    published = None if synthetic else leaderboard.published_board(bench.name, registry)
    if published is not None:
        leaderboard.write(root / PUBLISHED_TABLE, leaderboard.read(published))
    write_text(root / WORKFLOW_FILE, workflow_text(board))
    write_text(root / README_FILE, readme_text(board))
    build_board(root, registry=registry)
    return board


def _dataset_kind(bench: Any, csv: str | Path, registry: Registry) -> str:
    from mlbench.data import DataSource

    return registry.create("dataset", bench.dataset).read(DataSource(Path(csv), Path(csv).parent)).kind


def workflow_text(board: Board) -> str:
    """The board repository's CI: verify every bundle a pull request adds under incoming/."""
    fetch = ("# Put the label file where the check can read it: a repository secret holding its URL, a\n"
             "      # cache, or a runner that has it. The board is pinned to its content sha256, so any copy will do.\n"
             "      - run: test -f \"$LABEL_FILE\" || curl -fsSL \"$LABEL_FILE_URL\" -o \"$LABEL_FILE\"\n")
    return f"""# Written by `mlbench board init`: verifies each bundle a pull request adds.
name: verify submissions
on:
  pull_request:
    paths: ["incoming/**"]
jobs:
  verify:
    runs-on: ubuntu-latest
    env:
      LABEL_FILE: labels/{_label_file_name(board)}
      LABEL_FILE_URL: ${{{{ secrets.LABEL_FILE_URL }}}}
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: python -m pip install mlbench-imbalanced
      {fetch}      - name: verify the new bundles (nothing is filed: the keeper files them on merge)
        run: |
          git diff --name-only --diff-filter=A "origin/${{{{ github.base_ref }}}}...HEAD" -- 'incoming/*.zip' |
          while read -r bundle; do
            mlbench board add . "$bundle" --csv "$LABEL_FILE" --check || exit 1
          done
"""


def _label_file_name(board: Board) -> str:
    pins = board.config.get("canonical_sources") or []
    if pins:
        return pins[0]["release"]
    return str((board.config.get("pinned_file") or {}).get("name", "labels.csv"))


def readme_text(board: Board) -> str:
    pins = board.config.get("canonical_sources") or []
    pinned = ", ".join(f"`{p['release']}` (content sha256 `{p['content_sha256'][:12]}…`)" for p in pins) or \
        f"`{board.config['pinned_file']['name']}` (content sha256 `{board.pinned_sha256[:12]}…`)"
    return f"""# {board.benchmark} board{' (SYNTHETIC demo data)' if board.synthetic else ''}

Results of `{board.benchmark}` version {board.config['benchmark_version']}, each verified by
`mlbench verify` against {pinned}. Nothing here is typed in: `board.parquet` is rebuilt from the
submissions by `mlbench board build`.

To submit: `mlbench bundle RUN_DIR --out my-run.zip --with-checkpoints`, then open a pull request adding it
as `incoming/my-run.zip`. CI verifies it; the keeper files it with `mlbench board add`.
"""


# -- add ---------------------------------------------------------------------------------------------
@dataclass
class AddResult:
    board: Board
    verdict: Verdict
    submission: Path | None  # where it was filed (None with check_only)
    rows_in_board: int = 0


def add_submission(folder: str | Path, bundle: str | Path, csv: str | Path, *, images: str | Path | None = None,
                   labels: str | Path | None = None, check_only: bool = False,
                   registry: Registry | None = None, **keeper_options: Any) -> AddResult:
    """Verify ``bundle`` against the board's pinned label file and file it (unless ``check_only``).

    A refused bundle raises :class:`BoardError` naming each failed check; nothing is written."""
    board = open_board(folder)
    bundle = Path(bundle)
    if not bundle.is_file():
        raise BoardError(f"{bundle}: no such file; expected a bundle made by mlbench bundle")
    verdict = verify_bundle(bundle, board.keeper(csv, images, labels, **keeper_options), registry=registry)
    if verdict.accepted and verdict.facts.get("benchmark") != board.benchmark:
        raise BoardError(f"{bundle}: refused: a {verdict.facts.get('benchmark')} bundle; this board is "
                         f"{board.benchmark}'s")
    if not verdict.accepted:
        raise BoardError(f"{bundle}: refused: " + " | ".join(verdict.failures))
    if check_only:
        return AddResult(board, verdict, None)
    submission_id = ID_CHARS.sub("_", str(verdict.facts.get("run_id") or verdict.bundle_sha256[:12]))[:120]
    target = board.submission(submission_id)
    for other in board.submissions():
        stored = _stored_sha(other)
        if stored == verdict.bundle_sha256:
            raise BoardError(f"{bundle}: already filed as {other.name}; nothing added")
    if target.exists():
        raise BoardError(f"{bundle}: its run {submission_id} is already on the board; nothing added")
    target.mkdir(parents=True)
    with atomic_path(target / BUNDLE_FILE) as tmp:
        shutil.copyfile(bundle, tmp)
    if verdict.facts.get("kind") == "external":
        # Its rows are mlbench's scoring on the keeper's label file, which a build without the label file cannot
        # redo: they are filed beside it, and the verdict names their sha256 so an edited file drops out.
        leaderboard.write(target / ROWS_FILE, verdict.rows)
        verdict.facts["rows_sha256"] = sha256_file(target / ROWS_FILE)
    verdict.write(target / VERDICT_FILE)
    built = build_board(board.root, registry=registry)
    return AddResult(board, verdict, target, built.rows)


def _stored_sha(submission: Path) -> str | None:
    try:
        data = read_json(submission / VERDICT_FILE)
    except (OSError, ValueError):
        return None
    return data.get("bundle_sha256") if isinstance(data, dict) else None


# -- build -------------------------------------------------------------------------------------------
@dataclass
class BuildResult:
    path: Path
    rows: int
    included: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # submission -> why its verdict no longer holds
    profile: ScoringProfile | None = None  # the board's
    ranking: list[tuple[str, str]] = field(default_factory=list)  # (run_id, entry), best first


def ranking(rows: pd.DataFrame, profile: ScoringProfile) -> list[tuple[str, str]]:
    """The submissions' (run_id, entry) in a board's rows, best first by ``profile`` (macro rows); full ties
    keep the rows' order (board.parquet's: by run_id, then entry)."""
    return ranked_entries(rows[rows["source"] == "run"], profile, keys=("run_id", "entry"))


def build_board(folder: str | Path, *, csv: str | Path | None = None, images: str | Path | None = None,
                labels: str | Path | None = None, registry: Registry | None = None) -> BuildResult:
    """Rebuild ``board.parquet`` from the published rows and every submission whose verdict holds."""
    registry = registry or get_registry()
    board = open_board(folder)
    profile = board.profile  # a board.json naming no known profile: refused before anything is written
    try:
        bench = registry.create("benchmark", board.benchmark)
    except PluginError as exc:
        raise BoardError(f"{board.root / BOARD_FILE}: {exc}") from None
    tables, result = [], BuildResult(board.root / BOARD_TABLE, 0)
    published = board.root / PUBLISHED_TABLE
    if published.is_symlink():
        raise BoardError(f"{published}: is a link; a board reads only its own files")
    if published.is_file():
        tables.append(leaderboard.read(published))
    keeper = board.keeper(csv, images, labels) if csv is not None else None
    for submission in board.submissions():
        reason, rows = _holds(board, bench.version, submission, keeper, registry)
        if reason:
            result.dropped[submission.name] = reason
        else:
            result.included.append(submission.name)
            tables.append(rows)
    table = pa.concat_tables([t.cast(leaderboard.SCHEMA) for t in tables]) if tables else leaderboard.SCHEMA.empty_table()
    table = table.sort_by([(k, "ascending") for k in SORT_KEYS])
    leaderboard.write(result.path, table)
    result.rows = table.num_rows
    result.profile, result.ranking = profile, ranking(table.to_pandas(), profile)
    return result


def _holds(board: Board, version: str, submission: Path, keeper: Keeper | None,
           registry: Registry) -> tuple[str, pa.Table | None]:
    """("", rows) when the submission's verdict still holds, else (why not, None)."""
    bundle_path, verdict_path = submission / BUNDLE_FILE, submission / VERDICT_FILE
    if not all(path.is_file() and not path.is_symlink() for path in (bundle_path, verdict_path)):
        return f"{BUNDLE_FILE} or {VERDICT_FILE} missing (or a link: a board reads only its own files)", None
    try:
        verdict = json.loads(verdict_path.read_text("utf-8"))
    except (OSError, ValueError):
        return f"{VERDICT_FILE} is not JSON", None
    if not isinstance(verdict, dict) or verdict.get("format") != VERDICT_FORMAT or verdict.get("accepted") is not True:
        return "its verdict does not accept it", None
    if sha256_file(bundle_path) != verdict.get("bundle_sha256"):
        return "the bundle is not the one verified (sha256 differs)", None
    if verdict.get("benchmark") != board.benchmark or verdict.get("benchmark_version") != version:
        return (f"verified for {verdict.get('benchmark')} {verdict.get('benchmark_version')}; the installed "
                f"benchmark is {board.benchmark} {version}"), None
    pinned = {p["content_sha256"] for p in board.config.get("canonical_sources") or []} | (
        {board.pinned_sha256} if board.pinned_sha256 else set())
    if (verdict.get("label_file") or {}).get("content_sha256") not in pinned:
        return "verified against a label file the board is not pinned to", None
    try:
        bundle = open_bundle(bundle_path)
    except BundleError as exc:
        return str(exc), None
    if keeper is not None:
        again = verify_bundle(bundle_path, keeper, registry=registry)
        if not again.accepted:
            return "re-verified: " + " | ".join(again.failures), None
        if bundle.kind == "external":
            return "", again.rows
    if bundle.kind == "external":
        rows = submission / ROWS_FILE
        if not rows.is_file() or rows.is_symlink() or sha256_file(rows) != verdict.get("rows_sha256"):
            return f"{ROWS_FILE} is not the one the verdict scored (sha256 differs or it is missing)", None
        return "", leaderboard.read(rows)
    return "", accepted_rows(bundle)
