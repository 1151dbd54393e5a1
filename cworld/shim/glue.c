// SPDX-License-Identifier: GPL-2.0
/*
 * The entry points Python calls: a flat C API over the kernel's own io-pgtable functions.
 *
 * This file #includes the kernel's io-pgtable-arm.c and io-pgtable.c (the private, patched
 * copies of the build folder) so that one translation unit holds them, as a kernel build
 * links them, and so that the geometry of `struct arm_lpae_io_pgtable` can be read back.
 * It is compiled with the kernel's flags (instrumented); the hooks it calls are runtime.c's.
 *
 * Every entry point selects its world, arms the BUG_ON unwind and reports through the
 * control block's `crashed` (iopgfuzz_status()): 0 ran to the end, 1 BUG_ON, 2 work budget
 * exhausted, 3 the runtime ran out of memory.  It also says which io-pgtable op runs (the
 * clean site of a clean no function names, world.py SITE_OF), and labels the tables on the
 * way out (iopgfuzz_label).
 */
#include "io-pgtable-arm.c"
#include "io-pgtable.c"

#include <string.h>

#include "runtime.h"

#define IOPGFUZZ_ABI	2

#define ENTER(w, ctx, fail) do {					\
	iopgfuzz_cur = (w);						\
	iopgfuzz_page_shift = __builtin_ctzll((w)->page_size);	\
	(w)->ctl.crashed = 0;						\
	(w)->ctl.mbudget_asked = 0;					\
	(w)->context = (ctx);						\
	if (setjmp((w)->jmp)) {						\
		(w)->log_accesses = 0;					\
		(w)->context = IOPGFUZZ_CTX_NONE;			\
		iopgfuzz_label(w);					\
		return fail;						\
	}								\
	(w)->armed = 1;							\
} while (0)
#define LEAVE(w)	do {						\
	iopgfuzz_catch_up(w);						\
	(w)->armed = 0;							\
	(w)->context = IOPGFUZZ_CTX_NONE;				\
	iopgfuzz_label(w);						\
} while (0)

static struct device iopgfuzz_iommu_dev = { .numa_node = -1 };

void iopgfuzz_set_labels(struct iopgfuzz_world *w, uint32_t pgd, int64_t start_level,
			 int64_t pgd_bits, int64_t bits_per_level, uint64_t granule);

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
	uint64_t pgd_index;	/* the PGD's table */
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

/* walk_flags: bit 0 the SMMU walks TTBR1's half (the model's reading of the quirk), bit 1 a
 * Mali table (its level-3 pages are type 1) */
void *iopgfuzz_alloc_io_pgtable(struct iopgfuzz_world *w, int fmt, uint64_t quirks,
				uint64_t pgsize_bitmap, uint32_t ias, uint32_t oas, int coherent,
				int defer_sync_pte, int walk_flags, struct iopgfuzz_geometry *geom)
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
	ENTER(w, IOPGFUZZ_CTX_NONE, NULL);
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
	{
		/* What the world needs before the first op: tables from now on are a granule
		 * (dma_map_single says otherwise), a coherent PGD's size (no dma_map_single said
		 * it), and the PGD's level, where the labelling of the tables below starts */
		int guard = 0;
		int32_t pgd = iopgfuzz_table_of_va(w, data->pgd, &guard);
		uint64_t granule = (uint64_t)sizeof(arm_lpae_iopte) << data->bits_per_level;

		w->default_entries = (int64_t)(granule / sizeof(arm_lpae_iopte));
		if (coherent)
			w->tables[pgd].entries = (sizeof(arm_lpae_iopte) << data->pgd_bits) /
						 sizeof(arm_lpae_iopte);
		iopgfuzz_set_labels(w, (uint32_t)pgd, data->start_level, data->pgd_bits,
				    data->bits_per_level, granule);
		w->ias = data->iop.cfg.ias;
		w->oas = data->iop.cfg.oas;
		w->ttbr1 = walk_flags & 1;
		w->mali = !!(walk_flags & 2);
		geom->pgd_index = (uint64_t)pgd;
	}
	return ops;
}

int iopgfuzz_map_pages(struct iopgfuzz_world *w, struct io_pgtable_ops *ops, uint64_t iova,
		       uint64_t paddr, uint64_t pgsize, uint64_t pgcount, int prot,
		       uint64_t *mapped)
{
	size_t m = *mapped;
	int ret;

	ENTER(w, IOPGFUZZ_CTX_MAP, 0);
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
	ENTER(w, IOPGFUZZ_CTX_UNMAP, 0);
	ret = ops->unmap_pages(ops, iova, pgsize, pgcount, with_gather ? &gather : NULL);
	LEAVE(w);
	return ret;
}

int iopgfuzz_iotlb_sync_map(struct iopgfuzz_world *w, struct io_pgtable_ops *ops, uint64_t iova,
			    uint64_t size, int log_accesses)
{
	int ret = 0;

	ENTER(w, IOPGFUZZ_CTX_SYNC, 0);
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

	ENTER(w, IOPGFUZZ_CTX_NONE, 0);
	ret = ops->iova_to_phys(ops, iova);
	LEAVE(w);
	return ret;
}

void iopgfuzz_free_io_pgtable(struct iopgfuzz_world *w, struct io_pgtable_ops *ops)
{
	ENTER(w, IOPGFUZZ_CTX_NONE, );
	free_io_pgtable_ops(ops);
	LEAVE(w);
}

/* -- what Python reads and sets ---------------------------------------------------------------- */

