"""The iommu core (kernel-semantics §4): iommu_pgsize, map error unwinding, alignment and
range errors, map_sg run merging, and unmap stopping at holes."""

import dataclasses

import pytest

import model.iommu as core
from model import Config, KernelBug, Scatterlist, World
from model.iommu import iommu_pgsize

K4 = 1 << 12
SZ_2M, SZ_1G = 1 << 21, 1 << 30
RW = 1 | 2
EINVAL, ENOMEM, EEXIST, ERANGE = 22, 12, 17, 34


def _w(**kw):
    return World(Config(fmt="arm64-s1", granule=K4, ias=48, oas=48, **kw))


# --- iommu_pgsize (§4.1) ----------------------------------------------------------------------

def test_pgsize_kernel_example():
    """bitmap 4K|2M|1G, iova = paddr = 0x1FF000, size 0x402000."""
    dom = _w().domain
    assert dom.pgsize_bitmap == K4 | SZ_2M | SZ_1G
    # sizes <= __fls(0x402000) = 22 -> 4K|2M; alignment __ffs(0x1FF000) = 12 -> 4K.
    # next = 2M, co-aligned; offset = 2M - 0x1FF000 = 0x1000; 0x1000 + 2M <= size -> count 1
    assert iommu_pgsize(dom, 0x1FF000, 0x1FF000, 0x402000) == (K4, 1)
    # at 0x200000 with 0x401000 left: 2M allowed; next = 1G does not fit -> 0x401000 >> 21 = 2
    assert iommu_pgsize(dom, 0x200000, 0x200000, 0x401000) == (SZ_2M, 2)
    # at 0x600000 with 0x1000 left
    assert iommu_pgsize(dom, 0x600000, 0x600000, 0x1000) == (K4, 1)


def test_pgsize_example_through_map_pages_calls(monkeypatch):
    """The same request through iommu_map: map_pages sees exactly those three chunks."""
    w = _w()
    calls = []
    orig = w.driver.map_pages

    def spy(domain, iova, paddr, pgsize, pgcount, prot, gfp, mapped):
        calls.append((iova, pgsize, pgcount))
        return orig(domain, iova, paddr, pgsize, pgcount, prot, gfp, mapped)

    monkeypatch.setattr(w.driver, "map_pages", spy)
    assert w.map(0x1FF000, 0x1FF000, 0x402000) == 0
    assert calls == [(0x1FF000, K4, 1), (0x200000, SZ_2M, 2), (0x600000, K4, 1)]
    # 0x1FF000 -> a 4K page; 0x200000..0x600000 -> two 2M blocks (walk ends at L2)
    assert [s.lvl for s in w.smmu_walk(0x1FF000).steps][-1] == 3
    assert [s.lvl for s in w.smmu_walk(0x300000).steps][-1] == 2
    assert [s.lvl for s in w.smmu_walk(0x500000).steps][-1] == 2
    assert w.smmu_walk(0x600ABC).oa == 0x600ABC


def test_pgsize_skewed_iova_and_paddr_uses_4k_with_one_count():
    dom = _w().domain
    # (iova ^ paddr) & (2M - 1) = 0x1000 != 0: no bigger page ever; all 4K, 0x400000 >> 12
    assert iommu_pgsize(dom, 0x200000, 0x201000, 0x400000) == (K4, 1024)
    # 1 GiB skewed by 4K: 2^30 >> 12 = 262144 pages in one count
    assert iommu_pgsize(dom, SZ_1G, SZ_1G + K4, SZ_1G) == (K4, 262144)


def test_pgsize_skewed_map_translates_page_by_page():
    w = _w()
    assert w.map(0x200000, 0x8000_1000, 0x400000) == 0
    oa, ok = w.translate_range(0x200000, 1024, K4)
    assert ok.all()
    # page i -> 0x8000_1000 + i * 4K (independent of the model: plain arithmetic)
    assert all(int(oa[i]) == 0x8000_1000 + i * K4 for i in (0, 1, 511, 512, 1023))
    # no 2M block anywhere: every walk ends at level 3
    assert w.smmu_walk(0x200000).level == 3 and w.smmu_walk(0x400000).level == 3


