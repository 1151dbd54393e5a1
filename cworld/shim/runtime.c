// SPDX-License-Identifier: GPL-2.0
/*
 * iopgfuzz's userspace runtime for a kernel io-pgtable build: the page allocator, the DMA API
 * of a non-coherent device, __pa/__va, WARN/BUG, and the access hooks.
 *
 * This file is compiled WITHOUT -fsanitize=kernel-address: it is what the instrumented
 * kernel code calls.  Everything that is a policy decision of the model (which allocation
 * fails, what a clean does to the memory view, how a clean is counted) is decided in Python
 * through the callbacks, so that the C world and the model's world share one definition.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "iopgfuzz_shim.h"
#include "runtime.h"

#define ARENA_BYTES	(1ULL << 32)
#define OWNER_SHIFT	12
#define WILD_BYTES	(1ULL << 16)
#define WILD_PA		0xDEAD00000000ULL
#define POISON_UNINIT	0xA5A5A5A5A5A5A5A7ULL
#define ENTRY		8

struct iopgfuzz_world *iopgfuzz_cur;
unsigned int iopgfuzz_page_shift = 12;
static uintptr_t text_lo, text_hi;

void iopgfuzz_set_text(uintptr_t lo, uintptr_t hi)
{
	text_lo = lo;
	text_hi = hi;
}

static void *reserve(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void iopgfuzz_unwind(int why)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;

	if (!w || !w->armed)
		abort();	/* a hook outside any entry point: a bug of ours */
	iopgfuzz_catch_up(w);
	w->crashed = why;
	w->armed = 0;
	longjmp(w->jmp, why);
}

/* -- tables --------------------------------------------------------------------------------- */

static int32_t new_table(struct iopgfuzz_world *w, uint64_t pa, uint64_t bytes, uint64_t align)
{
	struct iopgfuzz_table *t;
	uint64_t va_off, guard, page;
	uint32_t idx;

	if (w->ntables == w->cap_tables) {
		uint32_t cap = w->cap_tables ? 2 * w->cap_tables : 64;
		void *p = realloc(w->tables, cap * sizeof(*w->tables));

		if (!p)
			iopgfuzz_unwind(3);
		w->tables = p;
		w->cap_tables = cap;
	}
	if (align < (1ULL << OWNER_SHIFT))
		align = 1ULL << OWNER_SHIFT;
	va_off = (w->va_used + align - 1) & ~(align - 1);
	guard = bytes > WILD_BYTES ? bytes : WILD_BYTES;
	if (va_off + bytes + guard > w->arena_bytes)
		iopgfuzz_unwind(2);		/* the arena is the work budget's hard edge */
	idx = w->ntables++;
	t = &w->tables[idx];
	t->pa = pa;
	t->va_off = va_off;
	t->bytes = bytes;
	t->entries = bytes / ENTRY;
	t->freed = 0;
	t->touched = 1;
	for (page = va_off >> OWNER_SHIFT; page < (va_off + bytes) >> OWNER_SHIFT; page++)
		w->va_owner[page] = (int32_t)idx + 1;
	for (; page < (va_off + bytes + guard) >> OWNER_SHIFT; page++)
		w->va_owner[page] = -((int32_t)idx + 1);
	w->va_used = va_off + bytes + guard;
	return (int32_t)idx;
}

static inline int32_t table_of_va(struct iopgfuzz_world *w, const void *va, int *guard)
{
	uint64_t off = (uint64_t)((const uint8_t *)va - w->cpu);
	int32_t o;

	if (off >= w->va_used)
		return -1;
	o = w->va_owner[off >> OWNER_SHIFT];
	*guard = o < 0;
	return (o < 0 ? -o : o) - 1;
}

static inline int32_t table_of_pa(struct iopgfuzz_world *w, uint64_t pa)
{
	uint64_t page;

	if (pa < w->base_pa)
		return -1;
	page = (pa - w->base_pa) >> OWNER_SHIFT;
	if (page >= (w->arena_bytes >> OWNER_SHIFT))
		return -1;
	return w->pa_owner[page] - 1;
}

