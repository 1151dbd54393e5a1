// SPDX-License-Identifier: GPL-2.0
/*
 * The entry points Python calls: a flat C API over the kernel's own io-pgtable functions.
 *
 * This file #includes the kernel's io-pgtable-arm.c and io-pgtable.c (the private, patched
 * copies of the build folder) so that one translation unit holds them, as a kernel build
 * links them, and so that the geometry of `struct arm_lpae_io_pgtable` can be read back.
 * It is compiled with the kernel's flags (instrumented); the hooks it calls are runtime.c's.
 *
 * Every entry point selects its world, arms the BUG_ON unwind and reports through
 * iopgfuzz_status(): 0 ran to the end, 1 BUG_ON, 2 work budget exhausted, 3 a callback failed.
 */
#include "io-pgtable-arm.c"
#include "io-pgtable.c"

#include <string.h>

#include "runtime.h"

#define IOPGFUZZ_ABI	1

#define ENTER(w, fail) do {						\
	iopgfuzz_cur = (w);						\
	iopgfuzz_page_shift = __builtin_ctzll((w)->page_size);	\
	(w)->crashed = 0;						\
	(w)->aborted = 0;						\
	if (setjmp((w)->jmp)) {						\
		(w)->log_accesses = 0;					\
		return fail;						\
	}								\
	(w)->armed = 1;							\
} while (0)
#define LEAVE(w)	do { iopgfuzz_catch_up(w); (w)->armed = 0; } while (0)

static struct device iopgfuzz_iommu_dev = { .numa_node = -1 };

static void iopgfuzz_tlb_flush_all(void *cookie)
{
	(void)cookie;
	iopgfuzz_cur->tlb_flush_all++;
}

static void iopgfuzz_tlb_flush_walk(unsigned long iova, size_t size, size_t granule, void *cookie)
{
	(void)iova; (void)size; (void)granule; (void)cookie;
	iopgfuzz_cur->tlb_flush_walk++;
}

static void iopgfuzz_tlb_add_page(struct iommu_iotlb_gather *gather, unsigned long iova,
				  size_t granule, void *cookie)
{
	(void)gather; (void)iova; (void)granule; (void)cookie;
	iopgfuzz_cur->tlb_add_page++;
}

static const struct iommu_flush_ops iopgfuzz_flush_ops = {
	.tlb_flush_all	= iopgfuzz_tlb_flush_all,
	.tlb_flush_walk	= iopgfuzz_tlb_flush_walk,
	.tlb_add_page	= iopgfuzz_tlb_add_page,
};

/* What Python learns of a new page table (the model's geometry, read from the C) */
struct iopgfuzz_geometry {
	int32_t pgd_bits;
	int32_t start_level;
	int32_t bits_per_level;
	int32_t has_iotlb_sync_map;
	uint64_t pgd_pa;
	uint64_t pgsize_bitmap;
	uint32_t ias;
	uint32_t oas;
	uint64_t ttbr;
};

int iopgfuzz_abi(void)
{
	return IOPGFUZZ_ABI;
}

/* bit 0: struct io_pgtable_cfg has defer_sync_pte; bit 1: io_pgtable_ops has iotlb_sync_map */
int iopgfuzz_features(void)
{
	int f = 0;
#ifdef IOPGFUZZ_HAS_DEFER_SYNC_PTE
	f |= 1;
#endif
#ifdef IOPGFUZZ_HAS_IOTLB_SYNC_MAP
	f |= 2;
#endif
	return f;
}

static const enum io_pgtable_fmt iopgfuzz_fmts[] = {
	ARM_32_LPAE_S1, ARM_32_LPAE_S2, ARM_64_LPAE_S1, ARM_64_LPAE_S2, ARM_MALI_LPAE,
};