def test_pgsize_count_never_exceeds_the_size_near_2_64():
    """check_add_overflow(offset, pgsize_next): with a 2^63 page size in the bitmap and
    iova = paddr = 0, offset = 2^63 and offset + 2^63 wraps to 0 in C.  Without the check,
    `0 <= size` would set size = offset = 2^63 and count = 2^51 pages, more than asked for.
    With it, count = (2^63 - 4K) >> 12 = 2^51 - 1."""
    dom = dataclasses.replace(_w().domain, pgsize_bitmap=K4 | (1 << 63))
    size = (1 << 63) - K4
    pgsize, count = iommu_pgsize(dom, 0, 0, size)
    assert (pgsize, count) == (K4, (1 << 51) - 1)
    assert pgsize * count <= size
    # the same from iova = paddr = 2^63 (addr_merge has only bit 63: offset is 2^63 again)
    assert iommu_pgsize(dom, 1 << 63, 1 << 63, size) == (K4, (1 << 51) - 1)


def test_pgsize_near_2_64_with_the_default_bitmap():
    dom = _w().domain
    # size 2^64 - 4K at 0x1000: sizes 4K only (alignment 4K); next 2M: offset = 2M - 4K;
    # offset + 2M <= size -> stop at 2M: count (2M - 4K) >> 12 = 511
    assert iommu_pgsize(dom, K4, K4, (1 << 64) - K4) == (K4, 511)
    # at 2M with 2^64 - 2M left: 2M pages; next 1G: offset = 1G - 2M -> count 511
    assert iommu_pgsize(dom, SZ_2M, SZ_2M, (1 << 64) - SZ_2M) == (SZ_2M, 511)
    # at 1G: 1G pages (largest), no bigger size: count = (2^64 - 1G) >> 30 = 2^34 - 1
    assert iommu_pgsize(dom, SZ_1G, SZ_1G, (1 << 64) - SZ_1G) == (SZ_1G, (1 << 34) - 1)


def test_pgsize_bug_on_misaligned():
    w = _w()
    with pytest.raises(KernelBug) as exc:
        iommu_pgsize(w.domain, 0xFFE, 0xFFE, 0x2000)
    assert exc.value.site == "iommu_pgsize"


# --- map error unwinding with the allocation failpoint (§4.2) ----------------------------------
#
# Two 4K pages at 0x1FF000 and 0x200000 (across a 2M boundary) on a fresh arm64-s1 4K/48 table
# (PGD only).  iommu_pgsize gives (4K, count 2); map_pages chunk 1 walks L0 -> alloc L1 (#1),
# L1 -> alloc L2 (#2), L2[0] -> alloc L3 (#3), maps L3[511] (max_entries 1) -> mapped 4K;
# chunk 2 at 0x200000: L2[1] -> alloc L3' (#4), maps L3'[0].
# Failing allocation K: tables installed before it stay (unmap never frees empty tables);
#   K=1 -> PGD only = 1 table, K=2 -> 2, K=3 -> 3, nothing mapped yet;
#   K=4 -> 4 tables, page 0x1FF000 was mapped, then unrolled by iommu_unmap(0x1FF000, 4K).
ALLOC_CASES = [(1, 1), (2, 2), (3, 3), (4, 4)]


@pytest.mark.parametrize("nth,live", ALLOC_CASES)
def test_map_unwinds_on_enomem(nth, live):
    w = _w()
    assert w.live_tables() == 1
    w.fail("alloc", nth=nth)
    assert w.map(0x1FF000, 0x8000_0000 + 0x1FF000, 2 * K4) == -ENOMEM
    _, ok = w.translate_range(0x1FF000, 2, K4)
    assert not ok.any()
    assert w.pt_iova_to_phys(0x1FF000) == 0 and w.pt_iova_to_phys(0x200000) == 0
    assert w.live_tables() == live
    assert w.first_divergence(0, SZ_1G) is None
    # the same map succeeds afterwards and needs only the missing tables: 5 in all
    assert w.map(0x1FF000, 0x8000_0000 + 0x1FF000, 2 * K4) == 0
    assert w.live_tables() == 5
    oa, ok = w.translate_range(0x1FF000, 2, K4)
    assert ok.all() and [int(x) for x in oa] == [0x801FF000, 0x80200000]