struct iopgfuzz_world *iopgfuzz_world_new(uint64_t base_pa, uint64_t line, uint64_t page_size,
					  int coherent, int64_t budget)
{
	struct iopgfuzz_world *w = calloc(1, sizeof(*w));
	uint64_t pages = ARENA_BYTES >> OWNER_SHIFT;

	if (!w)
		return NULL;
	w->arena_bytes = ARENA_BYTES;
	w->cpu = reserve(ARENA_BYTES);
	w->mem = coherent ? (uint64_t *)w->cpu : reserve(ARENA_BYTES);
	w->wseq = reserve(ARENA_BYTES);
	w->dirty = reserve(ARENA_BYTES / line);
	w->synced_seq = reserve(ARENA_BYTES / line * sizeof(int64_t));
	w->snap = reserve(ARENA_BYTES);
	w->pend = reserve(ARENA_BYTES / line);
	w->cap_pending = 1 << 16;
	w->pending = malloc(w->cap_pending * sizeof(uint64_t));
	w->va_owner = reserve(pages * sizeof(int32_t));
	w->pa_owner = reserve(pages * sizeof(int32_t));
	if (!w->cpu || !w->mem || !w->wseq || !w->dirty || !w->synced_seq || !w->va_owner ||
	    !w->pa_owner || !w->snap || !w->pend || !w->pending) {
		iopgfuzz_world_free(w);
		return NULL;
	}
	w->base_pa = base_pa;
	w->next_pa = base_pa;
	w->line = line;
	w->page_size = page_size;
	w->coherent = coherent;
	w->budget = budget;
	/* table 0: where wild pointers land (no logical entries; 64K of zeros) */
	w->armed = 1;
	if (setjmp(w->jmp) == 0)
		new_table(w, WILD_PA, WILD_BYTES, WILD_BYTES);
	w->armed = 0;
	w->tables[0].entries = 0;
	w->tables[0].touched = 0;
	return w;
}

void iopgfuzz_world_free(struct iopgfuzz_world *w)
{
	uint64_t pages = ARENA_BYTES >> OWNER_SHIFT;

	if (!w)
		return;
	if (w->cpu)
		munmap(w->cpu, ARENA_BYTES);
	if (w->mem && (void *)w->mem != (void *)w->cpu)
		munmap(w->mem, ARENA_BYTES);
	if (w->wseq)
		munmap(w->wseq, ARENA_BYTES);
	if (w->dirty)
		munmap(w->dirty, ARENA_BYTES / w->line);
	if (w->synced_seq)
		munmap(w->synced_seq, ARENA_BYTES / w->line * sizeof(int64_t));
	if (w->snap)
		munmap(w->snap, ARENA_BYTES);
	if (w->pend)
		munmap(w->pend, ARENA_BYTES / w->line);
	free(w->pending);
	if (w->va_owner)
		munmap(w->va_owner, pages * sizeof(int32_t));
	if (w->pa_owner)
		munmap(w->pa_owner, pages * sizeof(int32_t));
	free(w->tables);
	if (iopgfuzz_cur == w)
		iopgfuzz_cur = NULL;
	free(w);
}

/* -- events ------------------------------------------------------------------------------------ */

/* How far back an event looks for an earlier one of the same site to merge into: a loop
 * that WARNs and reads out of bounds on every iteration makes two interleaved series. */
#define MERGE_WINDOW	8

static void record(struct iopgfuzz_world *w, int kind, int32_t table, int64_t first, uint64_t pa,
		   uintptr_t pc)
{
	struct iopgfuzz_event *e;
	uint32_t i;

	for (i = w->nevents; i > 0 && i + MERGE_WINDOW > w->nevents; i--) {
		e = &w->events[i - 1];
		if (e->kind == kind && e->table == table && e->pc == pc && e->pa == pa) {
			if (first < e->first)
				e->first = first;
			if (first > e->last)
				e->last = first;
			e->count++;
			return;
		}
	}
	if (w->nevents == IOPGFUZZ_LOG_MAX) {
		w->dropped_events++;
		return;
	}
	e = &w->events[w->nevents++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->table = table;
	e->first = first;
	e->last = first;
	e->count = 1;
	e->pa = pa;
	e->pc = pc;
}

int iopgfuzz_warn(const char *file, int line, const char *func, const char *cond, int once)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	struct iopgfuzz_event *e;
	uint32_t i;

	if (!w)
		return 1;
	if (once) {
		for (i = 0; i < w->nwarned_once; i++)
			if (w->warned_once[i] == file && w->warned_once_line[i] == line)
				return 1;
		if (w->nwarned_once < 256) {
			w->warned_once[w->nwarned_once] = file;
			w->warned_once_line[w->nwarned_once++] = line;
		}
	}
	for (i = w->nevents; i > 0 && i + MERGE_WINDOW > w->nevents; i--) {
		e = &w->events[i - 1];
		if (e->kind == IOPGFUZZ_WARN && e->file == file && e->line == line) {
			e->count++;
			return 1;
		}
	}
	if (w->nevents == IOPGFUZZ_LOG_MAX) {
		w->dropped_events++;
		return 1;
	}
	e = &w->events[w->nevents++];
	memset(e, 0, sizeof(*e));
	e->kind = IOPGFUZZ_WARN;
	e->table = -1;
	e->count = 1;
	e->file = file;
	e->func = func;
	e->cond = cond;
	e->line = line;
	return 1;
}

