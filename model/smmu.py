"""The SMMU's table walker: reads DRAM (the `mem` view) only, like a non-coherent walker.

`smmu_walk` translates one IOVA and keeps every descriptor it read, so a trace can show the
walk next to the CPU's view of the same path (`view="cpu"`).  `first_divergence` and
`translate_range` cover whole ranges table by table with NumPy, so checking a gigabyte of 4K
pages costs a few hundred vector operations, not a quarter of a million walks.

The model SMMU has no TLB or walk cache: every walk starts from the table base.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cint import sar64, u64
from .config import ARM_MALI_LPAE, IO_PGTABLE_QUIRK_ARM_TTBR1, SZ_4K, SZ_16K, SZ_64K
from .io_pgtable_arm import (
    ARM_LPAE_BLOCK_SIZE,
    ARM_LPAE_GRANULE,
    ARM_LPAE_LVL_IDX,
    ARM_LPAE_LVL_SHIFT,
    ArmLpaeIoPgtable,
)
from .memory import Table
from .pte import HW_MASK, iopte_to_paddr, iopte_to_paddr_np

# Fault reasons
TRANSLATION = "translation"        # invalid descriptor: an ordinary unmapped IOVA
ADDRESS_SIZE = "address-size"      # IOVA outside the input range
RESERVED = "reserved"              # a block where the architecture allows none
FREED_TABLE = "freed-table"        # bad walk: followed a pointer into a freed table
NOT_A_TABLE = "not-a-table"        # bad walk: followed a pointer to memory that is no table
WRONG_LEVEL = "wrong-level"        # bad walk: pointer to a table of another level
BAD_WALK_REASONS = frozenset({FREED_TABLE, NOT_A_TABLE, WRONG_LEVEL})


@dataclass(frozen=True)
class WalkStep:
    lvl: int
    table_pa: int
    idx: int
    desc: int          # hardware bits only (software bits 55-58 masked)


@dataclass
class Walk:
    iova: int
    view: str
    oa: int | None = None
    level: int | None = None
    fault: str | None = None
    steps: list[WalkStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.fault is None

    @property
    def bad(self) -> bool:
        return self.fault in BAD_WALK_REASONS

    def same_as(self, other: Walk) -> bool:
        return ([s.desc for s in self.steps] == [s.desc for s in other.steps]
                and self.fault == other.fault)

    def describe(self) -> str:
        path = " -> ".join(f"L{s.lvl}[{s.idx}]={s.desc:#018x}" for s in self.steps)
        end = f"oa={self.oa:#x}" if self.ok else f"fault={self.fault}@L{self.level}"
        return f"{self.view}: {path or '(no read)'} => {end}"


def block_allowed(data: ArmLpaeIoPgtable, lvl: int) -> bool:
    """Levels at which the architecture accepts a block descriptor for this granule."""
    g = ARM_LPAE_GRANULE(data)
    if g == SZ_4K:
        return lvl in (1, 2)
    if g == SZ_16K:
        return lvl == 2
    if g == SZ_64K:
        return lvl == 2 or (lvl == 1 and data.iop.cfg.oas > 48)
    return False


def input_in_range(data: ArmLpaeIoPgtable, iova: int) -> bool:
    cfg = data.iop.cfg
    top = sar64(iova, cfg.ias)
    if cfg.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1:
        return top == -1
    return top == 0


def _is_leaf_desc(data: ArmLpaeIoPgtable, desc: int, lvl: int) -> bool | None:
    """True for a page/block the walker accepts, False for a table, None for a fault."""
    t = desc & 3
    if not t & 1:
        return None
    if lvl == 3:
        want = 1 if data.iop.fmt == ARM_MALI_LPAE else 3
        return True if t == want else None
    if t == 3:
        return False
    return True if block_allowed(data, lvl) else None


def smmu_walk(data: ArmLpaeIoPgtable, iova: int, view: str = "mem") -> Walk:
    iova = u64(iova)
    w = Walk(iova, view)
    lvl = data.start_level
    if not input_in_range(data, iova):
        w.fault, w.level = ADDRESS_SIZE, lvl
        return w
    table = data.pgd
    granule = ARM_LPAE_GRANULE(data)
    while True:
        if table.freed:
            w.fault, w.level = FREED_TABLE, lvl
            return w
        idx = ARM_LPAE_LVL_IDX(iova, lvl, data)
        arr = table.mem if view == "mem" else table.cpu
        desc = int(arr[idx]) & HW_MASK if idx < len(arr) else 0
        w.steps.append(WalkStep(lvl, table.pa, idx, desc))
        kind = _is_leaf_desc(data, desc, lvl)
        if kind is None:
            w.fault, w.level = (TRANSLATION if not desc & 1 else RESERVED), lvl
            return w
        if kind:
            w.level = lvl
            w.oa = iopte_to_paddr(desc, granule) | (iova & (ARM_LPAE_BLOCK_SIZE(lvl, data) - 1))
            return w
        nxt = data.mem.lookup(iopte_to_paddr(desc, granule))
        lvl += 1
        if nxt is None:
            w.fault, w.level = NOT_A_TABLE, lvl
            return w
        if nxt.lvl != lvl and not nxt.freed:
            w.fault, w.level = WRONG_LEVEL, lvl
            return w
        table = nxt


@dataclass(frozen=True)
class Divergence:
    """Where the SMMU's view of a range first differs from the CPU's, or first goes bad."""

    iova: int
    lvl: int
    reason: str        # "stale" or one of BAD_WALK_REASONS


def _slice_bounds(data: ArmLpaeIoPgtable, table: Table, lvl: int, lo: int, hi: int):
    """Entries of `table` (at `lvl`) that overlap [lo, hi]; hi inclusive, both u64."""
    shift = ARM_LPAE_LVL_SHIFT(lvl, data)
    i0 = ARM_LPAE_LVL_IDX(lo, lvl, data)
    n = max(0, min((hi >> shift) - (lo >> shift) + 1, table.entries - i0))
    data.mem.spend(n)               # range walks count against the world's work budget
    return i0, n


def first_divergence(data: ArmLpaeIoPgtable, iova: int, size: int) -> Divergence | None:
    """The lowest IOVA in [iova, iova+size) whose SMMU walk (memory) differs in hardware bits
    from the CPU's walk, or that leads the SMMU into a freed or non-table page."""
    if size <= 0:
        return None
    lo = u64(iova)
    hi = min(u64(iova + size - 1), (1 << 64) - 1) if lo + size - 1 < (1 << 64) else (1 << 64) - 1
    return _diverge(data, data.pgd, data.start_level, lo, hi)


