/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz shim of <linux/device/faux.h>: io-pgtable-arm.c (6.17-rc3) includes it for its
 * selftests (CONFIG_IOMMU_IO_PGTABLE_LPAE_SELFTEST, never set here), so the type and the two
 * calls are declared and not defined: a use outside the selftests fails to link.
 */
#ifndef _IOPGFUZZ_LINUX_DEVICE_FAUX_H
#define _IOPGFUZZ_LINUX_DEVICE_FAUX_H

#include <linux/device.h>

struct faux_device {
	struct device dev;
};

struct faux_device_ops;

struct faux_device *faux_device_create(const char *name, struct device *parent,
				       const struct faux_device_ops *faux_ops);
void faux_device_destroy(struct faux_device *faux_dev);

#endif
