"""iopgfuzz's model of Linux's ARM LPAE io-pgtable code, the iommu core and a
non-coherent SMMU.  The public API is what this module exports; see docs/model.md."""

from .config import (
    ARM_32_LPAE_S1,
    ARM_32_LPAE_S2,
    ARM_64_LPAE_S1,
    ARM_64_LPAE_S2,
    ARM_MALI_LPAE,
    CONCAT_LEGACY,
    CONCAT_MANDATORY,
    FORMATS,
    IOMMU_CACHE,
    IOMMU_MMIO,
    IOMMU_NOEXEC,
    IOMMU_PRIV,
    IOMMU_READ,
    IOMMU_WRITE,
    QUIRK_BITS,
    Config,
)
from .errors import BudgetExhausted, ConfigRejected, IopgfuzzError, KernelBug, WorldCrashed
from .events import Event
from .iommu import Scatterlist
from .smmu import Divergence, Walk
from .variants import Reference, Variant, get_variant
from .world import PROT_RW, Geometry, World

__all__ = [
    "ARM_32_LPAE_S1", "ARM_32_LPAE_S2", "ARM_64_LPAE_S1", "ARM_64_LPAE_S2", "ARM_MALI_LPAE",
    "CONCAT_LEGACY", "CONCAT_MANDATORY", "FORMATS", "IOMMU_CACHE", "IOMMU_MMIO",
    "IOMMU_NOEXEC", "IOMMU_PRIV", "IOMMU_READ", "IOMMU_WRITE", "QUIRK_BITS", "PROT_RW",
    "BudgetExhausted", "Config", "ConfigRejected", "IopgfuzzError", "KernelBug",
    "WorldCrashed", "Event",
    "Scatterlist", "Divergence", "Walk", "Reference", "Variant", "get_variant", "Geometry",
    "World",
]
