"""Execution: one scenario on a reference world and a variant world, side by side, the oracles
called after every op (`executor`), and loading variants by name, file or module (`plugins`).

Rank 3 of fuzz/: imports `fuzz.lang`, `fuzz.judge`, the model and the C world.
"""
