/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz shim of drivers/iommu/iommu-pages.h: zeroed table memory from the runtime's arena.
 * Both generations of the API are here: 6.12's order-based one and the later size-based
 * one (iommu_alloc_pages_node_sz, one-argument iommu_free_pages); the build defines
 * IOPGFUZZ_IOMMU_PAGES_SZ for trees of the second kind.
 */
#ifndef _IOPGFUZZ_IOMMU_PAGES_H
#define _IOPGFUZZ_IOMMU_PAGES_H

#include <asm/page.h>
#include <linux/gfp.h>
#include "iopgfuzz_shim.h"

#ifdef IOPGFUZZ_IOMMU_PAGES_SZ
static inline void *iommu_alloc_pages_node_sz(int nid, gfp_t gfp, size_t size)
{
	(void)nid;
	return iopgfuzz_alloc_pages(size, gfp);
}

static inline void iommu_free_pages(void *virt)
{
	iopgfuzz_free_pages(virt);
}
#else
static inline void *iommu_alloc_pages_node(int nid, gfp_t gfp, int order)
{
	(void)nid;
	return iopgfuzz_alloc_pages(PAGE_SIZE << order, gfp);
}

static inline void *iommu_alloc_pages(gfp_t gfp, int order)
{
	return iommu_alloc_pages_node(-1, gfp, order);
}

static inline void iommu_free_pages(void *virt, int order)
{
	(void)order;
	iopgfuzz_free_pages(virt);
}
#endif

#endif
