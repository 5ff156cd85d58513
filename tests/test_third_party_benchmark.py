"""A third-party dataset + benchmark plugin works end to end, as PadChest's does.

The plugin is ``tests/data/plugins/toy_xray`` (written from docs/plugins.md: its own label file
format, reader, demo writer, benchmark and a published board shipped as package data). It is
registered in-process, as docs/plugins.md's "Testing" section shows, beside every installed plugin.

On data in its real form (PNGs and a label file without the demo marker) a run is comparable with
the board the plugin ships, is accepted by ``submit`` into the benchmark's own board and shown by
``leaderboard show`` beside the published rows, and nothing calls it synthetic. The same
benchmark on its demo corpus is not comparable and ``submit`` refuses it the benchmark's board.
"""

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlbench.contracts.registry
from mlbench.foundations import io
from mlbench.results import leaderboard
from mlbench.cli import main
from mlbench.judging.compare import compare_run
from mlbench.demo import SYNTHETIC_KIND
from mlbench.contracts.registry import build_registry

FIXTURE = Path(__file__).resolve().parent / "data" / "plugins" / "toy_xray"
SHIPPED = FIXTURE / "mlbench_toy_xray" / "leaderboards" / "toy-xray.parquet"
FAST = ["--bootstrap", "20", "--workers", "1", "--quiet"]


def write_real_corpus(folder: Path, *, n_subjects: int = 24, films_per_subject: int = 2, size: int = 40) -> tuple[Path, Path]:
    """Films in the toy format without the demo marker: how a user's own data arrives.

    Each code leaves a mark a CNN can pick up (a bright centre, a bright lower band, a dot);
    one extra row names a file that does not exist.
    """
    rng = np.random.default_rng(11)
    rows = []
    for subject in range(n_subjects):
        for k in range(films_per_subject):
            codes = [code for code in ("CM", "EFF", "NOD") if rng.random() < 0.4]
            image = rng.normal(90, 15, (size, size))
            if "CM" in codes:
                image[size // 3: 2 * size // 3, size // 3: 2 * size // 3] += 60
            if "EFF" in codes:
                image[-size // 5:, :] += 70
            if "NOD" in codes:
                y, x = rng.integers(4, size - 6, 2)
                image[y:y + 3, x:x + 3] += 120
            film = f"subject-{subject:02d}/film-{k}.png"
            ok, png = cv2.imencode(".png", np.clip(image, 0, 255).astype(np.uint8))
            assert ok
            io.write_bytes(folder / "images" / film, png.tobytes())
            rows.append({"film": film, "subject": f"S{subject:02d}", "codes": " ".join(codes)})
    rows.append({"film": "subject-99/film-0.png", "subject": "S99", "codes": "CM"})
    csv_path = folder / "toy-labels.csv"
    io.write_text(csv_path, pd.DataFrame(rows).to_csv(index=False, lineterminator="\n"))
    return csv_path, folder / "images"


def _cli(registry, *args: object, code: int = 0) -> str:
    mlbench.contracts.registry.use_registry(registry)  # the process-wide registry, with the toy plugin in it
    result = CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "200"})
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.output


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy-xray")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(FIXTURE))
        mp.delenv("MLBENCH_PLUGINS", raising=False)
        mp.setenv(leaderboard.LEADERBOARDS_ENV, str(root / "boards"))
        mp.chdir(root)
        import mlbench_toy_xray.plugin

        registry = build_registry(plugins=[mlbench_toy_xray.plugin])
        csv_path, images = write_real_corpus(root / "data")
        real_out = _cli(registry, "run", "toy-xray", "--csv", csv_path, "--images", images, "--out", root / "real", *FAST)
        demo_out = _cli(registry, "run", "toy-xray", "--demo", "--out", root / "demo", *FAST)
        yield {"registry": registry, "root": root, "real": root / "real", "demo": root / "demo",
               "real_out": real_out, "demo_out": demo_out, "own_board": root / "boards" / "toy-xray.parquet"}


