"""Shared pytest configuration.

Hypothesis profile `iopgfuzz-ci`: derandomised (the same examples on every run and machine),
no example database (nothing carried between runs), no per-example deadline (scenario run
times vary with the machine's load).  Tests opt in with
`@settings(settings.get_profile("iopgfuzz-ci"), max_examples=N)`; the whole suite can be run
under it with `pytest --hypothesis-profile=iopgfuzz-ci`.
"""

import pytest
from hypothesis import HealthCheck, settings

from cworld.source import KernelSourceMissing, find_tree

settings.register_profile(
    "iopgfuzz-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="session")
def real_tree():
    """The kernel tree C worlds build (run_tests.sh fetches Debian's 6.12 into the cache
    first); a missing tree fails the test with the fetch command, it is never skipped."""
    try:
        return find_tree()
    except KernelSourceMissing as e:
        pytest.fail(str(e))
