"""`CWorld`: a userspace build of the kernel's io-pgtable-arm.c behind the model's World API.

The C owns the page-table memory; Python sees it without copies.  Every table the C allocates
is a `model.memory.Table` whose arrays are NumPy views of the runtime's arenas (CPU view,
memory view, store sequence numbers, dirty lines), so the oracles, the statistics and any
model code run on the C world unchanged.

What the model's Memory does, the runtime does in C (runtime.c), as transliterations on the
same arrays: cleans (`Memory.dma_sync_for_device`: the site from the return addresses on the
stack and a table of the library's functions built from `SITE_OF` at load; the statistics per
site, read back into `Memory.by_site` after each call; the same events in the same order and
words; the clean records of the executor's tracer), frees (`Memory.free_table`), the alloc
failpoint (armed from `failpoints`, what fired recorded back), the levels and IOVA bases of the
tables (from the table descriptors the C saw written), and the range walks `first_divergence`,
`smmu_walk` and `evict` on the C's own tables.  Python learns what a call did from a control
block of counters and flags (`ctl`, `NEWS_*`) and looks only at what changed.

The work budget, in two parts as before: the C counts its CPU accesses and allocations against
`budget * C_BUDGET_FACTOR` (`ctl.budget`), and cleans charge the model's own units
(`ACCESS_COST` per clean plus its lines' entries, `EVENT_COST` per bad clean) to `Memory.budget`,
which lives in the C (`ctl.mbudget`) so that the model's range walks (`smmu._slice_bounds`,
and their C versions here) and the C's cleans draw on one account, as in a model world.
Either running out is `BudgetExhausted` (the model's message when it was the model's budget).

World states are pooled per library (`Library.acquire` / `release`): a world that ends
(`close()`, or its last reference going: nothing of a CWorld refers back to it) gives its
state back, and the next world resets and reuses it, NumPy views included.  Its tables then
read as the next world's: do not keep a CWorld's tables beyond the world.  The iommu core and
the driver layer stay the model's.
"""

from __future__ import annotations

import bisect
import ctypes as C
import weakref

import numpy as np

from model.cint import s64
from model.config import (
    ARM_32_LPAE_S1,
    ARM_32_LPAE_S2,
    ARM_64_LPAE_S1,
    ARM_64_LPAE_S2,
    ARM_MALI_LPAE,
    IO_PGTABLE_QUIRK_ARM_TTBR1,
    Config,
    IoPgtableCfg,
)
from model.driver import SmmuDomainOps
from model.errors import BudgetExhausted, ConfigRejected, KernelBug, WorldCrashed
from model.events import (
    BAD_POINTER,
    OOB_CLEAN,
    OOB_READ,
    OOB_WRITE,
    UAF_CLEAN,
    UAF_READ,
    UAF_WRITE,
    UBSAN,
    EventLog,
)
from model.failpoints import Failpoints, Fired
from model.io_pgtable_arm import ArmLpaeIoPgtable, IoPgtable, IoPgtableOps, Ref
from model.iommu import IommuDomain
from model.memory import (
    ACCESS_COST,
    CLEAN_SITES,
    ENTRY_BYTES,
    EVENT_COST,
    AccessRecord,
    CleanRecord,
    Memory,
    Table,
)
from model.pte import HW_MASK
from model.smmu import (
    ADDRESS_SIZE,
    FREED_TABLE,
    NOT_A_TABLE,
    RESERVED,
    TRANSLATION,
    WRONG_LEVEL,
    Divergence,
    Walk,
    WalkStep,
)
from model.world import World

from .build import Built

U64 = (1 << 64) - 1
FMT_INDEX = {ARM_32_LPAE_S1: 0, ARM_32_LPAE_S2: 1, ARM_64_LPAE_S1: 2, ARM_64_LPAE_S2: 3,
             ARM_MALI_LPAE: 4}
#: The C world's work budget is counted in single CPU accesses, which cost the C almost
#: nothing: this many per unit of the model's budget keeps the worst input near the model's.
C_BUDGET_FACTOR = 16

#: Which clean site (model/memory.py CLEAN_SITES) a clean belongs to, by the first function
#: on its call stack that is not a helper of the clean itself.
SITE_OF = {"__arm_lpae_alloc_pages": "alloc", "__arm_lpae_init_pte": "leaf",
           "arm_lpae_install_table": "install", "__arm_lpae_map": "table",
           "__arm_lpae_clear_pte": "unmap", "__arm_lpae_unmap": "unmap",
           "arm_lpae_split_blk_unmap": "unmap"}
TRANSPARENT = frozenset({"__arm_lpae_sync_pte", "__arm_lpae_dma_addr",
                         "iopgfuzz_dma_sync_for_device", "iopgfuzz_dma_map_single"})

