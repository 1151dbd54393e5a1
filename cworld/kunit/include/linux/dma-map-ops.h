/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz's stand-in for <linux/dma-map-ops.h>: struct dma_map_ops with the members a test
 * that records a device's view of memory implements, and get_dma_ops()/set_dma_ops() as
 * CONFIG_ARCH_HAS_DMA_OPS kernels (CONFIG_DMA_OPS before 6.12) define them.  map_page/unmap_page
 * are the older interface, map_phys/unmap_phys the newer one; cworld/kunit/kunit.c calls them
 * in the kernel's order (map_phys first where both are set).
 */
#ifndef _IOPGFUZZ_LINUX_DMA_MAP_OPS_H
#define _IOPGFUZZ_LINUX_DMA_MAP_OPS_H

#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/mm.h>

#define CONFIG_ARCH_HAS_DMA_OPS	1

struct dma_map_ops {
	dma_addr_t (*map_page)(struct device *dev, struct page *page, unsigned long offset,
			       size_t size, enum dma_data_direction dir, unsigned long attrs);
	void (*unmap_page)(struct device *dev, dma_addr_t dma_handle, size_t size,
			   enum dma_data_direction dir, unsigned long attrs);
	dma_addr_t (*map_phys)(struct device *dev, phys_addr_t phys, size_t size,
			       enum dma_data_direction dir, unsigned long attrs);
	void (*unmap_phys)(struct device *dev, dma_addr_t dma_handle, size_t size,
			   enum dma_data_direction dir, unsigned long attrs);
	void (*sync_single_for_cpu)(struct device *dev, dma_addr_t addr, size_t size,
				    enum dma_data_direction dir);
	void (*sync_single_for_device)(struct device *dev, dma_addr_t addr, size_t size,
				       enum dma_data_direction dir);
	int (*dma_supported)(struct device *dev, u64 mask);
};

static inline const struct dma_map_ops *get_dma_ops(struct device *dev)
{
	return dev->dma_ops;
}

static inline void set_dma_ops(struct device *dev, const struct dma_map_ops *dma_ops)
{
	dev->dma_ops = dma_ops;
}

#endif
