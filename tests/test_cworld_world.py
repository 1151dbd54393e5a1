"""CWorld: the kernel's io-pgtable-arm.c (Debian 6.12), built in userspace, behind the World API.

Expected values come from the 6.12 C source and the ARM LPAE descriptor format worked out by
hand in the comments, from the Python model (an independent transliteration) run side by
side, or from properties.  Patches are unified diffs against the 6.12
drivers/iommu/io-pgtable-arm.c (made with `diff -u` on a copy; context checked against the
real file by test_patch_context_is_the_real_file).

Default config (model.config.Config()): arm64-s1, 4K granule, ias = oas = 48, 64-byte lines,
non-coherent walk.  Geometry: 9 bits per level, 48 - 12 = 36 index bits = 4 levels from L0,
PGD 512 entries (one 4K page).  IOVA 0x40000000 = 1 GiB: L0 index 0x40000000 >> 39 = 0,
L1 index (>> 30) & 511 = 1, L2 index (>> 21) & 511 = 0, L3 index (>> 12) & 511 = 0 (and 1 for
the second page at 0x40001000).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from kernel_patches import BUG_ON_PATCH, NO_LEAF_CLEAN_PATCH

from cworld.source import ARM_C
from cworld.world import CTL_LABEL_WORK
from fuzz.lang.ops import parse_scenario
from fuzz.run.executor import run_scenario
from fuzz.run.plugins import load_variant
from fuzz.tools.bench import count_bytecodes
from model import World
from model.config import Config
from model.errors import BudgetExhausted, KernelBug, WorldCrashed
from model.variants import V1

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seed" / "patch-v1-review.txt"
SG_LIST = ROOT / "corpus" / "differential" / "s1-4k-sg-list.ops"
CONCAT = ROOT / "crashes" / "v1" / "concat-pgd-page-boundary.ops"
OVERWALK = ROOT / "crashes" / "v1" / "64k-48bit-overwalk.ops"

PAGE = 4096
SZ_2M = 2 << 20
ENOMEM = 12
POISON_FREED = 0x6B6B_6B6B_6B6B_6B6B      # slab's POISON_FREE byte, 8 times
SW_SYNC = 1 << 55                          # ARM_LPAE_PTE_SW_SYNC
TYPE_TABLE = 3                             # ARM_LPAE_PTE_TYPE_TABLE
# arm_lpae_prot_to_pte (6.12) for ARM_64_LPAE_S1, prot = IOMMU_READ | IOMMU_WRITE, no quirks:
#   nG (bit 11) = 0x800                       stage 1
#   AP_UNPRIV (bit 6) = 0x40                  !(prot & IOMMU_PRIV); no AP_RDONLY: writable
#   AttrIndx 0 (NC)                           neither IOMMU_MMIO nor IOMMU_CACHE
#   SH_OS (2 << 8) = 0x200                    !(prot & IOMMU_CACHE): outer shareable
#   AF (bit 10) = 0x400                       not Mali
S1_RW_ATTRS = 0x800 | 0x40 | 0x200 | 0x400     # = 0xe40
PAGE_DESC = S1_RW_ATTRS | 3                    # ARM_LPAE_PTE_TYPE_PAGE at level 3
BLOCK_DESC = S1_RW_ATTRS | 1                   # ARM_LPAE_PTE_TYPE_BLOCK at levels 1, 2

IOVA, PADDR = 0x4000_0000, 0x8000_0000


def hunk_new_line(patch: str, added: str) -> int:
    """The line number, in the patched file, of the added line starting with `added`."""
    m = re.search(r"^@@ -\d+(?:,\d+)? \+(\d+)", patch, re.MULTILINE)
    line = int(m.group(1))
    for ln in patch[m.end():].split("\n", 1)[1].splitlines():
        if ln.startswith("+" + added):
            return line
        if ln[:1] in (" ", "+", ""):
            line += 1
    raise AssertionError(f"{added!r} is not added by the patch")



# __arm_lpae_unmap's "Find and handle non-leaf entries" loop wraps around instead of ending:
# with every entry of the batch live (none is 0, so the WARN_ON(!pte) break never comes) it
# reads ptep[0], ptep[1], ptep[0], ... forever.
UNMAP_CYCLE_PATCH = """\
--- a/drivers/iommu/io-pgtable-arm.c
+++ b/drivers/iommu/io-pgtable-arm.c
@@ -666,7 +666,7 @@
 \t\tnum_entries = min_t(int, pgcount, max_entries);

 \t\t/* Find and handle non-leaf entries */
