"""v6.12 split-on-unmap (`Config.split_blk_unmap`, op-language key `split=1`).

Linux 6.12's `__arm_lpae_unmap`, on a leaf whose size is larger than the unmap size, calls
`arm_lpae_split_blk_unmap(data, gather, iova, size, pte, lvl + 1, ptep, pgcount)`
(drivers/iommu/io-pgtable-arm.c of 6.12.117, lines 584-642 and 692-699):

    tablep = __arm_lpae_alloc_pages(tablesz, GFP_ATOMIC, ..)     -> 0 if NULL   (C1 clean)
    if (size == split_sz) {                                         /* BLOCK_SIZE(lvl) */
            unmap_idx_start = ARM_LPAE_LVL_IDX(iova, lvl, data);
            num_entries = min_t(int, pgcount, arm_lpae_max_entries(unmap_idx_start, data));
    }                                                      /* else -1 and 0: skip nothing */
    blk_paddr = iopte_to_paddr(blk_pte); pte = iopte_prot(blk_pte);
    for (i = 0; i < ptes_per_table; i++, blk_paddr += split_sz)
            if not in [unmap_idx_start, unmap_idx_start + num_entries):
                    __arm_lpae_init_pte(data, blk_paddr, pte, lvl, 1, &tablep[i]);   (C4 each)
    pte = arm_lpae_install_table(tablep, ptep, blk_pte, data);                       (C2)
    if (pte != blk_pte) { ...race... } else if (unmap_idx_start >= 0) {
            num_entries x io_pgtable_tlb_add_page(iova + i * size, size);
            return num_entries * size;
    }
    return __arm_lpae_unmap(data, gather, iova, size, pgcount, lvl, tablep);

Every expectation below is worked out by hand from that C (PTE values from
`arm_lpae_prot_to_pte` and `iopte_prot` = bits 2-11 | DBM | XN), not from the model.  Default
config: arm64-s1, 4K, ias = oas = 48 (4 levels from L0), 64-byte lines, non-coherent.
"""

from __future__ import annotations

import numpy as np
import pytest

import model.io_pgtable_arm as iopa
from fuzz.lang import codec
from fuzz.lang import ops as O
from fuzz.repro.replay import result_json
from fuzz.run.executor import run_scenario
from model import Config, World
from model.config import QUIRK_BITS
from model.variants import get_variant

K4, SZ_2M, SZ_1G = 1 << 12, 1 << 21, 1 << 30
PA = 0x8000_0000
SW_SYNC = 1 << 55
# arm64-s1, prot rw: nG (1<<11) | AP_UNPRIV (1<<6) | SH_OS (2<<8) | AF (1<<10) = 0xe40
ATTRS_RW = 0xE40
BLOCK_RW = PA | ATTRS_RW | 1            # 0x80000e41: a block (type 1)
PAGE_RW = ATTRS_RW | 3                  # L3 page descriptors (type 3): 0xe43 | paddr


def _w(**kw) -> World:
    return World(Config(**{"split_blk_unmap": True, **kw}))


def _cleans(w: World) -> dict[str, tuple[int, int]]:
    return {k: (v["calls"], v["lines"]) for k, v in w.stats()["by_site"].items()}


def _delta(before: dict, after: dict) -> dict[str, tuple[int, int]]:
    return {k: (after[k][0] - before[k][0], after[k][1] - before[k][1])
            for k in after if after[k] != before[k]}


def _table_of(w: World, iova: int, lvl: int):
    """(table PTE's table, the table it points at) on iova's CPU walk, at level lvl."""
    walk = w.smmu_walk(iova, "cpu")
    step = next(s for s in walk.steps if s.lvl == lvl)
    return step, w.data.mem.lookup(step.desc & 0xFFFF_FFFF_F000)


def _raw(w: World, iova: int, lvl: int, view: str = "cpu") -> int:
    walk = w.smmu_walk(iova, "cpu")
    step = next(s for s in walk.steps if s.lvl == lvl)
    t = w.data.mem.lookup(step.table_pa)
    return int((t.cpu if view == "cpu" else t.mem)[step.idx])


# --- the brief's case: 2M block, unmap 4K inside it -------------------------------------------

