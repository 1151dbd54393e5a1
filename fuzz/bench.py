"""Benchmarks (numbers go to the docs with the command that produced them; never timed tests)."""

from __future__ import annotations

import time

import numpy as np

from model import Config, World

SZ_4K, SZ_1G = 1 << 12, 1 << 30


def bench_map_1g(line: int = 64) -> dict:
    """Map 1 GiB as 4K pages (paddr skewed by one page so no block can be used), then check
    every page as the SMMU reads it: translation of all 262,144 pages and the CPU/memory
    comparison of every entry on their walks."""
    w = World(Config(line=line))
    iova, paddr = 0x80_0000_0000, 0x1_0000_1000
    t0 = time.perf_counter()
    ret = w.map(iova, paddr, SZ_1G)
    t1 = time.perf_counter()
    npages = SZ_1G // SZ_4K
    oa, ok = w.translate_range(iova, npages, SZ_4K)
    expect = np.uint64(paddr) + np.arange(npages, dtype=np.uint64) * np.uint64(SZ_4K)
    all_ok = bool(ok.all()) and bool(np.equal(oa, expect).all())
    div = w.first_divergence(iova, SZ_1G)
    t2 = time.perf_counter()
    return {"ret": ret, "pages": npages, "translations_ok": all_ok, "divergence": div,
            "map_s": t1 - t0, "check_s": t2 - t1, "stats": w.stats()}


def main() -> int:
    r = bench_map_1g()
    print(f"map 1 GiB as {r['pages']} 4K pages: ret={r['ret']} in {r['map_s']:.3f} s; "
          f"check every page (translate + compare views): {r['check_s']:.3f} s; "
          f"translations ok={r['translations_ok']} divergence={r['divergence']}")
    leaf = r["stats"]["by_site"]["leaf"]
    print(f"leaf cleans: {leaf['calls']} calls, {leaf['lines']} lines")
    return 0 if r["translations_ok"] and r["divergence"] is None else 1


def profile_generated(n: int = 300, seed: int = 5, variant: str = "v1", top: int = 25) -> None:
    """cProfile of `n` generated scenarios (no instrumentation), sorted by cumulative time."""
    import cProfile
    import pstats
    import random

    from fuzz.executor import run_scenario
    from fuzz.generate import random_scenario
    from model.variants import get_variant

    r = random.Random(seed)
    scenarios = [random_scenario(r) for _ in range(n)]
    v = get_variant(variant)
    prof = cProfile.Profile()
    prof.enable()
    for sc in scenarios:
        run_scenario(sc, v)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
