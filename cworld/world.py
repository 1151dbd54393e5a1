"""`CWorld`: a userspace build of the kernel's io-pgtable-arm.c behind the model's World API.

The C owns the page-table memory; Python sees it without copies.  Every table the C allocates
is a `model.memory.Table` whose arrays are NumPy views of the runtime's arenas (CPU view,
memory view, store sequence numbers, dirty lines), so the SMMU walker, the oracles, `evict`
and the statistics of the model run on the C world unchanged.  A clean is a callback into
Python that runs the model's own `Memory.dma_sync_for_device` on those views: one definition
of what a clean does and how it is counted, for both kinds of world.

What the C cannot tell the model by itself, the world derives after each call: which level a
table is at and which IOVAs it covers (from the table descriptors that point at it), and
which clean site a `dma_sync_single_for_device` belongs to (from the return addresses on the
stack, see `SITE_OF`).  The iommu core and the driver layer stay the model's.
"""

from __future__ import annotations

import bisect
import ctypes as C
from dataclasses import dataclass

import numpy as np

from model.config import (
    ARM_32_LPAE_S1,
    ARM_32_LPAE_S2,
    ARM_64_LPAE_S1,
    ARM_64_LPAE_S2,
    ARM_MALI_LPAE,
    Config,
    IoPgtableCfg,
)
from model.driver import SmmuDomainOps
from model.errors import BudgetExhausted, ConfigRejected, KernelBug
from model.events import BAD_POINTER, OOB_READ, OOB_WRITE, UAF_READ, UAF_WRITE, EventLog
from model.failpoints import Failpoints
from model.io_pgtable_arm import ARM_LPAE_BLOCK_SIZE, ArmLpaeIoPgtable, IoPgtable, IoPgtableOps, Ref
from model.iommu import IommuDomain
from model.memory import ENTRY_BYTES, AccessRecord, Memory, Table
from model.pte import ARM_LPAE_PTE_TYPE_TABLE, iopte_to_paddr_np
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


class _Geometry(C.Structure):
    _fields_ = [("pgd_bits", C.c_int32), ("start_level", C.c_int32),
                ("bits_per_level", C.c_int32), ("has_iotlb_sync_map", C.c_int32),
                ("pgd_pa", C.c_uint64), ("pgsize_bitmap", C.c_uint64), ("ias", C.c_uint32),
                ("oas", C.c_uint32), ("ttbr", C.c_uint64)]


class _Table(C.Structure):
    _fields_ = [("pa", C.c_uint64), ("va_off", C.c_uint64), ("bytes", C.c_uint64),
                ("entries", C.c_uint64), ("freed", C.c_uint32), ("touched", C.c_uint32)]


class _Event(C.Structure):
    _fields_ = [("kind", C.c_int32), ("table", C.c_int32), ("first", C.c_int64),
                ("last", C.c_int64), ("count", C.c_uint64), ("pa", C.c_uint64), ("pc", C.c_void_p),
                ("file", C.c_char_p), ("func", C.c_char_p), ("cond", C.c_char_p),
                ("line", C.c_int32), ("pad", C.c_int32)]


class _Access(C.Structure):
    _fields_ = [("table", C.c_int32), ("pad", C.c_int32), ("first", C.c_int64),
                ("n", C.c_int64)]


class _Arrays(C.Structure):
    _fields_ = [("cpu", C.c_void_p), ("mem", C.c_void_p), ("wseq", C.c_void_p),
                ("dirty", C.c_void_p), ("synced_seq", C.c_void_p), ("arena_bytes", C.c_uint64)]


ALLOC_CB = C.CFUNCTYPE(C.c_int, C.c_uint64, C.c_uint32)
CLEAN_CB = C.CFUNCTYPE(None, C.c_int32, C.c_int64, C.c_uint64, C.c_int32,
                       C.POINTER(C.c_void_p), C.c_int32)
