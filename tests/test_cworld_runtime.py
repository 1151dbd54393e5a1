"""The C runtime's transliterations of the model (cworld/shim/runtime.c), checked against the
model itself on the same arrays: a clean (`Memory.dma_sync_for_device`) and a free
(`Memory.free_table`) made through the runtime's debug entry points on a real table of a C
world, against the model's method on a copy of that table; `CWorld.first_divergence` against
`model.smmu.first_divergence` on the C world's own tables, corrupted at random; the alloc
failpoint; and the pool of world states (a reused state is as new, and a world nobody holds
goes back at once).  Random cases are seeded: the same cases on every run."""

from __future__ import annotations

import ctypes as C
import gc
import random

import numpy as np
import pytest

from cworld.source import KernelSourceMissing, find_tree
from cworld.world import Library
from fuzz.lang.ops import parse_scenario
from fuzz.repro.replay import result_json
from fuzz.run.executor import run_scenario
from fuzz.run.plugins import load_variant
from model import smmu
from model.config import Config
from model.errors import BudgetExhausted
from model.events import EventLog
from model.memory import CleanRecord, Memory, Table

U64 = (1 << 64) - 1
IOVA, PADDR = 0x40000000, 0x80000000
#: glue.c iopgfuzz_debug_clean's ctx: the op the clean falls back to (none names a site)
CTX_SITE = {0: "leaf", 2: "unmap", 3: "sync_map"}


@pytest.fixture(scope="module")
def upstream():
    try:
        find_tree()
    except KernelSourceMissing as e:
        pytest.fail(str(e))
    return load_variant("c:upstream")


def world_with_tables(upstream, config: Config | None = None, budget=None):
    """A C world with a PGD, L1, L2 and two L3 tables (4K granule, 64-byte lines)."""
    w = upstream.make_world(config or Config(), budget)
    assert w.map(IOVA, PADDR, 0x3000) == 0
    assert w.map(IOVA + 0x200000, PADDR, 0x1000) == 0
    return w


def mirror(t: Table, line: int) -> Table:
    """A model Table with a copy of a C table's state."""
    m = Table(t.pa, t.entries, t.alloc_bytes, line, t.lvl, t.iova_base, t.serial,
              t.alloc_bytes)
    m.cpu[:], m.mem[:], m.wseq[:] = t.cpu, t.mem, t.wseq
    m.dirty[:], m.synced_seq[:] = t.dirty, t.synced_seq
    m.freed = t.freed
    return m


def scramble(r: random.Random, t: Table, seq: int) -> None:
    """Random views, dirty lines and sequence numbers (what the clean reads and writes)."""
    n = len(t.cpu)
    rng = np.random.default_rng(r.getrandbits(32))
    t.cpu[:] = rng.integers(0, 1 << 63, n, dtype=np.uint64)
    t.mem[:] = rng.integers(0, 1 << 63, n, dtype=np.uint64)
    t.wseq[:] = rng.integers(0, seq + 1, n, dtype=np.int64)
    t.dirty[:] = rng.integers(0, 2, len(t.dirty)).astype(bool)
    t.synced_seq[:] = rng.integers(0, seq + 1, len(t.synced_seq), dtype=np.int64)


