"""Clean accounting under the reference variant (kernel-semantics §3.1, §3.2, §3.11): how many
`dma_sync_single_for_device` calls each site makes and how many cache lines they cover.

A clean of bytes [a, a + n) covers lines floor(a / line) .. ceil((a + n) / line) - 1.  All
counts below are computed by hand from that and from the sites of §3.11:
  alloc (C1) = the whole new table, install (C2) = 1 table PTE, table (C3) = 1 table PTE,
  leaf (C4) = the batch of leaves, unmap (C5/C6) = a removed table PTE / a cleared batch.
"""

import numpy as np
import pytest

from model import Config, World

K4 = 1 << 12
SZ_2M, SZ_1G = 1 << 21, 1 << 30
SITES = ("alloc", "install", "table", "leaf", "sync_map", "unmap")


def _snap(w):
    return {s: dict(v) for s, v in w.stats()["by_site"].items()}


def _delta(w, before):
    after = w.stats()["by_site"]
    return {s: (after[s]["calls"] - before[s]["calls"], after[s]["lines"] - before[s]["lines"])
            for s in SITES}


def _expect(**sites):
    """{site: (calls, lines)} with every other site (0, 0)."""
    return {s: sites.get(s, (0, 0)) for s in SITES}


def _w(line=64, **kw):
    return World(Config(fmt="arm64-s1", granule=K4, ias=48, oas=48, line=line, **kw))


# --- the PGD allocation ------------------------------------------------------------------------

