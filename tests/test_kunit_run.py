"""The KUnit export runs, here, against the real io-pgtable-arm.c (`python -m fuzz kunit`).

What each crashes/v1 reproducer's export must do is derived from its `# expect v1:` line (written
from docs/findings.md, not from a run) and from what the exported test can see (its header
says so, fuzz/repro/export/to_kunit.py _KIND_NOTES):

* a stale read (and no `fail sync_map` before it: no kernel test can inject that failure) is
  seen by the SMMU-view check: the test fails on the posted patch, naming the IOVA, and passes
  on upstream (every PTE cleaned when written) and on this project's fix (patches/, @review);
* an over-walk (foreign-walk) cleans lines outside the range: fails on the posted patch,
  passes on the other two;
* any other out-of-bounds access (oob-access) cleans past a table's end, which the recording DMA
  ops refuse: fails on the posted patch, passes on the other two;
* anything else (WARNs, clean counts, lost errors that need fault injection) passes on all
  three, and the export's header says what the test cannot see.

The exports of one page size are pasted into one file (as a maintainer would paste several:
the shared helpers are guarded) and run once per variant, so the whole module takes a few
builds.  Also: a test that does not build is exit 2 with the compiler's message; the stand-in's
KUnit fails and passes plain tests; the newer map_phys DMA hook gives the same verdicts.
"""

import re
import shutil
from pathlib import Path

import pytest

from cworld.kunit import run, run_options
from fuzz.repro.export import export_file

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "patch-v1-review.txt"
FIX = ROOT / "patches" / "v2-0001-iommu-io-pgtable-arm-Implement-.iotlb_sync_map-callback.patch"
VARIANTS = {"posted": f"c:{SEED}", "upstream": "c:upstream", "fix": f"c:{FIX}@review"}

pytestmark = [
    pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc"),
    pytest.mark.usefixtures("real_tree"),
]


def _expect_v1(path: Path) -> set[str]:
    m = re.search(r"^# expect v1: (.*)$", path.read_text(), re.M)
    assert m, f"{path.name} declares nothing for v1"
    return {k.strip() for k in m.group(1).split(",") if k.strip() not in ("", "-")}


def _injected(path: Path) -> bool:
    return bool(re.search(r"^fail sync_map\b", path.read_text(), re.M))


REPRODUCERS = sorted((ROOT / "crashes" / "v1").glob("*.ops"))
STALE = [p for p in REPRODUCERS if "stale-read" in _expect_v1(p) and not _injected(p)]
OVERWALK = [p for p in REPRODUCERS if "foreign-walk" in _expect_v1(p)]
#: the rest with an out-of-bounds access: the recording DMA ops see a clean past a table
OOB = [p for p in REPRODUCERS if "oob-access" in _expect_v1(p)
       and p not in STALE and p not in OVERWALK]


def _case(path: Path) -> str:
    return "iopgfuzz_" + re.sub(r"\W+", "_", path.stem).strip("_").lower()


def _cases(output: str) -> dict[str, tuple[bool, str]]:
    """{case: (passed, its lines)} from the runner's KTAP output."""
    out, lines = {}, []
    for line in output.splitlines():
        m = re.match(r"^    (ok|not ok) \d+ (\w+)", line)
        if m:
            out[m.group(2)] = (m.group(1) == "ok", "\n".join(lines))
            lines = []
        elif line.startswith("    ") and "KTAP" not in line and "Subtest" not in line:
            lines.append(line)
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, str]:
    return {p.name: export_file(str(p), "kunit", "v1")[0] for p in REPRODUCERS}


@pytest.fixture(scope="module")
def results(exports, tmp_path_factory) -> dict[str, dict[str, tuple[bool, str]]]:
    """{variant: {case: (passed, lines)}}: every export, grouped by how it must run."""
    tmp = tmp_path_factory.mktemp("kunit")
    groups: dict[tuple, list[str]] = {}
    for text in exports.values():
        groups.setdefault(tuple(sorted(run_options(text).items())), []).append(text)
    out: dict[str, dict] = {v: {} for v in VARIANTS}
    for i, texts in enumerate(groups.values()):
        test = tmp / f"group{i}.c"
        test.write_text("\n".join(texts))
        for v, spec in VARIANTS.items():
            r = run(test, spec)
            assert r.code in (0, 1), f"{v}: {r.output}"
            out[v].update(_cases(r.output))
    return out


def test_the_lists_are_not_empty():
    assert {p.name for p in STALE} >= {"concat-pgd-page-boundary.ops",
                                       "mali-one-entry-pgd-skip.ops",
                                       "split-on-unmap-6.12.ops"}
    assert {p.name for p in OVERWALK} >= {"small-pgd-overwalk.ops", "64k-48bit-overwalk.ops",
                                          "concat-pgd-level2-overwalk.ops"}


def test_every_export_ran(results):
    for v in VARIANTS:
        assert set(results[v]) == {_case(p) for p in REPRODUCERS}, v


#: What the posted patch's failure must say: the SMMU-view check, the over-walk check
STALE_MESSAGE = (r"the SMMU reads a stale entry for IOVA (0x[0-9a-f]+|0) at level \d: "
                 r"CPU entry 0x[0-9a-f]{16}, memory entry 0x[0-9a-f]{16}")
OVERWALK_MESSAGE = (r"iotlb_sync_map\(0x[0-9a-f]+, (0x[0-9a-f]+|0)\) cleaned \d+ cache line\(s\) "
                    r"holding no entry of the range")
