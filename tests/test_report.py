"""`python -m fuzz report`: the measurements, the least-possible bound, the command.

Every expected number is worked out by hand from kernel semantics (kernel-semantics §3.11 for
the clean sites) and from the cache geometry, never copied from the report's output.  The
default configuration is arm64-s1, 4K granule, ias = oas = 48, 64-byte lines, non-coherent:
  * 4 levels, L0..L3; every table (the PGD too) has 512 entries = 4096 bytes = 64 lines;
  * one line holds 64 / 8 = 8 PTEs, so PTE index i is in line i // 8;
  * a level-2 entry spans 2M, a level-1 entry 1G.
The least possible, per op, is the number of lines of live tables whose hardware bits the op
changed; a table allocated by the op counts all 64 of its lines (DRAM under it is garbage
until cleaned), whatever was then written into it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.cli import main
from fuzz.lang.ops import Map, MapSg, Segment, Unmap, parse_scenario
from fuzz.tools import report as R
from fuzz.tools.report import measure as M
from fuzz.tools.report import render as Rd
from fuzz.tools.report import workloads as W
from model import Config
from model.variants import get_variant
from model.variants.base import Variant, forwarding_driver_iotlb_sync_map

ROOT = Path(__file__).resolve().parent.parent
K4, M2, G1 = 1 << 12, 1 << 21, 1 << 30
LINES_PER_TABLE = 4096 // 64          # 64
IOVA = 0x1_0000_0000                  # 4G: L0[0], L1[4], L2[0], L3[0]; 1G- and 2M-aligned
PA = 0x2_0000_0000
SITES = ("alloc", "install", "table", "leaf", "sync_map", "unmap")
BUILTIN = ("reference", "v1", "v1-review", "fixed")


def sites(**kw) -> dict:
    """by_site with every unnamed site at 0 calls / 0 lines; kw: site=(calls, lines)."""
    return {s: {"calls": kw.get(s, (0, 0))[0], "lines": kw.get(s, (0, 0))[1]} for s in SITES}


def discontiguous(n: int, iova: int = IOVA) -> MapSg:
    """n 4K segments with a one-page gap between them (iommu_map_sg maps each separately)."""
    return MapSg(iova, tuple(Segment(PA + 2 * i * K4, K4) for i in range(n)))


def run(ops, setup=(), variant="reference", config=None) -> M.Result:
    wl = W.Workload("t", "test", tuple(setup), tuple(ops))
    return M.measure(wl, config or Config(), get_variant(variant))


def warm(iova: int = IOVA) -> tuple:
    """Map and unmap one 4K page: the L1, L2 and L3 tables on iova's path exist, empty."""
    return (Map(iova, PA, K4), Unmap(iova, K4))


class NoCleanVariant(Variant):
    """Defers leaf cleans and never syncs: fewer lines than anything correct, and stale."""

    name = "no-clean"
    defer_sync_pte = True


