"""The undefined-behaviour checks of a C world (cworld/shim/ubsan.c): a patch whose code
shifts a u64 by 64 or more is a `sanitizer` finding naming the check and the function, the
upstream C and the posted v1 have none on the reproducers and seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.lang import ops as O
from fuzz.repro.replay import load_input
from fuzz.run.executor import run_scenario
from fuzz.run.plugins import load_variant

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "patch-v1-review.txt"

# At the start of arm_lpae_map_pages (6.12.117, after its declarations): a shift by
# pgcount & 127, undefined for pgcount 64..127 (C11 6.5.7p3).
SHIFT_PATCH = "\n".join([
    "--- a/drivers/iommu/io-pgtable-arm.c",
    "+++ b/drivers/iommu/io-pgtable-arm.c",
    "@@ -519,6 +519,8 @@",
    " \tarm_lpae_iopte prot;",
    " \tlong iaext = (s64)iova >> cfg->ias;",
    " ",
    "+\t*(volatile u64 *)&prot = 1ULL << (pgcount & 127);",
    "+",
    " \tif (WARN_ON(!pgsize || (pgsize & cfg->pgsize_bitmap) != pgsize))",
    " \t\treturn -EINVAL;",
    " ",
    ""])


def _scenario(pgcount: int) -> O.Scenario:
    return O.parse_scenario("# iopgfuzz ops v1\nconfig fmt=arm64-s1 granule=4K\n"
                            f"pt.map_pages 0x40000000 0x80000000 4K {pgcount}\n")


@pytest.fixture(scope="module")
def shifty(tmp_path_factory):
    p = tmp_path_factory.mktemp("ub") / "shift.patch"
    p.write_text(SHIFT_PATCH)
    return load_variant(f"c:{p}")


def test_a_shift_past_the_width_is_a_sanitizer_finding(shifty):
    res = run_scenario(_scenario(100), shifty, reference=load_variant("c:upstream"))
    found = [f for f in res.findings if f.kind == "sanitizer"]
    assert [f.where for f in found] == ["shift-out-of-bounds:arm_lpae_map_pages"]
    assert "io-pgtable-arm.c:522" in found[0].message
    assert "stack: arm_lpae_map_pages" in found[0].message


def test_a_shift_within_the_width_is_not(shifty):
    res = run_scenario(_scenario(12), shifty, reference=load_variant("c:upstream"))
    assert [f for f in res.findings if f.kind == "sanitizer"] == []


@pytest.mark.parametrize("spec", ["c:upstream", f"c:{SEED}"])
def test_upstream_and_v1_have_no_undefined_behaviour_on_the_inputs(spec):
    variant = load_variant(spec)
    for path in sorted((ROOT / "crashes").glob("*/*.ops")) + \
            sorted((ROOT / "corpus").glob("*/*.ops")):
        res = run_scenario(load_input(path), variant, reference=load_variant("c:upstream"))
        assert [f.signature for f in res.findings if f.kind == "sanitizer"] == [], path.name