def _diverge(data, table: Table, lvl: int, lo: int, hi: int) -> Divergence | None:
    if table.freed:
        return Divergence(lo, lvl, FREED_TABLE)
    i0, n = _slice_bounds(data, table, lvl, lo, hi)
    if n == 0:
        return None
    block = ARM_LPAE_BLOCK_SIZE(lvl, data)
    base = lo & ~(block - 1)
    hw = np.uint64(HW_MASK)
    cpu = table.cpu[i0:i0 + n] & hw
    mem = table.mem[i0:i0 + n] & hw
    diff = np.not_equal(cpu, mem).nonzero()[0]
    stop = int(diff[0]) if len(diff) else n
    if lvl < 3:
        granule = ARM_LPAE_GRANULE(data)
        for j in np.equal(cpu[:stop] & np.uint64(3), np.uint64(3)).nonzero()[0].tolist():
            e_lo = max(lo, base + j * block)
            e_hi = min(hi, base + (j + 1) * block - 1)
            child = data.mem.lookup(iopte_to_paddr(int(cpu[j]), granule))
            if child is None:
                return Divergence(e_lo, lvl + 1, NOT_A_TABLE)
            if child.lvl != lvl + 1 and not child.freed:
                return Divergence(e_lo, lvl + 1, WRONG_LEVEL)
            r = _diverge(data, child, lvl + 1, e_lo, e_hi)
            if r is not None:
                return r
    if stop < n:
        return Divergence(max(lo, base + stop * block), lvl, "stale")
    return None


def translate_range(data: ArmLpaeIoPgtable, iova: int, npages: int, page: int,
                    view: str = "mem") -> tuple[np.ndarray, np.ndarray]:
    """Translate `npages` pages of size `page` from `iova` as the walker would.

    Returns (oa, ok): output addresses (uint64) and a mask of pages that translated.
    Vectorised per table; `page` must not exceed the granule."""
    oa = np.zeros(npages, dtype=np.uint64)
    ok = np.zeros(npages, dtype=bool)
    lo = u64(iova)
    if npages and input_in_range(data, lo):
        _translate(data, data.pgd, data.start_level, lo, lo + npages * page - 1,
                   lo, page, view, oa, ok)
    return oa, ok


