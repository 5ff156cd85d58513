"""The Python API from a plain script, stdin and a notebook-like ``__main__``, and every public API
function's arguments checked in one table (issue 19).

A script that calls ``mlbench.run_benchmark`` at module level, without ``if __name__ == "__main__":``,
must run to the end: the preprocessing pool is threads, so nothing re-imports the script. Every
argument mistake is one :class:`mlbench.api.ArgumentError` line naming the function, the argument,
the value's type and what was expected, before any work starts.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import multiprocessing
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import mlbench
from mlbench import api
from mlbench.foundations.errors import UserError
from cli_checks import assert_one_error, cli

BENCH = "padchest-specific"
TINY = dict(demo_options={"n_patients": 30, "image_size": 96}, image_size=32, max_epochs=1, backbones=("resnet10t",),
            ensembles=("ctp",), n_boot=10, workers=2)
SCRIPT_TIMEOUT_S = 900  # a tiny run takes about a minute on 2 loaded cores


# -- the API from a script ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def script_run(tmp_path_factory):
    """The README's example shape: a plain script, the call at module level, two preprocessing workers."""
    folder = tmp_path_factory.mktemp("script")
    script = folder / "example.py"
    script.write_text(textwrap.dedent(f"""\
        import mlbench
        import torch

        torch.set_num_threads(2)
        result = mlbench.run_benchmark({BENCH!r}, demo=True, out="run", progress="quiet", **{TINY!r})
        print("LEADERBOARD ROWS", len(result.leaderboard))
        """))
    done = subprocess.run([sys.executable, "-W", "ignore", str(script)], cwd=folder, capture_output=True, text=True,
                          timeout=SCRIPT_TIMEOUT_S)
    return folder, done


def test_a_plain_script_calling_the_api_at_module_level_finishes(script_run):
    folder, done = script_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "bootstrapping" not in done.stderr, done.stderr[-3000:]
    rows = int(done.stdout.split("LEADERBOARD ROWS", 1)[1].split()[0])
    board = mlbench.RunDir(folder / "run").leaderboard().to_pandas()
    assert rows == len(board) > 0 and set(board["entry"]) == {"resnet10t", "ctp"}
    # The script ran once: one run, one cache, built by the two workers.
    assert mlbench.RunDir(folder / "run").manifest()["stages"]["preprocess"]["status"] == "done"


def write_films(folder: Path, n: int = 6) -> pd.DataFrame:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"film{i}.png"
        cv2.imwrite(str(path), (rng.random((80, 80)) * 65535).astype(np.uint16))
        paths.append(str(path))
    return pd.DataFrame({"image_id": [f"film{i}" for i in range(n)], "image_path": paths})


def test_the_cache_workers_are_threads_so_a_preprocessor_of_main_needs_no_import(tmp_path):
    """A preprocessor a spawned worker could not unpickle (a local class, as a notebook's class
    is to a worker) is built in parallel: the workers are threads of this process."""
    from mlbench.preprocessing import Preprocessed
    from mlbench.preprocessing.cache import build_cache

    seen: set[str] = set()

    class Local:  # defined here: pickle cannot find it by name
        def config(self):
            return {"local": 1}

        def __call__(self, image):
            seen.add(threading.current_thread().name)
            small = cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA)
            return Preprocessed(small, (0, 0, image.shape[1], image.shape[0]), "local")

    items = write_films(tmp_path / "films", n=40)
    cache = build_cache(items, Local(), 16, tmp_path / "cache", workers=2, shard_size=16)
    assert (cache.index["status"] == "ok").sum() == 40
    assert cache.load(["film3"]).shape == (1, 16, 16)
    assert multiprocessing.active_children() == []
    assert seen and all(name.startswith("mlbench-preprocess") for name in seen), seen


