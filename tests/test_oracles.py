"""Every finding kind of design §5: one scenario that makes it fire, one that keeps it quiet.

Where the posted patch (v1) shows a kind by itself, the scenario is a real v1 case and the
expectation is derived below from the patch's arithmetic (kernel-semantics §5.1):

    shift          = LVL_SHIFT(lvl - 1) + PGD_IDX(lvl - 1)
    iova_offset    = iova & ((1 << shift) - 1)
    sync_idx_start = LVL_IDX(iova, lvl)
    sync_idx_end   = (iova_offset + size + BLOCK(lvl) - GRANULE) >> LVL_SHIFT(lvl)
    num_entries    = (int) min_t(unsigned long, sync_idx_end - sync_idx_start,
                                 max_entries(sync_idx_start))
    LVL_SHIFT(l) = (4 - l) * 9 + 3 for 4K; PGD_IDX(l) = pgd_bits - 9 at the start level, else 0.

Kinds v1 cannot produce (bad-walk, state-mismatch, return-mismatch, model-error) are made to
fire by small, deliberately broken variants written here against the public variant API.
"""

from __future__ import annotations

import pytest

from fuzz.judge import findings as K
from fuzz.lang.ops import parse_scenario
from fuzz.repro.triage import group_findings
from fuzz.run.executor import run_scenario
from model.kapi import (
    ARM_LPAE_LVL_IDX,
    ARM_LPAE_MAX_LEVELS,
    ARM_LPAE_PTE_TYPE_TABLE,
    EINVAL,
    arm_lpae_sync_pte,
    io_pgtable_ops_to_data,
    iopte_deref,
    iopte_type,
    pgd,
)
from model.variants import Fixed, get_variant

HEADER = "# iopgfuzz ops v1\n"
EIO = -5


def run(text: str, variant):
    v = get_variant(variant) if isinstance(variant, str) else variant
    return run_scenario(parse_scenario(HEADER + text), v)


def of_kind(res, kind):
    return [f for f in res.findings if f.kind == kind]


def kinds(res):
    return {f.kind for f in res.findings}


# --- broken variants ----------------------------------------------------------------------------

def leaf_ptep(data, iova):
    """The CPU's walk to the entry that maps `iova` (the leaf, or the first non-table)."""
    lvl, ptep = data.start_level, pgd(data)
    while True:
        p = ptep + ARM_LPAE_LVL_IDX(iova, lvl, data)
        pte = p[0]
        if lvl == ARM_LPAE_MAX_LEVELS - 1 or iopte_type(pte) != ARM_LPAE_PTE_TYPE_TABLE:
            return p
        ptep, lvl = iopte_deref(pte, data), lvl + 1


class AfterSync(Fixed):
    """`fixed`, and then `damage(data, iova, size)` inside the io-pgtable op."""

    name = "broken"

    def damage(self, data, iova, size):
        raise NotImplementedError

    def io_pgtable_iotlb_sync_map(self, data):
        inner = super().io_pgtable_iotlb_sync_map(data)

        def broken_sync_map(ops, iova, size):
            ret = inner(ops, iova, size)
            self.damage(io_pgtable_ops_to_data(ops), iova, size)
            return ret
        return broken_sync_map


#: A physical address no table lives at (tables start at 0x4_0000_0000 and grow upward by a
#: few pages in these scenarios).
GARBAGE_PA = 0x7F_FF00_0000


class GarbageTablePointer(AfterSync):
    """Writes a table descriptor pointing at GARBAGE_PA into the PGD entry of `iova` and
    cleans it, so the SMMU really reads it."""

    name = "broken-garbage-pointer"

    def damage(self, data, iova, size):
        p = pgd(data) + ARM_LPAE_LVL_IDX(iova, data.start_level, data)
        p[0] = GARBAGE_PA | ARM_LPAE_PTE_TYPE_TABLE
        arm_lpae_sync_pte(p, 1, data)


class FlipLeafBit(AfterSync):
    """Sets `bit` in the leaf of `iova` and cleans it (CPU and memory agree afterwards)."""

    name = "broken-flip"

    def __init__(self, bit: int):
        self.bit = bit

    def damage(self, data, iova, size):
        p = leaf_ptep(data, iova)
        p[0] = p[0] | (1 << self.bit)
        arm_lpae_sync_pte(p, 1, data)


