/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The state of one C world, shared by runtime.c (the hooks) and glue.c (the entry points).
 * Python never sees this struct: it asks through the iopgfuzz_* functions of glue.c, and
 * reads the arenas through NumPy views of the pointers those functions hand out.
 */
#ifndef IOPGFUZZ_RUNTIME_H
#define IOPGFUZZ_RUNTIME_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#define IOPGFUZZ_MAX_PCS	6
#define IOPGFUZZ_LOG_MAX	16384

/* Event kinds, as model/events.py names them */
enum iopgfuzz_kind {
	IOPGFUZZ_OOB_READ = 1,
	IOPGFUZZ_OOB_WRITE,
	IOPGFUZZ_UAF_READ,
	IOPGFUZZ_UAF_WRITE,
	IOPGFUZZ_BAD_POINTER,
	IOPGFUZZ_WARN,
};

/* One page-table allocation.  Index 0 is the wild table (where bad pointers land). */
struct iopgfuzz_table {
	uint64_t pa;
	uint64_t va_off;	/* byte offset of the table in the arena */
	uint64_t bytes;		/* its footprint: whole pages, as the page allocator gives */
	uint64_t entries;	/* logical number of entries */
	uint32_t freed;
	uint32_t touched;	/* stored to (or allocated, freed) since Python last looked */
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

/* One run of consecutive entries read (the sync walk's footprint) */
struct iopgfuzz_access {
	int32_t table;
	int32_t pad;
	int64_t first;
	int64_t n;
};

/* Callbacks into Python.  They never unwind through C: an error there sets `aborted`. */
typedef int (*iopgfuzz_alloc_cb)(uint64_t bytes, uint32_t gfp);
typedef void (*iopgfuzz_clean_cb)(int32_t table, int64_t offset, uint64_t size, int32_t is_map,
				  const uintptr_t *pcs, int32_t npcs);
typedef void (*iopgfuzz_free_cb)(int32_t table);

struct iopgfuzz_world {
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
	uint64_t base_pa;
	uint64_t next_pa;
	uint64_t line;
	uint64_t page_size;
	int coherent;

	struct iopgfuzz_table *tables;
	uint32_t ntables, cap_tables;
	int64_t default_entries;	/* entries of a new table before dma_map_single says */

	int64_t seq;			/* store sequence number (model Memory._seq) */
	int64_t budget;			/* CPU accesses left; below 0: exhausted */

	struct iopgfuzz_event events[IOPGFUZZ_LOG_MAX];
	uint32_t nevents, dropped_events;
	struct iopgfuzz_access accesses[IOPGFUZZ_LOG_MAX];
	uint32_t naccesses, dropped_accesses;
	int log_accesses;

	const char *warned_once[256];	/* WARN_ONCE sites that fired (file:line as pointers) */
	int32_t warned_once_line[256];
	uint32_t nwarned_once;

	uint64_t tlb_flush_walk, tlb_add_page, tlb_flush_all;

	/* BUG_ON and aborts unwind to the entry point */
	jmp_buf jmp;
	int armed;
	int crashed;		/* 1: BUG; 2: budget exhausted; 3: a callback failed */
	const char *bug_file;
	const char *bug_func;
	int bug_line;
	int aborted;

	iopgfuzz_alloc_cb alloc_cb;
	iopgfuzz_clean_cb clean_cb;
	iopgfuzz_free_cb free_cb;

	uintptr_t text_lo, text_hi;	/* this library's code, for the frame walk */
};

extern struct iopgfuzz_world *iopgfuzz_cur;

struct iopgfuzz_world *iopgfuzz_world_new(uint64_t base_pa, uint64_t line, uint64_t page_size,
					  int coherent, int64_t budget);
void iopgfuzz_world_free(struct iopgfuzz_world *w);
void iopgfuzz_unwind(int why) __attribute__((noreturn));
void iopgfuzz_catch_up(struct iopgfuzz_world *w);

#endif
