"""The campaign machinery: codec, generator, mutator, triage, the Atheris target, the driver."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.campaigns.campaign import Options, run_campaign
from fuzz.gen import mutate
from fuzz.gen.generate import geometry_of, random_scenario
from fuzz.lang import codec
from fuzz.lang import ops as O
from fuzz.repro.replay import load_input
from fuzz.repro.triage import Triage, load_buckets
from fuzz.run.executor import run_scenario
from model.config import FORMATS
from model.variants import get_variant

ROOT = Path(__file__).resolve().parent.parent
TEXT_INPUTS = sorted((ROOT / "corpus").rglob("*.ops")) + sorted((ROOT / "crashes").rglob("*.ops"))
atheris = pytest.importorskip("atheris", reason="the fuzz extra is not installed")


def test_any_bytes_decode_and_reencode():
    r = random.Random(0)
    for _ in range(3000):
        data = bytes(r.randrange(256) for _ in range(r.randrange(0, 300)))
        sc = codec.decode(data)
        assert len(sc.ops) <= codec.MAX_OPS
        assert codec.decode(codec.encode(sc)) == sc


def test_text_and_binary_are_lossless_both_ways():
    for p in TEXT_INPUTS:
        sc = load_input(p)
        assert codec.decode(codec.encode(sc)) == sc, p.name
        assert O.parse_scenario(O.format_scenario(codec.decode(codec.encode(sc)))) == sc


def test_every_prefix_of_an_encoding_decodes():
    data = codec.encode(load_input(ROOT / "corpus/differential/s1-4k-churn.ops"))
    for n in range(len(data) + 1):
        codec.decode(data[:n])


def test_generator_reaches_every_format_and_op_kind_with_accepted_configs():
    r = random.Random(1)
    fmts, kinds = set(), set()
    for _ in range(400):
        sc = random_scenario(r)
        assert geometry_of(sc.config) is not None
        assert codec.decode(codec.encode(sc)) == sc
        fmts.add(sc.config.fmt)
        kinds.update(op.kind for op in sc.ops)
    assert fmts == set(FORMATS)
    assert kinds == set(O.OP_TYPES)


def test_mutator_and_crossover_always_give_decodable_inputs_within_size():
    r = random.Random(2)
    pool = [codec.encode(random_scenario(r)) for _ in range(30)]
    for i in range(2000):
        out = mutate.custom_mutator(pool[i % 30], 512, i)
        assert len(out) <= 512
        codec.decode(out)
        x = mutate.custom_crossover(pool[i % 30], pool[(i * 7) % 30], 512, i)
        assert len(x) <= 512
        pool[i % 30] = out


def test_every_mutant_is_what_its_bytes_decode_to():
    """The target runs the mutator's scenario without decoding its bytes (mutate.decoded):
    sound only if every mutant's bytes decode to exactly that scenario."""
    r = random.Random(3)
    pool = [codec.encode(random_scenario(r)) for _ in range(20)]
    pool += [bytes(r.randrange(256) for _ in range(r.randrange(1, 200))) for _ in range(20)]
    for i in range(4000):
        a, b = pool[i % len(pool)], pool[(i * 7 + 3) % len(pool)]
        out = mutate.custom_crossover(a, b, 4096, i) if i % 5 == 0 else \
            mutate.custom_mutator(a, 4096 if i % 3 else 64, i)
        assert mutate.decoded(out) == codec.decode(out), (i, out)
        if mutate._last_mutant is not None:
            assert mutate._last_mutant[0] == out
        pool[i % len(pool)] = out


def test_a_fail_op_at_the_end_of_the_binary_range_still_mutates():
    """`fail alloc nth=1048576` is the largest nth the binary form holds; nudging it up made a
    mutant that could not be encoded, and the mutator raised inside the campaign."""
    data = codec.encode(O.Scenario(random_scenario(random.Random(0)).config,
                                   (O.Fail("alloc", codec.MAX_NTH, None),)))
    nths = set()
    for seed in range(300):
        sc = codec.decode(mutate.custom_mutator(data, 4096, seed))
        nths.update(op.nth for op in sc.ops if isinstance(op, O.Fail))
    assert max(nths) == codec.MAX_NTH and codec.MAX_NTH - 1 in nths


def test_triage_opens_one_bucket_per_root_cause_and_counts_across_workers(tmp_path):
    # the map leaves PGD entry 512 stale (op 0), and the SMMU then reads it (op 1): one stale
    # read found twice, so one bucket whose secondary is the SMMU's read at op 1
    path = ROOT / "crashes/v1/concat-pgd-page-boundary.ops"
    sc = load_input(path)
    res = run_scenario(sc, get_variant("v1"))
    sig, later = "stale-read|v1|-|-|concat", "stale-read|v1|smmu|-|-"
    assert [(f.signature, f.op_index) for f in res.findings] == [(sig, 0), (later, 1)]
    a, b = Triage(tmp_path, "a"), Triage(tmp_path, "b")
    assert [(f.signature, f.op_index) for f in a.record(b"", res)] == [(sig, 0)]
    assert a.record(b"", res) == []                 # same process: only counted
    assert b.record(b"", res) == []                 # another worker sees the bucket on disk
    a.flush()
    b.flush()
    (x,) = load_buckets(tmp_path)
    assert x["signature"] == sig
    assert x["count"] == 3                          # 3 runs: 2 recorded in a, 1 in b
    assert x["secondaries"] == [{"signature": later, "count": 3, "first_seen": ANY_FLOAT}]
    assert O.parse_scenario(Path(x["reproducer"]).read_text()) == sc
    assert not list(tmp_path.rglob("*.tmp"))        # nothing half-written left behind


