"""Robustness: any byte string is a valid input, and running it is never a bug of ours.

100,000 seeded random byte strings are decoded (`fuzz.lang.codec.decode` must never raise) and run
against v1 (`fuzz.run.executor.run_scenario` must never raise and never report `model-error`).  The
inputs are a fixed mix, the same on every run:

* uniform random bytes of length 0..600, and short ones (0..23 bytes);
* the config bytes of a seed or reproducer followed by random bytes (accepted configs, random
  ops);
* a prefix of an encoded seed or reproducer (cut anywhere) followed by random bytes;
* an encoded seed or reproducer with a few bytes replaced, inserted or deleted;
* a generated scenario's encoding (`fuzz.gen.generate`), cut in its second half, with a random tail.

The work is split into chunks with their own seeds and run on a pool of two processes, so the
result does not depend on how the chunks are scheduled.

Determinism: the seeds, the v1 reproducers, 300 generated scenarios and 100 random inputs are run
against v1 and v1-review in four processes with PYTHONHASHSEED 0, 1, 12345 and random, each in a
different order, and some inputs a second time in the same process; the findings (kind,
signature, op index, message, detail), the replay trace and the replay JSON must be identical.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from fuzz.gen.generate import random_scenario
from fuzz.lang import codec
from fuzz.repro.replay import load_input
from fuzz.run.executor import run_scenario
from model.variants import get_variant

ROOT = Path(__file__).resolve().parent.parent
TEXT_INPUTS = sorted((ROOT / "corpus").rglob("*.ops")) + sorted((ROOT / "crashes").rglob("*.ops"))

N_RANDOM = 100_000
CHUNK = 2_500
PROCESSES = 2
MAX_LEN = 600


def _encoded() -> tuple[list[bytes], list[bytes]]:
    scenarios = [load_input(p) for p in TEXT_INPUTS]
    return ([codec.encode(sc) for sc in scenarios],
            [codec.encode_config(sc.config) for sc in scenarios])


ENCODED, CONFIGS = _encoded()


def _uniform(r: random.Random) -> bytes:
    return r.randbytes(r.randrange(0, MAX_LEN + 1))


def _short(r: random.Random) -> bytes:
    return r.randbytes(r.randrange(0, 24))


def _config_then_random(r: random.Random) -> bytes:
    cfg = r.choice(CONFIGS)
    return cfg + r.randbytes(r.randrange(0, MAX_LEN + 1 - len(cfg)))


def _prefix_then_random(r: random.Random) -> bytes:
    enc = r.choice(ENCODED)
    head = enc[:r.randrange(0, len(enc) + 1)]
    return head + r.randbytes(r.randrange(0, max(1, MAX_LEN - len(head))))


def _edited(r: random.Random) -> bytes:
    b = bytearray(r.choice(ENCODED))
    for _ in range(r.randrange(1, 8)):
        i, k = r.randrange(len(b) + 1), r.random()
        if k < 0.5 and i < len(b):
            b[i] = r.randrange(256)
        elif k < 0.75:
            b[i:i] = r.randbytes(r.randrange(1, 8))
        else:
            del b[i:i + r.randrange(1, 8)]
    return bytes(b[:MAX_LEN])


def _generated_then_random(r: random.Random) -> bytes:
    enc = codec.encode(random_scenario(r))
    return (enc[:r.randrange(len(enc) // 2, len(enc) + 1)] + r.randbytes(r.randrange(0, 64)))[
        :MAX_LEN]


#: (weight, maker): most weight on inputs whose config the kernel accepts, since a refused
#: config runs no op at all.
MIX = ((20, _uniform), (5, _short), (25, _config_then_random), (20, _prefix_then_random),
       (15, _edited), (15, _generated_then_random))
_MAKERS = [m for w, m in MIX for _ in range(w)]


def random_input(r: random.Random) -> bytes:
    return r.choice(_MAKERS)(r)


def run_chunk(index: int, n: int = CHUNK, variant: str = "v1") -> dict:
    """Decode and run `n` inputs of chunk `index` (seeded by the index alone).  Returns counts
    and every failure as (input hex, what went wrong)."""
    r = random.Random(0x5EED0000 + index)
    v = get_variant(variant)
    failures: list[tuple[str, str]] = []
    refused = findings = 0
    slowest = (0.0, "")
    t0 = time.perf_counter()
    for _ in range(n):
        data = random_input(r)
        t = time.perf_counter()
        try:
            sc = codec.decode(data)
        except Exception as e:  # noqa: BLE001 - that is what we look for
            failures.append((data.hex(), f"decode raised {e!r}"))
            continue
        try:
            res = run_scenario(sc, v)
        except Exception as e:  # noqa: BLE001
            failures.append((data.hex(), f"run_scenario raised {e!r}"))
            continue
        dt = time.perf_counter() - t
        if dt > slowest[0]:
            slowest = (dt, data.hex())
        refused += res.config_error is not None
        findings += bool(res.findings)
        for f in res.findings:
            if f.kind == "model-error":
                failures.append((data.hex(), f"model-error at op {f.op_index}: {f.message}\n"
                                 + f.detail.get("traceback", "")))
    return {"n": n, "refused": refused, "with_findings": findings, "failures": failures,
            "seconds": time.perf_counter() - t0, "slowest": slowest}


def test_random_inputs_are_deterministic():
    r1, r2 = random.Random(7), random.Random(7)
    assert [random_input(r1) for _ in range(200)] == [random_input(r2) for _ in range(200)]


def test_100k_random_byte_strings_decode_and_run_without_model_error():
    chunks = range(N_RANDOM // CHUNK)
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
        results = pool.map(run_chunk, chunks, chunksize=1)
    wall = time.perf_counter() - t0
    total = sum(x["n"] for x in results)
    assert total == N_RANDOM
    failures = [f for x in results for f in x["failures"]]
    slowest = max(x["slowest"] for x in results)
    print(f"\n{total} random inputs on {PROCESSES} processes in {wall:.1f} s wall "
          f"({sum(x['seconds'] for x in results):.1f} s CPU, "
          f"{sum(x['seconds'] for x in results) / total * 1000:.2f} ms each); "
          f"{sum(x['refused'] for x in results)} refused configs, "
          f"{sum(x['with_findings'] for x in results)} with findings; "
          f"slowest {slowest[0] * 1000:.0f} ms; pid {os.getpid()}")
    assert not failures, "\n\n".join(f"input {h}:\n{why}" for h, why in failures[:5])


# --- determinism: any process, any PYTHONHASHSEED, any order -----------------------------------

DETERMINISM_CHILD = """\
import hashlib, json, sys
from fuzz.lang import codec
from fuzz.run.executor import run_scenario
from fuzz.repro.replay import format_trace, load_input, result_json
from model.variants import get_variant

