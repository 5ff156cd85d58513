"""What every mistake test checks of the real command, in one place (the test files import it).

A mistake ends with exactly one ``Error: ...`` line naming the file, option or field and what is
wrong, a non-zero exit other than 70 (a bug's), and no traceback.
"""

from __future__ import annotations

from click.testing import CliRunner

from mlbench.cli import main
from mlbench.testing import assert_one_error  # noqa: F401 - the mistake check every test file imports from here


def cli(*args, env: dict[str, str] | None = None):
    """Run ``mlbench ARGS`` in-process (off a terminal, as in a log) and return click's result."""
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def finished_tiny_run(out):
    """One finished real demo run of padchest-specific in ``out`` (40 patients, one epoch of resnet10t at
    32 px): the run directory the mistake tests copy and tamper with. Its corpus and cache are inside it."""
    import warnings

    import torch

    from mlbench.results.metrics import MetricWarning
    from mlbench.training.runner import RunOptions, run

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        result = run(RunOptions(benchmark="padchest-specific", demo=True,
                                demo_options={"n_patients": 40, "image_size": 96}, image_size=32, max_epochs=1,
                                backbones=("resnet10t",), ensembles=("ctp",), n_boot=10, progress=False, workers=1,
                                out=out))
    return result.run_dir
