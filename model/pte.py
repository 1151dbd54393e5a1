"""PTE encoding (kernel-semantics §2): bit names, address folding, prot -> PTE, accessors.

Scalar functions take and return Python ints holding u64 values; the `_np` variants work on
NumPy uint64 arrays for the vectorised paths.
"""

from __future__ import annotations

import numpy as np

from .cint import genmask
from .config import (
    ARM_32_LPAE_S1,
    ARM_32_LPAE_S2,
    ARM_64_LPAE_S1,
    ARM_64_LPAE_S2,
    ARM_MALI_LPAE,
    IO_PGTABLE_QUIRK_ARM_HD,
    IO_PGTABLE_QUIRK_ARM_NS,
    IO_PGTABLE_QUIRK_ARM_S2FWB,
    IOMMU_CACHE,
    IOMMU_MMIO,
    IOMMU_NOEXEC,
    IOMMU_PRIV,
    IOMMU_READ,
    IOMMU_WRITE,
    SZ_64K,
)

ARM_LPAE_PTE_TYPE_SHIFT = 0
ARM_LPAE_PTE_TYPE_MASK = 0x3
ARM_LPAE_PTE_TYPE_BLOCK = 1
ARM_LPAE_PTE_TYPE_TABLE = 3
ARM_LPAE_PTE_TYPE_PAGE = 3
ARM_LPAE_PTE_VALID = 1 << 0

ARM_LPAE_PTE_NSTABLE = 1 << 63
ARM_LPAE_PTE_XN = 3 << 53
ARM_LPAE_PTE_DBM = 1 << 51
ARM_LPAE_PTE_AF = 1 << 10
ARM_LPAE_PTE_SH_NS = 0 << 8
ARM_LPAE_PTE_SH_OS = 2 << 8
ARM_LPAE_PTE_SH_IS = 3 << 8
ARM_LPAE_PTE_NS = 1 << 5
# Software bit: "this table PTE has been cleaned to memory"
ARM_LPAE_PTE_SW_SYNC = 1 << 55
#: Bits 55-58 are reserved for software; hardware walkers ignore them.
ARM_LPAE_PTE_SW_MASK = 0xF << 55
HW_MASK = ~ARM_LPAE_PTE_SW_MASK & ((1 << 64) - 1)

# Stage-1 bits
ARM_LPAE_PTE_nG = 1 << 11
ARM_LPAE_PTE_AP_UNPRIV = 1 << 6
ARM_LPAE_PTE_AP_RDONLY = 2 << 6
ARM_LPAE_PTE_ATTRINDX_SHIFT = 2
ARM_LPAE_MAIR_ATTR_IDX_NC = 0
ARM_LPAE_MAIR_ATTR_IDX_CACHE = 1
ARM_LPAE_MAIR_ATTR_IDX_DEV = 2

# Stage-2 bits
ARM_LPAE_PTE_HAP_READ = 1 << 6
ARM_LPAE_PTE_HAP_WRITE = 2 << 6
ARM_LPAE_PTE_MEMATTR_OIWB = 0xF << 2
ARM_LPAE_PTE_MEMATTR_NC = 0x5 << 2
ARM_LPAE_PTE_MEMATTR_DEV = 0x1 << 2
ARM_LPAE_PTE_MEMATTR_FWB_WB = 0x6 << 2

ARM_LPAE_PTE_ADDR_MASK = genmask(47, 12)

ARM_LPAE_PTE_ATTR_LO_MASK = 0x3FF << 2
# Ignore the contiguous bit for block splitting
ARM_LPAE_PTE_ATTR_HI_MASK = ARM_LPAE_PTE_XN | ARM_LPAE_PTE_DBM
ARM_LPAE_PTE_ATTR_MASK = ARM_LPAE_PTE_ATTR_LO_MASK | ARM_LPAE_PTE_ATTR_HI_MASK


def iopte_type(pte: int) -> int:
    return (pte >> ARM_LPAE_PTE_TYPE_SHIFT) & ARM_LPAE_PTE_TYPE_MASK


def iopte_prot(pte: int) -> int:
    """The attribute bits a split copies from the block (v6.12 `arm_lpae_split_blk_unmap`):
    bits 2-11, DBM and XN; not the address, the type, the contiguous bit or software bits."""
    return pte & ARM_LPAE_PTE_ATTR_MASK


