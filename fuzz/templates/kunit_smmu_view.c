/*
 * iopgfuzz: what a non-coherent SMMU reads.  Shared by every iopgfuzz_* test: paste once (the
 * guard makes a second copy harmless).
 *
 * The test's device gets recording dma_map_ops (set_dma_ops()): the io-pgtable code's
 * dma_map_single() of a new table and its dma_sync_single_for_device() of PTEs reach
 * iopgfuzz_smmu_map() and iopgfuzz_smmu_clean(), which copy the cache lines the real clean
 * would write back into a shadow of the table: what memory holds.  The SMMU walk of
 * iopgfuzz_smmu_expect_synced() reads that shadow, from the TTBR down, decoding TCR/VTCR as
 * the hardware does, and compares every entry with what the CPU wrote.  No cache
 * maintenance really happens for this device, so the test needs no non-coherent hardware.
 *
 * Needs CONFIG_ARCH_HAS_DMA_OPS (CONFIG_DMA_OPS before 6.12; arm64 selects it with CONFIG_XEN),
 * else set_dma_ops() does nothing and the test skips itself.
 */
#ifndef IOPGFUZZ_SMMU_VIEW
#define IOPGFUZZ_SMMU_VIEW

#include <linux/cache.h>
#include <linux/device.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/version.h>

/*
 * 1: the kernel has PATCH 1/2 ("iommu/io-pgtable-arm: Implement .iotlb_sync_map callback"):
 * the test sets cfg.defer_sync_pte and calls ops->iotlb_sync_map() where the driver would.
 * 0: a kernel without it, where every PTE is cleaned when written.
 */
#ifndef IOPGFUZZ_DEFERRED_SYNC
#define IOPGFUZZ_DEFERRED_SYNC	1
#endif
/* dma_map_ops.map_phys replaced .map_page around 6.18 (check your tree's dma-map-ops.h) */
#ifndef IOPGFUZZ_DMA_MAP_PHYS
#define IOPGFUZZ_DMA_MAP_PHYS	(LINUX_VERSION_CODE >= KERNEL_VERSION(6, 18, 0))
#endif

#define IOPGFUZZ_SMMU_MAX_CLEANS	1024
/* Descriptor bits [58:55] are for software: the SMMU ignores them */
#define IOPGFUZZ_SMMU_HW_BITS		(~GENMASK_ULL(58, 55))

/* One page table as the device sees it: the CPU's bytes and what memory holds of them */
struct iopgfuzz_smmu_table {
	struct list_head list;
	phys_addr_t phys;
	const u8 *cpu;
	size_t size;
	u8 *mem;
};

struct iopgfuzz_smmu {
	struct kunit *test;
	struct list_head tables;
	size_t line;
	bool coherent;
	/* the cleans of the iotlb_sync_map() being checked */
	bool logging;
	unsigned int ncleans;
	phys_addr_t clean_pa[IOPGFUZZ_SMMU_MAX_CLEANS];
	size_t clean_size[IOPGFUZZ_SMMU_MAX_CLEANS];
	/* the walk, as the SMMU reads it from the registers the io-pgtable code set up */
	phys_addr_t ttbr;
	int start_level;
	unsigned int granule_shift, bits_per_level, pgd_bits;
	/* the input range: [0, 2^ias), or the top 2^ias of the address space with TTBR1 */
	unsigned int ias;
	bool ttbr1;
};

static struct iopgfuzz_smmu_table *iopgfuzz_smmu_find(struct iopgfuzz_smmu *s, phys_addr_t pa)
{
	struct iopgfuzz_smmu_table *t;

	list_for_each_entry(t, &s->tables, list)
		if (pa >= t->phys && pa - t->phys < t->size)
			return t;
	return NULL;
}

/* A clean of [pa, pa + size): the whole cache lines holding it reach memory */
static void iopgfuzz_smmu_clean(struct iopgfuzz_smmu *s, phys_addr_t pa, size_t size)
{
	struct iopgfuzz_smmu_table *t = iopgfuzz_smmu_find(s, pa);
	phys_addr_t lo, hi;

	if (!t) {
		KUNIT_FAIL(s->test, "dma_sync_single_for_device(%#llx, %zu): no page table is "
			   "mapped for the device there", (unsigned long long)pa, size);
		return;
	}
	if (size > t->size - (pa - t->phys))
		KUNIT_FAIL(s->test, "dma_sync_single_for_device(%#llx, %zu) runs %llu bytes past "
			   "the end of the %zu-byte page table at %#llx", (unsigned long long)pa,
			   size, (unsigned long long)(pa + size - t->phys - t->size), t->size,
			   (unsigned long long)t->phys);
	if (s->logging && size) {
		if (s->ncleans < IOPGFUZZ_SMMU_MAX_CLEANS) {
			s->clean_pa[s->ncleans] = pa;
			s->clean_size[s->ncleans] = size;
		}
		s->ncleans++;
	}
	lo = max_t(phys_addr_t, ALIGN_DOWN(pa, s->line), t->phys);
	hi = min_t(phys_addr_t, ALIGN(pa + size, s->line), t->phys + t->size);
	if (hi > lo)
		memcpy(t->mem + (lo - t->phys), t->cpu + (lo - t->phys), hi - lo);
}

