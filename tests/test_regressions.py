"""One regression test per historical io-pgtable-arm bug (kernel-semantics §6.1 - §6.8).

Each test is written so that it fails if the bug were reintroduced; where the model has a
switch for the old behaviour, both settings are checked, and where it has none, the old code
is put back with monkeypatch to show that the check catches it.
"""

import pytest

import model.io_pgtable_arm as iopt
import model.pte as mpte
from model import Config, KernelBug, World, WorldCrashed

K4, K64 = 1 << 12, 1 << 16
SZ_2M, SZ_1G = 1 << 21, 1 << 30
RW = 1 | 2
U64 = (1 << 64) - 1
ENOENT_AS_SIZE_T = (1 << 64) - 2          # (size_t)-ENOENT, ENOENT = 2


# --- §6.1: __arm_lpae_unmap returns (size_t)-ENOENT ------------------------------------------

def test_6_1_enoent_bug_double_unmap_hits_bug_on():
    """Map [0, 4K); iommu_unmap(0, 8K):
    chunk 1 = (4K, count 2): page 0 unmapped, hole at index 1 -> returns 4K;
    chunk 2 = (4K, count 1) at 4K: hole at the first entry -> 2^64-2;
    iova = 4K + 2^64-2 = 0xffe, unmapped = 0xffe < 8K -> iommu_pgsize(0xffe, ..) has
    __ffs(0xffe) = 1 -> pgsizes & 0b11 == 0 -> BUG_ON."""
    w = World(Config(enoent_bug=True))
    assert w.map(0, 0x8000_0000, K4) == 0
    with pytest.raises(KernelBug) as exc:
        w.unmap(0, 2 * K4)
    assert exc.value.site == "iommu_pgsize"
    assert w.crashed is not None
    assert any(e.kind == "BUG" and e.site == "iommu_pgsize" for e in w.events.events)
    with pytest.raises(WorldCrashed):
        w.map(0x10000, 0x10000, K4)


def test_6_1_enoent_bug_first_chunk_hole_returns_minus_enoent():
    """Map only [4K, 8K); iommu_unmap(0, 8K): chunk 1 = (4K, count 2) at 0 finds a hole at
    its first entry -> 2^64-2 >= 8K ends the loop; iommu_unmap returns 2^64-2 and the page
    at 4K is left mapped."""
    w = World(Config(enoent_bug=True))
    assert w.map(K4, 0x8000_1000, K4) == 0
    assert w.unmap(0, 2 * K4) == ENOENT_AS_SIZE_T
    assert w.crashed is None
    assert w.pt_iova_to_phys(K4 + 0x10) == 0x8000_1010
    # and on a completely empty table the PGD entry itself is the hole
    w2 = World(Config(enoent_bug=True))
    assert w2.unmap(0, K4) == ENOENT_AS_SIZE_T


def test_6_1_fixed_unmap_returns_what_it_unmapped():
    """Same double unmap with the fix: chunk 1 returns 4K, chunk 2 returns 0 -> stop."""
    w = World(Config(enoent_bug=False))
    assert w.map(0, 0x8000_0000, K4) == 0
    assert w.unmap(0, 2 * K4) == K4
    assert w.crashed is None
    assert w.pt_iova_to_phys(0x10) == 0
    w2 = World(Config(enoent_bug=False))
    assert w2.map(K4, 0x8000_1000, K4) == 0
    assert w2.unmap(0, 2 * K4) == 0
    assert w2.pt_iova_to_phys(K4) == 0x8000_1000


# --- §6.2: concatenated PGD index -> arm_lpae_max_entries ------------------------------------

S2_CONCAT = Config(fmt="arm64-s2", granule=K4, ias=40, oas=40)


