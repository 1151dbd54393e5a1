/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The state of one C world, shared by runtime.c (the hooks) and glue.c (the entry points).
 * Python asks through the iopgfuzz_* functions of glue.c, and reads the arenas, the control
 * block, the table array, the clean statistics and the logs through NumPy views of the
 * pointers iopgfuzz_world_arrays() hands out (cworld/world.py mirrors the layouts below).
 */
#ifndef IOPGFUZZ_RUNTIME_H
#define IOPGFUZZ_RUNTIME_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#define IOPGFUZZ_MAX_PCS	6
#define IOPGFUZZ_LOG_MAX	16384
/* Table slots: every table takes at least a page and a 64K guard of the 4G arena */
#define IOPGFUZZ_MAX_TABLES	65536

/* Event kinds, as model/events.py names them */
enum iopgfuzz_kind {
	IOPGFUZZ_OOB_READ = 1,
	IOPGFUZZ_OOB_WRITE,
	IOPGFUZZ_UAF_READ,
	IOPGFUZZ_UAF_WRITE,
	IOPGFUZZ_BAD_POINTER,
	IOPGFUZZ_WARN,
};

/* Clean sites, in the order of model/memory.py CLEAN_SITES */
enum iopgfuzz_site {
	IOPGFUZZ_SITE_ALLOC,
	IOPGFUZZ_SITE_INSTALL,
	IOPGFUZZ_SITE_TABLE,
	IOPGFUZZ_SITE_LEAF,
	IOPGFUZZ_SITE_SYNC_MAP,
	IOPGFUZZ_SITE_UNMAP,
	IOPGFUZZ_NSITES,
};

/* What a function of the library is to the clean-site attribution (else a site number) */
#define IOPGFUZZ_SYM_TRANSPARENT	(-1)	/* a helper of the clean itself: look further */
#define IOPGFUZZ_SYM_OTHER		(-2)	/* neither: the op decides */

/* The io-pgtable op an entry point runs (the fallback clean site) */
enum iopgfuzz_ctx { IOPGFUZZ_CTX_NONE, IOPGFUZZ_CTX_MAP, IOPGFUZZ_CTX_UNMAP, IOPGFUZZ_CTX_SYNC };

/*
 * One page-table allocation.  Index 0 is the wild table (where bad pointers land).  All
 * fields 64-bit: Python reads the array as uint64[IOPGFUZZ_MAX_TABLES][10].
 */
struct iopgfuzz_table {
	uint64_t pa;
	uint64_t va_off;	/* byte offset of the table in the arena */
	uint64_t bytes;		/* its footprint: whole pages, as the page allocator gives */
	uint64_t entries;	/* logical number of entries */
	uint64_t freed;
	uint64_t touched;	/* == ctl.touch_epoch: already in touched_log */
	uint64_t relabel;	/* == ctl.relabel_epoch: already in relabel_log */
	int64_t lvl;		/* its level, from the descriptors that point at it; -1: none */
	uint64_t iova_base;	/* the IOVA its first entry translates */
	uint64_t labelled;	/* == ctl.label_epoch: already in labelled_log */
};

/* One recorded event (memory misuse or a WARN), consecutive repeats merged into count. */
struct iopgfuzz_event {
	int32_t kind;
	int32_t table;		/* -1: none */
	int64_t first;		/* lowest entry index in the table */
	int64_t last;		/* highest */
	uint64_t count;
	uint64_t pa;		/* for bad pointers: the physical address asked for */
	uintptr_t pc;		/* the instruction that made the access */
	const char *file;	/* WARN: where */
	const char *func;
	const char *cond;
	int32_t line;
	int32_t pad;
};

/*
 * Events the model records at the moment they happen, before anything the C logs in the same
 * call (model/memory.py dma_sync_for_device, free_table): bad cleans and double frees.
 * Python reads them as uint64[n][8] and spells them exactly as the model does.
 */
enum iopgfuzz_pyev {
	IOPGFUZZ_PYEV_OOB_CLEAN = 1,	/* a clean past the table's logical end */
	IOPGFUZZ_PYEV_UAF_CLEAN,	/* a clean of a freed table */
	IOPGFUZZ_PYEV_NO_TABLE_CLEAN,	/* a clean at an address in no table */
	IOPGFUZZ_PYEV_DOUBLE_FREE,
};

struct iopgfuzz_pyevent {
	uint64_t kind;
	int64_t table;
	int64_t site;
	int64_t first;		/* entry index of the clean's start */
	uint64_t nbytes;	/* the clean's size_t */
	uint64_t entries;	/* the table's logical size at that moment */
	uint64_t pa;		/* no-table clean: its address */
	uint64_t pc;		/* the return address in the function that called the DMA API */
};

