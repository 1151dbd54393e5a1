// SPDX-License-Identifier: GPL-2.0
/*
 * iopgfuzz's KUnit stand-in and runner: runs the KUnit suites linked into it (a test file of
 * drivers/iommu/io-pgtable-arm-selftests.c, see cworld/kunit.py) against the userspace build
 * of the kernel's io-pgtable-arm.c, and prints the results in KTAP, as the kernel does.
 *
 * Exit status: 0 every case passed (or was skipped, as KUnit counts them), 1 a case failed.
 * Options: --line N (cache line, bytes; default 64), --page-size N (default 4096),
 * --table-base PA (the first page table's physical address; default the model's).
 *
 * Each case gets a fresh runtime world (cworld/shim/runtime.c): the page allocator, the
 * access hooks and the runtime's own cache model work as under Python.  A BUG_ON in the kernel
 * code, or the runtime's work budget running out, ends the case as failed (a kernel oops in a
 * KUnit case fails that case too).  WARNs do not fail a case, as in the kernel: they are
 * printed with their site and count, as the kernel log would show their backtraces.
 *
 * The DMA API: a device with dma_map_ops (set_dma_ops()) gets its ops called, in the order
 * kernel/dma/mapping.c calls them; a device without, or with ops lacking the member, gets the
 * direct path: the runtime's clean of whole cache lines.  Written for iopgfuzz from the kernel's
 * documented interfaces, not copied from the kernel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
/* <string.h> declares ffs(), which the shim's <linux/bitops.h> defines for the kernel code */
#define ffs iopgfuzz_libc_ffs
#include <string.h>
#undef ffs

#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/dma-map-ops.h>

#include "runtime.h"

#define MAX_SUITES	16

/* glue.c */
uint32_t iopgfuzz_take_events(struct iopgfuzz_world *w, struct iopgfuzz_event **events,
			      uint32_t *dropped);

struct kunit_resource {
	struct kunit_resource *next;
	void *ptr;
	int is_device;
};

struct kunit {
	const char *name;
	int failed;
	int skipped;
	char skip_reason[256];
	jmp_buf abort;
	struct kunit_resource *resources;
};

static struct kunit_suite *suites[MAX_SUITES];
static int nsuites;
static struct kunit *current_test;

void __kunit_register_suite(struct kunit_suite *suite)
{
	if (nsuites == MAX_SUITES) {
		fprintf(stderr, "iopgfuzz-kunit: more than %d suites\n", MAX_SUITES);
		exit(2);
	}
	suites[nsuites++] = suite;
}

static void __attribute__((noreturn)) kunit_abort(struct kunit *test)
{
	longjmp(test->abort, 1);
}

static void vreport(struct kunit *test, const char *file, int line, int assert,
		    const char *fmt, va_list ap)
{
	char msg[4096];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	printf("    # %s: %s FAILED at %s:%d\n", test->name,
	       assert ? "ASSERTION" : "EXPECTATION", file, line);
	for (char *l = strtok(msg, "\n"); l; l = strtok(NULL, "\n"))
		printf("    %s\n", l);
	test->failed = 1;
}

void __kunit_fail(struct kunit *test, const char *file, int line, int assert,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(test, file, line, assert, fmt, ap);
	va_end(ap);
	if (assert)
		kunit_abort(test);
}

void __kunit_binary_failed(struct kunit *test, const char *file, int line, int assert,
			   const char *left, const char *op, const char *right,
			   long long lval, long long rval)
{
	__kunit_fail(test, file, line, assert,
	       "Expected %s %s %s, but\n    %s == %lld (%#llx)\n    %s == %lld (%#llx)",
	       left, op, right, left, lval, (unsigned long long)lval, right, rval,
	       (unsigned long long)rval);
}

void __kunit_ptr_failed(struct kunit *test, const char *file, int line, int assert,
			const char *left, const char *op, const char *right,
			const void *lval, const void *rval)
{
	__kunit_fail(test, file, line, assert, "Expected %s %s %s, but\n    %s == %p\n    %s == %p",
	       left, op, right, left, lval, right, rval);
}

void __kunit_skip(struct kunit *test, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(test->skip_reason, sizeof(test->skip_reason), fmt, ap);
	va_end(ap);
	test->skipped = 1;
	kunit_abort(test);
}

void __kunit_log(struct kunit *test, const char *level, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("    # %s: %s%s%s", test->name, strcmp(level, "info") ? level : "",
	       strcmp(level, "info") ? ": " : "", msg);
	if (!*msg || msg[strlen(msg) - 1] != '\n')
		printf("\n");
}

