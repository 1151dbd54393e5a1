"""Upstream misbehaviour is the reference's finding, and a walker is judged by the contract of
docs/oracles.md there: refuse the call, do what upstream does, or sync every translatable IOVA
of the range (wrapped ranges included).

The scenarios come from the kernel's arithmetic, worked by hand:

* 4K granule, ias 32: the PGD has 2^(32-30) = 4 entries of 1G.  `arm_lpae_map_pages` checks
  only the first IOVA against the IAS, and `__arm_lpae_map` bounds the PGD level by
  ARM_LPAE_PTES_PER_TABLE (512), so an 8G map at 0 writes PGD entries 4..7 past the PGD and
  returns 0.
* `map 0x40000000 0x40000000 0xffffffffffffc000` (4K, ias 48): `iommu_pgsize` picks 1G with a
  count of 0x3ffffffff (> INT_MAX); `min_t(int, pgcount, max_entries)` makes it -1, the clean
  of -1 entries is 2^64 bytes out of bounds, `*mapped` goes negative and the core's u64 loop
  carries on at IOVA 0 (the range itself wraps there: 0x40000000 + size = 2^64 + 0x3fffc000).
"""

import pytest

from fuzz.judge.findings import UPSTREAM
from fuzz.judge.intervals import clip_pieces, input_region, request_pieces
from fuzz.lang.ops import parse_scenario
from fuzz.run.executor import run_scenario
from fuzz.run.plugins import load_variant
from model.kapi import io_pgtable_ops_to_data, pgd, u64
from model.variants import get_variant
from model.variants.base import Variant, forwarding_driver_iotlb_sync_map
from model.variants.fixed import __arm_lpae_iotlb_sync_map as fixed_walk

VALIDATING = "examples/validating_walker.py:ValidatingWalker"
NAIVE = "examples/naive_leaf_walker.py:NaiveLeafWalker"

SMALL_PGD_OVERRUN = """# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=32 oas=40 line=64
map 0x0 0x0 8G
smmu 0x40000000
unmap 0x0 8G
map 0x0 0x0 1G
smmu 0x200000
"""

PGCOUNT_TRUNCATION = """# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=48 oas=48 line=64
map 0x40000000 0x40000000 0xffffffffffffc000
smmu 0x200000
smmu 0x40000000
"""

U64 = (1 << 64) - 1


def _run(text, variant):
    v = load_variant(variant) if "/" in variant else get_variant(variant)
    return run_scenario(parse_scenario(text), v)


def _judged(res):
    return [f for f in res.findings if f.kind != UPSTREAM]


# -- the range arithmetic ---------------------------------------------------------------------

def test_request_pieces_by_hand():
    assert request_pieces(0x1000, 0) == []
    assert request_pieces(0x1000, 0x2000) == [(0x1000, 0x2fff)]
    assert request_pieces(U64 - 0xfff, 0x1000) == [(U64 - 0xfff, U64)]      # ends at 2^64 - 1
    assert request_pieces(0x40000000, 0xffffffffffffc000) == [(0x40000000, U64),
                                                              (0, 0x3fffbfff)]
    assert request_pieces(5, 1 << 70) == [(0, U64)]


def test_input_region_and_clip_by_hand():
    assert input_region(48, False) == (0, (1 << 48) - 1)
    assert input_region(39, True) == ((1 << 64) - (1 << 39), U64)
    r = input_region(48, False)
    assert clip_pieces([(0x40000000, U64), (0, 0x3fffbfff)], r) == [(0x40000000, (1 << 48) - 1),
                                                                    (0, 0x3fffbfff)]
    # a TTBR1 table translates nothing of the part that wrapped onto 0
    assert clip_pieces([((1 << 64) - 0x2000, U64), (0, 0xfff)], input_region(39, True)) == \
        [((1 << 64) - 0x2000, U64)]


# -- upstream findings ------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["reference", "fixed", "v1", VALIDATING, NAIVE])
def test_small_pgd_overrun_is_upstream_whatever_the_variant(variant):
    res = _run(SMALL_PGD_OVERRUN, variant)
    up = [f for f in res.findings if f.kind == UPSTREAM]
    assert up and up[0].op_index == 0
    assert up[0].variant == "reference"             # attributed to the reference
    assert up[0].where == "end-unchecked"           # named by its root cause (U1) ...
    assert up[0].config_class == "-"                # ... whatever the PGD's shape
    assert {"oob-write:__arm_lpae_init_pte", "untranslatable:map"} <= \
        set(up[0].detail["misbehaviour"])
    # the unmap of the same 8G reads and clears the same entries past the PGD: the same cause
    # (unless the variant refused the map: then the replayed unwind already cleared them)
    refused = variant in (VALIDATING, NAIVE)
    assert [(f.op_index, f.where) for f in up] == \
        [(0, "end-unchecked")] + ([] if refused else [(2, "end-unchecked")])