/* One clean while ctl.log_cleans is set (model/memory.py CleanRecord): uint64[n][6] */
struct iopgfuzz_clean_rec {
	int64_t site;
	int64_t table;
	int64_t first_line;
	uint64_t nlines;
	uint64_t changed_off;	/* its changed entries: changed[off .. off + n) */
	uint64_t changed_n;
};

/* One run of consecutive entries read (the sync walk's footprint) */
struct iopgfuzz_access {
	int32_t table;
	int32_t pad;
	int64_t first;
	int64_t n;
};

/* ctl.news: what happened since Python last looked */
#define IOPGFUZZ_NEWS_CRASH	(1 << 0)	/* ctl.crashed is set */
#define IOPGFUZZ_NEWS_TABLES	(1 << 1)	/* new tables, or sizes of adopted ones */
#define IOPGFUZZ_NEWS_FREED	(1 << 2)
#define IOPGFUZZ_NEWS_CLEANS	(1 << 3)	/* the statistics changed */
#define IOPGFUZZ_NEWS_EVENTS	(1 << 4)	/* C events or model-order events */
#define IOPGFUZZ_NEWS_RECS	(1 << 5)	/* clean records */
#define IOPGFUZZ_NEWS_LABELS	(1 << 6)
#define IOPGFUZZ_NEWS_ALLOC	(1 << 7)	/* the alloc failpoint was hit */
#define IOPGFUZZ_NEWS_UBSAN	(1 << 8)	/* ubsan.c logged a report */

/*
 * What Python reads after every call (and sets, where marked) without calling into C: the
 * first fields of the world, an int64 array (cworld/world.py CTL_*).  Counts of pending
 * records are reset by Python once it has read them.
 */
struct iopgfuzz_ctl {
	int64_t crashed;	/* 1: BUG; 2: budget exhausted; 3: out of memory (a log) */
	int64_t ntables;
	int64_t nevents;	/* C events pending */
	int64_t npyevents;	/* model-order events pending */
	int64_t nfreed;		/* tables freed, pending (freed_log) */
	int64_t cleans;		/* clean calls so far, all sites */
	int64_t nrecs;		/* clean records pending (log_cleans) */
	int64_t nchanged;	/* their changed entries */
	int64_t ntouched;	/* touched_log: allocated, freed or stored to */
	int64_t nrelabel;	/* relabel_log: a table descriptor written or overwritten */
	int64_t touch_epoch;	/* Python bumps each when it empties its log */
	int64_t relabel_epoch;
	int64_t seq;		/* store sequence number (model Memory._seq) */
	int64_t budget;		/* CPU accesses (and edges) left; below 0: exhausted */
	int64_t mbudget;	/* the model's budget (Memory.budget), charged by cleans */
	int64_t mbudget_on;	/* Python: 0 when the model's budget is None */
	int64_t log_cleans;	/* Python: record cleans (Memory.clean_log is not None) */
	int64_t adopted;	/* Python: tables it holds a Table for */
	int64_t entries_stale;	/* dma_map_single changed an adopted table's size */
	int64_t dropped_events;
	int64_t naccesses;
	int64_t dropped_accesses;
	int64_t wild_store;	/* a store outside every table body (reset zeroes all) */
	int64_t mbudget_asked;	/* crashed 2 by the model's budget: the charge that failed */
	int64_t alloc_hits;	/* the alloc failpoint's hits (model Failpoints.hits["alloc"]) */
	int64_t alloc_fail_at;	/* Python: the hit that fails (Failpoints.armed), 0: none */
	int64_t alloc_fired;	/* the hit that failed, once (Python then disarms it) */
	int64_t nlabelled;	/* labelled_log: tables whose level or IOVA base changed */
	int64_t label_epoch;	/* Python bumps it when it empties labelled_log */
	int64_t news;		/* IOPGFUZZ_NEWS_*: what Python has to look at (it clears it) */
	int64_t cap_pyevents;	/* the growable logs' sizes: Python's views follow them */
	int64_t cap_recs;
	int64_t cap_changed;
	int64_t sites;		/* 1 << site: the clean statistics of these sites changed */
	int64_t label_work;	/* entries iopgfuzz_label() has scanned: a count of work, for tests */
	int64_t pad[5];
};

struct iopgfuzz_world {
	struct iopgfuzz_ctl ctl;	/* first: Python's view starts here */

