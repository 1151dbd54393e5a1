"""drivers/iommu/iommu.c (v6.17): the map / sync / unmap flow of a paging domain.

The domain's `ops` is the driver layer (`driver.SmmuDomainOps`), which forwards to the
io-pgtable ops and is where PATCH 2/2 hooks `iotlb_sync_map`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cint import EINVAL, ENODEV, check_add_overflow_u64, ffs0, fls0, genmask, s64, u64
from .events import EventLog
from .io_pgtable_arm import Ref


@dataclass
class IommuDomain:
    ops: object                 # driver.SmmuDomainOps
    pgsize_bitmap: int
    events: EventLog


class IotlbGather:
    """`struct iommu_iotlb_gather`.  The model has no TLB: the gather carries nothing; the
    pages it would collect are counted in `TlbCounters.add_page`."""


def iommu_pgsize(domain: IommuDomain, iova: int, paddr: int, size: int,
                 want_count: bool = True) -> tuple[int, int]:
    """Returns (pgsize, count).  BUG_ON when no page size fits (raises KernelBug)."""
    addr_merge = u64(paddr | iova)

    # Page sizes supported by the hardware and small enough for @size
    pgsizes = domain.pgsize_bitmap & genmask(fls0(size), 0)

    # Constrain the page sizes further based on the maximum alignment
    if addr_merge:
        pgsizes &= genmask(ffs0(addr_merge), 0)

    # Make sure we have at least one suitable page size
    domain.events.bug_on(not pgsizes, "iommu_pgsize",
                         f"iova={u64(iova):#x} paddr={u64(paddr):#x} size={u64(size):#x}")

    # Pick the biggest page size remaining
    pgsize_idx = fls0(pgsizes)
    pgsize = 1 << pgsize_idx
    if not want_count:
        return pgsize, 0

    # Find the next biggest support page size, if it exists
    pgsizes = domain.pgsize_bitmap & ~genmask(pgsize_idx, 0)
    if pgsizes:
        pgsize_idx_next = ffs0(pgsizes)
        pgsize_next = 1 << pgsize_idx_next
        # There's no point trying a bigger page size unless the virtual and physical
        # addresses are similarly offset within the larger page.
        if not ((iova ^ paddr) & (pgsize_next - 1)):
            # Calculate the offset to the next page size alignment boundary
            offset = pgsize_next - (addr_merge & (pgsize_next - 1))
            # If size is big enough to accommodate the larger page, reduce the number of
            # smaller pages.
            if not check_add_overflow_u64(offset, pgsize_next) and offset + pgsize_next <= size:
                size = offset

    return pgsize, size >> pgsize_idx


def iommu_map_nosync(domain: IommuDomain, iova: int, paddr: int, size: int, prot: int,
                     gfp: int = 0) -> int:
    ops = domain.ops
    iova, paddr, size = u64(iova), u64(paddr), u64(size)
    orig_iova, orig_size = iova, size
    ret = 0

    if domain.events.warn_on(ops.map_pages is None or domain.pgsize_bitmap == 0,
                             "iommu_map_nosync:ops"):
        return -ENODEV

    # find out the minimum page size supported
    min_pagesz = 1 << ffs0(domain.pgsize_bitmap)

    # both the virtual address and the physical one, as well as the size of the mapping,
    # must be aligned (at least) to the size of the smallest page supported by the hardware
    if (iova | paddr | size) % min_pagesz:
        return -EINVAL          # pr_err("unaligned: ...")

    while size:
        mapped = Ref(0)
        pgsize, count = iommu_pgsize(domain, iova, paddr, size)
        ret = ops.map_pages(domain, iova, paddr, pgsize, count, prot, gfp, mapped)
        # Some pages may have been mapped, even if an error occurred, so we should account
        # for those so they can be unmapped.
        size = u64(size - mapped.value)
        if ret:
            break
        # A driver returning 0 having mapped nothing makes this loop spin forever (only
        # reachable through the pgcount truncation of __arm_lpae_map); the model stops it.
        domain.events.bug_on(mapped.value == 0, "iommu_map_nosync:no-progress",
                             "map_pages returned 0 with nothing mapped: the kernel would hang")
        iova = u64(iova + mapped.value)
        paddr = u64(paddr + mapped.value)

    # unroll mapping in case something went wrong
    if ret:
        iommu_unmap(domain, orig_iova, u64(orig_size - size))
    return ret


def iommu_sync_map(domain: IommuDomain, iova: int, size: int) -> int:
    ops = domain.ops
    if ops.iotlb_sync_map is None:
        return 0
    return ops.iotlb_sync_map(domain, u64(iova), u64(size))


def iommu_map(domain: IommuDomain, iova: int, paddr: int, size: int, prot: int,
              gfp: int = 0) -> int:
    ret = iommu_map_nosync(domain, iova, paddr, size, prot, gfp)
    if ret:
        return ret
    ret = iommu_sync_map(domain, iova, size)
    if ret:
        iommu_unmap(domain, iova, size)
    return ret


@dataclass(frozen=True)
class Scatterlist:
    """One `struct scatterlist` entry: physical address, length, and whether it is a P2P
    bus address (`sg_dma_is_bus_address`)."""

    phys: int
    length: int
    bus_address: bool = False


def iommu_map_sg(domain: IommuDomain, iova: int, sg: list[Scatterlist], prot: int,
                 gfp: int = 0) -> int:
    """Returns ssize_t: bytes mapped, or a negative errno.  `nents == len(sg)` (>= 1)."""
    nents = len(sg)
    length = 0
    mapped = 0
    start = 0
    i = 0
    k = 0                    # index of the scatterlist entry `sg` points at
    iova = u64(iova)

    while i <= nents:
        s_phys = sg[k].phys
        if length and s_phys != u64(start + length):
            ret = iommu_map_nosync(domain, u64(iova + mapped), start, length, prot, gfp)
            if ret:
                iommu_unmap(domain, iova, mapped)   # undo mappings already done
                return ret
            mapped = u64(mapped + length)
            length = 0

        if not sg[k].bus_address:
            if length:
                length = u64(length + sg[k].length)
            else:
                length = sg[k].length
                start = s_phys
        i += 1
        if i < nents:
            k += 1

    ret = iommu_sync_map(domain, iova, mapped)
    if ret:
        iommu_unmap(domain, iova, mapped)
        return ret
    return s64(mapped)


def __iommu_unmap(domain: IommuDomain, iova: int, size: int, gather: IotlbGather) -> int:
    ops = domain.ops
    unmapped = 0
    iova, size = u64(iova), u64(size)

    if domain.events.warn_on(ops.unmap_pages is None or domain.pgsize_bitmap == 0,
                             "__iommu_unmap:ops"):
        return 0

    min_pagesz = 1 << ffs0(domain.pgsize_bitmap)
    if (iova | size) % min_pagesz:
        return 0                # pr_err("unaligned: ...")

    # Keep iterating until we either unmap 'size' bytes (or more) or we hit an area that
    # isn't mapped.
    while unmapped < size:
        pgsize, count = iommu_pgsize(domain, iova, iova, size - unmapped)
        unmapped_page = ops.unmap_pages(domain, iova, pgsize, count, gather)
        if not unmapped_page:
            break
        iova = u64(iova + unmapped_page)
        unmapped = u64(unmapped + unmapped_page)
    return unmapped


def iommu_unmap(domain: IommuDomain, iova: int, size: int) -> int:
    gather = IotlbGather()
    ret = __iommu_unmap(domain, iova, size, gather)
    domain.ops.iotlb_sync(domain, gather)
    return ret