def test_map_without_failure_allocates_four_tables():
    w = _w()
    w.fail("alloc", nth=5)             # one more than the map needs: never fires
    assert w.map(0x1FF000, 0x801FF000, 2 * K4) == 0
    assert w.live_tables() == 5        # PGD + L1 + L2 + 2 x L3
    assert w.failpoints.fired == []


def test_map_unwinds_a_larger_run_on_enomem():
    """4K pages 0x1FE000..0x402000, skewed (all 4K): 2 + 512 + 2 pages over three L3 tables
    (L3a, L3b, L3c).  Allocations: L1, L2, L3a, L3b, L3c; failing #5 leaves 514 pages mapped,
    which iommu_map_nosync unrolls with iommu_unmap(0x1FE000, 514 * 4K).  That unmap walks
    with iova = paddr, so iommu_pgsize gives (4K, 2) up to 0x200000 and then (2M, 1): the
    L2 entry holding L3b is a table at the unmap size, so it is cleared and L3b freed.
    Left: PGD, L1, L2 and the (empty) L3a = 4 tables."""
    w = _w()
    w.fail("alloc", nth=5)
    iova, size = 0x1FE000, 516 * K4
    assert w.map(iova, 0x9000_1000, size) == -ENOMEM
    _, ok = w.translate_range(iova, 516, K4)
    assert not ok.any()
    assert w.live_tables() == 4
    assert w.first_divergence(iova, size) is None


def test_map_unwinds_on_eexist_without_touching_the_existing_page():
    w = _w()
    assert w.map(0x200000, 0x7000_0000, K4) == 0
    # 0x1FF000 mapped (chunk 1), chunk 2 at 0x200000 hits the existing leaf -> -EEXIST;
    # iommu_unmap(0x1FF000, 4K) unrolls only what this call mapped
    assert w.map(0x1FF000, 0x8000_0000, 2 * K4) == -EEXIST
    assert w.pt_iova_to_phys(0x1FF000) == 0
    assert w.pt_iova_to_phys(0x200000) == 0x7000_0000


# --- argument errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("iova,paddr,size", [
    (0x800, 0x1000, 0x1000),       # iova not 4K-aligned
    (0x1000, 0x1800, 0x1000),      # paddr not 4K-aligned
    (0x1000, 0x1000, 0x800),       # size not a multiple of 4K
    (0x1000, 0x1000, 0x1001),
])
def test_misaligned_map_is_einval(iova, paddr, size):
    w = _w()
    assert w.map(iova, paddr, size) == -EINVAL
    assert w.live_tables() == 1                # nothing was even walked
    assert w.stats()["by_site"]["leaf"]["calls"] == 0


def test_misaligned_unmap_returns_zero():
    w = _w()
    assert w.map(0x1000, 0x1000, K4) == 0
    assert w.unmap(0x1800, K4) == 0
    assert w.unmap(0x1000, 0x800) == 0
    assert w.pt_iova_to_phys(0x1000) == 0x1000


def test_map_without_read_or_write_is_einval_without_warn():
    w = _w()
    assert w.map(0x1000, 0x1000, K4, prot=4) == -EINVAL      # CACHE only
    assert not [e for e in w.events.events if e.kind == "WARN"]


def test_map_pages_with_unsupported_pgsize_is_einval_with_warn():
    w = _w()
    assert w.pt_map_pages(0, 0, 1 << 16, 1) == (-EINVAL, 0)   # 64K is not in 4K|2M|1G
    assert [e.kind for e in w.events.events] == ["WARN"]


def test_map_outside_the_ias_is_erange():
    w = _w()
    assert w.map(1 << 48, 0x1000, K4) == -ERANGE           # iova >> ias != 0
    assert w.map(0x1000, 1 << 48, K4) == -ERANGE           # paddr >> oas != 0


# --- iommu_map_sg (§4.4) ----------------------------------------------------------------------