OOB_MESSAGE = (r"dma_sync_single_for_device\(0x[0-9a-f]+, \d+\) runs \d+ bytes past the end of "
               r"the \d+-byte page table at 0x[0-9a-f]+")


@pytest.mark.parametrize(("path", "message"),
                         [(p, STALE_MESSAGE) for p in STALE] +
                         [(p, OVERWALK_MESSAGE) for p in OVERWALK] +
                         [(p, OOB_MESSAGE) for p in OOB],
                         ids=lambda x: x.stem if isinstance(x, Path) else "")
def test_fails_on_the_posted_patch_only(path, message, results):
    passed, lines = results["posted"][_case(path)]
    assert not passed, f"{path.name} passes on the posted patch:\n{lines}"
    assert re.search(message, lines), lines
    for v in ("upstream", "fix"):
        passed, lines = results[v][_case(path)]
        assert passed, f"{path.name} fails on {v}:\n{lines}"


OTHERS = [p for p in REPRODUCERS if p not in STALE and p not in OVERWALK and p not in OOB]


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: p.stem)
def test_other_kinds_pass_and_say_what_they_cannot_see(path, results, exports):
    for v in VARIANTS:
        passed, lines = results[v][_case(path)]
        assert passed, f"{path.name} fails on {v}:\n{lines}"
    text = exports[path.name]
    kinds = _expect_v1(path)
    if "warn" in kinds:
        assert "A WARN does not fail a KUnit test" in text
    if _injected(path):
        assert "which this test cannot make" in text
    if not kinds:
        assert "(none)" in text or "Efficiency" in text


def test_warns_are_printed_not_failed(results):
    passed, lines = results["posted"]["iopgfuzz_ttbr1_sync"]
    assert passed
    assert re.search(r"WARNING: io-pgtable-arm.c:\d+ arm_lpae_iotlb_sync_map: WARN_ON\(.*\), "
                     r"1 time \(not a KUnit failure\)", lines), lines


def test_map_phys_hook_gives_the_same_verdicts(exports, tmp_path):
    """The newer dma_map_ops.map_phys path of the export (IOPGFUZZ_DMA_MAP_PHYS=1)."""
    test = tmp_path / "concat.c"
    test.write_text(exports["concat-pgd-page-boundary.ops"])
    phys = ("-DIOPGFUZZ_DMA_MAP_PHYS=1",)
    r = run(test, VARIANTS["posted"], extra_defines=phys)
    assert r.code == 1 and "stale entry for IOVA 0x8000000000 at level 1" in r.output, r.output
    assert run(test, VARIANTS["upstream"], extra_defines=phys).code == 0


def test_does_not_build_is_exit_2(tmp_path):
    test = tmp_path / "broken.c"
    test.write_text("static void broken(struct kunit *test)\n{\n\tKUNIT_EXPECT_EQ(test, "
                    "no_such_function(), 0);\n}\n")
    r = run(test, "c:upstream")
    assert r.code == 2
    assert "broken.c:3" in r.output and "no_such_function" in r.output, r.output


def test_the_stand_in_fails_and_passes(tmp_path):
    test = tmp_path / "plain.c"
    test.write_text(
        "static void plain_pass(struct kunit *test)\n{\n\tKUNIT_EXPECT_EQ(test, 1 + 1, 2);\n}\n"
        "\nstatic void plain_fail(struct kunit *test)\n{\n\tKUNIT_ASSERT_EQ(test, 1 + 1, 3);\n"
        '\tKUNIT_FAIL(test, "not reached");\n}\n')
    r = run(test, "c:upstream")
    assert r.code == 1
    cases = _cases(r.output)
    assert cases["plain_pass"][0] and not cases["plain_fail"][0]
    assert "Expected 1 + 1 == 3" in cases["plain_fail"][1]
    assert "not reached" not in r.output            # an ASSERT ends the case
    test.write_text(test.read_text().replace("1 + 1, 3", "1 + 1, 2").replace(
        '\tKUNIT_FAIL(test, "not reached");\n', ""))
    assert run(test, "c:upstream").code == 0


#: crashes/upstream/: upstream's own bugs (docs/findings.md U1, U2), exported for `fixed`.
#: Upstream cleans past a table on both (the 32-byte PGD's 64-byte line holding the entries
#: written past it; sizeof(pte) * -1 bytes), which the recording DMA ops refuse; the posted
#: patch defers those cleans but misses the wrapped part of U2's range (a stale read at IOVA 0)
#: and over-walks U1's PGD; the fix syncs what the core mapped and nothing past it.
UPSTREAM_REPRODUCERS = {
    "pgcount-truncation.ops": {
        "upstream": r"dma_sync_single_for_device\(0x[0-9a-f]+, 18446744073709551608\) runs "
                    r"\d+ bytes past the end",
        "posted": r"the SMMU reads a stale entry for IOVA 0 at level 2"},
    "small-pgd-end-unchecked.ops": {
        "upstream": r"runs 32 bytes past the end of the 32-byte page table",
        "posted": r"runs 32 bytes past the end of the 32-byte page table"},
}


def test_upstream_reproducers_fail_where_the_bug_is_seen(tmp_path):
    for name, failures in UPSTREAM_REPRODUCERS.items():
        test = tmp_path / name.replace(".ops", ".c")
        test.write_text(export_file(str(ROOT / "crashes" / "upstream" / name), "kunit",
                                    "fixed")[0])
        for v, spec in VARIANTS.items():
            r = run(test, spec)
            if v in failures:
                assert r.code == 1 and re.search(failures[v], r.output), (name, v, r.output)
            else:
                assert r.code == 0, (name, v, r.output)
