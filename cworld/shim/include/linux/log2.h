/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/log2.h>. */
#ifndef _IOPGFUZZ_LINUX_LOG2_H
#define _IOPGFUZZ_LINUX_LOG2_H

#include <linux/bitops.h>

#define ilog2(n)		((int)(fls64((u64)(n)) - 1))
#define is_power_of_2(n)	((n) != 0 && (((n) & ((n) - 1)) == 0))

#endif