@pytest.fixture
def counted(monkeypatch):
    """Count iommu_map_nosync runs and iommu_sync_map calls made by iommu_map_sg."""
    runs, syncs = [], []
    orig_map, orig_sync = core.iommu_map_nosync, core.iommu_sync_map

    def map_nosync(domain, iova, paddr, size, prot, gfp=0):
        runs.append((iova, paddr, size))
        return orig_map(domain, iova, paddr, size, prot, gfp)

    def sync_map(domain, iova, size):
        syncs.append((iova, size))
        return orig_sync(domain, iova, size)

    monkeypatch.setattr(core, "iommu_map_nosync", map_nosync)
    monkeypatch.setattr(core, "iommu_sync_map", sync_map)
    return runs, syncs


IOVA = 0x4000_0000
P, Q = 0x1_0000_0000, 0x2_0000_0000


def test_map_sg_merges_contiguous_segments(counted):
    runs, syncs = counted
    w = _w()
    segs = [(P, K4), (P + K4, 2 * K4), (P + 3 * K4, K4)]      # 16K physically contiguous
    assert w.map_sg(IOVA, segs) == 4 * K4
    assert runs == [(IOVA, P, 4 * K4)]
    assert syncs == [(IOVA, 4 * K4)]
    oa, ok = w.translate_range(IOVA, 4, K4)
    assert ok.all() and [int(x) for x in oa] == [P + i * K4 for i in range(4)]


def test_map_sg_discontiguous_runs_are_laid_back_to_back(counted):
    runs, syncs = counted
    w = _w()
    segs = [(P, K4), (P + K4, K4), (Q, 2 * K4), (P, K4)]
    # runs: P..P+8K, Q..Q+8K, P..P+4K  -> 20K total, IOVAs consecutive
    assert w.map_sg(IOVA, segs) == 5 * K4
    assert runs == [(IOVA, P, 2 * K4), (IOVA + 2 * K4, Q, 2 * K4), (IOVA + 4 * K4, P, K4)]
    assert syncs == [(IOVA, 5 * K4)]
    oa, ok = w.translate_range(IOVA, 5, K4)
    assert ok.all()
    assert [int(x) for x in oa] == [P, P + K4, Q, Q + K4, P]


def test_map_sg_skips_p2p_bus_address_segments(counted):
    runs, syncs = counted
    w = _w()
    segs = [Scatterlist(P, K4), Scatterlist(0xF000_0000, 8 * K4, True), Scatterlist(Q, K4)]
    # the bus segment breaks the run (its address is not P + 4K) and takes no IOVA
    assert w.map_sg(IOVA, segs) == 2 * K4
    assert runs == [(IOVA, P, K4), (IOVA + K4, Q, K4)]
    assert syncs == [(IOVA, 2 * K4)]
    oa, ok = w.translate_range(IOVA, 3, K4)
    assert ok.tolist() == [True, True, False]
    assert [int(x) for x in oa[:2]] == [P, Q]


def test_map_sg_bus_segment_splits_a_contiguous_run(counted):
    """The discontinuity check comes before the bus-address check: a P2P entry between two
    physically contiguous segments still flushes the pending run, so the two halves are two
    iommu_map_nosync calls (IOVAs still back-to-back, one sync)."""
    runs, syncs = counted
    w = _w()
    segs = [Scatterlist(P, K4), Scatterlist(0xF000_0000, K4, True), Scatterlist(P + K4, K4)]
    assert w.map_sg(IOVA, segs) == 2 * K4
    assert runs == [(IOVA, P, K4), (IOVA + K4, P + K4, K4)]
    assert syncs == [(IOVA, 2 * K4)]
    oa, ok = w.translate_range(IOVA, 2, K4)
    assert ok.all() and [int(x) for x in oa] == [P, P + K4]


def test_map_sg_trailing_zero_length_segment_drops_the_pending_run(counted):
    """Kernel quirk (docs/model.md): the extra pass re-reads the last entry; a 0-length
    last entry contiguous with the pending run leaves `s_phys == start + len`, so the
    pending run is never mapped."""
    runs, syncs = counted
    w = _w()
    assert w.map_sg(IOVA, [(P, K4), (P + K4, 0)]) == 0
    assert runs == []
    assert syncs == [(IOVA, 0)]
    assert not w.smmu_walk(IOVA).ok
    # an earlier, discontiguous run is mapped; only the last run is lost
    w2 = World(Config())
    runs.clear()
    assert w2.map_sg(IOVA, [(Q, K4), (P, K4), (P + K4, 0)]) == K4
    assert runs == [(IOVA, Q, K4)]
    _, ok = w2.translate_range(IOVA, 2, K4)
    assert ok.tolist() == [True, False]