class DriverSaysEinval(Fixed):
    """The driver's iotlb_sync_map runs the real op and then returns -EINVAL anyway."""

    name = "broken-einval"

    def driver_iotlb_sync_map(self, pgtbl_ops):
        inner = super().driver_iotlb_sync_map(pgtbl_ops)

        def arm_smmu_iotlb_sync_map(domain, iova, size):
            inner(domain, iova, size)
            return -EINVAL
        return arm_smmu_iotlb_sync_map


class Raises(Fixed):
    """An io-pgtable op with a bug of its own: ZeroDivisionError."""

    name = "broken-raises"

    def io_pgtable_iotlb_sync_map(self, data):
        def exploding_sync_map(ops, iova, size):
            return 1 // 0
        return exploding_sync_map


class RaisesAtSetup(Fixed):
    name = "broken-setup"

    def io_pgtable_iotlb_sync_map(self, data):
        raise ZeroDivisionError("plugin constructor bug")


class CleansTwice(AfterSync):
    """`fixed`, then cleans the leaf line of `iova` once more inside the same op."""

    name = "broken-twice"

    def damage(self, data, iova, size):
        arm_lpae_sync_pte(leaf_ptep(data, iova), 1, data)


# --- stale-read ---------------------------------------------------------------------------------

# S2, 4K, ias = oas = 40: concatenated PGD at level 1, 2 pages = 1024 entries of 1G each,
# pgd_bits = 10.  `map 511G 511G 2G` writes L1 entries 511 and 512 (two 1G blocks; the core
# maps them in two map_pages calls because max_entries(511) = 1).
# v1 at the start level (lvl 1): shift = LVL_SHIFT(0) + PGD_IDX(0) = 39 + 0 = 39,
#   iova_offset = 511G, sync_idx_start = 511, sync_idx_end = (511G + 2G + 1G - 4K) >> 30 = 513,
#   max_entries(511) = 512 - 511 = 1  ->  num_entries = min(2, 1) = 1.
# Only entry 511 is cleaned: entry 512 (IPA 512G) stays stale in memory.
S2_CONCAT = "config fmt=arm64-s2 granule=4K ias=40 oas=40\n"


def test_stale_read_v1_concatenated_pgd():
    res = run(S2_CONCAT + "map 511G 511G 2G\nsmmu 512G\nsmmu 511G\n", "v1")
    stale = of_kind(res, K.STALE_READ)
    # once right after the map (range check) and once when the SMMU really walks 512G
    assert [(f.op_index, f.level) for f in stale] == [(0, "L1"), (1, "L1")]
    assert stale[0].detail["iova"] == 512 << 30
    assert stale[0].signature == "stale-read|v1|-|-|concat"
    # entry 511 itself was cleaned: the walk of 511G is fine
    assert res.records[2].var.ret.ok
    assert not res.records[1].var.ret.ok


@pytest.mark.parametrize("variant", ["fixed", "reference"])
def test_stale_read_quiet_same_map(variant):
    res = run(S2_CONCAT + "map 511G 511G 2G\nsmmu 512G\nsmmu 511G\n", variant)
    assert res.findings == []


def test_stale_read_quiet_v1_within_one_pgd_page():
    # map 511G 511G 1G: num_entries = min(512 - 511, 1) = 1 covers the whole range
    res = run(S2_CONCAT + "map 511G 511G 1G\nsmmu 511G\n", "v1")
    assert K.STALE_READ not in kinds(res)


def test_stale_read_only_judges_synced_ranges():
    # map_nosync leaves the leaf dirty under v1, but nobody synced it: not a finding
    res = run("map_nosync 0x40000000 0x80000000 4K\nsmmu 0x40000000\n", "v1")
    assert not res.records[1].var.ret.ok          # the SMMU does read a stale (empty) entry
    assert K.STALE_READ not in kinds(res)


# --- bad-walk -----------------------------------------------------------------------------------

