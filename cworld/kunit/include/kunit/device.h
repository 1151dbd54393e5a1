/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz's stand-in for <kunit/device.h> (kunit_device_register() came with Linux 6.8) */
#ifndef _IOPGFUZZ_KUNIT_DEVICE_H
#define _IOPGFUZZ_KUNIT_DEVICE_H

#include <linux/device.h>

struct kunit;

/* A device that lives until the test case ends; ERR_PTR(-ENOMEM) when it cannot be made. */
struct device *kunit_device_register(struct kunit *test, const char *name);

#endif
