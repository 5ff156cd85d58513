"""Build ``padchest-specific.parquet`` and ``padchest-general.parquet`` from the TSVs in ``published/``.

The builder lives with its family, in ``mlbench_padchest.published`` (see its docstring and
README.md here); this script is the same command from the folder of the sources::

    python leaderboards/transcribe.py          # check the TSVs, write both parquet files
    python leaderboards/transcribe.py --check  # check, and fail if a committed parquet differs
"""

import sys

from mlbench_padchest.published import main

if __name__ == "__main__":
    sys.exit(main())
