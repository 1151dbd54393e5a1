/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz's stand-in for <linux/version.h>: the kernel tree's version (cworld/kunit.py) */
#ifndef _IOPGFUZZ_LINUX_VERSION_H
#define _IOPGFUZZ_LINUX_VERSION_H

#define KERNEL_VERSION(a, b, c)	(((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))
#ifndef IOPGFUZZ_LINUX_VERSION_CODE
#error "cworld/kunit.py passes the tree's version as IOPGFUZZ_LINUX_VERSION_CODE"
#endif
#define LINUX_VERSION_CODE	IOPGFUZZ_LINUX_VERSION_CODE

#endif
