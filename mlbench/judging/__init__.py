"""Judging a run: against the published board or another run, and submitting it to a board."""
