"""Results: the run and grid directories, predictions, leaderboards, metrics and their statistics."""
