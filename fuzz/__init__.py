"""iopgfuzz's fuzzing side, in data-flow order (docs/architecture.md):

    lang (ops, codec) -> gen -> judge (findings, records, oracles) -> run (executor)
    -> repro (triage, replay, minimize, export) -> campaigns (+ target.py) -> tools -> cli

An import points only to an equal or lower rank (tests/test_imports.py).  `fuzz` imports `model`
and `cworld`; neither imports `fuzz`.  This file imports nothing: `fuzz.campaigns.cflite` and
`fuzz/target.py` rely on `import fuzz` loading no module that Atheris should instrument.
"""
