"""Build ``benchmarks/nih/mlbench_nih/leaderboards/nih-cxr14.parquet`` from the TSVs beside this file.

The builder lives with its family, in ``mlbench_nih.published`` (see its docstring and README.md
here); this script is the same command from the folder of the sources::

    python leaderboards/nih-cxr14/build.py          # check the TSVs, write the parquet file
    python leaderboards/nih-cxr14/build.py --check  # check, and fail if the shipped file differs
"""

import sys

from mlbench_nih.published import main

if __name__ == "__main__":
    sys.exit(main())
