"""Remedy grids: remedies x seeds as ordinary run directories, their remedies grammar and status."""