def test_unmap_4k_inside_a_2m_block_splits_it_into_an_l3_table():
    w = _w()
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    assert _raw(w, 0x20_0000, 2) == BLOCK_RW            # an L2 block, index 1
    tables, before = w.live_tables(), _cleans(w)

    assert w.unmap(0x20_1000, K4) == 0x1000

    # L2[1] is now a table PTE (type 3) to a new table: CPU has SW_SYNC (install_table's
    # WRITE_ONCE after the clean), memory has the cleaned value without it.
    l2 = _raw(w, 0x20_0000, 2)
    assert l2 & 3 == 3 and l2 & SW_SYNC
    assert _raw(w, 0x20_0000, 2, "mem") == l2 & ~SW_SYNC
    assert w.live_tables() == tables + 1
    _, l3 = _table_of(w, 0x20_0000, 2)
    assert l3 is not None and not l3.freed and l3.lvl == 3 and l3.entries == 512
    want = np.array([0 if i == 1 else (PA + i * K4) | PAGE_RW for i in range(512)],
                    dtype=np.uint64)
    assert np.array_equal(l3.cpu[:512], want)
    assert np.array_equal(l3.mem[:512], want)            # the reference cleans everything
    assert int(l3.cpu[0]) == 0x8000_0E43 and int(l3.cpu[511]) == 0x801F_FE43

    # The SMMU (memory view) agrees with the CPU over the whole old block.
    assert w.first_divergence(0x20_0000, SZ_2M) is None
    # Dirty are only the lines of the three table PTEs re-stored with SW_SYNC after their clean
    # (L0[0] and L1[0] by the map, L2[1] by the split), a software bit the SMMU ignores.
    assert w.dirty_lines() == 3
    assert w.smmu_walk(0x20_1000).fault == "translation"
    assert w.smmu_walk(0x20_1000).level == 3
    ok = w.smmu_walk(0x20_2abc)
    assert ok.ok and ok.oa == PA + 0x2abc and ok.level == 3
    assert w.pt_iova_to_phys(0x20_1000) == 0
    assert w.pt_iova_to_phys(0x3F_F123) == PA + 0x1F_F123

    # Cleans: the new table (alloc, 4096 / 64 = 64 lines), 511 one-entry __arm_lpae_init_pte
    # calls (leaf, one line each), the table PTE (install).  Nothing at unmap/table.
    assert _delta(before, _cleans(w)) == {"alloc": (1, 64), "leaf": (511, 511),
                                          "install": (1, 1)}
    assert [e for e in w.events.events if e.kind == "WARN"] == []
    assert w.data.tlb.add_page == 1 and w.data.tlb.flush_walk == []

    # The 6.12 selftest's "Remap of partial unmap": the hole maps again as a page.
    assert w.map(0x20_1000, 0x9000_0000, K4) == 0
    assert w.pt_iova_to_phys(0x20_1042) == 0x9000_0042


def test_switch_off_is_the_6_17_behaviour():
    """33729a5fc0ca: WARN_ONCE and return 0; the block stays, nothing is cleaned."""
    w = World(Config())
    assert not w.config.split_blk_unmap
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    before, tables = _cleans(w), w.live_tables()
    assert w.unmap(0x20_1000, K4) == 0
    assert _raw(w, 0x20_0000, 2) == BLOCK_RW
    assert w.live_tables() == tables and _delta(before, _cleans(w)) == {}
    warns = [e for e in w.events.events if e.kind == "WARN"]
    assert [e.site for e in warns] == ["__arm_lpae_unmap:partial-block"]
    assert w.unmap(0x20_2000, K4) == 0                   # WARN_ONCE: no second WARN
    assert len([e for e in w.events.events if e.kind == "WARN"]) == 1


