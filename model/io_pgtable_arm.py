"""drivers/iommu/io-pgtable-arm.c (v6.17/v6.18), function by function.

Names, argument order and control flow follow the C so that a reviewer can read the two side
by side.  Module-level functions keep their kernel names (Python only mangles `__names`
inside class bodies).  Differences from the C that are not merely Python-vs-C are listed in
docs/model.md ("Deviations").

Pointers: `arm_lpae_iopte *ptep` is a `Ptep` (table + index).  Out-parameters such as
`size_t *mapped` are a `Ref`.  Every WARN goes to `data.events`; every clean to `data.mem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import events as ev
from .cint import (
    EEXIST,
    EINVAL,
    ENOENT,
    ENOMEM,
    ERANGE,
    U64_MASK,
    c_int,
    ffs0,
    fls0,
    min_t_int,
    sar64,
    size_t,
    u64,
)
from .config import (
    ARM_32_LPAE_S1,
    ARM_32_LPAE_S2,
    ARM_64_LPAE_S1,
    ARM_64_LPAE_S2,
    ARM_MALI_LPAE,
    CONCAT_LEGACY,
    IO_PGTABLE_QUIRK_ARM_HD,
    IO_PGTABLE_QUIRK_ARM_NS,
    IO_PGTABLE_QUIRK_ARM_OUTER_WBWA,
    IO_PGTABLE_QUIRK_ARM_S2FWB,
    IO_PGTABLE_QUIRK_ARM_TTBR1,
    IO_PGTABLE_QUIRK_NO_WARN,
    IOMMU_READ,
    IOMMU_WRITE,
    KERNEL_FMT_NAME,
    QUIRK_NAMES,
    SZ_1G,
    SZ_2M,
    SZ_4K,
    SZ_4T,
    SZ_16K,
    SZ_32M,
    SZ_64K,
    SZ_512M,
    Config,
    IoPgtableCfg,
)
from .errors import ConfigRejected
from .events import EventLog
from .failpoints import Failpoints
from .memory import ENTRY_BYTES, EVENT_COST, Memory, Ptep, Table
from .pte import (
    ARM_LPAE_PTE_NSTABLE,
    ARM_LPAE_PTE_SW_SYNC,
    ARM_LPAE_PTE_TYPE_BLOCK,
    ARM_LPAE_PTE_TYPE_PAGE,
    ARM_LPAE_PTE_TYPE_TABLE,
    arm_lpae_prot_to_pte,
    iopte_leaf,
    iopte_prot,
    iopte_table,
    iopte_to_paddr,
    iopte_type,
    paddr_to_iopte,
    paddr_to_iopte_np,
)

ARM_LPAE_MAX_ADDR_BITS = 52
ARM_LPAE_S2_MAX_CONCAT_PAGES = 16
ARM_LPAE_MAX_LEVELS = 4


class Ref:
    """A C out-parameter (`size_t *mapped`)."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0):
        self.value = value

    def __repr__(self) -> str:
        return f"Ref({self.value:#x})"


@dataclass
class TlbCounters:
    """`cfg->tlb` callbacks.  The model has no TLB; it counts what would be invalidated."""

    flush_walk: list = field(default_factory=list)
    add_page: int = 0


@dataclass
class IoPgtableOps:
    """`struct io_pgtable_ops`.  `iotlb_sync_map` is PATCH 1/2's new member (None upstream)."""

    map_pages: object
    unmap_pages: object
    iova_to_phys: object
    pgtable_walk: object
    iotlb_sync_map: object = None
    data: ArmLpaeIoPgtable | None = None


@dataclass
class IoPgtable:
    fmt: str
    cfg: IoPgtableCfg
    ops: IoPgtableOps | None = None


@dataclass
class ArmLpaeIoPgtable:
    """`struct arm_lpae_io_pgtable`, plus the model's handles on memory, events, failpoints."""

    iop: IoPgtable
    pgd_bits: int
    start_level: int
    bits_per_level: int
    mem: Memory
    events: EventLog
    failpoints: Failpoints
    config: Config
    tlb: TlbCounters = field(default_factory=TlbCounters)
    pgd: Table | None = None


# --- geometry macros (kernel-semantics §1.6); all `int` unless noted -------------------------

def ARM_LPAE_LVL_SHIFT(l: int, d: ArmLpaeIoPgtable) -> int:  # noqa: E741,N802
    return ((ARM_LPAE_MAX_LEVELS - l) * d.bits_per_level) + 3


def ARM_LPAE_GRANULE(d: ArmLpaeIoPgtable) -> int:  # noqa: N802  (size_t)
    return ENTRY_BYTES << d.bits_per_level


def ARM_LPAE_PGD_SIZE(d: ArmLpaeIoPgtable) -> int:  # noqa: N802  (size_t)
    return ENTRY_BYTES << d.pgd_bits


def ARM_LPAE_PTES_PER_TABLE(d: ArmLpaeIoPgtable) -> int:  # noqa: N802
    return ARM_LPAE_GRANULE(d) >> 3


def ARM_LPAE_PGD_IDX(l: int, d: ArmLpaeIoPgtable) -> int:  # noqa: E741,N802  (may be < 0)
    return d.pgd_bits - d.bits_per_level if l == d.start_level else 0


def ARM_LPAE_LVL_IDX(a: int, l: int, d: ArmLpaeIoPgtable) -> int:  # noqa: E741,N802
    # expanded like the C preprocessor would (ARM_LPAE_LVL_SHIFT, ARM_LPAE_PGD_IDX): hot path
    pgd_idx = d.pgd_bits - d.bits_per_level if l == d.start_level else 0
    return ((a & U64_MASK) >> (((ARM_LPAE_MAX_LEVELS - l) * d.bits_per_level) + 3)) & \
        ((1 << (d.bits_per_level + pgd_idx)) - 1)


