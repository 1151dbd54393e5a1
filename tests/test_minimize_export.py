"""`python -m fuzz minimize` and `python -m fuzz export` (fuzz/repro/minimize.py,
fuzz/repro/export/)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.cli import main
from fuzz.lang import codec
from fuzz.lang import ops as O
from fuzz.repro.export import export_file
from fuzz.repro.export.to_kunit import c_size
from fuzz.repro.minimize import default_signature, minimize
from fuzz.repro.replay import load_input
from fuzz.run.executor import run_scenario
from model.config import IO_PGTABLE_QUIRK_ARM_TTBR1
from model.variants import get_variant

ROOT = Path(__file__).resolve().parent.parent
CRASHES = sorted((ROOT / "crashes" / "v1").glob("*.ops"))
U64 = (1 << 64) - 1


def _sigs(sc: O.Scenario, variant: str = "v1") -> list[str]:
    return [f.signature for f in run_scenario(sc, get_variant(variant)).findings]


def _padding(c) -> tuple[tuple[O.Op, ...], tuple[O.Op, ...]]:
    """Irrelevant ops for `c`: pages near the top of the input range (far from every
    reproducer's addresses), SMMU walks of them, evictions.  TTBR1 tables pad with
    map_nosync: every v1 sync of a TTBR1 table WARNs, which would make the padding relevant."""
    g = c.granule
    ttbr1 = c.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1
    far = U64 - 4 * g + 1 if ttbr1 else (1 << c.ias) - 4 * g
    m = O.MapNosync if ttbr1 else O.Map
    pre = (m(far, 0x9000_0000, g), O.Smmu(far), O.Evict(None), m(far + g, 0x9010_0000, g, 1))
    post = (O.Smmu(far + g), O.Evict(far), m(far + 2 * g, 0x9020_0000, g),
            O.PtIovaToPhys(far), O.Evict(None))
    return pre, post


def _padded(sc: O.Scenario) -> O.Scenario:
    pre, post = _padding(sc.config)
    return O.Scenario(sc.config, pre + sc.ops + post)


# --- minimize ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", CRASHES, ids=[p.stem for p in CRASHES])
def test_minimize_padded_reproducer(path):
    original = load_input(path)
    sig = default_signature(run_scenario(original, get_variant("v1")).findings)
    assert sig is not None
    pre, post = _padding(original.config)
    assert sig not in _sigs(O.Scenario(original.config, pre + post)), "padding is relevant"
    padded = _padded(original)
    assert sig in _sigs(padded)

    res = minimize(padded, get_variant("v1"), sig)
    assert not res.exhausted
    assert sig in _sigs(res.scenario)
    assert len(res.scenario.ops) <= len(original.ops)
    # the output text is a valid scenario that still has the signature
    again = O.parse_scenario(O.format_scenario(res.scenario))
    assert sig in _sigs(again)


def test_minimize_default_signature_and_stages():
    """Default signature = first correctness finding; stage b/c simplify op fields and config."""
    sc = O.parse_scenario(
        "# iopgfuzz ops v1\n"
        "config fmt=arm64-s2 granule=4K ias=40 oas=40 line=128 concat=mandatory enoent_bug=0\n"
        "map 0x1000 0x5000 4K prot=rwc\n"
        "map 0x7fc0000000 0x7fc0000000 2G prot=rwx\n"
        "smmu 0x8000000000\n")
    res = minimize(sc, get_variant("v1"))
    assert res.signature == "stale-read|v1|-|-|concat"
    assert len(res.scenario.ops) == 1
    op = res.scenario.ops[0]
    assert isinstance(op, O.Map) and op.prot == O.PROT_RW and op.size == 2 << 30
    assert res.scenario.config.line == 64 and res.scenario.config.enoent_bug


def test_minimize_simplifies_op_fields():
    sc = O.parse_scenario(
        "# iopgfuzz ops v1\n"
        "config fmt=arm64-s1 granule=4K ias=48 oas=48 quirks=ttbr1,no_warn\n"
        "fail sync_map nth=1 err=-EINVAL\n"
        "map_sg 0xffff800000000000 0x80000000+4K 0x80002000+8K 0x80010000+4K prot=r\n")
    res = minimize(sc, get_variant("v1"), "warn|v1|arm_lpae_iotlb_sync_map:iaext|-|-")
    text = O.format_scenario(res.scenario)
    assert "no_warn" not in text and "quirks=ttbr1" in text
    assert res.scenario.ops == (O.MapSg(0xffff000000000000, (O.Segment(0, 4096),)),)


def test_minimize_is_deterministic(tmp_path):
    padded = _padded(load_input(ROOT / "crashes" / "v1" / "line-cleaned-twice.ops"))
    a = minimize(padded, get_variant("v1"))
    b = minimize(padded, get_variant("v1"))
    assert O.format_scenario(a.scenario) == O.format_scenario(b.scenario)
    assert a.replays == b.replays
    # and the CLI in another process, under another hash seed, writes the same file
    src = tmp_path / "padded.ops"
    src.write_text(O.format_scenario(padded))
    outs = []
    for seed in ("0", "12345"):
        out = tmp_path / f"min-{seed}.ops"
        r = subprocess.run([sys.executable, "-m", "fuzz", "minimize", str(src), "-o", str(out)],
                           cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=False)
        assert r.returncode == 0, r.stderr
        assert f"{len(padded.ops)} ops -> {len(a.scenario.ops)} ops" in r.stdout
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    assert O.parse_scenario(outs[0]).ops == a.scenario.ops
    assert f"# signature: {a.signature}" in outs[0]
    assert str(src) in outs[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["min-0.ops", "min-12345.ops",
                                                          "padded.ops"]   # no temp files left


def test_minimize_cli_binary_input(tmp_path, capsys):
    sc = _padded(load_input(ROOT / "crashes" / "v1" / "empty-sg-sync.ops"))
    src = tmp_path / "crash-123"
    src.write_bytes(codec.encode(sc))
    out = tmp_path / "min.ops"
    assert main(["minimize", str(src), "-o", str(out)]) == 0
    assert "10 ops -> 1 op" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith(O.VERSION_LINE + "\n# minimized from ")
    assert O.parse_scenario(text).ops == (O.MapSg(0x40000000, (O.Segment(0, 4096, True),)),)


def test_minimize_bad_input_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.ops"
    bad.write_text("# iopgfuzz ops v1\nmap 0x1000\n")
    out = tmp_path / "out.ops"
    assert main(["minimize", str(bad), "-o", str(out)]) == 2
    assert "bad.ops:2" in capsys.readouterr().err
    assert main(["minimize", str(tmp_path / "missing.ops"), "-o", str(out)]) == 2
    crash = str(ROOT / "crashes" / "v1" / "resync.ops")
    assert main(["minimize", crash, "-o", str(out), "--signature", "stale-read|v1|x"]) == 2
    assert "does not report" in capsys.readouterr().err
    assert main(["minimize", crash, "-o", str(out), "--variant", "fixed"]) == 2
    assert "no finding" in capsys.readouterr().err
    assert main(["minimize", crash, "-o", str(out), "--variant", "nope"]) == 2
    assert not out.exists()


def test_minimize_budget_keeps_best_so_far():
    padded = _padded(load_input(ROOT / "crashes" / "v1" / "concat-pgd-page-boundary.ops"))
    res = minimize(padded, get_variant("v1"), max_replays=3)
    assert res.exhausted and res.replays == 3
    assert res.signature in _sigs(res.scenario)
    assert len(res.scenario.ops) < len(padded.ops)


# --- export pytest ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["concat-pgd-page-boundary", "lost-error-walker", "resync"])
def test_export_pytest_is_a_passing_test(name, tmp_path):
    path = ROOT / "crashes" / "v1" / f"{name}.ops"
    text, warnings = export_file(str(path), "pytest", "v1")
    assert warnings == []
    code = compile(text, f"test_{name}.py", "exec")
    ns: dict = {}
    exec(code, ns)
    fn = ns[f"test_{name.replace('-', '_')}"]
    fn()                                             # passes
    expected = ns[f"EXPECTED_{name.replace('-', '_').upper()}"]
    assert set(expected) == set(_sigs(load_input(path)))
    # the embedded text keeps the original comments
    assert "# expect v1:" in ns[f"OPS_{name.replace('-', '_').upper()}"]
    # and it is a real check: on a harmless scenario the test fails
    ns[f"OPS_{name.replace('-', '_').upper()}"] = ("# iopgfuzz ops v1\n"
                                                   "map 0x40000000 0x80000000 2M\n")
    with pytest.raises(AssertionError, match="no longer reports"):
        fn()


def test_export_pytest_cli_writes_file(tmp_path, capsys):
    out = tmp_path / "test_exported.py"
    src = str(ROOT / "crashes" / "v1" / "ttbr1-sync.ops")
    assert main(["export", src, "--format", "pytest", "-o", str(out)]) == 0
    ns: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), ns)
    ns["test_ttbr1_sync"]()
    assert main(["export", src, "--format", "pytest"]) == 0
    assert capsys.readouterr().out == out.read_text()


def test_export_bad_input_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.ops"
    bad.write_text("config fmt=arm64-s1\n")
    assert main(["export", str(bad), "--format", "pytest"]) == 2
    assert "first line must be" in capsys.readouterr().err
    refused = tmp_path / "refused.ops"
    refused.write_text("# iopgfuzz ops v1\nconfig fmt=arm64-s1 granule=4K ias=12 oas=48\n")
    assert main(["export", str(refused), "--format", "kunit"]) == 2
    assert "refuses" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.ops"), "--format", "kunit"]) == 2
    with pytest.raises(SystemExit):
        main(["export", str(bad), "--format", "rust"])


# --- export kunit -----------------------------------------------------------------------------

KUNIT_SCENARIO = """\
# iopgfuzz ops v1
config fmt=arm64-s1 granule=4K ias=48 oas=48
map 0x40000000 0x80000000 8K
map 0x40000000 0x90000000 4K prot=r
pt.iova_to_phys 0x40001010
pt.map_pages 0x40200000 0x80200000 4K 4
pt.sync_map 0x40200000 16K
unmap 0x40000000 8K
unmap 0x40000000 4K
smmu 0x40000000
fail alloc
map 0x80000000000 0x80000000 4K
"""

# Derived by hand from the kernel (v6.17) for the scenario above:
# * iommu_map(0x40000000, 8K): iommu_pgsize -> 4K x 2 (8K is below the next size, 2M) -> one
#   map_pages call; then the driver's iotlb_sync_map of the whole range;
# * a second map of a mapped page: __arm_lpae_map -> arm_lpae_init_pte finds a leaf -> -EEXIST,
#   nothing mapped; iommu_map unwinds 0 bytes (no unmap_pages) and skips the sync;
# * iova_to_phys keeps the page offset; pt.map_pages 4 x 4K maps 16K; its sync is legal -> 0;
# * iommu_unmap(8K): one unmap_pages(4K, 2) -> 8K; unmapping the hole again: v6.17 returns
#   (size_t)-ENOENT from __arm_lpae_unmap;
# * an empty PTE translates to 0; with the next table allocation failing, mapping at 8T (a new
#   level-0 entry, so new tables) returns -ENOMEM with nothing mapped and no sync.
# SMMU-view checks, by the stale-read oracle's rule: the successful map and the legal pt.sync_map
# are checked at once; the failed map of 0x40000000 un-syncs that page, so `smmu 0x40000000` is
# not checked.
# Expected sizes are size_t and addresses phys_addr_t ((size_t)SZ_8K, 0ULL): KUNIT_EXPECT_EQ
# compares both sides with their own types, and SZ_8K or 0 is an int (-Wsign-compare).
KUNIT_EXPECTED = """\
\tret = ops->map_pages(ops, 0x40000000UL, 0x80000000ULL, SZ_4K, 2,
\t\t\t     IOMMU_READ | IOMMU_WRITE, GFP_KERNEL, &mapped);
\tKUNIT_EXPECT_EQ(test, ret, 0);
\tKUNIT_EXPECT_EQ(test, mapped, (size_t)SZ_8K);
\tKUNIT_EXPECT_EQ(test, iopgfuzz_smmu_sync_map(smmu, ops, 0x40000000UL, SZ_8K, true), 0);
\tiopgfuzz_smmu_expect_synced(smmu, 0x40000000UL, SZ_8K, "[0] map");
\tret = ops->map_pages(ops, 0x40000000UL, 0x90000000ULL, SZ_4K, 1,
\t\t\t     IOMMU_READ, GFP_KERNEL, &mapped);
\tKUNIT_EXPECT_EQ(test, ret, -EEXIST);
\tKUNIT_EXPECT_EQ(test, mapped, (size_t)0);
\tKUNIT_EXPECT_EQ(test, ops->iova_to_phys(ops, 0x40001010UL), 0x80001010ULL);
\tret = ops->map_pages(ops, 0x40200000UL, 0x80200000ULL, SZ_4K, 4,
\t\t\t     IOMMU_READ | IOMMU_WRITE, GFP_KERNEL, &mapped);
\tKUNIT_EXPECT_EQ(test, ret, 0);
\tKUNIT_EXPECT_EQ(test, mapped, (size_t)SZ_16K);
\tKUNIT_EXPECT_EQ(test, iopgfuzz_smmu_sync_map(smmu, ops, 0x40200000UL, SZ_16K, true), 0);
\tiopgfuzz_smmu_expect_synced(smmu, 0x40200000UL, SZ_16K, "[4] pt.sync_map");
\tKUNIT_EXPECT_EQ(test, ops->unmap_pages(ops, 0x40000000UL, SZ_4K, 2, NULL), (size_t)SZ_8K);
\tKUNIT_EXPECT_EQ(test, ops->unmap_pages(ops, 0x40000000UL, SZ_4K, 1, NULL), (size_t)-ENOENT);
\tKUNIT_EXPECT_EQ(test, ops->iova_to_phys(ops, 0x40000000UL), 0ULL);
\tret = ops->map_pages(ops, 0x80000000000UL, 0x80000000ULL, SZ_4K, 1,
\t\t\t     IOMMU_READ | IOMMU_WRITE, GFP_KERNEL, &mapped);
\tKUNIT_EXPECT_EQ(test, ret, -ENOMEM);
\tKUNIT_EXPECT_EQ(test, mapped, (size_t)0);
"""


def _calls(c_text: str) -> str:
    """The calls and checks of the test function (not of the shared helpers before it)."""
    keep = ("\tret = ", "\t\t\t     ", "\tKUNIT_EXPECT_EQ", "\tops->", "\tiopgfuzz_smmu_expect")
    body = c_text[c_text.index("(struct kunit *test)\n{"):]
    return "".join(ln + "\n" for ln in body.splitlines() if ln.startswith(keep))


def test_export_kunit_small_scenario(tmp_path):
    src = tmp_path / "small.ops"
    src.write_text(KUNIT_SCENARIO)
    text, _ = export_file(str(src), "kunit", "v1")
    assert _calls(text) == KUNIT_EXPECTED
    assert "static void iopgfuzz_small(struct kunit *test)" in text
    assert "\t\t.pgsize_bitmap\t= SZ_4K | SZ_2M | SZ_1G," in text
    assert "\t\t.ias\t\t= 48," in text and "\t\t.coherent_walk\t= false," in text
    assert "\t\t.defer_sync_pte\t= true," in text
    assert "alloc_io_pgtable_ops(ARM_64_LPAE_S1, &cfg, &cfg);" in text
    assert "fault injection needed" in text
    assert text.rstrip().endswith("free_io_pgtable_ops(ops);\n}")
    assert text.count("{") == text.count("}")
    # comments are closed and no line is longer than 100 columns
    assert text.count("/*") == text.count("*/")
    assert max(len(ln.expandtabs(8)) for ln in text.splitlines()) <= 100


def test_export_kunit_stale_read_comment():
    text, _ = export_file(str(ROOT / "crashes" / "v1" / "concat-pgd-page-boundary.ops"),
                          "kunit", "v1")
    assert "alloc_io_pgtable_ops(ARM_64_LPAE_S2, &cfg, &cfg);" in text
    assert ("ret = ops->map_pages(ops, 0x7fc0000000UL, 0x7fc0000000ULL, SZ_1G, 2," in text
            and "ret = ops->map_pages(ops, 0x8000000000UL, 0x8000000000ULL, SZ_1G, 1," in text)
    sync = ("KUNIT_EXPECT_EQ(test, iopgfuzz_smmu_sync_map(smmu, ops, 0x7fc0000000UL, SZ_2G, "
            "true), 0);")
    finding = "iopgfuzz finding: stale-read|v1|-|-|concat"
    assert text.index(sync) < text.index(finding)
    assert "iopgfuzz_smmu_expect_synced() (the recording DMA ops' copy of memory" in text
    assert text.index(finding) > text.index(
        'iopgfuzz_smmu_expect_synced(smmu, 0x7fc0000000UL, SZ_2G, "[0] map");')
    assert 'iopgfuzz_smmu_expect_synced(smmu, 0x8000000000UL, 1, "[1] smmu");' in text
    assert "KUNIT_EXPECT_EQ(test, ops->iova_to_phys(ops, 0x8000000000UL), 0x8000000000ULL);" \
        in text


def test_export_kunit_ttbr1_quirk_and_cli(tmp_path, capsys):
    out = tmp_path / "t.c"
    src = str(ROOT / "crashes" / "v1" / "ttbr1-small-pgd-oob.ops")
    assert main(["export", src, "--format", "kunit", "-o", str(out), "--variant",
                 "v1-review"]) == 0
    text = out.read_text()
    assert ".quirks\t\t= IO_PGTABLE_QUIRK_ARM_TTBR1," in text
    assert "iopgfuzz_smmu_sync_map(smmu, ops, 0xfffffff000000000UL, SZ_4K, true)" in text
    assert "oob-access|v1-review|" in text


def test_c_size():
    assert c_size(4096) == "SZ_4K" and c_size(1 << 39) == "SZ_512G"
    assert c_size(6 << 20) == "3UL * SZ_2M" and c_size(0x1234) == "0x1234UL"
    assert c_size(1 << 63) == "0x8000000000000000UL"
