"""The shim's three page-allocator generations, each built and run.

Only one real tree is in the cache (Debian's 6.12, the `order` API of iommu-pages.h).  The
other two generations are produced from it by rewriting its three allocator calls the way
those kernels spell them: the size-based iommu-pages API of later kernels
(`iommu_alloc_pages_node_sz(nid, gfp, size)`, one-argument `iommu_free_pages(virt)`), and the
page allocator itself that kernels before 6.11 call (`alloc_pages_node`, `page_address`,
`free_pages`, as 6.1's io-pgtable-arm.c does).  Each must be detected as what it is, build,
and give the same tables and clean counts as the unmodified 6.12 on a scenario that allocates
and frees tables: the page allocator is the only thing that differs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cworld.source import FILES, find_tree, load_tree
from fuzz.lang import ops as O
from fuzz.run.executor import run_scenario
from fuzz.run.plugins import load_variant

ARM_C = "drivers/iommu/io-pgtable-arm.c"
SCENARIO = """\
# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K
map 0x40000000 0x80000000 8K
map 0x40200000 0x80200000 2M
unmap 0x40000000 8K
pt.map_pages 0x40000000 0x90000000 2M 1
smmu 0x40000000
"""

#: (6.12's text, how the other generation writes it)
REWRITES = {
    "size": [
        ("pages = iommu_alloc_pages_node(dev_to_node(dev), gfp, order);",
         "pages = iommu_alloc_pages_node_sz(dev_to_node(dev), gfp, size);"),
        ("iommu_free_pages(pages, order);", "iommu_free_pages(pages);"),
        ("iommu_free_pages(pages, get_order(size));", "iommu_free_pages(pages);"),
    ],
    "page": [
        ("pages = iommu_alloc_pages_node(dev_to_node(dev), gfp, order);",
         "pages = page_address(alloc_pages_node(dev_to_node(dev), gfp | __GFP_ZERO, order));"),
        ("iommu_free_pages(pages, order);", "free_pages((unsigned long)pages, order);"),
        ("iommu_free_pages(pages, get_order(size));",
         "free_pages((unsigned long)pages, get_order(size));"),
    ],
}


def _rewritten_tree(tmp_path: Path, api: str) -> Path:
    real = find_tree()
    root = tmp_path / f"linux-{api}"
    for rel in (*FILES, "Makefile"):
        src = real.root / rel
        if src.is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / rel)
    c = (root / ARM_C).read_text()
    for old, new in REWRITES[api]:
        assert c.count(old) == 1, f"6.12 no longer has {old!r}"
        c = c.replace(old, new)
    (root / ARM_C).write_text(c)
    return root


def _outcome(variant):
    res = run_scenario(O.parse_scenario(SCENARIO), variant)
    assert res.config_error is None and not res.exhausted
    tables = {pa: (freed, view.tolist()) for pa in sorted(res.var.data.mem.tables)
              for freed, view in [res.var.table_view(pa)]}
    return [f.signature for f in res.findings], res.var.stats(), tables


@pytest.mark.parametrize("api", ["size", "page"])
def test_each_page_allocator_generation_builds_and_behaves_as_6_12(tmp_path, monkeypatch, api):
    root = _rewritten_tree(tmp_path, api)
    assert load_tree(root, "test").iommu_pages_api == api
    baseline = _outcome(load_variant("c:upstream"))
    monkeypatch.setenv("IOPGFUZZ_KERNEL_TREE", str(root))
    other = load_variant("c:upstream")
    assert other.kernel_version == find_tree().version      # the same Makefile
    findings, stats, tables = _outcome(other)
    assert (findings, stats) == baseline[:2]
    assert tables == baseline[2]
    # the scenario did allocate and free: the allocator was really exercised
    assert stats["by_site"]["alloc"]["calls"] >= 4
    assert any(freed for freed, _ in tables.values())
