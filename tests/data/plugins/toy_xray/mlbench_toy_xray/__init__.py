"""Toy X-ray: a made-up chest film format and its benchmark, as an mlbench plugin (a test fixture)."""
