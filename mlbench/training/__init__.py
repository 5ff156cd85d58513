"""Training: the run's stages (runner), one backbone's loop, checkpoints, data parallelism, progress."""
