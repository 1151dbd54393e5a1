"""One bucket per root cause: a run's first finding of each category is its primary, every later
finding of that category a secondary that opens no bucket but is listed and counted.

The expected findings are derived from docs/findings.md (which oracle fires at which op, in
the oracles' order of docs/oracles.md), not from a run of the code under test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from fuzz.cli import main
from fuzz.lang import codec
from fuzz.lang import ops as O
from fuzz.repro.minimize import minimize
from fuzz.repro.replay import load_input, result_json
from fuzz.repro.triage import Triage, group_findings, scan_buckets
from fuzz.run.executor import run_scenario
from model.variants import get_variant

ROOT = Path(__file__).resolve().parent.parent
CRASHES = ROOT / "crashes" / "v1"
V1 = get_variant("v1")


def _run(text: str):
    return run_scenario(O.parse_scenario("# iopgfuzz ops v1\n" + text), V1)


def _record(root: Path, res, worker: str = "w") -> list:
    t = Triage(root, worker)
    new = t.record(codec.encode(res.scenario), res, "the trace")
    t.flush()
    return new


# docs/findings.md §6: the walk fails at its fourth level (the level-3 table); PATCH 2/2's driver
# returns 0, so the map "succeeds" (lost-error, judged first among the op's oracles) with the
# leaf uncleaned (stale-read at that same op); the SMMU's walk at op 2 then reads it stale too.
LOST_THEN_STALE = ("config fmt=arm64-s1 granule=4K ias=48 oas=48\n"
                   "fail sync_map nth=4\n"
                   "map 0x40000000 0x80000000 4K\n"
                   "smmu 0x40000000\n")
LOST = "lost-error|v1|driver|-|-"
STALE_EXACT = "stale-read|v1|-|-|exact"
STALE_LATER = "stale-read|v1|smmu|-|-"


def test_a_caused_finding_is_a_secondary_of_the_first(tmp_path):
    res = _run(LOST_THEN_STALE)
    assert [(f.signature, f.op_index) for f in res.findings] == \
        [(LOST, 1), (STALE_EXACT, 1), (STALE_LATER, 2)]
    (g,) = group_findings(res.findings)
    assert g.primary.signature == LOST
    assert [(f.signature, f.op_index) for f in g.secondaries] == [(STALE_EXACT, 1),
                                                                  (STALE_LATER, 2)]
    assert [f.signature for f in _record(tmp_path, res)] == [LOST]
    scan = scan_buckets(tmp_path)
    assert not scan.problems
    (b,) = scan.buckets                               # the stale reads open no bucket
    assert b["signature"] == LOST and b["count"] == 1
    assert [(s["signature"], s["count"]) for s in b["secondaries"]] == [(STALE_EXACT, 1),
                                                                       (STALE_LATER, 1)]
    report = (Path(b["reproducer"]).parent / "report.txt").read_text()
    assert "secondary findings of this run (2;" in report
    assert f"  {STALE_EXACT}  (op 1): " in report and f"  {STALE_LATER}  (op 2): " in report
    assert main(["triage", str(tmp_path)]) == 1       # the table lists the secondary


def test_triage_table_lists_secondaries(tmp_path, capsys):
    _record(tmp_path, _run(LOST_THEN_STALE))
    _record(tmp_path, _run(LOST_THEN_STALE), "w2")
    assert main(["triage", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    row = next(i for i, ln in enumerate(lines) if ln.endswith(f"  {LOST}"))
    assert lines[row].split()[:2] == ["lost-error", "2"]
    assert lines[row + 2].split() == ["+", "secondary", "2x", STALE_EXACT]
    assert lines[row + 3].split() == ["+", "secondary", "2x", STALE_LATER]


def test_independent_runs_with_different_primaries_give_two_buckets(tmp_path):
    # §1 (a stale read across the concatenated PGD) and §4 (TTBR1's iaext WARN)
    a = run_scenario(load_input(CRASHES / "concat-pgd-page-boundary.ops"), V1)
    b = run_scenario(load_input(CRASHES / "ttbr1-sync.ops"), V1)
    _record(tmp_path, a)
    _record(tmp_path, b)
    sigs = {x["signature"] for x in scan_buckets(tmp_path).buckets
            if x["kind"] not in ("cmo-regression", "redundant-clean")}
    assert sigs == {"stale-read|v1|-|-|concat", "warn|v1|arm_lpae_iotlb_sync_map:iaext|-|-"}


def test_efficiency_findings_have_their_own_primary(tmp_path):
    # §5 + §9: the TTBR1 small-PGD walk reads past the PGD (oob-access, first of the op's
    # oracles), walks foreign entries and WARNs; the same sync cleans lines holding no entry
    # of the range (redundant-clean) and more lines than the reference in total (cmo-regression,
    # judged at the end).  Correctness and efficiency never explain each other.
    res = run_scenario(load_input(CRASHES / "ttbr1-small-pgd-oob.ops"), V1)
    groups = group_findings(res.findings)
    assert [g.primary.kind for g in groups] == ["oob-access", "redundant-clean"]
    oob, eff = groups
    assert {f.kind for f in oob.secondaries} == {"oob-access", "foreign-walk", "warn"}
    assert [f.kind for f in eff.secondaries] == ["cmo-regression"]
    new = _record(tmp_path, res)
    assert [f.kind for f in new] == ["oob-access", "redundant-clean"]
    kinds = {b["kind"]: b for b in scan_buckets(tmp_path).buckets}
    assert set(kinds) == {"oob-access", "redundant-clean"}
    assert [s["signature"] for s in kinds["redundant-clean"]["secondaries"]] == \
        ["cmo-regression|v1|total|-|small/ttbr1"]


def test_nothing_is_dropped_a_secondary_of_a_known_bucket_is_still_counted(tmp_path):
    # a first run opens the bucket (no SMMU read: its one secondary is the stale read right
    # after the map); a later run of the same root cause has a secondary the first did not
    # (the SMMU's read): the bucket is not rewritten, the new secondary is counted and listed
    _record(tmp_path, _run("config fmt=arm64-s1 granule=4K ias=48 oas=48\n"
                           "fail sync_map nth=4\nmap 0x40000000 0x80000000 4K\n"))
    (b,) = scan_buckets(tmp_path).buckets
    before = (Path(b["reproducer"]).parent / "report.txt").read_text()
    assert STALE_EXACT in before and STALE_LATER not in before
    assert [s["signature"] for s in b["secondaries"]] == [STALE_EXACT]
    assert _record(tmp_path, _run(LOST_THEN_STALE), "w2") == []
    (b,) = scan_buckets(tmp_path).buckets
    assert (Path(b["reproducer"]).parent / "report.txt").read_text() == before
    assert b["count"] == 2 and [(s["signature"], s["count"]) for s in b["secondaries"]] == \
        [(STALE_EXACT, 2), (STALE_LATER, 1)]


def test_counts_files_round_trip_and_old_counts_still_read(tmp_path, capsys):
    res = _run(LOST_THEN_STALE)
    _record(tmp_path, res, "new")
    counts = tmp_path / ".counts"
    # the primaries' counts keep the old shape, {signature: [count, first_seen]}: an older
    # iopgfuzz reads them; the secondaries live in a subfolder it never looks into
    doc = json.loads((counts / "new.json").read_text())
    assert list(doc) == [LOST] and len(doc[LOST]) == 2
    sec = json.loads((counts / "secondary" / "new.json").read_text())
    assert list(sec) == [LOST] and list(sec[LOST]) == [STALE_EXACT, STALE_LATER]
    assert sec[LOST][STALE_EXACT][0] == 1
    # a counts file from before (every finding counted under its own signature) adds up
    (counts / "old.json").write_text(json.dumps({LOST: [5, 1.0], STALE_EXACT: [9, 1.0]}))
    scan = scan_buckets(tmp_path)
    assert not scan.problems
    (b,) = scan.buckets
    assert b["count"] == 6 and b["first_seen"] == 1.0
    assert [(s["signature"], s["count"]) for s in b["secondaries"]] == [(STALE_EXACT, 1),
                                                                       (STALE_LATER, 1)]
    # a damaged secondaries file is named, and its counts left out
    bad = counts / "secondary" / "other.json"
    bad.write_text('{"' + LOST + '": {"x": [1, ')
    assert main(["triage", str(tmp_path)]) == 2
    assert f"error: {bad}: unreadable counts file of secondary findings" in \
        capsys.readouterr().err


def test_replay_json_marks_primaries_and_keeps_every_finding():
    res = _run(LOST_THEN_STALE)
    doc = result_json(res)
    assert [(f["signature"], f["op_index"], f["primary"], f["secondary_of"])
            for f in doc["findings"]] == [(LOST, 1, True, None), (STALE_EXACT, 1, False, LOST),
                                          (STALE_LATER, 2, False, LOST)]
    assert {"kind", "signature", "op_index", "message", "detail"} <= set(doc["findings"][0])


def test_minimizing_a_primary_keeps_it_the_primary():
    # padding around §6's reproducer: an unrelated map before and an SMMU read after
    sc = O.parse_scenario("# iopgfuzz ops v1\nconfig fmt=arm64-s1 granule=4K ias=48 oas=48\n"
                          "map 0x7000000000 0x1000 64K prot=r\n"
                          "fail sync_map nth=4\nmap 0x40000000 0x80000000 4K\n"
                          "smmu 0x40000000\nunmap 0x7000000000 64K\n")
    res = minimize(sc, V1)
    assert res.signature == LOST
    assert group_findings(res.result.findings)[0].primary.signature == LOST
    assert len(res.scenario.ops) == 2                 # the fail and the map


def test_signatures_are_coarse_where_the_cause_is_not_in_the_detail():
    # §1 leaves a block stale at L1, or a table's leaves stale at L3 (the last 4K segment lands
    # at 512G, behind the PGD's first page, in tables whose descriptors were cleaned when
    # installed): one stale-read signature
    l1 = _run("config fmt=arm64-s2 granule=4K ias=40 oas=40\nmap 0x7fc0000000 0x7fc0000000 2G\n")
    l3 = _run("config fmt=arm64-s2 granule=4K ias=40 oas=40\n"
              "map_sg 0x7fffff8000 0x0+16K 0x0+16K 0x0+4K\n")
    assert [(f.kind, f.level) for f in l1.findings] == [("stale-read", "L1")]
    assert ("stale-read", "L3") in [(f.kind, f.level) for f in l3.findings]
    assert {f.signature for f in l1.findings} == {"stale-read|v1|-|-|concat"}
    assert "stale-read|v1|-|-|concat" in {f.signature for f in l3.findings}
    # §6 in two configuration classes: error propagation knows nothing of the PGD's shape
    small = _run("config fmt=arm64-s1 granule=4K ias=40 oas=40\n"
                 "fail sync_map\nmap 0x40000000 0x80000000 4K\n")
    assert group_findings(small.findings)[0].primary.signature == LOST
    # §8: a walk on an empty request, wherever it reads, is one signature
    empty = run_scenario(load_input(CRASHES / "empty-sg-sync.ops"), V1)
    assert group_findings(empty.findings)[0].primary.signature == \
        "foreign-walk|v1|sync_map:empty|-|-"


def test_levels_count_from_the_pgd_so_problems_2_and_3_stay_apart():
    # 16K, ias 40, stage 2: 16 concatenated level-2 pages, the PGD is at L2.  One page at 64G
    # (the PGD's second page) over-walks the PGD itself: §3, at the top level.
    p3 = _run("config fmt=arm64-s2 granule=16K ias=40 oas=40\nmap 0x1000000000 0x80000000 16K\n")
    # 4K, ias 40, stage 2: the PGD is at L1 (two pages); one page at 3G over-walks its L2
    # table, the level below the PGD: §2.  Both walks are at L2.
    p2 = _run("config fmt=arm64-s2 granule=4K ias=40 oas=40\nmap 0xc0000000 0x80000000 4K\n")
    f3 = group_findings(p3.findings)[0].primary
    f2 = group_findings(p2.findings)[0].primary
    assert (f3.kind, f3.level, f2.kind, f2.level) == ("foreign-walk", "L2", "foreign-walk", "L2")
    assert f3.signature == "foreign-walk|v1|sync_map|top|-"
    assert f2.signature == "foreign-walk|v1|sync_map|top+1|-"


def test_6_12_split_stale_reads_stay_apart_from_the_sync_walks():
    # §10: the map's sync was good; the unmap's split then left leaves uncleaned, and only the
    # later SMMU walk sees it: `smmu`, where problems 1 and 2 are seen right after the sync
    res = run_scenario(load_input(CRASHES / "split-on-unmap-6.12.ops"), V1)
    assert [f.signature for f in res.findings] == ["stale-read|v1|smmu|-|-"]
    # the split is the unmap's, whatever the PGD's shape: the same signature on a small PGD
    # (4K, ias 40: two PGD entries) and a concatenated one (stage 2, 4K, ias 40)
    for config in ("fmt=arm64-s1 granule=4K ias=40 oas=40",
                   "fmt=arm64-s2 granule=4K ias=40 oas=40"):
        other = _run(f"config {config} split=1\nmap 0x200000 0x40200000 2M\n"
                     "unmap 0x201000 4K\nsmmu 0x200000\n")
        assert [f.signature for f in other.findings] == ["stale-read|v1|smmu|-|-"], config


STABILITY = """\
import json, sys
from pathlib import Path
from fuzz.run.executor import run_scenario
from fuzz.repro.replay import load_input
from fuzz.repro.triage import group_findings
from model.variants import get_variant
out = []
for p in sys.argv[1:]:
    res = run_scenario(load_input(p), get_variant("v1"))
    out.append([[g.primary.signature, [s.signature for s in g.secondaries]]
                for g in group_findings(res.findings)])