#: WARN sites of the kernel C by (function, condition, which of the function's WARN_ONs with
#: that condition) -> the model's name for the same check, so that traces, oracles and
#: signatures compare across Python and C worlds.  Others are named `function:condition`.
WARN_NAMES = {
    ("arm_lpae_map_pages", "!pgsize || (pgsize & cfg->pgsize_bitmap) != pgsize", 1):
        "arm_lpae_map_pages:args",
    ("arm_lpae_map_pages", "iaext || paddr >> cfg->oas", 1): "arm_lpae_map_pages:range",
    ("__arm_lpae_map", "lvl >= ARM_LPAE_MAX_LEVELS - 1", 1): "__arm_lpae_map:final-level",
    ("__arm_lpae_map", "!selftest_running", 1): "__arm_lpae_map:block-in-way",
    ("__arm_lpae_map", "!(cfg->quirks & IO_PGTABLE_QUIRK_NO_WARN)", 1):
        "__arm_lpae_map:block-in-way",
    ("arm_lpae_init_pte", "!selftest_running", 1): "arm_lpae_init_pte:leaf-exists",
    ("arm_lpae_init_pte", "!(cfg->quirks & IO_PGTABLE_QUIRK_NO_WARN)", 1):
        "arm_lpae_init_pte:leaf-exists",
    ("arm_lpae_init_pte", "1", 1): "arm_lpae_init_pte:replace-table",
    # v6.17 spells the quirk test through `data`, and WARN_ONCE()s a partial unmap
    ("arm_lpae_init_pte", "!(data->iop.cfg.quirks & IO_PGTABLE_QUIRK_NO_WARN)", 1):
        "arm_lpae_init_pte:leaf-exists",
    ("__arm_lpae_unmap", "!(data->iop.cfg.quirks & IO_PGTABLE_QUIRK_NO_WARN)", 1):
        "__arm_lpae_unmap:hole",
    ("__arm_lpae_unmap", "!(data->iop.cfg.quirks & IO_PGTABLE_QUIRK_NO_WARN)", 2):
        "__arm_lpae_unmap:hole-in-batch",
    ("__arm_lpae_unmap", "1", 1): "__arm_lpae_unmap:partial-block",
    ("__arm_lpae_unmap", "lvl == ARM_LPAE_MAX_LEVELS", 1): "__arm_lpae_unmap:lvl4",
    ("__arm_lpae_unmap", "!pte", 1): "__arm_lpae_unmap:hole",
    ("__arm_lpae_unmap", "!pte", 2): "__arm_lpae_unmap:hole-in-batch",
    ("arm_lpae_unmap_pages",
     "!pgsize || (pgsize & cfg->pgsize_bitmap) != pgsize || !pgcount", 1):
        "arm_lpae_unmap_pages:args",
    ("arm_lpae_unmap_pages", "iaext", 1): "arm_lpae_unmap_pages:range",
    ("arm_lpae_split_blk_unmap", "lvl == ARM_LPAE_MAX_LEVELS", 1):
        "arm_lpae_split_blk_unmap:lvl4",
    # PATCH 1/2 as posted
    ("__arm_lpae_iotlb_sync_map", "!pte", 1): "__arm_lpae_iotlb_sync_map:empty",
    ("arm_lpae_iotlb_sync_map", "!size", 1): "arm_lpae_iotlb_sync_map:size",
    ("arm_lpae_iotlb_sync_map", "iaext", 1): "arm_lpae_iotlb_sync_map:iaext",
}

_KINDS = {1: OOB_READ, 2: OOB_WRITE, 3: UAF_READ, 4: UAF_WRITE, 5: BAD_POINTER}
_WARN_KIND = 6
#: runtime.h enum iopgfuzz_pyev: events the model records as they happen (cleans, frees)
_PYEV_OOB_CLEAN, _PYEV_UAF_CLEAN, _PYEV_NO_TABLE_CLEAN, _PYEV_DOUBLE_FREE = 1, 2, 3, 4
#: runtime.c: the reasons of a Divergence
_DIVERGENCE_REASONS = {1: "stale", 2: FREED_TABLE, 3: NOT_A_TABLE, 4: WRONG_LEVEL}
#: runtime.c: the faults of an SMMU walk
_FAULTS = (None, TRANSLATION, ADDRESS_SIZE, RESERVED, FREED_TABLE, NOT_A_TABLE, WRONG_LEVEL)
_HW_MASK = HW_MASK
#: runtime.h: what a function is to the clean-site attribution, if not a site's index
_SYM_TRANSPARENT, _SYM_OTHER = -1, -2

#: runtime.h struct iopgfuzz_ctl, an int64 array shared with the C
(CTL_CRASHED, CTL_NTABLES, CTL_NEVENTS, CTL_NPYEVENTS, CTL_NFREED, CTL_CLEANS, CTL_NRECS,
 CTL_NCHANGED, CTL_NTOUCHED, CTL_NRELABEL, CTL_TOUCH_EPOCH, CTL_RELABEL_EPOCH, CTL_SEQ,
 CTL_BUDGET, CTL_MBUDGET, CTL_MBUDGET_ON, CTL_LOG_CLEANS, CTL_ADOPTED, CTL_ENTRIES_STALE,
 CTL_DROPPED_EVENTS, CTL_NACCESSES, CTL_DROPPED_ACCESSES, CTL_WILD_STORE,
 CTL_MBUDGET_ASKED, CTL_ALLOC_HITS, CTL_ALLOC_FAIL_AT, CTL_ALLOC_FIRED, CTL_NLABELLED,
 CTL_LABEL_EPOCH, CTL_NEWS, CTL_CAP_PYEVENTS, CTL_CAP_RECS, CTL_CAP_CHANGED,
 CTL_SITES, CTL_LABEL_WORK) = range(35)
#: runtime.h IOPGFUZZ_NEWS_*: what happened in a call (ctl.news)
(NEWS_CRASH, NEWS_TABLES, NEWS_FREED, NEWS_CLEANS, NEWS_EVENTS, NEWS_RECS, NEWS_LABELS,
 NEWS_ALLOC, NEWS_UBSAN) = (1 << i for i in range(9))
#: the set bits of a clean-site mask, by mask
_BITS = tuple(tuple(i for i in range(6) if m >> i & 1) for m in range(1 << 6))
#: runtime.h struct iopgfuzz_table, as uint64[T_COLS]
T_PA, T_VA_OFF, T_BYTES, T_ENTRIES, T_FREED, T_TOUCHED, T_RELABEL, T_LVL, T_IOVA_BASE, \
    T_LABELLED = range(10)
T_COLS = 10


class _Geometry(C.Structure):
    _fields_ = [("pgd_bits", C.c_int32), ("start_level", C.c_int32),
                ("bits_per_level", C.c_int32), ("has_iotlb_sync_map", C.c_int32),
                ("pgd_pa", C.c_uint64), ("pgsize_bitmap", C.c_uint64), ("ias", C.c_uint32),
                ("oas", C.c_uint32), ("ttbr", C.c_uint64), ("pgd_index", C.c_uint64)]


class _Event(C.Structure):
    _fields_ = [("kind", C.c_int32), ("table", C.c_int32), ("first", C.c_int64),
                ("last", C.c_int64), ("count", C.c_uint64), ("pa", C.c_uint64), ("pc", C.c_void_p),
                ("file", C.c_char_p), ("func", C.c_char_p), ("cond", C.c_char_p),
                ("line", C.c_int32), ("pad", C.c_int32)]


class _Access(C.Structure):
    _fields_ = [("table", C.c_int32), ("pad", C.c_int32), ("first", C.c_int64),
                ("n", C.c_int64)]


class _Ubsan(C.Structure):
    """shim/ubsan.c struct iopgfuzz_ubsan: one undefined-behaviour report."""

    _fields_ = [("check", C.c_char_p), ("file", C.c_char_p), ("line", C.c_uint32),
                ("npcs", C.c_uint32), ("a", C.c_uint64), ("b", C.c_uint64),
                ("pcs", C.c_size_t * 6)]