def test_several_pages_and_the_end_of_the_block():
    """iommu_unmap(0x201000, 12K) -> iommu_pgsize: 4K x 3 -> skip entries 1..3, 3 add_page.
    pt.unmap_pages(0x3ff000, 4K, 5): idx 511, max_entries 1 -> num_entries 1."""
    w = _w()
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    before = _cleans(w)
    assert w.unmap(0x20_1000, 3 * K4) == 3 * K4
    _, l3 = _table_of(w, 0x20_0000, 2)
    assert [int(v) for v in l3.cpu[:5]] == [PA | PAGE_RW, 0, 0, 0, (PA + 4 * K4) | PAGE_RW]
    assert _delta(before, _cleans(w)) == {"alloc": (1, 64), "leaf": (509, 509),
                                          "install": (1, 1)}
    assert w.data.tlb.add_page == 3

    w = _w()
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    assert w.pt_unmap_pages(0x3F_F000, K4, 5) == K4
    _, l3 = _table_of(w, 0x20_0000, 2)
    assert int(l3.cpu[511]) == 0 and int(l3.cpu[510]) == (PA + 510 * K4) | PAGE_RW
    assert w.data.tlb.add_page == 1      # io_pgtable_tlb_add_page is called with a NULL gather


@pytest.mark.parametrize("pgcount,ret", [
    (1 << 32, 0),                        # (int)2^32 = 0: nothing skipped, returns 0 * size
    (1 << 31, (1 << 64) - (1 << 43)),    # INT_MIN: (size_t)INT_MIN * 4K mod 2^64
])
def test_pgcount_truncated_by_min_t_int(pgcount, ret):
    """num_entries = min_t(int, pgcount, 511) <= 0: `i >= 1 && i < 1 + num_entries` is never
    true, so all 512 entries are written; unmap_idx_start = 1 >= 0 returns num_entries * size
    with no tlb_add_page.  The block is now an equivalent table."""
    w = _w()
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    before = _cleans(w)
    assert w.pt_unmap_pages(0x20_1000, K4, pgcount) == ret
    _, l3 = _table_of(w, 0x20_0000, 2)
    assert np.array_equal(l3.cpu[:512], (PA + np.arange(512, dtype=np.uint64) * K4) | PAGE_RW)
    assert _delta(before, _cleans(w)) == {"alloc": (1, 64), "leaf": (512, 512),
                                          "install": (1, 1)}
    assert w.data.tlb.add_page == 0
    assert w.first_divergence(0x20_0000, SZ_2M) is None


# --- 1G blocks: split into L2 blocks, or twice down to pages ----------------------------------

def test_unmap_2m_inside_a_1g_block_splits_into_l2_blocks():
    """quirks=hd, prot rwcx: block = nG|UNPRIV|AttrIdx 1 (1<<2)|SH_IS (3<<8)|AF|XN (3<<53)
    |DBM (1<<51) = 0x0068000000000f44 | type 1.  The split's L2 entries are blocks (type 1)
    with the same attributes, entry i -> PA + i * 2M; entry 1 (0x40200000) is 0."""
    w = _w(quirks=QUIRK_BITS["hd"])
    prot = O.parse_prot("rwcx")
    assert w.map(0x4000_0000, PA, SZ_1G, prot) == 0
    attrs = 0x0068_0000_0000_0F44
    assert _raw(w, 0x4000_0000, 1) == PA | attrs | 1            # L1[1], a 1G block
    before = _cleans(w)
    assert w.unmap(0x4020_0000, SZ_2M) == SZ_2M
    _, l2 = _table_of(w, 0x4000_0000, 1)
    assert l2.lvl == 2
    want = np.array([0 if i == 1 else (PA + i * SZ_2M) | attrs | 1 for i in range(512)],
                    dtype=np.uint64)
    assert np.array_equal(l2.cpu[:512], want) and np.array_equal(l2.mem[:512], want)
    assert _delta(before, _cleans(w)) == {"alloc": (1, 64), "leaf": (511, 511),
                                          "install": (1, 1)}
    assert w.first_divergence(0x4000_0000, SZ_1G) is None
    assert w.smmu_walk(0x4020_0000).fault == "translation"
    walk = w.smmu_walk(0x7FFF_F000)
    assert walk.ok and walk.level == 2 and walk.oa == PA + SZ_1G - K4


