"""Per-variant scenarios (reference, v1, v1-review, fixed) with hand-derived returns and cleans.

Unless a config line says otherwise: arm64-s1, 4K granule, ias = oas = 48, 64-byte lines.
Geometry: 4 levels (L0..L3), 512 entries per table (a 4K table = 64 lines of 8 entries), the
PGD is 512 entries.  The PGD is allocated (and its 64 lines cleaned) when the World is built,
so per-op figures are deltas: `records[i].var.cleans` = {site: [calls, lines]} of that op.

Clean sites (kernel-semantics §3.11): alloc = a new table (C1, 64 lines for a 4K table),
install = its table PTE (C2, 1 line), leaf = __arm_lpae_init_pte (C4; skipped when
defer_sync_pte), sync_map = the variant's iotlb_sync_map walker (C7), unmap = C5/C6.

v1's walker (kernel-semantics §5.1), per level:
    shift          = LVL_SHIFT(lvl - 1) + PGD_IDX(lvl - 1)      LVL_SHIFT(l) = (4 - l) * 9 + 3
    iova_offset    = iova & ((1 << shift) - 1)
    sync_idx_start = LVL_IDX(iova, lvl)
    sync_idx_end   = (iova_offset + size + BLOCK(lvl) - 4K) >> LVL_SHIFT(lvl)
    num_entries    = min(sync_idx_end - sync_idx_start, 512 - (sync_idx_start & 511))
at L0..L2 table entries are recursed into (with the whole remaining size) and not cleaned,
runs of other entries are cleaned one call per run; at L3 all num_entries in one call.
fixed cleans only leaves lacking SW_SYNC, one call per run of consecutive lines, then marks them.
"""

from __future__ import annotations

import pytest

from fuzz.lang.ops import parse_scenario
from fuzz.run.executor import run_scenario
from model.variants import get_variant

HEADER = "# iopgfuzz ops v1\n"
VARIANTS = ("reference", "v1", "v1-review", "fixed")
DEFERRED = ("v1", "v1-review", "fixed")
EIO = -5
K4 = 1 << 12
IOVA, PADDR = 0x4000_0000, 0x8000_0000


def run(text: str, variant: str):
    return run_scenario(parse_scenario(HEADER + text), get_variant(variant))


def cleans(res, i):
    return res.records[i].var.cleans


# --- map 12K: three pages in one L3 line --------------------------------------------------------

