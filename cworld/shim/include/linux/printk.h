/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/printk.h> and dev_printk: messages are dropped (WARNs are events). */
#ifndef _IOPGFUZZ_LINUX_PRINTK_H
#define _IOPGFUZZ_LINUX_PRINTK_H

#define pr_err(fmt, ...)	do { } while (0)
#define pr_warn(fmt, ...)	do { } while (0)
#define pr_info(fmt, ...)	do { } while (0)
#define pr_debug(fmt, ...)	do { } while (0)
#define dev_err(dev, fmt, ...)	do { (void)(dev); } while (0)
#define dev_warn(dev, fmt, ...)	do { (void)(dev); } while (0)

#endif