def test_unmap_4k_inside_a_1g_block_splits_twice():
    """split(lvl 2): size 4K != 2M -> nothing skipped, 512 L2 blocks, installed, then
    __arm_lpae_unmap at L2 finds block 0 and splits it again (lvl 3), skipping entry 1."""
    w = _w()
    assert w.map(0x4000_0000, PA, SZ_1G) == 0
    before, tables = _cleans(w), w.live_tables()
    assert w.unmap(0x4000_1000, K4) == K4
    assert w.live_tables() == tables + 2
    _, l2 = _table_of(w, 0x4000_0000, 1)
    assert int(l2.cpu[0]) & 3 == 3                                  # now a table
    assert [int(v) for v in l2.cpu[1:3]] == [(PA + SZ_2M) | ATTRS_RW | 1,
                                             (PA + 2 * SZ_2M) | ATTRS_RW | 1]
    _, l3 = _table_of(w, 0x4000_0000, 2)
    assert [int(v) for v in l3.cpu[:3]] == [PA | PAGE_RW, 0, (PA + 2 * K4) | PAGE_RW]
    assert _delta(before, _cleans(w)) == {"alloc": (2, 128), "leaf": (512 + 511, 512 + 511),
                                          "install": (2, 2)}
    assert w.data.tlb.add_page == 1
    assert w.first_divergence(0x4000_0000, SZ_1G) is None


