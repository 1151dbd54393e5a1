"""Measurement tools built on everything below: benchmarks (`bench`), the CMO report (`report`),
the model against the real C (`fidelity`), corpus coverage (`coverage_report`).

Rank 6 of fuzz/: imports `fuzz.campaigns` and below; only `fuzz.cli` is above.
"""
