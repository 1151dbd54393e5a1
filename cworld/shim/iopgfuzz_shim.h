/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz's userspace runtime for a kernel io-pgtable build: the one interface between the
 * shim headers (which the kernel C includes) and runtime.c (which implements them).
 *
 * Memory model.  Page tables live in an arena: every table allocation gets a physical address
 * chosen by the Python side (the model's own rule, so PTEs compare bit for bit) and a virtual
 * slot of its own, followed by a guard zone, so that an access past a table is seen as such.
 * The kernel C is compiled with -fsanitize=kernel-address in outline mode: every load and
 * store through a pointer calls __asan_{load,store}N_noabort(addr) first, which is how the
 * runtime sees every CPU access to table memory (the "cpu" view).  What DRAM holds (the "mem"
 * view, what the SMMU reads) changes only by dma_map_single / dma_sync_single_for_device.
 */
#ifndef IOPGFUZZ_SHIM_H
#define IOPGFUZZ_SHIM_H

#include <stddef.h>
#include <stdint.h>

#define IOPGFUZZ_NORETURN __attribute__((noreturn))

/* WARN_ON / WARN_ONCE / BUG_ON */
int iopgfuzz_warn(const char *file, int line, const char *func, const char *cond, int once);
IOPGFUZZ_NORETURN void iopgfuzz_bug(const char *file, int line, const char *func);

/* The page allocator (iommu-pages.h) and kmalloc */
void *iopgfuzz_alloc_pages(size_t size, unsigned int gfp);
void iopgfuzz_free_pages(void *virt);
void *iopgfuzz_kmalloc(size_t size, unsigned int gfp);
void iopgfuzz_kfree(const void *p);

/* virt_to_phys / phys_to_virt over the arena */
uint64_t iopgfuzz_virt_to_phys(const volatile void *va);
void *iopgfuzz_phys_to_virt(uint64_t pa);

/* The DMA API: the cache model */
uint64_t iopgfuzz_dma_map_single(void *va, size_t size);
void iopgfuzz_dma_sync_for_device(uint64_t dma, size_t size);

/* cache_line_size(): the scenario's line= */
int iopgfuzz_cache_line_size(void);

/* CPU page size, a run-time value (the scenario's page_size) */
extern unsigned int iopgfuzz_page_shift;

#endif
