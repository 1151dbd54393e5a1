"""What both exports name the same way: the test's identifier, the run's signatures."""

from __future__ import annotations

import re
from pathlib import Path

from ...run.executor import RunResult


def ident_from_path(source: str) -> str:
    """A C/Python identifier from a file name: `crashes/v1/ttbr1-sync.ops` -> `ttbr1_sync`."""
    stem = Path(source).name
    for suffix in (".ops", ".bin"):
        stem = stem.removesuffix(suffix)
    # always used behind a prefix (test_, iopgfuzz_, OPS_), so a leading digit is fine
    return re.sub(r"\W+", "_", stem).strip("_").lower() or "scenario"


def signatures(res: RunResult) -> list[str]:
    """Distinct finding signatures of a run, in the order they first appear."""
    return list(dict.fromkeys(f.signature for f in res.findings))
