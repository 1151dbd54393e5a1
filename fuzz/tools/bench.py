"""Benchmarks (numbers go to the docs with the command that produced them; never timed tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass

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

    from fuzz.gen.generate import random_scenario
    from fuzz.run.executor import run_scenario
    from fuzz.run.plugins import load_variant as get_variant

    r = random.Random(seed)
    scenarios = [random_scenario(r) for _ in range(n)]
    v = get_variant(variant)
    prof = cProfile.Profile()
    prof.enable()
    for sc in scenarios:
        run_scenario(sc, v)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


def _seed_scenarios():
    from fuzz.campaigns.campaign import SEEDS
    from fuzz.lang.ops import parse_scenario

    files = sorted(SEEDS.glob("*.ops"))
    return [(f.name, parse_scenario(f.read_text(), str(f))) for f in files]


def bench_seeds(variant: str = "v1", seconds: float = 5.0) -> dict:
    """Executions per second over the seed corpus, uninstrumented (the harness's own speed),
    and the slowest seed.  Round-robin over the seeds for `seconds`."""
    from fuzz.run.executor import run_scenario
    from fuzz.run.plugins import load_variant as get_variant

    v = get_variant(variant)
    per, n, dt = _round_robin(_seed_scenarios(), lambda sc: run_scenario(sc, v) and None,
                              seconds)
    return {"execs": n, "seconds": dt, "exec_per_sec": n / dt,
            "worst": {name: p.worst for name, p in per.items()}}


@dataclass
class _InputTimes:
    total: float = 0.0
    runs: int = 0
    worst: float = 0.0
    last: object = None              # what the last run returned (keep it small: a RunResult
    #                                  would hold its worlds, and their C states out of the pool)


def _round_robin(inputs: list, run, seconds: float) -> tuple[dict, int, float]:
    """Run every (name, scenario) in turn for `seconds` (at least one pass) after one warm-up
    pass (imports, first allocations): the times per input, the runs, the seconds."""
    for _, sc in inputs:
        run(sc)
    per = {name: _InputTimes() for name, _ in inputs}
    n, t0 = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < seconds:
        for name, sc in inputs:
            t = time.perf_counter()
            res = run(sc)
            dt = time.perf_counter() - t
            p = per[name]
            p.total, p.runs, p.worst, p.last = p.total + dt, p.runs + 1, max(p.worst, dt), res
            n += 1
    return per, n, time.perf_counter() - t0


def _layers(variant: str) -> dict:
    """The layers of one seed execution, peeled apart: the variant world alone running the ops
    (no reference, no checks), both worlds (still no checks), and the full differential
    execution (executor bookkeeping and the oracles after every op)."""
    from fuzz.run.executor import DEFAULT_BUDGET, apply, run_scenario
    from fuzz.run.plugins import load_variant as get_variant
    from fuzz.run.worlds import default_reference, make_world
    from model import BudgetExhausted, ConfigRejected, KernelBug

    v = get_variant(variant)

    def one_world(sc, var) -> None:
        try:
            w = make_world(var, sc.config, DEFAULT_BUDGET)
        except ConfigRejected:           # a C world refuses what the kernel refuses
            return
        for op in sc.ops:
            try:
                apply(w, op)
            except (KernelBug, BudgetExhausted):
                return

    return {"variant world only": lambda sc: one_world(sc, v),
            "both worlds, no checks": lambda sc: (one_world(sc, default_reference()),
                                                  one_world(sc, v)),
            "full differential execution": lambda sc: run_scenario(sc, v)}


def bench_layers(variant: str = "v1", seconds: float = 3.0) -> dict:
    """Executions per second (CPU time) of each layer over the seeds.  The first bounds what
    any work on the harness, the reference world or the oracles can reach."""
    seeds = [sc for _, sc in _seed_scenarios()]
    out = {}
    for name, fn in _layers(variant).items():
        for sc in seeds:                 # warm up
            fn(sc)
        n, t0 = 0, time.process_time()
        while n == 0 or time.process_time() - t0 < seconds:     # at least one pass
            for sc in seeds:
                fn(sc)
            n += len(seeds)
        out[name] = n / max(time.process_time() - t0, 1e-9)
    return out


def count_bytecodes(fn) -> int:
    """Python bytecodes `fn()` executes (a line tracer with opcode events): a measure of work
    that, unlike time, is the same on every run and every machine."""
    import sys

    n = 0

    def tracer(frame, event, arg):
        nonlocal n
        frame.f_trace_opcodes = True
        if event == "opcode":
            n += 1
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(old)
    return n


def layer_bytecodes(variant: str = "v1") -> dict:
    """Mean Python bytecodes per seed execution of each layer (uninstrumented code)."""
    seeds = [sc for _, sc in _seed_scenarios()]
    out = {}
    for name, fn in _layers(variant).items():
        for sc in seeds:                 # warm up: first-time imports and caches
            fn(sc)
        out[name] = count_bytecodes(lambda f=fn: [f(sc) for sc in seeds]) / len(seeds)
    return out


#: Atheris's own cost: a small integer-and-branch function (no NumPy, no calls), instrumented
#: by Atheris and run in libFuzzer's loop.  It prints how many bytecodes one call executes.
_FLOOR_TARGET = """
import sys
import atheris


def target(data):
    acc = len(data)
    for i in range(60):
        x = (acc * 2654435761 + i) & 0xFFFFFFFF
        if x & 1:
            acc ^= x >> 3
        else:
            acc += x & 0xFF
    if acc == 12345:
        print("unreachable")


from fuzz.tools.bench import count_bytecodes
print("bytecodes", count_bytecodes(lambda: target(b"abc")), file=sys.stderr, flush=True)
atheris.Setup(sys.argv, atheris.instrument_func(target))
atheris.Fuzz()
"""


def atheris_ns_per_bytecode(runs: int = 200_000) -> dict:
    """Atheris's own overhead on this machine: wall time per bytecode of an instrumented
    function in libFuzzer's loop (the difference of `runs` and of one run, so start-up cancels
    out).  The yardstick of design §8: the harness should stay within a small factor of it."""
    import re
    import subprocess
    import sys

    def run(n: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _FLOOR_TARGET, f"-runs={n}", "-seed=1"],
                             capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        m = re.search(r"^bytecodes (\d+)$", out.stderr, re.M)
        if out.returncode != 0 or m is None:
            raise RuntimeError(f"floor target failed (rc {out.returncode}):\n{out.stderr[-2000:]}")
        return dt, int(m.group(1))

    base, nbc = run(1)
    full, _ = run(runs)
    per_exec = max(full - base, 1e-9) / (runs - 1)
    return {"bytecodes": nbc, "exec_per_sec": 1 / per_exec, "ns_per_bytecode": per_exec / nbc * 1e9}


#: Run in a fresh interpreter: importing the target first instruments the model and the
#: oracles exactly as in a campaign (IOPGFUZZ_INSTRUMENT picks the mode), then the layers run.
_INSTRUMENTED_LAYERS = (
    "import json, sys\n"
    "import fuzz.target\n"
    "from fuzz.tools.bench import bench_layers\n"
    "print(json.dumps(bench_layers(sys.argv[1], float(sys.argv[2]))))\n")


def bench_layers_instrumented(variant: str, seconds: float, mode: str) -> dict:
    """`bench_layers` with the campaign's Atheris instrumentation (`mode`: model or walker),
    without libFuzzer's loop or decoding."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, IOPGFUZZ_INSTRUMENT=mode, IOPGFUZZ_CRASHES=tmp)
        out = subprocess.run([sys.executable, "-c", _INSTRUMENTED_LAYERS, variant, str(seconds)],
                             env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"instrumented layers failed (rc {out.returncode}):\n"
                           f"{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_seeds_atheris(variant: str = "v1", runs: int = 200) -> dict:
    """The Atheris target itself (instrumented, libFuzzer's loop) run `runs` times on each
    binary seed with `-runs`; libFuzzer prints the time per file."""
    import os
    import re
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from fuzz.campaigns.campaign import TARGET, write_seeds

    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds"
        write_seeds(seeds)
        files = sorted(str(p) for p in seeds.iterdir())
        env = dict(os.environ, IOPGFUZZ_VARIANT=variant, IOPGFUZZ_CRASHES=str(Path(tmp) / "c"))
        out = subprocess.run([sys.executable, str(TARGET), f"-runs={runs}", *files],
                             env=env, capture_output=True, text=True, check=False)
    ms = {Path(m[0]).stem: int(m[1]) for m in
          re.findall(r"Executed (\S+) in (\d+) ms", out.stderr)}
    if len(ms) != len(files):
        raise RuntimeError(f"target run failed (rc {out.returncode}):\n{out.stderr[-2000:]}")
    total_ms = sum(ms.values())
    return {"execs": runs * len(files), "seconds": total_ms / 1000,
            "exec_per_sec": runs * len(files) / (total_ms / 1000),
            "per_seed_ms": {k: v / runs for k, v in ms.items()}}


def bench_corpus(folder, variant: str = "v1", seconds: float = 5.0,
                 budget: int | None = None) -> dict:
    """Executions per second over a campaign's corpus folder (every input in turn,
    uninstrumented, for `seconds`, at least one pass): what a campaign's workers run, unlike
    the seeds, whose inputs are a third of the size.  Also the slowest inputs and the share of
    the time spent in runs that ran out of work budget."""
    from pathlib import Path

    from fuzz.repro.replay import load_input
    from fuzz.run.executor import DEFAULT_BUDGET, run_scenario
    from fuzz.run.plugins import load_variant as get_variant

    v = get_variant(variant)
    budget = DEFAULT_BUDGET if budget is None else budget
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and
                   not p.name.startswith("."))
    inputs = [(f.name, load_input(f)) for f in files]
    if not inputs:
        raise ValueError(f"{folder}: no input files")
    per, n, dt = _round_robin(inputs, lambda sc: run_scenario(sc, v, budget=budget).exhausted,
                              seconds)
    out = [p for p in per.values() if p.last]
    mean_ms = sorted((p.total / p.runs * 1e3, name) for name, p in per.items())
    return {"execs": n, "seconds": dt, "exec_per_sec": n / dt, "inputs": len(inputs),
            "out_of_budget": len(out),
            "out_of_budget_time_share": sum(p.total for p in out) /
            sum(p.total for p in per.values()),
            "median_ms": mean_ms[len(mean_ms) // 2][0], "slowest": mean_ms[::-1][:5]}


def main_corpus(folder, variant: str = "v1", seconds: float = 5.0,
                budget: int | None = None) -> int:
    if budget is not None and budget < 1:
        raise ValueError(f"--budget {budget}: give a positive number of work units")
    r = bench_corpus(folder, variant, seconds, budget)
    at = f" at budget {budget}" if budget is not None else ""
    print(f"corpus {folder}, {variant}{at}, uninstrumented: {r['exec_per_sec']:.0f} exec/s "
          f"({r['execs']} execs of {r['inputs']} inputs in {r['seconds']:.1f} s); median "
          f"{r['median_ms']:.2f} ms; {r['out_of_budget']} inputs run out of work budget, "
          f"{100 * r['out_of_budget_time_share']:.0f}% of the time")
    for ms, name in r["slowest"]:
        print(f"  slowest {ms:7.2f} ms  {name}")
    return 0


def main_seeds(variant: str = "v1", seconds: float = 5.0, atheris_runs: int = 200,
               layers: bool = False) -> int:
    if layers:
        runs = [("uninstrumented", bench_layers(variant, seconds))]
        runs += [(f"--instrument {m}", bench_layers_instrumented(variant, seconds, m))
                 for m in ("model", "walker")]
        for how, rates in runs:
            for name, rate in rates.items():
                print(f"seed corpus, {variant}, {how:20s} {name:28s} {rate:6.0f} exec/s")
        floor = atheris_ns_per_bytecode()
        ns = floor["ns_per_bytecode"]
        print(f"Atheris's own cost: a {floor['bytecodes']}-bytecode instrumented function runs "
              f"{floor['exec_per_sec']:.0f} exec/s in libFuzzer's loop = {ns:.1f} ns/bytecode")
        for name, nbc in layer_bytecodes(variant).items():
            print(f"seed corpus, {variant}, {name:28s} {nbc:8.0f} bytecodes/exec -> "
                  f"{1e9 / (nbc * ns):6.0f} exec/s at Atheris's own cost")
        return 0
    r = bench_seeds(variant, seconds)
    print(f"seed corpus, {variant}, uninstrumented: {r['exec_per_sec']:.0f} exec/s "
          f"({r['execs']} execs in {r['seconds']:.1f} s)")
    for name, w in sorted(r["worst"].items(), key=lambda kv: -kv[1]):
        print(f"  worst {w * 1e3:7.2f} ms  {name}")
    if atheris_runs:
        a = bench_seeds_atheris(variant, atheris_runs)
        print(f"seed corpus, {variant}, Atheris target (-runs={atheris_runs} per seed): "
              f"{a['exec_per_sec']:.0f} exec/s")
        for name, ms in sorted(a["per_seed_ms"].items(), key=lambda kv: -kv[1]):
            print(f"  mean {ms:7.2f} ms  {name}")
    return 0
