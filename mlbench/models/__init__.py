"""Models: the built-in losses, backbones, ensembles and samplers."""
