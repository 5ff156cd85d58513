"""Registers the built-in explainers (implemented in :mod:`mlbench.explainers.gradcam`)."""

from mlbench.contracts.hookspecs import hookimpl
from mlbench.contracts.registry import LazyFactory

IMPLEMENTATION = "mlbench.explainers.gradcam:GradCAMExplainer"


@hookimpl
def register_explainers(register):
    register("gradcam", LazyFactory(IMPLEMENTATION, method="gradcam"),
             summary="Grad-CAM (paper), batched over images and labels: one forward per model and batch")
    register("hirescam", LazyFactory(IMPLEMENTATION, method="hirescam"),
             summary="HiResCAM: element-wise gradient x activation, batched")
    register("layercam", LazyFactory(IMPLEMENTATION, method="layercam"),
             summary="LayerCAM: positive gradients x activation, batched")