def test_bad_walk_garbage_table_pointer():
    # 4K ias 48: the PGD entry of 0x40000000 is L0[0]; it now points at GARBAGE_PA, so the
    # SMMU's walk fails when it looks for the L1 table there.
    res = run("map 0x40000000 0x80000000 4K\nsmmu 0x40000000\n", GarbageTablePointer())
    bad = of_kind(res, K.BAD_WALK)
    assert {f.op_index for f in bad} == {0, 1}
    at_smmu = [f for f in bad if f.op_index == 1]
    assert at_smmu[0].where == "not-a-table" and at_smmu[0].level == "L1"
    assert at_smmu[0].signature.startswith("bad-walk|broken-garbage-pointer|not-a-table|top+1|")


def test_bad_walk_quiet_with_correct_variant():
    res = run("map 0x40000000 0x80000000 4K\nsmmu 0x40000000\n", "fixed")
    assert res.findings == []


# --- oob-access ---------------------------------------------------------------------------------

# 4K, S1, ias 36, TTBR1: start level 1, pgd_bits = 6 -> a 64-entry PGD (512 bytes).
# The map at 0xfffffff000000000 is legal (map_pages inverts iaext for TTBR1).
# v1 at lvl 1: shift = LVL_SHIFT(0) + PGD_IDX(0) = 39 + 0 = 39 (PGD_IDX(0) is 0: level 0 is
#   not the start level), so iova_offset keeps IOVA bits 36..38, which are ones under TTBR1:
#   iova_offset = 0x70_0000_0000 = 448G,
#   sync_idx_start = LVL_IDX(iova, 1) = (iova >> 30) & 63 = 0,
#   sync_idx_end = (448G + 4K + 1G - 4K) >> 30 = 449,
#   num_entries = min(449 - 0, max_entries(0) = 512) = 449  -> reads entries [0, 449) of 64.
# Entry 0 is a table (recursed into); entries [1, 449) are read, then cleaned in one call:
#   8 * 448 bytes from byte 8 -> lines 0 .. ceil(3592 / 64) - 1 = 56 -> 57 lines.
TTBR1_36 = "config fmt=arm64-s1 granule=4K ias=36 oas=36 quirks=ttbr1\n"


def test_oob_access_v1_small_pgd_ttbr1():
    res = run(TTBR1_36 + "map 0xfffffff000000000 0x80000000 4K\n", "v1")
    oob = {f.where for f in of_kind(res, K.OOB_ACCESS)}
    assert oob == {"oob-read:__arm_lpae_iotlb_sync_map", "oob-clean:__arm_lpae_sync_pte"}
    read = next(e for e in res.records[0].var.events if e.kind == "oob-read")
    assert "entries [1, 449) of 64" in read.detail
    # the L3 leaf (1 line) + the trailing run of the PGD (57 lines)
    assert res.records[0].var.cleans["sync_map"] == [2, 1 + 57]


def test_oob_access_quiet_fixed_and_exact_pgd():
    assert run(TTBR1_36 + "map 0xfffffff000000000 0x80000000 4K\n", "fixed").findings == []
    # ias 39: pgd_bits = 9 = bits_per_level, PGD_IDX = 0; iova_offset = iova & (2^39 - 1)
    # loses every bit above the IAS, so sync_idx_end = (0 + 4K + 1G - 4K) >> 30 = 1: in bounds
    res = run("config ias=39 oas=39 quirks=ttbr1\nmap 0xffffff8000000000 0x80000000 4K\n", "v1")
    assert K.OOB_ACCESS not in kinds(res)


# --- foreign-walk -------------------------------------------------------------------------------

# 4K, S1, ias 40: start level 0, pgd_bits = 1 (2-entry PGD), PGD_IDX(0) = 1 - 9 = -8.
# `map 5G 0x80000000 4K`; v1 at lvl 1: shift = LVL_SHIFT(0) + PGD_IDX(0) = 39 - 8 = 31, so
#   iova_offset = 5G & (2G - 1) = 1G (bit 32 of 5G is lost),
#   sync_idx_start = LVL_IDX(5G, 1) = 5,
#   sync_idx_end = (1G + 4K + 1G - 4K) >> 30 = 2,
#   2 - 5 wraps to 2^64 - 3 as unsigned long; min_t(ulong, 2^64 - 3, max_entries(5) = 507)
#   = 507 -> the walk reads L1 entries 5 .. 511, i.e. 5G .. 512G.
# Entry 5 is the table on the path (recursion: 1 leaf clean); entries 6..511 are empty
# (506 WARN_ON(!pte)) and cleaned as one trailing run: bytes [48, 4096) -> lines 0..63.
SMALL_40 = "config fmt=arm64-s1 granule=4K ias=40 oas=40\n"


