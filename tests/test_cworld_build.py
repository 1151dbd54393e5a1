"""cworld.build and c: variants: features, the build cache, errors that name their cause.

Built from the real default tree (Debian 6.12, fetched by run_tests.sh); when it is missing the
tests fail with the fetch command rather than skip.  Patches are unified diffs against the
6.12 drivers/iommu/io-pgtable-arm.c, made with `diff -u` on a copy; their context lines are
those of the real file.  Builds go to the shared cache (a build is ~0.5 s the first time),
except for the tests about the cache itself, which use a private cache and count compiles.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_patches import BUG_ON_PATCH

from cworld import build as B
from cworld.build import BuildError, detect_features
from cworld.source import ARM_C, FILES, MAKEFILE, KernelApiUnsupported, find_tree
from cworld.variant import CVariant
from fuzz.run.plugins import VariantLoadError, load_variant
from model.errors import IopgfuzzError

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seed" / "patch-v1-review.txt"
SG_LIST = ROOT / "corpus" / "differential" / "s1-4k-sg-list.ops"


# An undeclared identifier in arm_lpae_map_pages.  The hunk's new side starts at line 518:
# 518 `int ret, ...`, 519 `arm_lpae_iopte prot;`, 520 `long iaext ...`, 521 the added line.
BROKEN_PATCH = """\
--- a/drivers/iommu/io-pgtable-arm.c
+++ b/drivers/iommu/io-pgtable-arm.c
@@ -518,6 +518,7 @@
 \tint ret, lvl = data->start_level;
 \tarm_lpae_iopte prot;
 \tlong iaext = (s64)iova >> cfg->ias;
+\tint broken = iopgfuzz_no_such_symbol;

 \tif (WARN_ON(!pgsize || (pgsize & cfg->pgsize_bitmap) != pgsize))
 \t\treturn -EINVAL;
"""
BROKEN_LINE = 521

# A code hunk that cannot apply: its removed lines are not in the file (6.12 tests only
# cfg->coherent_walk there).
REJECTED_PATCH = """\
--- a/drivers/iommu/io-pgtable-arm.c
+++ b/drivers/iommu/io-pgtable-arm.c
@@ -316,9 +316,6 @@

 \tfor (i = 0; i < num_entries; i++)
 \t\tptep[i] = pte | paddr_to_iopte(paddr + i * sz, data);