-\t\tfor (i = 0; i < num_entries; i++) {
+\t\tfor (i = 0; i < num_entries; i = (i + 1) % num_entries) {
 \t\t\tpte = READ_ONCE(ptep[i]);
 \t\t\tif (WARN_ON(!pte))
 \t\t\t\tbreak;
"""

# arm_lpae_iova_to_phys spins on the entry it just read, as long as it is not zero.
SPIN_PATCH = """\
--- a/drivers/iommu/io-pgtable-arm.c
+++ b/drivers/iommu/io-pgtable-arm.c
@@ -739,6 +739,8 @@
 \t\t/* Grab the IOPTE we're interested in */
 \t\tptep += ARM_LPAE_LVL_IDX(iova, lvl, data);
 \t\tpte = READ_ONCE(*ptep);
+\t\twhile (READ_ONCE(*ptep))
+\t\t\t;\t/* iopgfuzz test: spin on a live entry forever */

 \t\t/* Valid entry? */
 \t\tif (!pte)
"""

# arm_lpae_iova_to_phys reads, at every level, the entry one past a whole table (before
# indexing: ptep is the table's first entry).
OOB_PATCH = """\
--- a/drivers/iommu/io-pgtable-arm.c
+++ b/drivers/iommu/io-pgtable-arm.c
@@ -736,6 +736,9 @@
 \t\tif (!ptep)
 \t\t\treturn 0;

+\t\t/* iopgfuzz test: read one entry past a whole table */
+\t\t(void)READ_ONCE(ptep[ARM_LPAE_PTES_PER_TABLE(data)]);
+
 \t\t/* Grab the IOPTE we're interested in */
 \t\tptep += ARM_LPAE_LVL_IDX(iova, lvl, data);
 \t\tpte = READ_ONCE(*ptep);
"""

# ... and the entry just after the PGD (inside the PGD's page when the PGD is smaller).
OOB_PGD_PATCH = """\
--- a/drivers/iommu/io-pgtable-arm.c
+++ b/drivers/iommu/io-pgtable-arm.c
@@ -736,6 +736,10 @@
 \t\tif (!ptep)
 \t\t\treturn 0;

+\t\t/* iopgfuzz test: read the entry after the PGD (inside its page) */
+\t\tif (lvl == data->start_level)
+\t\t\t(void)READ_ONCE(ptep[ARM_LPAE_PGD_SIZE(data) / sizeof(*ptep)]);
+
 \t\t/* Grab the IOPTE we're interested in */
 \t\tptep += ARM_LPAE_LVL_IDX(iova, lvl, data);
 \t\tpte = READ_ONCE(*ptep);
"""


PATCHES = {"bug_on": BUG_ON_PATCH, "unmap_cycle": UNMAP_CYCLE_PATCH, "spin": SPIN_PATCH,
           "oob": OOB_PATCH, "oob_pgd": OOB_PGD_PATCH, "no_leaf_clean": NO_LEAF_CLEAN_PATCH}

MAP_SMMU = """\
# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=48 oas=48 quirks=none line=64 concat=mandatory enoent_bug=1
map 0x40000000 0x80000000 8K
smmu 0x40001000
"""


@pytest.fixture(scope="module")
def patch_files(real_tree, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("patches")
    out = {}
    for name, text in PATCHES.items():
        out[name] = d / f"{name}.patch"
        out[name].write_text(text)
    return out


@pytest.fixture(scope="module")
def upstream(real_tree):
    return load_variant("c:upstream")


@pytest.fixture(scope="module")
def seed(real_tree):
    return load_variant(f"c:{SEED}")


def c_patched(patch_files, name):
    return load_variant(f"c:{patch_files[name]}")


def test_patch_context_is_the_real_file(real_tree):
    lines = real_tree.path(ARM_C).read_text().splitlines()
    for name, text in PATCHES.items():
        m = re.search(r"^@@ -(\d+),(\d+)", text, re.MULTILINE)
        start = int(m.group(1))
        body = text[m.end():].split("\n", 1)[1].splitlines()
        old = [ln[1:] if ln else "" for ln in body if ln[:1] in (" ", "-", "")]
        assert len(old) == int(m.group(2)), name
        assert lines[start - 1:start - 1 + len(old)] == old, name


# --- map, unmap, free -------------------------------------------------------------------------


def table_pas(config: Config, n: int) -> list[int]:
    """model/memory.py alloc_table: a 4K table takes one page, aligned to 4K, in order."""
    return [config.table_base + i * PAGE for i in range(n)]


def test_map_two_pages(upstream):
    c = Config()
    w, m = upstream.make_world(c, None), World(c)
    assert w.map(IOVA, PADDR, 0x2000) == 0
    assert m.map(IOVA, PADDR, 0x2000) == 0
    pgd, l1, l2, l3 = table_pas(c, 4)
    assert w.data.pgd.pa == pgd
    assert w.live_tables() == 4
    assert w.table_view(c.table_base + 4 * PAGE) is None
    views = {}
    for pa in (pgd, l1, l2, l3):
        freed, view = w.table_view(pa)
        assert not freed and len(view) == 512
        views[pa] = view
        m_freed, m_view = m.table_view(pa)
        assert not m_freed and np.array_equal(view, m_view), hex(pa)
    # arm_lpae_install_table: descriptor = next table's pa | TYPE_TABLE, cleaned, then the CPU
    # copy gets SW_SYNC (software bit 55) so later walks do not clean it again
    assert views[pgd][0] == l1 | TYPE_TABLE | SW_SYNC
    assert views[l1][1] == l2 | TYPE_TABLE | SW_SYNC
    assert views[l2][0] == l3 | TYPE_TABLE | SW_SYNC
    # the two L3 entries, by hand: 0x80000000 | 0xe43 and 0x80001000 | 0xe43
    assert views[l3][0] == PADDR | PAGE_DESC == 0x8000_0E43
    assert views[l3][1] == (PADDR + PAGE) | PAGE_DESC
    assert np.count_nonzero(views[l3]) == 2
    assert sum(np.count_nonzero(v) for v in views.values()) == 5
    # what the SMMU reads (memory view): the tables were cleaned without SW_SYNC
    walk = w.smmu_walk(IOVA + PAGE, "mem")
    assert walk.fault is None and walk.oa == PADDR + PAGE and walk.level == 3
    assert [(s.lvl, s.table_pa, s.idx, s.desc) for s in walk.steps] == [
        (0, pgd, 0, l1 | TYPE_TABLE), (1, l1, 1, l2 | TYPE_TABLE), (2, l2, 0, l3 | TYPE_TABLE),
        (3, l3, 1, (PADDR + PAGE) | PAGE_DESC)]
    assert w.events.events == []


def test_map_clean_statistics(upstream):
    """6.12, non-coherent: __arm_lpae_alloc_pages dma_map_single()s each new table (the PGD
    at allocation, then L1, L2, L3): 4 calls of 4096 / 64 = 64 lines; arm_lpae_install_table
    cleans each new table descriptor (1 entry, 1 line): 3 calls; __arm_lpae_init_pte cleans
    the 2 leaf entries (16 bytes at the start of the L3 table, one line) in one call.
    __arm_lpae_map's clean of an existing table entry is skipped: SW_SYNC is set."""
    c = Config()
    w = upstream.make_world(c, None)
    assert w.map(IOVA, PADDR, 0x2000) == 0
    want = {"alloc": {"calls": 4, "lines": 4 * 64}, "install": {"calls": 3, "lines": 3},
            "table": {"calls": 0, "lines": 0}, "leaf": {"calls": 1, "lines": 1},
            "sync_map": {"calls": 0, "lines": 0}, "unmap": {"calls": 0, "lines": 0}}
    st = w.stats()
    assert st["by_site"] == want
    assert st["cmo_calls"] == 4 + 3 + 1 and st["lines_cleaned"] == 256 + 3 + 1
    assert st["warns"] == 0
    m = World(c)
    m.map(IOVA, PADDR, 0x2000)
    assert m.stats() == st


def test_unmap_8k_frees_no_table(upstream):
    c = Config()
    w = upstream.make_world(c, None)
    assert w.map(IOVA, PADDR, 0x2000) == 0
    assert w.unmap(IOVA, 0x2000) == 0x2000
    l3 = table_pas(c, 4)[3]
    assert w.live_tables() == 4
    freed, view = w.table_view(l3)
    assert not freed and not view.any()
    # __arm_lpae_clear_pte cleaned the two zeroed entries: the SMMU sees the hole
    walk = w.smmu_walk(IOVA, "mem")
    assert walk.fault is not None and walk.level == 3
    assert w.stats()["by_site"]["unmap"] == {"calls": 1, "lines": 1}


def test_block_over_table_frees_the_table(upstream):
    """A 2M block mapped over an L2 entry that points at an L3 table: arm_lpae_init_pte sees
    TYPE_TABLE, calls __arm_lpae_unmap(size = 2M) on it, which clears the entry and frees the
    L3 table (__arm_lpae_free_pgtable), then writes the block."""
    c = Config()
    results = []
    for w in (upstream.make_world(c, None), World(c)):
        assert w.map(IOVA, PADDR, 0x2000) == 0
        assert w.pt_map_pages(IOVA, PADDR, SZ_2M, 1) == (0, SZ_2M)
        pgd, l1, l2, l3 = table_pas(c, 4)
        freed, view = w.table_view(l3)
        assert freed
        assert len(view) == 512 and bool(np.all(view == np.uint64(POISON_FREED)))
        assert w.live_tables() == 3
        l2_view = w.table_view(l2)[1]
        assert l2_view[0] == PADDR | BLOCK_DESC == 0x8000_0E41
        walk = w.smmu_walk(IOVA + PAGE, "mem")
        assert walk.fault is None and walk.level == 2 and walk.oa == PADDR + PAGE
        assert not [e for e in w.events.events if e.kind == "WARN"]
        results.append(({pa: (w.table_view(pa)[0], w.table_view(pa)[1].tolist())
                          for pa in (pgd, l1, l2, l3)}, w.stats()))
    assert results[0] == results[1]


# --- failpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nth, live", [
    (1, 1),     # the L1 table's allocation fails: only the PGD exists
    (2, 2),     # the L2 table's: the PGD and the (installed, empty) L1 table remain
])
def test_alloc_failpoint(upstream, nth, live):
    c = Config()
    worlds = (upstream.make_world(c, None), World(c))
    for w in worlds:
        w.fail("alloc", nth=nth)
        assert w.map(IOVA, PADDR, 0x2000) == -ENOMEM
        assert [f.err for f in w.failpoints.fired] == [-ENOMEM]
        assert w.live_tables() == live
        assert w.pt_iova_to_phys(IOVA) == 0 and w.pt_iova_to_phys(IOVA + PAGE) == 0
        assert w.first_hole(IOVA, 0x2000) == IOVA
        assert w.first_hole(IOVA, 0x2000, "mem") == IOVA
    for pa in table_pas(c, live):
        assert np.array_equal(worlds[0].table_view(pa)[1], worlds[1].table_view(pa)[1])
    for w in worlds:                  # fired once: the next map succeeds
        assert w.map(IOVA, PADDR, 0x2000) == 0
        assert w.pt_iova_to_phys(IOVA + PAGE) == PADDR + PAGE


