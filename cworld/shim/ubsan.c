// SPDX-License-Identifier: GPL-2.0
/*
 * Handlers of the undefined-behaviour sanitizer, as lib/ubsan.c provides them to a kernel built
 * with CONFIG_UBSAN: the compiler (gcc or clang, -fsanitize=shift,bounds,...) calls one before
 * an operation whose result the C standard leaves undefined, and the kernel goes on.  Here
 * each report is logged with its check, source line, operands and the return addresses on the
 * stack; the world turns the log into `ubsan` events after each call (one world runs at a
 * time, so the log is the process's).  Compiled without instrumentation, like runtime.c.
 */
#include <stdint.h>
#include <string.h>

#include "runtime.h"

#define UBSAN_LOG_MAX	256
#define UBSAN_PCS	6

struct source_location {
	const char *file;
	uint32_t line;
	uint32_t column;
};

/* Every handler's data starts with the source location */
struct ubsan_data {
	struct source_location loc;
};

struct iopgfuzz_ubsan {
	const char *check;
	const char *file;
	uint32_t line;
	uint32_t npcs;
	uint64_t a, b;
	uintptr_t pcs[UBSAN_PCS];
};

static struct iopgfuzz_ubsan ubsan_log[UBSAN_LOG_MAX];
static uint32_t ubsan_n, ubsan_dropped;
static uintptr_t ubsan_text_lo, ubsan_text_hi;

void iopgfuzz_ubsan_set_text(uintptr_t lo, uintptr_t hi)
{
	ubsan_text_lo = lo;
	ubsan_text_hi = hi;
}

uint32_t iopgfuzz_ubsan_take(struct iopgfuzz_ubsan **log, uint32_t *dropped)
{
	uint32_t n = ubsan_n;

	*log = ubsan_log;
	*dropped = ubsan_dropped;
	ubsan_n = 0;
	ubsan_dropped = 0;
	return n;
}

/* Inlined into each handler, so that the handler's own frame is the first one walked. */
static inline __attribute__((always_inline)) void report(const char *check, const void *data,
							 uint64_t a, uint64_t b)
{
	const struct ubsan_data *d = data;
	struct iopgfuzz_ubsan *r;
	uintptr_t *fp = __builtin_frame_address(0);
	uint32_t i;

	for (i = 0; i < ubsan_n; i++)		/* one report per site and call */
		if (ubsan_log[i].check == check && ubsan_log[i].file == d->loc.file &&
		    ubsan_log[i].line == d->loc.line)
			return;
	if (ubsan_n == UBSAN_LOG_MAX) {
		ubsan_dropped++;
		return;
	}
	if (iopgfuzz_cur)
		iopgfuzz_cur->ctl.news |= IOPGFUZZ_NEWS_UBSAN;
	r = &ubsan_log[ubsan_n++];
	memset(r, 0, sizeof(*r));
	r->check = check;
	r->file = d->loc.file;
	r->line = d->loc.line;
	r->a = a;
	r->b = b;
	/* the handler's frame: its return address is in the kernel code that hit the check */
	while (r->npcs < UBSAN_PCS && fp) {
		uintptr_t ra = fp[1];

		if (ra < ubsan_text_lo || ra >= ubsan_text_hi)
			break;
		r->pcs[r->npcs++] = ra;
		fp = (uintptr_t *)fp[0];
	}
}

#define HANDLER2(name, check)							\
void __ubsan_handle_##name(void *data, void *lhs, void *rhs)			\
{ report(check, data, (uint64_t)(uintptr_t)lhs, (uint64_t)(uintptr_t)rhs); }	\
void __ubsan_handle_##name##_abort(void *data, void *lhs, void *rhs)		\
{ report(check, data, (uint64_t)(uintptr_t)lhs, (uint64_t)(uintptr_t)rhs); }
#define HANDLER1(name, check)							\
void __ubsan_handle_##name(void *data, void *val)				\
{ report(check, data, (uint64_t)(uintptr_t)val, 0); }				\
void __ubsan_handle_##name##_abort(void *data, void *val)			\
{ report(check, data, (uint64_t)(uintptr_t)val, 0); }
#define HANDLER0(name, check)							\
void __ubsan_handle_##name(void *data)						\
{ report(check, data, 0, 0); }							\
void __ubsan_handle_##name##_abort(void *data)					\
{ report(check, data, 0, 0); }

HANDLER2(shift_out_of_bounds, "shift-out-of-bounds")
HANDLER2(add_overflow, "signed-integer-overflow")
HANDLER2(sub_overflow, "signed-integer-overflow")
HANDLER2(mul_overflow, "signed-integer-overflow")
HANDLER2(divrem_overflow, "integer-divide-by-zero")
HANDLER2(pointer_overflow, "pointer-overflow")

HANDLER1(negate_overflow, "signed-integer-overflow")
HANDLER1(type_mismatch_v1, "type-mismatch")
HANDLER1(out_of_bounds, "array-index-out-of-bounds")
HANDLER1(load_invalid_value, "invalid-value")
HANDLER1(vla_bound_not_positive, "vla-bound")
HANDLER1(invalid_builtin, "invalid-builtin")
HANDLER0(nonnull_arg, "nonnull-attribute")
HANDLER0(nonnull_return_v1, "returns-nonnull-attribute")

void __ubsan_handle_builtin_unreachable(void *data)
{
	report("unreachable", data, 0, 0);
}

void __ubsan_handle_missing_return(void *data)
{
	report("missing-return", data, 0, 0);
}
