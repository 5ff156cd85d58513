"""CheXpert-format label files as an mlbench dataset and benchmark (a third-party plugin kept as a test fixture)."""
