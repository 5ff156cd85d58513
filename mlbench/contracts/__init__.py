"""Plugins and contracts: the hooks, the registry (entry points, LazyFactory), the Benchmark and Recipe a family declares."""