# iommu_pgsize(1G, 2G, 12K): 4K pages (2M does not fit), count 3 -> one map_pages call.
# New tables: L1 (L0[0]), L2 (L1[1]), L3 (L2[0]) -> alloc 3 calls x 64 lines, install 3 x 1.
# Leaves L3[0..3) = 24 bytes = 1 line.
# v1: L0: end = (1G + 12K + 512G - 4K) >> 39 = 1 -> L0[0] table -> L1: shift 39,
#   start 1, end = (1G + 12K + 1G - 4K) >> 30 = 2 -> L1[1] table -> L2: offset = 1G & (1G-1)
#   = 0, end = (12K + 2M - 4K) >> 21 = 1 -> L2[0] table -> L3: end = (12K + 4K - 4K) >> 12 = 3
#   -> one clean of 3 entries = 1 line.  No table PTE is cleaned by the walk.
MAP_12K = {
    "reference": {"alloc": [3, 192], "install": [3, 3], "leaf": [1, 1]},
    "v1": {"alloc": [3, 192], "install": [3, 3], "sync_map": [1, 1]},
    "v1-review": {"alloc": [3, 192], "install": [3, 3], "sync_map": [1, 1]},
    "fixed": {"alloc": [3, 192], "install": [3, 3], "sync_map": [1, 1]},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_map_12k(variant):
    res = run(f"map {IOVA:#x} {PADDR:#x} 12K\n", variant)
    assert res.records[0].var.ret == 0
    assert cleans(res, 0) == MAP_12K[variant]
    # PGD (64) + 192 + 3 + 1
    assert res.var.stats()["lines_cleaned"] == 260
    oa, ok = res.var.translate_range(IOVA, 3, K4)          # what the SMMU reads from memory
    assert ok.all()
    assert [int(x) for x in oa] == [PADDR, PADDR + K4, PADDR + 2 * K4]
    assert res.findings == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_unmap_is_unchanged(variant):
    # iommu_unmap(1G, 12K): (4K, count 3) -> L3 clears entries 0..2 and cleans them in one
    # call (24 bytes, 1 line); returns 12K.  The patch does not touch unmap.
    res = run(f"map {IOVA:#x} {PADDR:#x} 12K\nunmap {IOVA:#x} 12K\n", variant)
    assert res.records[1].var.ret == 3 * K4
    assert cleans(res, 1) == {"unmap": [1, 1]}
    assert not res.var.smmu_walk(IOVA).ok


# --- a scatter-gather list of 16 discontiguous pages ---------------------------------------------

# Segments at PADDR + 2k * 4K (k = 0..15): every segment is its own physical run, so the
# reference maps 16 times (16 leaf calls of 1 entry = 16 lines); the first map allocates
# L1, L2, L3.  IOVAs are consecutive: L3[0..16).  map_sg returns 16 * 4K.
# Deferred: one sync(1G, 64K): L3 end = (64K + 4K - 4K) >> 12 = 16 -> one clean of 16
# entries = 128 bytes = 2 lines (fixed: lines 0 and 1 are consecutive -> one call).
SG16 = " ".join(f"{PADDR + 2 * k * K4:#x}+4K" for k in range(16))


@pytest.mark.parametrize("variant", VARIANTS)
def test_map_sg_16_discontiguous(variant):
    res = run(f"map_sg {IOVA:#x} {SG16}\n", variant)
    assert res.records[0].var.ret == 16 * K4
    expect = {"alloc": [3, 192], "install": [3, 3]}
    expect.update({"leaf": [16, 16]} if variant == "reference" else {"sync_map": [1, 2]})
    assert cleans(res, 0) == expect
    oa, ok = res.var.translate_range(IOVA, 16, K4)
    assert ok.all()
    assert [int(x) for x in oa] == [PADDR + 2 * k * K4 for k in range(16)]
    assert res.findings == []


# --- a 2M block -------------------------------------------------------------------------------

# iommu_pgsize(1G, 2G, 2M) -> (2M, 1).  New tables L1, L2 (2 x 64 lines, 2 installs); the
# block is L2[0]: reference leaf 1 call 1 line.
# v1: L2: end = (0 + 2M + 2M - 4K) >> 21 = 1 -> L2[0] is a block (not a table) -> no
# recursion; trailing run [0, 1) -> 1 call, 1 line.  fixed: one unsynced leaf -> 1 call 1 line.
@pytest.mark.parametrize("variant", VARIANTS)
def test_map_2m_block(variant):
    res = run(f"map {IOVA:#x} {PADDR:#x} 2M\n", variant)
    assert res.records[0].var.ret == 0
    expect = {"alloc": [2, 128], "install": [2, 2]}
    expect.update({"leaf": [1, 1]} if variant == "reference" else {"sync_map": [1, 1]})
    assert cleans(res, 0) == expect
    walk = res.var.smmu_walk(IOVA + 0x1234)
    assert walk.ok and walk.level == 2 and walk.oa == PADDR + 0x1234


# --- L2 = [block, table, block], one sync ------------------------------------------------------

# op0 map_nosync 0 2G 2M: (2M, 1) -> new L1, L2; block L2[0].
# op1 map_nosync 2M 0x90001000 2M: (iova ^ paddr) & (2M - 1) = 0x1000 -> 512 4K pages; new L3
#     under L2[1]; leaves L3[0..512) = 64 lines in one call.
# op2 map_nosync 4M 0x80400000 2M: block L2[2].
# op3 sync 0 6M:
#   reference: no op -> nothing.
#   v1: L2 end = (6M + 2M - 4K) >> 21 = 3.  i=0 block; i=1 table: clean run [0,1) (1 line),
#       recurse with (iova, size) = (2M, 4M): L3 end = (0 + 4M + 4K - 4K) >> 12 = 1024,
#       min(1024, 512) = 512 -> 64 lines; i=2 block -> trailing run [2,3) (line 0 again).
#       3 calls, 1 + 64 + 1 = 66 lines.
#   fixed: L2 unsynced leaves 0 and 2 share line 0 -> 1 call ([0, 3), 1 line); L3: 512
#       leaves, 64 consecutive lines -> 1 call.  2 calls, 65 lines.
BTB = ("map_nosync 0 0x80000000 2M\nmap_nosync 2M 0x90001000 2M\n"
       "map_nosync 4M 0x80400000 2M\nsync 0 6M\n")
BTB_MAPS = {
    "reference": [{"alloc": [2, 128], "install": [2, 2], "leaf": [1, 1]},
                  {"alloc": [1, 64], "install": [1, 1], "leaf": [1, 64]},
                  {"leaf": [1, 1]}],
    "deferred": [{"alloc": [2, 128], "install": [2, 2]},
                 {"alloc": [1, 64], "install": [1, 1]},
                 {}],
}
BTB_SYNC = {"reference": {}, "v1": {"sync_map": [3, 66]}, "v1-review": {"sync_map": [3, 66]},
            "fixed": {"sync_map": [2, 65]}}


@pytest.mark.parametrize("variant", VARIANTS)
def test_block_table_block_sync(variant):
    res = run(BTB, variant)
    maps = BTB_MAPS["reference" if variant == "reference" else "deferred"]
    assert [cleans(res, i) for i in range(3)] == maps
    assert res.records[3].var.ret == 0
    assert cleans(res, 3) == BTB_SYNC[variant]
    assert res.var.first_divergence(0, 6 << 20) is None


# --- two L3 tables, and a failure in the first ---------------------------------------------------

# map_nosync 0 0x80001000 4M: skewed -> 1024 4K pages: two map_pages calls of 512 (max_entries
# stops at the table end); L3a under L2[0], L3b under L2[1].  Reference leaf 2 calls x 64 lines.
# sync 0 4M, deferred variants: L2 end = (4M + 2M - 4K) >> 21 = 2 -> both tables; v1 passes
# (0, 4M) to L3a: min((4M + 4K - 4K) >> 12, 512) = 512 entries = 64 lines, then (2M, 2M) to
# L3b: 512 entries.  fixed: 512 unsynced leaves per table.  Both: 2 calls, 128 lines.
TWO = "map_nosync 0 0x80001000 4M\n"


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_leaf_tables(variant):
    res = run(TWO + "sync 0 4M\n", variant)
    leaf = {"leaf": [2, 128]} if variant == "reference" else {}
    assert cleans(res, 0) == {"alloc": [4, 256], "install": [4, 4], **leaf}
    assert cleans(res, 1) == ({} if variant == "reference" else {"sync_map": [2, 128]})
    assert res.var.first_divergence(0, 4 << 20) is None


# Failpoint hits, one per level entered: L0 = 1, L1 = 2, L2 = 3, L3a = 4, L3b = 5.  nth=4
# fails L3a (the op gets -EIO there before cleaning anything).
#   v1: keeps looping, L3b is synced (1 call, 64 lines) and its 0 overwrites ret -> the op
#       returns 0; the driver returns 0.
#   v1-review: `break` at L2 i = 0 with synced_entries = 0 != num_entries = 2, so the trailing
#       clean covers L2[0..2) (the two table PTEs, 1 line); likewise L1[1..) -> L1[0] and L0[0]:
#       3 calls, 3 lines, none of them a leaf.  Returns -EIO through the driver.
#   fixed: no leaf at L0..L2 and L3a fails first -> no clean; returns -EIO.
TWO_FAIL = {"reference": (0, {}, None), "v1": (0, {"sync_map": [1, 64]}, 0),
            "v1-review": (EIO, {"sync_map": [3, 3]}, EIO), "fixed": (EIO, {}, EIO)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_failure_in_first_of_two_descents(variant):
    res = run(TWO + "fail sync_map nth=4\nsync 0 4M\n", variant)
    ret, expect_cleans, op_ret = TWO_FAIL[variant]
    assert res.records[2].var.ret == ret
    assert cleans(res, 2) == expect_cleans
    calls = res.records[2].var.sync_calls
    assert (calls[0].ret if calls else None) == op_ret


# --- returns when the sync fails -----------------------------------------------------------------

# `fail sync_map` then `sync`: the failpoint is the first hit, at the start of the L0 walk.
# reference: no op at all -> iommu_sync_map returns 0 and nothing fires.
# v1: the op returns -EIO, PATCH 2/2's driver returns 0.  v1-review / fixed: -EIO (= -5).
SYNC_FAIL = {"reference": (0, None), "v1": (0, EIO), "v1-review": (EIO, EIO),
             "fixed": (EIO, EIO)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_sync_failure_return(variant):
    res = run(f"map_nosync {IOVA:#x} {PADDR:#x} 4K\nfail sync_map\nsync {IOVA:#x} 4K\n"
              f"fail sync_map\npt.sync_map {IOVA:#x} 4K\n", variant)
    ret, op_ret = SYNC_FAIL[variant]
    assert res.records[2].var.ret == ret
    fired = [f.err for f in res.records[2].var.fired]
    assert fired == ([] if variant == "reference" else [EIO])
    # the io-pgtable op itself: NULL for the reference, -EIO in every deferred variant
    assert res.records[4].var.ret == op_ret


# `fail sync_map` then `map`: iommu_map's sync fails.  v1: map returns 0 and the leaf is left
# dirty (the walk failed at L0 before cleaning): the CPU view translates, memory does not.
# v1-review / fixed: map returns -EIO and iommu_unmap(1G, 4K) removes the page again: L3[0]
# cleared and cleaned (unmap 1 call, 1 line); no sync_map clean.
@pytest.mark.parametrize("variant", VARIANTS)
def test_map_with_failing_sync(variant):
    res = run(f"fail sync_map\nmap {IOVA:#x} {PADDR:#x} 4K\n", variant)
    rec = res.records[1].var
    w = res.var
    if variant in ("reference", "v1"):
        assert rec.ret == 0
        cpu = w.smmu_walk(IOVA, "cpu")
        assert cpu.ok and cpu.oa == PADDR
        assert w.smmu_walk(IOVA, "mem").ok == (variant == "reference")
        leaf = {"leaf": [1, 1]} if variant == "reference" else {}
        assert rec.cleans == {"alloc": [3, 192], "install": [3, 3], **leaf}
    else:
        assert rec.ret == EIO
        assert w.first_hole(IOVA, K4) == IOVA
        assert not w.smmu_walk(IOVA, "cpu").ok and not w.smmu_walk(IOVA, "mem").ok
        assert rec.cleans == {"alloc": [3, 192], "install": [3, 3], "unmap": [1, 1]}


# --- coherent walker ----------------------------------------------------------------------------

# coherent_walk: io-pgtable installs no iotlb_sync_map (v1: `cfg->coherent_walk ? NULL : ..`),
# the driver sees a NULL op and returns 0, and no clean is issued anywhere (not even the PGD's).
# An armed sync_map failpoint is therefore never reached.
@pytest.mark.parametrize("variant", VARIANTS)
def test_coherent_no_op_no_cleans(variant):
    res = run(f"config coherent=1\nfail sync_map\nmap {IOVA:#x} {PADDR:#x} 12K\n"
              f"sync {IOVA:#x} 12K\npt.sync_map {IOVA:#x} 12K\n", variant)
    assert [r.var.ret for r in res.records[1:]] == [0, 0, None]
    assert not res.var.has_pt_sync_map
    assert all(r.var.cleans == {} and r.var.fired == [] for r in res.records)
    assert res.var.stats()["cmo_calls"] == 0 and res.var.stats()["lines_cleaned"] == 0
    assert res.var.smmu_walk(IOVA + 2 * K4).oa == PADDR + 2 * K4
    assert res.findings == []


# --- re-sync: fixed's SW_SYNC marks -------------------------------------------------------------

# map 1G 4K, then sync it twice.  v1 (and v1-review) walk again each time: L3 end =
# (0 + 4K + 4K - 4K) >> 12 = 1 -> 1 call, 1 line per sync.  fixed marked the leaf SW_SYNC when it
# cleaned it during the map: both later syncs find nothing to clean.
RESYNC = {"reference": {}, "v1": {"sync_map": [1, 1]}, "v1-review": {"sync_map": [1, 1]},
          "fixed": {}}


@pytest.mark.parametrize("variant", VARIANTS)
def test_resync_same_range(variant):
    res = run(f"map {IOVA:#x} {PADDR:#x} 4K\nsync {IOVA:#x} 4K\nsync {IOVA:#x} 4K\n", variant)
    assert [r.var.ret for r in res.records] == [0, 0, 0]
    assert cleans(res, 1) == RESYNC[variant]
    assert cleans(res, 2) == RESYNC[variant]


# Two pages in one line, mapped and synced one after the other, then the pair synced.
# v1: second map: L3 start 1, end = (4K + 4K + 4K - 4K) >> 12 = 2 -> 1 entry, 1 line; the pair:
# 2 entries, 1 line.  fixed: second map: only L3[1] lacks SW_SYNC -> 1 call 1 line; the pair:
# both marked -> nothing.
@pytest.mark.parametrize("variant", DEFERRED)
def test_sw_sync_per_leaf(variant):
    res = run(f"map {IOVA:#x} {PADDR:#x} 4K\nmap {IOVA + K4:#x} {PADDR + K4:#x} 4K\n"
              f"sync {IOVA:#x} 8K\n", variant)
    assert cleans(res, 1) == {"sync_map": [1, 1]}
    assert cleans(res, 2) == ({} if variant == "fixed" else {"sync_map": [1, 1]})
    assert res.var.first_divergence(IOVA, 2 * K4) is None


# --- v1's geometry slips, per variant -------------------------------------------------------------

# S2 4K ias 40: concatenated 1024-entry L1 PGD.  map 511G 511G 2G -> two map_pages calls (1G
# blocks at L1[511] and L1[512]); reference leaf 2 calls, 2 lines (lines 63 and 64).
# v1: start 511, end = (511G + 2G + 1G - 4K) >> 30 = 513, max_entries(511) = 1 -> 1 entry: 1
# call, 1 line, L1[512] stays stale.  fixed: the top level spans the whole PGD; leaves 511 and
# 512 in consecutive lines 63, 64 -> 1 call of [511, 513) = 2 lines.
S2_CONCAT = {"reference": ({"leaf": [2, 2]}, True), "v1": ({"sync_map": [1, 1]}, False),
             "v1-review": ({"sync_map": [1, 1]}, False), "fixed": ({"sync_map": [1, 2]}, True)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_s2_concatenated_pgd(variant):
    res = run("config fmt=arm64-s2 granule=4K ias=40 oas=40\nmap 511G 511G 2G\n", variant)
    expect, ok_512g = S2_CONCAT[variant]
    assert res.records[0].var.ret == 0
    assert cleans(res, 0) == expect
    assert res.var.smmu_walk(511 << 30).ok
    assert res.var.smmu_walk(512 << 30).ok == ok_512g


# 4K S1 ias 40: 2-entry PGD (PGD_IDX = -8).  map 5G: new L1 (under PGD[0]), L2 (L1[5]), L3.
# v1 at L1: shift = 39 - 8 = 31, iova_offset = 1G, start 5, end = (1G + 4K + 1G - 4K) >> 30 = 2;
# 2 - 5 wraps, min with max_entries(5) = 507 -> entries 5..511: L1[5] is the table (L3: 1 line),
# L1[6..512) are empty: 506 WARNs and one clean of 506 entries from byte 48 = lines 0..63.
# 2 calls, 65 lines.
@pytest.mark.parametrize("variant", VARIANTS)
def test_small_pgd_5g(variant):
    res = run("config ias=40 oas=40\nmap 5G 0x80000000 4K\n", variant)
    rec = res.records[0].var
    assert rec.ret == 0
    sync = {"reference": {"leaf": [1, 1]}, "fixed": {"sync_map": [1, 1]}}.get(
        variant, {"sync_map": [2, 65]})
    assert rec.cleans == {"alloc": [3, 192], "install": [3, 3], **sync}
    empty = sum(e.count for e in rec.events if e.site == "__arm_lpae_iotlb_sync_map:empty")
    assert empty == (506 if variant in ("v1", "v1-review") else 0)
    assert res.var.smmu_walk(5 << 30).oa == PADDR
