/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/gfp.h>: the flags are only passed through. */
#ifndef _IOPGFUZZ_LINUX_GFP_H
#define _IOPGFUZZ_LINUX_GFP_H

#include <linux/types.h>

#define __GFP_HIGHMEM	0x02u
#define __GFP_ZERO	0x100u
#define __GFP_NOWARN	0x200u
#define GFP_ATOMIC	0x800u
#define GFP_KERNEL	0xcc0u

/*
 * The page allocator as kernels before 6.11 call it from io-pgtable-arm.c (no iommu-pages.h):
 * a `struct page *` here is simply the page's address in the runtime's arena.
 */
struct page;

#include "iopgfuzz_shim.h"

extern unsigned int iopgfuzz_page_shift;

static inline struct page *alloc_pages_node(int nid, gfp_t gfp, unsigned int order)
{
	(void)nid;
	return (struct page *)iopgfuzz_alloc_pages((size_t)1 << (iopgfuzz_page_shift + order), gfp);
}

static inline void *page_address(const struct page *page)
{
	return (void *)page;
}

static inline void __free_pages(struct page *page, unsigned int order)
{
	(void)order;
	iopgfuzz_free_pages(page);
}

static inline void free_pages(unsigned long addr, unsigned int order)
{
	(void)order;
	iopgfuzz_free_pages((void *)addr);
}

#endif