def test_foreign_walk_v1_small_pgd():
    res = run(SMALL_40 + "map 5G 0x80000000 4K\n", "v1")
    fw = of_kind(res, K.FOREIGN_WALK)
    assert len(fw) == 1
    assert fw[0].where == "sync_map" and fw[0].level == "L1"
    assert fw[0].signature == "foreign-walk|v1|sync_map|top+1|-"  # L1 under an L0 PGD
    # entry 5 = [5G, 6G) holds the page; the first entry read outside the range is entry 6
    assert "[0x180000000, 0x1bfffffff]" in fw[0].message
    rec = res.records[0].var
    assert rec.cleans["sync_map"] == [2, 1 + 64]
    empties = [e for e in rec.events if e.site == "__arm_lpae_iotlb_sync_map:empty"]
    assert sum(e.count for e in empties) == 506


def test_foreign_walk_inside_one_cache_line():
    # The same arithmetic at L1 index 505 (505G = 0x7e40000000): iova_offset = 505G & (2G - 1)
    # = 1G, sync_idx_end = (1G + 4K + 1G - 4K) >> 30 = 2, 2 - 505 wraps, min_t(ulong, ...,
    # max_entries(505) = 7) = 7: the walk reads entries 505..511, all in line 63 (entries
    # 504..511).  Judged per entry (design §5), entry 506 = [506G, 507G) is foreign; judged per
    # line it was only the 6 WARNs.
    res = run(SMALL_40 + "map 0x7e40000000 0x80000000 4K\n", "v1")
    fw = of_kind(res, K.FOREIGN_WALK)
    assert [f.signature for f in fw] == ["foreign-walk|v1|sync_map|top+1|-"]
    assert "[0x7e80000000, 0x7ebfffffff]" in fw[0].message
    # the WARNs of the same walk come after it: its secondary, not a bucket of their own
    assert group_findings(res.findings)[0].primary is fw[0]


def test_foreign_walk_named_by_the_level_it_left_the_range():
    # Mali, 4K, ias 32: a one-entry PGD at L0 (PGD_IDX(0) = 0 - 9), so at L1 shift = 39 - 9 =
    # 30 and iova_offset keeps no index bit.  For 2G (L1 index 2): end = (0 + 4K + 1G - 4K)
    # >> 30 = 1, 1 - 2 wraps, the walk reads L1 entries 2..511.  Entry 3 = [3G, 4G) is a table
    # (the first map), so the walk also descends into it with a size gone wrong and reads L2
    # entries of [3G, 4G).  The walk left the range at L1 (top+1); the L2 reads follow from it.
    res = run("config fmt=mali granule=4K ias=32 oas=32\n"
              "map 0xc0000000 0x40000000 4K\nmap 0x80000000 0x80000000 4K\n", "v1")
    fw = [f for f in of_kind(res, K.FOREIGN_WALK) if f.op_index == 1]
    assert [(f.level, f.signature) for f in fw] == [("L1", "foreign-walk|v1|sync_map|top+1|-")]
    assert "[0xc0000000, 0xffffffff]" in fw[0].message
    assert res.records[1].var.sync_calls and any(
        a.table.lvl == 2 for a in res.records[1].var.sync_calls[0].accesses)


def test_foreign_walk_quiet():
    # the same map under fixed, and under v1 with ias 48 (PGD_IDX = 0: shift 39 keeps 5G whole)
    assert run(SMALL_40 + "map 5G 0x80000000 4K\n", "fixed").findings == []
    assert K.FOREIGN_WALK not in kinds(run("map 5G 0x80000000 4K\n", "v1"))


# --- warn ---------------------------------------------------------------------------------------

# TTBR1, 4K, ias 48: 0xffff800000000000 >> 48 (arithmetic) = -1; map_pages inverts it to 0,
# v1's arm_lpae_iotlb_sync_map does not: WARN_ON(iaext) fires on a legal map.
TTBR1_48 = "config quirks=ttbr1\n"