@pytest.mark.parametrize("line", [32, 64, 128])
def test_pgd_allocation_clean(line):
    # 4K ias 48: PGD = 512 entries = 4096 bytes -> 4096 / line lines in one call
    w = _w(line)
    assert w.stats()["by_site"]["alloc"] == {"calls": 1, "lines": 4096 // line}
    assert w.stats()["cmo_calls"] == 1


@pytest.mark.parametrize("ias,pgd_bytes", [(40, 16), (44, 256), (39, 4096)])
def test_small_pgd_allocation_clean(ias, pgd_bytes):
    # dma_map_single(size = PGD_SIZE): ceil(PGD_SIZE / 64) lines, at least one
    w = World(Config(ias=ias, oas=48))
    assert w.stats()["by_site"]["alloc"] == {"calls": 1, "lines": -(-pgd_bytes // 64)}


# --- map --------------------------------------------------------------------------------------

@pytest.mark.parametrize("line", [32, 64, 128])
def test_fresh_4k_map_cleans(line):
    """Empty 4K/ias 48 table: L0 -> new L1, L1 -> new L2, L2 -> new L3, leaf in L3.
    alloc: 3 calls x 4096 / line lines; install: 3 calls x 1 line; leaf: 1 call x 1 line."""
    w = _w(line)
    before = _snap(w)
    assert w.map(0x1000, 0x5000, K4) == 0
    per_table = 4096 // line          # 128 for 32-byte lines, 64 for 64, 32 for 128
    assert _delta(w, before) == _expect(alloc=(3, 3 * per_table), install=(3, 3), leaf=(1, 1))
    assert w.first_divergence(0, SZ_2M) is None


def test_fresh_4k_map_cleans_line_64_numbers():
    w = _w(64)
    before = _snap(w)
    assert w.map(0x1000, 0x5000, K4) == 0
    # 3 * 4096 / 64 = 192
    assert _delta(w, before) == _expect(alloc=(3, 192), install=(3, 3), leaf=(1, 1))


def test_second_map_through_existing_tables_cleans_only_the_leaf():
    # tables already installed (and marked SW_SYNC): no alloc/install/table clean again
    w = _w()
    assert w.map(0x1000, 0x5000, K4) == 0
    before = _snap(w)
    assert w.map(0x2000, 0x6000, K4) == 0
    assert _delta(w, before) == _expect(leaf=(1, 1))


def test_2m_block_map_cleans():
    # L0 -> new L1, L1 -> new L2, block in L2: alloc 2 x 64 lines, install 2, leaf 1
    w = _w()
    before = _snap(w)
    assert w.map(SZ_2M, 0x4000_0000, SZ_2M) == 0
    assert _delta(w, before) == _expect(alloc=(2, 128), install=(2, 2), leaf=(1, 1))
    assert w.first_divergence(SZ_2M, SZ_2M) is None


def test_map_sg_of_512_discontiguous_pages():
    """512 segments, paddr = 0x1_0000_0000 + 2 * i * 4K: no two contiguous, so 512 runs of
    one page each -> 512 map_pages -> 512 leaf cleans of 1 line.  The first run allocates
    L1, L2, L3 (192 lines at line 64); the others find the tables installed."""
    w = _w()
    iova = 0x4000_0000                                   # 2M (and 1G) aligned
    segs = [(0x1_0000_0000 + 2 * i * K4, K4) for i in range(512)]
    before = _snap(w)
    assert w.map_sg(iova, segs) == 512 * K4
    assert _delta(w, before) == _expect(alloc=(3, 192), install=(3, 3), leaf=(512, 512))
    assert w.first_divergence(iova, SZ_2M) is None
    oa, ok = w.translate_range(iova, 512, K4)
    assert ok.all()
    expected = np.uint64(0x1_0000_0000) + np.arange(512, dtype=np.uint64) * np.uint64(2 * K4)
    assert (oa == expected).all()


def test_one_batch_of_512_leaves_is_one_clean():
    # skewed paddr -> (4K, 512) in one L3: one leaf clean of 512 * 8 / 64 = 64 lines
    w = _w()
    assert w.map(0x1000, 0x5000, K4) == 0                # tables exist for [0, 2M)
    assert w.unmap(0x1000, K4) == K4
    before = _snap(w)
    assert w.pt_map_pages(0, 0x8000_1000, K4, 512) == (0, SZ_2M)
    assert _delta(w, before) == _expect(leaf=(1, 64))


@pytest.mark.parametrize("line,lines", [(32, 4), (64, 2), (128, 1)])
def test_leaf_clean_covers_the_lines_of_the_batch(line, lines):
    # 10 entries at L3 index 3: bytes [24, 104) -> lines 0..ceil(104/line)-1
    w = _w(line)
    assert w.map(0x1000, 0x5000, K4) == 0
    assert w.unmap(0x1000, K4) == K4
    before = _snap(w)
    assert w.pt_map_pages(3 * K4, 0x8000_3000, K4, 10) == (0, 10 * K4)
    assert _delta(w, before) == _expect(leaf=(1, lines))


# --- coherent walk ------------------------------------------------------------------------------

def test_coherent_walk_never_cleans():
    w = _w(coherent_walk=True)
    assert w.map(0x1000, 0x5000, K4) == 0
    assert w.map(SZ_2M, 0x4000_0000, SZ_2M) == 0
    segs = [(0x1_0000_0000 + 2 * i * K4, K4) for i in range(64)]
    assert w.map_sg(SZ_1G, segs) == 64 * K4
    assert w.unmap(0x1000, K4) == K4
    # (2M, 2) at 0: entry 0 is the (now empty) L3 table, entry 1 the block: both go
    assert w.unmap(0, 2 * SZ_2M) == 2 * SZ_2M
    assert w.unmap(SZ_1G, 64 * K4) == 64 * K4
    st = w.stats()
    assert st["cmo_calls"] == 0 and st["lines_cleaned"] == 0
    assert all(v == {"calls": 0, "lines": 0} for v in st["by_site"].values())
    assert w.dirty_lines() == 0


# --- unmap ------------------------------------------------------------------------------------

@pytest.mark.parametrize("line,lines", [(32, 128), (64, 64), (128, 32)])
def test_unmap_of_512_pages_is_one_clean(line, lines):
    """A 4K-only bitmap makes the core use (4K, 512) for both map and unmap of 2M: one
    leaf batch = 512 * 8 = 4096 bytes = 4096 / line lines, in one call each way."""
    w = _w(line, pgsize_bitmap=K4)
    assert w.geometry.pgsize_bitmap == K4
    before = _snap(w)
    assert w.map(SZ_2M, 0x8000_0000, SZ_2M) == 0
    d = _delta(w, before)
    assert d["leaf"] == (1, lines)
    before = _snap(w)
    assert w.unmap(SZ_2M, SZ_2M) == SZ_2M
    assert _delta(w, before) == _expect(unmap=(1, lines))
    assert w.first_divergence(SZ_2M, SZ_2M) is None


def test_unmap_of_512_pages_via_pt_unmap_pages():
    w = _w()
    assert w.map(SZ_2M, 0x8000_1000, SZ_2M) == 0          # skewed: 512 x 4K
    before = _snap(w)
    assert w.pt_unmap_pages(SZ_2M, K4, 512) == SZ_2M
    # 512 * 8 / 64 = 64 lines in one call
    assert _delta(w, before) == _expect(unmap=(1, 64))


@pytest.mark.parametrize("line,lines", [(32, 129), (64, 65), (128, 33)])
def test_unaligned_unmap_across_two_leaf_tables(line, lines):
    """4K-only bitmap; 1024 pages mapped at [2M, 6M); unmap(2M + 4K, 2M): (4K, 512) stops
    at the end of the first L3: entries 1..511 = bytes [8, 4096) -> 4096 / line lines;
    then (4K, 1) at 4M: entry 0 of the second L3 -> 1 line.  Two calls."""
    w = _w(line, pgsize_bitmap=K4)
    assert w.map(SZ_2M, 0x8000_0000, 2 * SZ_2M) == 0
    before = _snap(w)
    assert w.unmap(SZ_2M + K4, SZ_2M) == SZ_2M
    assert _delta(w, before) == _expect(unmap=(2, lines))
    _, ok = w.translate_range(SZ_2M, 1024, K4)
    # page 0 and pages 513..1023 remain
    assert ok[0] and not ok[1:513].any() and ok[513:].all()


def test_unmap_of_a_table_entry_cleans_it_then_the_batch():
    """Unmapping 2M over an L3 table of 4K pages: the table PTE is cleared + cleaned on its
    own (1 line), then the batch of one entry is cleared + cleaned again (1 line)."""
    w = _w()
    assert w.map(SZ_2M, 0x8000_1000, SZ_2M) == 0
    tables = w.live_tables()
    before = _snap(w)
    assert w.unmap(SZ_2M, SZ_2M) == SZ_2M
    assert _delta(w, before) == _expect(unmap=(2, 2))
    assert w.live_tables() == tables - 1
    assert w.first_divergence(SZ_2M, SZ_2M) is None
