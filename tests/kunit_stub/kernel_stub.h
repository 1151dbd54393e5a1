/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kernel_stub.h: a stand-in for the kernel declarations that the output of
 * `python -m fuzz export FILE --format kunit` uses, so that tests/test_kunit_compiles.py can
 * run `gcc -std=gnu11 -fsyntax-only -Wall -Wextra -Werror -nostdinc` on it.
 *
 * FOR SYNTAX AND TYPE CHECKING ONLY.  Written by hand for iopgfuzz (not copied from the
 * kernel); each block names the kernel header it stands in for.  The types and signatures follow
 * the kernel's for a 64-bit (LP64) kernel such as arm64's: checked against stored copies of
 * torvalds/linux (include/kunit/test.h, kunit/device.h, linux/io-pgtable.h, linux/sizes.h and
 * the KUnit version of drivers/iommu/io-pgtable-arm-selftests.c, not all of them current) and,
 * for what those copies predate (map_pages/unmap_pages, IO_PGTABLE_QUIRK_NO_WARN, the larger
 * SZ_* names), against the patches that added them; PATCH 1/2's additions are as posted
 * ("[PATCH 1/2] iommu/io-pgtable-arm: Implement .iotlb_sync_map callback", 27 Sep 2025).
 * Nothing here links or runs.  Deviations from the kernel are marked "Deviation:".
 *
 * What compiling against it proves: every identifier the export uses exists here (with the
 * kernel's spelling and type), every call has the right number and types of arguments, every
 * KUNIT_EXPECT_EQ compares values of the same signedness, and the body has no unused variable or
 * other -Wall -Wextra warning.  What it does not prove: that the real headers of a given kernel
 * version still agree, that the test builds in a kernel tree (Kconfig, the selftests file's own
 * code), or that it passes.
 */
#ifndef IOPGFUZZ_KERNEL_STUB_H
#define IOPGFUZZ_KERNEL_STUB_H

/* --- <linux/types.h>, <linux/stddef.h>, <asm-generic/int-ll64.h> --------------------------- */
/* Deviation: size_t comes from the compiler (__SIZE_TYPE__, unsigned long on LP64 hosts), as
 * the kernel's __kernel_size_t is unsigned long on 64-bit architectures. */
typedef __SIZE_TYPE__ size_t;
typedef _Bool bool;
enum { false = 0, true = 1 };
#define NULL ((void *)0)
typedef unsigned long long u64;
typedef u64 phys_addr_t;		/* CONFIG_PHYS_ADDR_T_64BIT, as on arm64 */
/* Deviation: no __bitwise (a sparse annotation; gcc ignores it). */
typedef unsigned int gfp_t;

/* --- <linux/bits.h> ---------------------------------------------------------------------- */
#define BIT(nr)			(1UL << (nr))

/* --- <linux/gfp_types.h> ----------------------------------------------------------------- */
/* Deviation: one opaque value instead of __GFP_RECLAIM | __GFP_IO | __GFP_FS. */
#define GFP_KERNEL		((gfp_t)0xcc0u)

/* --- <uapi/asm-generic/errno-base.h>, <uapi/asm-generic/errno.h> ------------------------- */
/* Every errno name fuzz/export.py can print (model.cint.ERRNO). */
#define EPERM			1
#define ENOENT			2
#define EIO			5
#define ENOMEM			12
#define EFAULT			14
#define EEXIST			17
#define ENODEV			19
#define EINVAL			22
#define ERANGE			34
#define EOPNOTSUPP		95
#define ETIMEDOUT		110

/* --- <linux/err.h> ----------------------------------------------------------------------- */
#define MAX_ERRNO		4095
#define IS_ERR_VALUE(x)		((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)
/* Deviation: no __must_check / __force. */
static inline bool IS_ERR(const void *ptr)
{
	return IS_ERR_VALUE((unsigned long)ptr);
}

/* --- <linux/sizes.h> ---------------------------------------------------------------------- */
/* Every power of two from SZ_1 to SZ_64T, as export.sz_name() assumes.  Older kernels stop at
 * SZ_32G, SZ_1T, SZ_64T: SZ_64G..SZ_512G and SZ_2T..SZ_32T came with a 2023 patch merged
 * alongside the PowerVR driver (out-of-tree code backporting that driver defines SZ_128G itself
 * for kernels up to 6.6), so kernels of the patch under test (2025) have them.  An export for a
 * kernel older than about 6.8 may need those names spelled as numbers. */
/* The kernel's types: int up to SZ_1G, unsigned int for SZ_2G (0x80000000 does not fit an
 * int), unsigned long long (_AC(x, ULL)) from SZ_4G on.  The export relies on these. */
#define SZ_1			0x00000001
#define SZ_2			0x00000002
#define SZ_4			0x00000004
#define SZ_8			0x00000008
#define SZ_16			0x00000010
#define SZ_32			0x00000020
#define SZ_64			0x00000040
#define SZ_128			0x00000080
#define SZ_256			0x00000100
#define SZ_512			0x00000200
#define SZ_1K			0x00000400
#define SZ_2K			0x00000800
#define SZ_4K			0x00001000
#define SZ_8K			0x00002000
#define SZ_16K			0x00004000
#define SZ_32K			0x00008000
#define SZ_64K			0x00010000
#define SZ_128K			0x00020000
#define SZ_256K			0x00040000
#define SZ_512K			0x00080000
#define SZ_1M			0x00100000
#define SZ_2M			0x00200000
#define SZ_4M			0x00400000
#define SZ_8M			0x00800000
#define SZ_16M			0x01000000
#define SZ_32M			0x02000000
#define SZ_64M			0x04000000
#define SZ_128M			0x08000000
#define SZ_256M			0x10000000
#define SZ_512M			0x20000000
#define SZ_1G			0x40000000
#define SZ_2G			0x80000000
#define SZ_4G			0x100000000ULL
#define SZ_8G			0x200000000ULL
#define SZ_16G			0x400000000ULL
#define SZ_32G			0x800000000ULL
#define SZ_64G			0x1000000000ULL
#define SZ_128G			0x2000000000ULL
#define SZ_256G			0x4000000000ULL
#define SZ_512G			0x8000000000ULL
#define SZ_1T			0x10000000000ULL
#define SZ_2T			0x20000000000ULL
#define SZ_4T			0x40000000000ULL
#define SZ_8T			0x80000000000ULL
#define SZ_16T			0x100000000000ULL
#define SZ_32T			0x200000000000ULL
#define SZ_64T			0x400000000000ULL

/* --- <linux/device.h>, <linux/iommu.h> --------------------------------------------------- */
struct device;				/* opaque here */
struct iommu_iotlb_gather;		/* opaque here */

#define IOMMU_READ		(1 << 0)
#define IOMMU_WRITE		(1 << 1)
#define IOMMU_CACHE		(1 << 2)
#define IOMMU_NOEXEC		(1 << 3)
#define IOMMU_MMIO		(1 << 4)
#define IOMMU_PRIV		(1 << 5)

/* --- <linux/io-pgtable.h> ---------------------------------------------------------------- */
enum io_pgtable_fmt {
	ARM_32_LPAE_S1,
	ARM_32_LPAE_S2,
	ARM_64_LPAE_S1,
	ARM_64_LPAE_S2,
	ARM_V7S,
	ARM_MALI_LPAE,
	/* Deviation: the formats after ARM_MALI_LPAE (AMD, Apple DART, ...) are left out. */
	IO_PGTABLE_NUM_FMTS,
};

struct iommu_flush_ops {
	void (*tlb_flush_all)(void *cookie);
	void (*tlb_flush_walk)(unsigned long iova, size_t size, size_t granule, void *cookie);
	void (*tlb_add_page)(struct iommu_iotlb_gather *gather, unsigned long iova,
			     size_t granule, void *cookie);
};

struct io_pgtable_cfg {
	/* The quirks export.py can print; the kernel defines them here, inside the struct. */
	#define IO_PGTABLE_QUIRK_ARM_NS			BIT(0)
	#define IO_PGTABLE_QUIRK_NO_PERMS		BIT(1)
	#define IO_PGTABLE_QUIRK_ARM_TTBR1		BIT(5)
	#define IO_PGTABLE_QUIRK_ARM_OUTER_WBWA		BIT(6)
	#define IO_PGTABLE_QUIRK_ARM_HD			BIT(7)
	#define IO_PGTABLE_QUIRK_ARM_S2FWB		BIT(8)
	#define IO_PGTABLE_QUIRK_NO_WARN		BIT(9)
	unsigned long			quirks;
	unsigned long			pgsize_bitmap;
	unsigned int			ias;
	unsigned int			oas;
	bool				coherent_walk;
	/* PATCH 1/2 ("iommu/io-pgtable-arm: Implement .iotlb_sync_map callback") adds: */
	bool				defer_sync_pte;
	const struct iommu_flush_ops	*tlb;
	struct device			*iommu_dev;
	/* Deviation: the custom page allocator hooks (alloc, free) and the per-format union
	 * (arm_lpae_s1_cfg, ...) are left out; the export does not set them. */
};

struct io_pgtable_ops {
	int (*map_pages)(struct io_pgtable_ops *ops, unsigned long iova,
			 phys_addr_t paddr, size_t pgsize, size_t pgcount,
			 int prot, gfp_t gfp, size_t *mapped);
	size_t (*unmap_pages)(struct io_pgtable_ops *ops, unsigned long iova,
			      size_t pgsize, size_t pgcount,
			      struct iommu_iotlb_gather *gather);
	phys_addr_t (*iova_to_phys)(struct io_pgtable_ops *ops, unsigned long iova);
	/* Deviation: pgtable_walk and read_and_clear_dirty are left out. */
	/* PATCH 1/2 adds: */
	int (*iotlb_sync_map)(struct io_pgtable_ops *ops, unsigned long iova, size_t size);
};

struct io_pgtable_ops *alloc_io_pgtable_ops(enum io_pgtable_fmt fmt,
					    struct io_pgtable_cfg *cfg, void *cookie);
void free_io_pgtable_ops(struct io_pgtable_ops *ops);

/* --- <kunit/test.h>, <kunit/device.h> ---------------------------------------------------- */
struct kunit;				/* opaque here */

struct device *kunit_device_register(struct kunit *test, const char *name);

/*
 * The assertion macros evaluate their arguments once into `const typeof(x)` locals and compare
 * those, as KUNIT_BASE_BINARY_ASSERTION does, so gcc sees the comparison with the arguments'
 * own types (-Wsign-compare, pointer/integer mismatches).  A failed integer assertion hands the
 * values on as long long (struct kunit_binary_assert's left_value/right_value), a pointer one
 * as const void * (struct kunit_binary_ptr_assert).
 * Deviation: failures go to the three functions below instead of _KUNIT_FAILED(); an ASSERT does
 * not abort the test; there are no _MSG variants.
 */
void __kunit_stub_failed(struct kunit *test);
void __kunit_stub_binary_failed(struct kunit *test, long long left, long long right);
void __kunit_stub_ptr_failed(struct kunit *test, const void *left, const void *right);

#define __KUNIT_STUB_UNARY(test, condition, expected_true)			\
do {										\
	if (!!(condition) == !!(expected_true))					\
		break;								\
	__kunit_stub_failed(test);						\
} while (0)

/* `failed` is __kunit_stub_binary_failed or __kunit_stub_ptr_failed, as the kernel's
 * KUNIT_BASE_BINARY_ASSERTION takes the assertion class. */
#define __KUNIT_STUB_BINARY(test, left, op, right, failed)			\
do {										\
	const typeof(left) __left = (left);					\
	const typeof(right) __right = (right);					\
	if (__left op __right)							\
		break;								\
	failed(test, __left, __right);						\
} while (0)

/* The three the export uses. */
#define KUNIT_ASSERT_FALSE(test, condition)	__KUNIT_STUB_UNARY(test, condition, false)
#define KUNIT_EXPECT_EQ(test, left, right)					\
	__KUNIT_STUB_BINARY(test, left, ==, right, __kunit_stub_binary_failed)
#define KUNIT_ASSERT_NOT_NULL(test, ptr)					\
	__KUNIT_STUB_BINARY(test, ptr, !=, NULL, __kunit_stub_ptr_failed)

/* Deviation: struct kunit_case and struct kunit_suite have only the fields used here. */
struct kunit_case {
	void (*run_case)(struct kunit *test);
	const char *name;
};
#define KUNIT_CASE(test_name)	{ .run_case = test_name, .name = #test_name }

struct kunit_suite {
	const char name[256];
	struct kunit_case *test_cases;
};
/* Deviation: the kernel puts the array in section .kunit_test_suites. */
#define kunit_test_suite(suite)							\
	static struct kunit_suite *const __kunit_stub_suites_##suite[]		\
		__attribute__((used)) = { &suite }

/* --- drivers/iommu/io-pgtable-arm-selftests.c (the KUnit version) ------------------------ */
/* The exported body is pasted into that file and uses these two; there they are defined with
 * dummy TLB callbacks. */
static struct io_pgtable_cfg *cfg_cookie;
static const struct iommu_flush_ops dummy_tlb_ops;

#endif /* IOPGFUZZ_KERNEL_STUB_H */