def check_concat_pgd_block(config=S2_CONCAT):
    """Map and unmap 1 GiB blocks in the second page of a concatenated PGD; return the
    list of problems (empty when the kernel behaves).

    4K, ias = oas = 40: PGD of 2 concatenated pages = 1024 entries at level 1 (1 GiB each).
    IPA 512 GiB = 2^39 -> index 512 (the first entry of page 2): max_entries = 512 - (512 &
    511) = 512.  IPA 2^40 - 1 GiB -> index 1023: max_entries = 512 - 511 = 1 (the selftest's
    "last largest page of the IAS").  Pre-fix, max_entries = 512 - idx = 0 or -511."""
    problems = []
    w = World(config)
    for ipa, pa in ((1 << 39, 0x4000_0000), ((1 << 40) - SZ_1G, 0x8000_0000)):
        ret, mapped = w.pt_map_pages(ipa, pa, SZ_1G, 1, RW)
        if ret != 0 or mapped != SZ_1G:
            problems.append(f"map {ipa:#x}: ret={ret} mapped={mapped:#x}")
        if w.pt_iova_to_phys(ipa + 0x1234_5678) != pa + 0x1234_5678:
            problems.append(f"iova_to_phys {ipa:#x}")
        walk = w.smmu_walk(ipa + 0x1234_5678)
        if not (walk.ok and walk.oa == pa + 0x1234_5678 and walk.level == 1):
            problems.append(f"smmu walk {ipa:#x}: {walk.describe()}")
        if w.first_divergence(ipa, SZ_1G) is not None:
            problems.append(f"stale entry after map {ipa:#x}")
        n = w.unmap(ipa, SZ_1G)
        if n != SZ_1G:
            problems.append(f"unmap {ipa:#x} returned {n:#x}")
        if w.pt_iova_to_phys(ipa) != 0 or w.smmu_walk(ipa).ok:
            problems.append(f"{ipa:#x} still mapped after unmap")
    if any(e.kind != "WARN" for e in w.events.events):
        problems.append(f"memory events: {w.events.events}")
    return problems


def test_6_2_concatenated_pgd_block_map_unmap():
    w = World(S2_CONCAT)
    assert w.geometry.pgd_entries == 1024 and w.geometry.start_level == 1
    assert check_concat_pgd_block() == []


def test_6_2_check_detects_the_pre_fix_max_entries(monkeypatch):
    # pre-d71fa842d33c: max_entries = PTES_PER_TABLE - idx (4K: 512 - idx)
    monkeypatch.setattr(iopt, "arm_lpae_max_entries", lambda i, d: 512 - i)
    problems = check_concat_pgd_block()
    assert problems
    assert any(p.startswith("map 0x8000000000") for p in problems)


def test_6_2_concatenated_pgd_4k_pages_up_to_the_page_boundary():
    """A 4K-page run ending just below IPA 512 GiB and one starting at it: the core splits
    at the PGD-page boundary (max_entries is per page), both halves translate."""
    w = World(S2_CONCAT)
    iova = (1 << 39) - 4 * K4
    assert w.map(iova, 0x1000_0000, 8 * K4) == 0
    oa, ok = w.translate_range(iova, 8, K4)
    assert ok.all()
    assert [int(x) for x in oa] == [0x1000_0000 + i * K4 for i in range(8)]
    assert w.unmap(iova, 8 * K4) == 8 * K4
    _, ok = w.translate_range(iova, 8, K4)
    assert not ok.any()


# --- §6.3 / §6.4: concatenation rules and their determinism ----------------------------------

def _geo(w):
    g = w.geometry
    return g.levels, g.start_level, g.pgd_bits, g.pgd_entries