void iopgfuzz_bug(const char *file, int line, const char *func)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;

	if (!w)
		abort();
	w->bug_file = file;
	w->bug_line = line;
	w->bug_func = func;
	iopgfuzz_unwind(1);
}

/* -- the access hooks (-fsanitize=kernel-address, outline) ------------------------------------- */

/*
 * Which entries the CPU stored to, and in what order, is found by comparing the CPU view with
 * a snapshot, line by line, for the lines the kernel C touched since the last look: the
 * compiler drops a store's hook when a load of the same address dominates it (cmpxchg), so
 * every access, load or store, marks its line.  A store of the value already there is not
 * seen (a deviation from the model, which counts every store; docs/c-world.md).
 */
static inline void note_lines(struct iopgfuzz_world *w, uint64_t off, uint64_t size)
{
	uint64_t l;

	for (l = off / w->line; l <= (off + size - 1) / w->line; l++) {
		if (w->pend[l])
			continue;
		if (w->npending == w->cap_pending) {
			w->pending_overflow = 1;
			continue;
		}
		w->pend[l] = 1;
		w->pending[w->npending++] = l;
	}
}

static void catch_up_line(struct iopgfuzz_world *w, uint64_t l)
{
	uint64_t le = w->line / ENTRY, e;
	uint64_t *cpu = (uint64_t *)w->cpu;
	int32_t o = w->va_owner[(l * w->line) >> OWNER_SHIFT];
	int changed = 0;

	for (e = l * le; e < (l + 1) * le; e++) {
		if (cpu[e] != w->snap[e]) {
			w->snap[e] = cpu[e];
			w->wseq[e] = ++w->seq;
			changed = 1;
		}
	}
	if (changed && o > 0) {
		if (!w->coherent && !w->tables[o - 1].freed)
			w->dirty[l] = 1;
		w->tables[o - 1].touched = 1;
	}
}

void iopgfuzz_catch_up(struct iopgfuzz_world *w)
{
	uint64_t i, l;

	for (i = 0; i < w->npending; i++) {
		l = w->pending[i];
		w->pend[l] = 0;
		catch_up_line(w, l);
	}
	w->npending = 0;
	if (w->pending_overflow) {
		uint32_t t;

		w->pending_overflow = 0;
		for (t = 1; t < w->ntables; t++) {
			struct iopgfuzz_table *tb = &w->tables[t];

			for (l = tb->va_off / w->line; l < (tb->va_off + tb->bytes) / w->line; l++)
				catch_up_line(w, l);
		}
	}
}

