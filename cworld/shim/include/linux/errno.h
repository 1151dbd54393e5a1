/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/errno.h>: the numbers of the generic asm-generic/errno-base.h. */
#ifndef _IOPGFUZZ_LINUX_ERRNO_H
#define _IOPGFUZZ_LINUX_ERRNO_H

#define EPERM		1
#define ENOENT		2
#define EIO		5
#define E2BIG		7
#define ENOMEM		12
#define EFAULT		14
#define EBUSY		16
#define EEXIST		17
#define ENODEV		19
#define EINVAL		22
#define ENOSPC		28
#define ERANGE		34
#define EOPNOTSUPP	95

#endif
