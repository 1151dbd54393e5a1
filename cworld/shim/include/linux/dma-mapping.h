/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz shim of <linux/dma-mapping.h> for a non-coherent device: mapping a buffer
 * TO_DEVICE and syncing it for the device clean its cache lines to memory, which the runtime
 * counts and turns into the memory view the SMMU reads.  Unmapping has no cache effect.
 */
#ifndef _IOPGFUZZ_LINUX_DMA_MAPPING_H
#define _IOPGFUZZ_LINUX_DMA_MAPPING_H

#include <asm/page.h>
#include <linux/device.h>
#include <linux/types.h>
#include "iopgfuzz_shim.h"

enum dma_data_direction {
	DMA_BIDIRECTIONAL = 0,
	DMA_TO_DEVICE = 1,
	DMA_FROM_DEVICE = 2,
	DMA_NONE = 3,
};

#define DMA_MAPPING_ERROR	(~(dma_addr_t)0)
#define DMA_BIT_MASK(n)		(((n) == 64) ? ~0ULL : ((1ULL << (n)) - 1))
#define dma_mapping_error(dev, addr)		((addr) == DMA_MAPPING_ERROR)

#ifndef IOPGFUZZ_KUNIT
/*
 * Macros, not functions: the runtime tells the call sites of a clean apart by the return
 * addresses on the stack, and an extra frame here would only hide them.
 */
#define dma_map_single(dev, ptr, size, dir)	iopgfuzz_dma_map_single((ptr), (size))
#define dma_unmap_single(dev, addr, size, dir)	do { (void)(addr); } while (0)
#define dma_sync_single_for_device(dev, addr, size, dir) \
	iopgfuzz_dma_sync_for_device((addr), (size))
#else
/*
 * A KUnit runner (cworld/kunit): the calls go through the device as in the kernel's
 * kernel/dma/mapping.c.  A device with dma_map_ops (set_dma_ops()) gets its ops called; the
 * runtime's own cache model above is updated either way (it only watches).  No Python reads
 * the clean sites here, so the extra frame does not matter.
 */
dma_addr_t iopgfuzz_kunit_dma_map_single(struct device *dev, void *ptr, size_t size, int dir);
void iopgfuzz_kunit_dma_unmap_single(struct device *dev, dma_addr_t addr, size_t size, int dir);
void iopgfuzz_kunit_dma_sync_for_device(struct device *dev, dma_addr_t addr, size_t size,
					int dir);
int iopgfuzz_kunit_dma_set_mask(struct device *dev, u64 mask);

#define dma_map_single(dev, ptr, size, dir) \
	iopgfuzz_kunit_dma_map_single((dev), (ptr), (size), (dir))
#define dma_unmap_single(dev, addr, size, dir) \
	iopgfuzz_kunit_dma_unmap_single((dev), (addr), (size), (dir))
#define dma_sync_single_for_device(dev, addr, size, dir) \
	iopgfuzz_kunit_dma_sync_for_device((dev), (addr), (size), (dir))

static inline int dma_set_mask_and_coherent(struct device *dev, u64 mask)
{
	return iopgfuzz_kunit_dma_set_mask(dev, mask);
}

static inline int dma_coerce_mask_and_coherent(struct device *dev, u64 mask)
{
	dev->dma_mask = &dev->coherent_dma_mask;
	return dma_set_mask_and_coherent(dev, mask);
}
#endif

#endif