static int add_resource(struct kunit *test, void *ptr, int is_device)
{
	struct kunit_resource *r = calloc(1, sizeof(*r));

	if (!r)
		return -1;
	r->ptr = ptr;
	r->is_device = is_device;
	r->next = test->resources;
	test->resources = r;
	return 0;
}

void *kunit_kmalloc(struct kunit *test, size_t size, gfp_t gfp)
{
	void *p = (gfp & __GFP_ZERO) ? calloc(1, size ? size : 1) : malloc(size ? size : 1);

	if (p && add_resource(test, p, 0)) {
		free(p);
		return NULL;
	}
	return p;
}

void kunit_kfree(struct kunit *test, const void *ptr)
{
	for (struct kunit_resource *r = test->resources; r; r = r->next)
		if (r->ptr == ptr) {
			free(r->ptr);
			r->ptr = NULL;
			return;
		}
	__kunit_fail(test, __FILE__, __LINE__, 0, "kunit_kfree(%p): not allocated by this test", ptr);
}

struct device *kunit_device_register(struct kunit *test, const char *name)
{
	struct device *dev = calloc(1, sizeof(*dev));

	if (!dev || add_resource(test, dev, 1)) {
		free(dev);
		return ERR_PTR(-ENOMEM);
	}
	dev->numa_node = -1;
	dev->init_name = name;
	return dev;
}

static void release_resources(struct kunit *test)
{
	while (test->resources) {
		struct kunit_resource *r = test->resources;

		test->resources = r->next;
		free(r->ptr);
		free(r);
	}
}

/* -- the DMA API, as kernel/dma/mapping.c dispatches it ------------------------------------- */

/* A WARN of the DMA layer itself (the kernel's dma_map_page_attrs WARN_ON_ONCEs) */
static void dma_warn(const char *what)
{
	iopgfuzz_warn("kernel/dma/mapping.c", 0, "dma_map_page_attrs", what, 1);
}

dma_addr_t iopgfuzz_kunit_dma_map_single(struct device *dev, void *ptr, size_t size, int dir)
{
	const struct dma_map_ops *ops = dev ? get_dma_ops(dev) : NULL;
	dma_addr_t direct;

	if (dev && !dev->dma_mask) {
		dma_warn("!dev->dma_mask");
		return DMA_MAPPING_ERROR;
	}
	direct = iopgfuzz_dma_map_single(ptr, size);	/* the runtime's model (it only watches) */
	if (ops && ops->map_phys)
		return ops->map_phys(dev, virt_to_phys(ptr), size, dir, 0);
	if (ops && ops->map_page)
		return ops->map_page(dev, virt_to_page(ptr), offset_in_page(ptr), size, dir, 0);
	return direct;
}

void iopgfuzz_kunit_dma_unmap_single(struct device *dev, dma_addr_t addr, size_t size, int dir)
{
	const struct dma_map_ops *ops = dev ? get_dma_ops(dev) : NULL;

	if (ops && ops->unmap_phys)
		ops->unmap_phys(dev, addr, size, dir, 0);
	else if (ops && ops->unmap_page)
		ops->unmap_page(dev, addr, size, dir, 0);
}

void iopgfuzz_kunit_dma_sync_for_device(struct device *dev, dma_addr_t addr, size_t size,
					int dir)
{
	const struct dma_map_ops *ops = dev ? get_dma_ops(dev) : NULL;

	iopgfuzz_dma_sync_for_device(addr, size);
	if (ops && ops->sync_single_for_device)
		ops->sync_single_for_device(dev, addr, size, dir);
}

int iopgfuzz_kunit_dma_set_mask(struct device *dev, u64 mask)
{
	const struct dma_map_ops *ops = get_dma_ops(dev);

	if (!dev->dma_mask)
		return -EIO;
	if (ops && ops->dma_supported && !ops->dma_supported(dev, mask))
		return -EIO;
	*dev->dma_mask = mask;
	dev->coherent_dma_mask = mask;
	return 0;
}

/* -- the runner ------------------------------------------------------------------------------- */

static unsigned long long opt_line = 64, opt_page_size = 4096, opt_table_base = 0x400000000ULL;

