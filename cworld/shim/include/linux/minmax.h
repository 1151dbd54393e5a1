/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/minmax.h>: min_t casts both sides first, as the kernel's does. */
#ifndef _IOPGFUZZ_LINUX_MINMAX_H
#define _IOPGFUZZ_LINUX_MINMAX_H

#define min(x, y) ({ __typeof__(x) _x = (x); __typeof__(y) _y = (y); _x < _y ? _x : _y; })
#define max(x, y) ({ __typeof__(x) _x = (x); __typeof__(y) _y = (y); _x > _y ? _x : _y; })
#define min_t(type, x, y) ({ type __x = (type)(x); type __y = (type)(y); __x < __y ? __x : __y; })
#define max_t(type, x, y) ({ type __x = (type)(x); type __y = (type)(y); __x > __y ? __x : __y; })

#endif
