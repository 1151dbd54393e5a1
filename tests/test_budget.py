"""The per-world work budget: what it charges, and that it bounds inputs whose cost is not in
entries written (walks over big mapped ranges, repeated many times)."""

import pytest

from fuzz.lang import codec
from fuzz.lang.ops import parse_scenario
from fuzz.run.executor import DEFAULT_BUDGET, run_scenario
from model import BudgetExhausted, Config, World
from model.memory import ACCESS_COST, EVENT_COST
from model.variants import get_variant

HEADER = ("# iopgfuzz ops v1\nconfig fmt=arm64-s1 granule=4K ias=48 oas=48 quirks=none line=64 "
          "concat=mandatory enoent_bug=0\n")


def _world(budget):
    w = World(Config(), None, budget)
    return w, w.data.mem


def test_a_read_costs_its_entries_plus_the_access_cost():
    w, mem = _world(10_000)
    before = mem.budget
    mem.load_many(w.data.pgd, 0, 40)
    assert before - mem.budget == 40 + ACCESS_COST
    before = mem.budget
    mem.load(w.data.pgd, 3)
    assert before - mem.budget == 1 + ACCESS_COST


def test_an_access_that_goes_wrong_costs_the_event_too():
    w, mem = _world(100_000)
    pgd = w.data.pgd                                  # 512 entries (4K granule, ias 48)
    before = mem.budget
    mem.load(pgd, 512)                                # one past the end: an oob-read event
    assert before - mem.budget == 1 + ACCESS_COST + EVENT_COST
    assert w.events.events[-1].kind == "oob-read"


def test_a_clean_costs_the_entries_of_its_lines():
    w, mem = _world(100_000)
    pgd = w.data.pgd
    before = mem.budget
    mem.dma_sync_for_device(pgd, 3, 8 * 10, "leaf")   # entries 3..12: lines 0 and 1 (8 each)
    assert before - mem.budget == 2 * 8 + ACCESS_COST


def test_a_range_walk_of_the_oracles_is_charged_per_table_visited():
    w, mem = _world(None)
    w.map(0x40_0000, 0x40_0000, 0x1000)          # PGD -> L1 -> L2 -> L3: four tables
    mem.budget = 10_000
    w.first_divergence(0x40_0000, 0x1000)
    # one entry of each of the four tables on the walk
    assert 10_000 - mem.budget == 4 * (1 + ACCESS_COST)


def test_running_out_raises_and_no_budget_means_unlimited():
    w, mem = _world(ACCESS_COST)                  # enough for nothing but a zero-entry access
    with pytest.raises(BudgetExhausted):
        mem.load_many(w.data.pgd, 0, 1)
    w2, mem2 = _world(None)
    mem2.load_many(w2.data.pgd, 0, 512)
    assert mem2.budget is None


def _many_big_syncs() -> str:
    """8 x 64 MiB of 4K pages (32 leaf tables each), then 28 syncs of the whole aperture: each
    sync walks every table again.  Entries written stay far below the budget; the walks do not."""
    ops = [f"map {0x10_0000_0000 * i + 0x1000:#x} 0x40001000 64M" for i in range(8)]
    ops += ["sync 0 0x1000000000000", "smmu 0x1000"] * 28
    return HEADER + "\n".join(ops) + "\n"


@pytest.mark.parametrize("variant", ["v1", "fixed", "reference"])
def test_repeated_walks_of_a_big_range_run_out_of_budget(variant):
    sc = parse_scenario(_many_big_syncs())
    bounded = run_scenario(sc, get_variant(variant))
    assert bounded.exhausted
    assert len(bounded.records) < len(sc.ops)
    unbounded = run_scenario(sc, get_variant(variant), budget=None)
    assert not unbounded.exhausted and len(unbounded.records) == len(sc.ops)


def test_the_seed_sized_inputs_never_run_out():
    """A realistic input (a 2 MiB map of pages, a sync, an SMMU read) is far inside it."""
    sc = parse_scenario(HEADER + "map 0x200000 0x80001000 2M\nsync 0x200000 2M\nsmmu 0x201000\n")
    assert not run_scenario(sc, get_variant("v1"), budget=DEFAULT_BUDGET).exhausted


def test_a_walk_through_a_wild_pointer_again_and_again_runs_out():
    """Found by the 100k random-bytes test: v1's pt.sync_map over a 64K-granule table whose
    entries were left as garbage follows ~2,000 wild pointers, each recorded as an event; it
    took 170 ms when events were free."""
    sc = codec.decode(bytes.fromhex(
        "0002050402803730b94c63a5c2557afa037988940dd2f7319ac6a37cccfd849ae530d459551ddf51"
        "cadb8e7e7d0e6d"))
    assert any(op.kind == "pt.sync_map" for op in sc.ops)
    assert run_scenario(sc, get_variant("v1")).exhausted
    assert not run_scenario(sc, get_variant("reference")).exhausted


def test_an_op_the_reference_runs_out_on_is_not_run_on_the_variant():
    """Nothing is judged about a cut-short op, so the variant does not run it: its world still
    holds only what the op before left."""
    # 1G of 4K pages (the physical address is not block-aligned): 262,144 entries
    sc = parse_scenario(HEADER + "map 0x0 0x0 4K\nmap 0x40000000 0x1000 1G\n")
    res = run_scenario(sc, get_variant("v1"), budget=1 << 15)
    assert res.exhausted and len(res.records) == 1
    assert res.var.live_tables() == 4                # the first map's PGD, L1, L2, L3
    assert res.ref.live_tables() > 4                 # the reference ran into the second
