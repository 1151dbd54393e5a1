/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz's stand-in for <linux/string.h> */
#ifndef _IOPGFUZZ_LINUX_STRING_H
#define _IOPGFUZZ_LINUX_STRING_H

#include <stddef.h>

#define memcpy(d, s, n)		__builtin_memcpy((d), (s), (n))
#define memset(d, c, n)		__builtin_memset((d), (c), (n))
#define memcmp(a, b, n)		__builtin_memcmp((a), (b), (n))

#endif