def same_table(a: Table, b: Table) -> None:
    for f in ("cpu", "mem", "wseq", "dirty", "synced_seq"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.freed == b.freed and a.entries == b.entries


def same_records(a: list[CleanRecord], b: list[CleanRecord]) -> None:
    assert [(c.site, c.table.serial, c.first_line, c.nlines) for c in a] == \
        [(c.site, c.table.serial, c.first_line, c.nlines) for c in b]
    for x, y in zip(a, b, strict=True):
        assert x.changed.dtype == y.changed.dtype and np.array_equal(x.changed, y.changed)


SIZES = (0, 1, 7, 8, 9, 63, 64, 65, 128, 4088, 4096, 4104, 1 << 20,
         U64 - 7, U64 - 8 * 5 + 1, (-8 * 3) & U64, 1 << 63)


@pytest.mark.parametrize("seed", range(6))
def test_clean_is_the_models(upstream, seed):
    r = random.Random(seed)
    w = world_with_tables(upstream)
    so, mem = w.lib.so, w.data.mem
    for _ in range(60):
        t = r.choice(list(mem.tables.values()))
        seq = mem._seq
        scramble(r, t, seq)
        m = Memory(line=mem.line, events=EventLog(), base=mem.base)
        mt = mirror(t, mem.line)
        m.tables[mt.pa] = mt
        m._seq = seq
        for s, st in mem.by_site.items():
            m.by_site[s].calls, m.by_site[s].lines = st.calls, st.lines
        budget = r.choice([None, 1 << 30, r.randrange(0, 3000)])
        mem.budget = m.budget = budget
        log = r.random() < 0.5
        mem.clean_log, m.clean_log = ([], []) if log else (None, None)
        is_map = r.random() < 0.15 and not t.freed
        ctx = r.choice(list(CTX_SITE))
        if is_map:
            first, size = 0, r.choice([8, 64, 512, 4096])
            mt.entries = size // 8          # what dma_map_single sets, as the world refreshes
        else:
            first = r.choice([0, 1, 7, 8, r.randrange(len(t.cpu)), len(t.cpu) - 1])
            size = r.choice(SIZES + (r.randrange(1 << 13),))
        mark = w.events.mark()
        err_c = err_m = None
        try:
            w._c(so.iopgfuzz_debug_clean, t.pa + 8 * first, size, int(is_map), ctx)
        except BudgetExhausted as e:
            err_c = str(e)
        try:
            m.dma_sync_for_device(mt, first, size, "alloc" if is_map else CTX_SITE[ctx])
        except BudgetExhausted as e:
            err_m = str(e)
        assert err_c == err_m
        same_table(t, mt)
        assert mem.budget == m.budget
        assert {s: (v.calls, v.lines) for s, v in mem.by_site.items()} == \
            {s: (v.calls, v.lines) for s, v in m.by_site.items()}
        # the same events in the same words; the site is the function that asked
        assert [(e.kind, e.detail) for e in w.events.since(mark)] == \
            [(e.kind, e.detail) for e in m.events.events]
        assert all(e.site == "iopgfuzz_debug_clean" for e in w.events.since(mark))
        if log:
            same_records(mem.clean_log, m.clean_log)
        mem.clean_log = None
        if r.random() < 0.1:            # cleans of a freed table too
            w._c(so.iopgfuzz_debug_free, t.pa)


def test_clean_in_no_table(upstream):
    w = world_with_tables(upstream, budget=1 << 20)
    mem, so = w.data.mem, w.lib.so
    b0 = mem.budget
    stats = {s: (v.calls, v.lines) for s, v in mem.by_site.items()}
    pa = max(mem.tables) + 0x10_0000          # above every table
    w._c(so.iopgfuzz_debug_clean, pa, 0x40, 0, 3)
    e = w.events.events[-1]
    assert (e.kind, e.detail) == ("oob-clean", f"clean of 0x40 bytes at pa {pa:#x}, in no "
                                               "table, site=sync_map")
    assert mem.budget == b0 - 256                                # EVENT_COST, nothing else
    assert {s: (v.calls, v.lines) for s, v in mem.by_site.items()} == stats


def test_free_is_the_models(upstream):
    w = world_with_tables(upstream)
    mem, so = w.data.mem, w.lib.so
    t = max(mem.tables.values(), key=lambda x: x.pa)              # the second L3 table
    m = Memory(line=mem.line, events=EventLog(), base=mem.base)
    mt = mirror(t, mem.line)
    for _ in range(2):                                            # a free, then a double free
        mark = w.events.mark()
        w._c(so.iopgfuzz_debug_free, t.pa)
        m.free_table(mt)
        same_table(t, mt)
        assert [(e.kind, e.site, e.detail) for e in w.events.since(mark)] == \
            [(e.kind, e.site, e.detail) for e in m.events.events]
        m.events.events.clear()
    assert t.pa in w.take_changed_tables()
    assert w.events.events[-1].detail == f"double free of {t!r}"


@pytest.mark.parametrize("seed", range(6))
def test_first_divergence_is_the_models(upstream, seed):
    r = random.Random(seed)
    w = world_with_tables(upstream, budget=1 << 16)
    mem = w.data.mem
    tables = list(mem.tables.values())
    if seed % 2:
        w._c(w.lib.so.iopgfuzz_debug_free, tables[-1].pa)        # walks into a freed table
    for _ in range(40):
        # descriptors pointing at other tables (right and wrong levels), at no table, stale
        here = corrupt(r, w, tables)
        for _ in range(5):
            iova = r.choice([here, here, IOVA, IOVA + 0x1000, 0, r.randrange(1 << 48)])
            size = r.choice([0, 1, 0x1000, 0x200000, 1 << 30, 1 << 40, r.randrange(1 << 48)])
            b0 = mem.budget
            try:
                got = w.first_divergence(iova, size)
            except BudgetExhausted as e:
                got = str(e)
            b1, mem.budget = mem.budget, b0
            try:
                want = smmu.first_divergence(w.data, iova, size)
            except BudgetExhausted as e:
                want = str(e)
            assert got == want and mem.budget == b1
            if isinstance(got, str):
                mem.budget = 1 << 16


def corrupt(r: random.Random, w, tables: list[Table]) -> int:
    """A random descriptor (to another table, right level or not, to no table, invalid) in
    one view or both; returns an IOVA whose walks pass it."""
    t = r.choice(tables)
    i = r.randrange(t.entries)
    target = r.choice(tables).pa if r.random() < 0.6 else r.randrange(1 << 40) & ~0xFFF
    desc = target | r.choice([3, 3, 1, 0])
    view = r.choice([t.cpu, t.mem, None, None, None])
    if view is None:                # the walk follows it only where both views agree
        t.cpu[i] = t.mem[i] = desc
    else:
        view[i] = desc
    return (t.iova_base + i * w.block_size(t.lvl)) & U64 if t.lvl >= 0 else IOVA


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("config", [Config(), Config(fmt="mali", oas=40),
                                    Config(granule=0x10000, ias=52, oas=52),
                                    Config(quirks=0x20)], ids=["s1", "mali", "64k", "ttbr1"])
def test_smmu_walk_and_evict_are_the_models(upstream, seed, config):
    from model.world import World
    r = random.Random(seed)
    w = upstream.make_world(config, None)
    base = 0xFFFF_0000_0000_0000 if config.quirks else 0
    for k in range(3):
        w.map(base + IOVA + k * 0x20_0000, PADDR, 0x3000)
    w.map(base + (1 << 39), PADDR, 0x20_0000)
    mem = w.data.mem
    tables = list(mem.tables.values())
    if seed % 2:
        w._c(w.lib.so.iopgfuzz_debug_free, tables[-1].pa)
    for _ in range(30):
        here = corrupt(r, w, tables)
        for _ in range(4):
            iova = r.choice([here, here | base, base + IOVA, IOVA, r.randrange(1 << 64)])
            for view in ("mem", "cpu"):
                assert w.smmu_walk(iova, view) == smmu.smmu_walk(w.data, iova, view)
            t = r.choice(tables)
            t.dirty[:] = np.random.default_rng(r.getrandbits(32)).integers(
                0, 2, len(t.dirty)).astype(bool)
            which = None if r.random() < 0.2 else iova
            saved = [(x.mem.copy(), x.dirty.copy()) for x in tables]
            got = w.evict(which)
            after = [(x.mem.copy(), x.dirty.copy()) for x in tables]
            for x, (m_, d_) in zip(tables, saved, strict=True):
                x.mem[:], x.dirty[:] = m_, d_
            assert got == World.evict(w, which)
            for x, (m_, d_) in zip(tables, after, strict=True):
                assert np.array_equal(x.mem, m_) and np.array_equal(x.dirty, d_)


def test_alloc_failpoint(upstream):
    w = upstream.make_world(Config(), None)
    hits0 = w.failpoints.hits.get("alloc", 0)       # the PGD's allocation counts (see tests)
    w.fail("alloc", nth=2)
    assert w.map(IOVA, PADDR, 0x1000) == -12
    assert w.failpoints.hits["alloc"] == hits0 + 2
    assert [(f.site, f.err, f.hit) for f in w.failpoints.fired] == [("alloc", -12, hits0 + 2)]
    assert w.failpoints.armed == {}
    assert w.map(IOVA, PADDR, 0x1000) == 0          # fired once
    w.failpoints.arm("alloc", 1)                    # armed behind the world's back
    assert w.map(IOVA + (1 << 39), PADDR, 0x1000) == -12
    assert len(w.failpoints.fired) == 2


SCENARIOS = [
    "config fmt=arm64-s1 granule=4K\nmap 0x40000000 0x80000000 16K\nunmap 0x40000000 8K\n"
    "smmu 0x40002000\nevict all\n",
    "config fmt=arm64-s2 granule=4K ias=40 oas=40\nmap 0x200000 0x40000000 2M\n"
    "pt.map_pages 0x400000 0x1000 4K 3\nunmap 0x200000 2M\nsmmu 0x400000\n",
    "config fmt=arm32-s1 granule=4K line=32\nmap_sg 0x1000 0x1000+4K 0x3000+8K\n"
    "pt.unmap_pages 0x1000 4K 2\nsmmu 0x3000\n",
    "config fmt=arm64-s1 granule=64K ias=52 oas=52\nmap 0x10000 0x20000 128K\n"
    "fail alloc\nmap 0x100000000 0x0 64K\nsmmu 0x10000\n",
    # 1028 tables: more than 64M of arena, given back to the kernel at reset, not zeroed
    "config fmt=arm64-s1 granule=4K\nmap 0x0 0x1000 2G\nunmap 0x200000 2M\n"
    "smmu 0x400000\nsmmu 0x1ff000\n",
]


def test_a_reused_state_is_as_new(upstream):
    """Every scenario gives the same JSON on a world state never used and on one reused after
    any other scenario (the pool zeroes what the last world used)."""
    scs = [parse_scenario("# iopgfuzz ops v1\n" + s) for s in SCENARIOS]
    lib = Library.load(upstream.built())

    def run(sc):
        return result_json(run_scenario(sc, upstream, reference=upstream, budget=None))

    def fresh(sc):
        lib.drain()                     # the states in use stay alive; no pooled one to take
        return run(sc)

    def resets():
        kept, given_back = C.c_int64(), C.c_int64()
        lib.so.iopgfuzz_reset_counts(C.byref(kept), C.byref(given_back))
        return kept.value, given_back.value

    want = [fresh(sc) for sc in scs]
    assert want[-1]["stats"]["variant"]["by_site"]["alloc"]["calls"] == 1028
    lib.drain()                         # (what earlier tests left pooled counts as kept)
    before = resets()
    for _ in range(2):
        for i in range(len(scs)):
            for j in range(len(scs)):
                run(scs[j])
                assert run(scs[i]) == want[i]
    # a big world kept (zeroed in place) and one given back (over runtime.c RESET_KEEP_TOTAL)
    for _ in range(3):
        assert run(scs[-1]) == want[-1]
    held = [upstream.make_world(Config(), None) for _ in range(4)]
    for w in held:                      # four big worlds at once, then all four reset
        assert w.map(0, 0x1000, 2 << 30) == 0
    del held, w
    assert run(scs[-1]) == want[-1]
    after = resets()
    assert after[0] > before[0] and after[1] > before[1], (before, after)


def test_a_world_that_hit_bug_on_goes_back_at_once(upstream):
    """A BUG_ON's exception holds the frames of everyone who called, the executor and both
    worlds among them: kept in `world.crashed` it made a cycle, and both worlds' states stayed
    out of the pool until a full garbage collection (a campaign then made new ones)."""
    # pgcount truncation: map_pages maps nothing and returns 0, the core's BUG_ON
    sc = parse_scenario("# iopgfuzz ops v1\nconfig fmt=arm32-s1 granule=4K ias=32 oas=40\n"
                        "map 0x40200000 0x80200000 0x4000000000001000\n")
    lib = Library.load(upstream.built())
    gc.collect()
    gc.disable()
    try:
        res = run_scenario(sc, upstream, reference=upstream)
        assert res.records[0].ref.crashed.startswith("BUG_ON at iommu_map_nosync:no-progress")
        assert str(res.var.crashed) == res.records[0].var.crashed
        pooled = sum(len(p) for p in lib._pool.values())
        del res
        assert sum(len(p) for p in lib._pool.values()) == pooled + 2
    finally:
        gc.enable()


def test_a_world_nobody_holds_goes_back_at_once(upstream):
    lib = Library.load(upstream.built())
    gc.collect()
    gc.disable()
    try:
        run_scenario(parse_scenario("# iopgfuzz ops v1\n" + SCENARIOS[0]), upstream,
                     reference=upstream)
        pooled = sum(len(p) for p in lib._pool.values())
        w = upstream.make_world(Config(), None)
        assert sum(len(p) for p in lib._pool.values()) == pooled - 1
        del w
        assert sum(len(p) for p in lib._pool.values()) == pooled
    finally:
        gc.enable()