class _Arrays(C.Structure):
    _fields_ = [("cpu", C.c_void_p), ("mem", C.c_void_p), ("wseq", C.c_void_p),
                ("dirty", C.c_void_p), ("synced_seq", C.c_void_p), ("arena_bytes", C.c_uint64),
                ("ctl", C.c_void_p), ("tables", C.c_void_p), ("max_tables", C.c_uint64),
                ("site_calls", C.c_void_p), ("site_lines", C.c_void_p),
                ("site_lines_hi", C.c_void_p), ("freed_log", C.c_void_p),
                ("touched_log", C.c_void_p), ("relabel_log", C.c_void_p),
                ("ctl_size", C.c_uint64), ("labelled_log", C.c_void_p),
                ("accesses", C.c_void_p), ("max_accesses", C.c_uint64)]


#: runtime.h struct iopgfuzz_access
_ACCESS = np.dtype([("table", "<i4"), ("pad", "<i4"), ("first", "<i8"), ("n", "<i8")])


def _view(ptr, ctype, shape):
    return np.ctypeslib.as_array(C.cast(ptr, C.POINTER(ctype)), shape)


class _State:
    """One C world's state (`iopgfuzz_world_new`) and the NumPy views of it.  A world that
    ends gives its state back to its library's pool; the next world resets and reuses it,
    views and all (no mmap, no page faults, no new views)."""

    __slots__ = ("handle", "key", "so", "cpu", "mem", "wseq", "dirty", "synced", "ctl", "tab",
                 "stats", "freed_log", "touched_log", "relabel_log", "labelled_log", "_logs",
                 "slices", "wild", "accesses")

    def __init__(self, lib: Library, handle: int, key: tuple):
        self.handle, self.key, self.so = handle, key, lib.so
        line = key[0]
        a = _Arrays()
        lib.so.iopgfuzz_world_arrays(handle, C.byref(a))
        n = a.arena_bytes // ENTRY_BYTES
        nlines = a.arena_bytes // line
        nsites = len(CLEAN_SITES)
        self.cpu = _view(a.cpu, C.c_uint64, (n,))
        self.mem = _view(a.mem, C.c_uint64, (n,))
        self.wseq = _view(a.wseq, C.c_int64, (n,))
        self.dirty = _view(a.dirty, C.c_uint8, (nlines,)).view(np.bool_)
        self.synced = _view(a.synced_seq, C.c_int64, (nlines,))
        # ctypes arrays where Python reads single elements or short runs (ten times cheaper
        # than NumPy's scalars); the table array flat, row i at [i * T_COLS:(i + 1) * T_COLS]
        self.ctl = (C.c_int64 * a.ctl_size).from_address(a.ctl)
        self.tab = (C.c_uint64 * (a.max_tables * T_COLS)).from_address(a.tables)
        # site_calls, site_lines, site_lines_hi: one after the other in the world struct
        assert a.site_lines == a.site_calls + 8 * nsites == a.site_lines_hi - 8 * nsites
        self.stats = (C.c_uint64 * (3 * nsites)).from_address(a.site_calls)
        #: (va_off, bytes) -> the views of a table there (the same for every world)
        self.slices: dict[tuple, tuple] = {}
        self.wild: Table | None = None    # the wild table never changes: one for all worlds
        self.freed_log = (C.c_int32 * a.max_tables).from_address(a.freed_log)
        self.touched_log = (C.c_int32 * a.max_tables).from_address(a.touched_log)
        self.relabel_log = (C.c_int32 * a.max_tables).from_address(a.relabel_log)
        self.labelled_log = (C.c_int32 * a.max_tables).from_address(a.labelled_log)
        self.accesses = _view(a.accesses, C.c_uint8, (a.max_accesses * _ACCESS.itemsize,)) \
            .view(_ACCESS)
        self._logs = (0, 0, 0, None, None, None)

    def logs(self) -> tuple:
        """Views of the growable logs (model-order events, clean records, changed entries),
        made again when one grew (it may have moved)."""
        ctl = self.ctl
        caps = (ctl[CTL_CAP_PYEVENTS], ctl[CTL_CAP_RECS], ctl[CTL_CAP_CHANGED])
        if caps != self._logs[:3]:
            pe, recs, changed = C.c_void_p(), C.c_void_p(), C.c_void_p()
            self.so.iopgfuzz_logs(self.handle, C.byref(pe), C.byref(recs), C.byref(changed))
            self._logs = caps + (
                _view(pe.value, C.c_uint64, (caps[0], 8)) if caps[0] else None,
                _view(recs.value, C.c_uint64, (caps[1], 6)) if caps[1] else None,
                _view(changed.value, C.c_int64, (caps[2],)) if caps[2] else None)
        return self._logs[3:]