def test_pgcount_truncation_is_upstream():
    res = _run(PGCOUNT_TRUNCATION, "reference")
    up = [f for f in res.findings if f.kind == UPSTREAM]
    assert [(f.op_index, f.where) for f in up] == [(0, "pgcount-truncation")]
    assert set(up[0].detail["misbehaviour"]) == {"oob-clean:__arm_lpae_sync_pte",
                                                 "untranslatable:map"}


def test_upstream_causes_by_hand():
    from types import SimpleNamespace as Cfg

    from model.driver import upstream_causes
    s1 = Cfg(ias=32, quirks=0)
    assert upstream_causes(s1, 0, 1 << 30, 4) == []                  # [0, 4G): the whole PGD
    assert [n for n, _ in upstream_causes(s1, 0, 1 << 30, 8)] == ["end-unchecked"]
    assert [n for n, _ in upstream_causes(s1, 1 << 32, 1 << 30, 1)] == []   # start refused
    big = Cfg(ias=48, quirks=0)
    assert [n for n, _ in upstream_causes(big, 1 << 30, 1 << 30, 0x3ffffffff)] == \
        ["pgcount-truncation", "end-unchecked"]
    assert upstream_causes(big, 0, 4096, (1 << 31) - 1) == []        # INT_MAX pages fit an int
    ttbr1 = Cfg(ias=39, quirks=1 << 5)
    assert upstream_causes(ttbr1, (1 << 64) - 4096, 4096, 1) == []   # the last page of TTBR1
    assert [n for n, _ in upstream_causes(ttbr1, (1 << 64) - 4096, 4096, 2)] == \
        ["end-unchecked"]                                            # past 2^64


def test_a_direct_call_past_a_small_pgd_is_named_by_its_cause():
    res = _run("""# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=32 oas=40 line=64
pt.map_pages 0x0 0x0 1G 8
""", "fixed")
    assert [(f.op_index, f.where) for f in res.findings if f.kind == UPSTREAM] == \
        [(0, "end-unchecked")]


def test_an_ordinary_scenario_has_no_upstream_finding():
    res = _run("""# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=48 oas=48
map 0x40000000 0x0 2M
unmap 0x40000000 2M
""", "v1")
    assert not [f for f in res.findings if f.kind == UPSTREAM]


# -- refusing is accepted, and later ops still compare ------------------------------------

@pytest.mark.parametrize("variant", [VALIDATING, NAIVE, "fixed"])
def test_refusing_or_syncing_what_upstream_mishandled_is_no_finding(variant):
    for text in (SMALL_PGD_OVERRUN, PGCOUNT_TRUNCATION):
        res = _run(text, variant)
        assert _judged(res) == [], (variant, res.findings)


def test_a_refusal_is_mirrored_so_later_ops_compare():
    res = _run(SMALL_PGD_OVERRUN, VALIDATING)
    assert res.records[0].var.ret == -34                 # -ERANGE, after the core's unwind
    # the 1G map after it is an ordinary op: both worlds map, return 0 and agree
    assert res.records[3].ref.ret == res.records[3].var.ret == 0
    assert not res.records[3].findings


# -- what a variant does beyond upstream is still judged ---------------------------------------

def _clipping_sync_map(ops, iova, size):
    """fixed before the wrap rule: clips to the IAS, drops the part past 2^64."""
    data = io_pgtable_ops_to_data(ops)
    top = (1 << data.iop.cfg.ias) - 1
    iova, size = u64(iova), u64(size)
    if not size:
        return 0
    return fixed_walk(data, iova, min(iova + size - 1, top), data.start_level, pgd(data))


def _refusing_sloppy_sync_map(ops, iova, size):
    """Reads the 8 entries after a 4-entry PGD before it refuses."""
    data = io_pgtable_ops_to_data(ops)
    pgd(data).read_many(8)
    return -34


class _Plugin(Variant):
    defer_sync_pte = True

    def __init__(self, name, fn):
        self.name, self.fn = name, fn

    def io_pgtable_iotlb_sync_map(self, data):
        return None if data.iop.cfg.coherent_walk else self.fn

    def driver_iotlb_sync_map(self, pgtbl_ops):
        return forwarding_driver_iotlb_sync_map(pgtbl_ops)


def test_a_walker_that_drops_the_wrapped_part_is_a_stale_read():
    res = run_scenario(parse_scenario(PGCOUNT_TRUNCATION), _Plugin("clip", _clipping_sync_map))
    stale = [f for f in res.findings if f.kind == "stale-read"]
    # the core mapped IOVA 0 onwards (the wrapped part) and the walker reported success
    assert stale and stale[0].op_index == 0 and stale[0].detail["iova"] < 0x40000000


