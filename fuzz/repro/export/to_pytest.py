"""`export --format pytest`: a self-contained test function that embeds the `.ops` text and
checks that the variant still reports the finding signature(s) and that `reference` and `fixed`
report none."""

from __future__ import annotations

from pathlib import Path

from ...lang import ops as O
from ...run.executor import RunResult
from .common import ident_from_path, signatures

CLEAN_VARIANTS = ("reference", "fixed")

def _ops_text(scenario: O.Scenario, original: str | None) -> str:
    """The text to embed: the original `.ops` text (comments and all) when it is one, else
    the canonical form."""
    if original is not None:
        try:
            if O.format_scenario(O.parse_scenario(original)) == O.format_scenario(scenario):
                return original if original.endswith("\n") else original + "\n"
        except O.OpsSyntaxError:
            pass
    return O.format_scenario(scenario)



def export_pytest(scenario: O.Scenario, res: RunResult, variant_spec: str, source: str,
                  original: str | None = None) -> str:
    name = ident_from_path(source)
    sigs = signatures(res)
    clean = [v for v in CLEAN_VARIANTS if v != variant_spec]
    text = _ops_text(scenario, original)
    if '"""' in text or "\\" in text:
        ops_literal = repr(text)
    else:
        ops_literal = '"""\\\n' + text + '"""'
    expect = "\n".join(f"    {s!r}," for s in sigs)
    doc_sigs = "\n".join(f"    {s}" for s in sigs) or "    (none)"
    up = name.upper()
    text = f'''"""Regression test exported by iopgfuzz from {Path(source).name}.

`python -m fuzz export {source} --format pytest --variant {variant_spec}`
The variant {variant_spec} must still report these finding signatures:

{doc_sigs}

and {" and ".join(clean) or "no other variant"} must report none.
"""

from fuzz.lang.ops import parse_scenario
from fuzz.run.executor import run_scenario
from fuzz.run.plugins import load_variant

OPS_{up} = {ops_literal}

EXPECTED_{up} = [
{expect}
]


def test_{name}():
    scenario = parse_scenario(OPS_{up}, {Path(source).name!r})
    variant = load_variant({variant_spec!r})
    found = [f.signature for f in run_scenario(scenario, variant).findings]
    missing = [s for s in EXPECTED_{up} if s not in found]
    assert not missing, f"{{variant.name}} no longer reports {{missing}}; it reports {{found}}"
    if not EXPECTED_{up}:
        assert not found, f"{{variant.name}} now reports {{found}}"
    for clean in {tuple(clean)!r}:
        other = [f.signature for f in run_scenario(scenario, load_variant(clean)).findings]
        assert not other, f"{{clean}} reports {{other}}"
'''
    if any(len(line) > 100 for line in text.splitlines()):
        text = "# ruff: noqa: E501\n" + text      # the embedded .ops text has long lines
    return text