def test_6_4_concat_decision_is_a_pure_function_of_the_config():
    # 4K ias 40 oas 40: start 0, pgd_bits 1, oas 40 -> concatenate: (3, 1, 10, 1024)
    # 4K ias 40 oas 48: no concatenation: (4, 0, 1, 2)
    c_cat = Config(fmt="arm64-s2", granule=K4, ias=40, oas=40)
    c_nocat = Config(fmt="arm64-s2", granule=K4, ias=40, oas=48)
    others = [Config(fmt="arm64-s2", granule=1 << 14, ias=48, oas=48, page_size=1 << 14),
              Config(fmt="arm64-s2", granule=K4, ias=42, oas=42),
              Config(fmt="arm64-s1", granule=K64, ias=52, oas=52, page_size=K64),
              Config(fmt="arm64-s2", granule=K4, ias=48, oas=48)]
    seen = []
    for _ in range(2):
        for c in [c_cat, c_nocat] + others + [c_nocat, c_cat]:
            seen.append((c, _geo(World(c))))
    for c, geo in seen:
        if c == c_cat:
            assert geo == (3, 1, 10, 1024)
        elif c == c_nocat:
            assert geo == (4, 0, 1, 2)
    # every build of the same config gave the same geometry
    by_config = {}
    for c, geo in seen:
        by_config.setdefault(c, set()).add(geo)
    assert all(len(v) == 1 for v in by_config.values())


def test_6_3_16k_oas40_concatenates_only_under_the_mandatory_rule():
    # 16K ias 40: va 26 -> 3 levels, start 1, pgd_bits 4 (16 entries)
    # mandatory (R_SRKBC): 16K, start 1, oas 40 -> concat: pgd_bits 4 + 11 = 15, start 2
    # legacy: start level is not 0 -> never
    base = dict(fmt="arm64-s2", granule=1 << 14, ias=40, oas=40, page_size=1 << 14)
    wm = World(Config(concat="mandatory", **base))
    wl = World(Config(concat="legacy", **base))
    assert _geo(wm) == (2, 2, 15, 32768)
    assert _geo(wl) == (3, 1, 4, 16)


def test_6_3_legacy_concatenates_where_not_mandated():
    # 4K ias 40 oas 48: legacy concatenates (start 0, 2 <= 16), mandatory does not (oas 48)
    base = dict(fmt="arm64-s2", granule=K4, ias=40, oas=48)
    assert _geo(World(Config(concat="legacy", **base))) == (3, 1, 10, 1024)
    assert _geo(World(Config(concat="mandatory", **base))) == (4, 0, 1, 2)


@pytest.mark.parametrize("concat", ["legacy", "mandatory"])
def test_6_3_16k_concatenated_pgd_maps_both_halves(concat):
    """16K ias 40 oas 40 (32768-entry level-2 PGD under the mandatory rule): a 32M block at
    the first IPA of the last PGD page and one at the very top of the IAS."""
    w = World(Config(fmt="arm64-s2", granule=1 << 14, ias=40, oas=40, page_size=1 << 14,
                     concat=concat))
    sz = 1 << 25
    for ipa in (15 << 36, (1 << 40) - sz):     # PGD page 15 starts at 15 * 2048 * 32M
        ret, mapped = w.pt_map_pages(ipa, 0x4000_0000, sz, 1, RW)
        assert (ret, mapped) == (0, sz)
        assert w.smmu_walk(ipa + 0x123).oa == 0x4000_0123
        assert w.pt_unmap_pages(ipa, sz, 1) == sz


# --- §6.5: table descriptors encoded with paddr_to_iopte -------------------------------------

C_52 = Config(fmt="arm64-s1", granule=K64, ias=48, oas=52, page_size=K64, table_base=1 << 48)
# L1 idx (iova >> 42) & 63 = 4, L2 idx (iova >> 29) & 8191 = 0x11a2, L3 idx (>> 16) = 0x1678
IOVA_52 = 0x1234_5678_0000
PA_52 = (1 << 50) | (3 << 48) | 0x7_0000  # output address above 2^48 too