def test_a_refusing_walker_that_reads_out_of_bounds_is_judged():
    res = run_scenario(parse_scenario(SMALL_PGD_OVERRUN),
                       _Plugin("sloppy", _refusing_sloppy_sync_map))
    oob = [f for f in res.findings if f.kind == "oob-access" and f.op_index == 0]
    assert oob and oob[0].where == "oob-read:_refusing_sloppy_sync_map", res.findings


# -- the C reference names upstream's misbehaviour the same way ------------------------------

def test_c_reference_gives_the_same_upstream_finding(real_tree):
    from fuzz.run.plugins import load_variant as lv
    model = run_scenario(parse_scenario(SMALL_PGD_OVERRUN), get_variant("fixed"))
    c = run_scenario(parse_scenario(SMALL_PGD_OVERRUN), get_variant("fixed"),
                     reference=lv("c:upstream"))
    sig = [(f.op_index, f.where) for f in model.findings if f.kind == UPSTREAM]
    assert sig == [(f.op_index, f.where) for f in c.findings if f.kind == UPSTREAM]
    assert all(f.variant == "c:upstream" for f in c.findings if f.kind == UPSTREAM)
    assert _judged(c) == []


# TTBR1, ias 48: the map at 2^64 - 2M of 2^64 - 4K bytes wraps all the way round to end at
# 0xffffffffffdfefff, just below its start, inside the TTBR1 input range again.  iommu_pgsize
# gives 2M x (2^43 - 1), truncated to -1 by min_t(int, ...): *mapped = -2M, so the core maps
# from 2^64 - 4M the 2M - 4K that are left, all of it in that wrapped part.
TTBR1_ROUND_TRIP = """# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=48 oas=48 quirks=ttbr1 line=64
map 0xffffffffffe00000 0x80200000 0xfffffffffffff000
smmu 0xffffffffffc00000
"""


def test_ttbr1_range_that_comes_round_is_synced_by_fixed():
    res = _run(TTBR1_ROUND_TRIP, "fixed")
    assert res.records[0].var.ret == 0
    # the core did map the wrapped part (the CPU view translates it) ...
    assert res.var.smmu_walk(0xffffffffffc00000, "cpu").oa is not None
    # ... and fixed synced it: the SMMU reads it from memory, nothing judged
    assert res.records[1].var.ret.oa is not None
    assert _judged(res) == []


def test_ttbr1_range_that_comes_round_without_the_wrapped_part_is_stale():
    def sync_first_piece_only(ops, iova, size):
        data = io_pgtable_ops_to_data(ops)
        iova, size = u64(iova), u64(size)
        return fixed_walk(data, iova, min(iova + size - 1, U64), data.start_level, pgd(data))
    res = run_scenario(parse_scenario(TTBR1_ROUND_TRIP), _Plugin("half", sync_first_piece_only))
    assert [f.kind for f in res.findings if f.op_index == 0 and f.kind != UPSTREAM] == \
        ["stale-read"]


def test_a_refusal_whose_unwind_hits_the_cores_bug_is_not_the_variants():
    """Found by a campaign against the validating walker: it refuses a wrapped map that
    upstream "maps" through the pgcount truncation; the core's unwind (iommu_unmap of the
    same wrapped range) then reaches BUG_ON in iommu_pgsize.  The same unwind on the reference
    crashes the same way: upstream's, not the walker's."""
    res = _run("""# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=48 oas=48 quirks=none line=64
map 0x1fffffff000 0xfffffff000 0xffffffffffe01000
""", VALIDATING)
    rec = res.records[0]
    assert rec.var.crashed and "iommu_pgsize" in rec.var.crashed      # the core's unwind
    assert rec.ref.crashed and "iommu_pgsize" in rec.ref.crashed      # the replayed one
    assert _judged(res) == [], res.findings


@pytest.mark.parametrize(("name", "cause"), [("pgcount-truncation.ops", "pgcount-truncation"),
                                             ("small-pgd-end-unchecked.ops", "end-unchecked"),
                                             ("unmap-enoent-6.17.ops", "unmap-errno")])
def test_each_upstream_reproducer_is_named_by_its_cause(name, cause):
    """The root cause of each, from its arithmetic (the files' comments): a count above
    INT_MAX; a last IOVA past the IAS; (size_t)-ENOENT from unmap_pages."""
    from pathlib import Path

    from fuzz.repro.replay import load_input
    path = Path(__file__).resolve().parent.parent / "crashes" / "upstream" / name
    res = run_scenario(load_input(path), get_variant("fixed"))
    assert {f.where for f in res.findings if f.kind == UPSTREAM} == {cause}


def test_six_twelve_has_no_enoent_bug():
    res = _run("""# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=48 oas=48 line=64 enoent_bug=0
map 0x8000000000 0x0 12K
unmap 0x8000001000 12K
""", "reference")
    assert res.records[1].ref.ret == 0x2000 and not res.findings
