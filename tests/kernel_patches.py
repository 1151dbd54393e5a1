"""Patches of the 6.12.117 io-pgtable-arm.c that more than one test file builds."""

# BUG_ON(pgcount == 12345) at the start of arm_lpae_map_pages (after its declarations).
BUG_ON_PATCH = """\
--- a/drivers/iommu/io-pgtable-arm.c
+++ b/drivers/iommu/io-pgtable-arm.c
@@ -519,6 +519,8 @@
 \tarm_lpae_iopte prot;
 \tlong iaext = (s64)iova >> cfg->ias;

+\tBUG_ON(pgcount == 12345);
+
 \tif (WARN_ON(!pgsize || (pgsize & cfg->pgsize_bitmap) != pgsize))
 \t\treturn -EINVAL;

"""

# The leaf clean of __arm_lpae_init_pte deleted (with its `if`, which would else swallow the
# closing brace): the deferral a patch must make up for, with nothing that makes up for it.
NO_LEAF_CLEAN_PATCH = "\n".join([
    "--- a/drivers/iommu/io-pgtable-arm.c",
    "+++ b/drivers/iommu/io-pgtable-arm.c",
    "@@ -316,9 +316,6 @@ static void __arm_lpae_init_pte(struct arm_lpae_io_pgtable *data,",
    " ",
    " \tfor (i = 0; i < num_entries; i++)",
    " \t\tptep[i] = pte | paddr_to_iopte(paddr + i * sz, data);",
    "-",
    "-\tif (!cfg->coherent_walk)",
    "-\t\t__arm_lpae_sync_pte(ptep, num_entries, cfg);",
    " }",
    " ",
    " static int arm_lpae_init_pte(struct arm_lpae_io_pgtable *data,",
    ""])