def check_52bit_tables():
    """Map a 64K page with every table above 2^48; return the problems found."""
    problems = []
    w = World(C_52)
    if w.map(IOVA_52, PA_52, K64) != 0:
        return ["map failed"]
    walk = w.smmu_walk(IOVA_52 + 0x1234)
    tables = [s.table_pa for s in walk.steps]
    if not all(pa >= 1 << 48 for pa in tables):
        problems.append(f"a table below 2^48: {[hex(t) for t in tables]}")
    if not (walk.ok and walk.oa == PA_52 + 0x1234):
        problems.append(f"smmu walk: {walk.describe()}")
    if w.pt_iova_to_phys(IOVA_52 + 0x1234) != PA_52 + 0x1234:
        problems.append("iova_to_phys")
    for cur, nxt in zip(walk.steps, walk.steps[1:], strict=False):
        # table descriptor: PA[47:16] in place, PA[51:48] in bits 15:12, type 3
        want = (nxt.table_pa & ((1 << 48) - 1)) | ((nxt.table_pa >> 48) << 12) | 3
        if cur.desc & ~(1 << 63) != want:
            problems.append(f"table desc {cur.desc:#x} != {want:#x}")
    if any(e.kind == "bad-pointer" for e in w.events.events):
        problems.append("bad pointer")
    return problems


def test_6_5_tables_above_2_48_are_reachable():
    w = World(C_52)
    # 64K, ias 48: va 32 -> 3 levels from 1, PGD 64 entries; all allocations from 2^48
    assert w.data.pgd.pa >= 1 << 48
    assert check_52bit_tables() == []


@pytest.mark.parametrize("old_encoding", [
    lambda pa, granule: pa,                               # __pa(table) | TABLE
    lambda pa, granule: pa & 0x0000_FFFF_FFFF_F000,       # ... masked to bits 47:12
], ids=["identity", "identity-and-mask"])
def test_6_5_check_detects_the_pre_fix_table_encoding(monkeypatch, old_encoding):
    monkeypatch.setattr(iopt, "paddr_to_iopte", old_encoding)
    monkeypatch.setattr(mpte, "paddr_to_iopte", old_encoding)
    problems = check_52bit_tables()
    assert any(p.startswith("smmu walk") for p in problems)
    assert "iova_to_phys" in problems


# --- §6.6: no split on unmap ------------------------------------------------------------------

def test_6_6_partial_unmap_of_a_block_unmaps_nothing():
    w = World(Config(fmt="arm64-s1"))
    assert w.map(SZ_2M, 0x4000_0000, SZ_2M) == 0
    assert w.unmap(SZ_2M + K4, K4) == 0
    # the whole block still translates, including the 4K that was asked to go
    oa, ok = w.translate_range(SZ_2M, 512, K4)
    assert ok.all()
    assert int(oa[1]) == 0x4000_1000 and int(oa[511]) == 0x4000_0000 + 511 * K4
    assert w.pt_iova_to_phys(SZ_2M + K4 + 0x10) == 0x4000_1010
    warns = [e for e in w.events.events if e.kind == "WARN" and "partial-block" in e.site]
    assert len(warns) == 1
    # WARN_ONCE: a second partial unmap (first page) warns no more, and still unmaps nothing
    assert w.unmap(SZ_2M, K4) == 0
    assert len([e for e in w.events.events if "partial-block" in e.site]) == 1
    assert w.smmu_walk(SZ_2M).oa == 0x4000_0000
    # the whole block can still be unmapped at its own size
    assert w.unmap(SZ_2M, SZ_2M) == SZ_2M
    assert not w.smmu_walk(SZ_2M).ok


# --- §6.7: non-coherent unmap of leaves and tables together ---------------------------------

