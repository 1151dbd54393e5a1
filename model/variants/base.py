"""The variant interface every sync implementation plugs into."""

from __future__ import annotations


class Variant:
    """Upstream behaviour unless overridden: leaves cleaned at once, no sync op anywhere."""

    name = "base"
    description = ""
    defer_sync_pte = False

    def io_pgtable_iotlb_sync_map(self, data):
        """Return `int (*)(ops, iova, size)` to install as `io_pgtable_ops.iotlb_sync_map`,
        or None to leave the member NULL.  `data` is the freshly allocated table."""
        return None

    def driver_iotlb_sync_map(self, pgtbl_ops):
        """Return the driver's `int (*)(domain, iova, size)`, or None if the driver does not
        define the callback (then `iommu_sync_map` returns 0 without calling anything)."""
        return None

    def __repr__(self) -> str:
        return f"<variant {self.name}>"


def forwarding_driver_iotlb_sync_map(pgtbl_ops):
    """PATCH 2/2's `arm_smmu_iotlb_sync_map` as the review asked for it (Mostafa Saleh):
    `return ops->iotlb_sync_map(ops, iova, size);`, so the error reaches `iommu_map`."""
    def arm_smmu_iotlb_sync_map(domain, iova, size):
        ops = pgtbl_ops
        if ops is None or ops.iotlb_sync_map is None:
            return 0
        return ops.iotlb_sync_map(ops, iova, size)
    return arm_smmu_iotlb_sync_map


def posted_driver_iotlb_sync_map(pgtbl_ops):
    """PATCH 2/2 as posted: `arm_smmu_iotlb_sync_map` calls the op and returns 0, dropping
    the op's error."""
    def arm_smmu_iotlb_sync_map(domain, iova, size):
        ops = pgtbl_ops
        if ops is None or ops.iotlb_sync_map is None:
            return 0
        ops.iotlb_sync_map(ops, iova, size)         # return value discarded
        return 0
    return arm_smmu_iotlb_sync_map
