/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iopgfuzz's stand-in for <kunit/test.h>: enough of KUnit to run a test case of
 * drivers/iommu/io-pgtable-arm-selftests.c in userspace (cworld/kunit/kunit.c is the runner).
 * Written for iopgfuzz from the documented KUnit interface, not copied from the kernel.
 *
 * As in the kernel: a failed EXPECT marks the case failed and goes on, a failed ASSERT also
 * ends the case, kunit_skip() ends it as skipped, kunit_kzalloc() memory and devices from
 * kunit_device_register() are released when the case ends.  Both sides of a binary assertion
 * are evaluated once, into copies of their own types.
 * Deviations: failure messages are shorter than the kernel's; no parameterised cases, no
 * suite init/exit, no kunit_add_action(); a case runs in the runner's thread (a fault kills
 * the runner, which `python -m fuzz kunit` reports as a failure).
 */
#ifndef _IOPGFUZZ_KUNIT_TEST_H
#define _IOPGFUZZ_KUNIT_TEST_H

#include <linux/err.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/types.h>

struct kunit;

struct kunit_case {
	void (*run_case)(struct kunit *test);
	const char *name;
};

struct kunit_suite {
	const char name[256];
	struct kunit_case *test_cases;
};

void __kunit_register_suite(struct kunit_suite *suite);

#define KUNIT_CASE(test_name)	{ .run_case = test_name, .name = #test_name }

#define kunit_test_suite(suite)						\
	static void __attribute__((constructor))			\
	__iopgfuzz_kunit_register_##suite(void)				\
	{								\
		__kunit_register_suite(&(suite));			\
	}

void __kunit_fail(struct kunit *test, const char *file, int line, int assert,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void __kunit_binary_failed(struct kunit *test, const char *file, int line, int assert,
			   const char *left, const char *op, const char *right,
			   long long lval, long long rval);
void __kunit_ptr_failed(struct kunit *test, const char *file, int line, int assert,
			const char *left, const char *op, const char *right,
			const void *lval, const void *rval);
void __kunit_skip(struct kunit *test, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
void __kunit_log(struct kunit *test, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void *kunit_kmalloc(struct kunit *test, size_t size, gfp_t gfp);
void kunit_kfree(struct kunit *test, const void *ptr);

static inline void *kunit_kzalloc(struct kunit *test, size_t size, gfp_t gfp)
{
	return kunit_kmalloc(test, size, gfp | __GFP_ZERO);
}

#define KUNIT_FAIL(test, fmt, ...)					\
	__kunit_fail(test, __FILE__, __LINE__, 0, fmt, ##__VA_ARGS__)
#define kunit_skip(test, fmt, ...)	__kunit_skip(test, fmt, ##__VA_ARGS__)
#define kunit_info(test, fmt, ...)	__kunit_log(test, "info", fmt, ##__VA_ARGS__)
#define kunit_warn(test, fmt, ...)	__kunit_log(test, "warn", fmt, ##__VA_ARGS__)
#define kunit_err(test, fmt, ...)	__kunit_log(test, "err", fmt, ##__VA_ARGS__)

#define __KUNIT_UNARY(test, assert, cond, expected)			\
do {									\
	if (!!(cond) != !!(expected))					\
		__kunit_fail(test, __FILE__, __LINE__, assert,		\
			     "Expected %s to be %s", #cond,		\
			     (expected) ? "true" : "false");		\
} while (0)

#define __KUNIT_BINARY(test, assert, left, op, right)			\
do {									\
	const typeof(left) __left = (left);				\
	const typeof(right) __right = (right);				\
	if (!(__left op __right))					\
		__kunit_binary_failed(test, __FILE__, __LINE__, assert,	\
				      #left, #op, #right,		\
				      (long long)__left, (long long)__right); \
} while (0)

#define __KUNIT_PTR(test, assert, left, op, right)			\
do {									\
	const void *__left = (left);					\
	const void *__right = (right);					\
	if (!(__left op __right))					\
		__kunit_ptr_failed(test, __FILE__, __LINE__, assert,	\
				   #left, #op, #right, __left, __right); \
} while (0)

#define __KUNIT_NOT_ERR_OR_NULL(test, assert, ptr)			\
do {									\
	const void *__ptr = (ptr);					\
	if (IS_ERR_OR_NULL(__ptr))					\
		__kunit_fail(test, __FILE__, __LINE__, assert,		\
			     "Expected %s is not null and not error, but is %p", \
			     #ptr, __ptr);				\
} while (0)

#define KUNIT_EXPECT_TRUE(test, c)	__KUNIT_UNARY(test, 0, c, true)
#define KUNIT_EXPECT_FALSE(test, c)	__KUNIT_UNARY(test, 0, c, false)
#define KUNIT_ASSERT_TRUE(test, c)	__KUNIT_UNARY(test, 1, c, true)
#define KUNIT_ASSERT_FALSE(test, c)	__KUNIT_UNARY(test, 1, c, false)
#define KUNIT_EXPECT_EQ(test, l, r)	__KUNIT_BINARY(test, 0, l, ==, r)
#define KUNIT_EXPECT_NE(test, l, r)	__KUNIT_BINARY(test, 0, l, !=, r)
#define KUNIT_ASSERT_EQ(test, l, r)	__KUNIT_BINARY(test, 1, l, ==, r)
#define KUNIT_ASSERT_NE(test, l, r)	__KUNIT_BINARY(test, 1, l, !=, r)
#define KUNIT_ASSERT_NE_MSG(test, l, r, fmt, ...)				\
do {									\
	const typeof(l) __l = (l);					\
	const typeof(r) __r = (r);					\
	if (__l == __r)							\
		__kunit_fail(test, __FILE__, __LINE__, 1,		\
			     "Expected %s != %s: " fmt, #l, #r, ##__VA_ARGS__); \
} while (0)
#define KUNIT_EXPECT_LT(test, l, r)	__KUNIT_BINARY(test, 0, l, <, r)
#define KUNIT_ASSERT_LT(test, l, r)	__KUNIT_BINARY(test, 1, l, <, r)
#define KUNIT_EXPECT_PTR_EQ(test, l, r)	__KUNIT_PTR(test, 0, l, ==, r)
#define KUNIT_ASSERT_PTR_EQ(test, l, r)	__KUNIT_PTR(test, 1, l, ==, r)
#define KUNIT_EXPECT_NOT_NULL(test, p)	__KUNIT_PTR(test, 0, p, !=, NULL)
#define KUNIT_ASSERT_NOT_NULL(test, p)	__KUNIT_PTR(test, 1, p, !=, NULL)
#define KUNIT_EXPECT_NOT_ERR_OR_NULL(test, p)	__KUNIT_NOT_ERR_OR_NULL(test, 0, p)
#define KUNIT_ASSERT_NOT_ERR_OR_NULL(test, p)	__KUNIT_NOT_ERR_OR_NULL(test, 1, p)

#endif