-
-\tif (!cfg->coherent_walk && !cfg->no_such_member)
-\t\t__arm_lpae_sync_pte(ptep, num_entries, cfg);
 }

 static int arm_lpae_init_pte(struct arm_lpae_io_pgtable *data,
"""
REJECTED_HEADER = "@@ -316,9 +316,6 @@"


def write_patch(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(text)
    return p


def test_patch_context_is_the_real_file(real_tree):
    """The patches of this file were made against this tree: every context and removed line
    of the hunks that must apply is at the line its header says."""
    lines = real_tree.path(ARM_C).read_text().splitlines()
    for text in (BUG_ON_PATCH, BROKEN_PATCH, OTHER_ALLOCATOR_PATCH):
        m = re.search(r"^@@ -(\d+),(\d+)", text, re.MULTILINE)
        start = int(m.group(1))
        body = text[m.end():].split("\n", 1)[1].splitlines()
        old = [ln[1:] if ln else "" for ln in body if ln[:1] in (" ", "-", "")]
        assert len(old) == int(m.group(2))
        assert lines[start - 1:start - 1 + len(old)] == old


# --- features -----------------------------------------------------------------------------


def test_upstream_has_no_patch_features(real_tree):
    v = load_variant("c:upstream")
    assert v.built().features == frozenset()
    assert v.defer_sync_pte is False
    assert v.driver_iotlb_sync_map(object()) is None     # no op: the driver defines none


def test_seed_features(real_tree):
    """PATCH 1/2 adds `bool defer_sync_pte;` to io_pgtable_cfg and `iotlb_sync_map` to
    io_pgtable_ops."""
    v = load_variant(f"c:{SEED}")
    assert v.built().features == frozenset({"defer_sync_pte", "iotlb_sync_map"})
    assert v.defer_sync_pte is True
    # the seed's comment-only hunk (the @iotlb_sync_map kernel-doc line) does not apply to
    # 6.12 and is reported as skipped, not silently dropped
    assert any("skipped comment-only hunk" in n for n in v.built().notes)


def test_detect_features_reads_the_header(tmp_path):
    h = tmp_path / "include/linux/io-pgtable.h"
    h.parent.mkdir(parents=True)
    h.write_text("struct io_pgtable_cfg {\n\tbool coherent_walk;\n};\n"
                 "struct io_pgtable_ops {\n\tint (*map_pages)(void);\n};\n"
                 "/* bool defer_sync_pte; int (*iotlb_sync_map)(void); outside the structs */\n")
    assert detect_features(tmp_path) == frozenset()
    h.write_text("struct io_pgtable_cfg {\n\tbool coherent_walk;\n\tbool defer_sync_pte;\n};\n"
                 "struct io_pgtable_ops {\n\tint (*iotlb_sync_map)(struct io_pgtable_ops *o,"
                 "\n\t\tunsigned long iova, size_t size);\n};\n")
    assert detect_features(tmp_path) == frozenset({"defer_sync_pte", "iotlb_sync_map"})


# --- the cache ------------------------------------------------------------------------------


@pytest.fixture
def private_cache(real_tree, monkeypatch, tmp_path):
    """A fresh build cache; the tree is named explicitly (the default one lives in the real
    cache).  Every command the build module runs is recorded."""
    monkeypatch.setenv("IOPGFUZZ_KERNEL_TREE", str(real_tree.root))
    monkeypatch.setenv("IOPGFUZZ_CACHE", str(tmp_path / "cache"))
    calls: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(cmd, *a, **kw):
        calls.append([str(c) for c in cmd])
        return real_run(cmd, *a, **kw)

    monkeypatch.setattr(B.subprocess, "run", recording_run)
    return tmp_path / "cache", calls


def compiles(calls) -> list[list[str]]:
    """The compiler runs among recorded commands (a `-c` compile or the `-shared` link)."""
    return [c for c in calls if "-c" in c or "-shared" in c]


def test_second_build_is_a_cache_hit(private_cache, tmp_path):
    cache, calls = private_cache
    patch = write_patch(tmp_path / "p", "bug.patch", BUG_ON_PATCH)
    first = CVariant((patch,)).built()
    assert first.lib.is_file() and first.lib.is_relative_to(cache / "builds")
    assert first.lib.parent.name == first.key
    assert len(compiles(calls)) == len(B.RUNTIME_FILES) + 2   # kernel TU, runtime files, link
    mtime = first.lib.stat().st_mtime_ns
    calls.clear()
    # a new variant object, a new private source copy in another temp folder: same inputs
    second = CVariant((write_patch(tmp_path / "q", "other-name.patch", BUG_ON_PATCH),)).built()
    assert second.key == first.key
    assert second.lib == first.lib
    assert second.lib.stat().st_mtime_ns == mtime
    assert compiles(calls) == [], "the second build compiled again"
    assert second.features == first.features and second.symbols == first.symbols


def test_a_changed_patch_is_another_key(private_cache, tmp_path):
    cache, calls = private_cache
    a = CVariant((write_patch(tmp_path, "a.patch", BUG_ON_PATCH),)).built()
    b = CVariant((write_patch(tmp_path, "b.patch", BUG_ON_PATCH.replace("12345", "12346")),)
                 ).built()
    assert a.key != b.key
    assert len(compiles(calls)) == 2 * (len(B.RUNTIME_FILES) + 2)   # both compiled
    assert "12346" in (b.source_dir / ARM_C).read_text()
    assert "12346" not in (a.source_dir / ARM_C).read_text()
    assert sorted(p.name for p in (cache / "builds").iterdir()) == sorted([a.key, b.key])


# --- errors ---------------------------------------------------------------------------------


def test_broken_patch_names_file_and_line(private_cache, tmp_path):
    """A private cache: a failed build is not cached, and its folder (with the log the
    message points to) stays behind, which would litter the shared cache on every run."""
    cache, _ = private_cache
    patch = write_patch(tmp_path, "broken.patch", BROKEN_PATCH)
    with pytest.raises(BuildError) as e:
        CVariant((patch,)).built()
    msg = str(e.value)
    first = msg.split("\n")[0]
    assert f"drivers/iommu/io-pgtable-arm.c:{BROKEN_LINE}:" in first
    assert "iopgfuzz_no_such_symbol" in first
    assert str(tmp_path) not in first              # the private copy's path is stripped
    log = Path(re.search(r"\(full log: (.+)\)", msg).group(1))
    assert log.is_file() and log.is_relative_to(cache / "builds")
    assert "iopgfuzz_no_such_symbol" in log.read_text()
    # through the command-line path the same message arrives as a VariantLoadError
    with pytest.raises(VariantLoadError, match=rf"io-pgtable-arm\.c:{BROKEN_LINE}:"):
        load_variant(f"c:{patch}")


def test_compile_error_line_when_the_cache_path_says_error(private_cache, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("IOPGFUZZ_CACHE", str(tmp_path / "build-errors" / "cache"))
    patch = write_patch(tmp_path, "broken.patch", BROKEN_PATCH)
    with pytest.raises(BuildError) as e:
        CVariant((patch,)).built()
    assert f"drivers/iommu/io-pgtable-arm.c:{BROKEN_LINE}:" in str(e.value).split("\n")[0]


def make_tree_without_iommu_pages(real_tree, dest: Path) -> Path:
    """A copy of the tree whose io-pgtable-arm.c allocates its tables with an allocator the
    shim does not know: neither iommu_alloc_pages_node (6.12) nor iommu_alloc_pages_node_sz
    (later), nor the page allocator of kernels before 6.11."""
    for rel in (*FILES, MAKEFILE):
        src = real_tree.root / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / rel)
    arm_c = dest / ARM_C
    text = arm_c.read_text()
    assert "iommu_alloc_pages_node(" in text and "iommu_free_pages(" in text
    text = text.replace("iommu_alloc_pages_node(", "my_page_allocator(")
    text = text.replace("iommu_free_pages(", "my_page_free(")
    arm_c.write_text(text)
    return dest


def test_tree_without_iommu_pages_api_is_refused(real_tree, tmp_path, monkeypatch):
    tree = make_tree_without_iommu_pages(real_tree, tmp_path / "other")
    with pytest.raises(KernelApiUnsupported) as e:
        find_tree(tree)
    assert "iommu_alloc_pages_node(" in str(e.value)
    assert "iommu_alloc_pages_node_sz(" in str(e.value)
    monkeypatch.setenv("IOPGFUZZ_KERNEL_TREE", str(tree))
    with pytest.raises(VariantLoadError) as e:
        load_variant("c:upstream")
    assert "iommu_alloc_pages_node(" in str(e.value)
    assert "iommu_alloc_pages_node_sz(" in str(e.value)


# A patch that moves the tree's (supported) io-pgtable-arm.c to an unknown allocator: the
# patched source, not only the tree, is checked before compiling.
OTHER_ALLOCATOR_PATCH = """\
--- a/drivers/iommu/io-pgtable-arm.c
+++ b/drivers/iommu/io-pgtable-arm.c
@@ -232,7 +232,7 @@
 \tif (cfg->alloc)
 \t\tpages = cfg->alloc(cookie, size, gfp);
 \telse
-\t\tpages = iommu_alloc_pages_node(dev_to_node(dev), gfp, order);
+\t\tpages = my_page_allocator(dev_to_node(dev), gfp, order);

 \tif (!pages)
 \t\treturn NULL;
"""


def test_patched_source_without_iommu_pages_api_is_refused(real_tree, tmp_path):
    patch = write_patch(tmp_path, "allocator.patch", OTHER_ALLOCATOR_PATCH)
    with pytest.raises(IopgfuzzError) as e:
        CVariant((patch,)).built()
    assert "iommu_alloc_pages_node(" in str(e.value)
    assert "iommu_alloc_pages_node_sz(" in str(e.value)
    with pytest.raises(VariantLoadError, match="iommu_alloc_pages_node_sz"):
        load_variant(f"c:{patch}")


def test_missing_patch_file():
    with pytest.raises(VariantLoadError, match="/no/such.patch"):
        load_variant("c:/no/such.patch")


def test_unknown_driver_half():
    with pytest.raises(VariantLoadError, match="unknown driver 'bogus'"):
        load_variant("c:upstream@bogus")


def test_replay_with_rejected_hunk_exits_2(real_tree, tmp_path):
    bad = write_patch(tmp_path, "BAD.patch", REJECTED_PATCH)
    r = subprocess.run([sys.executable, "-m", "fuzz", "replay", str(SG_LIST),
                        "--variant", f"c:{bad}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "BAD.patch" in r.stderr
    assert "drivers/iommu/io-pgtable-arm.c" in r.stderr
    assert "hunk #1" in r.stderr and REJECTED_HEADER in r.stderr
    assert "Traceback" not in r.stderr
