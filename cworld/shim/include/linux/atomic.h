/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/atomic.h>: one CPU; the load and store stay visible to the runtime. */
#ifndef _IOPGFUZZ_LINUX_ATOMIC_H
#define _IOPGFUZZ_LINUX_ATOMIC_H

#include <linux/types.h>

static inline u64 __iopgfuzz_cmpxchg64(volatile u64 *ptr, u64 old, u64 new)
{
	u64 cur = *ptr;

	if (cur == old)
		*ptr = new;
	return cur;
}

#define cmpxchg64_relaxed(ptr, o, n)	__iopgfuzz_cmpxchg64((volatile u64 *)(ptr), (o), (n))
#define cmpxchg64(ptr, o, n)		cmpxchg64_relaxed(ptr, o, n)
#define cmpxchg_relaxed(ptr, o, n)	cmpxchg64_relaxed(ptr, o, n)

#endif
