"""`fixed`: iopgfuzz's own `iotlb_sync_map`, written after seeing what the oracles find in v1.

It keeps the patch's idea (defer leaf cleans in `map_pages`, clean in batches afterwards) and
changes how the range is walked:

* the entries to visit at each level come from the range's own first and last address
  (`ARM_LPAE_LVL_IDX` of both ends), not from an offset masked with a per-level shift, so small
  and concatenated PGDs, TTBR1 addresses and ranges crossing tables are all exact;
* the top level may run across the pages of a concatenated PGD (it is one allocation);
* only leaves are cleaned, in one call per run of consecutive cache lines that hold a leaf still
  lacking `ARM_LPAE_PTE_SW_SYNC`; those leaves of the range get the bit before the clean, the
  same way `arm_lpae_install_table` marks a table PTE it has cleaned.  A second sync of the
  same range therefore cleans nothing.  Neighbours in a line are not marked (a concurrent map
  may still own them), so two syncs of sub-ranges that share a line clean it twice: the
  price patches/ v2 pays too, of which this is the transliteration;
* holes and table PTEs are never cleaned (table PTEs were cleaned when installed);
* an error stops the walk (`if (ret) break;`), and the driver returns it;
* size 0 is a no-op (iommu_map_sg syncs 0 bytes when every segment was a bus address); a start
  outside the input range is refused with a WARN, TTBR1-aware like map and unmap; an end beyond
  it is clipped (whatever the core managed to map there is in range), and a range that wraps
  past 2^64 is synced on from IOVA 0 (TTBR1: from the bottom of its input range), where the
  core's u64 arithmetic mapped it (docs/oracles.md, "Ranges past the IAS or past 2^64").
"""

from __future__ import annotations

import numpy as np

from model.kapi import (
    ARM_LPAE_BLOCK_SIZE,
    ARM_LPAE_LVL_IDX,
    ARM_LPAE_LVL_SHIFT,
    ARM_LPAE_MAX_LEVELS,
    ARM_LPAE_PGD_SIZE,
    ARM_LPAE_PTE_SW_SYNC,
    ARM_LPAE_PTE_TYPE_TABLE,
    ARM_LPAE_PTES_PER_TABLE,
    ERANGE,
    IO_PGTABLE_QUIRK_ARM_TTBR1,
    WARN_ON,
    arm_lpae_sync_pte,
    cache_line_size,
    io_pgtable_ops_to_data,
    iopte_deref,
    leaf_type,
    pgd,
    sar64,
    sync_map_failpoint,
    u64,
)

from .base import Variant, forwarding_driver_iotlb_sync_map

_SW_SYNC = np.uint64(ARM_LPAE_PTE_SW_SYNC)
U64 = (1 << 64) - 1
_TYPE_MASK = np.uint64(3)


def arm_lpae_sync_leaf_lines(data, ptep, first: int, ptes: np.ndarray, lvl: int,
                             table_entries: int) -> None:
    """`arm_lpae_sync_leaf_ptes` of patches/ v2: mark the leaves of `ptep[first:first+len(ptes)]`
    that lack `ARM_LPAE_PTE_SW_SYNC` with it, then clean them, one call per run of
    consecutive lines holding such a leaf.  Marked before the clean, so memory gets the mark
    too; only the range's own entries, never their neighbours in the same line, which may
    belong to a concurrent map whose store came after this clean (docs/findings.md)."""
    leaf = np.equal(ptes & _TYPE_MASK, np.uint64(leaf_type(data, lvl)))
    unsynced = leaf & np.equal(ptes & _SW_SYNC, 0)
    need = unsynced.nonzero()[0] + first
    if not len(need):
        return
    (ptep + first).write_many(np.where(unsynced, ptes | _SW_SYNC, ptes))
    per_line = cache_line_size(data) // 8
    lines = need // per_line
    breaks = np.greater(np.diff(lines), 1).nonzero()[0] + 1
    for run in np.split(need, breaks):
        # from the first unsynced leaf of the run to its last
        a, b = int(run[0]), int(run[-1]) + 1
        arm_lpae_sync_pte(ptep + a, b - a, data)


def __arm_lpae_iotlb_sync_map(data, iova: int, last: int, lvl: int, ptep) -> int:
    """Sync the entries of the table at `ptep` (level `lvl`) that overlap [iova, last]."""
    ret = sync_map_failpoint(data)
    if ret:
        return ret

    shift = ARM_LPAE_LVL_SHIFT(lvl, data)
    block_size = ARM_LPAE_BLOCK_SIZE(lvl, data)
    if lvl == data.start_level:
        table_entries = ARM_LPAE_PGD_SIZE(data) // 8       # the whole (concatenated) PGD
    else:
        table_entries = ARM_LPAE_PTES_PER_TABLE(data)
    idx = ARM_LPAE_LVL_IDX(iova, lvl, data)
    num_entries = min((last >> shift) - (iova >> shift) + 1, table_entries - idx)
    ptes = (ptep + idx).read_many(num_entries)

    arm_lpae_sync_leaf_lines(data, ptep, idx, ptes, lvl, table_entries)

    if lvl < ARM_LPAE_MAX_LEVELS - 1:
        base = iova & ~(block_size - 1)
        tables = np.equal(ptes & _TYPE_MASK, np.uint64(ARM_LPAE_PTE_TYPE_TABLE)).nonzero()[0]
        for i in tables.tolist():
            start = max(iova, base + i * block_size)
            end = min(last, base + (i + 1) * block_size - 1)
            ret = __arm_lpae_iotlb_sync_map(data, start, end, lvl + 1,
                                            iopte_deref(int(ptes[i]), data))
            if ret:
                break
    return ret


def arm_lpae_iotlb_sync_map(ops, iova: int, size: int) -> int:
    data = io_pgtable_ops_to_data(ops)
    cfg = data.iop.cfg
    iova, size = u64(iova), u64(size)
    if not size:
        return 0
    iaext = sar64(iova, cfg.ias)
    ttbr1 = bool(cfg.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1)
    if ttbr1:
        iaext = ~iaext
    if WARN_ON(data, iaext, "arm_lpae_iotlb_sync_map:range", f"iova={iova:#x}"):
        return -ERANGE
    # The end is clipped, not refused: map_pages has already checked every page it wrote, and
    # a range the core could map (even through its own pgcount truncation) must not turn into
    # a sync failure that unmaps it again.
    top = U64 if ttbr1 else (1 << cfg.ias) - 1
    end = iova + size - 1
    ret = __arm_lpae_iotlb_sync_map(data, iova, min(end, top), data.start_level, pgd(data))
    # A range that wraps past 2^64 goes on at IOVA 0, as the core's u64 loop does when it maps
    # it: the part of that inside the input range is synced too (for TTBR1 only a range that
    # comes all the way round reaches it again, below iova).
    bottom = u64(-(1 << cfg.ias)) if ttbr1 else 0
    if not ret and end > U64 and end - (U64 + 1) >= bottom:
        ret = __arm_lpae_iotlb_sync_map(data, bottom, min(end - (U64 + 1), top),
                                        data.start_level, pgd(data))
    return ret


class Fixed(Variant):
    name = "fixed"
    description = "iopgfuzz's walker: exact per-level ranges, line-batched leaf cleans, " \
                  "SW_SYNC on cleaned leaves, errors propagated"
    defer_sync_pte = True

    def io_pgtable_iotlb_sync_map(self, data):
        return None if data.iop.cfg.coherent_walk else arm_lpae_iotlb_sync_map

    def driver_iotlb_sync_map(self, pgtbl_ops):
        return forwarding_driver_iotlb_sync_map(pgtbl_ops)
