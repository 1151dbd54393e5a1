// SPDX-License-Identifier: GPL-2.0
/*
 * Edge coverage of the kernel C, and the work budget's edge counter.
 *
 * The kernel C is compiled with -fsanitize-coverage=trace-pc (gcc and clang alike), so every
 * basic block calls __sanitizer_cov_trace_pc() first.  Two uses:
 *
 *  - coverage: each (previous block, this block) pair bumps one of 64K 8-bit counters, as
 *    AFL counts edges.  A campaign registers the array with Atheris's libFuzzer
 *    (__sanitizer_cov_8bit_counters_init), so the fuzzer is guided by the C's own edges and not
 *    only by the model's Python;
 *  - the budget: the access hooks alone cannot bound a loop, since the compiler drops the check
 *    of a load that repeats one already checked, and a patch that spins on one entry
 *    (`while (READ_ONCE(*ptep));`) would call no hook at all.
 *
 * Compiled without instrumentation, like runtime.c.
 */
#include "runtime.h"

#define COV_BITS	16

static uint8_t cov_counters[1 << COV_BITS];
static uintptr_t cov_prev;

void iopgfuzz_cov_counters(uint8_t **start, uint8_t **end)
{
	*start = cov_counters;
	*end = cov_counters + sizeof(cov_counters);
}

void __sanitizer_cov_trace_pc(void)
{
	struct iopgfuzz_world *w = iopgfuzz_cur;
	uintptr_t pc = (uintptr_t)__builtin_return_address(0);

	cov_counters[((pc >> 1) ^ cov_prev) & ((1 << COV_BITS) - 1)]++;
	cov_prev = pc >> 2;
	if (w && w->armed && --w->ctl.budget < 0)
		iopgfuzz_unwind(2);
}