void *iopgfuzz_alloc_io_pgtable(struct iopgfuzz_world *w, int fmt, uint64_t quirks,
				uint64_t pgsize_bitmap, uint32_t ias, uint32_t oas, int coherent,
				int defer_sync_pte, struct iopgfuzz_geometry *geom)
{
	struct io_pgtable_cfg cfg;
	struct io_pgtable_ops *ops;
	struct arm_lpae_io_pgtable *data;

	if (fmt < 0 || fmt >= (int)(sizeof(iopgfuzz_fmts) / sizeof(iopgfuzz_fmts[0])))
		return NULL;
	memset(&cfg, 0, sizeof(cfg));
	cfg.quirks = quirks;
	cfg.pgsize_bitmap = pgsize_bitmap;
	cfg.ias = ias;
	cfg.oas = oas;
	cfg.coherent_walk = coherent;
	cfg.tlb = &iopgfuzz_flush_ops;
	cfg.iommu_dev = &iopgfuzz_iommu_dev;
#ifdef IOPGFUZZ_HAS_DEFER_SYNC_PTE
	cfg.defer_sync_pte = defer_sync_pte;
#else
	if (defer_sync_pte)
		return NULL;
#endif
	ENTER(w, NULL);
	ops = alloc_io_pgtable_ops(iopgfuzz_fmts[fmt], &cfg, NULL);
	LEAVE(w);
	if (!ops)
		return NULL;
	data = io_pgtable_ops_to_data(ops);
	geom->pgd_bits = data->pgd_bits;
	geom->start_level = data->start_level;
	geom->bits_per_level = data->bits_per_level;
#ifdef IOPGFUZZ_HAS_IOTLB_SYNC_MAP
	geom->has_iotlb_sync_map = ops->iotlb_sync_map != NULL;
#else
	geom->has_iotlb_sync_map = 0;
#endif
	geom->pgd_pa = iopgfuzz_virt_to_phys(data->pgd);
	geom->pgsize_bitmap = data->iop.cfg.pgsize_bitmap;
	geom->ias = data->iop.cfg.ias;
	geom->oas = data->iop.cfg.oas;
	geom->ttbr = data->iop.cfg.arm_lpae_s1_cfg.ttbr;
	return ops;
}

int iopgfuzz_map_pages(struct iopgfuzz_world *w, struct io_pgtable_ops *ops, uint64_t iova,
		       uint64_t paddr, uint64_t pgsize, uint64_t pgcount, int prot,
		       uint64_t *mapped)
{
	size_t m = *mapped;
	int ret;

	ENTER(w, 0);
	ret = ops->map_pages(ops, iova, paddr, pgsize, pgcount, prot, GFP_KERNEL, &m);
	LEAVE(w);
	*mapped = m;
	return ret;
}

uint64_t iopgfuzz_unmap_pages(struct iopgfuzz_world *w, struct io_pgtable_ops *ops,
			      uint64_t iova, uint64_t pgsize, uint64_t pgcount, int with_gather)
{
	struct iommu_iotlb_gather gather;
	size_t ret;

	memset(&gather, 0, sizeof(gather));
	ENTER(w, 0);
	ret = ops->unmap_pages(ops, iova, pgsize, pgcount, with_gather ? &gather : NULL);
	LEAVE(w);
	return ret;
}

int iopgfuzz_iotlb_sync_map(struct iopgfuzz_world *w, struct io_pgtable_ops *ops, uint64_t iova,
			    uint64_t size, int log_accesses)
{
	int ret = 0;

	ENTER(w, 0);
	w->log_accesses = log_accesses;
#ifdef IOPGFUZZ_HAS_IOTLB_SYNC_MAP
	if (ops->iotlb_sync_map)
		ret = ops->iotlb_sync_map(ops, iova, size);
#else
	(void)ops; (void)iova; (void)size;
#endif
	w->log_accesses = 0;
	LEAVE(w);
	return ret;
}

