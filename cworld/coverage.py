"""The kernel C's edge coverage, handed to Atheris's libFuzzer.

A C world library counts edges in an array of 8-bit counters (shim/sancov.c, from
-fsanitize-coverage=trace-pc, gcc and clang alike).  libFuzzer accepts extra counter arrays
through `__sanitizer_cov_8bit_counters_init(start, end)` (and their PC table through
`__sanitizer_cov_pcs_init`), the calls a module built with -fsanitize=fuzzer-no-link makes from
its constructor.  Atheris's libFuzzer is in its `core_with_libfuzzer` extension, loaded
privately by `import atheris`; this module finds it in the process and makes those two calls for
every loaded C world library, so that a campaign keeps an input that reaches a new edge of the
C, not only of the model's Python.
"""

from __future__ import annotations

import ctypes as C
from pathlib import Path

import numpy as np

#: The libFuzzer core Atheris loads (with libFuzzer linked in)
LIBFUZZER_CORE = "core_with_libfuzzer"

_registered: dict[str, int] = {}
_keep: list = []                  # PC tables must outlive the registration


def libfuzzer_core() -> C.CDLL | None:
    """Atheris's libFuzzer, if this process has loaded it."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        if LIBFUZZER_CORE in Path(path).name:
            return C.CDLL(path)          # already loaded: the same handle, no second copy
    return None


def register(libraries) -> int:
    """Register each library's counters once; returns how many counters were added."""
    core = libfuzzer_core()
    if core is None:
        return 0
    added = 0
    for lib in libraries:
        key = str(lib.built.lib)
        if key in _registered:
            continue
        start, end = C.c_void_p(), C.c_void_p()
        lib.so.iopgfuzz_cov_counters(C.byref(start), C.byref(end))
        n = end.value - start.value
        # one (pc, flags) pair per counter, as libFuzzer expects a table as long as the
        # counters; the "pcs" are edge numbers (the counters are hashed edges, not PCs)
        pcs = np.zeros(2 * n, dtype=np.uintp)
        pcs[0::2] = np.arange(1, n + 1, dtype=np.uintp)
        _keep.append(pcs)
        beg = pcs.ctypes.data
        core.__sanitizer_cov_8bit_counters_init(start, end)
        core.__sanitizer_cov_pcs_init(C.c_void_p(beg), C.c_void_p(beg + pcs.nbytes))
        _registered[key] = n
        added += n
    return added
