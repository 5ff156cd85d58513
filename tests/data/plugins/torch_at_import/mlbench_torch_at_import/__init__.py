"""A third-party backbone plugin written the natural way: torch imported at the top of the module.

This folder is a site directory as pip leaves one (the package plus its ``dist-info`` with the
``mlbench`` entry point), so putting it on ``sys.path`` installs the plugin. Listing plugins or
reading a leaderboard must import neither this module nor torch (``tests/test_registry_lazy.py``,
``perf/bench_registry_reads.py``); building the backbone imports both.
"""

import torch  # noqa: F401 - at the top, as a plugin author naturally writes it
from torch import nn

from mlbench import hookimpl


def linear_probe(num_labels: int, in_chans: int, pretrained: bool, **options) -> nn.Module:
    """Global average pooling and one linear layer; ``options`` (head_units, dropout, ...) unused."""
    if pretrained:
        raise ValueError("linear-probe has no pretrained weights; expected pretrained=False")
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_chans, num_labels))


@hookimpl
def register_backbones(register):
    register("linear-probe", linear_probe, summary="Pooling + one linear layer (a test plugin)")
