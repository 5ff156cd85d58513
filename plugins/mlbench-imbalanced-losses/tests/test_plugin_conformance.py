"""mlbench's own contract checks for both losses (what `mlbench plugins test` runs), one test each."""

from mlbench.testing import parametrize_with_checks


@parametrize_with_checks(["focal", "asl"])
def test_conformance(check):
    check()