MUTATOR_RAISES = r"""
import runpy, sys
sys.argv = ["target", "-runs=60", "-seed=1", sys.argv[1]]
g = runpy.run_path("fuzz/target.py", run_name="probe")      # imports; main() not yet run
calls = 0
real = g["mutate"].custom_mutator

def sometimes_raises(data, max_size, seed):
    global calls
    calls += 1
    print("call", calls, flush=True)             # (libFuzzer ends the process at -runs)
    if calls % 7 == 0:
        raise ZeroDivisionError("a bug of our mutator")
    return real(data, max_size, seed)

g["mutate"].custom_mutator = sometimes_raises
g["main"]()
"""


def test_a_mutator_exception_is_a_model_error_bucket_and_the_campaign_goes_on(tmp_path):
    """Out of a custom mutator, an exception hangs the libFuzzer worker; the target catches
    it, writes a model-error bucket with the input, and fuzzing goes on to -runs."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed").write_bytes(codec.encode(load_input(ROOT / "corpus/differential/"
                                                          "s1-4k-churn.ops")))
    env = {**os.environ, "IOPGFUZZ_CRASHES": str(tmp_path / "crashes"),
           "IOPGFUZZ_VARIANT": "fixed"}
    out = subprocess.run([sys.executable, "-c", MUTATOR_RAISES, str(corpus)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    calls = int(out.stdout.split()[-1])
    assert calls >= 15                      # it went on after the 7th and the 14th call
    (b,) = [b for b in load_buckets(tmp_path / "crashes") if b["kind"] == "model-error"]
    assert b["signature"].startswith("model-error|fixed|mutator")
    report = (Path(b["reproducer"]).parent / "report.txt").read_text()
    assert "ZeroDivisionError: a bug of our mutator" in report
    assert "NEW BUCKET model-error|fixed|mutator" in out.stderr


class _AnyFloat:
    def __eq__(self, other):
        return isinstance(other, float)


ANY_FLOAT = _AnyFloat()


def _seed_dir(tmp_path: Path, names) -> Path:
    d = tmp_path / "seeds"
    d.mkdir()
    for n in names:
        (d / (n + ".bin")).write_bytes(codec.encode(load_input(ROOT / "crashes/v1" / f"{n}.ops")))
    return d


@pytest.mark.parametrize("variant,expect_buckets", [("v1", True), ("fixed", False)])
def test_target_runs_as_an_executable(tmp_path, variant, expect_buckets):
    seeds = _seed_dir(tmp_path, ["concat-pgd-page-boundary", "lost-error-driver"])
    env = dict(os.environ, IOPGFUZZ_VARIANT=variant, IOPGFUZZ_CRASHES=str(tmp_path / "crashes"),
               PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, str(ROOT / "fuzz/target.py"), "-runs=40", "-seed=1",
                        str(seeds)], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    kinds = {b["kind"] for b in load_buckets(tmp_path / "crashes")}
    if expect_buckets:
        assert {"stale-read", "lost-error"} <= kinds
    else:
        assert kinds == set()


def test_stop_first_ends_the_target_at_the_first_correctness_bucket(tmp_path):
    seeds = _seed_dir(tmp_path, ["concat-pgd-page-boundary"])
    env = dict(os.environ, IOPGFUZZ_VARIANT="v1", IOPGFUZZ_CRASHES=str(tmp_path / "crashes"),
               IOPGFUZZ_STOP_FIRST="1", PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, str(ROOT / "fuzz/target.py"), "-runs=40", "-seed=1",
                        f"-artifact_prefix={tmp_path}/", str(seeds)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0                        # libFuzzer's crash: the run stopped
    out = p.stdout + p.stderr                       # (Atheris prints the exception to stdout)
    assert "NewFinding: stale-read|v1|-|-|concat" in out, out[-3000:]
    assert [b["signature"] for b in load_buckets(tmp_path / "crashes")] == \
        ["stale-read|v1|-|-|concat"]                 # its secondary opens no bucket


def test_campaign_writes_summary_and_exit_code(tmp_path, capsys):
    opt = Options(variant="v1", jobs=1, corpus=tmp_path / "corpus", crashes=tmp_path / "crashes",
                  libfuzzer=["-runs=60", "-seed=3"])
    assert run_campaign(opt) == 1                   # the seeds alone expose v1's findings
    summary = json.loads((tmp_path / "crashes/summary.json").read_text())
    assert {"execs", "exec_per_sec", "seconds", "buckets"} <= set(summary)
    assert summary["execs"] >= 60
    assert summary["buckets"]
    for b in summary["buckets"]:
        assert {"signature", "kind", "count", "first_seen_s", "reproducer"} <= set(b)
        assert Path(b["reproducer"]).exists()
    out = capsys.readouterr().out
    assert "bucket(s)" in out and summary["buckets"][0]["signature"] in out


def test_campaign_instrument_walker_reaches_the_workers(tmp_path):
    opt = Options(variant="v1", jobs=1, corpus=tmp_path / "corpus", crashes=tmp_path / "crashes",
                  instrument="walker", libfuzzer=["-runs=20", "-seed=3"])
    run_campaign(opt)
    log = "".join(p.read_text() for p in (tmp_path / "crashes/logs").glob("*.log"))
    assert "Instrumenting model.variants.v1" in log
    assert "Instrumenting model.io_pgtable_arm" not in log