static dma_addr_t iopgfuzz_smmu_map(struct device *dev, void *cpu, phys_addr_t phys,
				    size_t size)
{
	struct iopgfuzz_smmu *s = dev_get_drvdata(dev);
	struct iopgfuzz_smmu_table *t = kunit_kzalloc(s->test, sizeof(*t), GFP_KERNEL);

	if (!t)
		return DMA_MAPPING_ERROR;
	t->mem = kunit_kzalloc(s->test, size, GFP_KERNEL);
	if (!t->mem)
		return DMA_MAPPING_ERROR;
	t->phys = phys;
	t->cpu = cpu;
	t->size = size;
	list_add(&t->list, &s->tables);
	iopgfuzz_smmu_clean(s, phys, size);	/* mapping for the device cleans the buffer */
	/* io-pgtable-arm refuses a DMA address that is not the physical address */
	return (dma_addr_t)phys;
}

/* Unmapped: the SMMU must not walk it any more (a walk that gets there fails) */
static void iopgfuzz_smmu_unmap(struct device *dev, dma_addr_t addr, size_t size,
				enum dma_data_direction dir, unsigned long attrs)
{
	struct iopgfuzz_smmu *s = dev_get_drvdata(dev);
	struct iopgfuzz_smmu_table *t = iopgfuzz_smmu_find(s, (phys_addr_t)addr);

	if (t && t->phys == addr)
		list_del(&t->list);
	else
		KUNIT_FAIL(s->test, "dma_unmap_single(%#llx, %zu): nothing mapped there",
			   (unsigned long long)addr, size);
}

static void iopgfuzz_smmu_sync(struct device *dev, dma_addr_t addr, size_t size,
			       enum dma_data_direction dir)
{
	iopgfuzz_smmu_clean(dev_get_drvdata(dev), (phys_addr_t)addr, size);
}

#if IOPGFUZZ_DMA_MAP_PHYS
static dma_addr_t iopgfuzz_smmu_map_phys(struct device *dev, phys_addr_t phys, size_t size,
					 enum dma_data_direction dir, unsigned long attrs)
{
	return iopgfuzz_smmu_map(dev, phys_to_virt(phys), phys, size);
}
#else
static dma_addr_t iopgfuzz_smmu_map_page(struct device *dev, struct page *page,
					 unsigned long offset, size_t size,
					 enum dma_data_direction dir, unsigned long attrs)
{
	return iopgfuzz_smmu_map(dev, (u8 *)page_address(page) + offset,
				 page_to_phys(page) + offset, size);
}
#endif

static const struct dma_map_ops iopgfuzz_smmu_dma_ops = {
#if IOPGFUZZ_DMA_MAP_PHYS
	.map_phys		= iopgfuzz_smmu_map_phys,
	.unmap_phys		= iopgfuzz_smmu_unmap,
#else
	.map_page		= iopgfuzz_smmu_map_page,
	.unmap_page		= iopgfuzz_smmu_unmap,
#endif
	.sync_single_for_device	= iopgfuzz_smmu_sync,
};

/* Before alloc_io_pgtable_ops(): the device records what it is given from now on */
static struct iopgfuzz_smmu *iopgfuzz_smmu_register(struct kunit *test, struct device *dev)
{
	struct iopgfuzz_smmu *s = kunit_kzalloc(test, sizeof(*s), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, s);
	s->test = test;
	s->line = cache_line_size();
	INIT_LIST_HEAD(&s->tables);
	dev_set_drvdata(dev, s);
	set_dma_ops(dev, &iopgfuzz_smmu_dma_ops);
	if (get_dma_ops(dev) != &iopgfuzz_smmu_dma_ops)
		kunit_skip(test, "set_dma_ops() needs CONFIG_ARCH_HAS_DMA_OPS");
	KUNIT_ASSERT_EQ(test, dma_coerce_mask_and_coherent(dev, DMA_BIT_MASK(64)), 0);
	return s;
}

