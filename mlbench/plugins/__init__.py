"""The built-in plugins' registration modules, one per entry point in ``pyproject.toml``.

Each module only names its factories (:class:`mlbench.contracts.registry.LazyFactory`); the implementation
(``mlbench.models.losses``, ``mlbench.models.backbones``, ...) is imported when a factory is first called, so
building the registry imports no torch, timm or OpenCV. The samplers register from
``mlbench.models.samplers`` itself: it needs only numpy.
"""
