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