def test_alloc_failpoint_hits_match_the_model(upstream):
    c = Config()
    w, m = upstream.make_world(c, None), World(c)
    assert w.failpoints.hits.get("alloc", 0) == m.failpoints.hits.get("alloc", 0) == 0
    for x in (w, m):
        x.fail("alloc")
        x.map(IOVA, PADDR, 0x2000)
    assert [f.hit for f in w.failpoints.fired] == [f.hit for f in m.failpoints.fired] == [1]


def test_sync_map_failpoint_has_no_c_counterpart(seed):
    c = Config()
    w = seed.make_world(c, None)
    assert w.has_pt_sync_map
    w.fail("sync_map")
    assert w.events.events[-1].kind == "note"
    assert w.events.events[-1].site == "fail:sync_map"
    assert w.failpoints.armed == {}
    assert w.map(IOVA, PADDR, 0x2000) == 0          # the driver's sync runs, nothing fails
    assert w.failpoints.fired == []
    assert w.smmu_walk(IOVA + PAGE, "mem").oa == PADDR + PAGE
    m = World(c, V1())                               # the model arms it
    m.fail("sync_map")
    assert "sync_map" in m.failpoints.armed


# --- BUG_ON, the work budget ----------------------------------------------------------------


def test_bug_on_crashes_the_world(patch_files):
    w = c_patched(patch_files, "bug_on").make_world(Config(), None)
    assert w.pt_map_pages(IOVA, PADDR, PAGE, 1) == (0, PAGE)     # pgcount 1: no BUG
    line = hunk_new_line(BUG_ON_PATCH, "\tBUG_ON(pgcount == 12345);")
    assert line == 522          # new side from 519: prot, iaext, blank, BUG_ON
    with pytest.raises(KernelBug) as e:
        w.pt_map_pages(IOVA + SZ_2M, PADDR, PAGE, 12345)
    assert e.value.site == f"arm_lpae_map_pages@io-pgtable-arm.c:{line}"
    assert w.events.events[-1].kind == "BUG"
    assert w.crashed is not None
    with pytest.raises(WorldCrashed):
        w.map(IOVA + 2 * SZ_2M, PADDR, PAGE)
    with pytest.raises(WorldCrashed):
        w.pt_iova_to_phys(IOVA)


