/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz shim of <asm/page.h>: PAGE_SIZE is the scenario's CPU page size, a run-time value
 * (arm_lpae_restrict_pgsizes prefers it), and __pa/__va map the table arena.
 */
#ifndef _IOPGFUZZ_ASM_PAGE_H
#define _IOPGFUZZ_ASM_PAGE_H

#include <linux/types.h>
#include "iopgfuzz_shim.h"

#define PAGE_SHIFT	((unsigned long)iopgfuzz_page_shift)
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define PAGE_MASK	(~(PAGE_SIZE - 1))

#define virt_to_phys(va)	((phys_addr_t)iopgfuzz_virt_to_phys(va))
#define phys_to_virt(pa)	iopgfuzz_phys_to_virt(pa)
#define __pa(va)		virt_to_phys(va)
#define __va(pa)		phys_to_virt((phys_addr_t)(pa))

static inline int get_order(unsigned long size)
{
	int order = 0;

	size = (size - 1) >> PAGE_SHIFT;
	while (size) {
		order++;
		size >>= 1;
	}
	return order;
}

#endif
