/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/export.h>: nothing is exported from a userspace build. */
#ifndef _IOPGFUZZ_LINUX_EXPORT_H
#define _IOPGFUZZ_LINUX_EXPORT_H

#define EXPORT_SYMBOL(sym)
#define EXPORT_SYMBOL_GPL(sym)
#define MODULE_LICENSE(x)
#define subsys_initcall(fn)
#define late_initcall(fn)

#endif