uint64_t iopgfuzz_iova_to_phys(struct iopgfuzz_world *w, struct io_pgtable_ops *ops, uint64_t iova)
{
	phys_addr_t ret;

	ENTER(w, 0);
	ret = ops->iova_to_phys(ops, iova);
	LEAVE(w);
	return ret;
}

void iopgfuzz_free_io_pgtable(struct iopgfuzz_world *w, struct io_pgtable_ops *ops)
{
	ENTER(w, );
	free_io_pgtable_ops(ops);
	LEAVE(w);
}

/* -- what Python reads and sets ---------------------------------------------------------------- */

struct iopgfuzz_arrays {
	uint8_t *cpu;
	uint64_t *mem;
	int64_t *wseq;
	uint8_t *dirty;
	int64_t *synced_seq;
	uint64_t arena_bytes;
};

void iopgfuzz_world_arrays(struct iopgfuzz_world *w, struct iopgfuzz_arrays *a)
{
	a->cpu = w->cpu;
	a->mem = w->mem;
	a->wseq = w->wseq;
	a->dirty = w->dirty;
	a->synced_seq = w->synced_seq;
	a->arena_bytes = w->arena_bytes;
}

void iopgfuzz_set_callbacks(struct iopgfuzz_world *w, iopgfuzz_alloc_cb alloc,
			    iopgfuzz_clean_cb clean, iopgfuzz_free_cb free)
{
	w->alloc_cb = alloc;
	w->clean_cb = clean;
	w->free_cb = free;
}

int iopgfuzz_status(struct iopgfuzz_world *w) { return w->crashed; }
void iopgfuzz_abort(struct iopgfuzz_world *w) { w->aborted = 1; }
uint32_t iopgfuzz_ntables(struct iopgfuzz_world *w) { return w->ntables; }
struct iopgfuzz_table *iopgfuzz_table(struct iopgfuzz_world *w, uint32_t i)
{
	return i < w->ntables ? &w->tables[i] : NULL;
}
int64_t iopgfuzz_seq(struct iopgfuzz_world *w) { return w->seq; }
int64_t iopgfuzz_budget(struct iopgfuzz_world *w) { return w->budget; }
void iopgfuzz_set_budget(struct iopgfuzz_world *w, int64_t b) { w->budget = b; }
void iopgfuzz_set_default_entries(struct iopgfuzz_world *w, int64_t n) { w->default_entries = n; }
const char *iopgfuzz_bug_site(struct iopgfuzz_world *w, int *line, const char **func)
{
	*line = w->bug_line;
	*func = w->bug_func;
	return w->bug_file;
}

uint32_t iopgfuzz_take_events(struct iopgfuzz_world *w, struct iopgfuzz_event **events,
			      uint32_t *dropped)
{
	uint32_t n = w->nevents;

	*events = w->events;
	*dropped = w->dropped_events;
	w->nevents = 0;
	w->dropped_events = 0;
	return n;	/* valid until the next entry point */
}

uint32_t iopgfuzz_take_accesses(struct iopgfuzz_world *w, struct iopgfuzz_access **acc,
				uint32_t *dropped)
{
	uint32_t n = w->naccesses;

	*acc = w->accesses;
	*dropped = w->dropped_accesses;
	w->naccesses = 0;
	w->dropped_accesses = 0;
	return n;
}

/* Tables stored to, allocated or freed since the last call (their `touched` is cleared) */
uint32_t iopgfuzz_take_touched(struct iopgfuzz_world *w, int32_t *out, uint32_t max)
{
	uint32_t i, n = 0;

	for (i = 1; i < w->ntables && n < max; i++)
		if (w->tables[i].touched) {
			w->tables[i].touched = 0;
			out[n++] = (int32_t)i;
		}
	return n;
}

void iopgfuzz_tlb_counts(struct iopgfuzz_world *w, uint64_t out[3])
{
	out[0] = w->tlb_flush_all;
	out[1] = w->tlb_flush_walk;
	out[2] = w->tlb_add_page;
}