def ARM_LPAE_BLOCK_SIZE(l: int, d: ArmLpaeIoPgtable) -> int:  # noqa: E741,N802  (1ULL << ..)
    return (1 << (((ARM_LPAE_MAX_LEVELS - l) * d.bits_per_level) + 3)) & U64_MASK


def arm_lpae_max_entries(i: int, data: ArmLpaeIoPgtable) -> int:
    ptes_per_table = ARM_LPAE_PTES_PER_TABLE(data)
    return ptes_per_table - (c_int(i) & (ptes_per_table - 1))


def iopte_deref(pte: int, data: ArmLpaeIoPgtable) -> Ptep:
    """`__va(iopte_to_paddr(pte, data))`.  A PTE that points at no table is a wild pointer:
    the model records it and hands back a pointer into the world's one scratch page, which has
    no entries (every access is out of bounds and recorded) and reads as zeros, so a walk
    that has gone astray stops there instead of fanning out through garbage."""
    pa = iopte_to_paddr(pte, ARM_LPAE_GRANULE(data))
    t = data.mem.lookup(pa)
    if t is None:
        data.mem.charge(EVENT_COST)
        data.events.record(ev.BAD_POINTER, "iopte_deref", f"pte={pte:#x} -> pa {pa:#x}")
        t = data.mem.wild_table()
    return Ptep(data.mem, t, 0)


def _warn(data: ArmLpaeIoPgtable, cond: bool, site: str, detail: str = "", *args) -> bool:
    """`WARN_ON(cond)`.  `detail` is a str.format template for `args`, formatted only when
    the WARN fires (these checks sit on every level of every walk)."""
    if cond:
        data.events.warn_on(True, site, detail.format(*args) if args else detail)
    return cond


def _no_warn(data: ArmLpaeIoPgtable) -> bool:
    return bool(data.iop.cfg.quirks & IO_PGTABLE_QUIRK_NO_WARN)


# --- allocation and cache maintenance (§3.1, §3.2) -------------------------------------------

