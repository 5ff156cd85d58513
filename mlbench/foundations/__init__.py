"""Foundations every layer uses: user errors, missing values, atomic writes, locks, options, paths."""
