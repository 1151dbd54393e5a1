/* SPDX-License-Identifier: GPL-2.0 */
/* iopgfuzz shim of <asm/barrier.h>: one CPU, so compiler barriers are enough. */
#ifndef _IOPGFUZZ_ASM_BARRIER_H
#define _IOPGFUZZ_ASM_BARRIER_H

#include <linux/compiler.h>

#define mb()		barrier()
#define rmb()		barrier()
#define wmb()		barrier()
#define dma_wmb()	barrier()
#define dma_rmb()	barrier()
#define smp_mb()	barrier()
#define smp_wmb()	barrier()

#endif
