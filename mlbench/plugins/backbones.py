"""Registers the built-in backbones (implemented in :mod:`mlbench.models.backbones`): timm models + the paper's head."""

from mlbench.contracts.hookspecs import hookimpl
from mlbench.contracts.benchmark import PAPER_BACKBONES
from mlbench.contracts.registry import LazyFactory

IMPLEMENTATION = "mlbench.models.backbones:timm_backbone"
# The paper's five backbones (mlbench.contracts.benchmark) and small ones for demos/tests.
SMALL_BACKBONES = ("mobilenetv3_small_050", "mobilenetv3_small_075", "resnet10t", "resnet18")


@hookimpl
def register_backbones(register):
    register("timm", LazyFactory(IMPLEMENTATION), summary="Any timm model: use timm:MODEL_NAME",
             conformance_options={"model_name": "resnet10t"})
    for name in PAPER_BACKBONES:
        register(name, LazyFactory(IMPLEMENTATION, model_name=name), summary=f"timm {name} + 2x512 head (paper)")
    for name in SMALL_BACKBONES:
        register(name, LazyFactory(IMPLEMENTATION, model_name=name), summary=f"timm {name} + 2x512 head (small)")