def test_map_sg_zero_length_last_segment_discontiguous_flushes_the_run(counted):
    runs, _ = counted
    w = _w()
    # (Q, 0) is not at P + 4K: the run P..P+4K is mapped when (Q, 0) is read
    assert w.map_sg(IOVA, [(P, K4), (Q, 0)]) == K4
    assert runs == [(IOVA, P, K4)]
    assert w.smmu_walk(IOVA).oa == P


def test_map_sg_error_unmaps_what_was_mapped(counted):
    runs, _ = counted
    w = _w()
    assert w.map(IOVA + K4, 0x7000_0000, K4) == 0           # blocks the second run
    runs.clear()
    assert w.map_sg(IOVA, [(P, K4), (Q, K4)]) == -EEXIST
    assert runs == [(IOVA, P, K4), (IOVA + K4, Q, K4)]
    assert w.pt_iova_to_phys(IOVA) == 0                     # first run unrolled
    assert w.pt_iova_to_phys(IOVA + K4) == 0x7000_0000      # the old page is untouched


# --- unmap with holes (§4.5) -----------------------------------------------------------------

def test_unmap_stops_at_the_first_hole():
    """[0, 4K) and [8K, 12K) mapped; unmap(0, 12K): chunk (4K, 3): entry 0 cleared, hole at
    entry 1 -> 4K; chunk at 4K (4K, 2): hole first -> 0 -> stop.  8K stays mapped."""
    w = _w(enoent_bug=False)
    assert w.map(0, 0x5000_0000, K4) == 0
    assert w.map(2 * K4, 0x5000_2000, K4) == 0
    assert w.unmap(0, 3 * K4) == K4
    assert w.pt_iova_to_phys(0) == 0
    assert w.pt_iova_to_phys(2 * K4) == 0x5000_2000
    assert w.smmu_walk(2 * K4).oa == 0x5000_2000


def test_unmap_hole_at_the_start_unmaps_nothing():
    w = _w(enoent_bug=False)
    assert w.map(K4, 0x5000_1000, K4) == 0
    assert w.unmap(0, 2 * K4) == 0
    assert w.smmu_walk(K4).oa == 0x5000_1000


def test_unmap_of_a_hole_with_the_enoent_bug_crashes():
    """Same range with the v6.17 return: chunk 2 returns 2^64-2, iova becomes 0xffe ->
    BUG_ON in iommu_pgsize."""
    w = _w(enoent_bug=True)
    assert w.map(0, 0x5000_0000, K4) == 0
    assert w.map(2 * K4, 0x5000_2000, K4) == 0
    with pytest.raises(KernelBug):
        w.unmap(0, 3 * K4)


def test_unmap_full_range_in_table_sized_chunks():
    """1 GiB of skewed 4K pages = 262144 PTEs = 512 leaf tables; unmap in one call."""
    w = _w()
    assert w.map(SZ_1G, 0x1_0000_1000, SZ_1G) == 0
    assert w.live_tables() == 1 + 1 + 1 + 512          # PGD, L1, L2, 512 x L3
    oa, ok = w.translate_range(SZ_1G, 262144, K4)
    assert ok.all()
    assert int(oa[262143]) == 0x1_0000_1000 + 262143 * K4
    # the core unmaps with (iova, iova): 1G-aligned, size 1G -> one 1G chunk, whose L1 entry
    # is a table: cleared, and the L2 + 512 L3 tables freed
    assert w.unmap(SZ_1G, SZ_1G) == SZ_1G
    _, ok = w.translate_range(SZ_1G, 262144, K4)
    assert not ok.any()
    assert w.live_tables() == 2                        # PGD and L1
    assert w.first_divergence(SZ_1G, SZ_1G) is None
