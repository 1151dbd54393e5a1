"""Generation: random scenarios (`generate`), libFuzzer's structure-aware mutator and crossover
(`mutate`), and the same distributions as Hypothesis strategies (`strategies`).

Rank 1 of fuzz/: imports `fuzz.lang` and the model only.
"""