/*
 * After alloc_io_pgtable_ops(): where and how the SMMU walks, from what the io-pgtable code set
 * up for the driver: the TTBR, and TCR.{TG0,T0SZ} (TG1 with the TTBR1 quirk) or VTCR.SL0.
 */
static void iopgfuzz_smmu_attach(struct iopgfuzz_smmu *s, struct io_pgtable_cfg *cfg,
				 enum io_pgtable_fmt fmt)
{
	/* log2 of the granule by TCR.TG0 (0: 4K, 1: 64K, 2: 16K), TG1 (1: 16K, 2: 4K, 3: 64K) */
	static const unsigned int tg0_shift[] = { 12, 16, 14, 0 }, tg1_shift[] = { 0, 14, 12, 16 };
	bool stage2 = fmt == ARM_32_LPAE_S2 || fmt == ARM_64_LPAE_S2;
	unsigned int tsz;

	s->coherent = cfg->coherent_walk;
	if (stage2) {
		s->ttbr = cfg->arm_lpae_s2_cfg.vttbr;
		s->granule_shift = tg0_shift[cfg->arm_lpae_s2_cfg.vtcr.tg];
		tsz = cfg->arm_lpae_s2_cfg.vtcr.tsz;
	} else if (fmt == ARM_MALI_LPAE) {	/* 4K pages, four levels from a level-0 table */
		s->ttbr = cfg->arm_mali_lpae_cfg.transtab & GENMASK_ULL(47, 12);
		s->granule_shift = 12;
		tsz = 64 - 48;
	} else {
		s->ttbr = cfg->arm_lpae_s1_cfg.ttbr;
		s->granule_shift = cfg->quirks & IO_PGTABLE_QUIRK_ARM_TTBR1 ?
				   tg1_shift[cfg->arm_lpae_s1_cfg.tcr.tg] :
				   tg0_shift[cfg->arm_lpae_s1_cfg.tcr.tg];
		tsz = cfg->arm_lpae_s1_cfg.tcr.tsz;
	}
	KUNIT_ASSERT_NE_MSG(s->test, s->granule_shift, 0U, "a reserved TG encoding");
	s->ias = 64 - tsz;
	s->ttbr1 = !stage2 && (cfg->quirks & IO_PGTABLE_QUIRK_ARM_TTBR1);
	s->bits_per_level = s->granule_shift - 3;
	if (stage2)	/* SL0, whose meaning depends on the granule */
		s->start_level = (s->granule_shift == 12 ? 2 : 3) - cfg->arm_lpae_s2_cfg.vtcr.sl;
	else
		s->start_level = 4 - DIV_ROUND_UP(64 - tsz - s->granule_shift, s->bits_per_level);
	s->pgd_bits = 64 - tsz - s->granule_shift - s->bits_per_level * (3 - s->start_level);
}

/* The output address of a table or leaf descriptor (52-bit with 64K: PA[51:48] in [15:12]) */
static phys_addr_t iopgfuzz_smmu_oa(struct iopgfuzz_smmu *s, u64 pte)
{
	phys_addr_t pa = pte & GENMASK_ULL(47, s->granule_shift);

	if (s->granule_shift == 16)
		pa |= (pte & GENMASK_ULL(15, 12)) << 36;
	return pa;
}

static bool iopgfuzz_smmu_entry(struct iopgfuzz_smmu *s, phys_addr_t pa, u64 *cpu, u64 *mem)
{
	struct iopgfuzz_smmu_table *t = iopgfuzz_smmu_find(s, pa);

	if (!t || t->size - (pa - t->phys) < sizeof(u64))
		return false;
	memcpy(cpu, t->cpu + (pa - t->phys), sizeof(*cpu));
	memcpy(mem, t->mem + (pa - t->phys), sizeof(*mem));
	return true;
}

static unsigned int iopgfuzz_smmu_shift(struct iopgfuzz_smmu *s, int lvl)
{
	return s->granule_shift + (3 - lvl) * s->bits_per_level;
}

static u64 iopgfuzz_smmu_index(struct iopgfuzz_smmu *s, int lvl, u64 iova)
{
	unsigned int bits = lvl == s->start_level ? s->pgd_bits : s->bits_per_level;

	return (iova >> iopgfuzz_smmu_shift(s, lvl)) & (BIT_ULL(bits) - 1);
}

