#!/usr/bin/env python3
"""ClusterFuzzLite / OSS-Fuzz target fuzz_v1: the posted patch (`v1`) against the reference model.
Its known finding kinds (crashes/v1/, docs/findings.md) are recorded, not crashes; any other
correctness finding, an exception in the harness, a timeout or running out of memory is a crash.

libFuzzer flags only, e.g. `python .clusterfuzzlite/fuzz_v1.py -runs=100 SEED_DIR`.
See docs/clusterfuzzlite.md.
"""
# No `from __future__` here: OSS-Fuzz's coverage build prepends code to this file.
import os
import sys

import atheris  # noqa: F401  - loaded before anything it instruments
import numpy  # noqa: F401  - imported first: NumPy must never be instrumented

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if not getattr(sys, "frozen", False) and os.path.isfile(os.path.join(_ROOT, "fuzz", "target.py")):
    sys.path.insert(0, _ROOT)  # run from a source tree: this tree's fuzz/ and model/

# fuzz.campaigns.cflite imports the standard library only (see its docstring)
from fuzz.campaigns import cflite  # noqa: E402

if __name__ == "__main__":
    cflite.run("fuzz_v1", sys.argv)
