"""mlbench grid: remedies on one split and cache, finished cells reused, paired comparison written."""

import warnings

import numpy as np
import pandas as pd
import pytest

from mlbench.grid.cells import COMPARISON_COLUMNS, GridError, GridSpec, run_grid
from mlbench.results.griddir import COMPARISON, cell_dir
from mlbench.grid.status import grid_status
from mlbench.grid.remedies import parse_remedy
from mlbench.results.metrics import MetricWarning
from mlbench.contracts.registry import get_registry
from mlbench.results.rundir import RunDir

RUN = {"max_epochs": 1, "image_size": 32, "ensembles": ("ctp",), "n_boot": 20, "workers": 1,
       "demo_options": {"n_patients": 40, "image_size": 96}}


def tiny_spec(out, **changes):
    spec = dict(benchmark="padchest-specific", out=out, remedies=["uniform", "class-balanced"],
                backbones=["resnet10t"], seeds=[0, 1], demo=True, run_options=dict(RUN), n_boot=20, progress=False)
    spec.update(changes)
    return GridSpec(**spec)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return run_grid(tiny_spec(tmp_path_factory.mktemp("grid")))


def test_cells_are_run_directories_sharing_one_split_and_cache(grid):
    hashes = {RunDir(c.run_dir).manifest()["split_hash"] for c in grid.cells}
    caches = {str(RunDir(c.run_dir).cache_path().resolve()) for c in grid.cells}
    assert len(grid.cells) == 4 and len(hashes) == 1 and len(caches) == 1
    assert RunDir(cell_dir(grid.grid_dir, "class-balanced", 1)).recipe().loss == "class-balanced"


def test_comparison_has_paired_rows_per_entry_group_and_label(grid):
    table = pd.read_parquet(grid.grid_dir / COMPARISON)
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert set(table["remedy"]) == {"class-balanced"} and set(table["baseline"]) == {"uniform"}
    assert set(table["entry"]) == {"resnet10t", "ctp"}
    assert {"macro", "group", "label"} == set(table["scope"]) and (table["n_seeds"] <= 2).all()
    macro = table[(table["scope"] == "macro") & (table["metric"] == "auc")]
    assert ((macro["ci_low"] <= macro["difference"]) & (macro["difference"] <= macro["ci_high"])).all()


def test_a_rerun_reuses_finished_cells_and_a_killed_cell_reruns(grid):
    kept = RunDir(cell_dir(grid.grid_dir, "uniform", 0)).backbone_predictions("resnet10t").stat().st_mtime_ns
    victim = RunDir(cell_dir(grid.grid_dir, "class-balanced", 1))
    victim.leaderboard_file.unlink()  # as if killed before its metrics stage
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        again = run_grid(tiny_spec(grid.grid_dir))
    assert sorted(again.reused) == ["class-balanced seed 0", "uniform seed 0", "uniform seed 1"]
    assert RunDir(cell_dir(grid.grid_dir, "uniform", 0)).backbone_predictions("resnet10t").stat().st_mtime_ns == kept
    assert victim.leaderboard_file.is_file()
    pd.testing.assert_frame_equal(again.comparison, grid.comparison)


def test_status_names_every_cell(grid):
    states = {(c.remedy, c.seed): c.state for c in grid_status(grid.grid_dir)}
    assert states == {(r, s): "done" for r in ("uniform", "class-balanced") for s in (0, 1)}


def test_another_grid_in_the_same_folder_is_refused(grid):
    with pytest.raises(GridError, match="holds another grid"):
        run_grid(tiny_spec(grid.grid_dir, seeds=[0]))


def test_remedy_names_are_checked_before_any_work(tmp_path):
    registry = get_registry()
    assert parse_remedy("ml-ros+class-balanced+val-f1", registry).sampler == "ml-ros"
    with pytest.raises(GridError, match="'nosuch' is neither a sampler"):
        run_grid(tiny_spec(tmp_path / "g", remedies=["uniform", "nosuch"]))
    assert not (tmp_path / "g").exists()