def _translate(data, table, lvl, lo, hi, origin, page, view, oa, ok) -> None:
    if table.freed:
        return
    i0, n = _slice_bounds(data, table, lvl, lo, hi)
    if n == 0:
        return
    block = ARM_LPAE_BLOCK_SIZE(lvl, data)
    base = lo & ~(block - 1)
    granule = ARM_LPAE_GRANULE(data)
    descs = (table.mem if view == "mem" else table.cpu)[i0:i0 + n] & np.uint64(HW_MASK)
    types = descs & np.uint64(3)
    if lvl == 3 and block == page:
        want = 1 if data.iop.fmt == ARM_MALI_LPAE else 3
        good = np.equal(types, np.uint64(want))
        p0 = (base - origin) // page
        sl = slice(p0, p0 + n)
        oa[sl] = np.where(good, iopte_to_paddr_np(descs, granule), 0)
        ok[sl] = good
        return
    for j in range(n):
        d = int(descs[j])
        e_lo = max(lo, base + j * block)
        e_hi = min(hi, base + (j + 1) * block - 1)
        kind = _is_leaf_desc(data, d, lvl)
        if kind is None:
            continue
        if kind:
            p0, p1 = (e_lo - origin) // page, (e_hi - origin) // page + 1
            first = iopte_to_paddr(d, granule) + (e_lo & (block - 1))
            oa[p0:p1] = np.uint64(first) + np.arange(p1 - p0, dtype=np.uint64) * np.uint64(page)
            ok[p0:p1] = True
            continue
        child = data.mem.lookup(iopte_to_paddr(d, granule))
        if child is not None and child.lvl == lvl + 1:
            _translate(data, child, lvl + 1, e_lo, e_hi, origin, page, view, oa, ok)




def first_hole(data: ArmLpaeIoPgtable, iova: int, size: int, view: str = "cpu") -> int | None:
    """The lowest IOVA in [iova, iova+size) that does not translate in `view`, or None when
    the whole range is mapped.  Cost grows with the number of tables, not of pages."""
    if size <= 0:
        return None
    lo = u64(iova)
    if not input_in_range(data, lo) or not input_in_range(data, u64(lo + size - 1)) \
            or lo + size - 1 >> 64:
        return lo
    return _hole(data, data.pgd, data.start_level, lo, lo + size - 1, view)


def _hole(data, table: Table, lvl: int, lo: int, hi: int, view: str) -> int | None:
    if table.freed:
        return lo
    i0, n = _slice_bounds(data, table, lvl, lo, hi)
    block = ARM_LPAE_BLOCK_SIZE(lvl, data)
    base = lo & ~(block - 1)
    if n < (hi >> ARM_LPAE_LVL_SHIFT(lvl, data)) - (lo >> ARM_LPAE_LVL_SHIFT(lvl, data)) + 1:
        return max(lo, base + n * block)        # the range runs past this table
    descs = (table.mem if view == "mem" else table.cpu)[i0:i0 + n] & np.uint64(HW_MASK)
    types = descs & np.uint64(3)
    if lvl == 3:
        want = 1 if data.iop.fmt == ARM_MALI_LPAE else 3
        bad = np.not_equal(types, np.uint64(want)).nonzero()[0]
        return None if not len(bad) else max(lo, base + int(bad[0]) * block)
    valid_block = np.uint64(1) if block_allowed(data, lvl) else np.uint64(99)
    bad = (np.not_equal(types, np.uint64(3)) & np.not_equal(types, valid_block)).nonzero()[0]
    stop = int(bad[0]) if len(bad) else n
    granule = ARM_LPAE_GRANULE(data)
    for j in np.equal(types[:stop], np.uint64(3)).nonzero()[0].tolist():
        child = data.mem.lookup(iopte_to_paddr(int(descs[j]), granule))
        e_lo = max(lo, base + j * block)
        if child is None or child.lvl != lvl + 1:
            return e_lo
        r = _hole(data, child, lvl + 1, e_lo, min(hi, base + (j + 1) * block - 1), view)
        if r is not None:
            return r
    return None if stop == n else max(lo, base + stop * block)