/*
 * The SMMU's walks of [lo, hi] (inclusive) below `table`, compared entry by entry with the
 * CPU's: false after failing the test at the first entry that differs in a hardware bit or
 * that is in no table mapped for the device.
 */
static bool iopgfuzz_smmu_walk(struct iopgfuzz_smmu *s, const char *when, phys_addr_t table,
			       int lvl, u64 lo, u64 hi)
{
	u64 iova = lo;

	for (;;) {
		u64 last = iova | (BIT_ULL(iopgfuzz_smmu_shift(s, lvl)) - 1);
		u64 idx = iopgfuzz_smmu_index(s, lvl, iova);
		phys_addr_t pa = table + idx * sizeof(u64);
		u64 cpu, mem;

		if (!iopgfuzz_smmu_entry(s, pa, &cpu, &mem)) {
			KUNIT_FAIL(s->test, "%s: the SMMU walk of IOVA %#llx reads level %d entry "
				   "%llu at %#llx, which is in no page table mapped for the device",
				   when, (unsigned long long)iova, lvl, (unsigned long long)idx,
				   (unsigned long long)pa);
			return false;
		}
		if ((cpu ^ mem) & IOPGFUZZ_SMMU_HW_BITS) {
			KUNIT_FAIL(s->test, "%s: the SMMU reads a stale entry for IOVA %#llx at "
				   "level %d: CPU entry 0x%016llx, memory entry 0x%016llx "
				   "(entry %llu at %#llx)", when, (unsigned long long)iova, lvl,
				   (unsigned long long)cpu, (unsigned long long)mem,
				   (unsigned long long)idx, (unsigned long long)pa);
			return false;
		}
		if (lvl < 3 && (mem & 3) == 3 &&
		    !iopgfuzz_smmu_walk(s, when, iopgfuzz_smmu_oa(s, mem), lvl + 1, iova,
					min(last, hi)))
			return false;
		if (last >= hi)
			return true;
		iova = last + 1;
	}
}

/*
 * The IOVAs of [iova, iova + size) the table translates, as inclusive pieces in lo[], hi[]
 * (0 to 2 of them): a range that wraps past 2^64 goes on at 0, as the core's unsigned
 * arithmetic does; what lies outside the input range the SMMU faults on whatever is written.
 */
static int iopgfuzz_smmu_pieces(struct iopgfuzz_smmu *s, unsigned long iova, size_t size,
				u64 *lo, u64 *hi)
{
	u64 r1 = s->ias >= 64 ? U64_MAX : BIT_ULL(s->ias) - 1, r0 = 0;
	u64 p_lo[2] = { iova, 0 }, p_hi[2] = { U64_MAX, iova + (size - 1) };
	int n = 2, i, out = 0;

	if (!size)
		return 0;
	if (s->ttbr1 && s->ias < 64) {
		r0 = ~r1;
		r1 = U64_MAX;
	}
	if (size - 1 <= U64_MAX - iova) {	/* no wrap: one piece */
		p_hi[0] = iova + (size - 1);
		n = 1;
	}
	for (i = 0; i < n; i++) {
		if (p_lo[i] > r1 || p_hi[i] < r0)
			continue;
		lo[out] = max(p_lo[i], r0);
		hi[out++] = min(p_hi[i], r1);
	}
	return out;
}

/* After the driver's sync of [iova, iova + size): the SMMU must read what the CPU wrote */
static void iopgfuzz_smmu_expect_synced(struct iopgfuzz_smmu *s, unsigned long iova,
					size_t size, const char *when)
{
	u64 lo[2], hi[2];
	int i, n = iopgfuzz_smmu_pieces(s, iova, size, lo, hi);

	if (s->coherent)
		return;		/* a coherent walk reads the CPU's caches */
	for (i = 0; i < n; i++)
		if (!iopgfuzz_smmu_walk(s, when, s->ttbr, s->start_level, lo[i], hi[i]))
			return;
}

/*
 * Whether the cache line at `line` holds an entry of the CPU's walks of [lo, hi] below `table`
 * (a level `lvl` table whose first entry translates IOVA `base`).  The level and IOVA of the
 * table holding the line are left in *in_lvl and *in_base, if one is met.  `ranged` false: no
 * range, every table of the tree is searched (for the message).
 */
