"""A merged benchmark family: PadChest and NIH ChestX-ray14 trained together on the findings they share.

It reaches the PadChest and NIH datasets and benchmarks only through the registry, by name, as a third
party would (``mlbench.get_registry()``); it imports neither family.
"""