FREE_CB = C.CFUNCTYPE(None, C.c_int32)


class Library:
    """One loaded build.  Loaded once per process and shared by the worlds that use it."""

    _loaded: dict[str, Library] = {}

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
            "iopgfuzz_set_callbacks": (None, [vp, ALLOC_CB, CLEAN_CB, FREE_CB]),
            "iopgfuzz_set_text": (None, [C.c_size_t, C.c_size_t]),
            "iopgfuzz_alloc_io_pgtable": (vp, [vp, C.c_int, u64, u64, u32, u32, C.c_int,
                                               C.c_int, C.POINTER(_Geometry)]),
            "iopgfuzz_map_pages": (C.c_int, [vp, vp, u64, u64, u64, u64, C.c_int,
                                             C.POINTER(u64)]),
            "iopgfuzz_unmap_pages": (u64, [vp, vp, u64, u64, u64, C.c_int]),
            "iopgfuzz_iotlb_sync_map": (C.c_int, [vp, vp, u64, u64, C.c_int]),
            "iopgfuzz_iova_to_phys": (u64, [vp, vp, u64]),
            "iopgfuzz_free_io_pgtable": (None, [vp, vp]),
            "iopgfuzz_status": (C.c_int, [vp]),
            "iopgfuzz_abort": (None, [vp]),
            "iopgfuzz_ntables": (u32, [vp]),
            "iopgfuzz_table": (C.POINTER(_Table), [vp, u32]),
            "iopgfuzz_seq": (i64, [vp]),
            "iopgfuzz_budget": (i64, [vp]),
            "iopgfuzz_set_budget": (None, [vp, i64]),
            "iopgfuzz_set_default_entries": (None, [vp, i64]),
            "iopgfuzz_bug_site": (C.c_char_p, [vp, C.POINTER(C.c_int), C.POINTER(C.c_char_p)]),
            "iopgfuzz_take_events": (u32, [vp, C.POINTER(C.POINTER(_Event)), C.POINTER(u32)]),
            "iopgfuzz_take_accesses": (u32, [vp, C.POINTER(C.POINTER(_Access)),
                                             C.POINTER(u32)]),
            "iopgfuzz_take_touched": (u32, [vp, C.POINTER(i32), u32]),
            "iopgfuzz_features": (C.c_int, []),
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
    allocations (`sync_tables`); CPU accesses are the C's, so the model's load/store methods
    are not used, but cleans, evictions, poisoning and every statistic are the model's."""

    def __init__(self, world: CWorld, line: int, events: EventLog, base: int, coherent: bool,
                 page_size: int):
        self._cworld = world
        self._lib = world.lib
        self._w = world.handle
        super().__init__(line=line, events=events, base=base, coherent=coherent,
                         page_size=page_size)
        a = _Arrays()
        self._lib.so.iopgfuzz_world_arrays(self._w, C.byref(a))
        n = a.arena_bytes // ENTRY_BYTES
        nlines = a.arena_bytes // line
        self.cpu_arena = np.ctypeslib.as_array(C.cast(a.cpu, C.POINTER(C.c_uint64)), (n,))
        self.mem_arena = np.ctypeslib.as_array(C.cast(a.mem, C.POINTER(C.c_uint64)), (n,))
        self.wseq_arena = np.ctypeslib.as_array(C.cast(a.wseq, C.POINTER(C.c_int64)), (n,))
        self.dirty_arena = np.ctypeslib.as_array(
            C.cast(a.dirty, C.POINTER(C.c_uint8)), (nlines,)).view(np.bool_)
        self.synced_arena = np.ctypeslib.as_array(
            C.cast(a.synced_seq, C.POINTER(C.c_int64)), (nlines,))
        self.by_index: list[Table] = []
        self._touched_py: set = set()
        self.sync_tables()

    # the model's Memory keeps these as fields; here the C holds them
    @property
    def _seq(self) -> int:
        return self._lib.so.iopgfuzz_seq(self._w)

    @_seq.setter
    def _seq(self, value) -> None:
        pass

    @property
    def touched(self) -> set:
        buf = (C.c_int32 * 256)()
        while True:
            n = self._lib.so.iopgfuzz_take_touched(self._w, buf, 256)
            for i in buf[:n]:
                self._touched_py.add(self.by_index[i].pa)
            if n < 256:
                break
        return self._touched_py

    @touched.setter
    def touched(self, value) -> None:
        self._touched_py = value

    def sync_tables(self) -> None:
        """Create a Table for every allocation the C made since the last call."""
        so = self._lib.so
        n = so.iopgfuzz_ntables(self._w)
        le = self.line // ENTRY_BYTES
        while len(self.by_index) < n:
            idx = len(self.by_index)
            info = so.iopgfuzz_table(self._w, idx).contents
            t = Table.__new__(Table)
            first, nslots = info.va_off // ENTRY_BYTES, info.bytes // ENTRY_BYTES
            t.pa, t.entries, t.alloc_bytes = info.pa, info.entries, info.bytes
            t.line_entries = le
            t.cpu = self.cpu_arena[first:first + nslots]
            t.mem = self.mem_arena[first:first + nslots]
            t.wseq = self.wseq_arena[first:first + nslots]
            t.dirty = self.dirty_arena[first // le:(first + nslots) // le]
            t.synced_seq = self.synced_arena[first // le:(first + nslots) // le]
            t.freed = False
            t.lvl, t.iova_base, t.serial = -1, 0, idx
            self.by_index.append(t)
            if idx == 0:
                self._wild = t
            else:
                self.tables[t.pa] = t
                self._touched_py.add(t.pa)

    def _clean_caller(self) -> str:
        return self._cworld.clean_caller

    def refresh_entries(self, t: Table) -> None:
        t.entries = self._lib.so.iopgfuzz_table(self._w, t.serial).contents.entries

    def wild_table(self) -> Table:
        return self.by_index[0]


@dataclass
class _Pending:
    """An exception raised inside a callback, re-raised once the C has unwound."""

    exc: BaseException | None = None


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
        so = self.lib.so
        self.handle = so.iopgfuzz_world_new(config.table_base, config.line, config.page_size,
                                            int(config.coherent_walk),
                                            (budget * C_BUDGET_FACTOR) if budget else 1 << 62)
        if not self.handle:
            raise MemoryError("the C runtime could not reserve its arenas (mmap failed)")
        self._pending = _Pending()
        self._context = None          # the io-pgtable op running (for the clean sites)
        self.clean_caller = "?"       # the C function of the clean being made
        self._callbacks = (ALLOC_CB(self._on_alloc), CLEAN_CB(self._on_clean),
                           FREE_CB(self._on_free))
        so.iopgfuzz_set_callbacks(self.handle, *self._callbacks)
        self._mem = mem = CMemory(self, config.line, self.events, config.table_base,
                                  config.coherent_walk, config.page_size)
        mem.budget = budget
        self.data = self._alloc_io_pgtable_ops(mem)
        ops = self.data.iop.ops
        self.driver = SmmuDomainOps(ops, variant.driver_iotlb_sync_map(ops))
        self.domain = IommuDomain(self.driver, self.data.iop.cfg.pgsize_bitmap, self.events)

    def __del__(self):
        h = getattr(self, "handle", None)
        if h:
            self.lib.so.iopgfuzz_world_free(h)
            self.handle = None

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
        ops_ptr = self._c(so.iopgfuzz_alloc_io_pgtable, FMT_INDEX[config.fmt], config.quirks,
                          config.requested_pgsize_bitmap, config.ias, config.oas,
                          int(config.coherent_walk), int(defer), C.byref(g))
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
        granule = ENTRY_BYTES << g.bits_per_level
        so.iopgfuzz_set_default_entries(self.handle, granule // ENTRY_BYTES)
        mem.sync_tables()
        pgd = mem.lookup(g.pgd_pa)
        if config.coherent_walk:      # no dma_map_single told the runtime the PGD's size
            n = (ENTRY_BYTES << g.pgd_bits) // ENTRY_BYTES
            so.iopgfuzz_table(self.handle, pgd.serial).contents.entries = n
            pgd.entries = n
        pgd.lvl, pgd.iova_base = g.start_level, 0
        data.pgd = pgd
        self.granule = granule
        sync = self._iotlb_sync_map if g.has_iotlb_sync_map else None
        data.iop.ops = IoPgtableOps(map_pages=self._map_pages, unmap_pages=self._unmap_pages,
                                    iova_to_phys=self._iova_to_phys, pgtable_walk=None,
                                    iotlb_sync_map=sync, data=data)
        return data

    # -- calling the C ----------------------------------------------------------------------

    def _c(self, fn, *args):
        """Call an entry point and turn what happened into the model's terms: events drained,
        new tables adopted and labelled, BUG_ON raised as KernelBug, exhaustion raised."""
        so, w = self.lib.so, self.handle
        ret = fn(w, *args)
        status = so.iopgfuzz_status(w)
        self._drain_events()
        self._mem.sync_tables()
        if hasattr(self, "data"):
            self._label_tables()
        if status == 1:
            line, func = C.c_int(), C.c_char_p()
            f = so.iopgfuzz_bug_site(w, C.byref(line), C.byref(func))
            site = f"{func.value.decode()}@{_short(f)}:{line.value}"
            self.events.record("BUG", site)
            raise KernelBug(site)
        if status in (2, 3):
            exc, self._pending.exc = self._pending.exc, None
            if exc is not None:
                raise exc
            raise BudgetExhausted("the C world's work budget ran out")
        return ret

    def _drain_events(self) -> None:
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
            mem.sync_tables()
            t = mem.by_index[e.table] if 0 <= e.table < len(mem.by_index) else None
            what = f"{t!r}" if t is not None else "no table"
            ents = f"entries [{e.first}, {e.last + 1})" + (f" ({e.count} accesses)"
                                                            if e.count > 1 else "")
            of = f" of {t.entries}" if t is not None else ""
            self.events.record(kind, func, f"{what} {ents}{of}")
        if dropped.value:
            self.events.record("note", "c-world", f"{dropped.value} further events not logged")

    def _label_tables(self) -> None:
        """Level and IOVA base of every table, from the table descriptors that point at it
        (the C does not say which level it allocates for)."""
        mem = self.data.mem
        todo = [mem.tables[pa] for pa in sorted(mem.touched) if pa in mem.tables]
        while todo:
            parent = todo.pop()
            if parent.freed or parent.lvl < 0 or parent.lvl >= 3:
                continue
            ptes = parent.cpu[:parent.entries]
            idx = np.equal(ptes & np.uint64(3), np.uint64(ARM_LPAE_PTE_TYPE_TABLE)).nonzero()[0]
            if not len(idx):
                continue
            pas = iopte_to_paddr_np(ptes[idx], self.granule)
            blk = ARM_LPAE_BLOCK_SIZE(parent.lvl, self.data)
            for i, pa in zip(idx.tolist(), pas.tolist(), strict=True):
                child = mem.tables.get(pa)
                if child is None or child.freed:
                    continue
                base = (parent.iova_base + i * blk) & U64
                if child.lvl != parent.lvl + 1 or child.iova_base != base:
                    child.lvl, child.iova_base = parent.lvl + 1, base
                    todo.append(child)

    # -- callbacks (never raise into C) -------------------------------------------------------

    def _on_alloc(self, nbytes: int, gfp: int) -> int:
        try:
            return 0 if self.failpoints.should_fail("alloc") else 1
        except BaseException as e:  # noqa: BLE001
            self._abort(e)
            return 0

    def _on_clean(self, table: int, offset: int, size: int, is_map: int, pcs, npcs) -> None:
        try:
            mem = self._mem
            mem.sync_tables()
            pcs = [pcs[i] for i in range(npcs)]
            site = "alloc" if is_map else self._site(pcs)
            # what the model calls the function that asked: the C function that called the
            # DMA API (__arm_lpae_sync_pte, __arm_lpae_alloc_pages)
            self.clean_caller = self.lib.function_at(pcs[0]) if pcs else "?"
            if table < 0:
                mem.charge(256)
                self.events.record("oob-clean", self.clean_caller,
                                   f"clean of {size:#x} bytes at pa {offset & U64:#x}, "
                                   f"in no table, site={site}")
                return
            t = mem.by_index[table]
            if is_map:
                mem.refresh_entries(t)
            mem.dma_sync_for_device(t, offset // ENTRY_BYTES, size, site)
        except BaseException as e:  # noqa: BLE001
            self._abort(e)

    def _on_free(self, table: int) -> None:
        try:
            mem = self._mem
            mem.sync_tables()
            mem.free_table(mem.by_index[table])
        except BaseException as e:  # noqa: BLE001
            self._abort(e)

    def _abort(self, e: BaseException) -> None:
        if self._pending.exc is None:
            self._pending.exc = e
        self.lib.so.iopgfuzz_abort(self.handle)

    def _site(self, pcs: list) -> str:
        for pc in pcs:
            name = self.lib.function_at(pc or 0)
            if name in TRANSPARENT:
                continue
            site = SITE_OF.get(name)
            if site is not None:
                return site
            break
        return {"sync": "sync_map", "unmap": "unmap"}.get(self._context, "leaf")

    # -- the io-pgtable ops, as the model's IoPgtableOps members ----------------------------

    def _map_pages(self, ops, iova, paddr, pgsize, pgcount, prot, gfp, mapped: Ref) -> int:
        m = C.c_uint64(mapped.value & U64)
        self._context = "map"
        try:
            ret = self._c(self.lib.so.iopgfuzz_map_pages, self.ops_ptr, iova & U64,
                          paddr & U64, pgsize & U64, pgcount & U64, prot, C.byref(m))
        finally:
            self._context = None
            mapped.value = m.value
        return ret

    def _unmap_pages(self, ops, iova, pgsize, pgcount, gather) -> int:
        self._context = "unmap"
        try:
            return self._c(self.lib.so.iopgfuzz_unmap_pages, self.ops_ptr, iova & U64,
                           pgsize & U64, pgcount & U64, int(gather is not None))
        finally:
            self._context = None

    def _iotlb_sync_map(self, ops, iova, size) -> int:
        mem = self.data.mem
        log = mem.access_log is not None
        self._context = "sync"
        try:
            return self._c(self.lib.so.iopgfuzz_iotlb_sync_map, self.ops_ptr, iova & U64,
                           size & U64, int(log))
        finally:
            self._context = None
            if log:
                self._drain_accesses(mem)

    def _drain_accesses(self, mem: CMemory) -> None:
        ptr, dropped = C.POINTER(_Access)(), C.c_uint32()
        n = self.lib.so.iopgfuzz_take_accesses(self.handle, C.byref(ptr), C.byref(dropped))
        for i in range(n):
            a = ptr[i]
            mem.access_log.append(AccessRecord(mem.by_index[a.table] if a.table >= 0
                                               else mem.by_index[0], a.first, a.n))

    def _iova_to_phys(self, ops, iova) -> int:
        return self._c(self.lib.so.iopgfuzz_iova_to_phys, self.ops_ptr, iova & U64)

    # -- World methods that the model implements in Python ------------------------------------

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


def _short(path) -> str:
    s = path.decode() if isinstance(path, bytes) else str(path)
    return s.rsplit("/", 1)[-1]