/* The WARNs of this case, merged by site, as a kernel log would show their backtraces */
static void print_warns(struct kunit *test, struct iopgfuzz_world *w)
{
	struct iopgfuzz_event *ev;
	uint32_t dropped, n = iopgfuzz_take_events(w, &ev, &dropped);
	struct { const char *file, *func, *cond; int line; uint64_t count; } sites[64];
	int nsites = 0;

	for (uint32_t i = 0; i < n; i++) {
		int j;

		if (ev[i].kind != IOPGFUZZ_WARN)
			continue;
		for (j = 0; j < nsites; j++)
			if (sites[j].line == ev[i].line && !strcmp(sites[j].file, ev[i].file))
				break;
		if (j == nsites) {
			if (nsites == 64)
				continue;
			sites[nsites].file = ev[i].file;
			sites[nsites].func = ev[i].func;
			sites[nsites].cond = ev[i].cond;
			sites[nsites].line = ev[i].line;
			sites[nsites++].count = 0;
		}
		sites[j].count += ev[i].count;
	}
	for (int j = 0; j < nsites; j++) {
		const char *base = strrchr(sites[j].file, '/');

		printf("    # %s: WARNING: %s:%d %s: WARN_ON(%s), %llu time%s (not a KUnit "
		       "failure)\n", test->name, base ? base + 1 : sites[j].file, sites[j].line,
		       sites[j].func, sites[j].cond, (unsigned long long)sites[j].count,
		       sites[j].count == 1 ? "" : "s");
	}
	if (dropped)
		printf("    # %s: (%u more runtime events not shown)\n", test->name, dropped);
}

static int run_case(struct kunit_case *c, int index)
{
	struct kunit test = { .name = c->name };
	struct iopgfuzz_world *w;

	w = iopgfuzz_world_new(opt_table_base, opt_line, opt_page_size, 0, (int64_t)1 << 62);
	if (!w) {
		fprintf(stderr, "iopgfuzz-kunit: cannot create a runtime world\n");
		exit(2);
	}
	iopgfuzz_cur = w;
	iopgfuzz_page_shift = (unsigned int)__builtin_ctzll(opt_page_size);
	current_test = &test;
	if (setjmp(test.abort) == 0) {
		if (setjmp(w->jmp) == 0) {
			w->armed = 1;
			c->run_case(&test);
		} else if (w->ctl.crashed == 1) {
			__kunit_fail(&test, w->bug_file ? w->bug_file : "?", w->bug_line, 0,
			       "kernel BUG at %s:%d (%s): the case ends here",
			       w->bug_file ? w->bug_file : "?", w->bug_line,
			       w->bug_func ? w->bug_func : "?");
		} else {
			__kunit_fail(&test, __FILE__, __LINE__, 0, "the runtime stopped the case "
			       "(status %d: %s)", (int)w->ctl.crashed, w->ctl.crashed == 2 ?
			       "work budget exhausted, an endless loop?" : "out of memory");
		}
	}
	w->armed = 0;
	print_warns(&test, w);
	release_resources(&test);
	current_test = NULL;
	iopgfuzz_cur = NULL;
	iopgfuzz_world_free(w);
	if (test.skipped) {
		printf("    ok %d %s # SKIP %s\n", index, c->name, test.skip_reason);
		return 0;
	}
	printf("    %s %d %s\n", test.failed ? "not ok" : "ok", index, c->name);
	return test.failed;
}

static unsigned long long parse_number(const char *opt, const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (!*s || *end) {
		fprintf(stderr, "iopgfuzz-kunit: %s: not a number: %s\n", opt, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	int failed_suites = 0;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--line"))
			opt_line = parse_number(argv[i], argv[i + 1]), i++;
		else if (i + 1 < argc && !strcmp(argv[i], "--page-size"))
			opt_page_size = parse_number(argv[i], argv[i + 1]), i++;
		else if (i + 1 < argc && !strcmp(argv[i], "--table-base"))
			opt_table_base = parse_number(argv[i], argv[i + 1]), i++;
		else {
			fprintf(stderr, "usage: %s [--line N] [--page-size N] [--table-base PA]\n",
				argv[0]);
			return 2;
		}
	}
	if (!opt_line || opt_line & (opt_line - 1) || !opt_page_size ||
	    opt_page_size & (opt_page_size - 1)) {
		fprintf(stderr, "iopgfuzz-kunit: --line and --page-size must be powers of two\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("KTAP version 1\n1..%d\n", nsuites);
	for (int s = 0; s < nsuites; s++) {
		struct kunit_case *c;
		int n = 0, failed = 0;

		for (c = suites[s]->test_cases; c->run_case; c++)
			n++;
		printf("    KTAP version 1\n    # Subtest: %s\n    1..%d\n", suites[s]->name, n);
		n = 0;
		for (c = suites[s]->test_cases; c->run_case; c++)
			failed |= run_case(c, ++n);
		printf("%s %d %s\n", failed ? "not ok" : "ok", s + 1, suites[s]->name);
		failed_suites += failed;
	}
	return failed_suites ? 1 : 0;
}
