"""The benchmark commands run and report what they say (their numbers go to the docs; nothing
here asserts a speed)."""

from fuzz import cli
from fuzz.bench import bench_layers, bench_layers_instrumented

LAYERS = ["variant world only", "both worlds, no checks", "full differential execution"]


def test_layers_report_every_layer_with_a_rate():
    rates = bench_layers("v1", 0)
    assert list(rates) == LAYERS
    assert all(r > 0 for r in rates.values())


def test_instrumented_layers_run_in_a_fresh_interpreter():
    rates = bench_layers_instrumented("fixed", 0, "walker")
    assert list(rates) == LAYERS
    assert all(r > 0 for r in rates.values())


def test_cli_layers_prints_three_modes_of_three_layers(capsys):
    argv = ["bench", "--seeds", "--layers", "--seconds", "0", "--variant", "reference"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9
    for mode in ("uninstrumented", "--instrument model", "--instrument walker"):
        assert sum(mode in ln for ln in lines) == 3
    assert all(ln.startswith("seed corpus, reference,") and ln.endswith("exec/s") for ln in lines)