def test_6_7_unmap_mixing_blocks_and_a_table():
    """[0, 2M) block, [2M, 4M) 512 4K pages (one L3 table), [4M, 6M) block; unmap(0, 6M):
    iommu_pgsize(0, 0, 6M) = (2M, count 3): one L2 batch of 3 entries, the middle one a
    table: it is cleared + cleaned at once (1 call, 1 line), its L3 table freed, then the 3
    entries are cleared with one clean (1 call; entries 0..2 share one 64-byte line)."""
    w = World(Config(fmt="arm64-s1", line=64))
    assert w.map(0, 0x4000_0000, SZ_2M) == 0
    # paddr skewed by 4K from the iova's 2M alignment -> 4K pages, count 512
    assert w.map(SZ_2M, 0x8000_1000, SZ_2M) == 0
    assert w.map(2 * SZ_2M, 0x4040_0000, SZ_2M) == 0
    # tables: PGD + L1 + L2 + one L3 = 4
    assert w.live_tables() == 4
    l3_pa = w.smmu_walk(SZ_2M).steps[-1].table_pa
    oa, ok = w.translate_range(0, 3 * 512, K4)
    assert ok.all()
    before = w.stats()["by_site"]["unmap"]

    assert w.unmap(0, 3 * SZ_2M) == 3 * SZ_2M

    assert w.first_divergence(0, 3 * SZ_2M) is None
    _, ok = w.translate_range(0, 3 * 512, K4)
    assert not ok.any()
    assert w.live_tables() == 3                     # the L3 table is gone
    assert w.data.mem.lookup(l3_pa).freed
    after = w.stats()["by_site"]["unmap"]
    assert after["calls"] - before["calls"] == 2
    assert after["lines"] - before["lines"] == 2
    assert not any(e.kind.startswith(("uaf", "oob")) for e in w.events.events)


def test_6_7_walker_sees_the_cleared_entries_from_memory():
    """Table entry and block entry cleared in one unmap: the SMMU, reading memory only,
    must fault at level 2 on a zero descriptor for both, and never touch the freed table."""
    w = World(Config(fmt="arm64-s1", line=64))
    assert w.map(0, 0x8000_1000, SZ_2M) == 0        # 512 4K pages: a table (L3)
    assert w.map(SZ_2M, 0x4020_0000, SZ_2M) == 0    # a block
    assert w.live_tables() == 4                     # PGD, L1, L2, L3
    assert w.unmap(0, 2 * SZ_2M) == 2 * SZ_2M
    assert w.live_tables() == 3
    assert w.first_divergence(0, 2 * SZ_2M) is None
    for iova in (0, 0x1000, SZ_2M, SZ_2M + 0x1000):
        walk = w.smmu_walk(iova)
        assert walk.fault == "translation" and walk.level == 2, walk.describe()
        assert walk.steps[-1].desc == 0
    assert not any(e.kind.startswith(("uaf", "oob")) for e in w.events.events)


# --- §6.8: minimum 64-byte PGD ------------------------------------------------------------------

@pytest.mark.parametrize("fmt,granule,ias,oas,pgd_bytes", [
    ("arm64-s1", K4, 40, 40, 16),      # 4K ias 40: 2 entries
    ("arm64-s1", K4, 32, 32, 32),      # 4K ias 32: 4 entries
    ("arm64-s1", 1 << 14, 48, 48, 16),
    ("arm64-s1", K64, 44, 44, 32),
    ("arm64-s1", K64, 32, 32, 64),     # exactly 64
    ("arm64-s2", K4, 44, 44, 256),
])
def test_6_8_pgd_allocation_is_at_least_64_bytes(fmt, granule, ias, oas, pgd_bytes):
    w = World(Config(fmt=fmt, granule=granule, ias=ias, oas=oas, page_size=granule))
    pgd = w.data.pgd
    assert pgd.entries * 8 == pgd_bytes
    assert pgd.alloc_bytes == max(pgd_bytes, 64)
    assert pgd.pa % 64 == 0
    # the zeroed PGD reaches memory with the allocation's clean: one line for a tiny PGD
    assert w.stats()["by_site"]["alloc"]["lines"] == -(-pgd_bytes // 64)
    assert w.first_divergence(0, 1 << ias) is None