def test_warn_v1_ttbr1_iaext():
    res = run(TTBR1_48 + "map 0xffff800000000000 0x80000000 4K\n", "v1")
    warns = of_kind(res, K.WARN)
    assert [f.where for f in warns] == ["arm_lpae_iotlb_sync_map:iaext"]
    assert warns[0].signature == \
        "warn|v1|arm_lpae_iotlb_sync_map:iaext|-|-"
    assert res.records[0].var.ret == 0


def test_warn_quiet_ttbr1_fixed_and_lower_half_v1():
    assert run(TTBR1_48 + "map 0xffff800000000000 0x80000000 4K\n", "fixed").findings == []
    assert run(TTBR1_48 + "map 0xffff800000000000 0x80000000 4K\n", "reference").findings == []
    # the same low 48 bits without TTBR1: 0x800000000000 >> 48 = 0, no WARN
    assert K.WARN not in kinds(run("map 0x800000000000 0x80000000 4K\n", "v1"))


def test_warn_v1_map_sg_all_p2p():
    # iommu_map_sg: the only segment is a bus address -> mapped = 0 -> iommu_sync_map(iova, 0)
    # -> v1: WARN_ON(!size).  (At L0, sync_idx_end = (1G + 0 + 512G - 4K) >> 39 = 1, so v1
    # also reads the empty PGD entry 0 and warns there.)
    res = run("map_sg 0x40000000 p2p:0x80000000+4K\n", "v1")
    where = {f.where for f in of_kind(res, K.WARN)}
    assert "arm_lpae_iotlb_sync_map:size" in where
    assert res.records[0].var.ret == 0 == res.records[0].ref.ret


def test_warn_quiet_map_sg_all_p2p_fixed():
    assert run("map_sg 0x40000000 p2p:0x80000000+4K\n", "fixed").findings == []


def test_warn_illegal_direct_call_not_judged():
    # pt.sync_map with size 0 is not a legal call: v1 WARNs, the oracle stays quiet
    res = run("map 0x40000000 0x80000000 4K\npt.sync_map 0x40000000 0\n", "v1")
    assert any(e.site == "arm_lpae_iotlb_sync_map:size" for e in res.records[1].var.events)
    assert K.WARN not in kinds(res)
    # ... while the same op on a fully mapped TTBR1 range is legal, and judged
    res = run(TTBR1_48 + "map_nosync 0xffff800000000000 0x80000000 4K\n"
              "pt.sync_map 0xffff800000000000 4K\n", "v1")
    assert [(f.where, f.op_index) for f in of_kind(res, K.WARN)] == \
        [("arm_lpae_iotlb_sync_map:iaext", 1)]


# --- lost-error ---------------------------------------------------------------------------------

def test_lost_error_v1_driver():
    # The failpoint fires at the first hit, the start of the L0 walk: the op returns -EIO,
    # PATCH 2/2's driver returns 0, iommu_map returns 0 -> lost in the driver.
    res = run("fail sync_map\nmap 0x40000000 0x80000000 4K\n", "v1")
    lost = of_kind(res, K.LOST_ERROR)
    assert [(f.where, f.op_index) for f in lost] == [("driver", 1)]
    assert res.records[1].var.ret == 0
    assert res.records[1].var.sync_calls[0].ret == EIO


@pytest.mark.parametrize("variant", ["v1-review", "fixed"])
def test_lost_error_quiet_when_propagated(variant):
    res = run("fail sync_map\nmap 0x40000000 0x80000000 4K\nsmmu 0x40000000\n", variant)
    assert res.records[1].var.ret == EIO
    assert res.findings == []


# Two L3 tables under one L2 table: map_nosync 0 0x80001000 4M (paddr skewed by 4K: 1024 4K
# pages, L2 entries 0 and 1).  v1's `sync 0 4M` enters levels in this order (one failpoint hit
# per level entered): L0 (1), L1 (2), L2 (3), L3 of entry 0 (4), L3 of entry 1 (5).
TWO_TABLES = "map_nosync 0 0x80001000 4M\nfail sync_map nth={nth}\nsync 0 4M\n"


def test_lost_error_v1_walker():
    # nth = 4 fails the first descent; v1 overwrites ret with the second descent's 0 -> the
    # walker itself returns 0: lost in the walker.
    res = run(TWO_TABLES.format(nth=4), "v1")
    assert [f.where for f in of_kind(res, K.LOST_ERROR)] == ["walker"]
    assert res.records[2].var.sync_calls[0].ret == 0


