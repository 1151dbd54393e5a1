"""The driver layer between the iommu core and io-pgtable (arm-smmu-v3 in v6.17).

Upstream SMMUv3 has no `iotlb_sync_map`.  PATCH 2/2 adds one; a variant supplies it through
`Variant.driver_iotlb_sync_map`, so the core sees `ops.iotlb_sync_map is None` exactly when the
driver does not define it.
"""

from __future__ import annotations

from .cint import ENODEV
from .io_pgtable_arm import ArmLpaeIoPgtable, IoPgtableOps


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
        return ops.map_pages(ops, iova, paddr, pgsize, pgcount, prot, gfp, mapped)

    def unmap_pages(self, domain, iova, pgsize, pgcount, gather) -> int:
        ops = self.pgtbl_ops
        if ops is None:
            return 0
        return ops.unmap_pages(ops, iova, pgsize, pgcount, gather)

    def iotlb_sync(self, domain, gather) -> None:
        """TLB invalidation: no effect on page-table memory; counted only."""
        self.tlb_syncs += 1

    @property
    def data(self) -> ArmLpaeIoPgtable | None:
        return None if self.pgtbl_ops is None else self.pgtbl_ops.data