print(json.dumps(out))
"""


def test_primaries_and_signatures_are_stable_across_hash_seeds():
    files = [str(p) for p in sorted(CRASHES.glob("*.ops"))]
    outs = []
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        p = subprocess.run([sys.executable, "-c", STABILITY, *files], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append(json.loads(p.stdout))
    assert outs[0] == outs[1]
    here = [[[g.primary.signature, [s.signature for s in g.secondaries]]
             for g in group_findings(run_scenario(load_input(f), V1).findings)] for f in files]
    assert here == outs[0]
    assert all("0x" not in sig for run in here for g in run for sig in [g[0], *g[1]])


def test_a_synced_range_past_the_ias_is_a_cause_of_its_own():
    # v1 at the top level (4K, ias 48, L0): sync_idx_end = (0 + 0xffffffffffe11000 + 2^39 - 4K)
    # mod 2^64 >> 39 = 0x7fffe10000 >> 39 = 0 = sync_idx_start, so the walk visits nothing and
    # the page mapped without sync stays stale: an overflow of the range arithmetic, in any
    # class, not problem 1 or 2 of findings.md (which keep their `-|concat` / `-|small`)
    res = _run("config fmt=arm64-s1 granule=4K ias=48 oas=48\n"
               "map_nosync 0x0 0x0 4K\nsync 0x0 0xffffffffffe11000\n")
    assert [(f.signature, f.level) for f in res.findings] == \
        [("stale-read|v1|past-ias|-|-", "L3")]
    concat = run_scenario(load_input(CRASHES / "concat-pgd-page-boundary.ops"), V1)
    assert group_findings(concat.findings)[0].primary.signature == "stale-read|v1|-|-|concat"


def test_a_request_past_the_ias_is_past_ias_only_where_the_walk_followed_it():
    # §12: the sync of [2^48, +4K) on a one-page PGD (4K, ias 48) walks IOVA 0's tables: the
    # index arithmetic drops bit 48, so the walk goes where the request says, masked.
    alias = _run("config fmt=arm64-s1 granule=4K ias=48 oas=48\n"
                 "map 0x0 0x80000000 4K\nsync 0x1000000000000 4K\n")
    assert group_findings(alias.findings)[0].primary.signature == \
        "foreign-walk|v1|past-ias|-|-"
    # §2 on a request that also runs past the IAS (Mali, ias 36: [0xffffff000, +0x1200) ends
    # 0x200 bytes past 2^36).  At L1, shift = LVL_SHIFT(0) + PGD_IDX(0) = 39 - 9 = 30, so
    # iova_offset = 0x3ffff000, sync_idx_end = (0x3ffff000 + 0x1200 + 1G - 4K) >> 30 = 1, below
    # the start index 63: the walk runs to entry 511.  Its first foreign entry, 64 =
    # [2^36, 2^36 + 1G), is no index the request names (indices stop at 2^36 - 1): problem 2's
    # own over-walk, with problem 2's signature.
    mali = _run("config fmt=mali granule=4K ias=36 oas=36\n"
                "map_nosync 0x0 0x0 4K\nsync 0xffffff000 0x1200\n")
    fw = [f for f in mali.findings if f.kind == "foreign-walk"]
    assert [f.signature for f in fw] == ["foreign-walk|v1|sync_map|top+1|-"]
    assert "[0x1000000000, 0x103fffffff]" in fw[0].message


def test_a_sub_granule_sync_is_a_cause_of_its_own():
    # §14: [0x1000, +2K) at L3 (4K): sync_idx_start = 1, sync_idx_end = (0x1000 + 0x800 + 4K
    # - 4K) >> 12 = 1, so no L3 entry is visited and the leaf stays uncleaned.  It is not the
    # stale read of problem 1 or 2 (which the class would have merged it with): `unaligned`.
    res = _run("config fmt=arm64-s1 granule=4K ias=48 oas=48\n"
               "pt.map_pages 0x1000 0x1000 4K 1\npt.sync_map 0x1000 2K\n")
    assert group_findings(res.findings)[0].primary.signature == "stale-read|v1|unaligned|-|-"
    # the same page synced whole is fine; fixed syncs the sub-granule range too
    assert not _run("config fmt=arm64-s1 granule=4K ias=48 oas=48\n"
                    "pt.map_pages 0x1000 0x1000 4K 1\npt.sync_map 0x1000 4K\n").findings
    assert not run_scenario(res.scenario, get_variant("fixed")).findings
