"""Every seed and every kept reproducer, replayed as a regression test.

Seeds (corpus/) must give no finding, efficiency ones included, under `reference` and
`fixed`.  Each reproducer in crashes/ states, in `# expect VARIANT:` and `# notes VARIANT:`
lines, the correctness and efficiency kinds it must produce under each variant; those lines
were written from the analysis in docs/findings.md, not from a run.
"""

import re
from pathlib import Path

import pytest

from fuzz.judge.findings import EFFICIENCY_KINDS
from fuzz.repro.replay import load_input
from fuzz.run.executor import run_scenario
from model.variants import get_variant

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "corpus").rglob("*.ops"))
CRASHES = sorted((ROOT / "crashes").rglob("*.ops"))


def _kinds(path: Path, variant: str) -> tuple[set[str], set[str]]:
    res = run_scenario(load_input(path), get_variant(variant))
    assert res.config_error is None, res.config_error
    found = {f.kind for f in res.findings}
    return found - set(EFFICIENCY_KINDS), found & set(EFFICIENCY_KINDS)


def _declared(path: Path, what: str, variant: str) -> set[str] | None:
    m = re.search(rf"^# {what} {re.escape(variant)}: (.*)$", path.read_text(), re.M)
    if m is None:
        return None
    return {k.strip() for k in m.group(1).split(",") if k.strip() not in ("", "-")}


def test_there_are_seeds_and_reproducers():
    assert len(SEEDS) >= 10
    assert len(CRASHES) >= 8


@pytest.mark.parametrize("variant", ["reference", "fixed"])
@pytest.mark.parametrize("path", SEEDS + CRASHES, ids=lambda p: p.name)
def test_reference_and_fixed_find_nothing(path, variant):
    """Nothing, unless the reproducer declares otherwise for this variant (crashes/v1/
    split-on-unmap-6.12.ops: `fixed` too meets 6.12's split, docs/findings.md §10)."""
    correctness, efficiency = _kinds(path, variant)
    expect = _declared(path, "expect", variant) or set()
    notes = _declared(path, "notes", variant) or set()
    assert correctness == expect and efficiency == notes


@pytest.mark.parametrize("variant", ["v1", "v1-review"])
@pytest.mark.parametrize("path", CRASHES, ids=lambda p: p.name)
def test_reproducers_still_reproduce(path, variant):
    expect, notes = _declared(path, "expect", variant), _declared(path, "notes", variant)
    assert expect is not None and notes is not None, f"{path.name} declares nothing for {variant}"
    correctness, efficiency = _kinds(path, variant)
    assert correctness == expect
    assert efficiency == notes
