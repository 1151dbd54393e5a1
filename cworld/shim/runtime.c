// SPDX-License-Identifier: GPL-2.0
/*
 * iopgfuzz's userspace runtime for a kernel io-pgtable build: the page allocator, the DMA API
 * of a non-coherent device, __pa/__va, WARN/BUG, and the access hooks.
 *
 * This file is compiled WITHOUT -fsanitize=kernel-address: it is what the instrumented
 * kernel code calls.  The DMA API is the model's cache (model/memory.py): a clean here does
 * exactly what Memory.dma_sync_for_device does to the memory view, the dirty lines, the
 * statistics, the work budget and the event log, and freeing a table exactly what
 * Memory.free_table does; the clean site is found from the return addresses on the stack and
 * a table of the library's functions that Python hands over at load (world.py SITE_OF).
 * The alloc failpoint is the model's too: Python arms it (ctl.alloc_fail_at), the runtime
 * counts the hits and fails the armed one, and Python records what fired after the call.
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
#define POISON_FREED	0x6B6B6B6B6B6B6B6BULL
#define ENTRY		8

typedef unsigned __int128 u128;

struct iopgfuzz_world *iopgfuzz_cur;
unsigned int iopgfuzz_page_shift = 12;
static uintptr_t text_lo, text_hi;

/* The library's functions, sorted by start: what each is to the clean-site attribution */
static uintptr_t *sym_start, *sym_end;
static int32_t *sym_class;
static int64_t nsyms;

/* model/memory.py ACCESS_COST and EVENT_COST (Python sets them at load) */
static int64_t access_cost = 64, event_cost = 256;

void iopgfuzz_set_text(uintptr_t lo, uintptr_t hi)
{
	text_lo = lo;
	text_hi = hi;
}

int iopgfuzz_set_symbols(int64_t n, const uintptr_t *start, const uintptr_t *end,
			 const int32_t *cls)
{
	uintptr_t *s = malloc(n * sizeof(*s) + 1), *e = malloc(n * sizeof(*e) + 1);
	int32_t *c = malloc(n * sizeof(*c) + 1);

	if (!s || !e || !c) {
		free(s);
		free(e);
		free(c);
		return -1;
	}
	memcpy(s, start, n * sizeof(*s));
	memcpy(e, end, n * sizeof(*e));
	memcpy(c, cls, n * sizeof(*c));
	free(sym_start);
	free(sym_end);
	free(sym_class);
	sym_start = s;
	sym_end = e;
	sym_class = c;
	nsyms = n;
	return 0;
}

void iopgfuzz_set_costs(int64_t access, int64_t event)
{
	access_cost = access;
	event_cost = event;
}

/* world.py Library.function_at: the last function starting at or below pc, if pc is inside
 * it or at its end (a call as the last instruction) */
static int32_t sym_class_at(uintptr_t pc)
{
	int64_t lo = 0, hi = nsyms, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (sym_start[mid] <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && pc <= sym_end[lo - 1])
		return sym_class[lo - 1];
	return IOPGFUZZ_SYM_OTHER;
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
	w->ctl.crashed = why;
	w->ctl.news |= IOPGFUZZ_NEWS_CRASH;
	w->armed = 0;
	longjmp(w->jmp, why);
}

/* Grow a log to hold one more (or `more`) element; unwinds (3) when memory runs out */
static void *grow(void *p, uint64_t *cap, uint64_t need, size_t elem)
{
	uint64_t c = *cap ? *cap : 64;

	if (need <= *cap)
		return p;
	while (c < need)
		c *= 2;
	p = realloc(p, c * elem);
	if (!p)
		iopgfuzz_unwind(3);
	*cap = c;
	return p;
}

/* The model's work budget (Memory.charge): BudgetExhausted once below zero */
static inline void charge(struct iopgfuzz_world *w, int64_t units)
{
	if (w->ctl.mbudget_on) {
		w->ctl.mbudget -= units;
		if (w->ctl.mbudget < 0) {
			w->ctl.mbudget_asked = units;
			iopgfuzz_unwind(2);
		}
	}
}

/* -- tables --------------------------------------------------------------------------------- */

static inline void mark_touched(struct iopgfuzz_world *w, int32_t idx)
{
	struct iopgfuzz_table *t = &w->tables[idx];

	if (idx > 0 && t->touched != (uint64_t)w->ctl.touch_epoch) {
		t->touched = (uint64_t)w->ctl.touch_epoch;
		w->touched_log[w->ctl.ntouched++] = idx;
	}
}

static inline void mark_relabel(struct iopgfuzz_world *w, int32_t idx)
{
	struct iopgfuzz_table *t = &w->tables[idx];

	if (idx > 0 && t->relabel != (uint64_t)w->ctl.relabel_epoch) {
		t->relabel = (uint64_t)w->ctl.relabel_epoch;
		w->relabel_log[w->ctl.nrelabel++] = idx;
	}
}

