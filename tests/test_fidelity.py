"""`fidelity`: the model against the kernel C (Debian 6.12 in the cache, fetched by
run_tests.sh).  The CI sample: corpus/, crashes/ and 200 random scenarios leave no
unexplained difference; and the check can fail: a C build that lost one clean, or a model
whose kernel-version switches are not set to the tree, is told apart, with a reproducer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kernel_patches import NO_LEAF_CLEAN_PATCH

from fuzz.lang import ops as O
from fuzz.run.plugins import load_variant
from fuzz.tools import fidelity as F
from model.variants import V1, Reference

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT.parent / "shared" / "seed" / "patch-v1-review.txt"



@pytest.fixture(scope="module")
def upstream():
    return load_variant("c:upstream")


@pytest.fixture(scope="module")
def seed_v1():
    return load_variant(f"c:{SEED}")


def test_ci_sample_has_no_unexplained_difference(upstream, seed_v1):
    pairings = [F.Pairing("reference", Reference(), upstream),
                F.Pairing("variant", V1(), seed_v1)]
    report = F.run_fidelity(pairings, upstream, F.scenario_files(ROOT), 200, seed=0,
                            minimize=False)
    assert report.differences == [], F.format_report(report)
    # the sample really compares: most ops of most scenarios ran in both worlds
    assert report.scenarios == len(F.scenario_files(ROOT)) + 200
    assert report.compared_ops > 1000


def test_a_lost_clean_is_a_difference_with_a_small_reproducer(tmp_path, upstream):
    patch = tmp_path / "no-leaf-clean.patch"
    patch.write_text(NO_LEAF_CLEAN_PATCH)
    broken = load_variant(f"c:{patch}")
    pairing = F.Pairing("reference", Reference(), broken)
    sc = O.parse_scenario((ROOT / "corpus/differential/s1-4k-churn.ops").read_text())
    diffs = F.compare_scenario(sc, pairing)
    assert [d.aspect for d in diffs] == ["cleans"]
    assert "leaf" in diffs[0].model and "leaf" not in diffs[0].c
    small = F.minimize_difference(diffs[0], pairing, upstream)
    assert len(small.ops) < len(sc.ops)
    assert any(d.key == diffs[0].key for d in F.compare_scenario(small, pairing))


def test_the_split_on_unmap_switch_is_what_makes_6_12_agree(monkeypatch, upstream):
    """A partial unmap of a block: 6.12 splits it.  With the tree's switches the model
    agrees with the C; with the model's 6.17 defaults it does not."""
    sc = O.parse_scenario("# iopgfuzz ops v1\nconfig fmt=arm64-s1 granule=4K\n"
                          "map 0x200000 0x40200000 2M\nunmap 0x201000 4K\nsmmu 0x200000\n")
    pairing = F.Pairing("reference", Reference(), upstream)
    assert F.compare_scenario(sc, pairing) == []
    monkeypatch.setattr(F, "model_config_for", lambda config, c_variant: config)
    diffs = F.compare_scenario(sc, pairing)
    assert diffs and diffs[0].op_index == 1
    assert {d.aspect for d in diffs} >= {"return"}


def test_cli_exit_codes(tmp_path):
    ok = tmp_path / "ok.ops"
    ok.write_text((ROOT / "corpus/differential/s1-4k-sg-list.ops").read_text())
    run = [sys.executable, "-m", "fuzz", "fidelity", "--random", "0", "--no-minimize"]
    r = subprocess.run(run + [str(ok)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 unexplained difference(s)" in r.stdout
    r = subprocess.run(run + ["--patch", str(tmp_path / "missing.patch"), str(ok)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "missing.patch" in r.stderr