def test_endless_loop_exhausts_the_budget(patch_files):
    v = c_patched(patch_files, "unmap_cycle")
    w = v.make_world(Config(), 1 << 14)
    assert w.map(IOVA, PADDR, 0x2000) == 0
    t0 = time.monotonic()
    with pytest.raises(BudgetExhausted):
        w.unmap(IOVA, 0x2000)         # one __arm_lpae_unmap call with pgcount 2
    assert time.monotonic() - t0 < 10
    sc = parse_scenario(MAP_SMMU.replace("smmu 0x40001000", "unmap 0x40000000 8K\n"
                                         "smmu 0x40001000"))
    r = run_scenario(sc, v)
    assert r.exhausted
    assert len(r.records) == 1                       # the map; the unmap was cut short
    assert not [f for f in r.findings if f.kind == "model-error"]


SPIN_SCRIPT = """
import sys
from fuzz.run.plugins import load_variant
from model.config import Config
from model.errors import BudgetExhausted
w = load_variant("c:" + sys.argv[1]).make_world(Config(), 1 << 14)
assert w.map(0x40000000, 0x80000000, 0x1000) == 0
try:
    w.pt_iova_to_phys(0x40000000)
except BudgetExhausted:
    print("exhausted")
"""


def test_spin_on_one_entry_exhausts_the_budget(patch_files):
    c_patched(patch_files, "spin")          # built here, not inside the timed child
    try:
        r = subprocess.run([sys.executable, "-c", SPIN_SCRIPT, str(patch_files["spin"])],
                           cwd=ROOT, capture_output=True, text=True, timeout=6)
    except subprocess.TimeoutExpired:
        pytest.fail("the C world spun for 6 s without exhausting its work budget")
    assert r.stdout.strip() == "exhausted", r.stdout + r.stderr


