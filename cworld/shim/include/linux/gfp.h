/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/gfp.h>: the flags are only passed through. */
#ifndef _IOPGFUZZ_LINUX_GFP_H
#define _IOPGFUZZ_LINUX_GFP_H

#include <linux/types.h>

#define __GFP_HIGHMEM	0x02u
#define __GFP_ZERO	0x100u
#define __GFP_NOWARN	0x200u
#define GFP_ATOMIC	0x800u
#define GFP_KERNEL	0xcc0u

#endif