job = json.load(sys.stdin)
variants = [get_variant(v) for v in job["variants"]]

def scenario(item):
    kind, value = item
    return load_input(value) if kind == "file" else codec.decode(bytes.fromhex(value))

def one(item):
    sc = scenario(item)
    out = {}
    for v in variants:
        res = run_scenario(sc, v)
        out[v.name] = {
            "findings": [[f.kind, f.signature, f.op_index, f.message,
                          json.dumps(f.detail, sort_keys=True, default=repr)]
                         for f in res.findings],
            "trace": hashlib.sha1(format_trace(res).encode()).hexdigest(),
            "json": hashlib.sha1(json.dumps(result_json(res), default=repr).encode()).hexdigest(),
        }
    return out

results = {}
for key in job["order"]:
    results[key] = one(job["inputs"][key])
for key in reversed(job["order"][: job["again"]]):       # again, after everything else ran
    if one(job["inputs"][key]) != results[key]:
        results[key]["again"] = "differs when run a second time in the same process"
json.dump(results, sys.stdout)
"""


def _determinism_inputs() -> dict[str, list[str]]:
    inputs = {}
    for p in sorted((ROOT / "corpus" / "differential").glob("*.ops")) + \
            sorted((ROOT / "crashes" / "v1").glob("*.ops")):
        inputs[f"{p.parent.name}/{p.name}"] = ["file", str(p)]
    r = random.Random(77)
    for i in range(300):
        inputs[f"generated-{i}"] = ["bytes", codec.encode(random_scenario(r)).hex()]
    for i in range(100):
        inputs[f"random-{i}"] = ["bytes", random_input(r).hex()]
    return inputs


def test_same_findings_in_any_process_hash_seed_and_order():
    inputs = _determinism_inputs()
    keys = sorted(inputs)
    runs = {"0": ("sorted", keys), "1": ("reversed", keys[::-1]),
            "12345": ("shuffled", random.Random(1).sample(keys, len(keys))),
            "random": ("shuffled again", random.Random(2).sample(keys, len(keys)))}
    procs = {}
    for seed, (_, order) in runs.items():
        job = {"variants": ["v1", "v1-review"], "inputs": inputs, "order": order, "again": 60}
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        p = subprocess.Popen([sys.executable, "-c", DETERMINISM_CHILD], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        procs[seed] = (p, json.dumps(job))
    results = {}
    for seed, (p, job) in procs.items():
        out, err = p.communicate(job, timeout=600)
        assert p.returncode == 0, err[-3000:]
        results[seed] = json.loads(out)
    base = results["0"]
    assert set(base) == set(keys)
    assert sum(len(v["v1"]["findings"]) for v in base.values()) > 300      # it is a real test
    for seed, res in results.items():
        again = {k for k, v in res.items() if "again" in v}
        assert not again, f"PYTHONHASHSEED={seed}: a second run differs for {sorted(again)}"
        differ = [k for k in keys if res[k] != base[k]]
        assert not differ, (f"PYTHONHASHSEED={seed} ({runs[seed][0]} order) differs from "
                            f"PYTHONHASHSEED=0 (sorted order) on {differ[:10]}")
