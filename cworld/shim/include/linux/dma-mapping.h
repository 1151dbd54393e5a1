/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz shim of <linux/dma-mapping.h> for a non-coherent device: mapping a buffer
 * TO_DEVICE and syncing it for the device clean its cache lines to memory, which the runtime
 * counts and turns into the memory view the SMMU reads.  Unmapping has no cache effect.
 */
#ifndef _IOPGFUZZ_LINUX_DMA_MAPPING_H
#define _IOPGFUZZ_LINUX_DMA_MAPPING_H

#include <asm/page.h>
#include <linux/types.h>
#include "iopgfuzz_shim.h"

struct device;

enum dma_data_direction {
	DMA_BIDIRECTIONAL = 0,
	DMA_TO_DEVICE = 1,
	DMA_FROM_DEVICE = 2,
	DMA_NONE = 3,
};

#define DMA_MAPPING_ERROR	(~(dma_addr_t)0)

/*
 * Macros, not functions: the runtime tells the call sites of a clean apart by the return
 * addresses on the stack, and an extra frame here would only hide them.
 */
#define dma_map_single(dev, ptr, size, dir)	iopgfuzz_dma_map_single((ptr), (size))
#define dma_unmap_single(dev, addr, size, dir)	do { (void)(addr); } while (0)
#define dma_mapping_error(dev, addr)		((addr) == DMA_MAPPING_ERROR)
#define dma_sync_single_for_device(dev, addr, size, dir) \
	iopgfuzz_dma_sync_for_device((addr), (size))

#endif
