"""False positives found by fuzzing `fixed`, kept so they stay fixed.  Each scenario must give
no finding of the variant under `fixed` (and `reference`) because the behaviour is the kernel's
own; where upstream misbehaves, that is an `upstream` finding of the reference instead."""

import pytest

from fuzz.judge.findings import UPSTREAM
from fuzz.lang.ops import parse_scenario
from fuzz.run.executor import run_scenario
from model.variants import get_variant

CASES = {
    # 4K, ias 36: a 64-entry PGD.  map_pages checks only the first iova, so mapping 512G at 0
    # writes 512 level-1 blocks into the 64-entry PGD (the kernel's own out-of-bounds write,
    # in both worlds).  The injected sync failure makes iommu_map unmap the range in the
    # variant; that unwind is the kernel's too, so its out-of-bounds accesses are not the
    # variant's.
    "unwind-of-an-out-of-ias-map": """# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=36 oas=42
fail sync_map
map 0x0 0x0 512G
""",
    # A map of nearly 2^64 bytes "succeeds" through min_t(int, pgcount, ...) truncation in
    # __arm_lpae_map (kernel-semantics §3.4); a sync walker must not turn that into an error
    # that unmaps it again (fixed clips the end of the range).
    "huge-map-through-pgcount-truncation": """# iopgfuzz ops v1
config fmt=arm64-s2 granule=4K ias=44 oas=44 concat=legacy enoent_bug=0
map 0x7ffff000 0x7ffff000 0xffffffffffe02000
map 0x7fc0000000 0x7fc0000000 1G
""",
    # The same truncation maps nearly 2^64 bytes; then the injected sync failure makes iommu_map
    # unmap it in the variant, the unmap meets a hole, __arm_lpae_unmap returns (size_t)-ENOENT
    # (enoent_bug=1) and the core's next iommu_pgsize hits BUG_ON.  That crash is the core's:
    # the same unwind on the reference crashes the same way, so it is not a finding (found by a
    # 60 s campaign against fixed: warn BUG:iommu_pgsize, warn __arm_lpae_unmap:hole and
    # state-mismatch, all from this one input).
    "unwind-crashes-in-the-core": """# iopgfuzz ops v1
config fmt=arm64-s2 granule=4K ias=52 oas=48 quirks=none line=64 concat=mandatory enoent_bug=1
fail sync_map nth=2
map 0xffdff000 0xffdff000 0xfffffffffffff000
smmu 0xffdff000
sync 0xffffe000 8K
""",
    # pt.map_pages of a 1G block at an unaligned iova writes PGD entry 0, replacing the table
    # that held an already synced 4K page; the block is deferred (no sync was asked for), so
    # the page's old range is no longer "synced" and reading it is not a stale read.
    "unaligned-block-replaces-a-synced-table": """# iopgfuzz ops v1
config fmt=arm32-s1 granule=4K ias=32 oas=40
map 0x10000000 0x0 4K
pt.map_pages 0x20000000 0x0 1G 1
smmu 0x10000000
""",
}


@pytest.mark.parametrize("variant", ["fixed", "reference"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_no_false_positive(name, variant):
    res = run_scenario(parse_scenario(CASES[name]), get_variant(variant))
    assert [f for f in res.findings if f.kind != UPSTREAM] == []
    # what upstream itself does wrong here (the comments above): out-of-bounds writes past a
    # PGD, a clean of 2^64 bytes from the pgcount truncation; the pt.map_pages case is legal
    upstream = {f.op_index for f in res.findings if f.kind == UPSTREAM}
    assert bool(upstream) == (name != "unaligned-block-replaces-a-synced-table")


def test_the_first_case_really_exercises_an_out_of_bounds_unwind():
    # guard against the scenario silently becoming harmless: the reference's own map must be
    # out of bounds, and the variant's unwind must run
    res = run_scenario(parse_scenario(CASES["unwind-of-an-out-of-ias-map"]), get_variant("fixed"))
    rec = res.records[1]
    assert any(e.kind == "oob-write" for e in rec.ref.events)
    assert rec.var.ret == -5 and "unmap" in rec.var.cleans
