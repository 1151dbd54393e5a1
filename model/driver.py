"""The driver layer between the iommu core and io-pgtable (arm-smmu-v3 in v6.17).

Upstream SMMUv3 has no `iotlb_sync_map`.  PATCH 2/2 adds one; a variant supplies it through
`Variant.driver_iotlb_sync_map`, so the core sees `ops.iotlb_sync_map is None` exactly when the
driver does not define it.
"""

from __future__ import annotations

from .cint import ENODEV, sar64
from .config import IO_PGTABLE_QUIRK_ARM_TTBR1
from .events import UPSTREAM_CAUSE
from .io_pgtable_arm import ArmLpaeIoPgtable, IoPgtableOps

INT_MAX = (1 << 31) - 1

#: The calls into io-pgtable that upstream mishandles, by the name of the root cause
#: (docs/findings.md, "Upstream's own bugs"):
#: U2, `min_t(int, pgcount, max_entries)` in __arm_lpae_map / __arm_lpae_unmap truncates a
#: count above INT_MAX (to a negative, zero or small int);
PGCOUNT_TRUNCATION = "pgcount-truncation"
#: U1, arm_lpae_map_pages / arm_lpae_unmap_pages test only the first IOVA against the IAS, so
#: pages past it are written (or read) past a small PGD.
END_UNCHECKED = "end-unchecked"
#: U3, v6.17-v6.18.7: __arm_lpae_unmap returns (size_t)-ENOENT on a hole (fixed by 374e7af67d9d),
#: which __iommu_unmap adds to what it unmapped (then iommu_pgsize's BUG_ON, or a bogus size).
UNMAP_ERRNO = "unmap-errno"


def upstream_causes(cfg, iova: int, pgsize: int, pgcount: int) -> list[tuple[str, str]]:
    """(name, detail) of each way upstream is known to mishandle the io-pgtable call
    `map_pages` / `unmap_pages(iova, pgsize, pgcount)` on a table of `cfg`."""
    last = iova + pgsize * pgcount - 1
    ttbr1 = cfg.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1
    if pgcount <= INT_MAX and not ttbr1 and not last >> cfg.ias:
        return []           # (the common case, decided at once: u64 iova <= last < 2^ias)
    out = []
    if pgcount > INT_MAX:
        out.append((PGCOUNT_TRUNCATION, f"pgcount={pgcount:#x} (int){pgcount & 0xffffffff:#x}"))
    first_ext, last_ext = sar64(iova, cfg.ias), sar64(last & ((1 << 64) - 1), cfg.ias)
    if ttbr1:
        first_ext, last_ext = ~first_ext, ~last_ext
    if pgcount and not first_ext and (last_ext or last >> 64):
        out.append((END_UNCHECKED, f"iova={iova:#x} last={last:#x} ias={cfg.ias}"))
    return out


def note_upstream_causes(domain, ops, iova: int, pgsize: int, pgcount: int, fn: str) -> None:
    """Record, without changing anything, whether this io-pgtable call is one upstream is known
    to mishandle.  Observation only, like the model's memory-safety events."""
    for name, detail in upstream_causes(ops.data.iop.cfg, iova, pgsize, pgcount):
        domain.events.record(UPSTREAM_CAUSE, name, f"{fn} {detail}")


class SmmuDomainOps:
    """`arm_smmu_ops.default_domain_ops` as far as the map/unmap flow uses it."""

    def __init__(self, pgtbl_ops: IoPgtableOps | None, iotlb_sync_map=None):
        self.pgtbl_ops = pgtbl_ops
        # None: the driver does not implement the callback (upstream v6.17)
        self.iotlb_sync_map = iotlb_sync_map
        self.tlb_syncs = 0

    def map_pages(self, domain, iova, paddr, pgsize, pgcount, prot, gfp, mapped) -> int:
        ops = self.pgtbl_ops
        if ops is None:
            return -ENODEV
        note_upstream_causes(domain, ops, iova, pgsize, pgcount, "map_pages")
        return ops.map_pages(ops, iova, paddr, pgsize, pgcount, prot, gfp, mapped)

    def unmap_pages(self, domain, iova, pgsize, pgcount, gather) -> int:
        ops = self.pgtbl_ops
        if ops is None:
            return 0
        note_upstream_causes(domain, ops, iova, pgsize, pgcount, "unmap_pages")
        ret = ops.unmap_pages(ops, iova, pgsize, pgcount, gather)
        if ret >> 63:                   # a size_t that is a negative errno
            domain.events.record(UPSTREAM_CAUSE, UNMAP_ERRNO,
                                 f"unmap_pages iova={iova:#x} returned {ret - (1 << 64)}")
        return ret

    def iotlb_sync(self, domain, gather) -> None:
        """TLB invalidation: no effect on page-table memory; counted only."""
        self.tlb_syncs += 1

    @property
    def data(self) -> ArmLpaeIoPgtable | None:
        return None if self.pgtbl_ops is None else self.pgtbl_ops.data
