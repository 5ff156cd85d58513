"""Registers the built-in backbones (implemented in :mod:`mlbench.models.backbones`): timm models + the paper's head."""

from mlbench.contracts.hookspecs import hookimpl
from mlbench.contracts.benchmark import PAPER_BACKBONES
from mlbench.contracts.registry import LazyFactory

IMPLEMENTATION = "mlbench.models.backbones:timm_backbone"
# The paper's five backbones (mlbench.contracts.benchmark) and small ones for demos/tests.
SMALL_BACKBONES = ("mobilenetv3_small_050", "mobilenetv3_small_075", "resnet10t", "resnet18")
# timm ResNets narrowed for training from scratch on a CPU (the demo's backbones), each to about the
# same cost per step (resnet10t-slim's; mlbench.models.backbones.slim_resnet): model, stage widths.
# No pretrained weights exist at these widths.
SLIM_BACKBONES = {"resnet10t-slim": ("resnet10t", (32, 64, 128, 256)),
                  "resnet18d-slim": ("resnet18d", (24, 48, 96, 192)),
                  "resnet14t-slim": ("resnet14t", (16, 32, 64, 128))}


@hookimpl
def register_backbones(register):
    register("timm", LazyFactory(IMPLEMENTATION), summary="Any timm model: use timm:MODEL_NAME",
             conformance_options={"model_name": "resnet10t"})
    for name in PAPER_BACKBONES:
        register(name, LazyFactory(IMPLEMENTATION, model_name=name), summary=f"timm {name} + 2x512 head (paper)")
    for name in SMALL_BACKBONES:
        register(name, LazyFactory(IMPLEMENTATION, model_name=name), summary=f"timm {name} + 2x512 head (small)")
    for name, (model, channels) in SLIM_BACKBONES.items():
        register(name, LazyFactory("mlbench.models.backbones:slim_resnet", model_name=model, channels=channels),
                 summary=f"timm {model} narrowed ({channels[0]}-{channels[-1]} channels, 16-wide stem) + 2x512 "
                         "head; from scratch only")
