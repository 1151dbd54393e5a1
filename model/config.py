"""User-facing configuration: format, granule, address sizes, quirks, cache geometry.

`Config` is what a scenario names (the `config` line of an `.ops` file).  It is turned into the
kernel's `struct io_pgtable_cfg` by `io_pgtable_arm.alloc_io_pgtable_ops`, which applies the
kernel's own checks and refuses what the kernel refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SZ_4K, SZ_16K, SZ_64K = 1 << 12, 1 << 14, 1 << 16
SZ_2M, SZ_32M, SZ_512M = 1 << 21, 1 << 25, 1 << 29
SZ_1G, SZ_4T = 1 << 30, 1 << 42

# enum io_pgtable_fmt, by the names the op language uses
ARM_32_LPAE_S1 = "arm32-s1"
ARM_32_LPAE_S2 = "arm32-s2"
ARM_64_LPAE_S1 = "arm64-s1"
ARM_64_LPAE_S2 = "arm64-s2"
ARM_MALI_LPAE = "mali"
FORMATS = (ARM_64_LPAE_S1, ARM_64_LPAE_S2, ARM_32_LPAE_S1, ARM_32_LPAE_S2, ARM_MALI_LPAE)
KERNEL_FMT_NAME = {ARM_32_LPAE_S1: "ARM_32_LPAE_S1", ARM_32_LPAE_S2: "ARM_32_LPAE_S2",
                   ARM_64_LPAE_S1: "ARM_64_LPAE_S1", ARM_64_LPAE_S2: "ARM_64_LPAE_S2",
                   ARM_MALI_LPAE: "ARM_MALI_LPAE"}

# IO_PGTABLE_QUIRK_* (include/linux/io-pgtable.h): op-language name -> bit
QUIRK_BITS = {
    "ns": 1 << 0,          # IO_PGTABLE_QUIRK_ARM_NS
    "no_perms": 1 << 1,    # IO_PGTABLE_QUIRK_NO_PERMS (v7s only; refused by every LPAE format)
    "ttbr1": 1 << 5,       # IO_PGTABLE_QUIRK_ARM_TTBR1
    "outer_wbwa": 1 << 6,  # IO_PGTABLE_QUIRK_ARM_OUTER_WBWA
    "hd": 1 << 7,          # IO_PGTABLE_QUIRK_ARM_HD
    "s2fwb": 1 << 8,       # IO_PGTABLE_QUIRK_ARM_S2FWB
    "no_warn": 1 << 9,     # IO_PGTABLE_QUIRK_NO_WARN
}
QUIRK_NAMES = {bit: name for name, bit in QUIRK_BITS.items()}
IO_PGTABLE_QUIRK_ARM_NS = QUIRK_BITS["ns"]
IO_PGTABLE_QUIRK_ARM_TTBR1 = QUIRK_BITS["ttbr1"]
IO_PGTABLE_QUIRK_ARM_OUTER_WBWA = QUIRK_BITS["outer_wbwa"]
IO_PGTABLE_QUIRK_ARM_HD = QUIRK_BITS["hd"]
IO_PGTABLE_QUIRK_ARM_S2FWB = QUIRK_BITS["s2fwb"]
IO_PGTABLE_QUIRK_NO_WARN = QUIRK_BITS["no_warn"]

# IOMMU_* prot flags (include/linux/iommu.h)
IOMMU_READ, IOMMU_WRITE, IOMMU_CACHE = 1, 2, 4
IOMMU_NOEXEC, IOMMU_MMIO, IOMMU_PRIV = 8, 16, 32
PROT_LETTERS = {"r": IOMMU_READ, "w": IOMMU_WRITE, "c": IOMMU_CACHE, "x": IOMMU_NOEXEC,
                "m": IOMMU_MMIO, "p": IOMMU_PRIV}

#: Every page size a granule's format can express; `arm_lpae_restrict_pgsizes` trims it.
GRANULE_PGSIZES = {SZ_4K: SZ_4K | SZ_2M | SZ_1G | (1 << 39),
                   SZ_16K: SZ_16K | SZ_32M | (1 << 36) | (1 << 47),
                   SZ_64K: SZ_64K | SZ_512M | SZ_4T}

CONCAT_MANDATORY = "mandatory"   # v6.14+: arm_lpae_concat_mandatory()
CONCAT_LEGACY = "legacy"         # before 4dcac8407fe1: start_level 0 and <= 16 PGD entries


@dataclass(frozen=True)
class Config:
    """A page-table configuration.  Defaults match a typical non-coherent SMMUv3 stage 1.

    `pgsize_bitmap` defaults to everything the granule can express (what an SMMU advertises);
    `page_size` is the CPU kernel's PAGE_SIZE, which `arm_lpae_restrict_pgsizes` prefers.
    `table_base` is the physical address of the first page-table allocation (move it above
    2^48 to exercise 52-bit table descriptors).
    `split_blk_unmap` selects the v6.12-and-earlier unmap of part of a block: the block is split
    into a new next-level table without the unmapped part (`arm_lpae_split_blk_unmap`, removed
    by 33729a5fc0ca in v6.13); off (the default), such an unmap WARNs once and returns 0.
    """

    fmt: str = ARM_64_LPAE_S1
    granule: int = SZ_4K
    ias: int = 48
    oas: int = 48
    quirks: int = 0
    line: int = 64
    concat: str = CONCAT_MANDATORY
    enoent_bug: bool = True
    coherent_walk: bool = False
    pgsize_bitmap: int | None = None
    page_size: int = SZ_4K
    table_base: int = 0x4000_0000_0
    split_blk_unmap: bool = False
    #: The kernel series for what has no switch of its own: "6.17" (the default) or "6.12"
    #: (the quirks its alloc functions accept).  cworld.profiles sets it with the other
    #: kernel-version switches for a model world paired with a C build of a tree.
    kernel: str = "6.17"

    def with_(self, **changes) -> Config:
        return replace(self, **changes)

    @property
    def requested_pgsize_bitmap(self) -> int:
        if self.pgsize_bitmap is not None:
            return self.pgsize_bitmap
        return GRANULE_PGSIZES.get(self.granule, self.granule)

    def quirk_names(self) -> list[str]:
        return [QUIRK_NAMES[b] for b in sorted(QUIRK_NAMES) if self.quirks & b]


def quirks_from_names(names) -> int:
    bits = 0
    for n in names:
        if n not in QUIRK_BITS:
            raise KeyError(n)
        bits |= QUIRK_BITS[n]
    return bits


@dataclass
class IoPgtableCfg:
    """`struct io_pgtable_cfg` (the fields the model uses).

    `defer_sync_pte` is PATCH 1/2's new flag; upstream has no such field, and it stays False
    for the reference variant.
    """

    fmt: str
    quirks: int
    pgsize_bitmap: int
    ias: int
    oas: int
    coherent_walk: bool
    defer_sync_pte: bool = False
    # format outputs, filled by the alloc functions (kept for display and for tests)
    outputs: dict = field(default_factory=dict)
