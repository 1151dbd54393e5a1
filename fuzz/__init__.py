"""iopgfuzz's fuzzing side: the op language, executor, oracles, campaigns and tools.

`fuzz` imports `model`; `model` never imports `fuzz`.
"""
