"""A `World`: one configured page table, its iommu domain and driver, under one variant.

This is the model's public face.  Operations mirror the kernel entry points; inspection
methods give oracles and users what they need without reaching into private fields.  A
`BUG_ON` leaves the world crashed: the exception propagates once, and later operations raise
`WorldCrashed`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from . import smmu
from .config import IOMMU_READ, IOMMU_WRITE, Config
from .driver import SmmuDomainOps, upstream_causes
from .errors import KernelBug, WorldCrashed
from .events import EventLog
from .failpoints import Failpoints
from .interface import OpTrace, SyncCall, WorldInterface
from .io_pgtable_arm import (
    ARM_LPAE_BLOCK_SIZE,
    ARM_LPAE_GRANULE,
    ARM_LPAE_PGD_SIZE,
    ARM_LPAE_PTES_PER_TABLE,
    Ref,
    alloc_io_pgtable_ops,
    arm_lpae_free_pgtable,
)
from .iommu import (
    IommuDomain,
    Scatterlist,
    iommu_map,
    iommu_map_nosync,
    iommu_map_sg,
    iommu_sync_map,
    iommu_unmap,
)
from .memory import CLEAN_SITES
from .variants import Reference, Variant

PROT_RW = IOMMU_READ | IOMMU_WRITE


@dataclass(frozen=True)
class Geometry:
    levels: int
    start_level: int
    pgd_bits: int
    bits_per_level: int
    pgd_entries: int
    granule: int
    pgsize_bitmap: int
    ias: int
    oas: int

    def as_dict(self) -> dict:
        return {"levels": self.levels, "start_level": self.start_level,
                "pgd_bits": self.pgd_bits, "bits_per_level": self.bits_per_level,
                "pgd_entries": self.pgd_entries}


class _SyncWalkTracer:
    """Stands in for a world's io-pgtable `iotlb_sync_map` (whatever variant or plugin set it)
    and records each call: the entries the walk read, the lines it cleaned, the `sync_map`
    failpoint's hits.  It holds the world weakly: it is itself reachable from the world, and a
    world nobody holds should end at once (a C world then goes back to its pool), not at the
    next cyclic garbage collection."""

    def __init__(self, world: World):
        self._world = weakref.ref(world)
        self.inner = world.data.iop.ops.iotlb_sync_map
        self.calls: list[SyncCall] = []

    def __call__(self, ops, iova, size):
        data = self._world().data
        mem, fp = data.mem, data.failpoints
        call = SyncCall(iova, size)
        self.calls.append(call)
        mem.access_log, mem.clean_log = call.accesses, call.cleans
        hits0, fired0 = fp.hits.get("sync_map", 0), len(fp.fired)
        try:
            call.ret = self.inner(ops, iova, size)
        finally:
            mem.access_log = mem.clean_log = None
            call.hits = list(range(hits0 + 1, fp.hits.get("sync_map", 0) + 1))
            call.fired = [f for f in fp.fired[fired0:] if f.site == "sync_map"]
        return call.ret


class World(WorldInterface):
    """The model's world (model/interface.py is what the fuzzer may use of it)."""

    _tracer: _SyncWalkTracer | None = None
    _op_mark: tuple | None = None
    _geometry: Geometry | None = None

    def __init__(self, config: Config, variant: Variant | None = None,
                 budget: int | None = None):
        self.config = config
        self.variant = variant or Reference()
        self.events = EventLog()
        self.failpoints = Failpoints()
        self.data = alloc_io_pgtable_ops(config, self.events, self.failpoints,
                                         defer_sync_pte=self.variant.defer_sync_pte)
        self.data.mem.budget = budget
        ops = self.data.iop.ops
        ops.iotlb_sync_map = self.variant.io_pgtable_iotlb_sync_map(self.data)
        self.driver = SmmuDomainOps(ops, self.variant.driver_iotlb_sync_map(ops))
        self.domain = IommuDomain(self.driver, self.data.iop.cfg.pgsize_bitmap, self.events)
        self.crashed: KernelBug | None = None

    def __repr__(self) -> str:
        return f"<World {self.variant.name} {self.config.fmt} {self.config.granule >> 10}K " \
               f"ias={self.data.iop.cfg.ias}{' CRASHED' if self.crashed else ''}>"

    def _call(self, fn, *args):
        if self.crashed is not None:
            raise WorldCrashed(f"this world hit {self.crashed}; no further operations")
        try:
            return fn(*args)
        except KernelBug as bug:
            # a copy without the traceback: the traceback's frames hold whoever called (the
            # executor and both worlds), a cycle that would keep this world, and a C world's
            # state, until the next full garbage collection
            self.crashed = KernelBug(bug.site, bug.detail)
            raise

    # -- the iommu core --------------------------------------------------------------------

    def map(self, iova: int, paddr: int, size: int, prot: int = PROT_RW) -> int:
        return self._call(iommu_map, self.domain, iova, paddr, size, prot)

    def map_nosync(self, iova: int, paddr: int, size: int, prot: int = PROT_RW) -> int:
        return self._call(iommu_map_nosync, self.domain, iova, paddr, size, prot)

    def sync(self, iova: int, size: int) -> int:
        return self._call(iommu_sync_map, self.domain, iova, size)

    def map_sg(self, iova: int, segments, prot: int = PROT_RW) -> int:
        sg = [s if isinstance(s, Scatterlist) else Scatterlist(*s) for s in segments]
        return self._call(iommu_map_sg, self.domain, iova, sg, prot)

    def unmap(self, iova: int, size: int) -> int:
        return self._call(iommu_unmap, self.domain, iova, size)

    # -- direct io-pgtable ops --------------------------------------------------------------

    def pt_map_pages(self, iova: int, paddr: int, pgsize: int, pgcount: int,
                     prot: int = PROT_RW) -> tuple[int, int]:
        ops = self.data.iop.ops
        mapped = Ref(0)
        ret = self._call(ops.map_pages, ops, iova, paddr, pgsize, pgcount, prot, 0, mapped)
        return ret, mapped.value

    def pt_unmap_pages(self, iova: int, pgsize: int, pgcount: int) -> int:
        ops = self.data.iop.ops
        return self._call(ops.unmap_pages, ops, iova, pgsize, pgcount, None)

    @property
    def has_pt_sync_map(self) -> bool:
        return self.data.iop.ops.iotlb_sync_map is not None

    def pt_sync_map(self, iova: int, size: int) -> int | None:
        """The io-pgtable op itself; None when this variant leaves it NULL."""
        ops = self.data.iop.ops
        if ops.iotlb_sync_map is None:
            return None
        return self._call(ops.iotlb_sync_map, ops, iova, size)

    def pt_iova_to_phys(self, iova: int) -> int:
        ops = self.data.iop.ops
        return self._call(ops.iova_to_phys, ops, iova)

    def free(self) -> None:
        """`free_io_pgtable_ops`."""
        self._call(arm_lpae_free_pgtable, self.data)

    # -- hardware and cache ------------------------------------------------------------------

    def smmu_walk(self, iova: int, view: str = "mem") -> smmu.Walk:
        return smmu.smmu_walk(self.data, iova, view)

    def first_divergence(self, iova: int, size: int) -> smmu.Divergence | None:
        return smmu.first_divergence(self.data, iova, size)

    def first_hole(self, iova: int, size: int, view: str = "cpu") -> int | None:
        """Lowest IOVA of the range that does not translate (None: fully mapped)."""
        return smmu.first_hole(self.data, iova, size, view)

    def translate_range(self, iova: int, npages: int, page: int, view: str = "mem"):
        return smmu.translate_range(self.data, iova, npages, page, view)

    def evict(self, iova: int | None = None) -> int:
        """Write back dirty lines: all of them, or those holding `iova`'s CPU walk path."""
        mem = self.data.mem
        if iova is None:
            return mem.writeback()
        count = 0
        for step in smmu.smmu_walk(self.data, iova, "cpu").steps:
            t = mem.lookup(step.table_pa)
            line = step.idx // t.line_entries
            if t.dirty[line]:
                le = t.line_entries
                t.mem[line * le:(line + 1) * le] = t.cpu[line * le:(line + 1) * le]
                t.dirty[line] = False
                count += 1
        return count

    def fail(self, site: str, nth: int = 1, err: int | None = None) -> None:
        self.failpoints.arm(site, nth, err)

    # -- recording ----------------------------------------------------------------------------

    def begin_op(self) -> None:
        self._op_mark = (self.events.mark(), len(self.failpoints.fired))
        self.data.mem.op_before = {}           # the clean counters, as each site is first hit
        if self._tracer is not None:
            self._tracer.calls = []

    def end_op(self, into: OpTrace | None = None) -> OpTrace:
        ev0, fired0 = self._op_mark
        self._op_mark = None
        mem = self.data.mem
        before, mem.op_before = mem.op_before, None
        trace = OpTrace() if into is None else into
        trace.events = self.events.since(ev0)
        trace.fired = self.failpoints.fired[fired0:]
        trace.sync_calls = self._tracer.calls if self._tracer is not None else []
        cleans = trace.cleans = {}
        if before:
            by_site = mem.by_site
            # in by_site's order (the JSON's)
            keys = [k for k in by_site if k in before] if len(before) > 1 else before
            for k in keys:
                c0, l0 = before[k]
                v = by_site[k]
                if v.calls != c0 or v.lines != l0:
                    cleans[k] = [v.calls - c0, v.lines - l0]
        return trace

    def trace_sync_walks(self) -> bool:
        ops = self.data.iop.ops
        if ops.iotlb_sync_map is None:
            return False
        if self._tracer is None:
            self._tracer = _SyncWalkTracer(self)
            ops.iotlb_sync_map = self._tracer
        return True

    # -- inspection ---------------------------------------------------------------------------

    @property
    def geometry(self) -> Geometry:
        """The table's shape; it never changes, so it is made once."""
        g = self._geometry
        if g is not None:
            return g
        d = self.data
        g = self._geometry = Geometry(
            levels=4 - d.start_level, start_level=d.start_level, pgd_bits=d.pgd_bits,
            bits_per_level=d.bits_per_level, pgd_entries=ARM_LPAE_PGD_SIZE(d) // 8,
            granule=ARM_LPAE_GRANULE(d), pgsize_bitmap=d.iop.cfg.pgsize_bitmap,
            ias=d.iop.cfg.ias, oas=d.iop.cfg.oas)
        return g

    def block_size(self, lvl: int) -> int:
        return ARM_LPAE_BLOCK_SIZE(lvl, self.data)

    @property
    def ptes_per_table(self) -> int:
        return ARM_LPAE_PTES_PER_TABLE(self.data)

    def stats(self) -> dict:
        """Clean statistics in the `replay --json` schema (design §6)."""
        by_site = {s: {"calls": st.calls, "lines": st.lines}
                   for s, st in self.data.mem.by_site.items() if s in CLEAN_SITES}
        return {"cmo_calls": sum(v["calls"] for v in by_site.values()),
                "lines_cleaned": sum(v["lines"] for v in by_site.values()),
                "warns": sum(e.count for e in self.events.events if e.kind == "WARN"),
                "by_site": by_site}

    def live_tables(self) -> int:
        return len(self.data.mem.live_tables())

    def dirty_lines(self) -> int:
        return self.data.mem.dirty_line_count()

    def upstream_causes(self, iova: int, pgsize: int, pgcount: int) -> list[tuple[str, str]]:
        return upstream_causes(self.data.iop.cfg, iova, pgsize, pgcount)

    def take_changed_tables(self) -> set[int]:
        """Physical addresses of tables allocated, freed or stored to since the last call."""
        touched, self.data.mem.touched = self.data.mem.touched, set()
        return touched

    def table_view(self, pa: int) -> tuple[bool, np.ndarray] | None:
        """(freed, CPU view of its logical entries) of the table at `pa`, or None."""
        t = self.data.mem.lookup(pa)
        return None if t is None else (t.freed, t.cpu[:t.entries])