	/* arenas, all indexed from the same offset: bytes (cpu), entries (mem, wseq), lines */
	uint8_t *cpu;
	uint64_t *mem;
	int64_t *wseq;
	uint8_t *dirty;
	int64_t *synced_seq;
	int32_t *va_owner;	/* per 4K of arena: table + 1 inside, -(table + 1) in its guard */
	int32_t *pa_owner;	/* per 4K of physical space above base_pa: table + 1 */
	uint64_t *snap;		/* per entry: the CPU view when last caught up (see catch_up) */
	uint8_t *pend;		/* per line: accessed since last caught up */
	uint64_t *pending;	/* the lines whose pend is set */
	uint64_t npending, cap_pending;
	int pending_overflow;
	uint64_t arena_bytes;
	uint64_t va_used;
	uint64_t resident;	/* arena bytes kept touched across resets (see RESET_KEEP_TOTAL) */
	uint64_t base_pa;
	uint64_t next_pa;
	uint64_t line;
	unsigned int line_shift;	/* log2(line): the access hooks' line of an offset */
	uint64_t page_size;
	int coherent;

	struct iopgfuzz_table *tables;	/* IOPGFUZZ_MAX_TABLES slots */
	int64_t default_entries;	/* entries of a new table before dma_map_single says */

	/* clean statistics per site (model Memory.by_site); lines as 128 bits: a size_t
	 * clean of a negative count asks for ~2^58 lines */
	uint64_t site_calls[IOPGFUZZ_NSITES];
	uint64_t site_lines[IOPGFUZZ_NSITES];
	uint64_t site_lines_hi[IOPGFUZZ_NSITES];

	/* growable logs Python reads after each call */
	struct iopgfuzz_pyevent *pyevents;
	uint64_t cap_pyevents;
	struct iopgfuzz_clean_rec *recs;
	uint64_t cap_recs;
	int64_t *changed;
	uint64_t cap_changed;
	int32_t *freed_log;		/* IOPGFUZZ_MAX_TABLES */
	int32_t *touched_log;		/* IOPGFUZZ_MAX_TABLES */
	int32_t *relabel_log;		/* IOPGFUZZ_MAX_TABLES */

	int context;			/* enum iopgfuzz_ctx of the running entry point */

	/* labelling (iopgfuzz_label) and range walks: the geometry, once Python has labelled
	 * the PGD */
	int label_on;
	uint32_t pgd;
	int64_t start_level;
	int64_t pgd_bits;
	int64_t bits_per_level;
	uint64_t granule;
	uint64_t ias, oas;		/* the SMMU walk's (model/smmu.py) */
	int ttbr1, mali;
	int32_t *labelled_log;		/* IOPGFUZZ_MAX_TABLES */
	int32_t *label_stack;		/* growable */
	uint64_t cap_label_stack;

	struct iopgfuzz_event events[IOPGFUZZ_LOG_MAX];
	struct iopgfuzz_access accesses[IOPGFUZZ_LOG_MAX];
	int log_accesses;

	const char *warned_once[256];	/* WARN_ONCE sites that fired (file:line as pointers) */
	int32_t warned_once_line[256];
	uint32_t nwarned_once;

	uint64_t tlb_flush_walk, tlb_add_page, tlb_flush_all;

	/* BUG_ON and exhaustion unwind to the entry point */
	jmp_buf jmp;
	int armed;
	const char *bug_file;
	const char *bug_func;
	int bug_line;
};

extern struct iopgfuzz_world *iopgfuzz_cur;

struct iopgfuzz_world *iopgfuzz_world_new(uint64_t base_pa, uint64_t line, uint64_t page_size,
					  int coherent, int64_t budget);
void iopgfuzz_world_free(struct iopgfuzz_world *w);
int iopgfuzz_world_reset(struct iopgfuzz_world *w, uint64_t base_pa, uint64_t page_size,
			 int64_t budget);
void iopgfuzz_unwind(int why) __attribute__((noreturn));
void iopgfuzz_catch_up(struct iopgfuzz_world *w);
void iopgfuzz_label(struct iopgfuzz_world *w);
int32_t iopgfuzz_table_of_va(struct iopgfuzz_world *w, const void *va, int *guard);
int iopgfuzz_first_divergence(struct iopgfuzz_world *w, uint64_t lo, uint64_t hi,
			      uint64_t hw_mask, uint64_t out[4]);
int iopgfuzz_smmu_walk(struct iopgfuzz_world *w, uint64_t iova, int use_mem, uint64_t hw_mask,
		       uint64_t steps[][4], uint64_t out[3]);
int64_t iopgfuzz_evict(struct iopgfuzz_world *w, uint64_t iova, int all, uint64_t hw_mask);

#endif
