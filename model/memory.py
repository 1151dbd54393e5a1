"""Page-table memory as a non-coherent table walker sees it.

Every table is one allocation at a physical address.  Each entry has two views: `cpu` (what
the CPU reads and writes, i.e. its cache) and `mem` (what the SMMU reads from DRAM).  A store
changes `cpu` and dirties its cache line; a clean (`dma_sync_single_for_device`) copies whole
lines from `cpu` to `mem`; `writeback` does the same for dirty lines at any other moment, as a
real cache may.  Every access is checked against the table's logical number of entries, and
freed tables are poisoned so that a later use is visible.

All range work is NumPy slicing: no per-entry Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import events as ev
from .cint import U64_MASK, s64, u64
from .errors import BudgetExhausted
from .events import EventLog

#: Slab's POISON_FREE byte; as a PTE it has type bits 3 (looks like a table or page).
POISON_FREED = 0x6B6B_6B6B_6B6B_6B6B
#: What DRAM holds under a fresh allocation before the CPU's zeroing reaches it.
POISON_UNINIT = 0xA5A5_A5A5_A5A5_A5A7
ENTRY_BYTES = 8
#: Budget units charged per access on top of its entries: what one call costs in Python
#: compares with a vectorised pass over ~64 entries, so the budget bounds time, not entries.
ACCESS_COST = 64
#: Budget units charged on top when an access goes wrong and is recorded (out of bounds, use
#: after free, a wild pointer): the event and its description cost far more than the access.
EVENT_COST = 256
#: Cache-maintenance call sites (kernel-semantics §3.11 C1..C7), in report order.
CLEAN_SITES = ("alloc", "install", "table", "leaf", "sync_map", "unmap")


#: Templates copied into fresh tables (a slice copy is several times cheaper than np.full).
_UNINIT = np.full(1 << 14, POISON_UNINIT, dtype=np.uint64)
_ALL_DIRTY = np.ones(1 << 14, dtype=bool)


def _filled(template: np.ndarray, n: int) -> np.ndarray:
    if n <= len(template):
        return template[:n].copy()
    return np.full(n, template[0], dtype=template.dtype)


class Table:
    """One page-table allocation.  `entries` is its logical size; arrays may be longer
    (the PGD's 64-byte minimum, rounding to whole cache lines)."""

    __slots__ = ("pa", "entries", "alloc_bytes", "cpu", "mem", "wseq", "synced_seq", "dirty",
                 "freed", "lvl", "iova_base", "serial", "line_entries")

    def __init__(self, pa: int, entries: int, alloc_bytes: int, line: int, lvl: int,
                 iova_base: int, serial: int, footprint: int = 0):
        self.pa = pa
        self.entries = entries
        self.alloc_bytes = alloc_bytes
        self.line_entries = line // ENTRY_BYTES
        # The page allocator hands out whole zeroed pages: a read past a small table but
        # inside its page sees zeros (and is still reported as out of bounds).
        nslots = max(entries, alloc_bytes // ENTRY_BYTES, footprint // ENTRY_BYTES)
        le = self.line_entries
        nslots = -(-nslots // le) * le
        self.cpu = np.zeros(nslots, dtype=np.uint64)
        self.mem = _filled(_UNINIT, nslots)
        self.dirty = _filled(_ALL_DIRTY, nslots // le)
        # Store sequence numbers per entry, and per line the sequence number of the last clean
        # by a sync walk: "was anything of this line stored to since a sync walk last cleaned
        # it?" is then independent of evictions and of the values written.
        self.wseq = np.zeros(nslots, dtype=np.int64)
        self.synced_seq = np.zeros(nslots // le, dtype=np.int64)
        self.freed = False
        self.lvl = lvl
        self.iova_base = iova_base
        self.serial = serial

    @property
    def nslots(self) -> int:
        return len(self.cpu)

    def __repr__(self) -> str:
        state = " freed" if self.freed else ""
        return f"<Table #{self.serial} pa={self.pa:#x} lvl={self.lvl} n={self.entries}{state}>"


class Ptep:
    """`arm_lpae_iopte *`: a table plus an entry index, with C pointer arithmetic."""

    __slots__ = ("table", "index", "memory")

    def __init__(self, memory: Memory, table: Table, index: int = 0):
        self.memory = memory
        self.table = table
        self.index = index

    def __add__(self, n: int) -> Ptep:
        return Ptep(self.memory, self.table, self.index + n)

    def __sub__(self, n: int) -> Ptep:
        return Ptep(self.memory, self.table, self.index - n)

    def __getitem__(self, i: int) -> int:
        """`READ_ONCE(ptep[i])`"""
        return self.memory.load(self.table, self.index + i)

    def __setitem__(self, i: int, value: int) -> None:
        """`WRITE_ONCE(ptep[i], value)`"""
        self.memory.store(self.table, self.index + i, value)

    def read_many(self, n: int) -> np.ndarray:
        """`ptep[0..n)` as an array (for vectorised scans; same checks as `n` loads)."""
        return self.memory.load_many(self.table, self.index, n)

    def peek_many(self, n: int) -> np.ndarray:
        """The CPU view of `ptep[0..n)` without recording an access: the same values
        `read_many` returns, past the allocation included.  For vectorised transliterations
        that must decide how far a C loop would go before performing, through `read_many`,
        exactly the reads the C performs."""
        t, lo = self.table, self.index
        if n <= 0:
            return np.zeros(0, dtype=np.uint64)
        if not t.freed and lo >= 0 and lo + n <= t.nslots:
            return t.cpu[lo:lo + n].copy()
        out = np.full(n, POISON_FREED, dtype=np.uint64)      # what load_many would return
        a, b = max(lo, 0), min(lo + n, t.nslots)
        if a < b:
            out[a - lo:b - lo] = t.cpu[a:b]
        return out

    def write_many(self, values: np.ndarray) -> None:
        self.memory.store_many(self.table, self.index, values)

    def write_one(self, value: int) -> None:
        """`write_many` of one value, without building an array (the same accounting)."""
        self.memory.store(self.table, self.index, value)

    @property
    def pa(self) -> int:
        return u64(self.table.pa + ENTRY_BYTES * self.index)

    def __repr__(self) -> str:
        return f"<ptep {self.table.pa:#x}[{self.index}]>"


@dataclass
class SiteStats:
    calls: int = 0
    lines: int = 0


@dataclass
class CleanRecord:
    """One clean, for the efficiency oracles: which lines of which table, and which entries
    of them (absolute indices) were stored to since a sync walk last cleaned their line."""

    site: str
    table: Table
    first_line: int
    nlines: int
    changed: np.ndarray


@dataclass
class AccessRecord:
    table: Table
    first: int
    n: int


@dataclass
class Memory:
    line: int
    events: EventLog
    base: int
    coherent: bool = False
    #: The CPU's PAGE_SIZE: the smallest block the page allocator hands out.
    page_size: int = 4096
    tables: dict[int, Table] = field(default_factory=dict)
    by_site: dict[str, SiteStats] = field(
        default_factory=lambda: {s: SiteStats() for s in CLEAN_SITES})
    #: When not None, reads and cleans are appended here (the executor turns it on around
    #: the operations whose footprint it judges).
    access_log: list | None = None
    clean_log: list | None = None
    #: Physical addresses of tables stored to since the executor last looked.
    touched: set = field(default_factory=set)
    #: While a world records an op (`World.begin_op`): site -> its (calls, lines) before the
    #: op, set when the op first cleans at that site, so the op's cleans cost nothing to find.
    op_before: dict | None = None
    #: Entries that may still be written or allocated (None: unlimited); see BudgetExhausted.
    budget: int | None = None
    _seq: int = 0
    _wild: Table | None = None
    _next_pa: int = 0
    _serial: int = 0

    def __post_init__(self) -> None:
        self._next_pa = self.base

    def site_stats(self, site: str) -> SiteStats:
        """The clean counters of `site`, about to change: while an op is recorded, noted as
        they were before the op's first clean there (`op_before`)."""
        stats = self.by_site.get(site)
        if stats is None:
            stats = self.by_site[site] = SiteStats()
        before = self.op_before
        if before is not None and site not in before:
            before[site] = (stats.calls, stats.lines)
        return stats

    # -- allocation -------------------------------------------------------------------------

    def alloc_table(self, entries: int, alloc_bytes: int, lvl: int, iova_base: int) -> Table:
        """Zeroed memory at a fresh address aligned to its size, in whole pages, as the page
        allocator behind `iommu_alloc_pages_node_sz` gives.  The zeroing is a CPU store:
        DRAM still holds garbage until somebody cleans."""
        self.spend(max(entries, alloc_bytes // ENTRY_BYTES))
        footprint = max(alloc_bytes, self.page_size)
        align = max(self.page_size, 1 << (alloc_bytes - 1).bit_length())
        pa = -(-self._next_pa // align) * align
        self._next_pa = pa + footprint
        self._serial += 1
        t = Table(pa, entries, alloc_bytes, self.line, lvl, iova_base, self._serial, footprint)
        if self.coherent:
            t.mem[:] = 0
            t.dirty[:] = False
        self.tables[pa] = t
        self.touched.add(pa)
        return t

    def spend(self, n: int) -> None:
        """Charge `n` entries plus the fixed cost of one access (see `ACCESS_COST`)."""
        self.charge(n + ACCESS_COST)

    def charge(self, units: int) -> None:
        """Take `units` from the work budget; BudgetExhausted when it runs out."""
        if self.budget is not None:
            self.budget -= units
            if self.budget < 0:
                raise BudgetExhausted(f"work budget exhausted ({units} more units asked)")


    def free_table(self, t: Table) -> None:
        if t.freed:
            self.events.record(ev.UAF_WRITE, "free", f"double free of {t!r}")
            return
        t.freed = True
        self.touched.add(t.pa)
        t.cpu[:] = POISON_FREED
        t.mem[:] = POISON_FREED
        t.dirty[:] = False

    def wild_table(self) -> Table:
        """Where wild pointers land: no logical entries, 64K of zeros, never in `tables`."""
        if self._wild is None:
            self._wild = Table(0xDEAD_0000_0000, 0, 1 << 16, self.line, -1, 0, 0, 1 << 16)
            self._wild.mem[:] = 0
        return self._wild

    def lookup(self, pa: int) -> Table | None:
        """The table whose first byte is at `pa` (freed ones included), else None."""
        return self.tables.get(pa)

    def live_tables(self) -> list[Table]:
        return [t for t in self.tables.values() if not t.freed]

    # -- CPU accesses ---------------------------------------------------------------------------

    def _check(self, t: Table, first: int, n: int, oob_kind: str, uaf_kind: str) -> None:
        self.charge(EVENT_COST)
        if t.freed:
            self.events.record(uaf_kind, _caller(), f"{t!r}[{first}:{first + n}]")
        elif first < 0 or first + n > t.entries:
            self.events.record(oob_kind, _caller(),
                               f"{t!r} entries [{first}, {first + n}) of {t.entries}")

    def load(self, t: Table, i: int) -> int:
        self.spend(1)
        if self.access_log is not None:
            self.access_log.append(AccessRecord(t, i, 1))
        if t.freed or not 0 <= i < t.entries:
            self._check(t, i, 1, ev.OOB_READ, ev.UAF_READ)
            if not 0 <= i < t.nslots:
                return POISON_FREED      # past the allocation: whatever the neighbour holds
        return int(t.cpu[i])

    def load_many(self, t: Table, first: int, n: int) -> np.ndarray:
        if n <= 0:
            return t.cpu[0:0].copy()
        self.spend(n)
        if self.access_log is not None:
            self.access_log.append(AccessRecord(t, first, n))
        if t.freed or first < 0 or first + n > t.entries:
            self._check(t, first, n, ev.OOB_READ, ev.UAF_READ)
            out = np.full(n, POISON_FREED, dtype=np.uint64)
            lo, hi = max(first, 0), min(first + n, t.nslots)
            if lo < hi:
                out[lo - first:hi - first] = t.cpu[lo:hi]
            return out
        return t.cpu[first:first + n].copy()

    def store(self, t: Table, i: int, value: int) -> None:
        self.spend(1)
        if t.freed or not 0 <= i < t.entries:
            self._check(t, i, 1, ev.OOB_WRITE, ev.UAF_WRITE)
            if t.freed or not 0 <= i < t.nslots:
                return
        self.touched.add(t.pa)
        self._seq += 1
        t.wseq[i] = self._seq
        t.cpu[i] = value
        if self.coherent:
            t.mem[i] = value
        else:
            t.dirty[i // t.line_entries] = True

    def store_many(self, t: Table, first: int, values: np.ndarray) -> None:
        n = len(values)
        if n == 0:
            return
        lo, hi = first, first + n
        if t.freed or lo < 0 or hi > t.entries:
            self._check(t, lo, n, ev.OOB_WRITE, ev.UAF_WRITE)
            if t.freed:
                return
            clo, chi = max(lo, 0), min(hi, t.nslots)
            if clo >= chi:
                return
            values = values[clo - lo:chi - lo]
            lo, hi = clo, chi
        self.spend(hi - lo)
        self.touched.add(t.pa)
        self._seq += 1
        t.wseq[lo:hi] = self._seq
        t.cpu[lo:hi] = values
        if self.coherent:
            t.mem[lo:hi] = values
        else:
            le = t.line_entries
            t.dirty[lo // le:(hi - 1) // le + 1] = True

    # -- cache maintenance -------------------------------------------------------------------

    def _clean_caller(self) -> str:
        """The function that asked for a clean, for its events (a C world says which)."""
        return _caller()

    def dma_sync_for_device(self, t: Table, first: int, nbytes: int, site: str) -> None:
        """`dma_sync_single_for_device(dev, pa(&t[first]), nbytes, DMA_TO_DEVICE)` on a
        non-coherent device: clean every line overlapping the byte range to memory.

        `nbytes` is a size_t (a negative int times 8 arrives here as a huge value).  The arm64
        loop is do-while, so a zero length still cleans the line holding the start.
        """
        nbytes &= U64_MASK
        start = first * ENTRY_BYTES
        end = start + nbytes
        if t.freed or first < 0 or end > t.entries * ENTRY_BYTES:
            self.charge(EVENT_COST)
        if t.freed:
            self.events.record(ev.UAF_CLEAN, self._clean_caller(),
                               f"{t!r} bytes [{start}, {end}) site={site}")
        elif first < 0 or end > t.entries * ENTRY_BYTES:
            self.events.record(ev.OOB_CLEAN, self._clean_caller(),
                               f"{t!r} entries [{first}, {first}+{s64(nbytes) / 8:g}) of "
                               f"{t.entries} site={site}")
        line = self.line
        first_line = start // line
        last_line = -(-end // line) - 1                           # inclusive; >= one line
        if last_line < first_line:
            last_line = first_line
        stats = self.site_stats(site)
        stats.calls += 1
        stats.lines += last_line - first_line + 1
        # Only lines inside the allocation exist in the model; the rest is someone else's RAM.
        lo = first_line if first_line > 0 else 0
        hi = last_line + 1
        if hi > len(t.dirty):
            hi = len(t.dirty)
        self.spend((hi - lo) * t.line_entries if hi > lo else 0)
        if self.clean_log is not None:
            self.clean_log.append(CleanRecord(site, t, first_line, last_line - first_line + 1,
                                              self._changed_entries(t, lo, hi)))
        if lo < hi and not t.freed:
            le = t.line_entries
            if hi - lo == 1:
                if t.dirty[lo]:
                    t.mem[lo * le:hi * le] = t.cpu[lo * le:hi * le]
                    t.dirty[lo] = False
            else:
                t.mem[lo * le:hi * le] = t.cpu[lo * le:hi * le]
                t.dirty[lo:hi] = False
            if site == "sync_map":
                t.synced_seq[lo:hi] = self._seq

    def dma_sync_for_device_each(self, t: Table, first: int, n: int, site: str) -> None:
        """`n` calls `dma_sync_for_device(t, first + i, ENTRY_BYTES, site)`, i = 0 .. n-1: each
        entry of `[first, first + n)` cleaned by a call of its own, as a C loop that writes
        and cleans one entry per iteration does.  One vectorised pass when the range is inside
        a live table and no clean log is kept (an 8-byte entry never spans two lines, so each
        call cleans exactly one line; the statistics count n calls and n lines, and the state
        afterwards is the calls' state: every line the range touches is clean); otherwise the
        n calls one by one, with their events and records."""
        if n <= 0:
            return
        if t.freed or first < 0 or first + n > t.entries or self.clean_log is not None:
            for i in range(n):
                self.dma_sync_for_device(t, first + i, ENTRY_BYTES, site)
            return
        stats = self.site_stats(site)
        stats.calls += n
        stats.lines += n
        le = t.line_entries
        lo, hi = first // le, (first + n - 1) // le + 1
        self.spend((hi - lo) * le)
        t.mem[lo * le:hi * le] = t.cpu[lo * le:hi * le]
        t.dirty[lo:hi] = False
        if site == "sync_map":
            t.synced_seq[lo:hi] = self._seq

    @staticmethod
    def _changed_entries(t: Table, lo_line: int, hi_line: int) -> np.ndarray:
        """Entries of lines [lo_line, hi_line) stored to since a sync walk last cleaned them."""
        if t.freed or lo_line >= hi_line:
            return np.zeros(0, dtype=np.int64)
        le = t.line_entries
        a, b = lo_line * le, hi_line * le
        newer = np.greater(t.wseq[a:b], np.repeat(t.synced_seq[lo_line:hi_line], le))
        return newer.nonzero()[0] + a

    def writeback(self, tables=None) -> int:
        """Write back every dirty line (of `tables`, or of all tables); returns lines written."""
        count = 0
        for t in (self.tables.values() if tables is None else tables):
            if t.freed or not t.dirty.any():
                continue
            mask = np.repeat(t.dirty, t.line_entries)
            t.mem[mask] = t.cpu[mask]
            count += int(t.dirty.sum())
            t.dirty[:] = False
        return count

    def dirty_line_count(self) -> int:
        return int(sum(int(t.dirty.sum()) for t in self.tables.values() if not t.freed))


def _caller() -> str:
    """Name of the model function that made the access, for event sites (error path only)."""
    import sys
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.endswith("memory.py"):
        f = f.f_back
    return f.f_code.co_name if f is not None else "?"
