"""`validating`: a walker that refuses every range it cannot sync exactly -- a plugin example.

The careful reading of docs/variants.md: before walking, check the whole range, not only its
start.  A range that is empty is a no-op; one that wraps past 2^64, or starts or ends outside
the input range (TTBR1-aware, as `arm_lpae_map_pages` checks its start), is refused with a
WARN and -ERANGE; anything else is synced exactly, with `fixed`'s walk (per-level index ranges
from both ends, line-batched leaf cleans, SW_SYNC marks, errors propagated).

Upstream's `arm_lpae_map_pages` checks only the first IOVA, so the core can report success for
a range this walker refuses (a 4-entry PGD overrun by an 8G map, or the pgcount truncation
that maps nearly 2^64 bytes).  The oracles accept the refusal there: the reference misbehaved
in that op (an `upstream` finding), and a walker may either refuse such a range or sync all of
it that the hardware can translate (docs/oracles.md, "Upstream misbehaviour").  Expect no
correctness finding.

    python -m fuzz replay FILE.ops --variant examples/validating_walker.py:ValidatingWalker
"""

from __future__ import annotations

from model.kapi import (
    ERANGE,
    IO_PGTABLE_QUIRK_ARM_TTBR1,
    WARN_ON,
    io_pgtable_ops_to_data,
    pgd,
    sar64,
    u64,
)
from model.variants.base import Variant, forwarding_driver_iotlb_sync_map
from model.variants.fixed import __arm_lpae_iotlb_sync_map as fixed_walk


def validating_iotlb_sync_map(ops, iova: int, size: int) -> int:
    """`io_pgtable_ops.iotlb_sync_map`: 0, or a negative errno."""
    data = io_pgtable_ops_to_data(ops)
    cfg = data.iop.cfg
    iova, size = u64(iova), u64(size)
    if not size:                     # iommu_map_sg syncs 0 bytes when every segment is p2p
        return 0
    last = iova + size - 1           # a Python int: past 2^64 when the range wraps
    iaext, iaext_last = sar64(iova, cfg.ias), sar64(u64(last), cfg.ias)
    if cfg.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1:
        iaext, iaext_last = ~iaext, ~iaext_last
    if WARN_ON(data, iaext or iaext_last or last >> 64, "validating_iotlb_sync_map:range",
               f"iova={iova:#x} size={size:#x}"):
        return -ERANGE
    return fixed_walk(data, iova, last, data.start_level, pgd(data))


class ValidatingWalker(Variant):
    name = "validating"
    description = "fixed's walk behind a check of the whole range: wrapped or out-of-IAS " \
                  "ranges are refused with WARN and -ERANGE"
    defer_sync_pte = True

    def io_pgtable_iotlb_sync_map(self, data):
        return None if data.iop.cfg.coherent_walk else validating_iotlb_sync_map

    def driver_iotlb_sync_map(self, pgtbl_ops):
        return forwarding_driver_iotlb_sync_map(pgtbl_ops)
