/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz shim of <linux/bug.h>: WARN_ON records an event with its file:line and goes on, as
 * the kernel does; BUG() ends the world (the runtime unwinds to the entry point).
 */
#ifndef _IOPGFUZZ_LINUX_BUG_H
#define _IOPGFUZZ_LINUX_BUG_H

#include <linux/compiler.h>
#include "iopgfuzz_shim.h"

#define WARN_ON(condition) ({						\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on))					\
		iopgfuzz_warn(__FILE__, __LINE__, __func__, #condition, 0);		\
	unlikely(__ret_warn_on);					\
})

#define WARN_ON_ONCE(condition) ({					\
	int __ret_warn_on = !!(condition);				\
	if (unlikely(__ret_warn_on))					\
		iopgfuzz_warn(__FILE__, __LINE__, __func__, #condition, 1);		\
	unlikely(__ret_warn_on);					\
})

#define WARN(condition, ...)		WARN_ON(condition)
#define WARN_ONCE(condition, ...)	WARN_ON_ONCE(condition)

#define BUG()		iopgfuzz_bug(__FILE__, __LINE__, __func__)
#define BUG_ON(condition) do { if (unlikely(condition)) BUG(); } while (0)
#define VM_BUG_ON(condition)	BUG_ON(condition)

#endif
