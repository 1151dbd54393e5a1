/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/mm.h>: only what page-table code asks of it. */
#ifndef _IOPGFUZZ_LINUX_MM_H
#define _IOPGFUZZ_LINUX_MM_H

#include <asm/page.h>
#include <linux/gfp.h>

/* A struct page * is the page's address in the arena (see gfp.h) */
#define virt_to_page(va)	((struct page *)((uintptr_t)(va) & PAGE_MASK))
#define offset_in_page(p)	((unsigned long)(uintptr_t)(p) & ~PAGE_MASK)
#define page_to_phys(page)	virt_to_phys(page_address(page))

#endif