def test_lost_error_v1_last_descent_is_driver():
    # nth = 5 fails the last descent: the walker returns -EIO, only the driver loses it
    res = run(TWO_TABLES.format(nth=5), "v1")
    assert [f.where for f in of_kind(res, K.LOST_ERROR)] == ["driver"]
    assert res.records[2].var.sync_calls[0].ret == EIO


# --- continued-after-error ----------------------------------------------------------------------

def test_continued_after_error_v1():
    res = run(TWO_TABLES.format(nth=4), "v1")
    cont = of_kind(res, K.CONTINUED_AFTER_ERROR)
    assert [(f.where, f.op_index) for f in cont] == [("walker", 2)]
    call = res.records[2].var.sync_calls[0]
    assert call.hits == [1, 2, 3, 4, 5] and [f.hit for f in call.fired] == [4]


@pytest.mark.parametrize("variant", ["v1-review", "fixed"])
def test_continued_after_error_quiet_when_walk_breaks(variant):
    res = run(TWO_TABLES.format(nth=4), variant)
    assert res.records[2].var.sync_calls[0].hits == [1, 2, 3, 4]
    assert res.records[2].var.ret == EIO
    assert res.findings == []


def test_continued_after_error_quiet_v1_last_descent():
    # v1 itself is quiet when nothing follows the failing level
    assert K.CONTINUED_AFTER_ERROR not in kinds(run(TWO_TABLES.format(nth=5), "v1"))


# --- return-mismatch ----------------------------------------------------------------------------

def test_return_mismatch_driver_returns_einval():
    res = run("map_nosync 0x40000000 0x80000000 4K\nsync 0x40000000 4K\n", DriverSaysEinval())
    rm = of_kind(res, K.RETURN_MISMATCH)
    assert [(f.where, f.op_index) for f in rm] == [("sync", 1)]
    assert res.records[1].var.ret == -EINVAL and res.records[1].ref.ret == 0


def test_return_mismatch_quiet():
    # a sync over a hole is not a legal call: its return is not compared
    res = run("map_nosync 0x40000000 0x80000000 4K\nsync 0x40000000 8K\n", DriverSaysEinval())
    assert K.RETURN_MISMATCH not in kinds(res)
    # an injected failure's return belongs to lost-error, not to return-mismatch
    res = run("map_nosync 0x40000000 0x80000000 4K\nfail sync_map\nsync 0x40000000 4K\n",
              "v1-review")
    assert res.records[2].var.ret == EIO and res.records[2].ref.ret == 0
    assert res.findings == []


# --- state-mismatch -----------------------------------------------------------------------------

def test_state_mismatch_sync_changes_hardware_bit():
    # bit 7 = AP_RDONLY for S1: the variant's sync makes the leaf read-only
    res = run("map 0x40000000 0x80000000 4K\n", FlipLeafBit(7))
    sm = of_kind(res, K.STATE_MISMATCH)
    assert [(f.where, f.op_index) for f in sm] == [("map", 0)]
    assert K.STALE_READ not in kinds(res)        # it cleaned: memory agrees with the CPU


def test_state_mismatch_quiet_software_bit():
    # bit 56 is a software bit (55..58): ignored by hardware and by the comparison
    res = run("map 0x40000000 0x80000000 4K\n", FlipLeafBit(56))
    assert K.STATE_MISMATCH not in kinds(res)


# --- model-error --------------------------------------------------------------------------------

def test_model_error_reported_not_swallowed():
    text = "map_nosync 0x40000000 0x80000000 4K\nsync 0x40000000 4K\nsmmu 0x40000000\n"
    res = run(text, Raises())           # must not raise
    me = of_kind(res, K.MODEL_ERROR)
    assert [(f.where, f.op_index) for f in me] == \
        [("variant:exploding_sync_map:ZeroDivisionError", 1)]
    assert "ZeroDivisionError" in me[0].detail["traceback"]
    assert res.records[1].var.error is not None
    assert len(res.records) == 2        # the run stops at the op that raised