def iopte_leaf(pte: int, lvl: int, fmt: str) -> bool:
    if lvl == 3 and fmt != ARM_MALI_LPAE:
        return iopte_type(pte) == ARM_LPAE_PTE_TYPE_PAGE
    return iopte_type(pte) == ARM_LPAE_PTE_TYPE_BLOCK


def iopte_table(pte: int, lvl: int) -> bool:
    if lvl == 3:
        return False
    return iopte_type(pte) == ARM_LPAE_PTE_TYPE_TABLE


def paddr_to_iopte(paddr: int, granule: int) -> int:
    """Fold PA[51:48] into PTE[15:12]; for smaller granules the fold only touches masked bits."""
    del granule  # the kernel's expression is the same for every granule
    return (paddr | (paddr >> (48 - 12))) & ARM_LPAE_PTE_ADDR_MASK


def iopte_to_paddr(pte: int, granule: int) -> int:
    paddr = pte & ARM_LPAE_PTE_ADDR_MASK
    if granule < SZ_64K:
        return paddr
    # Rotate the packed high-order bits back to the top
    return (paddr | (paddr << (48 - 12))) & (ARM_LPAE_PTE_ADDR_MASK << 4)


def paddr_to_iopte_np(paddr: np.ndarray) -> np.ndarray:
    return (paddr | (paddr >> np.uint64(36))) & np.uint64(ARM_LPAE_PTE_ADDR_MASK)


def iopte_to_paddr_np(pte: np.ndarray, granule: int) -> np.ndarray:
    paddr = pte & np.uint64(ARM_LPAE_PTE_ADDR_MASK)
    if granule < SZ_64K:
        return paddr
    return (paddr | (paddr << np.uint64(36))) & np.uint64(ARM_LPAE_PTE_ADDR_MASK << 4)


def arm_lpae_prot_to_pte(fmt: str, quirks: int, prot: int) -> int:
    """`arm_lpae_prot_to_pte`: IOMMU_* flags to the attribute bits of a leaf."""
    if fmt in (ARM_64_LPAE_S1, ARM_32_LPAE_S1):
        pte = ARM_LPAE_PTE_nG
        if not (prot & IOMMU_WRITE) and (prot & IOMMU_READ):
            pte |= ARM_LPAE_PTE_AP_RDONLY
        elif quirks & IO_PGTABLE_QUIRK_ARM_HD:
            pte |= ARM_LPAE_PTE_DBM
        if not (prot & IOMMU_PRIV):
            pte |= ARM_LPAE_PTE_AP_UNPRIV
    else:
        pte = 0
        if prot & IOMMU_READ:
            pte |= ARM_LPAE_PTE_HAP_READ
        if prot & IOMMU_WRITE:
            pte |= ARM_LPAE_PTE_HAP_WRITE

    if fmt in (ARM_64_LPAE_S2, ARM_32_LPAE_S2):
        if prot & IOMMU_MMIO:
            pte |= ARM_LPAE_PTE_MEMATTR_DEV
        elif prot & IOMMU_CACHE:
            pte |= (ARM_LPAE_PTE_MEMATTR_FWB_WB if quirks & IO_PGTABLE_QUIRK_ARM_S2FWB
                    else ARM_LPAE_PTE_MEMATTR_OIWB)
        else:
            pte |= ARM_LPAE_PTE_MEMATTR_NC
    else:
        if prot & IOMMU_MMIO:
            pte |= ARM_LPAE_MAIR_ATTR_IDX_DEV << ARM_LPAE_PTE_ATTRINDX_SHIFT
        elif prot & IOMMU_CACHE:
            pte |= ARM_LPAE_MAIR_ATTR_IDX_CACHE << ARM_LPAE_PTE_ATTRINDX_SHIFT

    # Also Mali has its own notions of shareability wherein its Inner domain covers the cores
    # within the GPU, and its Outer domain is "outside the GPU".
    if prot & IOMMU_CACHE and fmt != ARM_MALI_LPAE:
        pte |= ARM_LPAE_PTE_SH_IS
    else:
        pte |= ARM_LPAE_PTE_SH_OS

    if prot & IOMMU_NOEXEC:
        pte |= ARM_LPAE_PTE_XN
    if quirks & IO_PGTABLE_QUIRK_ARM_NS:
        pte |= ARM_LPAE_PTE_NS
    if fmt != ARM_MALI_LPAE:
        pte |= ARM_LPAE_PTE_AF
    return pte