def test_page_size_larger_than_the_block_reaches_the_lvl4_warn():
    """64K granule, ias 36 (start level 2, 512M blocks), oas 52 (4T advertised).  unmap 4T at
    a 512M block: split(lvl 3) with size 4T != 64K skips nothing (8192 pages) and goes on at
    L3, where page 0 is a leaf whose size is not 4T: split(lvl 4) -> WARN_ON, return 0."""
    w = _w(granule=1 << 16, ias=36, oas=52)
    assert w.geometry.start_level == 2 and w.geometry.pgsize_bitmap >> 42 & 1
    assert w.map(0, PA, 1 << 29) == 0
    before = _cleans(w)
    assert w.pt_unmap_pages(0, 1 << 42, 1) == 0
    assert [e.site for e in w.events.events if e.kind == "WARN"] == \
        ["arm_lpae_split_blk_unmap:lvl4"]
    assert _delta(before, _cleans(w)) == {"alloc": (1, 65536 // 64), "leaf": (8192, 8192),
                                          "install": (1, 1)}
    walk = w.smmu_walk(0x1234_5678)
    assert walk.ok and walk.level == 3 and walk.oa == PA + 0x1234_5678
    assert w.data.tlb.add_page == 0


# --- the alloc failpoint ----------------------------------------------------------------------

def test_alloc_failure_leaves_the_block_and_returns_0():
    w = _w()
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    before, tables = _cleans(w), w.live_tables()
    w.fail("alloc")
    assert w.unmap(0x20_1000, K4) == 0                  # "return 0; /* Bytes unmapped */"
    assert [f.site for f in w.failpoints.fired] == ["alloc"]
    assert _raw(w, 0x20_0000, 2) == BLOCK_RW and _raw(w, 0x20_0000, 2, "mem") == BLOCK_RW
    assert w.live_tables() == tables and _delta(before, _cleans(w)) == {}
    assert w.events.events == [] and w.data.tlb.add_page == 0


def test_alloc_failure_in_the_second_split_keeps_the_first():
    """1G block, unmap 4K, second allocation fails: the first split (1G -> 512 x 2M) is
    already installed, the inner one returns 0, so does the unmap; every page still maps."""
    w = _w()
    assert w.map(0x4000_0000, PA, SZ_1G) == 0
    w.fail("alloc", nth=2)
    assert w.unmap(0x4000_1000, K4) == 0
    _, l2 = _table_of(w, 0x4000_0000, 1)
    assert l2.lvl == 2 and int(l2.cpu[0]) == PA | ATTRS_RW | 1
    walk = w.smmu_walk(0x4000_1234)
    assert walk.ok and walk.level == 2 and walk.oa == PA + 0x1234
    assert w.first_divergence(0x4000_0000, SZ_1G) is None


# --- other formats and walks ------------------------------------------------------------------

def test_mali_pages_are_type_1():
    """Mali: prot rw = HAP_READ|HAP_WRITE (3<<6) | SH_OS, no AF, no nG: 0x2c0; its L3 leaves
    are type 1 as well (iopte_leaf, __arm_lpae_init_pte)."""
    w = _w(fmt="mali", oas=40)
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    assert _raw(w, 0x20_0000, 2) == PA | 0x2C1
    assert w.unmap(0x20_1000, K4) == K4
    _, l3 = _table_of(w, 0x20_0000, 2)
    assert [int(v) for v in l3.cpu[:3]] == [PA | 0x2C1, 0, (PA + 2 * K4) | 0x2C1]
    assert w.first_divergence(0x20_0000, SZ_2M) is None


def test_coherent_walk_cleans_nothing():
    w = _w(coherent_walk=True)
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    assert w.unmap(0x20_1000, K4) == K4
    assert w.stats()["cmo_calls"] == 0
    _, l3 = _table_of(w, 0x20_0000, 2)
    assert int(l3.cpu[1]) == 0 and int(l3.cpu[2]) == (PA + 2 * K4) | PAGE_RW
    assert _raw(w, 0x20_0000, 2) & SW_SYNC == 0          # install_table returns before it


@pytest.mark.parametrize("granule,line", [(1 << 12, 32), (1 << 12, 128), (1 << 14, 64),
                                          (1 << 16, 64)])
def test_vectorised_loop_is_the_c_loop(monkeypatch, granule, line):
    """The split's loop of one-entry `__arm_lpae_init_pte` calls is performed a run at a
    time (`one_by_one`); performing it literally, call by call, gives the same tables (both
    views, dirty lines) and the same clean statistics."""
    def run(literal: bool):
        if literal:
            orig = iopa.__dict__["__arm_lpae_init_pte"]

            def one_at_a_time(data, paddr, prot, lvl, num, ptep, *, one_by_one=False):
                if not one_by_one:
                    return orig(data, paddr, prot, lvl, num, ptep)
                sz = iopa.ARM_LPAE_BLOCK_SIZE(lvl, data)
                for i in range(num):
                    orig(data, (paddr + i * sz) & ((1 << 64) - 1), prot, lvl, 1, ptep + i)
            monkeypatch.setitem(iopa.__dict__, "__arm_lpae_init_pte", one_at_a_time)
        w = _w(granule=granule, line=line)
        blk = w.block_size(2)
        ptes = granule // 8
        assert w.map(blk, PA, blk) == 0
        n = w.pt_unmap_pages(blk + 5 * granule, granule, 11)     # skip entries 5..15
        monkeypatch.undo()
        tables = [(t.pa, t.cpu.copy(), t.mem.copy(), t.dirty.copy())
                  for t in w.data.mem.live_tables()]
        return n, tables, w.stats(), ptes

    n1, t1, s1, ptes = run(False)
    n2, t2, s2, _ = run(True)
    assert n1 == n2 == 11 * granule
    assert s1 == s2 and s1["by_site"]["leaf"]["calls"] == 1 + ptes - 11
    assert len(t1) == len(t2)
    for a, b in zip(t1, t2, strict=True):
        assert a[0] == b[0]
        assert all(np.array_equal(x, y) for x, y in zip(a[1:], b[1:], strict=True))


# --- PATCH 1/2 on a 6.12 base: the split's leaves are __arm_lpae_init_pte's -------------------

def test_v1_defer_sync_pte_skips_the_split_leaf_cleans():
    """v1's `if (!cfg->coherent_walk && !cfg->defer_sync_pte)` in __arm_lpae_init_pte also
    covers the split's 511 calls, and no iotlb_sync_map follows an unmap: the SMMU reads the
    new table's zeros (cleaned at allocation) where the CPU has pages."""
    w = World(Config(split_blk_unmap=True), get_variant("v1"))
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    assert w.first_divergence(0x20_0000, SZ_2M) is None
    before = _cleans(w)
    assert w.unmap(0x20_1000, K4) == K4
    assert _delta(before, _cleans(w)) == {"alloc": (1, 64), "install": (1, 1)}
    mem, cpu = w.smmu_walk(0x20_0000), w.smmu_walk(0x20_0000, "cpu")
    assert cpu.ok and cpu.oa == PA
    assert mem.fault == "translation" and mem.level == 3
    assert w.first_divergence(0x20_0000, SZ_2M) is not None


def test_fixed_sw_sync_on_the_block_skips_the_install_clean():
    """`fixed` marks the leaves it cleaned with SW_SYNC; 6.12's arm_lpae_install_table(..,
    curr = blk_pte) returns before its clean when `old & ARM_LPAE_PTE_SW_SYNC` (line 377), so
    memory keeps the block and the SMMU still reaches the page just unmapped."""
    w = World(Config(split_blk_unmap=True), get_variant("fixed"))
    assert w.map(0x20_0000, PA, SZ_2M) == 0
    assert _raw(w, 0x20_0000, 2) == BLOCK_RW | SW_SYNC
    before = _cleans(w)
    assert w.unmap(0x20_1000, K4) == K4
    assert _delta(before, _cleans(w)) == {"alloc": (1, 64)}     # no leaf, no install clean
    assert _raw(w, 0x20_0000, 2) & 3 == 3                        # CPU: the new table
    # memory: still the block, with the mark `fixed` set before its clean
    assert _raw(w, 0x20_0000, 2, "mem") == BLOCK_RW | SW_SYNC
    walk = w.smmu_walk(0x20_1000)
    assert walk.ok and walk.level == 2 and walk.oa == PA + K4


def test_scenario_runs_clean_under_reference_and_stale_under_v1():
    text = (f"{O.VERSION_LINE}\nconfig split=1\nmap 0x200000 0x80000000 2M\n"
            "unmap 0x201000 4K\nsmmu 0x200000\nsmmu 0x201000\n")
    sc = O.parse_scenario(text)
    assert sc.config == Config(split_blk_unmap=True)
    res = run_scenario(sc, get_variant("reference"))
    assert res.findings == []
    assert res.records[1].ref.ret == K4
    assert res.records[1].ref.cleans == {"alloc": [1, 64], "install": [1, 1],
                                         "leaf": [511, 511]}
    assert result_json(res)["config"]["split_blk_unmap"] is True
    v1 = run_scenario(sc, get_variant("v1"))
    assert "stale-read" in {f.kind for f in v1.findings}
    # split=0: the default; the JSON has no such key, the unmap WARNs and returns 0
    off = run_scenario(O.parse_scenario(text.replace("split=1", "split=0")),
                       get_variant("reference"))
    assert "split_blk_unmap" not in result_json(off)["config"]
    assert off.records[1].ref.ret == 0


# --- the config key: text and binary ----------------------------------------------------------

def test_config_key_text_round_trip():
    sc = O.parse_scenario(f"{O.VERSION_LINE}\nconfig split=1 fmt=arm64-s2\n")
    assert sc.config == Config(fmt="arm64-s2", split_blk_unmap=True)
    text = O.format_scenario(sc)
    assert text.splitlines()[1].endswith(" split=1")
    assert O.parse_scenario(text) == sc
    # at its default the key is not printed: every existing file formats as before
    default = O.format_config(Config())
    assert "split" not in default
    assert O.format_config(O.parse_config(["split=0"])) == default
    assert O.parse_config_filter("split=1,granule=4K") == {"split_blk_unmap": True,
                                                          "granule": K4}
    with pytest.raises(ValueError, match="split"):
        O.parse_config(["split=yes"])


def test_config_key_binary_round_trip():
    on = Config(split_blk_unmap=True, quirks=QUIRK_BITS["ttbr1"])
    enc = codec.encode_config(on)
    assert enc == bytes([0, 0, 0, 0, 0x81, 0])           # quirks byte: ttbr1 bit 0, split bit 7
    assert codec.encode_config(Config()) == bytes(6)     # unchanged at the default
    sc = O.Scenario(on, (O.Unmap(0x201000, K4),))
    assert codec.decode(codec.encode(sc)) == sc
    assert O.parse_scenario(O.format_scenario(codec.decode(codec.encode(sc)))) == sc


def test_bit_7_of_the_quirks_byte_changes_nothing_else():
    """Old inputs: `encode` never set bit 7, so they decode as before; of any byte string,
    bit 7 of byte 4 decides split_blk_unmap and nothing else (no byte moves)."""
    r = np.random.default_rng(7)
    for _ in range(500):
        data = bytearray(r.integers(0, 256, int(r.integers(5, 80))).astype(np.uint8).tobytes())
        a = codec.decode(bytes(data))
        data[4] ^= 0x80
        b = codec.decode(bytes(data))
        assert a.config.split_blk_unmap != b.config.split_blk_unmap
        assert a.config.with_(split_blk_unmap=False) == b.config.with_(split_blk_unmap=False)
        assert a.ops == b.ops
        assert codec.decode(codec.encode(a)) == a
