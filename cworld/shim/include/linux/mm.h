/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <linux/mm.h>: only what page-table code asks of it. */
#ifndef _IOPGFUZZ_LINUX_MM_H
#define _IOPGFUZZ_LINUX_MM_H

#include <asm/page.h>
#include <linux/gfp.h>

#endif