def test_a_run_compared_with_itself_differs_by_zero_with_ci_zero(grid):
    from mlbench.judging.compare import compare_runs

    cell = cell_dir(grid.grid_dir, "uniform", 0)
    rows = compare_runs(cell, cell, n_boot=50).rows
    assert (rows["difference"].dropna() == 0).all()
    assert (rows["ci_low"].dropna() == 0).all() and (rows["ci_high"].dropna() == 0).all()
    assert set(rows["verdict"]) == {"no evidence"}


def test_paired_intervals_are_narrower_than_unpaired_for_two_seeds(grid):
    from mlbench.results.paired import paired_differences, unpaired_differences
    from mlbench.results.rescoring import load_stored_run

    a = load_stored_run(cell_dir(grid.grid_dir, "uniform", 0))
    b = load_stored_run(cell_dir(grid.grid_dir, "uniform", 1))
    args = (a.y, a.scores["resnet10t"], b.scores["resnet10t"], (a.scores["resnet10t"] >= .5).astype(np.uint8),
            (b.scores["resnet10t"] >= .5).astype(np.uint8), a.patient_ids, a.labels, a.train_counts)
    width = {}
    for name, compare in (("paired", paired_differences), ("unpaired", unpaired_differences)):
        t = compare(*args, n_boot=200).table
        macro = t[(t["scope"] == "macro") & (t["metric"] == "auc")].iloc[0]
        width[name] = macro["ci_high"] - macro["ci_low"]
    assert width["paired"] < width["unpaired"]


def test_cli_grid_status_and_paired_compare(grid):
    from click.testing import CliRunner

    from mlbench.cli import main

    status = CliRunner().invoke(main, ["grid", "status", str(grid.grid_dir)])
    assert status.exit_code == 0 and "4 done" in status.output, status.output
    compared = CliRunner().invoke(main, ["compare", str(cell_dir(grid.grid_dir, "class-balanced", 0)), "--against",
                                         str(cell_dir(grid.grid_dir, "uniform", 0)), "--n-boot", "50"],
                                  env={"COLUMNS": "200"})
    assert compared.exit_code == 0, compared.output
    assert "macro" in compared.output and "SYNTHETIC" in compared.output and "p (Holm)" in compared.output


def test_the_grid_report_shows_the_comparison(grid, tmp_path):
    from mlbench.report import write_report

    out = write_report(grid.grid_dir, tmp_path / "grid.html")
    text = out.read_text()
    macro = grid.comparison[(grid.comparison["scope"] == "macro") & (grid.comparison["metric"] == "auc")
                            & (grid.comparison["entry"] == "ctp")].iloc[0]
    assert repr(float(macro["difference"])) in text and "class-balanced" in text and "SYNTHETIC" in text


class _ReversedUniform:
    """A third party's sampler: the uniform order, reversed (enough to be a different remedy)."""

    def __init__(self, labels, seed):
        from mlbench.models.samplers import UniformSampler

        self.inner = UniformSampler(labels, seed)

    def epoch(self, i):
        return self.inner.epoch(i)[::-1].copy()


class _SamplerPlugin:
    """Stands for a separately installed plugin: it enters through the same hook."""

    @staticmethod
    def register_samplers(register):
        register("reversed-uniform", _ReversedUniform, summary="test plugin")


def test_a_sampler_from_another_plugin_works_in_a_grid(tmp_path):
    import mlbench.contracts.registry
    from mlbench import hookimpl

    _SamplerPlugin.register_samplers = hookimpl(_SamplerPlugin.register_samplers)
    registry = mlbench.contracts.registry.build_registry(plugins=[_SamplerPlugin])
    mlbench.contracts.registry.use_registry(registry)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            result = run_grid(tiny_spec(tmp_path / "g", remedies=["uniform", "reversed-uniform"], seeds=[0]))
    finally:
        mlbench.contracts.registry.use_registry(None)
    assert set(result.comparison["remedy"]) == {"reversed-uniform"}
    manifest = RunDir(cell_dir(result.grid_dir, "reversed-uniform", 0)).manifest()
    assert manifest["recipe"]["sampler"] == "reversed-uniform"
    assert manifest["versions"]["plugins"]["sampler:reversed-uniform"].startswith("_SamplerPlugin")


