"""`v1`: "[PATCH 1/2] iommu/io-pgtable-arm: Implement .iotlb_sync_map callback" and
"[PATCH 2/2] drivers/arm-smmu-v3: Implement .iotlb_sync_map callback", transliterated.

C types are kept explicit: `unsigned long`/`size_t` arithmetic wraps mod 2^64, `int` locals are
truncated, `min_t(unsigned long, ...)` compares as unsigned long and the result is stored in an
`int`.  The only line that is not in the patch is the failpoint at the start of each level.
"""

from __future__ import annotations

import numpy as np

from model.kapi import (
    ARM_LPAE_BLOCK_SIZE,
    ARM_LPAE_GRANULE,
    ARM_LPAE_LVL_IDX,
    ARM_LPAE_LVL_SHIFT,
    ARM_LPAE_MAX_LEVELS,
    ARM_LPAE_PGD_IDX,
    ARM_LPAE_PTE_TYPE_TABLE,
    WARN_ON,
    WARN_ON_MANY,
    arm_lpae_max_entries,
    arm_lpae_sync_pte,
    c_int,
    io_pgtable_ops_to_data,
    iopte_deref,
    min_t_ulong,
    pgd,
    sar64,
    sync_map_failpoint,
    u64,
)

from .base import Variant, forwarding_driver_iotlb_sync_map, posted_driver_iotlb_sync_map


def __arm_lpae_iotlb_sync_map(data, iova: int, size: int, lvl: int, ptep, *,
                              check_ret: bool = False) -> int:
    block_size = ARM_LPAE_BLOCK_SIZE(lvl, data)                     # size_t
    ret = 0                                                          # int
    synced_entries = 0                                               # int

    err = sync_map_failpoint(data)          # model: an error a later walker could meet here
    if err:
        return err

    shift = c_int(ARM_LPAE_LVL_SHIFT(lvl - 1, data) + ARM_LPAE_PGD_IDX(lvl - 1, data))
    iova_offset = u64(iova & u64((1 << shift) - 1)) if 0 <= shift < 64 else u64(iova)
    sync_idx_start = ARM_LPAE_LVL_IDX(iova, lvl, data)               # unsigned long
    sync_idx_end = u64(iova_offset + size + block_size - ARM_LPAE_GRANULE(data)) >> \
        ARM_LPAE_LVL_SHIFT(lvl, data)                                # unsigned long
    max_entries = arm_lpae_max_entries(c_int(sync_idx_start), data)  # int
    num_entries = c_int(min_t_ulong(u64(sync_idx_end - sync_idx_start), max_entries))
    ptep = ptep + sync_idx_start

    if lvl < (ARM_LPAE_MAX_LEVELS - 1):
        # for (i = 0; i < num_entries; i++) { pte = READ_ONCE(ptep[i]); WARN_ON(!pte); ... }
        # Vectorised per run of entries up to the next table PTE: the reads, the WARNs, the
        # cleans and the recursions happen in the C's order and stop where the C stops.
        i = 0
        while i < num_entries:
            ahead = (ptep + i).peek_many(num_entries - i)
            is_table = np.equal(ahead & np.uint64(3), np.uint64(ARM_LPAE_PTE_TYPE_TABLE))
            t = int(np.argmax(is_table)) if is_table.any() else len(ahead)
            run = (ptep + i).read_many(min(t + 1, len(ahead)))
            empty = int(np.count_nonzero(np.equal(run, 0)))
            WARN_ON_MANY(data, empty, "__arm_lpae_iotlb_sync_map:empty",
                         "lvl={} from idx={}", lvl, sync_idx_start + i)
            if t == len(ahead):                 # no table PTE before the end of the loop
                iova, size = _advance(iova, size, block_size, num_entries - i)
                break
            iova, size = _advance(iova, size, block_size, t)
            i += t
            pte = int(run[t])
            n = c_int(i - synced_entries)
            if n:
                arm_lpae_sync_pte(ptep + synced_entries, n, data)
                synced_entries = c_int(synced_entries + n)
            ret = __arm_lpae_iotlb_sync_map(data, iova, size, lvl + 1,
                                            iopte_deref(pte, data), check_ret=check_ret)
            if check_ret and ret:                # the review's request: "if (ret) break;"
                break
            synced_entries = c_int(synced_entries + 1)
            iova, size = _advance(iova, size, block_size, 1)
            i += 1

    if synced_entries != num_entries:
        arm_lpae_sync_pte(ptep + synced_entries, c_int(num_entries - synced_entries), data)

    return ret


def _advance(iova: int, size: int, block_size: int, count: int) -> tuple[int, int]:
    """`count` iterations of: synced = block_size - (iova & (block_size - 1));
    size -= synced; iova += synced;   (unsigned long arithmetic)"""
    for _ in range(min(count, 1)):
        synced = u64(block_size - (iova & (block_size - 1)))
        size, iova = u64(size - synced), u64(iova + synced)
        count -= 1
    # after the first iteration iova is block-aligned, so every further step is block_size
    return u64(iova + count * block_size), u64(size - count * block_size)


def arm_lpae_iotlb_sync_map(ops, iova: int, size: int, *, check_ret: bool = False) -> int:
    data = io_pgtable_ops_to_data(ops)
    cfg = data.iop.cfg
    ptep = pgd(data)
    lvl = data.start_level
    iaext = sar64(iova, cfg.ias)                                     # long

    WARN_ON(data, not size, "arm_lpae_iotlb_sync_map:size")
    WARN_ON(data, iaext, "arm_lpae_iotlb_sync_map:iaext", "iova={:#x}", u64(iova))

    return __arm_lpae_iotlb_sync_map(data, iova, size, lvl, ptep, check_ret=check_ret)


class V1(Variant):
    name = "v1"
    description = "PATCH 1/2 + 2/2 as posted (27 Sep 2025)"
    # arm_smmu_domain_finalise: pgtbl_cfg.defer_sync_pte = true
    defer_sync_pte = True

    def io_pgtable_iotlb_sync_map(self, data):
        # .iotlb_sync_map = cfg->coherent_walk ? NULL : arm_lpae_iotlb_sync_map
        return None if data.iop.cfg.coherent_walk else arm_lpae_iotlb_sync_map

    def driver_iotlb_sync_map(self, pgtbl_ops):
        return posted_driver_iotlb_sync_map(pgtbl_ops)


class V1Review(V1):
    """v1 plus the review's two requests: `if (ret) break;` after the recursive call
    (Pranjal Shrivastava) and the driver returning the op's value (Mostafa Saleh)."""

    name = "v1-review"
    description = "v1 + `if (ret) break;` in the walker + driver returns the op's value"

    def io_pgtable_iotlb_sync_map(self, data):
        if data.iop.cfg.coherent_walk:
            return None

        def arm_lpae_iotlb_sync_map_checked(ops, iova, size):
            return arm_lpae_iotlb_sync_map(ops, iova, size, check_ret=True)
        return arm_lpae_iotlb_sync_map_checked

    def driver_iotlb_sync_map(self, pgtbl_ops):
        return forwarding_driver_iotlb_sync_map(pgtbl_ops)
