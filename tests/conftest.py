"""Shared pytest configuration.

Hypothesis profile `iopgfuzz-ci`: derandomised (the same examples on every run and machine),
no example database (nothing carried between runs), no per-example deadline (scenario run
times vary with the machine's load).  Tests opt in with
`@settings(settings.get_profile("iopgfuzz-ci"), max_examples=N)`; the whole suite can be run
under it with `pytest --hypothesis-profile=iopgfuzz-ci`.
"""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "iopgfuzz-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)
