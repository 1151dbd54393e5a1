"""`naive`: the simplest correct `iotlb_sync_map` -- a worked example of a variant plugin.

It keeps PATCH 1/2's idea (`map_pages` does not clean leaf PTEs; the caller's
`iotlb_sync_map` cleans them afterwards) but walks the range in the most obvious way: every
entry of every level that overlaps [iova, iova + size) is read once, every leaf is cleaned by
its own `arm_lpae_sync_pte(ptep, 1, data)`, every table PTE is descended into.  Table PTEs and
holes are not cleaned (a table PTE was cleaned by `arm_lpae_install_table`; a hole was never
written by this map).  An error stops the walk and reaches the caller.

It is correct and slow: one clean per leaf (the same cache line is cleaned up to 8 times for
64-byte lines) and a Python step per entry.  Expect `cmo-regression` and `redundant-clean`
notes from the oracles, and no correctness finding.

    python -m fuzz replay FILE.ops --variant examples/naive_leaf_walker.py:NaiveLeafWalker

See docs/variants.md for the API this file uses.
"""

from __future__ import annotations

from model.kapi import (
    ARM_LPAE_BLOCK_SIZE,
    ARM_LPAE_LVL_IDX,
    ARM_LPAE_PGD_SIZE,
    ARM_LPAE_PTES_PER_TABLE,
    ERANGE,
    IO_PGTABLE_QUIRK_ARM_TTBR1,
    WARN_ON,
    arm_lpae_sync_pte,
    io_pgtable_ops_to_data,
    iopte_deref,
    iopte_leaf,
    iopte_table,
    pgd,
    sar64,
    sync_map_failpoint,
    u64,
)
from model.variants.base import Variant, forwarding_driver_iotlb_sync_map


def __naive_sync_map(data, iova: int, last: int, lvl: int, ptep) -> int:
    """Clean every leaf of the table at `ptep` (level `lvl`) whose span meets [iova, last],
    recursing into next-level tables.  `iova <= last`, both u64."""
    ret = sync_map_failpoint(data)          # the rule: first thing at every level
    if ret:
        return ret

    if lvl == data.start_level:
        max_entries = ARM_LPAE_PGD_SIZE(data) // 8      # the whole (maybe concatenated) PGD
    else:
        max_entries = ARM_LPAE_PTES_PER_TABLE(data)
    block_size = ARM_LPAE_BLOCK_SIZE(lvl, data)
    fmt = data.iop.fmt

    idx = ARM_LPAE_LVL_IDX(iova, lvl, data)
    addr = iova
    while idx < max_entries:
        block_last = u64(addr | (block_size - 1))       # last iova this entry maps
        pte = ptep[idx]                                 # READ_ONCE(ptep[idx])
        if iopte_leaf(pte, lvl, fmt):
            arm_lpae_sync_pte(ptep + idx, 1, data)      # one clean per leaf
        elif iopte_table(pte, lvl):
            ret = __naive_sync_map(data, addr, min(last, block_last), lvl + 1,
                                   iopte_deref(pte, data))
            if ret:
                return ret                              # stop, and tell the caller
        if block_last >= last:                          # this entry reaches the range's end
            break
        addr = block_last + 1
        idx += 1
    return 0


def naive_iotlb_sync_map(ops, iova: int, size: int) -> int:
    """`io_pgtable_ops.iotlb_sync_map`: 0, or a negative errno."""
    data = io_pgtable_ops_to_data(ops)
    cfg = data.iop.cfg
    iova, size = u64(iova), u64(size)
    if not size:                     # iommu_map_sg syncs 0 bytes when every segment is p2p
        return 0
    last = iova + size - 1
    # Same range check as map_pages / unmap_pages (TTBR1 tables cover the top of the space).
    iaext, iaext_last = sar64(iova, cfg.ias), sar64(last, cfg.ias)
    if cfg.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1:
        iaext, iaext_last = ~iaext, ~iaext_last
    if WARN_ON(data, iaext or iaext_last or last >> 64, "naive_iotlb_sync_map:range",
               f"iova={iova:#x} size={size:#x}"):
        return -ERANGE
    return __naive_sync_map(data, iova, last, data.start_level, pgd(data))


class NaiveLeafWalker(Variant):
    name = "naive"
    description = "one arm_lpae_sync_pte per leaf of the range; correct, inefficient"
    defer_sync_pte = True            # map_pages leaves leaf PTEs dirty in the CPU cache

    def io_pgtable_iotlb_sync_map(self, data):
        # .iotlb_sync_map = cfg->coherent_walk ? NULL : naive_iotlb_sync_map
        return None if data.iop.cfg.coherent_walk else naive_iotlb_sync_map

    def driver_iotlb_sync_map(self, pgtbl_ops):
        # the driver returns the op's value, so the error reaches iommu_map
        return forwarding_driver_iotlb_sync_map(pgtbl_ops)
