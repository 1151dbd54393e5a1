"""The benchmark commands run and report what they say (their numbers go to the docs; nothing
here asserts a speed)."""

import functools

from fuzz import cli
from fuzz.tools.bench import (
    atheris_ns_per_bytecode,
    bench_layers,
    bench_layers_instrumented,
    count_bytecodes,
    layer_bytecodes,
)

LAYERS = ["variant world only", "both worlds, no checks", "full differential execution"]


def test_layers_report_every_layer_with_a_rate():
    rates = bench_layers("v1", 0)
    assert list(rates) == LAYERS
    assert all(r > 0 for r in rates.values())


def test_instrumented_layers_run_in_a_fresh_interpreter():
    rates = bench_layers_instrumented("fixed", 0, "walker")
    assert list(rates) == LAYERS
    assert all(r > 0 for r in rates.values())


def test_cli_layers_prints_three_modes_of_three_layers_and_the_work(capsys, monkeypatch):
    import fuzz.tools.bench

    monkeypatch.setattr(fuzz.tools.bench, "atheris_ns_per_bytecode",
                        functools.partial(atheris_ns_per_bytecode, runs=2000))
    argv = ["bench", "--seeds", "--layers", "--seconds", "0", "--variant", "reference"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rates, floor, work = lines[:9], lines[9], lines[10:]
    for mode in ("uninstrumented", "--instrument model", "--instrument walker"):
        assert sum(mode in ln for ln in rates) == 3
    assert floor.startswith("Atheris's own cost") and "ns/bytecode" in floor
    assert [[x for x in LAYERS if x in ln] for ln in work] == [[x] for x in LAYERS]
    assert all("bytecodes/exec" in ln for ln in work)
    assert all(ln.startswith("seed corpus, reference,") for ln in rates + work)
    assert all(ln.endswith("exec/s") for ln in rates)
    assert all(ln.endswith("exec/s at Atheris's own cost") for ln in work)


def test_bytecode_count_grows_linearly_with_loop_iterations():
    def loop(k):
        acc = 0
        for i in range(k):
            acc += i
        return acc

    c0, c10, c20 = (count_bytecodes(lambda k=k: loop(k)) for k in (0, 10, 20))
    assert c10 > c0 > 0
    assert c20 - c10 == c10 - c0          # each iteration executes the same bytecodes


def test_layers_do_strictly_more_work_as_layers_are_added():
    work = layer_bytecodes("v1")
    assert list(work) == LAYERS
    only, both, full = work.values()
    assert 0 < only < both < full


def test_atheris_floor_counts_its_target_and_times_the_loop():
    floor = atheris_ns_per_bytecode(runs=2000)
    assert floor["bytecodes"] > 60 * 4          # 60 iterations of a body of several bytecodes
    assert floor["exec_per_sec"] > 0 and floor["ns_per_bytecode"] > 0