@pytest.fixture(autouse=True)
def _toy_registry(toy, _fresh_registry):
    mlbench.contracts.registry.use_registry(toy["registry"])
    yield
    mlbench.contracts.registry.use_registry(None)


def test_the_shipped_board_is_the_one_board_tsv_describes():
    import make_board  # beside the fixture's pyproject (on sys.path with the package)

    assert leaderboard.read(SHIPPED).equals(make_board.board_table())
    board = leaderboard.read(SHIPPED).to_pandas()
    assert set(board["source"]) == {"published"} and set(board["benchmark"]) == {"toy-xray"}


def test_the_plugin_passes_its_conformance_check(toy):
    out = _cli(toy["registry"], "plugins", "test", "mlbench_toy_xray.plugin")
    assert "2 passed, 0 failed, 0 skipped" in out, out


def test_a_real_run_says_what_its_data_is(toy):
    manifest = json.loads((toy["real"] / "manifest.json").read_text())
    assert manifest["benchmark"] == "toy-xray" and manifest["dataset_kind"] == "toy-xray"
    board = pd.read_parquet(toy["real"] / "leaderboard.parquet")
    assert set(board["dataset_kind"]) == {"toy-xray"} and set(board["variant"]) == {"none"}
    assert set(board["entry"]) == {"resnet10t", "ctp"}
    skipped = pd.read_parquet(toy["real"] / "skipped.parquet")
    assert "subject-99/film-0.png" in set(skipped["item"])
    assert SYNTHETIC_KIND not in toy["real_out"].lower()


def test_a_real_run_is_comparable_with_the_board_the_plugin_ships(toy):
    comparison = compare_run(toy["real"])
    assert comparison.comparable is True
    assert comparison.published_variant == "none" and set(comparison.rows["reference"]) == {"resnet10t", "ctp"}
    published = leaderboard.read(SHIPPED).to_pandas().set_index(["entry", "label"])["value"]
    for r in comparison.rows.itertuples():
        assert r.published == published[(r.reference, r.label)]
        assert r.verdict != "not comparable"
    out = _cli(toy["registry"], "compare", toy["real"])
    assert "not comparable" not in out.lower() and SYNTHETIC_KIND not in out.lower(), out


def test_submit_and_show_put_the_run_beside_the_published_rows(toy):
    run_id = json.loads((toy["real"] / "manifest.json").read_text())["run_id"]
    # Real data outside the run directory is named again: stored paths are followed only inside it.
    data = toy["root"] / "data"
    out = _cli(toy["registry"], "submit", toy["real"], "--csv", data / "toy-labels.csv", "--images", data / "images")
    assert "accepted" in out and SYNTHETIC_KIND not in out.lower(), out
    board = leaderboard.read(toy["own_board"]).to_pandas()
    assert set(board["source"]) == {"published", "run"}
    assert len(board[board["source"] == "published"]) == len(leaderboard.read(SHIPPED))
    assert set(board.loc[board["source"] == "run", "run_id"]) == {run_id}

    shown = _cli(toy["registry"], "leaderboard", "show", "toy-xray")
    assert f"run {run_id}" in shown and "published toy-fixture-not-a-publication" in shown, shown
    assert SYNTHETIC_KIND not in shown.lower()


def test_a_demo_run_of_the_same_plugin_is_synthetic_and_kept_off_its_board(toy):
    board = pd.read_parquet(toy["demo"] / "leaderboard.parquet")
    assert set(board["dataset_kind"]) == {SYNTHETIC_KIND}
    assert compare_run(toy["demo"]).comparable is False
    assert "NOT COMPARABLE" in _cli(toy["registry"], "compare", toy["demo"])
    before = toy["own_board"].read_bytes() if toy["own_board"].exists() else None
    refused = _cli(toy["registry"], "submit", toy["demo"], code=1)
    assert "refused" in refused and SYNTHETIC_KIND in refused, refused
    after = toy["own_board"].read_bytes() if toy["own_board"].exists() else None
    assert before == after
