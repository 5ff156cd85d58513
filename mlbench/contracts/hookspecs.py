"""The hooks a plugin implements: one registration hook per plugin kind.

Each hook is called once with a ``register(name, factory, **info)`` function. ``name`` must be
unique within its kind; ``info`` is free metadata shown by ``mlbench plugins`` (``summary=...``).
Pluggy passes only the arguments an implementation names, so adding arguments later does not
break old plugins.
"""

import pluggy

hookspec = pluggy.HookspecMarker("mlbench")
hookimpl = pluggy.HookimplMarker("mlbench")


@hookspec
def register_datasets(register):
    """Register dataset readers: ``factory(**options) -> mlbench.data.Dataset``."""


@hookspec
def register_losses(register):
    """Register losses: ``factory(label_counts, n_samples, **options) -> torch.nn.Module``."""


@hookspec
def register_backbones(register):
    """Register backbones: ``factory(num_labels, in_chans, pretrained, **options) -> nn.Module``."""


@hookspec
def register_ensembles(register):
    """Register ensembles: ``factory(**options)`` with ``combine(probs) -> (scores, predictions)``."""


@hookspec
def register_explainers(register):
    """Register explainers: ``factory(**options) -> mlbench.explainers.Explainer``."""


@hookspec
def register_preprocessors(register):
    """Register image preprocessors: ``factory(size, **options) -> mlbench.preprocessing.Preprocessor``."""


@hookspec
def register_samplers(register):
    """Register training samplers: ``factory(labels, seed, **options)`` with ``epoch(i) -> indices``."""


@hookspec
def register_schedules(register):
    """Register training schedules: ``factory(label_counts, n_samples, max_epochs, **options)`` with
    ``stages() -> list[mlbench.models.schedules.Stage]`` (what is trained, how, for how long)."""


@hookspec
def register_adjusters(register):
    """Register post-hoc adjusters: ``factory(val_probs, val_targets, label_counts, n_samples, head, **options)``
    with ``apply(probs) -> probs`` and ``fitted() -> dict``, fitted on validation outputs and applied to test."""


@hookspec
def register_trackers(register):
    """Register experiment trackers: ``factory(folder, run_id, benchmark, **options)`` with
    ``log_params(params)``, ``log_epoch(backbone, record)``, ``log_metrics(entry, metrics)`` and ``close()``."""


@hookspec
def register_benchmarks(register):
    """Register benchmarks: ``factory() -> mlbench.contracts.benchmark.Benchmark``."""
