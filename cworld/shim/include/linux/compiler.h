/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/compiler.h> and <asm/rwonce.h>. */
#ifndef _IOPGFUZZ_LINUX_COMPILER_H
#define _IOPGFUZZ_LINUX_COMPILER_H

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)
#undef __always_inline
#define __always_inline	inline __attribute__((always_inline))
#define noinline	__attribute__((noinline))
#define __maybe_unused	__attribute__((unused))
#define __must_check	__attribute__((warn_unused_result))
#define __init
#define __initdata
#define __exit
#define __iomem
#define __force
#define __rcu
#define fallthrough	__attribute__((fallthrough))
#define barrier()	__asm__ __volatile__("" : : : "memory")

/* A volatile access is still an instrumented load or store: the runtime sees it. */
#define READ_ONCE(x)		(*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, val)	do { *(volatile __typeof__(x) *)&(x) = (val); } while (0)

#define BUILD_BUG_ON(cond)	_Static_assert(!(cond), "BUILD_BUG_ON(" #cond ")")
#define __same_type(a, b)	__builtin_types_compatible_p(__typeof__(a), __typeof__(b))

#endif