def test_a_one_backbone_grid_compares_the_model_not_ensembles_of_it(tmp_path):
    from mlbench.grid.cells import plan_grid

    run_options = {k: v for k, v in RUN.items() if k != "ensembles"}
    cells = plan_grid(tiny_spec(tmp_path / "g", run_options=run_options))
    assert all(tuple(c.options.ensembles) == () for c in cells)
    two = plan_grid(tiny_spec(tmp_path / "h", run_options=run_options, backbones=["resnet10t", "mobilenetv3_small_050"]))
    assert all(c.options.ensembles is None for c in two)  # the recipe's ensembles


def test_verdicts_are_adjusted_over_every_remedy_against_the_baseline(monkeypatch):
    """k remedies against one baseline are k tests of each (entry, scope, metric): Holm runs over all of them."""
    import mlbench.grid.cells
    from mlbench.grid.cells import GridCell, compare_cells
    from mlbench.grid.remedies import Remedy
    from mlbench.results.paired import holm, paired_differences

    rng = np.random.default_rng(5)
    n, labels = 300, ["a", "b", "c"]
    y = (rng.random((n, 3)) < 0.3).astype(int)
    patients = np.char.add("p", np.arange(n).astype(str))

    def scores(signal):
        s = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=y.shape))))
        return s, (s >= 0.5).astype(int)

    runs = {"base": scores(1.0), "better": scores(1.3), "same": scores(1.0)}

    def compare_stored(a, b, *, n_boot):
        (sa, da), (sb, db) = runs[a], runs[b]
        return {"m": paired_differences(y, sa, sb, da, db, patients, labels, [90, 60, 30], n_boot=n_boot)}

    monkeypatch.setattr(mlbench.grid.cells, "load_stored_run", lambda run_dir: str(run_dir))
    monkeypatch.setattr(mlbench.grid.cells, "compare_stored", compare_stored)

    class Out:
        def __init__(self, name):
            self.out = name

    cells = [GridCell(Remedy(name), 0, Out(name)) for name in runs]
    table = compare_cells(cells, "base", n_boot=300)
    alone = {r: compare_stored("base", r, n_boot=300)["m"].table for r in ("better", "same")}
    for (scope, metric), rows in table.groupby(["scope", "metric"]):
        assert rows["p_adjusted"].to_numpy() == pytest.approx(holm(rows["p_value"].to_numpy()))
        assert set(rows["remedy"]) == {"better", "same"}
    # each remedy's own p-values are those of its comparison alone; only the adjustment sees both
    for remedy, own in alone.items():
        mine = table[table["remedy"] == remedy].reset_index(drop=True)
        assert mine["p_value"].to_numpy() == pytest.approx(own["p_value"].to_numpy())
        assert (mine["p_adjusted"].to_numpy() >= own["p_adjusted"].to_numpy() - 1e-12).all()


def test_the_grid_command_prints_holm_adjusted_p_values_beside_the_verdicts(grid, monkeypatch, tmp_path):
    from click.testing import CliRunner

    import mlbench.grid.cells
    from mlbench.cli import main

    monkeypatch.setattr(mlbench.grid.cells, "run_grid", lambda spec, **_: grid)  # the fixture's finished grid
    shown = CliRunner().invoke(main, ["grid", "padchest-specific", "--remedies", "uniform,class-balanced", "--demo",
                                      "--out", str(tmp_path / "g")], env={"COLUMNS": "220"})
    assert shown.exit_code == 0, shown.output
    macro = grid.comparison[(grid.comparison["scope"] == "macro") & (grid.comparison["metric"] == "auc")
                            & (grid.comparison["entry"] == "ctp")].iloc[0]
    assert "p (Holm)" in shown.output and "Holm-adjusted over every remedy" in shown.output
    row = next(line for line in shown.output.splitlines() if "ctp" in line and "__global__" in line)
    p = macro["p_adjusted"]
    assert ("<0.001" if p < 0.001 else f"{p:.3f}") in row and macro["verdict"] in row
