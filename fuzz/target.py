#!/usr/bin/env python3
"""The Atheris fuzz target: one input = one scenario, run against reference and a variant.

No positional arguments of its own: everything after the program name goes to libFuzzer.  It is
configured through the environment (the campaign driver sets these):

    IOPGFUZZ_VARIANT     built-in name, path/file.py:Name or pkg.mod:Name   (default v1)
    IOPGFUZZ_CRASHES     bucket folder                                       (default out/crashes)
    IOPGFUZZ_CONFIG      config filter, e.g. "fmt=arm64-s2,granule=4K"      (default none)
    IOPGFUZZ_STRICT      1: efficiency findings are crashes too
    IOPGFUZZ_STOP_FIRST  1: stop (libFuzzer crash) at the first new finding
    IOPGFUZZ_INSTRUMENT  model: coverage of the whole model and the oracles;
                         walker: only the variants' walkers (and a plugin) and the oracles,
                         about 1.5x the executions per second (docs/campaigns.md, "Speed");
                         c: no Python at all, only the C worlds' edges;
                         auto (default): c when both worlds are C worlds, else model

A finding with a new signature is written to its bucket and the campaign goes on; known
signatures are only counted.
"""

import contextlib
import inspect
import os
import sys
import traceback

import atheris
import numpy  # noqa: F401  - imported first: NumPy must never be instrumented
from atheris.import_hook import HookManager
from atheris.instrument_bytecode import patch_code

#: Coverage feedback comes from the code under test and the checks that judge it: the model
#: (io-pgtable, core, variants) and the oracles.  The harness itself (decoding, executor
#: bookkeeping, triage, the mutator) would only add noise and cost.  Comparison (dataflow)
#: tracing is off: it feeds libFuzzer's byte-level mutators, which our structure-aware custom
#: mutator never calls.  (HookManager is instrument_imports() with that switch exposed.)
INSTRUMENTED = {"model"}
#: Leaf helpers called hundreds of times per input whose branches say nothing about the page
#: table (C integer conversions, the event log): instrumenting them only costs time.
NOT_INSTRUMENTED_MODEL = {"model.cint", "model.events", "model.errors"}
#: `IOPGFUZZ_INSTRUMENT=walker` leaves the kernel model itself (the reference behaviour) out too.
MODEL_CORE = {"model", "model.config", "model.driver", "model.failpoints", "model.io_pgtable_arm",
              "model.iommu", "model.memory", "model.pte", "model.selftest", "model.smmu",
              "model.world"}
INSTRUMENT_MODES = ("auto", "model", "walker", "c")


def auto_instrument_mode(variant: str, reference: str) -> str:
    """`auto`: `c` when both worlds are C worlds, else `model`.  With both worlds in C, the
    kernel C's own edges guide the campaign (cworld/coverage.py) and the Python left is the
    iommu core, the same in both worlds, and the oracles, whose instrumentation costs about 15%
    of the executions (docs/c-world.md, "Speed")."""
    ref = reference or "model"
    both_c = variant.startswith("c:") and (ref == "c" or ref.startswith("c:"))
    return "c" if both_c else "model"


INSTRUMENT = os.environ.get("IOPGFUZZ_INSTRUMENT", "") or "auto"
if INSTRUMENT not in INSTRUMENT_MODES:
    sys.exit(f"IOPGFUZZ_INSTRUMENT={INSTRUMENT!r}: use one of {', '.join(INSTRUMENT_MODES)}")
if INSTRUMENT == "auto":
    INSTRUMENT = auto_instrument_mode(os.environ.get("IOPGFUZZ_VARIANT", "v1"),
                                      os.environ.get("IOPGFUZZ_REFERENCE", ""))
#: Of fuzz/, only the oracles: every other module of the package is harness.  The modules the
#: target imports (and their subpackages) are named; a source tree's listing adds any others (a
#: PyInstaller bundle has no listing: the names suffice there).
INSTRUMENTED_FUZZ = {"fuzz.judge.oracles"}


def _fuzz_modules() -> set[str]:
    """Every module and subpackage of fuzz/ in this source tree, by its dotted name."""
    root = os.path.dirname(os.path.abspath(__file__))
    out = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.isfile(os.path.join(folder, d, "__init__.py"))]
        rel = os.path.relpath(folder, root)
        pkg = "fuzz" if rel == "." else "fuzz." + rel.replace(os.sep, ".")
        out.update(pkg if n == "__init__.py" else f"{pkg}.{n[:-3]}"
                   for n in files if n.endswith(".py"))
    return out


NOT_INSTRUMENTED_FUZZ = ({"fuzz", "fuzz.lang", "fuzz.lang.codec", "fuzz.lang.ops", "fuzz.gen",
                          "fuzz.gen.generate", "fuzz.gen.mutate", "fuzz.judge",
                          "fuzz.judge.findings", "fuzz.judge.intervals", "fuzz.judge.records",
                          "fuzz.run", "fuzz.run.executor", "fuzz.run.plugins", "fuzz.repro",
                          "fuzz.repro.replay", "fuzz.repro.triage"}
                         | _fuzz_modules()) - INSTRUMENTED_FUZZ

