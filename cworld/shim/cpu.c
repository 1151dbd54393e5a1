// SPDX-License-Identifier: GPL-2.0
/* What the CPU tells the kernel about itself: the cache line size of the world running. */
#include "runtime.h"

int iopgfuzz_cache_line_size(void)
{
	return iopgfuzz_cur ? (int)iopgfuzz_cur->line : 64;
}