def test_the_api_from_stdin_with_a_class_of_main(tmp_path):
    """``python -`` (and a notebook): no script file, and the preprocessor's class lives in __main__."""
    items = write_films(tmp_path / "films", n=20)
    items.to_csv(tmp_path / "items.csv", index=False)
    code = textwrap.dedent("""\
        import pandas as pd
        from mlbench.preprocessing import Preprocessed
        from mlbench.preprocessing.cache import build_cache

        class Crop:
            def config(self):
                return {"crop": "main"}

            def __call__(self, image):
                import cv2
                return Preprocessed(cv2.resize(image, (16, 16)), (0, 0, image.shape[1], image.shape[0]), "main")

        cache = build_cache(pd.read_csv("items.csv"), Crop(), 16, "cache", workers=2, shard_size=16)
        print("OK", int((cache.index["status"] == "ok").sum()))
        """)
    done = subprocess.run([sys.executable, "-"], input=code, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.split() == ["OK", "20"]


# -- one table of constraints ---------------------------------------------------------------------
def test_the_table_covers_every_run_option_and_every_parameter():
    from mlbench.training.runner import RunOptions

    fields = {f.name for f in dataclasses.fields(RunOptions)} - {"benchmark"}
    assert set(api.RUN_OPTIONS) == fields
    for name in ("run_benchmark", "compare_run", "submit_run", "list_plugins", "show_leaderboard", "write_report"):
        params = [p.name for p in inspect.signature(getattr(api, name)).parameters.values()
                  if p.kind is not p.VAR_KEYWORD]
        assert set(params) <= set(api.ARGUMENTS[name]), (name, params)
    assert set(api.ARGUMENTS) <= {n for n in api.__all__ if callable(getattr(api, n))}


MISTAKES = [
    # (function, args, kwargs, the argument named, the type named, words of what was expected)
    ("run_benchmark", (BENCH,), {"backbones": 5}, "backbones", "int", "tuple or list of names"),
    ("run_benchmark", (BENCH,), {"backbones": "resnet10t,densenet201"}, "backbones", "str", "without commas"),
    ("run_benchmark", (BENCH,), {"ensembles": ["ctp", 3]}, "ensembles", "list", "names"),
    ("run_benchmark", (BENCH,), {"out": 5}, "out", "int", "a path"),
    ("run_benchmark", (BENCH,), {"csv": b"labels.csv"}, "csv", "bytes", "a path"),
    ("run_benchmark", (BENCH,), {"images": ""}, "images", "str", "a path"),
    ("run_benchmark", (BENCH,), {"sampler_options": "percentage=10"}, "sampler_options", "str", "a dict"),
    ("run_benchmark", (BENCH,), {"loss_options": [("gamma", 2)]}, "loss_options", "list", "a dict"),
    ("run_benchmark", (BENCH,), {"demo_options": {1: 2}}, "demo_options", "dict", "a dict of option name"),
    ("run_benchmark", (BENCH,), {"backbone_options": {"resnet10t": "pretrained=false"}}, "backbone_options", "dict",
     "dict of its options"),
    ("run_benchmark", (BENCH,), {"max_epochs": "1"}, "max_epochs", "str", "an int >= 1"),
    ("run_benchmark", (BENCH,), {"max_epochs": True}, "max_epochs", "bool", "an int >= 1"),
    ("run_benchmark", (BENCH,), {"max_epochs": 2.0}, "max_epochs", "float", "an int >= 1"),
    ("run_benchmark", (BENCH,), {"n_boot": -1}, "n_boot", "int", "an int >= 0"),
    ("run_benchmark", (BENCH,), {"workers": 0}, "workers", "int", "an int >= 1"),
    ("run_benchmark", (BENCH,), {"seed": -3}, "seed", "int", "an int from 0 to 4294967295"),
    ("run_benchmark", (BENCH,), {"image_size": 8}, "image_size", "int", "an int >= 16"),
    ("run_benchmark", (BENCH,), {"demo": 1}, "demo", "int", "True or False"),
    ("run_benchmark", (BENCH,), {"crop": "no"}, "crop", "str", "True or False"),
    ("run_benchmark", (BENCH,), {"device": None}, "device", "NoneType", "a non-empty str"),
    ("run_benchmark", (BENCH,), {"progress": "loud"}, "progress", "str", "'quiet'"),
    ("run_benchmark", (5,), {}, "benchmark", "int", "a non-empty str"),
    ("compare_run", (5,), {}, "run_dir", "int", "a path"),
    ("compare_run", ("run",), {"against": 5}, "against", "int", "'published' or a run directory"),
    ("compare_run", ("run",), {"n_boot": 0}, "n_boot", "int", "an int >= 1"),
    ("compare_run", ("run",), {"metric": 3}, "metric", "int", "a non-empty str"),
    ("compare_run", ("run",), {"leaderboard_file": 3}, "leaderboard_file", "int", "a path"),
    ("submit_run", (None,), {}, "run_dir", "NoneType", "a path"),
    ("submit_run", ("run", 5), {}, "leaderboard", "int", "a path"),
    ("submit_run", ("run",), {"csv": "labels.csv"}, "csv", "str", "csv and images together"),
    ("list_plugins", (5,), {}, "kind", "int", "a non-empty str"),
    ("show_leaderboard", (BENCH,), {"label": 3}, "label", "int", "a non-empty str"),
    ("show_leaderboard", (BENCH,), {"file": 2.0}, "file", "float", "a path"),
    ("write_report", (5, "r.html"), {}, "path", "int", "a path"),
    ("write_report", ("run", None), {}, "out", "NoneType", "a path"),
    ("write_report", ("run", "r.html"), {"against": "paper"}, "against", "str", "'published' or None"),
    ("write_report", ("run", "r.html"), {"explain_dirs": [1]}, "explain_dirs", "list", "a list of folders"),
    ("write_report", ("run", "r.html"), {"force": "yes"}, "force", "str", "True or False"),
]


@pytest.mark.parametrize("function, args, kwargs, name, type_name, expected", MISTAKES,
                         ids=[f"{m[0]}-{m[3]}-{m[4]}" for m in MISTAKES])
def test_a_wrong_argument_is_one_line_naming_it_its_type_and_what_was_expected(
        tmp_path, monkeypatch, function, args, kwargs, name, type_name, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(api.ArgumentError) as caught:
        getattr(mlbench, function)(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{function}: {name}="), message
    assert f"({type_name}); expected " in message and expected in message, message
    assert isinstance(caught.value, UserError) and isinstance(caught.value, TypeError)
    assert list(tmp_path.iterdir()) == []  # refused before any work


def test_an_unknown_option_is_named_with_the_ones_there_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(api.ArgumentError, match=r"run_benchmark: unknown option 'epochs'; expected one of .*max_epochs"):
        mlbench.run_benchmark(BENCH, demo=True, epochs=1)
    with pytest.raises(api.ArgumentError, match=r"compare_run: unknown option 'metrics'; expected one of .*metric"):
        mlbench.compare_run("run", metrics="auc")
    assert mlbench.ArgumentError is api.ArgumentError


def test_accepted_values_are_converted_for_the_library():
    checked = api.validate("run_benchmark", {"benchmark": BENCH, "out": "runs/x", "backbones": "resnet10t",
                                             "ensembles": ["ctp"], "workers": np.int64(2), "sampler_options":
                                             {"percentage": 10}, "progress": False, "csv": Path("a.csv")})
    assert checked["out"] == Path("runs/x") and checked["csv"] == Path("a.csv")
    assert checked["backbones"] == ("resnet10t",) and checked["ensembles"] == ("ctp",)
    assert checked["workers"] == 2 and type(checked["workers"]) is int and checked["progress"] is False
    assert api.validate("write_report", {"explain_dirs": "explain"})["explain_dirs"] == [Path("explain")]


# -- compare_run against another run ----------------------------------------------------------------
def test_compare_run_against_a_run_is_the_commands_paired_comparison(script_run, tmp_path):
    folder, done = script_run
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = folder / "run"
    paired = mlbench.compare_run(run_dir, against=str(run_dir), n_boot=10)
    rows = paired.rows
    assert set(rows["entry"]) == {"resnet10t", "ctp"} and {"auc", "auprc"} <= set(rows["metric"])
    assert np.allclose(rows["difference"].dropna(), 0.0)  # a run against itself differs by nothing
    out = tmp_path / "paired.json"
    shown = cli("compare", run_dir, "--against", run_dir, "--n-boot", 10, "--json", out)
    assert shown.exit_code == 0, shown.output
    from_cli = pd.DataFrame(json.loads(out.read_text())["rows"])
    key = ["entry", "scope", "name", "metric"]
    both = rows.merge(from_cli, on=key, suffixes=("", "_cli"))
    assert len(both) == len(rows) == len(from_cli)  # the same rows as `mlbench compare RUN_B --against RUN_A`
    assert np.allclose(both["difference"], both["difference_cli"], equal_nan=True)
    with pytest.raises(api.ArgumentError, match=r"compare_run: metric='auprc' \(str\); expected no metric with "
                                                r"against=RUN_DIR"):
        mlbench.compare_run(run_dir, against=run_dir, metric="auprc")
    with pytest.raises(api.ArgumentError, match=r"compare_run: against='nowhere' \(str\); expected 'published' or a "
                                                r"run directory.*no such folder"):
        mlbench.compare_run(run_dir, against="nowhere")
