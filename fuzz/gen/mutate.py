"""Structure-aware mutation and crossover for the Atheris target.

Mutations act on decoded scenarios (whole ops and fields), never on raw bytes: insert a
generated op or a user-like template, delete, duplicate, swap, move a numeric field toward a
boundary of the format, or switch the configuration.  The result is encoded again, so every
mutant is a well-formed input.
"""

from __future__ import annotations

import dataclasses
import random

from ..lang import codec
from ..lang import ops as O
from .generate import (
    U64,
    boundaries,
    geometry_of,
    random_config,
    random_op,
    random_scenario,
    random_template,
)

NUMERIC_FIELDS = ("iova", "paddr", "size", "pgsize", "pgcount", "nth")


def _nudge(r: random.Random, g, value: int) -> int:
    k = r.random()
    if k < 0.3:
        return (value + r.choice((-1, 1, -2, 2, 512, -512)) * g.granule) & U64
    if k < 0.6:
        b = r.choice(g.blocks)
        return ((value // b) * b + r.choice((0, b, -g.granule, g.granule))) & U64
    if k < 0.8:
        return r.choice(boundaries(g)) & U64
    return value ^ (1 << r.randrange(0, 64))


def mutate_field(r: random.Random, g, op: O.Op) -> O.Op:
    names = [f.name for f in dataclasses.fields(op)
             if f.name in NUMERIC_FIELDS and isinstance(getattr(op, f.name), int)]
    if isinstance(op, O.MapSg) and (not names or r.random() < 0.5):
        segs = list(op.segs)
        i = r.randrange(len(segs))
        s = segs[i]
        segs[i] = r.choice((
            dataclasses.replace(s, length=max(0, s.length + r.choice((-1, 1)) * g.granule) & U64),
            dataclasses.replace(s, paddr=_nudge(r, g, s.paddr)),
            dataclasses.replace(s, bus=not s.bus)))
        if r.random() < 0.3 and len(segs) < codec.MAX_SEGS:
            segs.insert(i, s)
        return dataclasses.replace(op, segs=tuple(segs))
    if not names:
        return op
    name = r.choice(names)
    value = getattr(op, name)
    if name == "nth":
        # kept inside the binary form, or the mutant could not be encoded
        return dataclasses.replace(op, nth=min(max(1, value + r.choice((-1, 1, 2))),
                                               codec.MAX_NTH))
    if name == "pgcount":
        return dataclasses.replace(op, pgcount=r.choice((1, 2, 511, 512, 513, value + 1,
                                                         (1 << 31), max(0, value - 1))))
    return dataclasses.replace(op, **{name: _nudge(r, g, value)})


def mutate(sc: O.Scenario, r: random.Random, max_ops: int = codec.MAX_OPS) -> O.Scenario:
    g = geometry_of(sc.config)
    if g is None or r.random() < 0.05:
        return random_scenario(r)
    ops = list(sc.ops)
    k = r.random()
    if k < 0.2 or not ops:
        i = r.randrange(len(ops) + 1)
        new = random_template(r, g) if r.random() < 0.4 else [random_op(r, g)]
        ops[i:i] = new
    elif k < 0.3:
        del ops[r.randrange(len(ops))]
    elif k < 0.4:
        i = r.randrange(len(ops))
        ops.insert(r.randrange(len(ops) + 1), ops[i])
    elif k < 0.5 and len(ops) > 1:
        i, j = r.randrange(len(ops)), r.randrange(len(ops))
        ops[i], ops[j] = ops[j], ops[i]
    elif k < 0.9:
        i = r.randrange(len(ops))
        ops[i] = mutate_field(r, g, ops[i])
    else:
        return O.Scenario(random_config(r), tuple(ops[:max_ops]))
    return O.Scenario(sc.config, tuple(ops[:max_ops]))


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    r = random.Random(seed)
    sc = mutate(_decode_corpus_input(data), r)
    for _ in range(r.choice((0, 0, 1, 2))):
        sc = mutate(sc, r)
    return _fit(sc, max_size)


def custom_crossover(data1: bytes, data2: bytes, max_out_size: int, seed: int) -> bytes:
    r = random.Random(seed)
    a, b = _decode_corpus_input(data1), _decode_corpus_input(data2)
    cut_a = r.randrange(len(a.ops) + 1)
    cut_b = r.randrange(len(b.ops) + 1)
    sc = O.Scenario(a.config, (a.ops[:cut_a] + b.ops[cut_b:])[:codec.MAX_OPS])
    return _fit(sc, max_out_size)


#: Decoding is a tenth of a campaign's execution on a typical corpus input (80 us for 18 ops),
#: and every input was decoded twice: by the mutator, then by the target.  The mutant libFuzzer
#: runs next is handed to the target as the scenario it was made from, and to the mutator
#: again: libFuzzer mutates its own last mutant up to -mutate_depth (5) times in a row.  A
#: corpus input is mutated many times, so its decoding is kept.  All exact: `decode` is a pure
#: function of the bytes, and a mutant's scenario is what its bytes decode to (every mutation
#: stays inside the binary form: tests/test_fuzz_pipeline.py).
CORPUS_CACHE_MAX = 2048
_corpus_cache: dict[bytes, O.Scenario] = {}
_last_mutant: tuple[bytes, O.Scenario] | None = None


def _as_last_mutant(data: bytes) -> O.Scenario | None:
    last = _last_mutant
    return last[1] if last is not None and last[0] == data else None


def _decode_corpus_input(data: bytes) -> O.Scenario:
    sc = _as_last_mutant(data)          # (not cached: a mutant is rarely mutated again later)
    if sc is None:
        sc = _corpus_cache.get(data)
    if sc is None:
        if len(_corpus_cache) >= CORPUS_CACHE_MAX:
            _corpus_cache.clear()
        sc = _corpus_cache[data] = codec.decode(data)
    return sc


def decoded(data: bytes) -> O.Scenario:
    """`codec.decode(data)`, without decoding again when `data` is the last mutant."""
    sc = _as_last_mutant(data)
    return codec.decode(data) if sc is None else sc


def _fit(sc: O.Scenario, max_size: int) -> bytes:
    global _last_mutant
    data = codec.encode(sc)
    while len(data) > max_size and sc.ops:
        sc = O.Scenario(sc.config, sc.ops[:-1])
        data = codec.encode(sc)
    # (cut through the config block, the bytes are no longer sc's encoding)
    _last_mutant = (data, sc) if len(data) <= max_size else None
    return data[:max_size]
