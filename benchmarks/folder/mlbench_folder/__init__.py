"""mlbench's built-in benchmark for a CSV and an image folder: your own dataset without a plugin."""