NOT_INSTRUMENTED = NOT_INSTRUMENTED_MODEL | NOT_INSTRUMENTED_FUZZ | \
    (MODEL_CORE if INSTRUMENT == "walker" else set())

#: `c`: no Python is instrumented; libFuzzer's coverage is the C worlds' edges alone.
_HOOK = contextlib.nullcontext() if INSTRUMENT == "c" else \
    HookManager(INSTRUMENTED | {"fuzz"}, NOT_INSTRUMENTED, enable_loader_override=True,
                trace_dataflow=False)
with _HOOK:
    from fuzz.gen import mutate
    from fuzz.judge import oracles as _oracles  # noqa: F401  - instrumented: oracle branches count
    from fuzz.judge.findings import Finding, is_crash
    from fuzz.judge.records import RunResult
    from fuzz.lang.ops import Scenario, parse_config_filter
    from fuzz.repro.replay import format_trace
    from fuzz.repro.triage import Triage
    from fuzz.run.executor import run_scenario
    from fuzz.run.plugins import load_variant


def instrument_plugin(variant) -> None:
    """A variant loaded from a file or an outside module is the code under test too."""
    mod = sys.modules.get(type(variant).__module__)
    # (a C world's variant is glue: its code under test is the C, whose edges libFuzzer gets)
    if mod is None or INSTRUMENT == "c" or mod.__name__.split(".")[0] in INSTRUMENTED | {"cworld"}:
        return
    for obj in list(vars(mod).values()):
        fns = [obj] if inspect.isfunction(obj) else \
            [f for f in vars(obj).values() if inspect.isfunction(f)] if inspect.isclass(obj) else []
        for fn in fns:
            if fn.__module__ == mod.__name__:
                fn.__code__ = patch_code(fn.__code__, trace_dataflow=False)


class NewFinding(Exception):
    """Raised only with IOPGFUZZ_STOP_FIRST, to make libFuzzer stop and save the input."""


VARIANT = load_variant(os.environ.get("IOPGFUZZ_VARIANT", "v1"))
instrument_plugin(VARIANT)
TRIAGE = Triage(os.environ.get("IOPGFUZZ_CRASHES", "out/crashes"))
PINNED = parse_config_filter(os.environ.get("IOPGFUZZ_CONFIG", ""))
STRICT = os.environ.get("IOPGFUZZ_STRICT") == "1"
STOP_FIRST = os.environ.get("IOPGFUZZ_STOP_FIRST") == "1"


def decode(data: bytes) -> Scenario:
    sc = mutate.decoded(data)        # (the mutant just made, not decoded again)
    if PINNED:
        sc = Scenario(sc.config.with_(**PINNED), sc.ops)
    return sc


_c_libraries_seen = 0


def register_c_coverage() -> None:
    """Hand the edge counters of C world libraries to libFuzzer, once each, as soon as they
    are loaded (cworld/coverage.py): the campaign is then guided by the kernel C's edges."""
    global _c_libraries_seen
    world = sys.modules.get("cworld.world")
    if world is None or len(world.Library._loaded) == _c_libraries_seen:
        return
    from cworld import coverage
    coverage.register(list(world.Library._loaded.values()))
    _c_libraries_seen = len(world.Library._loaded)


def TestOneInput(data: bytes) -> None:  # noqa: N802 - libFuzzer's name
    res = run_scenario(decode(data), VARIANT)
    register_c_coverage()
    if not res.findings:
        return
    new = TRIAGE.record(data, res, lambda: format_trace(res))   # traced only for new buckets
    crashes = announce(new)
    if crashes and STOP_FIRST:
        raise NewFinding(crashes[0].signature)


def announce(new: list[Finding]) -> list[Finding]:
    """Print the campaign's NEW BUCKET lines; returns those of a crash kind."""
    crashes = []
    for f in new:
        crash = is_crash(f.kind, STRICT)
        if crash:
            crashes.append(f)
        print(f"\nNEW BUCKET {f.signature}  ({'finding' if crash else 'note'}: {f.message})",
              file=sys.stderr, flush=True)
    return crashes


def guarded(mutator, name: str):
    """`mutator`, made never to raise.  An exception out of a custom mutator does not end a
    libFuzzer worker: it hangs it (measured with atheris 3.0), so a bug of our mutator would
    stall a campaign silently.  It is a finding of our own code instead: a `model-error`
    bucket holding the input it failed on, and libFuzzer gets that input back unchanged."""
    def call(data: bytes, *rest):
        try:
            return mutator(data, *rest)
        except Exception:  # noqa: BLE001 - any bug of ours
            f = Finding("model-error", VARIANT.name, name, "-", "-", -1,
                        f"the custom {name} raised",
                        {"traceback": traceback.format_exc(limit=-8)})
            res = RunResult(decode(data), VARIANT.name, findings=[f])
            announce(TRIAGE.record(data, res, f.detail["traceback"]))
            return data[:rest[-2]]                  # (max_size is the one before the seed)
    return call


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput, custom_mutator=guarded(mutate.custom_mutator, "mutator"),
                  custom_crossover=guarded(mutate.custom_crossover, "crossover"))
    try:
        atheris.Fuzz()
    finally:
        TRIAGE.flush()


if __name__ == "__main__":
    main()
