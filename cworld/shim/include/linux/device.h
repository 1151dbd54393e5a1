/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz shim of <linux/device.h>: the few members of struct device that the io-pgtable code
 * (numa_node, through dev_to_node) and a KUnit test of it use: the driver data, the DMA masks
 * and the per-device dma_map_ops that set_dma_ops() installs (CONFIG_ARCH_HAS_DMA_OPS).
 */
#ifndef _IOPGFUZZ_LINUX_DEVICE_H
#define _IOPGFUZZ_LINUX_DEVICE_H

#include <linux/types.h>

struct dma_map_ops;

struct device {
	int numa_node;
	void *driver_data;
	u64 *dma_mask;
	u64 coherent_dma_mask;
	const struct dma_map_ops *dma_ops;
	const char *init_name;
};

static inline int dev_to_node(struct device *dev)
{
	return dev ? dev->numa_node : -1;
}

static inline void *dev_get_drvdata(const struct device *dev)
{
	return dev->driver_data;
}

static inline void dev_set_drvdata(struct device *dev, void *data)
{
	dev->driver_data = data;
}

#endif