def test_model_error_at_setup():
    res = run("map 0x40000000 0x80000000 4K\n", RaisesAtSetup())
    assert [(f.kind, f.where, f.op_index) for f in res.findings] == \
        [(K.MODEL_ERROR, "setup", -1)]
    assert res.records == []


def test_model_error_quiet():
    text = "map_nosync 0x40000000 0x80000000 4K\nsync 0x40000000 4K\nsmmu 0x40000000\n"
    res = run(text, "fixed")
    assert res.findings == [] and len(res.records) == 3


def test_model_error_where_independent_of_call_depth():
    res = run("map 0x40000000 0x80000000 4K\n", Raises())
    assert [f.where for f in of_kind(res, K.MODEL_ERROR)] == \
        ["variant:exploding_sync_map:ZeroDivisionError"]


# --- cmo-regression and redundant-clean ---------------------------------------------------------

# map 0 0x80000000 4K: both worlds allocate L1, L2, L3 (3 x 64 lines) and install 3 tables;
# the reference cleans the leaf (1 line), v1's sync cleans it (L3: sync_idx_end = (0 + 4K + 4K
# - 4K) >> 12 = 1 entry = 1 line): equal so far.  `sync 0 4K` again: the reference has no op
# and cleans nothing; v1 walks again and cleans the same line -> 1 line more than the
# reference, and a line with no store since the last sync clean.
RESYNC = "map 0 0x80000000 4K\nsync 0 4K\n"


def test_cmo_regression_and_redundant_clean_v1_resync():
    res = run(RESYNC, "v1")
    cmo = of_kind(res, K.CMO_REGRESSION)
    assert [(f.where, f.op_index) for f in cmo] == [("total", 1)]
    # PGD 64 + 3 x 64 alloc + 3 install + 1 leaf (ref) / 1 sync (v1), then + 1 (v1)
    assert (cmo[0].detail["reference"], cmo[0].detail["variant"]) == (260, 261)
    red = of_kind(res, K.REDUNDANT_CLEAN)
    # efficiency signatures carry no level (fewer buckets); the message names it
    assert [(f.where, f.level, f.op_index) for f in red] == [("unchanged", "-", 1)]
    assert "(L3)" in red[0].message


def test_cmo_regression_and_redundant_clean_quiet_fixed():
    res = run(RESYNC, "fixed")
    assert res.records[1].var.cleans == {}
    assert res.findings == []


def test_cmo_regression_quiet_v1_scatter_gather():
    # 16 discontiguous 4K segments: reference 16 leaf lines, v1 one clean of 16 entries = 2
    segs = " ".join(f"{0x80000000 + 2 * i * 0x1000:#x}+4K" for i in range(16))
    res = run(f"map_sg 0x40000000 {segs}\n", "v1")
    assert K.CMO_REGRESSION not in kinds(res)
    assert K.REDUNDANT_CLEAN not in kinds(res)


# L2 holding [block, table, block] (4K ias 48): map_nosync a 2M block at 0, 512 skewed 4K pages
# at 2M (a full L3 table), a 2M block at 4M; then `sync 0 6M`.  v1 at L2: sync_idx_end =
# (0 + 6M + 2M - 4K) >> 21 = 3 -> i = 0 block; i = 1 table: clean run [0, 1) (line 0) and
# recurse; the trailing run [2, 3) is line 0 again -> the same line cleaned twice in one sync.
BLOCK_TABLE_BLOCK = ("map_nosync 0 0x80000000 2M\nmap_nosync 2M 0x90001000 2M\n"
                     "map_nosync 4M 0x80400000 2M\nsync 0 6M\n")


def test_redundant_clean_twice_v1():
    res = run(BLOCK_TABLE_BLOCK, "v1")
    red = of_kind(res, K.REDUNDANT_CLEAN)
    assert [(f.where, f.level, f.op_index) for f in red] == [("twice", "-", 3)]
    assert "(L2)" in red[0].message


def test_redundant_clean_twice_quiet_fixed():
    assert run(BLOCK_TABLE_BLOCK, "fixed").findings == []


def test_redundant_clean_twice_broken_variant():
    res = run("map 0x40000000 0x80000000 4K\n", CleansTwice())
    red = of_kind(res, K.REDUNDANT_CLEAN)
    assert [(f.where, f.level) for f in red] == [("twice", "-")]
    assert "(L3)" in red[0].message
