"""NIH ChestX-ray14 for mlbench: the label-file reader, its synthetic demo and the ``nih-cxr14`` benchmarks."""
