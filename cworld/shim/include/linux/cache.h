/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz shim of <linux/cache.h>: cache_line_size() is the scenario's `line=`, the D-cache
 * line the DMA API cleans in (arm64 reads it from CTR_EL0 at boot).
 */
#ifndef _IOPGFUZZ_LINUX_CACHE_H
#define _IOPGFUZZ_LINUX_CACHE_H

#include "iopgfuzz_shim.h"

#define L1_CACHE_SHIFT		6
#define L1_CACHE_BYTES		(1 << L1_CACHE_SHIFT)
#define cache_line_size()	iopgfuzz_cache_line_size()

#endif