def __arm_lpae_alloc_pages(size: int, gfp: int, cfg: IoPgtableCfg, data: ArmLpaeIoPgtable,
                           lvl: int, iova_base: int) -> Table | None:
    """Zeroed table memory, cleaned to the device when the walker is non-coherent (C1).
    `lvl` and `iova_base` are the model's bookkeeping (which entries the table will hold)."""
    alloc_size = max(size, 64)
    if data.failpoints.should_fail("alloc"):
        return None
    table = data.mem.alloc_table(size // ENTRY_BYTES, alloc_size, lvl, iova_base)
    if not cfg.coherent_walk:
        # dma_map_single(dev, pages, size, DMA_TO_DEVICE): note `size`, not `alloc_size`
        data.mem.dma_sync_for_device(table, 0, size, site="alloc")
    return table


def __arm_lpae_free_pages(pages: Table, size: int, cfg: IoPgtableCfg,
                          data: ArmLpaeIoPgtable) -> None:
    # dma_unmap_single(..., DMA_TO_DEVICE) has no cache effect on arm64
    data.mem.free_table(pages)


def __arm_lpae_sync_pte(ptep: Ptep, num_entries: int, cfg: IoPgtableCfg, *,
                        site: str) -> None:
    """`dma_sync_single_for_device(dev, pa(ptep), sizeof(*ptep) * num_entries, TO_DEVICE)`.
    `site` only labels the clean for the statistics; the kernel function has no such argument."""
    ptep.memory.dma_sync_for_device(ptep.table, ptep.index,
                                    size_t(ENTRY_BYTES * c_int(num_entries)), site)


def __arm_lpae_sync_pte_each(ptep: Ptep, num_entries: int, cfg: IoPgtableCfg, *,
                             site: str) -> None:
    """`for (i = 0; i < num_entries; i++) __arm_lpae_sync_pte(&ptep[i], 1, cfg);` in one
    vectorised pass with the same cleans, calls and lines (`Memory.dma_sync_for_device_each`).
    Not a kernel function: it stands for a C loop that cleans one entry per iteration."""
    ptep.memory.dma_sync_for_device_each(ptep.table, ptep.index, num_entries, site)


def __arm_lpae_clear_pte(ptep: Ptep, cfg: IoPgtableCfg, num_entries: int) -> None:
    if num_entries > 0:
        ptep.write_many(np.zeros(num_entries, dtype=np.uint64))
    if not cfg.coherent_walk and num_entries:
        __arm_lpae_sync_pte(ptep, num_entries, cfg, site="unmap")


# --- map (§3.3 - §3.6) -----------------------------------------------------------------------

def __arm_lpae_init_pte(data: ArmLpaeIoPgtable, paddr: int, prot: int, lvl: int,
                        num_entries: int, ptep: Ptep, *, one_by_one: bool = False) -> None:
    """`one_by_one` (the model's, not the kernel's) makes this call stand for `num_entries`
    calls `__arm_lpae_init_pte(data, paddr + i * sz, prot, lvl, 1, &ptep[i])`, the loop of
    v6.12's `arm_lpae_split_blk_unmap`: the same stores, but a clean of its own per entry."""
    cfg = data.iop.cfg
    pte = prot
    sz = ARM_LPAE_BLOCK_SIZE(lvl, data)

    if data.iop.fmt != ARM_MALI_LPAE and lvl == ARM_LPAE_MAX_LEVELS - 1:
        pte |= ARM_LPAE_PTE_TYPE_PAGE
    else:
        pte |= ARM_LPAE_PTE_TYPE_BLOCK

    if num_entries == 1:
        ptep.write_one(pte | paddr_to_iopte(paddr & U64_MASK, 0))
    elif num_entries > 0:
        # for (i = 0; i < num_entries; i++) ptep[i] = pte | paddr_to_iopte(paddr + i * sz, data);
        offs = np.arange(num_entries, dtype=np.uint64) * np.uint64(sz)
        pas = np.uint64(u64(paddr)) + offs          # phys_addr_t arithmetic wraps mod 2^64
        ptep.write_many(np.uint64(pte) | paddr_to_iopte_np(pas))

    if not cfg.coherent_walk and not cfg.defer_sync_pte:
        if one_by_one:
            __arm_lpae_sync_pte_each(ptep, num_entries, cfg, site="leaf")
        else:
            __arm_lpae_sync_pte(ptep, num_entries, cfg, site="leaf")


def arm_lpae_init_pte(data: ArmLpaeIoPgtable, iova: int, paddr: int, prot: int, lvl: int,
                      num_entries: int, ptep: Ptep) -> int:
    fmt = data.iop.fmt
    # for (i = 0; i < num_entries; i++): a leaf -> -EEXIST; a table -> replace it by a block.
    # Vectorised: only the tables before the first leaf need the per-entry path.  One entry
    # (the common case) is the C loop's single iteration, without NumPy.
    leaf_type = ARM_LPAE_PTE_TYPE_PAGE if (lvl == 3 and fmt != ARM_MALI_LPAE) \
        else ARM_LPAE_PTE_TYPE_BLOCK
    if num_entries == 1:
        t = ptep[0] & 3
        first_leaf = 0 if t == leaf_type else 1
        is_table = [0] if first_leaf and t == ARM_LPAE_PTE_TYPE_TABLE else []
    elif num_entries > 0:
        ptes = ptep.peek_many(num_entries)
        types = ptes & np.uint64(3)
        is_leaf = np.equal(types, np.uint64(leaf_type))
        first_leaf = int(np.argmax(is_leaf)) if is_leaf.any() else num_entries
        ptep.read_many(min(first_leaf + 1, num_entries))    # the reads the C loop makes
        is_table = np.equal(types[:first_leaf],
                            np.uint64(ARM_LPAE_PTE_TYPE_TABLE)).nonzero()[0].tolist()
    else:
        is_table, first_leaf = [], num_entries        # the loop does not run
    for i in is_table:
        # We require an unmap first
        sz = ARM_LPAE_BLOCK_SIZE(lvl, data)
        tblp = ptep - ARM_LPAE_LVL_IDX(iova, lvl, data)
        if __arm_lpae_unmap(data, None, u64(iova + i * sz), sz, 1, lvl, tblp) != sz:
            _warn(data, True, "arm_lpae_init_pte:replace-table")
            return -EINVAL
    if first_leaf < num_entries:
        _warn(data, not _no_warn(data), "arm_lpae_init_pte:leaf-exists",
              f"iova={u64(iova + first_leaf * ARM_LPAE_BLOCK_SIZE(lvl, data)):#x}")
        return -EEXIST

    __arm_lpae_init_pte(data, paddr, prot, lvl, num_entries, ptep)
    return 0


def arm_lpae_install_table(table: Table, ptep: Ptep, curr: int, data: ArmLpaeIoPgtable) -> int:
    cfg = data.iop.cfg
    new = paddr_to_iopte(table.pa, ARM_LPAE_GRANULE(data)) | ARM_LPAE_PTE_TYPE_TABLE
    if cfg.quirks & IO_PGTABLE_QUIRK_ARM_NS:
        new |= ARM_LPAE_PTE_NSTABLE

    # dma_wmb(): ensure the table itself is visible before its PTE can be.
    # old = cmpxchg64_relaxed(ptep, curr, new)  (single-threaded model: a plain compare+store)
    old = ptep[0]
    if old == curr:
        ptep[0] = new

    if cfg.coherent_walk or (old & ARM_LPAE_PTE_SW_SYNC):
        return old

    # Even if it's not ours, there's no point waiting; just kick it
    __arm_lpae_sync_pte(ptep, 1, cfg, site="install")
    if old == curr:
        ptep[0] = new | ARM_LPAE_PTE_SW_SYNC        # WRITE_ONCE; this store is not cleaned
    return old


def __arm_lpae_map(data: ArmLpaeIoPgtable, iova: int, paddr: int, size: int, pgcount: int,
                   prot: int, lvl: int, ptep: Ptep, gfp: int, mapped: Ref) -> int:
    block_size = ARM_LPAE_BLOCK_SIZE(lvl, data)
    tblsz = ARM_LPAE_GRANULE(data)
    cfg = data.iop.cfg

    # Find our entry at the current level
    map_idx_start = ARM_LPAE_LVL_IDX(iova, lvl, data)
    ptep = ptep + map_idx_start

    # If we can install a leaf entry at this level, then do so
    if size == block_size:
        max_entries = arm_lpae_max_entries(map_idx_start, data)
        num_entries = min_t_int(pgcount, max_entries)
        ret = arm_lpae_init_pte(data, iova, paddr, prot, lvl, num_entries, ptep)
        if not ret:
            mapped.value = size_t(mapped.value + size_t(num_entries) * size)
        return ret

    # We can't allocate tables at the final level
    if _warn(data, lvl >= ARM_LPAE_MAX_LEVELS - 1, "__arm_lpae_map:final-level",
             "size={:#x}", size):
        return -EINVAL

    # Grab a pointer to the next level
    pte = ptep[0]
    if not pte:
        child_base = u64(iova) & ~(block_size - 1) & ((1 << 64) - 1)
        table = __arm_lpae_alloc_pages(tblsz, gfp, cfg, data, lvl + 1, child_base)
        if table is None:
            return -ENOMEM
        cptep = Ptep(data.mem, table, 0)
        pte = arm_lpae_install_table(table, ptep, 0, data)
        if pte:
            __arm_lpae_free_pages(table, tblsz, cfg, data)
    elif not cfg.coherent_walk and not (pte & ARM_LPAE_PTE_SW_SYNC):
        __arm_lpae_sync_pte(ptep, 1, cfg, site="table")

    if pte and not iopte_leaf(pte, lvl, data.iop.fmt):
        cptep = iopte_deref(pte, data)
    elif pte:
        # We require an unmap first
        _warn(data, not _no_warn(data), "__arm_lpae_map:block-in-way",
              "iova={:#x} lvl={}", u64(iova), lvl)
        return -EEXIST

    # Rinse, repeat
    return __arm_lpae_map(data, iova, paddr, size, pgcount, prot, lvl + 1, cptep, gfp, mapped)


def arm_lpae_map_pages(ops: IoPgtableOps, iova: int, paddr: int, pgsize: int, pgcount: int,
                       iommu_prot: int, gfp: int, mapped: Ref) -> int:
    data = ops.data
    cfg = data.iop.cfg
    ptep = Ptep(data.mem, data.pgd, 0)
    lvl = data.start_level

    if _warn(data, not pgsize or (pgsize & cfg.pgsize_bitmap) != pgsize,
             "arm_lpae_map_pages:pgsize", "pgsize={:#x}", pgsize):
        return -EINVAL

    iaext = sar64(iova, cfg.ias)
    if cfg.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1:
        iaext = ~iaext
    if _warn(data, bool(iaext or (u64(paddr) >> cfg.oas)), "arm_lpae_map_pages:range",
             "iova={:#x} paddr={:#x}", u64(iova), u64(paddr)):
        return -ERANGE

    if not (iommu_prot & (IOMMU_READ | IOMMU_WRITE)):
        return -EINVAL

    prot = arm_lpae_prot_to_pte(data.iop.fmt, cfg.quirks, iommu_prot)
    ret = __arm_lpae_map(data, iova, paddr, pgsize, pgcount, prot, lvl, ptep, gfp, mapped)
    # Synchronise all PTE updates for the new mapping before there's a chance for anything
    # to kick off a table walk for the new iova: wmb() (no cache effect).
    return ret


# --- unmap and free (§3.7, §3.8) ---------------------------------------------------------------

def __arm_lpae_free_pgtable(data: ArmLpaeIoPgtable, lvl: int, ptep: Ptep) -> None:
    if lvl == data.start_level:
        table_size = ARM_LPAE_PGD_SIZE(data)
    else:
        table_size = ARM_LPAE_GRANULE(data)

    # Only leaf entries at the last level
    if lvl != ARM_LPAE_MAX_LEVELS - 1:
        ptes = ptep.read_many(table_size // ENTRY_BYTES)
        types = ptes & np.uint64(3)
        leaf_type = ARM_LPAE_PTE_TYPE_BLOCK if (lvl < 3 or data.iop.fmt == ARM_MALI_LPAE) \
            else ARM_LPAE_PTE_TYPE_PAGE
        children = (np.not_equal(ptes, 0) & np.not_equal(types, np.uint64(leaf_type))).nonzero()[0]
        for i in children.tolist():
            __arm_lpae_free_pgtable(data, lvl + 1, iopte_deref(int(ptes[i]), data))

    __arm_lpae_free_pages(ptep.table, table_size, data.iop.cfg, data)


def io_pgtable_tlb_flush_walk(data: ArmLpaeIoPgtable, iova: int, size: int, granule: int):
    data.tlb.flush_walk.append((u64(iova), size, granule))


def io_pgtable_tlb_add_page(data: ArmLpaeIoPgtable, gather, iova: int, granule: int):
    data.tlb.add_page += 1


def arm_lpae_split_blk_unmap(data: ArmLpaeIoPgtable, gather, iova: int, size: int,
                             blk_pte: int, lvl: int, ptep: Ptep, pgcount: int) -> int:
    """v6.12 (removed by 33729a5fc0ca in v6.13), only with `Config.split_blk_unmap`: replace
    the block `blk_pte` at `ptep` (one level above `lvl`) by a new level-`lvl` table that maps
    the same region minus the part being unmapped, then unmap from that table.  Returns
    size_t: bytes unmapped.  Cleans: the new table (alloc, C1), each entry written on its own
    (leaf, C4: they are `__arm_lpae_init_pte` calls, so PATCH 1/2's `defer_sync_pte` skips
    them), the table PTE replacing the block (install, C2)."""
    cfg = data.iop.cfg
    tablesz = ARM_LPAE_GRANULE(data)
    split_sz = ARM_LPAE_BLOCK_SIZE(lvl, data)
    ptes_per_table = c_int(ARM_LPAE_PTES_PER_TABLE(data))
    unmap_idx_start, num_entries = -1, 0

    if _warn(data, lvl == ARM_LPAE_MAX_LEVELS, "arm_lpae_split_blk_unmap:lvl4"):
        return 0

    # GFP_ATOMIC; the model's bookkeeping: a level-`lvl` table for the block's region
    blk_base = u64(iova) & ~(ARM_LPAE_BLOCK_SIZE(lvl - 1, data) - 1) & U64_MASK
    table = __arm_lpae_alloc_pages(tablesz, 0, cfg, data, lvl, blk_base)
    if table is None:
        return 0  # Bytes unmapped
    tablep = Ptep(data.mem, table, 0)

    if size == split_sz:
        unmap_idx_start = ARM_LPAE_LVL_IDX(iova, lvl, data)
        max_entries = arm_lpae_max_entries(unmap_idx_start, data)
        num_entries = min_t_int(pgcount, max_entries)

    blk_paddr = iopte_to_paddr(blk_pte, ARM_LPAE_GRANULE(data))
    pte = iopte_prot(blk_pte)

    # for (i = 0; i < ptes_per_table; i++, blk_paddr += split_sz) {
    #         /* Unmap! */
    #         if (i >= unmap_idx_start && i < (unmap_idx_start + num_entries))
    #                 continue;
    #         __arm_lpae_init_pte(data, blk_paddr, pte, lvl, 1, &tablep[i]);
    # }
    # The entries written are at most two runs, before and after the skipped ones; each run's
    # calls are made together (one_by_one: the same stores, one clean per entry).  Entry i
    # gets blk_paddr + i * split_sz (phys_addr_t, mod 2^64), skipped entries included.
    skip_end = unmap_idx_start + num_entries                      # int; no skip unless > start
    if skip_end > unmap_idx_start:
        runs = ((0, unmap_idx_start), (skip_end, ptes_per_table))
    else:
        runs = ((0, ptes_per_table),)
    for first, end in runs:
        if end > first:
            __arm_lpae_init_pte(data, u64(blk_paddr + first * split_sz), pte, lvl, end - first,
                                tablep + first, one_by_one=True)

    pte = arm_lpae_install_table(table, ptep, blk_pte, data)
    if pte != blk_pte:
        __arm_lpae_free_pages(table, tablesz, cfg, data)
        # We may race against someone unmapping another part of this block, but anything else
        # is invalid.  We can't misinterpret a page entry here since we're never at the last
        # level.  (Single-threaded, the model never gets here: the compare always succeeds.)
        if iopte_type(pte) != ARM_LPAE_PTE_TYPE_TABLE:
            return 0
        tablep = iopte_deref(pte, data)
    elif unmap_idx_start >= 0:
        for i in range(num_entries):
            io_pgtable_tlb_add_page(data, gather, u64(iova + i * size), size)
        return size_t(num_entries * size)

    return __arm_lpae_unmap(data, gather, iova, size, pgcount, lvl, tablep)


def __arm_lpae_unmap(data: ArmLpaeIoPgtable, gather, iova: int, size: int, pgcount: int,
                     lvl: int, ptep: Ptep) -> int:
    """Returns size_t: bytes unmapped; with `enoent_bug`, (size_t)-ENOENT on a hole."""
    iop = data.iop

    # Something went horribly wrong and we ran out of page table
    if _warn(data, lvl == ARM_LPAE_MAX_LEVELS, "__arm_lpae_unmap:lvl4"):
        return 0

    unmap_idx_start = ARM_LPAE_LVL_IDX(iova, lvl, data)
    ptep = ptep + unmap_idx_start
    pte = ptep[0]
    if not pte:
        _warn(data, not _no_warn(data), "__arm_lpae_unmap:hole", "iova={:#x} lvl={}",
              u64(iova), lvl)
        return size_t(-ENOENT) if data.config.enoent_bug else 0

    # If the size matches this level, we're in the right place
    if size == ARM_LPAE_BLOCK_SIZE(lvl, data):
        max_entries = arm_lpae_max_entries(unmap_idx_start, data)
        num_entries = min_t_int(pgcount, max_entries)

        # Find and handle non-leaf entries (vectorised: stop at the first hole)
        i = 0
        if num_entries > 0:
            # the C reads entry by entry and stops at the first hole: read exactly that far
            holes = np.equal(ptep.peek_many(num_entries), 0).nonzero()[0]
            i = int(holes[0]) if len(holes) else num_entries
            ptes = ptep.read_many(min(i + 1, num_entries))
            if len(holes):
                _warn(data, not _no_warn(data), "__arm_lpae_unmap:hole-in-batch",
                      f"iova={u64(iova + i * size):#x}")
            head = ptes[:i]
            leaf_type = ARM_LPAE_PTE_TYPE_PAGE if (lvl == 3 and iop.fmt != ARM_MALI_LPAE) \
                else ARM_LPAE_PTE_TYPE_BLOCK
            tables = np.not_equal(head & np.uint64(3), np.uint64(leaf_type))
            for j in tables.nonzero()[0].tolist():
                __arm_lpae_clear_pte(ptep + j, iop.cfg, 1)
                # Also flush any partial walks
                io_pgtable_tlb_flush_walk(data, u64(iova + j * size), size,
                                          ARM_LPAE_GRANULE(data))
                __arm_lpae_free_pgtable(data, lvl + 1, iopte_deref(int(head[j]), data))

        # Clear the remaining entries
        __arm_lpae_clear_pte(ptep, iop.cfg, i)

        if gather is not None:
            for _ in range(i):
                io_pgtable_tlb_add_page(data, gather, 0, size)
        return size_t(i * size)
    elif iopte_leaf(pte, lvl, iop.fmt):
        if data.config.split_blk_unmap:
            # v6.12: Insert a table at the next level to map the old region, minus the part
            # we want to unmap
            return arm_lpae_split_blk_unmap(data, gather, iova, size, pte, lvl + 1, ptep,
                                            pgcount)
        data.events.warn_once(True, "__arm_lpae_unmap:partial-block",
                              "Unmap of a partial large IOPTE is not allowed")
        return 0

    # Keep on walkin'
    ptep = iopte_deref(pte, data)
    return __arm_lpae_unmap(data, gather, iova, size, pgcount, lvl + 1, ptep)


def arm_lpae_unmap_pages(ops: IoPgtableOps, iova: int, pgsize: int, pgcount: int,
                         gather) -> int:
    data = ops.data
    cfg = data.iop.cfg
    ptep = Ptep(data.mem, data.pgd, 0)

    if _warn(data, not pgsize or (pgsize & cfg.pgsize_bitmap) != pgsize or not pgcount,
             "arm_lpae_unmap_pages:args", "pgsize={:#x} pgcount={}", pgsize, pgcount):
        return 0

    iaext = sar64(iova, cfg.ias)
    if cfg.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1:
        iaext = ~iaext
    if _warn(data, bool(iaext), "arm_lpae_unmap_pages:range", "iova={:#x}", u64(iova)):
        return 0

    return __arm_lpae_unmap(data, gather, iova, pgsize, pgcount, data.start_level, ptep)


def arm_lpae_free_pgtable(data: ArmLpaeIoPgtable) -> None:
    __arm_lpae_free_pgtable(data, data.start_level, Ptep(data.mem, data.pgd, 0))


# --- the generic walker (§3.9, §3.10) --------------------------------------------------------

@dataclass
class IoPgtableWalkData:
    visit: object
    addr: int
    end: int
    data: object = None


def io_pgtable_visit(data: ArmLpaeIoPgtable, walk_data: IoPgtableWalkData, ptep: Ptep,
                     lvl: int) -> int:
    pte = ptep[0]
    size = ARM_LPAE_BLOCK_SIZE(lvl, data)
    ret = walk_data.visit(walk_data, lvl, ptep, size)
    if ret:
        return ret
    if iopte_leaf(pte, lvl, data.iop.fmt):
        walk_data.addr = u64(walk_data.addr + size)
        return 0
    if not iopte_table(pte, lvl):
        return -EINVAL
    return __arm_lpae_iopte_walk(data, walk_data, iopte_deref(pte, data), lvl + 1)


def __arm_lpae_iopte_walk(data: ArmLpaeIoPgtable, walk_data: IoPgtableWalkData, ptep: Ptep,
                          lvl: int) -> int:
    if _warn(data, lvl == ARM_LPAE_MAX_LEVELS, "__arm_lpae_iopte_walk:lvl4"):
        return -EINVAL
    if lvl == data.start_level:
        max_entries = ARM_LPAE_PGD_SIZE(data) // ENTRY_BYTES
    else:
        max_entries = ARM_LPAE_PTES_PER_TABLE(data)
    idx = ARM_LPAE_LVL_IDX(walk_data.addr, lvl, data)     # u32
    while idx < max_entries and walk_data.addr < walk_data.end:
        ret = io_pgtable_visit(data, walk_data, ptep + idx, lvl)
        if ret:
            return ret
        idx += 1
    return 0


def arm_lpae_iova_to_phys(ops: IoPgtableOps, iova: int) -> int:
    data = ops.data
    if data.config.kernel == "6.12":
        return arm_lpae_iova_to_phys_v612(data, iova)
    d = {"pte": 0, "lvl": data.start_level}   # C leaves these uninitialised if nothing is visited

    def visit_iova_to_phys(walk_data, lvl, ptep, size):
        d["pte"] = ptep[0]
        d["lvl"] = lvl
        return 0

    walk_data = IoPgtableWalkData(visit_iova_to_phys, u64(iova), u64(iova + 1))
    ret = __arm_lpae_iopte_walk(data, walk_data, Ptep(data.mem, data.pgd, 0), data.start_level)
    if ret:
        return 0
    iova &= ARM_LPAE_BLOCK_SIZE(d["lvl"], data) - 1
    return iopte_to_paddr(d["pte"], ARM_LPAE_GRANULE(data)) | iova


def arm_lpae_iova_to_phys_v612(data: ArmLpaeIoPgtable, iova: int) -> int:
    """v6.12's open-coded walk (before the generic walker): any non-zero, non-leaf entry is
    followed as a table, and nothing is checked against the IAS."""
    ptep = Ptep(data.mem, data.pgd, 0)
    lvl = data.start_level
    while True:
        # Grab the IOPTE we're interested in
        ptep = ptep + ARM_LPAE_LVL_IDX(iova, lvl, data)
        pte = ptep[0]
        # Valid entry?
        if not pte:
            return 0
        # Leaf entry?
        if iopte_leaf(pte, lvl, data.iop.fmt):
            iova = u64(iova) & (ARM_LPAE_BLOCK_SIZE(lvl, data) - 1)
            return iopte_to_paddr(pte, ARM_LPAE_GRANULE(data)) | iova
        # Take it to the next level
        ptep = iopte_deref(pte, data)
        lvl += 1
        if lvl >= ARM_LPAE_MAX_LEVELS:
            # Ran out of page tables to walk
            return 0


def arm_lpae_pgtable_walk(ops: IoPgtableOps, iova: int, wd: dict) -> int:
    """`wd["ptes"][lvl]` receives each visited PTE (struct arm_lpae_io_pgtable_walk_data)."""
    data = ops.data
    wd.setdefault("ptes", [0] * ARM_LPAE_MAX_LEVELS)

    def visit_pgtable_walk(walk_data, lvl, ptep, size):
        wd["ptes"][lvl] = ptep[0]
        return 0

    walk_data = IoPgtableWalkData(visit_pgtable_walk, u64(iova), u64(iova + 1))
    return __arm_lpae_iopte_walk(data, walk_data, Ptep(data.mem, data.pgd, 0), data.start_level)


# --- allocation of a page table (§1.3 - §1.5) ------------------------------------------------

def arm_lpae_restrict_pgsizes(cfg: IoPgtableCfg, page_size: int) -> None:
    page_mask = ~(page_size - 1) & ((1 << 64) - 1)
    if cfg.pgsize_bitmap & page_size:
        granule = page_size
    elif cfg.pgsize_bitmap & ~page_mask:
        granule = 1 << fls0(cfg.pgsize_bitmap & ~page_mask)
    elif cfg.pgsize_bitmap & page_mask:
        granule = 1 << ffs0(cfg.pgsize_bitmap & page_mask)
    else:
        granule = 0

    max_addr_bits = 48
    if granule == SZ_4K:
        page_sizes = SZ_4K | SZ_2M | SZ_1G
    elif granule == SZ_16K:
        page_sizes = SZ_16K | SZ_32M
    elif granule == SZ_64K:
        max_addr_bits = 52
        page_sizes = SZ_64K | SZ_512M
        if cfg.oas > 48:
            page_sizes |= SZ_4T
    else:
        page_sizes = 0

    cfg.pgsize_bitmap &= page_sizes
    cfg.ias = min(cfg.ias, max_addr_bits)
    cfg.oas = min(cfg.oas, max_addr_bits)


def arm_lpae_concat_mandatory(cfg: IoPgtableCfg, data: ArmLpaeIoPgtable) -> bool:
    ias, oas = cfg.ias, cfg.oas
    granule = ARM_LPAE_GRANULE(data)
    # Arm DDI0487 K.a: R_DXBSH and R_SRKBC
    if granule == SZ_16K and data.start_level == 0:
        return oas == 48 or ias == 48
    if granule == SZ_4K and data.start_level == 0:
        return oas == 40 or oas == 42
    return granule == SZ_16K and data.start_level == 1 and oas == 40


_IPS = {32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5, 52: 6}


def arm_lpae_alloc_pgtable(cfg: IoPgtableCfg, config: Config, events: EventLog,
                           failpoints: Failpoints) -> ArmLpaeIoPgtable:
    arm_lpae_restrict_pgsizes(cfg, config.page_size)
    if not (cfg.pgsize_bitmap & (SZ_4K | SZ_16K | SZ_64K)):
        raise ConfigRejected(f"pgsize_bitmap {config.requested_pgsize_bitmap:#x} has no "
                             "4K/16K/64K granule once restricted to the CPU page size's set")
    if cfg.ias > ARM_LPAE_MAX_ADDR_BITS:
        raise ConfigRejected(f"ias {cfg.ias} > ARM_LPAE_MAX_ADDR_BITS")
    if cfg.oas > ARM_LPAE_MAX_ADDR_BITS:
        raise ConfigRejected(f"oas {cfg.oas} > ARM_LPAE_MAX_ADDR_BITS")

    pg_shift = ffs0(cfg.pgsize_bitmap)
    bits_per_level = pg_shift - 3
    va_bits = cfg.ias - pg_shift
    if va_bits < 1:
        # The kernel has no such check (every caller passes ias >= 32); the model refuses
        # rather than compute a zero-level table.  See docs/model.md, deviations.
        raise ConfigRejected(f"ias {cfg.ias} leaves no index bits above the {1 << pg_shift:#x}"
                             " granule (model limit: ias > log2(granule))")
    levels = -(-va_bits // bits_per_level)
    start_level = ARM_LPAE_MAX_LEVELS - levels
    pgd_bits = va_bits - (bits_per_level * (levels - 1))
    mem = Memory(line=config.line, events=events, base=config.table_base,
                 coherent=cfg.coherent_walk, page_size=config.page_size)
    data = ArmLpaeIoPgtable(iop=IoPgtable(cfg.fmt, cfg), pgd_bits=pgd_bits,
                            start_level=start_level, bits_per_level=bits_per_level, mem=mem,
                            events=events, failpoints=failpoints, config=config)
    data.iop.ops = IoPgtableOps(map_pages=arm_lpae_map_pages, unmap_pages=arm_lpae_unmap_pages,
                                iova_to_phys=arm_lpae_iova_to_phys,
                                pgtable_walk=arm_lpae_pgtable_walk, data=data)
    return data


def _alloc_pgd(data: ArmLpaeIoPgtable, cfg: IoPgtableCfg) -> None:
    size = ARM_LPAE_PGD_SIZE(data)
    # The PGD is allocated before any failpoint can be armed; allocation cannot fail here.
    saved, data.failpoints = data.failpoints, Failpoints()
    try:
        data.pgd = __arm_lpae_alloc_pages(size, 0, cfg, data, data.start_level, 0)
    finally:
        data.failpoints = saved


#: The quirks each format's alloc function accepts, by kernel series (Config.kernel).  v6.12
#: has no NO_WARN (v6.17) and no S2FWB (v6.14): its stage 2 and Mali refuse every quirk.
ACCEPTED_QUIRKS = {
    "6.17": {"s1": IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_ARM_TTBR1 |
                   IO_PGTABLE_QUIRK_ARM_OUTER_WBWA | IO_PGTABLE_QUIRK_ARM_HD |
                   IO_PGTABLE_QUIRK_NO_WARN,
             "s2": IO_PGTABLE_QUIRK_ARM_S2FWB | IO_PGTABLE_QUIRK_NO_WARN, "mali": 0},
    "6.12": {"s1": IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_ARM_TTBR1 |
                   IO_PGTABLE_QUIRK_ARM_OUTER_WBWA | IO_PGTABLE_QUIRK_ARM_HD,
             "s2": 0, "mali": 0},
}


def _check_quirks(cfg: IoPgtableCfg, allowed: int) -> None:
    bad = cfg.quirks & ~allowed
    if bad:
        names = ", ".join(QUIRK_NAMES.get(1 << b, f"bit{b}") for b in range(64) if bad >> b & 1)
        ok = ", ".join(QUIRK_NAMES[b] for b in sorted(QUIRK_NAMES) if allowed & b)
        raise ConfigRejected(f"{KERNEL_FMT_NAME[cfg.fmt]} does not accept quirk(s) {names} "
                             f"(allowed: {ok})")


def _check_oas_encoding(cfg: IoPgtableCfg, what: str) -> None:
    if cfg.oas not in _IPS:
        raise ConfigRejected(f"oas {cfg.oas} has no {what} encoding "
                             f"(one of {', '.join(map(str, _IPS))})")


def arm_64_lpae_alloc_pgtable_s1(cfg: IoPgtableCfg, config, events, failpoints):
    _check_quirks(cfg, ACCEPTED_QUIRKS[config.kernel]["s1"])
    data = arm_lpae_alloc_pgtable(cfg, config, events, failpoints)
    if cfg.coherent_walk and cfg.quirks & IO_PGTABLE_QUIRK_ARM_OUTER_WBWA:
        raise ConfigRejected("OUTER_WBWA quirk with a coherent walk")
    _check_oas_encoding(cfg, "TCR.IPS")
    cfg.outputs.update(tsz=64 - cfg.ias, ips=_IPS[cfg.oas])
    _alloc_pgd(data, cfg)
    cfg.outputs["ttbr"] = data.pgd.pa
    return data


def arm_64_lpae_alloc_pgtable_s2(cfg: IoPgtableCfg, config, events, failpoints):
    _check_quirks(cfg, ACCEPTED_QUIRKS[config.kernel]["s2"])
    data = arm_lpae_alloc_pgtable(cfg, config, events, failpoints)
    if config.concat == CONCAT_LEGACY:
        # Before 4dcac8407fe1: concatenate whenever it is possible at level 0.
        if data.start_level == 0:
            pgd_pages = ARM_LPAE_PGD_SIZE(data) // ENTRY_BYTES
            if pgd_pages <= ARM_LPAE_S2_MAX_CONCAT_PAGES:
                data.pgd_bits += data.bits_per_level
                data.start_level += 1
    elif arm_lpae_concat_mandatory(cfg, data):
        if events.warn_on(ARM_LPAE_PGD_SIZE(data) // ENTRY_BYTES > ARM_LPAE_S2_MAX_CONCAT_PAGES,
                          "arm_64_lpae_alloc_pgtable_s2:concat"):
            raise ConfigRejected(
                f"stage-2 concatenation is mandatory here but needs "
                f"{ARM_LPAE_PGD_SIZE(data) // ENTRY_BYTES} tables (> 16)")
        data.pgd_bits += data.bits_per_level
        data.start_level += 1
    _check_oas_encoding(cfg, "VTCR.PS")
    sl = data.start_level
    if ARM_LPAE_GRANULE(data) == SZ_4K:
        sl += 1
    cfg.outputs.update(tsz=64 - cfg.ias, ps=_IPS[cfg.oas], sl=~sl & 3)
    _alloc_pgd(data, cfg)
    cfg.outputs["vttbr"] = data.pgd.pa
    return data


def arm_32_lpae_alloc_pgtable_s1(cfg: IoPgtableCfg, config, events, failpoints):
    if cfg.ias > 32 or cfg.oas > 40:
        raise ConfigRejected(f"ARM_32_LPAE_S1 needs ias <= 32 and oas <= 40 "
                             f"(got {cfg.ias}/{cfg.oas})")
    cfg.pgsize_bitmap &= SZ_4K | SZ_2M | SZ_1G
    return arm_64_lpae_alloc_pgtable_s1(cfg, config, events, failpoints)


def arm_32_lpae_alloc_pgtable_s2(cfg: IoPgtableCfg, config, events, failpoints):
    if cfg.ias > 40 or cfg.oas > 40:
        raise ConfigRejected(f"ARM_32_LPAE_S2 needs ias <= 40 and oas <= 40 "
                             f"(got {cfg.ias}/{cfg.oas})")
    cfg.pgsize_bitmap &= SZ_4K | SZ_2M | SZ_1G
    return arm_64_lpae_alloc_pgtable_s2(cfg, config, events, failpoints)


def arm_mali_lpae_alloc_pgtable(cfg: IoPgtableCfg, config, events, failpoints):
    _check_quirks(cfg, 0)
    if cfg.ias > 48 or cfg.oas > 40:
        raise ConfigRejected(f"ARM_MALI_LPAE needs ias <= 48 and oas <= 40 "
                             f"(got {cfg.ias}/{cfg.oas})")
    cfg.pgsize_bitmap &= SZ_4K | SZ_2M | SZ_1G
    data = arm_lpae_alloc_pgtable(cfg, config, events, failpoints)
    # Mali seems to need a full 4-level table regardless of IAS
    if data.start_level > 0:
        data.start_level = 0
        data.pgd_bits = 0
    _alloc_pgd(data, cfg)
    cfg.outputs["transtab"] = data.pgd.pa
    return data


ALLOC_FNS = {ARM_64_LPAE_S1: arm_64_lpae_alloc_pgtable_s1,
             ARM_64_LPAE_S2: arm_64_lpae_alloc_pgtable_s2,
             ARM_32_LPAE_S1: arm_32_lpae_alloc_pgtable_s1,
             ARM_32_LPAE_S2: arm_32_lpae_alloc_pgtable_s2,
             ARM_MALI_LPAE: arm_mali_lpae_alloc_pgtable}


def alloc_io_pgtable_ops(config: Config, events: EventLog, failpoints: Failpoints,
                         defer_sync_pte: bool = False) -> ArmLpaeIoPgtable:
    """`alloc_io_pgtable_ops(fmt, cfg, cookie)`: raises ConfigRejected where the kernel
    returns NULL.  The caller's cfg is restricted in place, as in the kernel; `iop.cfg` is
    the copy taken afterwards."""
    if config.fmt not in ALLOC_FNS:
        raise ConfigRejected(f"unknown format {config.fmt!r} (one of {', '.join(ALLOC_FNS)})")
    cfg = IoPgtableCfg(fmt=config.fmt, quirks=config.quirks,
                       pgsize_bitmap=config.requested_pgsize_bitmap, ias=config.ias,
                       oas=config.oas, coherent_walk=config.coherent_walk,
                       defer_sync_pte=defer_sync_pte)
    data = ALLOC_FNS[config.fmt](cfg, config, events, failpoints)
    data.iop.fmt = config.fmt
    return data

