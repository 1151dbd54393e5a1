"""Campaigns: the Atheris campaign driver and its workers (`campaign`; the target script itself
is `fuzz/target.py`, same rank), the ClusterFuzzLite targets (`cflite`), and the Hypothesis
front end (`hypo_campaign`).

Rank 5 of fuzz/: imports `fuzz.repro` and below, and `fuzz.target`.
"""