static inline void access_check(uintptr_t addr, uint64_t size, int store, uintptr_t pc)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	struct iopgfuzz_table *t;
	uint64_t off;
	int64_t i, last;
	int32_t o, idx;

	if (!w)
		return;
	off = addr - (uintptr_t)w->cpu;
	if (off >= w->va_used)
		return;				/* not table memory: the heap, the stack, globals */
	if (--w->budget < 0)
		iopgfuzz_unwind(2);
	o = w->va_owner[off >> OWNER_SHIFT];
	if (o == 0) {				/* between guard zones: no table's memory */
		record(w, store ? IOPGFUZZ_OOB_WRITE : IOPGFUZZ_OOB_READ, -1, 0, 0, pc);
		return;
	}
	idx = (o < 0 ? -o : o) - 1;
	t = &w->tables[idx];
	i = (int64_t)((off - t->va_off) / ENTRY);
	last = (int64_t)((off + size - 1 - t->va_off) / ENTRY);
	if (w->log_accesses && !store) {
		struct iopgfuzz_access *a = w->naccesses ? &w->accesses[w->naccesses - 1] : NULL;

		if (a && a->table == idx && a->first + a->n == i)
			a->n += last - i + 1;
		else if (a && a->table == idx && i >= a->first && last < a->first + a->n)
			;			/* the same entry again (a 32-bit half, say) */
		else if (w->naccesses < IOPGFUZZ_LOG_MAX)
			w->accesses[w->naccesses++] = (struct iopgfuzz_access){idx, 0, i, last - i + 1};
		else
			w->dropped_accesses++;
	}
	if (t->freed) {
		record(w, store ? IOPGFUZZ_UAF_WRITE : IOPGFUZZ_UAF_READ, idx, i, 0, pc);
		return;
	}
	if (o < 0 || last >= (int64_t)t->entries)
		record(w, store ? IOPGFUZZ_OOB_WRITE : IOPGFUZZ_OOB_READ, idx, i, 0, pc);
	if (o > 0)
		note_lines(w, off, size);
}

#define PC() ((uintptr_t)__builtin_return_address(0))
#define HOOKS(n)								\
void __asan_load##n##_noabort(uintptr_t addr) { access_check(addr, n, 0, PC()); }	\
void __asan_store##n##_noabort(uintptr_t addr) { access_check(addr, n, 1, PC()); }	\
void __asan_load##n(uintptr_t addr) { access_check(addr, n, 0, PC()); }		\
void __asan_store##n(uintptr_t addr) { access_check(addr, n, 1, PC()); }
HOOKS(1)
HOOKS(2)
HOOKS(4)
HOOKS(8)
HOOKS(16)

void __asan_loadN_noabort(uintptr_t addr, uint64_t size) { access_check(addr, size, 0, PC()); }
void __asan_storeN_noabort(uintptr_t addr, uint64_t size) { access_check(addr, size, 1, PC()); }
void __asan_loadN(uintptr_t addr, uint64_t size) { access_check(addr, size, 0, PC()); }
void __asan_storeN(uintptr_t addr, uint64_t size) { access_check(addr, size, 1, PC()); }
void __asan_handle_no_return(void) { }

/* -- the page allocator and kmalloc ------------------------------------------------------------ */

void *iopgfuzz_alloc_pages(size_t size, unsigned int gfp)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	uint64_t bytes = size, footprint, align, pa, page;
	int32_t idx;
	int ok;

	if (!w)
		return NULL;
	w->budget -= (int64_t)(bytes / ENTRY) + 64;
	if (w->budget < 0)
		iopgfuzz_unwind(2);
	ok = w->alloc_cb(bytes, gfp);
	if (w->aborted)
		iopgfuzz_unwind(3);
	if (!ok)
		return NULL;
	/* the model's rule (model/memory.py alloc_table): whole pages, aligned to the size */
	footprint = bytes > w->page_size ? bytes : w->page_size;
	align = w->page_size;
	while (align < bytes)
		align <<= 1;
	pa = (w->next_pa + align - 1) & ~(align - 1);
	w->next_pa = pa + footprint;
	if (((pa + footprint - w->base_pa) >> OWNER_SHIFT) > (w->arena_bytes >> OWNER_SHIFT))
		iopgfuzz_unwind(2);
	idx = new_table(w, pa, footprint, align);
	if (w->default_entries > 0)
		w->tables[idx].entries = (uint64_t)w->default_entries;
	for (page = (pa - w->base_pa) >> OWNER_SHIFT;
	     page < (pa + footprint - w->base_pa) >> OWNER_SHIFT; page++)
		w->pa_owner[page] = idx + 1;
	if (!w->coherent) {
		uint64_t e, off = w->tables[idx].va_off;

		/* DRAM holds garbage until someone cleans; the CPU's zeroing dirtied every line */
		for (e = off / ENTRY; e < (off + footprint) / ENTRY; e++)
			w->mem[e] = POISON_UNINIT;
		memset(w->dirty + off / w->line, 1, footprint / w->line);
	}
	return w->cpu + w->tables[idx].va_off;
}