def map_work(make, n_blocks: int) -> tuple[int, int]:
    """(Python bytecodes, entries the runtime's labelling scanned) of one map of n_blocks x 2M
    with paddr one page off alignment: the core maps 4K pages, one map_pages call (and one new
    L3 table) per 2M.  Counts of work, not time: the same on every run and machine."""
    w = make()
    label0 = w._mem._ctl[CTL_LABEL_WORK]
    box = {}
    nbc = count_bytecodes(lambda: box.setdefault("ret", w.map(IOVA, PADDR + PAGE,
                                                               n_blocks * SZ_2M)))
    assert box["ret"] == 0
    # PGD, one L1, an L2 per GiB touched, an L3 per 2M
    assert w.live_tables() == 2 + -(-n_blocks * SZ_2M // (1 << 30)) + n_blocks
    return nbc, w._mem._ctl[CTL_LABEL_WORK] - label0


def test_one_big_map_costs_linear_work(upstream):
    """16 times the map must be about 16 times the work, in the Python glue and in the C
    runtime's table labelling (a relabelling of every table after every call, which this
    caught once, grows with the square: 256 times)."""
    c = Config()
    small = map_work(lambda: upstream.make_world(c, None), 64)
    big = map_work(lambda: upstream.make_world(c, None), 1024)
    assert small[1] > 0, "the runtime labelled nothing"
    for what, a, b in (("bytecodes", small[0], big[0]), ("label work", small[1], big[1])):
        assert 12 < b / a < 20, f"{what}: 64 blocks {a}, 1024 blocks {b}"


# --- out-of-bounds reads -----------------------------------------------------------------------


def oob_reads(w):
    return [e for e in w.events.events if e.kind == "oob-read"]


def test_read_one_past_a_table(patch_files):
    c = Config()
    w = c_patched(patch_files, "oob").make_world(c, None)
    assert w.map(IOVA, PADDR, PAGE) == 0
    assert oob_reads(w) == []                  # map does not go through iova_to_phys
    assert w.pt_iova_to_phys(IOVA) == PADDR
    ev = oob_reads(w)
    # one read per level visited (L0..L3), each of entry 512 of a 512-entry table
    assert len(ev) == 4
    assert {e.site for e in ev} == {"arm_lpae_iova_to_phys"}
    for e, pa in zip(ev, table_pas(c, 4), strict=True):
        assert f"pa={pa:#x}" in e.detail and "[512, 513) of 512" in e.detail, e.detail


def test_small_pgd_geometry(upstream):
    """ias 32, 4K: 32 - 12 = 20 index bits, 9 per level: 3 levels from L1, the PGD keeps
    20 - 2 * 9 = 2 bits: 4 entries, 32 bytes (ARM_LPAE_PGD_SIZE = 8 << 2)."""
    w = upstream.make_world(Config(ias=32), None)
    g = w.geometry
    assert (g.start_level, g.pgd_bits, g.pgd_entries) == (1, 2, 4)
    assert len(w.table_view(w.data.pgd.pa)[1]) == 4


def test_read_past_a_small_pgd(patch_files):
    c = Config(ias=32)
    # inside the PGD's page: entry 4 of a 4-entry PGD (byte 32 of its 4K page)
    w = c_patched(patch_files, "oob_pgd").make_world(c, None)
    assert w.map(IOVA, PADDR, PAGE) == 0
    assert w.pt_iova_to_phys(IOVA) == PADDR
    ev = oob_reads(w)
    assert len(ev) == 1 and ev[0].site == "arm_lpae_iova_to_phys"
    assert f"pa={c.table_base:#x}" in ev[0].detail and "[4, 5) of 4" in ev[0].detail
    # past the page: entry 512 of the same PGD, then 512 of the L2 and L3 tables
    w = c_patched(patch_files, "oob").make_world(c, None)
    assert w.map(IOVA, PADDR, PAGE) == 0
    assert w.pt_iova_to_phys(IOVA) == PADDR
    ev = oob_reads(w)
    assert [e.site for e in ev] == ["arm_lpae_iova_to_phys"] * 3
    assert "[512, 513) of 4" in ev[0].detail


def test_upstream_reads_nothing_out_of_bounds(upstream):
    for c in (Config(), Config(ias=32)):
        w = upstream.make_world(c, None)
        assert w.map(IOVA, PADDR, PAGE) == 0
        assert w.pt_iova_to_phys(IOVA) == PADDR
        assert w.unmap(IOVA, PAGE) == PAGE
        assert w.events.events == []


# --- findings ----------------------------------------------------------------------------------


def kinds(result) -> set[str]:
    return {f.kind for f in result.findings}


def test_deleted_leaf_clean_is_a_stale_read(patch_files, upstream):
    sc = parse_scenario(MAP_SMMU)
    bad = run_scenario(sc, c_patched(patch_files, "no_leaf_clean"))
    assert "stale-read" in kinds(bad)
    stale = [f for f in bad.findings if f.kind == "stale-read"]
    assert {f.level for f in stale} == {"L3"}
    good = run_scenario(sc, upstream)
    assert good.findings == [] and not good.exhausted


def signatures(result) -> set[tuple]:
    return {(f.kind, f.where, f.level, f.config_class) for f in result.findings}


@pytest.mark.parametrize("path", [CONCAT, OVERWALK], ids=lambda p: p.stem)
def test_seed_reproduces_model_v1(seed, path):
    sc = parse_scenario(path.read_text(), str(path))
    model = run_scenario(sc, V1())
    c = run_scenario(sc, seed)
    assert signatures(model)          # the reproducer reproduces
    assert signatures(c) == signatures(model)


def test_overwalk_warn_count(seed):
    """64K granule, ias 48: 13 bits per level, 32 index bits: 3 levels from L1, PGD 64
    entries.  IOVA 64G: L2 index (64G >> 29) & 8191 = 128.  The posted walker's end index
    wraps below its start, min_t() takes max_entries and the L2 loop visits entries
    128 .. 8191; WARN_ON(!pte) fires for all but entry 128 (the L3 table): 8191 - 128."""
    sc = parse_scenario(OVERWALK.read_text(), str(OVERWALK))
    model = run_scenario(sc, V1())
    c = run_scenario(sc, seed)

    def warns(r):
        return sum(e.count for e in r.var.events.events if e.kind == "WARN")

    assert warns(c) == warns(model) == 8191 - 128


def test_driver_none_has_no_core_sync(seed, real_tree):
    """`@none`: no driver callback (the core's iommu_sync_map does nothing); the io-pgtable
    op of PATCH 1/2 is still there for direct callers."""
    v = load_variant(f"c:{SEED}@none")
    w = v.make_world(Config(), None)
    assert w.driver.iotlb_sync_map is None
    assert w.has_pt_sync_map
    assert seed.make_world(Config(), None).driver.iotlb_sync_map is not None


# --- the command line, --reference c ---------------------------------------------------------


def replay(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fuzz", "replay", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_replay_upstream_against_c_reference(upstream):
    r = replay(SG_LIST, "--variant", "c:upstream", "--reference", "c")
    assert r.returncode == 0, r.stdout + r.stderr


def test_replay_seed_against_c_reference(seed):
    r = replay(CONCAT, "--variant", f"c:{SEED}", "--reference", "c", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert "stale-read" in {f["kind"] for f in out["findings"]}


# --- a short campaign ---------------------------------------------------------------------------


def test_short_campaign_finds_stale_reads_and_foreign_walks(seed, tmp_path):
    """60 s, one worker, from the seeds: v1's two headline kinds (docs/findings.md)."""
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "fuzz", "campaign", "--variant", f"c:{SEED}",
                        "--time", "60", "--jobs", "1", "--corpus", tmp_path / "corpus",
                        "--crashes", tmp_path / "crashes"], cwd=ROOT, capture_output=True,
                       text=True, timeout=150)
    elapsed = time.monotonic() - t0
    assert r.returncode in (0, 1), r.stdout[-2000:] + r.stderr[-2000:]
    summary = json.loads((tmp_path / "crashes" / "summary.json").read_text())
    got = {b["kind"] for b in summary["buckets"]}
    assert {"stale-read", "foreign-walk"} <= got, (got, elapsed)
    assert "model-error" not in got, [b for b in summary["buckets"] if b["kind"] == "model-error"]
    assert summary["execs"] > 0
