"""The benchmark commands run and report what they say (their numbers go to the docs; nothing
here asserts a speed)."""

import functools

from fuzz import cli
from fuzz.tools.bench import (
    atheris_ns_per_bytecode,
    bench_corpus,
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


def test_corpus_bench_counts_the_runs_that_ran_out_of_budget(tmp_path):
    head = "# iopgfuzz ops v1\nconfig fmt=arm64-s1 granule=4K\n"
    (tmp_path / "small.ops").write_text(head + "map 0x0 0x0 4K\nsmmu 0x0\n")
    # 64M of 4K pages (a paddr not block-aligned): 16,384 entries written, more than 8,192;
    # the small one allocates four tables of 512 entries and cleans and reads a few
    (tmp_path / "big.ops").write_text(head + "map 0x0 0x1000 64M\n")
    (tmp_path / ".hidden").write_text("not an input")      # libFuzzer's lock files and such
    r = bench_corpus(tmp_path, "v1", 0, budget=1 << 13)
    assert r["inputs"] == 2 and r["execs"] % 2 == 0 and r["execs"] >= 2
    assert r["out_of_budget"] == 1
    assert 0 < r["out_of_budget_time_share"] < 1
    assert {name for _, name in r["slowest"]} == {"small.ops", "big.ops"}


def test_corpus_bench_names_a_missing_folder(tmp_path, capsys):
    assert cli.main(["bench", "--corpus", str(tmp_path / "nope"), "--seconds", "0"]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err


def test_corpus_bench_names_a_file_that_does_not_parse(tmp_path, capsys):
    (tmp_path / "bad.ops").write_text("# iopgfuzz ops v1\nconfig fmt=arm64-s1\nmapp 0x0 0x0 4K\n")
    assert cli.main(["bench", "--corpus", str(tmp_path), "--seconds", "0"]) == 2
    err = capsys.readouterr().err
    assert "bad.ops:3: unknown op 'mapp'" in err


def test_corpus_bench_takes_a_budget_from_the_command_line(tmp_path, capsys):
    head = "# iopgfuzz ops v1\nconfig fmt=arm64-s1 granule=4K\n"
    (tmp_path / "big.ops").write_text(head + "map 0x0 0x1000 64M\n")     # 16,384 entries
    argv = ["bench", "--corpus", str(tmp_path), "--seconds", "0", "--variant", "v1"]
    assert cli.main(argv + ["--budget", "8192"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "at budget 8192" in first and "1 inputs run out of work budget" in first
    assert cli.main(argv) == 0                                  # the default: far inside it
    assert "0 inputs run out of work budget" in capsys.readouterr().out
    assert cli.main(argv + ["--budget", "0"]) == 2
    assert "--budget 0" in capsys.readouterr().err