static int32_t new_table(struct iopgfuzz_world *w, uint64_t pa, uint64_t bytes, uint64_t align)
{
	struct iopgfuzz_table *t;
	uint64_t va_off, guard, page;
	uint32_t idx;

	if (w->ctl.ntables == IOPGFUZZ_MAX_TABLES)
		iopgfuzz_unwind(2);
	if (align < (1ULL << OWNER_SHIFT))
		align = 1ULL << OWNER_SHIFT;
	va_off = (w->va_used + align - 1) & ~(align - 1);
	guard = bytes > WILD_BYTES ? bytes : WILD_BYTES;
	if (va_off + bytes + guard > w->arena_bytes)
		iopgfuzz_unwind(2);		/* the arena is the work budget's hard edge */
	idx = (uint32_t)w->ctl.ntables++;
	t = &w->tables[idx];
	t->pa = pa;
	t->va_off = va_off;
	t->bytes = bytes;
	t->entries = bytes / ENTRY;
	t->freed = 0;
	t->touched = 0;			/* epochs start at 1 */
	t->relabel = 0;
	t->lvl = -1;
	t->iova_base = 0;
	t->labelled = 0;
	w->ctl.news |= IOPGFUZZ_NEWS_TABLES;
	mark_touched(w, (int32_t)idx);
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

int32_t iopgfuzz_table_of_va(struct iopgfuzz_world *w, const void *va, int *guard)
{
	return table_of_va(w, va, guard);
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

/* table 0: where wild pointers land (no logical entries; 64K of zeros) */
static int add_wild_table(struct iopgfuzz_world *w)
{
	w->armed = 1;
	if (setjmp(w->jmp) == 0)
		new_table(w, WILD_PA, WILD_BYTES, WILD_BYTES);
	w->armed = 0;
	if (w->ctl.ntables != 1)
		return -1;
	w->tables[0].entries = 0;
	return 0;
}

struct iopgfuzz_world *iopgfuzz_world_new(uint64_t base_pa, uint64_t line, uint64_t page_size,
					  int coherent, int64_t budget)
{
	struct iopgfuzz_world *w = calloc(1, sizeof(*w));
	uint64_t pages = ARENA_BYTES >> OWNER_SHIFT;

	if (!w)
		return NULL;
	w->arena_bytes = ARENA_BYTES;
	w->line = line;
	w->line_shift = __builtin_ctzll(line);
	w->coherent = coherent;
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
	w->tables = reserve(IOPGFUZZ_MAX_TABLES * sizeof(*w->tables));
	w->freed_log = reserve(IOPGFUZZ_MAX_TABLES * sizeof(int32_t));
	w->touched_log = reserve(IOPGFUZZ_MAX_TABLES * sizeof(int32_t));
	w->relabel_log = reserve(IOPGFUZZ_MAX_TABLES * sizeof(int32_t));
	w->labelled_log = reserve(IOPGFUZZ_MAX_TABLES * sizeof(int32_t));
	if (!w->cpu || !w->mem || !w->wseq || !w->dirty || !w->synced_seq || !w->va_owner ||
	    !w->pa_owner || !w->snap || !w->pend || !w->pending || !w->tables ||
	    !w->freed_log || !w->touched_log || !w->relabel_log || !w->labelled_log) {
		iopgfuzz_world_free(w);
		return NULL;
	}
	w->base_pa = base_pa;
	w->next_pa = base_pa;
	w->page_size = page_size;
	w->ctl.budget = budget;
	w->ctl.touch_epoch = 1;
	w->ctl.relabel_epoch = 1;
	w->ctl.label_epoch = 1;
	if (add_wild_table(w)) {
		iopgfuzz_world_free(w);
		return NULL;
	}
	return w;
}

/*
 * What a reset zeroes in place rather than gives back (MADV_DONTNEED, the kernel zeroes the
 * pages again at the next touch).  Giving back costs a page fault per page at the next
 * scenario: a quarter of a C campaign's time on its corpus, whose big maps use megabytes.
 * Keeping costs resident memory: with 64 MiB each of the five arenas of up to POOL_MAX states
 * per key kept what its biggest scenario touched, a campaign worker grew by about 35 MB per
 * 1,000 executions.  So every world keeps up to RESET_RELEASE, and beyond that worlds keep
 * while the arena bytes all of them keep stay within RESET_KEEP_TOTAL (the worlds of this
 * library: every build has its own runtime).  Measured on the 473
 * inputs of a 120 s C v1 campaign's corpus, two passes: 6.04 s and 94 MB peak RSS giving
 * everything beyond 1 MiB back, 4.56 s and 184 MB with this total (docs/c-world.md).
 */
#define RESET_RELEASE		(1ULL << 20)
#define RESET_KEEP_TOTAL	(128ULL << 20)

static uint64_t resident_total;	/* the sum of every world's `resident` beyond RESET_RELEASE */
static int64_t resets_kept, resets_given_back;

/* How many resets of a big world zeroed in place, how many gave memory back (for the tests) */
void iopgfuzz_reset_counts(int64_t *kept, int64_t *given_back)
{
	*kept = resets_kept;
	*given_back = resets_given_back;
}

static uint64_t resident_beyond(uint64_t bytes)
{
	return bytes > RESET_RELEASE ? bytes - RESET_RELEASE : 0;
}

/* Keep (true) or give back this reset's used memory, and account for it */
static int keep_at_reset(struct iopgfuzz_world *w)
{
	uint64_t now = w->va_used > w->resident ? w->va_used : w->resident;
	uint64_t others = resident_total - resident_beyond(w->resident);

	if (now <= RESET_RELEASE || others + resident_beyond(now) <= RESET_KEEP_TOTAL) {
		resident_total = others + resident_beyond(now);
		w->resident = now;
		resets_kept += now > RESET_RELEASE;
		return 1;
	}
	resident_total = others;
	w->resident = 0;
	resets_given_back++;
	return 0;
}

/* Zero [p, p + bytes) by giving its pages back (p is page-aligned: an arena's start) */
static void release(void *p, uint64_t bytes)
{
	uint64_t page = 1ULL << OWNER_SHIFT;

	madvise(p, (bytes + page - 1) & ~(page - 1), MADV_DONTNEED);
}

static void unreserve(void *p, uint64_t bytes)
{
	if (p)
		munmap(p, bytes);
}

void iopgfuzz_world_free(struct iopgfuzz_world *w)
{
	uint64_t pages = ARENA_BYTES >> OWNER_SHIFT;

	if (!w)
		return;
	resident_total -= resident_beyond(w->resident);
	unreserve(w->cpu, ARENA_BYTES);
	if ((void *)w->mem != (void *)w->cpu)
		unreserve(w->mem, ARENA_BYTES);
	unreserve(w->wseq, ARENA_BYTES);
	unreserve(w->dirty, ARENA_BYTES / w->line);
	unreserve(w->synced_seq, ARENA_BYTES / w->line * sizeof(int64_t));
	unreserve(w->snap, ARENA_BYTES);
	unreserve(w->pend, ARENA_BYTES / w->line);
	free(w->pending);
	unreserve(w->va_owner, pages * sizeof(int32_t));
	unreserve(w->pa_owner, pages * sizeof(int32_t));
	unreserve(w->tables, IOPGFUZZ_MAX_TABLES * sizeof(*w->tables));
	unreserve(w->freed_log, IOPGFUZZ_MAX_TABLES * sizeof(int32_t));
	unreserve(w->touched_log, IOPGFUZZ_MAX_TABLES * sizeof(int32_t));
	unreserve(w->relabel_log, IOPGFUZZ_MAX_TABLES * sizeof(int32_t));
	free(w->pyevents);
	free(w->recs);
	free(w->changed);
	unreserve(w->labelled_log, IOPGFUZZ_MAX_TABLES * sizeof(int32_t));
	free(w->label_stack);
	if (iopgfuzz_cur == w)
		iopgfuzz_cur = NULL;
	free(w);
}

/*
 * Make a used world as new, for the next scenario (world.py's pool): zero what was used, by
 * table (or the whole used arena after a store outside every table body), reset every count
 * and log.  What stays: the reservations, the line size and coherence, the grown logs.
 */
int iopgfuzz_world_reset(struct iopgfuzz_world *w, uint64_t base_pa, uint64_t page_size,
			 int64_t budget)
{
	uint64_t line = w->line, i, pages, max_pages = w->arena_bytes >> OWNER_SHIFT;

	/*
	 * What a new table needs: a zero CPU view, equal to its snapshot, no store sequence
	 * numbers, no sync walk.  Its memory view and dirty lines are set when it is allocated
	 * (poison and all dirty; a coherent world never dirties a line and its memory view is
	 * the CPU view), and nothing outside table bodies is ever read, so guard zones need
	 * zeroing only after a store there, and the wild table only after a store into it.
	 */
	if (!keep_at_reset(w)) {
		/* a big world: give the memory back (RSS stays flat) and let the kernel zero it */
		uint64_t lines = w->va_used / line, pa_pages = (w->next_pa - w->base_pa) >> OWNER_SHIFT;

		if (pa_pages > max_pages)
			pa_pages = max_pages;
		release(w->cpu, w->va_used);
		if (!w->coherent)
			release(w->mem, w->va_used);
		release(w->wseq, w->va_used);
		release(w->snap, w->va_used);
		release(w->dirty, lines);
		release(w->synced_seq, lines * sizeof(int64_t));
		release(w->pend, lines);
		release(w->va_owner, ((w->va_used >> OWNER_SHIFT) + 1) * sizeof(int32_t));
		release(w->pa_owner, (pa_pages + 1) * sizeof(int32_t));
	} else if (w->ctl.wild_store) {
		memset(w->cpu, 0, w->va_used);
		memset(w->wseq, 0, w->va_used);
		memset(w->snap, 0, w->va_used);
		memset(w->dirty, 0, w->va_used / line);	/* the wild table's lines */
		memset(w->synced_seq, 0, w->va_used / line * sizeof(int64_t));
	} else {
		for (i = 1; i < (uint64_t)w->ctl.ntables; i++) {
			struct iopgfuzz_table *t = &w->tables[i];

			memset(w->cpu + t->va_off, 0, t->bytes);
			memset((uint8_t *)w->wseq + t->va_off, 0, t->bytes);
			memset((uint8_t *)w->snap + t->va_off, 0, t->bytes);
			memset(w->synced_seq + t->va_off / line, 0, t->bytes / line * sizeof(int64_t));
		}
	}
	for (i = 0; i < w->npending; i++)
		w->pend[w->pending[i]] = 0;
	w->npending = 0;
	w->pending_overflow = 0;
	pages = (w->va_used >> OWNER_SHIFT) + 1;
	memset(w->va_owner, 0, (pages < max_pages ? pages : max_pages) * sizeof(int32_t));
	pages = ((w->next_pa - w->base_pa) >> OWNER_SHIFT) + 1;
	memset(w->pa_owner, 0, (pages < max_pages ? pages : max_pages) * sizeof(int32_t));
	memset(w->tables, 0, w->ctl.ntables * sizeof(*w->tables));
	memset(&w->ctl, 0, sizeof(w->ctl));
	memset(w->site_calls, 0, sizeof(w->site_calls));
	memset(w->site_lines, 0, sizeof(w->site_lines));
	memset(w->site_lines_hi, 0, sizeof(w->site_lines_hi));
	w->va_used = 0;
	w->base_pa = base_pa;
	w->next_pa = base_pa;
	w->page_size = page_size;
	w->default_entries = 0;
	w->context = IOPGFUZZ_CTX_NONE;
	w->label_on = 0;
	w->log_accesses = 0;
	w->nwarned_once = 0;
	w->tlb_flush_walk = w->tlb_add_page = w->tlb_flush_all = 0;
	w->armed = 0;
	w->bug_file = w->bug_func = NULL;
	w->bug_line = 0;
	w->ctl.budget = budget;
	w->ctl.touch_epoch = 1;
	w->ctl.relabel_epoch = 1;
	w->ctl.label_epoch = 1;
	w->ctl.cap_pyevents = (int64_t)w->cap_pyevents;
	w->ctl.cap_recs = (int64_t)w->cap_recs;
	w->ctl.cap_changed = (int64_t)w->cap_changed;
	if (iopgfuzz_cur == w)
		iopgfuzz_cur = NULL;
	return add_wild_table(w);
}

/* -- labels ------------------------------------------------------------------------------------ */

#define PTE_ADDR_MASK	0x0000FFFFFFFFF000ULL	/* GENMASK_ULL(47, 12) */

/* model/pte.py iopte_to_paddr */
static inline uint64_t iopte_to_paddr(uint64_t pte, uint64_t granule)
{
	uint64_t paddr = pte & PTE_ADDR_MASK;

	if (granule < 0x10000)
		return paddr;
	return (paddr | (paddr << (48 - 12))) & (PTE_ADDR_MASK << 4);
}

static int cmp_idx(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

static void label_push(struct iopgfuzz_world *w, uint64_t *n, int32_t idx)
{
	w->label_stack = grow(w->label_stack, &w->cap_label_stack, *n + 1, sizeof(int32_t));
	w->label_stack[(*n)++] = idx;
}

/*
 * Level and IOVA base of the tables, from the table descriptors that point at them (the C
 * does not say which level it allocates for): world.py's algorithm, run by the runtime on the
 * tables where it saw a table descriptor written or overwritten (relabel_log), in the order
 * of their physical addresses, then on every table whose label that changes.  A table has
 * one live parent, so no other label can change.  The tables relabelled go to labelled_log.
 */
void iopgfuzz_label(struct iopgfuzz_world *w)
{
	uint64_t n = 0, i;

	if (!w->label_on || !w->ctl.nrelabel)
		return;
	/* popped from the end: the highest address first, as world.py did */
	qsort(w->relabel_log, (size_t)w->ctl.nrelabel, sizeof(int32_t), cmp_idx);
	for (i = 0; i < (uint64_t)w->ctl.nrelabel; i++)
		label_push(w, &n, w->relabel_log[i]);
	w->ctl.nrelabel = 0;
	w->ctl.relabel_epoch++;
	while (n) {
		struct iopgfuzz_table *p = &w->tables[w->label_stack[--n]];
		const uint64_t *cpu = (const uint64_t *)(w->cpu + p->va_off);
		uint64_t ents = p->entries < p->bytes / ENTRY ? p->entries : p->bytes / ENTRY;
		uint64_t blk, e;
		int64_t lvl = p->lvl;

		if (p->freed || lvl < 0 || lvl >= 3)
			continue;
		blk = 1ULL << ((4 - lvl) * w->bits_per_level + 3);
		w->ctl.label_work += (int64_t)ents;
		for (e = 0; e < ents; e++) {
			uint64_t pa, base;
			int32_t c;
			struct iopgfuzz_table *t;

			if ((cpu[e] & 3) != 3)
				continue;
			pa = iopte_to_paddr(cpu[e], w->granule);
			c = table_of_pa(w, pa);
			if (c <= 0 || w->tables[c].pa != pa)
				continue;
			t = &w->tables[c];
			if (t->freed)
				continue;
			base = p->iova_base + e * blk;
			if (t->lvl != lvl + 1 || t->iova_base != base) {
				t->lvl = lvl + 1;
				t->iova_base = base;
				label_push(w, &n, c);
				if (t->labelled != (uint64_t)w->ctl.label_epoch) {
					t->labelled = (uint64_t)w->ctl.label_epoch;
					w->labelled_log[w->ctl.nlabelled++] = c;
					w->ctl.news |= IOPGFUZZ_NEWS_LABELS;
				}
			}
		}
	}
}

/* -- range walks --------------------------------------------------------------------------------- */

/* model/smmu.py Divergence reasons, as world.py numbers them */
enum { DIV_STALE = 1, DIV_FREED_TABLE, DIV_NOT_A_TABLE, DIV_WRONG_LEVEL };

struct divergence {
	uint64_t iova;
	int64_t lvl;
	int64_t reason;
	int64_t units;		/* budget exhausted: the charge that failed */
};

static inline uint64_t lvl_shift(const struct iopgfuzz_world *w, int64_t lvl)
{
	return (uint64_t)((4 - lvl) * w->bits_per_level + 3);
}

/* model/io_pgtable_arm.py ARM_LPAE_LVL_IDX */
static inline uint64_t lvl_idx(const struct iopgfuzz_world *w, uint64_t a, int64_t lvl)
{
	int64_t pgd_idx = lvl == w->start_level ? w->pgd_bits - w->bits_per_level : 0;

	return (a >> lvl_shift(w, lvl)) & ((1ULL << (w->bits_per_level + pgd_idx)) - 1);
}

/* the table whose first byte is at pa (model Memory.lookup), or -1 */
static inline int32_t table_at(struct iopgfuzz_world *w, uint64_t pa)
{
	int32_t c = table_of_pa(w, pa);

	return c > 0 && w->tables[c].pa == pa ? c : -1;
}

/* model/smmu.py _diverge, step for step, the budget charges of _slice_bounds included */
static int diverge(struct iopgfuzz_world *w, int32_t idx, int64_t lvl, uint64_t lo,
		   uint64_t hi, uint64_t hw, struct divergence *d)
{
	struct iopgfuzz_table *t = &w->tables[idx];
	uint64_t shift = lvl_shift(w, lvl), i0 = lvl_idx(w, lo, lvl), block, base, j, stop;
	int64_t n = (int64_t)((hi >> shift) - (lo >> shift) + 1);
	int64_t room = (int64_t)t->entries - (int64_t)i0;
	const uint64_t *cpu, *mem;

	if (t->freed) {
		*d = (struct divergence){lo, lvl, DIV_FREED_TABLE, 0};
		return 1;
	}
	if (room < n)
		n = room;
	if (n < 0)
		n = 0;
	if (w->ctl.mbudget_on) {		/* data.mem.spend(n) */
		w->ctl.mbudget -= n + access_cost;
		if (w->ctl.mbudget < 0) {
			d->units = n + access_cost;
			return -1;
		}
	}
	if (n == 0)
		return 0;
	if ((uint64_t)n > t->bytes / ENTRY - i0)	/* the arrays end there (never: entries fit) */
		n = (int64_t)(t->bytes / ENTRY - i0);
	block = 1ULL << shift;
	base = lo & ~(block - 1);
	cpu = (const uint64_t *)(w->cpu + t->va_off) + i0;
	mem = w->mem + t->va_off / ENTRY + i0;
	for (stop = 0; stop < (uint64_t)n; stop++)
		if ((cpu[stop] ^ mem[stop]) & hw)
			break;
	if (lvl < 3) {
		for (j = 0; j < stop; j++) {
			uint64_t desc = cpu[j] & hw, e_lo, e_hi;
			int32_t c;
			int r;

			if ((desc & 3) != 3)
				continue;
			e_lo = base + j * block > lo ? base + j * block : lo;
			e_hi = base + (j + 1) * block - 1 < hi ? base + (j + 1) * block - 1 : hi;
			c = table_at(w, iopte_to_paddr(desc, w->granule));
			if (c < 0) {
				*d = (struct divergence){e_lo, lvl + 1, DIV_NOT_A_TABLE, 0};
				return 1;
			}
			if (w->tables[c].lvl != lvl + 1 && !w->tables[c].freed) {
				*d = (struct divergence){e_lo, lvl + 1, DIV_WRONG_LEVEL, 0};
				return 1;
			}
			r = diverge(w, c, lvl + 1, e_lo, e_hi, hw, d);
			if (r)
				return r;
		}
	}
	if (stop < (uint64_t)n) {
		uint64_t at = base + stop * block;

		*d = (struct divergence){at > lo ? at : lo, lvl, DIV_STALE, 0};
		return 1;
	}
	return 0;
}

/*
 * model/smmu.py first_divergence over [lo, hi] (inclusive; Python computes both): 0 none,
 * 1 found (out: iova, level, reason), -1 the model's work budget ran out (out[3]: the
 * charge that failed).  Tables, levels and both views are the runtime's own.
 */
int iopgfuzz_first_divergence(struct iopgfuzz_world *w, uint64_t lo, uint64_t hi,
			      uint64_t hw_mask, uint64_t out[4])
{
	struct divergence d = {0, 0, 0, 0};
	int r = diverge(w, (int32_t)w->pgd, w->start_level, lo, hi, hw_mask, &d);

	out[0] = d.iova;
	out[1] = (uint64_t)d.lvl;
	out[2] = (uint64_t)d.reason;
	out[3] = (uint64_t)d.units;
	return r;
}

/* model/smmu.py fault reasons, as world.py numbers them */
enum { WALK_OK, WALK_TRANSLATION, WALK_ADDRESS_SIZE, WALK_RESERVED, WALK_FREED_TABLE,
       WALK_NOT_A_TABLE, WALK_WRONG_LEVEL };

/* model/smmu.py block_allowed */
static int block_allowed(const struct iopgfuzz_world *w, int64_t lvl)
{
	if (w->granule == 0x1000)
		return lvl == 1 || lvl == 2;
	if (w->granule == 0x4000)
		return lvl == 2;
	if (w->granule == 0x10000)
		return lvl == 2 || (lvl == 1 && w->oas > 48);
	return 0;
}

/*
 * model/smmu.py smmu_walk, step for step: the descriptors read (steps: level, table, index,
 * hardware bits), and out = (fault, level, oa).  Returns the number of steps.
 */
int iopgfuzz_smmu_walk(struct iopgfuzz_world *w, uint64_t iova, int use_mem, uint64_t hw_mask,
		       uint64_t steps[][4], uint64_t out[3])
{
	int64_t lvl = w->start_level, top = (int64_t)iova >> w->ias;
	int32_t idx = (int32_t)w->pgd;
	int n = 0;

	out[0] = WALK_OK;
	out[1] = (uint64_t)lvl;
	out[2] = 0;
	if (w->ttbr1 ? top != -1 : top != 0) {
		out[0] = WALK_ADDRESS_SIZE;
		return 0;
	}
	for (;;) {
		struct iopgfuzz_table *t = &w->tables[idx];
		uint64_t i = lvl_idx(w, iova, lvl), desc = 0, type;
		int32_t c;

		if (t->freed) {
			out[0] = WALK_FREED_TABLE;
			out[1] = (uint64_t)lvl;
			return n;
		}
		if (i < t->bytes / ENTRY)
			desc = (use_mem ? w->mem[t->va_off / ENTRY + i]
					: ((const uint64_t *)(w->cpu + t->va_off))[i]) & hw_mask;
		steps[n][0] = (uint64_t)lvl;
		steps[n][1] = t->pa;
		steps[n][2] = i;
		steps[n][3] = desc;
		n++;
		type = desc & 3;
		/* _is_leaf_desc: a page or block (leaf), a table, or a fault */
		if (!(type & 1) || (lvl == 3 && type != (w->mali ? 1u : 3u)) ||
		    (lvl < 3 && type != 3 && !block_allowed(w, lvl))) {
			out[0] = (desc & 1) ? WALK_RESERVED : WALK_TRANSLATION;
			out[1] = (uint64_t)lvl;
			return n;
		}
		if (lvl == 3 || type != 3) {
			out[1] = (uint64_t)lvl;
			out[2] = iopte_to_paddr(desc, w->granule) |
				 (iova & ((1ULL << lvl_shift(w, lvl)) - 1));
			return n;
		}
		c = table_at(w, iopte_to_paddr(desc, w->granule));
		lvl++;
		if (c < 0) {
			out[0] = WALK_NOT_A_TABLE;
			out[1] = (uint64_t)lvl;
			return n;
		}
		if (w->tables[c].lvl != lvl && !w->tables[c].freed) {
			out[0] = WALK_WRONG_LEVEL;
			out[1] = (uint64_t)lvl;
			return n;
		}
		idx = c;
	}
}

/*
 * model/world.py World.evict: write back the dirty lines of every live table (all), or of the
 * lines holding iova's CPU walk (each step's line).  Returns the lines written, or -1 when a
 * step's line is past its table's lines (the model's IndexError: Python takes over).
 */
int64_t iopgfuzz_evict(struct iopgfuzz_world *w, uint64_t iova, int all, uint64_t hw_mask)
{
	uint64_t steps[8][4], out[3], line = w->line, le = line / ENTRY;
	int64_t count = 0;
	int n, k;

	if (all) {
		int64_t i;

		for (i = 1; i < w->ctl.ntables; i++) {
			struct iopgfuzz_table *t = &w->tables[i];
			uint64_t l, l0 = t->va_off / line;

			if (t->freed)
				continue;
			for (l = 0; l < t->bytes / line; l++) {
				if (!w->dirty[l0 + l])
					continue;
				if (!w->coherent)
					memcpy(w->mem + (l0 + l) * le, w->cpu + (l0 + l) * line, line);
				w->dirty[l0 + l] = 0;
				count++;
			}
		}
		return count;
	}
	n = iopgfuzz_smmu_walk(w, iova, 0, hw_mask, steps, out);
	for (k = 0; k < n; k++) {
		int32_t c = table_at(w, steps[k][1]);

		if (c < 0 || steps[k][2] / le >= w->tables[c].bytes / line)
			return -1;
	}
	for (k = 0; k < n; k++) {
		struct iopgfuzz_table *t = &w->tables[table_at(w, steps[k][1])];
		uint64_t l = t->va_off / line + steps[k][2] / le;

		if (w->dirty[l]) {
			if (!w->coherent)
				memcpy(w->mem + l * le, w->cpu + l * line, line);
			w->dirty[l] = 0;
			count++;
		}
	}
	return count;
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

	for (i = (uint32_t)w->ctl.nevents; i > 0 && i + MERGE_WINDOW > w->ctl.nevents; i--) {
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
	w->ctl.news |= IOPGFUZZ_NEWS_EVENTS;
	if (w->ctl.nevents == IOPGFUZZ_LOG_MAX) {
		w->ctl.dropped_events++;
		return;
	}
	e = &w->events[w->ctl.nevents++];
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
	for (i = (uint32_t)w->ctl.nevents; i > 0 && i + MERGE_WINDOW > w->ctl.nevents; i--) {
		e = &w->events[i - 1];
		if (e->kind == IOPGFUZZ_WARN && e->file == file && e->line == line) {
			e->count++;
			return 1;
		}
	}
	w->ctl.news |= IOPGFUZZ_NEWS_EVENTS;
	if (w->ctl.nevents == IOPGFUZZ_LOG_MAX) {
		w->ctl.dropped_events++;
		return 1;
	}
	e = &w->events[w->ctl.nevents++];
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

	for (l = off >> w->line_shift; l <= (off + size - 1) >> w->line_shift; l++) {
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
	int changed = 0, desc = 0;

	for (e = l * le; e < (l + 1) * le; e++) {
		if (cpu[e] != w->snap[e]) {
			/* a table descriptor (type bits 3) written or overwritten: the levels and
			 * IOVAs of the tables below may change (world.py _label_tables) */
			desc |= (cpu[e] & 3) == 3 || (w->snap[e] & 3) == 3;
			w->snap[e] = cpu[e];
			w->wseq[e] = ++w->ctl.seq;
			changed = 1;
		}
	}
	if (changed && o > 0) {
		if (!w->coherent && !w->tables[o - 1].freed)
			w->dirty[l] = 1;
		mark_touched(w, o - 1);
		if (desc)
			mark_relabel(w, o - 1);
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
		for (t = 1; t < (uint32_t)w->ctl.ntables; t++) {
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
	if (--w->ctl.budget < 0)
		iopgfuzz_unwind(2);
	o = w->va_owner[off >> OWNER_SHIFT];
	if (store && (o <= 0 || o == 1))	/* outside every body, or in the wild table */
		w->ctl.wild_store = 1;
	if (o == 0) {				/* between guard zones: no table's memory */
		record(w, store ? IOPGFUZZ_OOB_WRITE : IOPGFUZZ_OOB_READ, -1, 0, 0, pc);
		return;
	}
	idx = (o < 0 ? -o : o) - 1;
	t = &w->tables[idx];
	i = (int64_t)((off - t->va_off) / ENTRY);
	last = (int64_t)((off + size - 1 - t->va_off) / ENTRY);
	if (w->log_accesses && !store) {
		struct iopgfuzz_access *a = w->ctl.naccesses ? &w->accesses[w->ctl.naccesses - 1]
							     : NULL;

		if (a && a->table == idx && a->first + a->n == i)
			a->n += last - i + 1;
		else if (a && a->table == idx && i >= a->first && last < a->first + a->n)
			;			/* the same entry again (a 32-bit half, say) */
		else if (w->ctl.naccesses < IOPGFUZZ_LOG_MAX)
			w->accesses[w->ctl.naccesses++] =
				(struct iopgfuzz_access){idx, 0, i, last - i + 1};
		else
			w->ctl.dropped_accesses++;
	}
	if (t->freed) {
		record(w, store ? IOPGFUZZ_UAF_WRITE : IOPGFUZZ_UAF_READ, idx, i, 0, pc);
		return;
	}
	if (o < 0 || last >= (int64_t)t->entries)
		record(w, store ? IOPGFUZZ_OOB_WRITE : IOPGFUZZ_OOB_READ, idx, i, 0, pc);
	if (store && off + size > t->va_off + t->bytes)
		w->ctl.wild_store = 1;		/* runs past the body into the guard */
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

	if (!w)
		return NULL;
	w->ctl.budget -= (int64_t)(bytes / ENTRY) + 64;
	if (w->ctl.budget < 0)
		iopgfuzz_unwind(2);
	/* the model's alloc failpoint (model/failpoints.py should_fail): every call is a hit;
	 * the armed one fails, once */
	(void)gfp;
	w->ctl.alloc_hits++;
	w->ctl.news |= IOPGFUZZ_NEWS_ALLOC;
	if (w->ctl.alloc_fail_at && w->ctl.alloc_hits >= w->ctl.alloc_fail_at) {
		w->ctl.alloc_fail_at = 0;
		w->ctl.alloc_fired = w->ctl.alloc_hits;
		return NULL;
	}
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

static void pyevent(struct iopgfuzz_world *w, uint64_t kind, int32_t table, int site,
		    int64_t first, uint64_t nbytes, uint64_t pa, uintptr_t pc)
{
	struct iopgfuzz_pyevent *e;

	w->pyevents = grow(w->pyevents, &w->cap_pyevents, (uint64_t)w->ctl.npyevents + 1,
			   sizeof(*w->pyevents));
	w->ctl.cap_pyevents = (int64_t)w->cap_pyevents;
	w->ctl.news |= IOPGFUZZ_NEWS_EVENTS;
	e = &w->pyevents[w->ctl.npyevents++];
	e->kind = kind;
	e->table = table;
	e->site = site;
	e->first = first;
	e->nbytes = nbytes;
	e->entries = table >= 0 ? w->tables[table].entries : 0;
	e->pa = pa;
	e->pc = pc;
}

/* model/memory.py free_table: poison both views, no dirty line; a second free is recorded */
void iopgfuzz_free_pages(void *virt)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	struct iopgfuzz_table *t;
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
	t = &w->tables[idx];
	if (t->freed) {
		pyevent(w, IOPGFUZZ_PYEV_DOUBLE_FREE, idx, -1, 0, 0, 0, 0);
	} else {
		uint64_t e, e0 = t->va_off / ENTRY, n = t->bytes / ENTRY;
		uint64_t *cpu = (uint64_t *)w->cpu;

		for (e = e0; e < e0 + n; e++)
			cpu[e] = POISON_FREED;
		if (!w->coherent)
			for (e = e0; e < e0 + n; e++)
				w->mem[e] = POISON_FREED;
		memset(w->dirty + t->va_off / w->line, 0, t->bytes / w->line);
		w->freed_log[w->ctl.nfreed++] = idx;
		w->ctl.news |= IOPGFUZZ_NEWS_FREED;
	}
	t->freed = 1;
	mark_touched(w, idx);
	memcpy(w->snap + t->va_off / ENTRY, w->cpu + t->va_off, t->bytes);
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
		w->ctl.budget -= 256;
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

/* world.py SITE_OF: the first function on the stack that is not a helper of the clean
 * itself names the site; else the op does (sync_map, unmap, leaf) */
static int clean_site(struct iopgfuzz_world *w, const uintptr_t *pcs, int npcs)
{
	int i;

	for (i = 0; i < npcs; i++) {
		int32_t c = sym_class_at(pcs[i]);

		if (c == IOPGFUZZ_SYM_TRANSPARENT)
			continue;
		if (c >= 0)
			return c;
		break;
	}
	if (w->context == IOPGFUZZ_CTX_SYNC)
		return IOPGFUZZ_SITE_SYNC_MAP;
	if (w->context == IOPGFUZZ_CTX_UNMAP)
		return IOPGFUZZ_SITE_UNMAP;
	return IOPGFUZZ_SITE_LEAF;
}

/* Entries of lines [lo, hi) of table idx stored to since a sync walk last cleaned their line
 * (model/memory.py _changed_entries), as one clean record */
static void clean_record(struct iopgfuzz_world *w, int site, int32_t idx, uint64_t first_line,
			 uint64_t nlines, uint64_t lo, uint64_t hi)
{
	struct iopgfuzz_table *t = &w->tables[idx];
	struct iopgfuzz_clean_rec *r;
	uint64_t le = w->line / ENTRY, e0 = t->va_off / ENTRY, l0 = t->va_off / w->line, e;

	w->recs = grow(w->recs, &w->cap_recs, (uint64_t)w->ctl.nrecs + 1, sizeof(*w->recs));
	w->ctl.cap_recs = (int64_t)w->cap_recs;
	w->ctl.news |= IOPGFUZZ_NEWS_RECS;
	r = &w->recs[w->ctl.nrecs++];
	r->site = site;
	r->table = idx;
	r->first_line = (int64_t)first_line;
	r->nlines = nlines;
	r->changed_off = (uint64_t)w->ctl.nchanged;
	r->changed_n = 0;
	if (t->freed || lo >= hi)
		return;
	w->changed = grow(w->changed, &w->cap_changed,
			  (uint64_t)w->ctl.nchanged + (hi - lo) * le, sizeof(*w->changed));
	w->ctl.cap_changed = (int64_t)w->cap_changed;
	for (e = lo * le; e < hi * le; e++)
		if (w->wseq[e0 + e] > w->synced_seq[l0 + e / le])
			w->changed[w->ctl.nchanged++] = (int64_t)e;
	r->changed_n = (uint64_t)w->ctl.nchanged - r->changed_off;
}

/*
 * model/memory.py Memory.dma_sync_for_device(t, first, nbytes, site), line for line: clean
 * every line overlapping the byte range (a zero length still cleans the line holding the
 * start: the arm64 loop is do-while), count the call and every line asked for, copy only the
 * table's own lines (a single line only when dirty), charge the model's budget, and record a
 * clean of a freed table or past the table's logical end.  nbytes is a size_t: the range is
 * computed in 128 bits, as Python's integers do.
 */
static void sync_for_device(struct iopgfuzz_world *w, int32_t idx, int64_t first, uint64_t nbytes,
			    int site, uintptr_t caller)
{
	struct iopgfuzz_table *t = &w->tables[idx];
	uint64_t line = w->line, le = line / ENTRY;
	u128 start = (u128)first * ENTRY, end = start + nbytes;
	u128 ceil_lines = (end + line - 1) / line;
	int oob = end > (u128)t->entries * ENTRY;
	uint64_t first_line = (uint64_t)(start / line), last_line, nlines, lo, hi, tlines;
	u128 sum;

	if (t->freed || oob)
		charge(w, event_cost);
	if (t->freed)
		pyevent(w, IOPGFUZZ_PYEV_UAF_CLEAN, idx, site, first, nbytes, 0, caller);
	else if (oob)
		pyevent(w, IOPGFUZZ_PYEV_OOB_CLEAN, idx, site, first, nbytes, 0, caller);
	last_line = ceil_lines > first_line ? (uint64_t)(ceil_lines - 1) : first_line;
	nlines = last_line - first_line + 1;
	w->site_calls[site]++;
	sum = ((u128)w->site_lines_hi[site] << 64 | w->site_lines[site]) + nlines;
	w->site_lines[site] = (uint64_t)sum;
	w->site_lines_hi[site] = (uint64_t)(sum >> 64);
	w->ctl.cleans++;
	w->ctl.sites |= 1 << site;
	w->ctl.news |= IOPGFUZZ_NEWS_CLEANS;
	/* only lines inside the allocation exist; the rest is someone else's RAM */
	lo = first_line;
	tlines = t->bytes / line;
	hi = last_line + 1 < tlines ? last_line + 1 : tlines;
	charge(w, (hi > lo ? (int64_t)((hi - lo) * le) : 0) + access_cost);
	if (w->ctl.log_cleans)
		clean_record(w, site, idx, first_line, nlines, lo, hi);
	if (lo < hi && !t->freed) {
		uint64_t l0 = t->va_off / line, e0 = t->va_off / ENTRY, l;

		if (hi - lo == 1) {
			if (w->dirty[l0 + lo]) {
				if (!w->coherent)
					memcpy(w->mem + e0 + lo * le, w->cpu + t->va_off + lo * line, line);
				w->dirty[l0 + lo] = 0;
			}
		} else {
			if (!w->coherent)
				memcpy(w->mem + e0 + lo * le, w->cpu + t->va_off + lo * line,
				       (hi - lo) * line);
			memset(w->dirty + l0 + lo, 0, hi - lo);
		}
		if (site == IOPGFUZZ_SITE_SYNC_MAP)
			for (l = lo; l < hi; l++)
				w->synced_seq[l0 + l] = w->ctl.seq;
	}
}

static void clean(struct iopgfuzz_world *w, uint64_t pa, uint64_t size, int is_map,
		  const uintptr_t *pcs, int npcs)
{
	int32_t idx = table_of_pa(w, pa);
	uintptr_t caller = npcs ? pcs[0] : 0;	/* in the function that called the DMA API */
	int site;

	iopgfuzz_catch_up(w);
	site = is_map ? IOPGFUZZ_SITE_ALLOC : clean_site(w, pcs, npcs);
	if (idx <= 0) {
		charge(w, event_cost);
		pyevent(w, IOPGFUZZ_PYEV_NO_TABLE_CLEAN, -1, site, 0, size, pa, caller);
		return;
	}
	sync_for_device(w, idx, (int64_t)((pa - w->tables[idx].pa) / ENTRY), size, site, caller);
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
	    size <= w->tables[idx].bytes) {
		if (idx < w->ctl.adopted && w->tables[idx].entries != size / ENTRY) {
			w->ctl.entries_stale = 1;
			w->ctl.news |= IOPGFUZZ_NEWS_TABLES;
		}
		w->tables[idx].entries = size / ENTRY;
	}
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