class Library:
    """One loaded build.  Loaded once per process and shared by the worlds that use it,
    with a pool of world states to reuse."""

    _loaded: dict[str, Library] = {}
    #: World states kept for reuse, per (line size, coherence); more are freed.
    POOL_MAX = 4

    @classmethod
    def load(cls, built: Built) -> Library:
        lib = cls._loaded.get(str(built.lib))
        if lib is None:
            lib = cls._loaded[str(built.lib)] = cls(built)
        return lib

    def __init__(self, built: Built):
        self.built = built
        self.so = so = C.CDLL(str(built.lib), mode=C.RTLD_LOCAL)
        vp, u64, i64, i32, u32 = C.c_void_p, C.c_uint64, C.c_int64, C.c_int32, C.c_uint32
        sig = {
            "iopgfuzz_abi": (C.c_int, []),
            "iopgfuzz_world_new": (vp, [u64, u64, u64, C.c_int, i64]),
            "iopgfuzz_world_free": (None, [vp]),
            "iopgfuzz_world_arrays": (None, [vp, C.POINTER(_Arrays)]),
            "iopgfuzz_world_reset": (C.c_int, [vp, u64, u64, i64]),
            "iopgfuzz_set_labels": (None, [vp, u32, i64, i64, i64, u64]),
            "iopgfuzz_first_divergence": (C.c_int, [vp, u64, u64, u64, C.POINTER(u64)]),
            "iopgfuzz_smmu_walk": (C.c_int, [vp, u64, C.c_int, u64, C.POINTER(u64),
                                             C.POINTER(u64)]),
            "iopgfuzz_evict": (i64, [vp, u64, C.c_int, u64]),
            "iopgfuzz_set_text": (None, [C.c_size_t, C.c_size_t]),
            "iopgfuzz_set_symbols": (C.c_int, [i64, C.POINTER(C.c_size_t),
                                               C.POINTER(C.c_size_t), C.POINTER(i32)]),
            "iopgfuzz_set_costs": (None, [i64, i64]),
            "iopgfuzz_logs": (None, [vp, C.POINTER(vp), C.POINTER(vp), C.POINTER(vp)]),
            "iopgfuzz_debug_clean": (C.c_int, [vp, u64, u64, C.c_int, C.c_int]),
            "iopgfuzz_debug_free": (C.c_int, [vp, u64]),
            "iopgfuzz_debug_alloc": (vp, [vp, u64]),
            "iopgfuzz_alloc_io_pgtable": (vp, [vp, C.c_int, u64, u64, u32, u32, C.c_int,
                                               C.c_int, C.c_int, C.POINTER(_Geometry)]),
            "iopgfuzz_map_pages": (C.c_int, [vp, vp, u64, u64, u64, u64, C.c_int,
                                             C.POINTER(u64)]),
            "iopgfuzz_unmap_pages": (u64, [vp, vp, u64, u64, u64, C.c_int]),
            "iopgfuzz_iotlb_sync_map": (C.c_int, [vp, vp, u64, u64, C.c_int]),
            "iopgfuzz_iova_to_phys": (u64, [vp, vp, u64]),
            "iopgfuzz_free_io_pgtable": (None, [vp, vp]),
            "iopgfuzz_status": (C.c_int, [vp]),
            "iopgfuzz_ntables": (u32, [vp]),
            "iopgfuzz_seq": (i64, [vp]),
            "iopgfuzz_budget": (i64, [vp]),
            "iopgfuzz_set_budget": (None, [vp, i64]),
            "iopgfuzz_set_default_entries": (None, [vp, i64]),
            "iopgfuzz_bug_site": (C.c_char_p, [vp, C.POINTER(C.c_int), C.POINTER(C.c_char_p)]),
            "iopgfuzz_take_events": (u32, [vp, C.POINTER(C.POINTER(_Event)), C.POINTER(u32)]),
            "iopgfuzz_take_accesses": (u32, [vp, C.POINTER(C.POINTER(_Access)),
                                             C.POINTER(u32)]),
            "iopgfuzz_features": (C.c_int, []),
            "iopgfuzz_reset_counts": (None, [C.POINTER(i64), C.POINTER(i64)]),
        }
        for name, (res, args) in sig.items():
            f = getattr(so, name)
            f.restype, f.argtypes = res, args
        self.features = built.features
        anchor = C.cast(so.iopgfuzz_abi, C.c_void_p).value
        nm_anchor = next(off for off, _, name in built.symbols if name == "iopgfuzz_abi")
        self.bias = anchor - nm_anchor
        self._starts = [off + self.bias for off, _, _ in built.symbols]
        self._ends = [off + self.bias + size for off, size, _ in built.symbols]
        self._names = [name for _, _, name in built.symbols]
        so.iopgfuzz_set_text(min(self._starts), max(self._ends))
        so.iopgfuzz_ubsan_set_text(C.c_size_t(min(self._starts)), C.c_size_t(max(self._ends)))
        so.iopgfuzz_ubsan_take.argtypes = [C.POINTER(C.POINTER(_Ubsan)), C.POINTER(C.c_uint32)]
        so.iopgfuzz_ubsan_take.restype = C.c_uint32
        n = len(self._names)
        classes = [_SYM_TRANSPARENT if name in TRANSPARENT else
                   CLEAN_SITES.index(SITE_OF[name]) if name in SITE_OF else _SYM_OTHER
                   for name in self._names]
        if so.iopgfuzz_set_symbols(n, (C.c_size_t * n)(*self._starts),
                                   (C.c_size_t * n)(*self._ends), (C.c_int32 * n)(*classes)):
            raise MemoryError("the C runtime could not copy the symbol table")
        so.iopgfuzz_set_costs(ACCESS_COST, EVENT_COST)
        self._pool: dict[tuple, list[_State]] = {}

    def acquire(self, base: int, line: int, page_size: int, coherent: bool,
                budget: int) -> _State:
        """A world state as new: a pooled one reset, else a fresh one."""
        key = (line, bool(coherent))
        pool = self._pool.get(key)
        while pool:
            st = pool.pop()
            if self.so.iopgfuzz_world_reset(st.handle, base, page_size, budget) == 0:
                return st
            self.so.iopgfuzz_world_free(st.handle)
        handle = self.so.iopgfuzz_world_new(base, line, page_size, int(coherent), budget)
        if not handle:
            raise MemoryError("the C runtime could not reserve its arenas (mmap failed)")
        return _State(self, handle, key)

    def drain(self) -> None:
        """Free every pooled state (the next worlds get new ones; states in use stay)."""
        for pool in self._pool.values():
            while pool:
                self.so.iopgfuzz_world_free(pool.pop().handle)

    def release(self, st: _State) -> None:
        """Take a state back (reset when next acquired), or free it when the pool is full."""
        pool = self._pool.setdefault(st.key, [])
        if len(pool) < self.POOL_MAX:
            pool.append(st)
        else:
            self.so.iopgfuzz_world_free(st.handle)

    def warn_site(self, file: str, line: int, func: str, cond: str) -> str:
        """The name of a WARN site: the model's where it has one (WARN_NAMES)."""
        key = (func, cond, 1)
        if file.endswith("io-pgtable-arm.c") and line in self.built.warn_sites:
            key = self.built.warn_sites[line]
        return WARN_NAMES.get(key, f"{func}:{cond}" + (f"#{key[2]}" if key[2] > 1 else ""))

    def function_at(self, pc: int) -> str:
        """The function holding code address `pc` (a return address), or '?'."""
        i = bisect.bisect_right(self._starts, pc) - 1
        if i >= 0 and pc < self._ends[i]:
            return self._names[i]
        if i >= 0 and pc == self._ends[i]:       # a call as the last instruction
            return self._names[i]
        return "?"