/* Where Python's NumPy views start; world.py _Arrays mirrors this */
struct iopgfuzz_arrays {
	uint8_t *cpu;
	uint64_t *mem;
	int64_t *wseq;
	uint8_t *dirty;
	int64_t *synced_seq;
	uint64_t arena_bytes;
	int64_t *ctl;
	struct iopgfuzz_table *tables;
	uint64_t max_tables;
	uint64_t *site_calls;
	uint64_t *site_lines;
	uint64_t *site_lines_hi;
	int32_t *freed_log;
	int32_t *touched_log;
	int32_t *relabel_log;
	uint64_t ctl_size;
	int32_t *labelled_log;
	struct iopgfuzz_access *accesses;
	uint64_t max_accesses;
};

void iopgfuzz_world_arrays(struct iopgfuzz_world *w, struct iopgfuzz_arrays *a)
{
	a->cpu = w->cpu;
	a->mem = w->mem;
	a->wseq = w->wseq;
	a->dirty = w->dirty;
	a->synced_seq = w->synced_seq;
	a->arena_bytes = w->arena_bytes;
	a->ctl = (int64_t *)&w->ctl;
	a->tables = w->tables;
	a->max_tables = IOPGFUZZ_MAX_TABLES;
	a->site_calls = w->site_calls;
	a->site_lines = w->site_lines;
	a->site_lines_hi = w->site_lines_hi;
	a->freed_log = w->freed_log;
	a->touched_log = w->touched_log;
	a->relabel_log = w->relabel_log;
	a->ctl_size = sizeof(w->ctl) / sizeof(int64_t);
	a->labelled_log = w->labelled_log;
	a->accesses = w->accesses;
	a->max_accesses = IOPGFUZZ_LOG_MAX;
}

/* The growable logs move when they grow (ctl.cap_*): their current addresses */
void iopgfuzz_logs(struct iopgfuzz_world *w, struct iopgfuzz_pyevent **pyevents,
		   struct iopgfuzz_clean_rec **recs, int64_t **changed)
{
	*pyevents = w->pyevents;
	*recs = w->recs;
	*changed = w->changed;
}

int iopgfuzz_status(struct iopgfuzz_world *w) { return (int)w->ctl.crashed; }
uint32_t iopgfuzz_ntables(struct iopgfuzz_world *w) { return (uint32_t)w->ctl.ntables; }
struct iopgfuzz_table *iopgfuzz_table(struct iopgfuzz_world *w, uint32_t i)
{
	return i < w->ctl.ntables ? &w->tables[i] : NULL;
}
int64_t iopgfuzz_seq(struct iopgfuzz_world *w) { return w->ctl.seq; }
int64_t iopgfuzz_budget(struct iopgfuzz_world *w) { return w->ctl.budget; }
void iopgfuzz_set_budget(struct iopgfuzz_world *w, int64_t b) { w->ctl.budget = b; }
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
	uint32_t n = (uint32_t)w->ctl.nevents;

	*events = w->events;
	*dropped = (uint32_t)w->ctl.dropped_events;
	w->ctl.nevents = 0;
	w->ctl.dropped_events = 0;
	return n;	/* valid until the next entry point */
}

uint32_t iopgfuzz_take_accesses(struct iopgfuzz_world *w, struct iopgfuzz_access **acc,
				uint32_t *dropped)
{
	uint32_t n = (uint32_t)w->ctl.naccesses;

	*acc = w->accesses;
	*dropped = (uint32_t)w->ctl.dropped_accesses;
	w->ctl.naccesses = 0;
	w->ctl.dropped_accesses = 0;
	return n;
}

/* Labelling starts with the PGD: its level, and the geometry of the ones below */
void iopgfuzz_set_labels(struct iopgfuzz_world *w, uint32_t pgd, int64_t start_level,
			 int64_t pgd_bits, int64_t bits_per_level, uint64_t granule)
{
	w->tables[pgd].lvl = start_level;
	w->tables[pgd].iova_base = 0;
	w->pgd = pgd;
	w->start_level = start_level;
	w->pgd_bits = pgd_bits;
	w->bits_per_level = bits_per_level;
	w->granule = granule;
	w->label_on = 1;
}

void iopgfuzz_tlb_counts(struct iopgfuzz_world *w, uint64_t out[3])
{
	out[0] = w->tlb_flush_all;
	out[1] = w->tlb_flush_walk;
	out[2] = w->tlb_add_page;
}

/*
 * For the runtime's own tests: a clean or a free as the kernel C would make them, with the
 * world selected and the unwind armed (the site as the op `ctx` gives it: these frames name
 * none).  Returns the status.
 */
int iopgfuzz_debug_clean(struct iopgfuzz_world *w, uint64_t pa, uint64_t size, int is_map,
			 int ctx)
{
	ENTER(w, ctx, (int)w->ctl.crashed);
	if (is_map)
		iopgfuzz_dma_map_single(iopgfuzz_phys_to_virt(pa), size);
	else
		iopgfuzz_dma_sync_for_device(pa, size);
	LEAVE(w);
	return 0;
}

int iopgfuzz_debug_free(struct iopgfuzz_world *w, uint64_t pa)
{
	ENTER(w, IOPGFUZZ_CTX_NONE, (int)w->ctl.crashed);
	iopgfuzz_free_pages(iopgfuzz_phys_to_virt(pa));
	LEAVE(w);
	return 0;
}

void *iopgfuzz_debug_alloc(struct iopgfuzz_world *w, uint64_t bytes)
{
	void *p;

	ENTER(w, IOPGFUZZ_CTX_NONE, NULL);
	p = iopgfuzz_alloc_pages(bytes, 0);
	LEAVE(w);
	return p;
}
