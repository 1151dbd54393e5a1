/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/slab.h>: kmalloc is the C heap (never table memory). */
#ifndef _IOPGFUZZ_LINUX_SLAB_H
#define _IOPGFUZZ_LINUX_SLAB_H

#include <linux/gfp.h>
#include <linux/types.h>
#include "iopgfuzz_shim.h"

#define kmalloc(size, gfp)	iopgfuzz_kmalloc((size), (gfp))
#define kzalloc(size, gfp)	iopgfuzz_kmalloc((size), (gfp) | __GFP_ZERO)
#define kfree(p)		iopgfuzz_kfree(p)

#endif