void iopgfuzz_free_pages(void *virt)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	int guard = 0;
	int32_t idx;

	if (!w || !virt)
		return;
	idx = table_of_va(w, virt, &guard);
	if (idx <= 0 || guard || (uint8_t *)virt != w->cpu + w->tables[idx].va_off) {
		record(w, IOPGFUZZ_BAD_POINTER, idx, 0, iopgfuzz_virt_to_phys(virt), PC());
		return;
	}
	iopgfuzz_catch_up(w);
	w->free_cb(idx);	/* the model poisons the table's CPU and memory views */
	w->tables[idx].freed = 1;
	w->tables[idx].touched = 1;
	memcpy(w->snap + w->tables[idx].va_off / ENTRY, w->cpu + w->tables[idx].va_off,
	       w->tables[idx].bytes);
	if (w->aborted)
		iopgfuzz_unwind(3);
}

void *iopgfuzz_kmalloc(size_t size, unsigned int gfp)
{
	(void)gfp;
	return calloc(1, size);
}

void iopgfuzz_kfree(const void *p)
{
	free((void *)p);
}

/* -- __pa / __va --------------------------------------------------------------------------------- */

uint64_t iopgfuzz_virt_to_phys(const volatile void *va)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	int guard = 0;
	int32_t idx;

	if (!w)
		return (uint64_t)(uintptr_t)va;
	idx = table_of_va(w, (const void *)va, &guard);
	if (idx < 0)
		return (uint64_t)(uintptr_t)va;	/* not table memory: an honest nonsense value */
	return w->tables[idx].pa + (uint64_t)((const uint8_t *)va - w->cpu - w->tables[idx].va_off);
}

void *iopgfuzz_phys_to_virt(uint64_t pa)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	int32_t idx;

	if (!w)
		return NULL;
	idx = table_of_pa(w, pa);
	/* As the model's iopte_deref: only a table's first byte is a table; anything else is a
	 * wild pointer, which lands in the wild table (table 0: no entries, reads as zeros). */
	if (idx <= 0 || w->tables[idx].pa != pa) {
		w->budget -= 256;
		record(w, IOPGFUZZ_BAD_POINTER, -1, 0, pa, PC());
		return w->cpu + w->tables[0].va_off;
	}
	return w->cpu + w->tables[idx].va_off;
}

/* -- the DMA API ----------------------------------------------------------------------------------- */

static inline __attribute__((always_inline)) int collect_pcs(uintptr_t *pcs)
{
	uintptr_t *fp = __builtin_frame_address(0);
	int n = 0;

	while (n < IOPGFUZZ_MAX_PCS && fp) {
		uintptr_t ra = fp[1];

		if (ra < text_lo || ra >= text_hi)
			break;
		pcs[n++] = ra;
		fp = (uintptr_t *)fp[0];
	}
	return n;
}

static void clean(struct iopgfuzz_world *w, uint64_t pa, uint64_t size, int is_map,
		  const uintptr_t *pcs, int npcs)
{
	int32_t idx = table_of_pa(w, pa);
	int64_t offset = idx >= 0 ? (int64_t)(pa - w->tables[idx].pa) : (int64_t)pa;

	if (idx == 0)
		idx = -1;
	iopgfuzz_catch_up(w);
	w->clean_cb(idx, offset, size, is_map, pcs, npcs);
	if (w->aborted)
		iopgfuzz_unwind(3);
}

uint64_t iopgfuzz_dma_map_single(void *va, size_t size)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	uintptr_t pcs[IOPGFUZZ_MAX_PCS];
	int npcs = collect_pcs(pcs);
	int guard = 0;
	int32_t idx;
	uint64_t pa;

	if (!w)
		return ~0ULL;
	idx = table_of_va(w, va, &guard);
	pa = iopgfuzz_virt_to_phys(va);
	/* the size mapped for the device is the table's logical size (a PGD may be < a page) */
	if (idx > 0 && !guard && (uint8_t *)va == w->cpu + w->tables[idx].va_off &&
	    size <= w->tables[idx].bytes)
		w->tables[idx].entries = size / ENTRY;
	clean(w, pa, size, 1, pcs, npcs);
	return pa;
}

void iopgfuzz_dma_sync_for_device(uint64_t dma, size_t size)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	uintptr_t pcs[IOPGFUZZ_MAX_PCS];
	int npcs = collect_pcs(pcs);

	if (!w)
		return;
	clean(w, dma, size, 0, pcs, npcs);
}
