"""Which model branches a corpus reaches: replay every input under coverage.py, write HTML."""

from __future__ import annotations

from pathlib import Path

from ..lang.codec import decode
from ..run.executor import run_scenario
from ..run.plugins import load_variant


def coverage_report(corpus: Path, out: Path, variant: str) -> tuple[int, float]:
    import coverage  # the `fuzz` extra installs it

    cov = coverage.Coverage(source=["model", "fuzz"], branch=True,
                            omit=["*/fuzz/target.py", "*/fuzz/campaigns/campaign.py"])
    v = load_variant(variant)
    files = sorted(p for p in Path(corpus).rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    cov.start()
    try:
        for p in files:
            run_scenario(decode(p.read_bytes()), v)   # any bytes decode
    finally:
        cov.stop()
    total = cov.html_report(directory=str(out), title=f"iopgfuzz corpus coverage ({variant})")
    return len(files), total
