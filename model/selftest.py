"""The kernel's own io-pgtable-arm selftest (`arm_lpae_run_tests`), run on the model with a
*non-coherent* walker, plus the check the kernel cannot make: after every step, the SMMU must
read from memory exactly what the CPU wrote.

The kernel runs it with `coherent_walk = true`, so it never sees cache maintenance at all;
running it non-coherent is what makes it a test of the cleans.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .cint import fls0
from .config import (
    ARM_64_LPAE_S1,
    ARM_64_LPAE_S2,
    IO_PGTABLE_QUIRK_NO_WARN,
    IOMMU_CACHE,
    IOMMU_NOEXEC,
    IOMMU_READ,
    IOMMU_WRITE,
    SZ_1G,
    SZ_2M,
    SZ_4K,
    SZ_16K,
    SZ_32M,
    SZ_64K,
    SZ_512M,
    Config,
)
from .world import World

PGSIZE_BITMAPS = (SZ_4K | SZ_2M | SZ_1G, SZ_16K | SZ_32M, SZ_64K | SZ_512M)
ADDRESS_SIZES = (32, 36, 40, 42, 44, 48)


def selftest_configs(line: int = 64) -> Iterator[Config]:
    """The kernel's matrix: 3 bitmaps x (ias <= oas from ADDRESS_SIZES) x {S1, S2}."""
    for bitmap in PGSIZE_BITMAPS:
        for j, oas in enumerate(ADDRESS_SIZES):
            for ias in ADDRESS_SIZES[:j + 1]:
                for fmt in (ARM_64_LPAE_S1, ARM_64_LPAE_S2):
                    yield Config(fmt=fmt, granule=bitmap & -bitmap, ias=ias, oas=oas,
                                 quirks=IO_PGTABLE_QUIRK_NO_WARN, pgsize_bitmap=bitmap,
                                 page_size=bitmap & -bitmap, line=line)


@dataclass
class SelftestFailure:
    config: Config
    step: str

    def __str__(self) -> str:
        c = self.config
        return (f"{c.fmt} bitmap={c.pgsize_bitmap:#x} ias={c.ias} oas={c.oas}: {self.step}")


def _stale(w: World, iova: int, size: int) -> str | None:
    d = w.first_divergence(iova, size)
    return None if d is None else f"SMMU reads {d.reason} entry at iova {d.iova:#x} L{d.lvl}"


def arm_lpae_run_tests(config: Config) -> SelftestFailure | None:
    """One configuration of the kernel selftest; None when it passes."""
    w = World(config)
    cfg_bitmap = w.geometry.pgsize_bitmap

    def fail(step: str) -> SelftestFailure:
        return SelftestFailure(config, step)

    # Initial sanity checks.  Empty page tables shouldn't provide any translations.
    for iova in (42, SZ_1G + 42, 2 * SZ_1G + 42):
        if w.pt_iova_to_phys(iova):
            return fail(f"iova_to_phys({iova:#x}) on an empty table")

    # Distinct mappings of different granule sizes.
    iova = 0
    for j in _bits(cfg_bitmap):
        size = 1 << j
        ret, _ = w.pt_map_pages(iova, iova, size, 1,
                                IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE)
        if ret:
            return fail(f"map_pages({iova:#x}, {size:#x}) = {ret}")
        if (why := _stale(w, iova, size)):
            return fail(f"after map {size:#x} at {iova:#x}: {why}")
        # Overlapping mappings
        ret, _ = w.pt_map_pages(iova, iova + size, size, 1, IOMMU_READ | IOMMU_NOEXEC)
        if not ret:
            return fail(f"overlapping map_pages({iova:#x}, {size:#x}) succeeded")
        if w.pt_iova_to_phys(iova + 42) != iova + 42:
            return fail(f"iova_to_phys({iova + 42:#x})")
        iova += SZ_1G

    # Full unmap
    iova = 0
    for j in _bits(cfg_bitmap):
        size = 1 << j
        if w.pt_unmap_pages(iova, size, 1) != size:
            return fail(f"unmap_pages({iova:#x}, {size:#x})")
        if w.pt_iova_to_phys(iova + 42):
            return fail(f"iova_to_phys({iova + 42:#x}) after unmap")
        if (why := _stale(w, iova, size)):
            return fail(f"after unmap {size:#x} at {iova:#x}: {why}")
        # Remap full block
        ret, _ = w.pt_map_pages(iova, iova, size, 1, IOMMU_WRITE)
        if ret:
            return fail(f"remap {size:#x} at {iova:#x} = {ret}")
        if w.pt_iova_to_phys(iova + 42) != iova + 42:
            return fail(f"iova_to_phys({iova + 42:#x}) after remap")
        if (why := _stale(w, iova, size)):
            return fail(f"after remap {size:#x} at {iova:#x}: {why}")
        iova += SZ_1G

    # Map/unmap the last largest supported page of the IAS, this can trigger corner cases in
    # the concatenated page tables.
    size = 1 << fls0(cfg_bitmap)
    iova = (1 << w.geometry.ias) - size
    ret, mapped = w.pt_map_pages(iova, iova, size, 1,
                                 IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE)
    if ret or mapped != size:
        return fail(f"map last largest page {size:#x} at {iova:#x}: ret={ret} mapped={mapped:#x}")
    if (why := _stale(w, iova, size)):
        return fail(f"after map of the last largest page: {why}")
    if w.pt_unmap_pages(iova, size, 1) != size:
        return fail(f"unmap last largest page {size:#x} at {iova:#x}")
    if (why := _stale(w, iova, size)):
        return fail(f"after unmap of the last largest page: {why}")
    w.free()
    return None


def _bits(bitmap: int) -> Iterator[int]:
    """`for_each_set_bit(j, &cfg.pgsize_bitmap, BITS_PER_LONG)`: ascending bit indices."""
    j = 0
    while bitmap >> j:
        if bitmap >> j & 1:
            yield j
        j += 1


def run_all(line: int = 64) -> tuple[int, list[SelftestFailure]]:
    configs = list(selftest_configs(line))
    failures = [f for c in configs if (f := arm_lpae_run_tests(c)) is not None]
    return len(configs), failures