static bool iopgfuzz_smmu_line_in(struct iopgfuzz_smmu *s, phys_addr_t line, phys_addr_t table,
				  int lvl, u64 base, bool ranged, u64 lo, u64 hi, int *in_lvl,
				  u64 *in_base)
{
	unsigned int bits = lvl == s->start_level ? s->pgd_bits : s->bits_per_level;
	unsigned int shift = iopgfuzz_smmu_shift(s, lvl);
	u64 i0 = ranged ? iopgfuzz_smmu_index(s, lvl, lo) : 0;
	u64 i1 = ranged ? iopgfuzz_smmu_index(s, lvl, hi) : BIT_ULL(bits) - 1;
	u64 i;

	if (line + s->line > table && line < table + (BIT_ULL(bits) << 3)) {
		*in_lvl = lvl;
		*in_base = base;
		return ranged && line + s->line > table + (i0 << 3) &&
		       line < table + ((i1 + 1) << 3);
	}
	if (lvl == 3)
		return false;
	for (i = i0; i <= i1; i++) {
		struct iopgfuzz_smmu_table *t = iopgfuzz_smmu_find(s, table + (i << 3));
		u64 pte, e_base = base + (i << shift);

		if (!t)
			break;
		memcpy(&pte, t->cpu + (table + (i << 3) - t->phys), sizeof(pte));
		if ((pte & 3) == 3 &&
		    iopgfuzz_smmu_line_in(s, line, iopgfuzz_smmu_oa(s, pte), lvl + 1, e_base,
					  ranged, max(lo, e_base),
					  min(hi, e_base + BIT_ULL(shift) - 1), in_lvl, in_base))
			return true;
	}
	return false;
}

/* Every line the sync of [iova, iova + size) cleaned must hold an entry of that range */
static void iopgfuzz_smmu_check_cleans(struct iopgfuzz_smmu *s, unsigned long iova,
				       size_t size)
{
	u64 lo[2], hi[2];
	int k, n = iopgfuzz_smmu_pieces(s, iova, size, lo, hi);
	unsigned int top = iopgfuzz_smmu_shift(s, s->start_level) + s->pgd_bits;
	u64 base = top >= 64 ? 0 : iova & ~(BIT_ULL(top) - 1);
	unsigned int i, foreign = 0;
	bool in;
	phys_addr_t line, first = 0;
	int lvl = -1;
	u64 in_base = 0;

	for (i = 0; i < min_t(unsigned int, s->ncleans, IOPGFUZZ_SMMU_MAX_CLEANS); i++) {
		for (line = ALIGN_DOWN(s->clean_pa[i], s->line);
		     line < s->clean_pa[i] + s->clean_size[i]; line += s->line) {
			for (in = false, k = 0; k < n && !in; k++)
				in = iopgfuzz_smmu_line_in(s, line, s->ttbr, s->start_level, base,
							   true, lo[k], hi[k], &lvl, &in_base);
			if (in)
				continue;
			if (!foreign++)
				first = line;
		}
	}
	if (!foreign)
		return;
	lvl = -1;
	iopgfuzz_smmu_line_in(s, first, s->ttbr, s->start_level, base, false, 0, 0, &lvl,
			      &in_base);
	if (lvl < 0)
		KUNIT_FAIL(s->test, "iotlb_sync_map(%#lx, %#zx) cleaned %u cache line(s) holding "
			   "no entry of the range, the first at %#llx, in no table of the tree",
			   iova, size, foreign, (unsigned long long)first);
	else
		KUNIT_FAIL(s->test, "iotlb_sync_map(%#lx, %#zx) cleaned %u cache line(s) holding "
			   "no entry of the range, the first at %#llx, in the level %d table for "
			   "IOVA %#llx", iova, size, foreign, (unsigned long long)first, lvl,
			   (unsigned long long)in_base);
}

/*
 * The driver's iotlb_sync_map (PATCH 2/2 calls the io-pgtable op), checked: every cache line
 * it cleans must hold an entry of the range when `check_cleans`.  0 where the op is missing.
 */
static int iopgfuzz_smmu_sync_map(struct iopgfuzz_smmu *s, struct io_pgtable_ops *ops,
				  unsigned long iova, size_t size, bool check_cleans)
{
	int ret = 0;

#if IOPGFUZZ_DEFERRED_SYNC
	if (ops->iotlb_sync_map) {
		s->ncleans = 0;
		s->logging = true;
		ret = ops->iotlb_sync_map(ops, iova, size);
		s->logging = false;
		if (check_cleans && !s->coherent)
			iopgfuzz_smmu_check_cleans(s, iova, size);
	}
#endif
	return ret;
}

#endif /* IOPGFUZZ_SMMU_VIEW */
