"""The kernel selftest sequence (kernel-semantics §7) on the whole matrix, non-coherent."""

import pytest

import model.selftest as st
from model import Variant, World


def test_matrix_size_matches_kernel():
    # 3 bitmaps x 21 (ias <= oas) pairs from {32,36,40,42,44,48} x 2 formats = 126
    assert sum(1 for _ in st.selftest_configs()) == 3 * 21 * 2


@pytest.mark.parametrize("line", [32, 64, 128])
def test_reference_never_leaves_a_stale_entry(line):
    n, failures = st.run_all(line)
    assert n == 126
    assert failures == [], "\n".join(map(str, failures[:5]))


class _SkipLeafClean(Variant):
    """PATCH 1/2's flag with nobody calling the sync: leaves stay in the CPU cache."""

    name = "skip-leaf-clean"
    defer_sync_pte = True


def test_the_check_fails_when_leaf_cleans_are_skipped(monkeypatch):
    monkeypatch.setattr(st, "World", lambda c: World(c, _SkipLeafClean()))
    n, failures = st.run_all(64)
    assert len(failures) == n
    assert all("stale" in f.step for f in failures)
