"""The PadChest benchmarks of Liz et al. 2023, as an mlbench plugin.

It enters mlbench only through the ``mlbench`` entry-point group (``mlbench_padchest.plugin``),
the same door a third-party plugin uses.
"""