class CMemory(Memory):
    """The model's `Memory`, over the C runtime's arenas.  Tables are created from the C's
    allocations (`sync_tables`); CPU accesses, cleans and frees are the C's (the same
    semantics as the model's methods, see runtime.c), so the model's load/store/clean/free
    methods are not used; evictions, the budget and every statistic are the model's."""

    def __init__(self, world: CWorld, state: _State, line: int, events: EventLog, base: int,
                 coherent: bool, page_size: int):
        self._lib = world.lib
        self._w = state.handle
        self._state = state
        self.cpu_arena, self.mem_arena, self.wseq_arena = state.cpu, state.mem, state.wseq
        self.dirty_arena, self.synced_arena = state.dirty, state.synced
        self._ctl, self._tab = state.ctl, state.tab
        self._stats = state.stats
        self._freed_log, self._touched_log = state.freed_log, state.touched_log
        self._relabel_log = state.relabel_log
        self._labelled_log = state.labelled_log
        self.by_index: list[Table] = []
        self._touched_py: set = set()
        self._clean_log: list | None = None
        super().__init__(line=line, events=events, base=base, coherent=coherent,
                         page_size=page_size)
        self.sync_tables()

    # the model's Memory keeps these as fields; here the C holds them
    @property
    def _seq(self) -> int:
        return self._ctl[CTL_SEQ]

    @_seq.setter
    def _seq(self, value) -> None:
        pass

    @property
    def budget(self) -> int | None:
        """The model's work budget (cleans and range walks), kept in the C's control block."""
        return self._ctl[CTL_MBUDGET] if self._ctl[CTL_MBUDGET_ON] else None

    @budget.setter
    def budget(self, value: int | None) -> None:
        if value is None:
            self._ctl[CTL_MBUDGET_ON] = 0
        else:
            self._ctl[CTL_MBUDGET] = value
            self._ctl[CTL_MBUDGET_ON] = 1

    @property
    def clean_log(self) -> list | None:
        return self._clean_log

    @clean_log.setter
    def clean_log(self, value: list | None) -> None:
        self._clean_log = value
        self._ctl[CTL_LOG_CLEANS] = value is not None

    @property
    def touched(self) -> set:
        ctl = self._ctl
        n = ctl[CTL_NTOUCHED]
        if n:
            if ctl[CTL_NTABLES] > len(self.by_index):
                self.sync_tables()
            bi = self.by_index
            self._touched_py.update([bi[i].pa for i in self._touched_log[:n]])
            ctl[CTL_NTOUCHED] = 0
            ctl[CTL_TOUCH_EPOCH] += 1
        return self._touched_py

    @touched.setter
    def touched(self, value) -> None:
        self._touched_py = value

    def sync_tables(self) -> None:
        """Create a Table for every allocation the C made since the last call."""
        ctl = self._ctl
        n = ctl[CTL_NTABLES]
        by_index = self.by_index
        have = len(by_index)
        if have < n:
            st = self._state
            tab, slices, tables, touched = self._tab, st.slices, self.tables, self._touched_py
            le = self.line // ENTRY_BYTES
            new = Table.__new__
            for idx in range(have, n):
                if idx == 0 and st.wild is not None:
                    by_index.append(st.wild)
                    self._wild = st.wild
                    continue
                pa, va_off, nbytes, entries, freed = tab[idx * T_COLS:idx * T_COLS + 5]
                t = new(Table)
                views = slices.get((va_off, nbytes)) or self._slices(va_off, nbytes)
                t.cpu, t.mem, t.wseq, t.dirty, t.synced_seq = views
                t.pa, t.entries, t.alloc_bytes, t.line_entries = pa, entries, nbytes, le
                t.freed, t.lvl, t.iova_base, t.serial = freed != 0, -1, 0, idx
                by_index.append(t)
                if idx == 0:
                    self._wild = st.wild = t
                else:
                    tables[pa] = t
                    touched.add(pa)
            ctl[CTL_ADOPTED] = n
        if ctl[CTL_ENTRIES_STALE]:
            ctl[CTL_ENTRIES_STALE] = 0
            tab = self._tab
            for t in by_index:
                if t.serial:                  # the wild table has none, ever
                    t.entries = tab[t.serial * T_COLS + T_ENTRIES]

    def _slices(self, va_off: int, nbytes: int) -> tuple:
        le = self.line // ENTRY_BYTES
        first, nslots = va_off // ENTRY_BYTES, nbytes // ENTRY_BYTES
        views = (self.cpu_arena[first:first + nslots], self.mem_arena[first:first + nslots],
                 self.wseq_arena[first:first + nslots],
                 self.dirty_arena[first // le:(first + nslots) // le],
                 self.synced_arena[first // le:(first + nslots) // le])
        cache = self._state.slices
        if len(cache) > 4096:
            cache.clear()
        cache[(va_off, nbytes)] = views
        return views

    def after_call(self, news: int) -> None:
        """Adopt what the C did in the call just made (`news`: what changed): new tables,
        freed tables, the clean statistics.  (Events, clean records and labels are the
        world's to adopt.)"""
        ctl = self._ctl
        if news & NEWS_TABLES:
            self.sync_tables()
        if news & NEWS_FREED:
            nf = ctl[CTL_NFREED]
            bi = self.by_index
            for i in self._freed_log[:nf]:
                bi[i].freed = True
            ctl[CTL_NFREED] = 0
        if news & NEWS_CLEANS:
            sites = ctl[CTL_SITES]
            ctl[CTL_SITES] = 0
            stats, k, site_stats = self._stats, len(CLEAN_SITES), self.site_stats
            for i in _BITS[sites]:
                st = site_stats(CLEAN_SITES[i])
                st.calls, st.lines = stats[i], stats[k + i] | (stats[2 * k + i] << 64)

    def adopt_labels(self) -> None:
        """The levels and IOVA bases the C gave tables in the call (runtime.c iopgfuzz_label)."""
        ctl = self._ctl
        n = ctl[CTL_NLABELLED]
        ctl[CTL_NLABELLED] = 0
        ctl[CTL_LABEL_EPOCH] += 1
        bi, tab = self.by_index, self._tab
        for i in self._labelled_log[:n]:
            t = bi[i]
            lvl, t.iova_base = tab[i * T_COLS + T_LVL], tab[i * T_COLS + T_IOVA_BASE]
            t.lvl = lvl - (1 << 64) if lvl >> 63 else lvl

    def refresh_entries(self, t: Table) -> None:
        t.entries = self._tab[t.serial * T_COLS + T_ENTRIES]

    def set_entries(self, t: Table, n: int) -> None:
        self._tab[t.serial * T_COLS + T_ENTRIES] = n
        t.entries = n

    def wild_table(self) -> Table:
        return self.by_index[0]

    def table_repr(self, t: Table, entries: int, freed: bool) -> str:
        """`repr(t)` as it read when the C recorded an event (its size and state then)."""
        return (f"<Table #{t.serial} pa={t.pa:#x} lvl={t.lvl} n={entries}"
                f"{' freed' if freed else ''}>")


class _Op:
    """An io-pgtable op of a CWorld (`IoPgtableOps` member) that does not keep the world
    alive: the ops are reachable from the world, and a world nobody holds should go back to
    the pool at once, not at the next cyclic garbage collection."""

    __slots__ = ("_world", "_fn")

    def __init__(self, world: CWorld, fn):
        self._world = weakref.ref(world)
        self._fn = fn

    def __call__(self, *args):
        world = self._world()
        if world is None:
            raise WorldCrashed("this C world was closed")
        return self._fn(world, *args)


class CWorld(World):
    """A world whose io-pgtable is the compiled kernel C.  Same interface as `World`."""

    kind = "c"

    def __init__(self, config: Config, variant, built: Built, budget: int | None = None):
        self.config = config
        self.variant = variant
        self.events = EventLog()
        self.failpoints = Failpoints()
        self.crashed: KernelBug | None = None
        self.lib = Library.load(built)
        self.notes: list[str] = []
        self._state = st = self.lib.acquire(config.table_base, config.line, config.page_size,
                                            config.coherent_walk,
                                            (budget * C_BUDGET_FACTOR) if budget else 1 << 62)
        self.handle = st.handle
        self._fail_at = 0             # the alloc failpoint as the C has it armed
        self._alloc_hits = 0
        self._out = (C.c_uint64 * 4)()
        self._steps = (C.c_uint64 * 32)()
        self._mapped = C.c_uint64()
        self._mapped_ref = C.byref(self._mapped)
        self._mem = mem = CMemory(self, st, config.line, self.events, config.table_base,
                                  config.coherent_walk, config.page_size)
        mem.budget = budget
        self.data = self._alloc_io_pgtable_ops(mem)
        # the model allocates the PGD with failpoints disarmed and uncounted (_alloc_pgd)
        mem._ctl[CTL_ALLOC_HITS] = self._alloc_hits = 0
        self.failpoints.hits.pop("alloc", None)
        ops = self.data.iop.ops
        self.driver = SmmuDomainOps(ops, variant.driver_iotlb_sync_map(ops))
        self.domain = IommuDomain(self.driver, self.data.iop.cfg.pgsize_bitmap, self.events)

    def close(self) -> None:
        """End this world: its state goes back to the library's pool, for the next world to
        reuse (then its tables read as that world's).  Also when the last reference goes
        (nothing of a CWorld refers back to it, so that is as soon as its user lets go)."""
        st = getattr(self, "_state", None)
        if st is not None:
            self._state = None
            self.handle = None
            try:
                self.lib.release(st)
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass

    def __del__(self):
        self.close()

    def __repr__(self) -> str:
        return f"<CWorld {self.variant.name} {self.config.fmt} {self.config.granule >> 10}K " \
               f"ias={self.data.iop.cfg.ias}{' CRASHED' if self.crashed else ''}>"

    # -- creation ---------------------------------------------------------------------------

    def _alloc_io_pgtable_ops(self, mem: CMemory) -> ArmLpaeIoPgtable:
        config, so = self.config, self.lib.so
        defer = bool(getattr(self.variant, "defer_sync_pte", False))
        if defer and "defer_sync_pte" not in self.lib.features:
            raise ConfigRejected("this build's struct io_pgtable_cfg has no defer_sync_pte")
        pg_shift = (config.requested_pgsize_bitmap & -config.requested_pgsize_bitmap)
        if config.ias - (pg_shift.bit_length() - 1) < 1:
            raise ConfigRejected(f"ias {config.ias} leaves no index bits above the granule "
                                 "(the model's limit, kept for the C world too)")
        g = _Geometry()
        walk = (1 if config.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1 else 0) | \
            (2 if config.fmt == ARM_MALI_LPAE else 0)
        ops_ptr = self._c(so.iopgfuzz_alloc_io_pgtable, FMT_INDEX[config.fmt], config.quirks,
                          config.requested_pgsize_bitmap, config.ias, config.oas,
                          int(config.coherent_walk), int(defer), walk, C.byref(g))
        if not ops_ptr:
            raise ConfigRejected(f"the kernel's alloc_io_pgtable_ops() returned NULL for "
                                 f"{config.fmt} ias={config.ias} oas={config.oas} "
                                 f"quirks={config.quirks:#x}")
        self.ops_ptr = ops_ptr
        cfg = IoPgtableCfg(fmt=config.fmt, quirks=config.quirks, pgsize_bitmap=g.pgsize_bitmap,
                           ias=g.ias, oas=g.oas, coherent_walk=config.coherent_walk,
                           defer_sync_pte=defer)
        data = ArmLpaeIoPgtable(iop=IoPgtable(config.fmt, cfg), pgd_bits=g.pgd_bits,
                                start_level=g.start_level, bits_per_level=g.bits_per_level,
                                mem=mem, events=self.events, failpoints=self.failpoints,
                                config=config)
        # the C has set the size of tables to come, a coherent PGD's size and the PGD's label
        granule = ENTRY_BYTES << g.bits_per_level
        pgd = mem.by_index[g.pgd_index]
        pgd.lvl, pgd.iova_base = g.start_level, 0
        data.pgd = pgd
        self.granule = granule
        cls = type(self)
        sync = _Op(self, cls._iotlb_sync_map) if g.has_iotlb_sync_map else None
        data.iop.ops = IoPgtableOps(map_pages=_Op(self, cls._map_pages),
                                    unmap_pages=_Op(self, cls._unmap_pages),
                                    iova_to_phys=_Op(self, cls._iova_to_phys),
                                    pgtable_walk=None, iotlb_sync_map=sync, data=data)
        return data

    # -- calling the C ----------------------------------------------------------------------

    def _c(self, fn, *args):
        """Call an entry point and turn what happened into the model's terms: the alloc
        failpoint armed before and what fired after, new and freed tables and new labels
        adopted, clean statistics read back, events drained (those the model records as they
        happen first), clean records built, BUG_ON raised as KernelBug, exhaustion raised."""
        w = self.handle
        if w is None:
            raise WorldCrashed("this C world was closed")
        mem = self._mem
        ctl = mem._ctl
        armed = self.failpoints.armed
        if armed or self._fail_at:
            fail_at = armed["alloc"].at_hit if "alloc" in armed else 0
            if fail_at != self._fail_at:
                ctl[CTL_ALLOC_FAIL_AT] = self._fail_at = fail_at
        ret = fn(w, *args)
        news = ctl[CTL_NEWS]
        if not news:
            return ret
        ctl[CTL_NEWS] = 0
        if news & NEWS_ALLOC:
            self._alloc_hit()
        if news & NEWS_UBSAN:
            self._drain_ubsan()
        mem.after_call(news)
        if news & NEWS_EVENTS:
            self._drain_events()
        if news & NEWS_RECS:
            self._drain_cleans()
        if news & NEWS_LABELS:              # after the events: they name the labels before
            mem.adopt_labels()
        if news & NEWS_CRASH:
            self._crashed(ctl[CTL_CRASHED])
        return ret

    def _crashed(self, status: int) -> None:
        ctl = self._mem._ctl
        if status == 1:
            line, func = C.c_int(), C.c_char_p()
            f = self.lib.so.iopgfuzz_bug_site(self.handle, C.byref(line), C.byref(func))
            site = f"{func.value.decode()}@{_short(f)}:{line.value}"
            self.events.record("BUG", site)
            raise KernelBug(site)
        if status in (2, 3):
            if ctl[CTL_MBUDGET_ASKED]:        # a clean ran the model's budget out
                raise BudgetExhausted(f"work budget exhausted ({ctl[CTL_MBUDGET_ASKED]} "
                                      "more units asked)")
            raise BudgetExhausted("the C world's work budget ran out")

    def _drain_ubsan(self) -> None:
        """Undefined behaviour the C ran into (shim/ubsan.c): one `ubsan` event per check and
        line, its site the function, its detail the check, source line, operands and stack."""
        log, dropped = C.POINTER(_Ubsan)(), C.c_uint32()
        n = self.lib.so.iopgfuzz_ubsan_take(C.byref(log), C.byref(dropped))
        for i in range(n):
            r = log[i]
            stack = [self.lib.function_at(r.pcs[j]) for j in range(r.npcs)]
            site = stack[0] if stack else "?"
            self.events.record(UBSAN, site, f"{r.check.decode()} at {_short(r.file)}:{r.line} "
                               f"(operands {r.a:#x}, {r.b:#x}); stack: {' < '.join(stack)}")
        if dropped.value:
            self.events.record("note", "c-world", f"{dropped.value} more ubsan reports dropped")

    def _alloc_hit(self) -> None:
        """The alloc failpoint was hit in the C: the model's `Failpoints.should_fail` did
        this (count every hit, disarm and record what fired)."""
        ctl, fp = self._mem._ctl, self.failpoints
        self._alloc_hits = ctl[CTL_ALLOC_HITS]
        fp.hits["alloc"] = self._alloc_hits
        hit = ctl[CTL_ALLOC_FIRED]
        if hit:
            ctl[CTL_ALLOC_FIRED] = 0
            self._fail_at = 0                     # the C disarmed it
            a = fp.armed.pop("alloc")
            fp.fired.append(Fired("alloc", a.err, hit))

    def _drain_pyevents(self) -> None:
        """The events the model records at the moment they happen, in its words."""
        mem, ctl = self._mem, self._mem._ctl
        n = ctl[CTL_NPYEVENTS]
        ctl[CTL_NPYEVENTS] = 0
        rows = self._state.logs()[0][:n].tolist()
        record = self.events.record
        for kind, table, site, first, nbytes, entries, pa, pc in rows:
            caller = self.lib.function_at(pc)
            if kind == _PYEV_DOUBLE_FREE:
                t = mem.by_index[table]
                record(UAF_WRITE, "free", f"double free of {mem.table_repr(t, entries, True)}")
                continue
            site = CLEAN_SITES[site]
            if kind == _PYEV_NO_TABLE_CLEAN:
                record(OOB_CLEAN, caller, f"clean of {nbytes:#x} bytes at pa {pa:#x}, "
                                          f"in no table, site={site}")
                continue
            t = mem.by_index[table]
            if kind == _PYEV_UAF_CLEAN:
                start = first * ENTRY_BYTES
                record(UAF_CLEAN, caller, f"{mem.table_repr(t, entries, True)} bytes "
                                          f"[{start}, {start + nbytes}) site={site}")
            else:
                record(OOB_CLEAN, caller, f"{mem.table_repr(t, entries, False)} entries "
                                          f"[{first}, {first}+{s64(nbytes) / 8:g}) of "
                                          f"{entries} site={site}")

    def _drain_cleans(self) -> None:
        """The clean records of the call just made, as the model's `CleanRecord`s."""
        mem, ctl = self._mem, self._mem._ctl
        n, nchanged = ctl[CTL_NRECS], ctl[CTL_NCHANGED]
        ctl[CTL_NRECS] = ctl[CTL_NCHANGED] = 0
        _, recs, changed = self._state.logs()
        rows = recs[:n].tolist()
        changed = changed[:nchanged].copy() if nchanged else np.zeros(0, dtype=np.int64)
        log = mem.clean_log
        if log is None:
            return
        bi = mem.by_index
        for site, table, first_line, nlines, off, cn in rows:
            log.append(CleanRecord(CLEAN_SITES[site], bi[table], first_line, nlines,
                                   changed[off:off + cn]))

    def _drain_events(self) -> None:
        """The events of the call just made, in the order the model records them: those it
        records as they happen (bad cleans, double frees) first, then the C's log."""
        ctl = self._mem._ctl
        if ctl[CTL_NPYEVENTS]:
            self._drain_pyevents()
        if not (ctl[CTL_NEVENTS] or ctl[CTL_DROPPED_EVENTS]):
            return
        so = self.lib.so
        ptr, dropped = C.POINTER(_Event)(), C.c_uint32()
        n = so.iopgfuzz_take_events(self.handle, C.byref(ptr), C.byref(dropped))
        mem = self._mem
        for i in range(n):
            e = ptr[i]
            if e.kind == _WARN_KIND:
                site = self.lib.warn_site(e.file.decode(), e.line, e.func.decode(),
                                          e.cond.decode())
                self.events.warn_many(e.count, site, f"{_short(e.file)}:{e.line}")
                continue
            kind = _KINDS[e.kind]
            func = self.lib.function_at(e.pc or 0)
            if kind == BAD_POINTER:
                self.events.record(kind, "iopte_deref", f"pa {e.pa:#x} in {func}")
                continue
            t = mem.by_index[e.table] if 0 <= e.table < len(mem.by_index) else None
            what = f"{t!r}" if t is not None else "no table"
            ents = f"entries [{e.first}, {e.last + 1})" + (f" ({e.count} accesses)"
                                                            if e.count > 1 else "")
            of = f" of {t.entries}" if t is not None else ""
            self.events.record(kind, func, f"{what} {ents}{of}")
        if dropped.value:
            self.events.record("note", "c-world", f"{dropped.value} further events not logged")

    # -- the io-pgtable ops, as the model's IoPgtableOps members ----------------------------

    def _map_pages(self, ops, iova, paddr, pgsize, pgcount, prot, gfp, mapped: Ref) -> int:
        m = self._mapped
        m.value = mapped.value & U64
        try:
            ret = self._c(self.lib.so.iopgfuzz_map_pages, self.ops_ptr, iova & U64,
                          paddr & U64, pgsize & U64, pgcount & U64, prot, self._mapped_ref)
        finally:
            mapped.value = m.value
        return ret

    def _unmap_pages(self, ops, iova, pgsize, pgcount, gather) -> int:
        return self._c(self.lib.so.iopgfuzz_unmap_pages, self.ops_ptr, iova & U64,
                       pgsize & U64, pgcount & U64, int(gather is not None))

    def _iotlb_sync_map(self, ops, iova, size) -> int:
        mem = self.data.mem
        log = mem.access_log is not None
        try:
            return self._c(self.lib.so.iopgfuzz_iotlb_sync_map, self.ops_ptr, iova & U64,
                           size & U64, int(log))
        finally:
            if log:
                self._drain_accesses(mem)

    def _drain_accesses(self, mem: CMemory) -> None:
        """The sync walk's reads, as the model's `AccessRecord`s (table -1: the wild table)."""
        ctl = mem._ctl
        n = ctl[CTL_NACCESSES]
        ctl[CTL_NACCESSES] = ctl[CTL_DROPPED_ACCESSES] = 0
        if not n:
            return
        bi, log = mem.by_index, mem.access_log
        for table, _, first, count in self._state.accesses[:n].tolist():
            log.append(AccessRecord(bi[table] if table >= 0 else bi[0], first, count))

    def _iova_to_phys(self, ops, iova) -> int:
        return self._c(self.lib.so.iopgfuzz_iova_to_phys, self.ops_ptr, iova & U64)

    # -- World methods that the model implements in Python ------------------------------------

    def take_changed_tables(self) -> set[int]:
        """`World.take_changed_tables`, without the property round trip."""
        mem = self._mem
        touched = mem.touched
        mem._touched_py = set()
        return touched

    def table_view(self, pa: int) -> tuple[bool, np.ndarray] | None:
        t = self._mem.tables.get(pa)
        return None if t is None else (t.freed, t.cpu[:t.entries])

    def smmu_walk(self, iova: int, view: str = "mem") -> Walk:
        """`smmu.smmu_walk` (the same descriptors, fault and output address), run by the
        runtime on its own tables and labels."""
        if self.handle is None:
            raise WorldCrashed("this C world was closed")
        iova &= U64
        steps, out = self._steps, self._out
        n = self.lib.so.iopgfuzz_smmu_walk(self.handle, iova, view == "mem", _HW_MASK, steps,
                                           out)
        w = Walk(iova, view)
        if n:
            vals = steps[:4 * n]
            get = _STEPS.get
            w.steps = [get(key) or _walk_step(key) for key in
                       zip(vals[0::4], vals[1::4], vals[2::4], vals[3::4], strict=True)]
        w.level = out[1]
        if out[0]:
            w.fault = _FAULTS[out[0]]
        else:
            w.oa = out[2]
        return w

    def evict(self, iova: int | None = None) -> int:
        """`World.evict` (all dirty lines, or those of iova's CPU walk), in the runtime."""
        if self.handle is None:
            raise WorldCrashed("this C world was closed")
        n = self.lib.so.iopgfuzz_evict(self.handle, (iova or 0) & U64, iova is None, _HW_MASK)
        if n < 0:                     # a walk step past its table's lines: the model's error
            return super().evict(iova)
        return n

    def first_divergence(self, iova: int, size: int) -> Divergence | None:
        """`smmu.first_divergence` (the same walk, result and budget charges), run by the
        runtime on its own tables and labels."""
        if size <= 0:
            return None
        if self.handle is None:
            raise WorldCrashed("this C world was closed")
        lo = iova & U64
        hi = (iova + size - 1) & U64 if lo + size - 1 < (1 << 64) else U64
        out = self._out
        r = self.lib.so.iopgfuzz_first_divergence(self.handle, lo, hi, _HW_MASK, out)
        if r == 0:
            return None
        if r < 0:
            raise BudgetExhausted(f"work budget exhausted ({out[3]} more units asked)")
        return Divergence(out[0], s64(out[1]), _DIVERGENCE_REASONS[out[2]])

    def free(self) -> None:
        """`free_io_pgtable_ops`."""
        self._call(self._c, self.lib.so.iopgfuzz_free_io_pgtable, self.ops_ptr)

    def fail(self, site: str, nth: int = 1, err: int | None = None) -> None:
        if site == "sync_map":
            # the posted walker has no error path: no C counterpart of this failpoint
            self.events.record("note", "fail:sync_map",
                               "no C counterpart (the C walker has no error path); skipped")
            return
        self.failpoints.arm(site, nth, err)


def _walk_step(key: tuple) -> WalkStep:
    """`WalkStep(*key)`, made once: a WalkStep is a frozen value, so walks may share one."""
    if len(_STEPS) > 1 << 16:
        _STEPS.clear()
    s = _STEPS[key] = WalkStep(*key)
    return s


#: (lvl, table_pa, idx, desc) -> its WalkStep
_STEPS: dict[tuple, WalkStep] = {}


def _pa(t: Table) -> int:
    return t.pa


def _short(path) -> str:
    s = path.decode() if isinstance(path, bytes) else str(path)
    return s.rsplit("/", 1)[-1]