# --- the reference, by hand --------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 8, 9, 64, 512])
def test_reference_sg_into_a_fresh_domain(n):
    # L0 (the PGD) exists; map_sg allocates L1, L2, L3 (alloc: 3 x 64 lines), installs three
    # table PTEs (install: 3 x 1 line), and each discontiguous segment is its own map_pages
    # call cleaning its one leaf (leaf: n calls of 1 line).
    r = run([discontiguous(n)])
    assert r.by_site == sites(alloc=(3, 3 * 64), install=(3, 3), leaf=(n, n))
    assert (r.lines, r.calls) == (3 * 64 + 3 + n, 3 + 3 + n)
    # least: the PGD line holding L0[0], plus every line of the three new tables (the leaves
    # land in lines of the new L3 table, already counted); one call per table = 4
    assert (r.least_lines, r.least_calls) == (1 + 3 * 64, 4)
    assert r.correct and r.warns == 0


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 100, 512])
def test_least_for_n_consecutive_ptes_in_an_existing_table_is_ceil_n_over_8(n):
    r = run([discontiguous(n)], setup=warm())
    assert (r.least_lines, r.least_calls) == (-(-n // 8), 1)
    assert r.by_site == sites(leaf=(n, n))                 # reference: one leaf clean per page


def test_least_counts_every_line_a_range_touches():
    # 4 pages at L3 index 6..9: lines 0 (6, 7) and 1 (8, 9) -> 2 lines, one table.  The
    # reference maps them with one map_pages call, one leaf clean over bytes [48, 80): 2 lines.
    r = run([Map(IOVA + 6 * K4, PA + K4, 4 * K4)], setup=warm())
    assert (r.least_lines, r.least_calls) == (2, 1)
    assert r.by_site == sites(leaf=(1, 2))


def test_2m_block_is_one_leaf_line():
    # warm L2: the block is one L2 entry, one line, cleaned once
    r = run([Map(IOVA, PA, M2)], setup=warm(IOVA + M2))
    assert r.by_site == sites(leaf=(1, 1))
    assert (r.least_lines, r.least_calls) == (1, 1)
    # fresh domain: L1 and L2 allocated and installed, then the leaf:
    # least = PGD line + 2 x 64 new lines = 129 in 3 tables
    r = run([Map(IOVA, PA, M2)])
    assert r.by_site == sites(alloc=(2, 128), install=(2, 2), leaf=(1, 1))
    assert (r.least_lines, r.least_calls) == (129, 3)


def test_1g_block_in_a_fresh_domain():
    # the 1G block is an L1 entry: only L1 is allocated; least = PGD line + 64 = 65, 2 tables
    r = run([Map(IOVA, PA, G1)])
    assert r.by_site == sites(alloc=(1, 64), install=(1, 1), leaf=(1, 1))
    assert (r.least_lines, r.least_calls) == (65, 2)


def test_unmap_of_a_whole_leaf_table():
    # map 2M as 512 pages (paddr one page off: no block) into a fresh L3 table under an
    # existing L2, then unmap the 2M.  Map: alloc 64 + install 1 + leaf 64 (one call); least
    # 64 + 1 (the new table and the L2 line).  Unmap: iommu_unmap picks the 2M page size;
    # __arm_lpae_unmap finds a table at L2, clears it (C5, 1 line) and frees the L3 table, then
    # clears "the remaining entries" (C6, the same entry again: 1 line).  least: the L2 line;
    # the freed table needs nothing.
    r = run([Map(IOVA, PA + K4, M2), Unmap(IOVA, M2)], setup=warm(IOVA + M2))
    assert r.returns == [0, M2]
    assert r.by_site == sites(alloc=(1, 64), install=(1, 1), leaf=(1, 64), unmap=(2, 2))
    assert (r.least_lines, r.least_calls) == (65 + 1, 2 + 1)


def test_least_counts_each_op_again():
    # the same 16 entries (2 lines) mapped and unmapped 3 times: 6 ops x 2 lines, 1 table each
    ops = [Map(IOVA, PA, 16 * K4), Unmap(IOVA, 16 * K4)] * 3
    r = run(ops, setup=warm())
    assert (r.least_lines, r.least_calls) == (12, 6)
    assert r.by_site == sites(leaf=(3, 6), unmap=(3, 6))


@pytest.mark.parametrize("line,n,expect", [(32, 64, 16), (128, 64, 4), (128, 5, 1)])
def test_least_follows_the_line_size(line, n, expect):
    # line / 8 PTEs per line: 4 with 32-byte lines, 16 with 128-byte lines
    r = run([discontiguous(n)], setup=warm(), config=Config(line=line))
    assert r.least_lines == expect


def test_coherent_walk_needs_no_clean():
    r = run([discontiguous(64)], config=Config(coherent_walk=True))
    assert (r.lines, r.calls, r.least_lines, r.least_calls) == (0, 0, 0, 0)


# --- the deferred variants, by hand ---------------------------------------------------------------

@pytest.mark.parametrize("variant", ["v1", "v1-review", "fixed"])
@pytest.mark.parametrize("n", [1, 8, 9, 64, 512])
def test_deferred_sg_cleans_the_leaf_lines_once(variant, n):
    # map_sg defers every leaf clean to its single sync: one call over the ceil(n / 8) lines
    r = run([discontiguous(n)], variant=variant)
    assert r.by_site == sites(alloc=(3, 192), install=(3, 3), sync_map=(1, -(-n // 8)))
    assert r.correct


def test_least_does_not_depend_on_the_variant():
    wl = [discontiguous(64), Unmap(IOVA, 64 * K4), Map(IOVA, PA + K4, M2)]
    bounds = {v: (lambda r: (r.least_lines, r.least_calls))(run(wl, setup=warm(IOVA + G1),
                                                                variant=v))
              for v in BUILTIN}
    assert len(set(bounds.values())) == 1, bounds


def test_a_variant_that_skips_cleans_is_flagged_not_praised():
    v = NoCleanVariant()
    wl = W.Workload("t", "test", warm(), (discontiguous(64),))
    r = M.measure(wl, Config(), v)
    assert r.lines == 0 < r.least_lines == 8
    assert r.stale is not None and r.stale["op"] == 0 and r.stale["lvl"] == 3
    assert not r.correct
    rep = M.run_report(Config(), [get_variant("reference"), v], ["sg-64"])
    text = Rd.format_text(rep)
    assert "YES L3" in text and "no-clean: sg-64" in text
    assert "| 0 / 0 (stale) |" in Rd.format_summary(rep)


class ExplodingVariant(Variant):
    """A plugin whose sync op raises: an error row, not a crash of the report."""

    name = "boom"
    defer_sync_pte = True

    def io_pgtable_iotlb_sync_map(self, data):
        def sync(ops, iova, size):
            raise RuntimeError("boom")
        return sync

    def driver_iotlb_sync_map(self, pgtbl_ops):
        return forwarding_driver_iotlb_sync_map(pgtbl_ops)


def test_a_variant_that_raises_is_an_error_row():
    rep = M.run_report(Config(), [ExplodingVariant()], ["sg-8"])
    r = _res(rep, "sg-8", "boom")
    assert r.error == "RuntimeError: boom" and not r.correct
    text = Rd.format_text(rep)
    assert "ERROR RuntimeError: boom" in text and "boom: sg-8" in text
    assert _res(rep, "sg-8", "reference").correct


# --- the built-in workloads, default config ---------------------------------------------------

@pytest.fixture(scope="module")
def default_report() -> M.Report:
    return M.run_report(Config(), [get_variant(v) for v in BUILTIN])


def _res(rep, name, variant) -> M.Result:
    wr = next(w for w in rep.workloads if w.workload.name == name)
    return next(r for r in wr.results if r.variant == variant)


def _least(rep, name) -> tuple[int, int]:
    wr = next(w for w in rep.workloads if w.workload.name == name)
    return wr.least_lines, wr.least_calls


def test_every_workload_runs_in_the_default_config(default_report):
    assert [w.workload.name for w in default_report.workloads] == list(W.WORKLOAD_NAMES)
    assert default_report.skipped == []
    assert default_report.variants == list(BUILTIN)


@pytest.mark.parametrize("n", [1, 8, 64, 512])
def test_builtin_sg(default_report, n):
    name = f"sg-{n}"
    assert _least(default_report, name) == (-(-n // 8), 1)
    assert _res(default_report, name, "reference").by_site == sites(leaf=(n, n))
    for v in ("v1", "v1-review", "fixed"):
        assert _res(default_report, name, v).by_site == sites(sync_map=(1, -(-n // 8)))


def test_builtin_sg_with_4_page_segments(default_report):
    # 64 segments x 4 PTEs = 256 PTEs = 32 lines; the reference cleans each segment's half line
    # on its own: 64 calls x 1 line
    assert _least(default_report, "sg-64x4") == (32, 1)
    assert _res(default_report, "sg-64x4", "reference").by_site == sites(leaf=(64, 64))
    assert _res(default_report, "sg-64x4", "fixed").by_site == sites(sync_map=(1, 32))


def test_builtin_large_maps(default_report):
    # 64M as pages: 32 L3 tables + L1 + L2 = 34 new tables; leaves: one map_pages call per L3
    # table (map_pages stops at a table's end): 32 calls x 64 lines
    assert _least(default_report, "map-64M") == (1 + 34 * 64, 35)
    assert _res(default_report, "map-64M", "reference").by_site == \
        sites(alloc=(34, 34 * 64), install=(34, 34), leaf=(32, 32 * 64))
    # 1G as pages: 512 L3 tables + L1 + L2
    assert _least(default_report, "map-1G") == (1 + 514 * 64, 515)
    assert _res(default_report, "map-1G", "reference").by_site == \
        sites(alloc=(514, 514 * 64), install=(514, 514), leaf=(512, 512 * 64))


def test_builtin_blocks(default_report):
    assert _least(default_report, "block-l2") == (1, 1)
    # 64 2M blocks = 64 consecutive L2 entries = 8 lines, one map_pages call
    assert _least(default_report, "block-l2x64") == (8, 1)
    assert _res(default_report, "block-l2x64", "reference").by_site == sites(leaf=(1, 8))
    assert _least(default_report, "block-l1") == (1, 1)
    assert _res(default_report, "block-l1", "reference").by_site == sites(leaf=(1, 1))


def test_builtin_churn(default_report):
    # 32 x (16 PTEs mapped: 2 lines; 16 PTEs cleared: 2 lines)
    assert _least(default_report, "churn") == (32 * 4, 32 * 2)
    assert _res(default_report, "churn", "reference").by_site == \
        sites(leaf=(32, 64), unmap=(32, 64))
    # 16 x (new L3 table + L2 line; L2 line), the reference: see test_unmap_of_a_whole_leaf_table
    assert _least(default_report, "churn-tables") == (16 * 66, 16 * 3)
    assert _res(default_report, "churn-tables", "reference").by_site == \
        sites(alloc=(16, 1024), install=(16, 16), leaf=(16, 1024), unmap=(32, 32))
    # 128 buffers of 4 PTEs (half a line each): map 1 line, unmap 1 line; the reference cleans
    # the 4 discontiguous segments one by one
    assert _least(default_report, "churn-ring") == (256, 256)
    assert _res(default_report, "churn-ring", "reference").by_site == \
        sites(leaf=(512, 512), unmap=(128, 128))
    assert _res(default_report, "churn-ring", "fixed").by_site == \
        sites(sync_map=(128, 128), unmap=(128, 128))


def test_no_builtin_is_wrong_in_the_default_config(default_report):
    for wr in default_report.workloads:
        for r in wr.results:
            assert r.correct, (wr.workload.name, r.variant, r.stale, r.error, r.notes)


# --- properties over several configurations ------------------------------------------------------

CONFIGS = ["", "line=32", "line=128", "granule=16K", "granule=64K", "fmt=arm64-s2,ias=40,oas=40",
           "quirks=ttbr1,ias=36", "fmt=arm32-s1,ias=32,oas=32"]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_least_is_a_lower_bound_of_every_correct_variant(cfg):
    from fuzz.lang.ops import parse_config_filter

    rep = M.run_report(Config(**parse_config_filter(cfg)), [get_variant(v) for v in BUILTIN])
    assert rep.workloads
    for wr in rep.workloads:
        ref = wr.reference
        assert ref.correct, (wr.workload.name, ref)
        assert ref.lines >= wr.least_lines and ref.calls >= wr.least_calls
        for r in wr.results:
            if r.correct:
                assert r.lines >= wr.least_lines, (cfg, wr.workload.name, r.variant)
                assert r.calls >= wr.least_calls, (cfg, wr.workload.name, r.variant)
                assert (r.least_lines, r.least_calls) == (wr.least_lines, wr.least_calls)


def test_v1_on_ttbr1_is_flagged_for_its_warns():
    # findings.md §4: v1 WARNs on every TTBR1 sync (and reads past the 64-entry PGD, §5)
    rep = M.run_report(Config(ias=36, quirks=1 << 5), [get_variant("v1")], ["sg-8"])
    r = _res(rep, "sg-8", "v1")
    assert r.warns > 0 and not r.correct
    assert any("WARN" in n for n in r.notes) and "WARN" in r.flags


# --- the command ------------------------------------------------------------------------------

def test_cli_table_and_exit_code(capsys):
    assert main(["report", "--no-png", "--workload", "sg-8", "--workload", "block-l2"]) == 0
    out = capsys.readouterr().out
    for col in ("lines", "calls", "lines/ref", "lines/least", "stale"):
        assert col in out
    assert "least possible" in out and "sg-8" in out and "block-l2" in out
    assert "sg-512" not in out
    for v in BUILTIN:
        assert f" {v} " in out


def test_cli_reference_is_always_measured(capsys):
    assert main(["report", "--no-png", "--workload", "sg-1", "--variant", "fixed"]) == 0
    out = capsys.readouterr().out
    assert " reference " in out and " fixed " in out and " v1 " not in out


@pytest.mark.parametrize("argv,msg", [
    (["--variant", "nope"], "unknown variant"),
    (["--workload", "nope"], "unknown workload"),
    (["--config", "colour=blue"], "unknown key"),
    (["--config", "ias=12"], "configuration refused"),
    (["--png", "x.png", "--no-png"], "contradict"),
])
def test_cli_bad_arguments_exit_2(capsys, argv, msg):
    assert main(["report", *argv]) == 2
    assert msg in capsys.readouterr().err


def test_cli_json_schema(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["report", "--no-png", "--workload", "sg-64", "--json", str(path)]) == 0
    doc = json.loads(path.read_text())
    assert doc["schema"] == Rd.SCHEMA
    assert {"schema", "config", "geometry", "variants", "workloads", "skipped"} <= set(doc)
    assert doc["config"]["granule"] == 4096 and doc["config"]["line"] == 64
    assert doc["variants"] == list(BUILTIN)
    (wl,) = doc["workloads"]
    assert {"name", "what", "setup", "ops", "least", "results"} <= set(wl)
    assert wl["least"] == {"lines": 8, "calls": 1}
    assert wl["ops"][0].startswith("map_sg ")
    assert set(wl["results"]) == set(BUILTIN)
    for res in wl["results"].values():
        assert {"lines", "calls", "by_site", "warns", "memory_events", "vs_reference",
                "vs_least", "stale", "first_stale", "correct", "flags", "error",
                "notes"} <= set(res)
        assert set(res["by_site"]) == set(SITES)
        assert res["lines"] == sum(s["lines"] for s in res["by_site"].values())
    assert wl["results"]["reference"]["vs_least"] == {"lines": 8.0, "calls": 64.0}
    assert wl["results"]["fixed"]["vs_reference"] == {"lines": 8 / 64, "calls": 1 / 64}


def test_cli_markdown(capsys):
    assert main(["report", "--no-png", "--format", "markdown", "--workload", "sg-1"]) == 0
    out = capsys.readouterr().out
    assert "| workload | variant | lines |" in out
    assert "| `sg-1` | least possible | 1 | 1 |" in out
    assert "- `sg-1`: map_sg of 1 " in out


def test_cli_summary(capsys):
    assert main(["report", "--no-png", "--format", "summary", "--workload", "sg-64"]) == 0
    out = capsys.readouterr().out
    assert "| workload | least possible | reference | v1 | v1-review | fixed |" in out
    # least 8 lines in 1 call; the reference 64 / 64; the deferred ones 8 / 1
    assert "| `sg-64` | 8 / 1 | 64 / 64 | 8 / 1 | 8 / 1 | 8 / 1 |" in out


def test_cli_png_is_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "sub" / "cmo.png"
    assert main(["report", "--png", str(path), "--workload", "sg-8", "--workload",
                 "churn"]) == 0
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_cli_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(R, "matplotlib_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    # the default PNG is skipped with a note: the table is still the result
    assert main(["report", "--workload", "sg-1"]) == 0
    out = capsys.readouterr().out
    assert "least possible" in out and "matplotlib is not installed" in out
    assert ".[report]" in out
    assert not (tmp_path / "out").exists()
    # an explicit --png that cannot be written is an error, after the table
    assert main(["report", "--workload", "sg-1", "--png", "x.png"]) == 2
    cap = capsys.readouterr()
    assert "least possible" in cap.out and ".[report]" in cap.err
    assert not (tmp_path / "x.png").exists()


def test_cli_ops_dir_writes_replayable_scenarios(tmp_path, capsys):
    from fuzz.run.executor import run_scenario

    assert main(["report", "--no-png", "--workload", "sg-8", "--workload", "churn-ring",
                 "--ops-dir", str(tmp_path)]) == 0
    sc = parse_scenario((tmp_path / "sg-8.ops").read_text(), "sg-8.ops")
    assert [op.kind for op in sc.ops] == ["map", "unmap", "map_sg"]
    assert len(sc.ops[2].segs) == 8
    ring = parse_scenario((tmp_path / "churn-ring.ops").read_text(), "churn-ring.ops")
    res = run_scenario(ring, get_variant("fixed"))
    assert not [f for f in res.findings if not f.efficiency], res.findings


def test_matplotlib_is_never_imported_by_the_fuzzer():
    code = ("import sys, fuzz.cli, fuzz.tools.report, fuzz.run.executor, fuzz.campaigns.campaign\n"
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"


def test_readme_shows_the_current_numbers(default_report):
    """The README's table is this report's summary; regenerate it with
    `python -m fuzz report --format summary --png docs/img/cmo.png` when the numbers change."""
    readme = (ROOT / "README.md").read_text()
    rows = [ln for ln in Rd.format_summary(default_report).splitlines() if ln.startswith("| `")]
    assert len(rows) == len(W.WORKLOAD_NAMES)
    for row in rows:
        assert row in readme, f"README.md is out of date: {row}"
    assert (ROOT / "docs/img/cmo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
