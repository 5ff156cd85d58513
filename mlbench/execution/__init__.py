"""Execution: submitit jobs (local or SLURM) and their records."""
