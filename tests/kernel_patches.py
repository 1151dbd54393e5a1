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
