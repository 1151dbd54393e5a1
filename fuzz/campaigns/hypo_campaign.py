"""A time-bounded Hypothesis-only campaign: `python -m fuzz hypothesis --variant V --time S`.

The baseline for the Atheris campaigns: the same op language, the same structured strategies
(`fuzz.gen.strategies`), the same executor and oracles, but no coverage guidance, no corpus and no
custom mutator; only Hypothesis's own generation from a seed.  It records, per finding kind, the
time and the number of executions to the first finding, and per primary signature a bucket
(count, first time, the first scenario's text as reproducer, the secondary signatures with their
counts: `fuzz.repro.triage.group_findings`, as in a campaign), in the shape of the Atheris
campaign's `summary.json` so the two can be set side by side.

Hypothesis has no time limit of its own: the test body raises `_TimeUp` once the time is spent,
and the run is configured with the generate phase only (no shrinking, no example database,
quiet), so that exception ends it at once.  A finding never fails the Hypothesis test; it is
only recorded, and generation goes on.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from model.variants import Variant

from ..gen.strategies import scenarios
from ..judge.findings import ALL_KINDS, EFFICIENCY_KINDS, UPSTREAM_KINDS
from ..lang.ops import format_scenario
from ..repro.triage import bucket_census, group_findings
from ..run.executor import run_scenario


class _TimeUp(Exception):
    """Raised inside the Hypothesis test body to end the run."""


@dataclass
class Bucket:
    signature: str
    kind: str
    count: int = 0
    first_seen_s: float = 0.0
    first_exec: int = 0
    reproducer: str = ""
    secondaries: dict[str, int] = field(default_factory=dict)   # signature -> count


@dataclass
class HypoCampaign:
    variant: str
    seed: int
    seconds: float
    max_ops: int = 12
    execs: int = 0
    elapsed: float = 0.0
    buckets: dict[str, Bucket] = field(default_factory=dict)

    #: per kind: [seconds, execution] of its first finding (primary or secondary) and the
    #: number of findings of that kind
    kinds: dict[str, list] = field(default_factory=dict)

    def summary(self) -> dict:
        firsts = sorted(self.kinds.items(), key=lambda kv: kv[1][1])
        return {
            "engine": "hypothesis", "variant": self.variant, "seed": self.seed,
            "max_ops": self.max_ops, "execs": self.execs,
            "exec_per_sec": round(self.execs / self.elapsed, 1) if self.elapsed else 0.0,
            "seconds": round(self.elapsed, 1),
            "first_by_kind": {k: round(v[0], 2) for k, v in firsts},
            "first_exec_by_kind": {k: v[1] for k, v in firsts},
            "count_by_kind": {k: self.kinds[k][2] for k in ALL_KINDS if k in self.kinds},
            "buckets": [{"signature": b.signature, "kind": b.kind, "count": b.count,
                         "first_seen_s": round(b.first_seen_s, 2), "first_exec": b.first_exec,
                         "reproducer": b.reproducer,
                         "secondaries": [{"signature": k, "count": n} for k, n in
                                         sorted(b.secondaries.items(),
                                                key=lambda kv: (-kv[1], kv[0]))]}
                        for b in sorted(self.buckets.values(), key=lambda b: b.first_exec)],
        }


def run_hypothesis_campaign(variant: Variant, seconds: float, seed: int = 0, max_ops: int = 12,
                            out=None, quiet: bool = False) -> HypoCampaign:
    """Generate and run scenarios against `variant` for `seconds`; returns what was found."""
    out = out or sys.stdout
    camp = HypoCampaign(variant.name, seed, seconds, max_ops)
    start = time.monotonic()
    deadline = start + seconds

    def one(sc) -> None:
        now = time.monotonic()
        if now >= deadline:
            raise _TimeUp
        res = run_scenario(sc, variant)
        camp.execs += 1
        t = now - start
        for f in res.findings:              # time to each kind: every finding counts
            k = camp.kinds.get(f.kind)
            if k is None:
                k = camp.kinds[f.kind] = [t, camp.execs, 0]
                if not quiet:
                    print(f"[{t:7.2f}s] exec {camp.execs:>7}  first {f.kind:<22} {f.signature}",
                          file=out, flush=True)
            k[2] += 1
        for g in group_findings(res.findings):       # one bucket per root cause, as triage
            f = g.primary
            b = camp.buckets.get(f.signature)
            if b is None:
                b = camp.buckets[f.signature] = Bucket(f.signature, f.kind, 0, t, camp.execs,
                                                       format_scenario(sc))
            b.count += 1
            for x in g.secondaries:
                b.secondaries[x.signature] = b.secondaries.get(x.signature, 0) + 1

    test = settings(database=None, deadline=None, derandomize=False, max_examples=10**9,
                    phases=[Phase.generate], verbosity=Verbosity.quiet,
                    suppress_health_check=list(HealthCheck))(given(scenarios(max_ops))(one))
    test = hypothesis_seed(seed)(test)
    if not quiet:
        print(f"hypothesis campaign: variant {variant.name}, {seconds:g} s, seed {seed}, "
              f"max {max_ops} ops", file=out, flush=True)
    try:
        test()
    except _TimeUp:
        pass
    camp.elapsed = time.monotonic() - start
    return camp


def print_summary(camp: HypoCampaign, out=None) -> None:
    out = out or sys.stdout
    s = camp.summary()
    print(f"\n{s['execs']} execs in {s['seconds']} s ({s['exec_per_sec']} exec/s, Hypothesis "
          f"only, seed {camp.seed}); {bucket_census(s['buckets'])}; "
          f"{len(s['first_by_kind'])} kind(s)", file=out)
    if s["first_by_kind"]:
        print(f"{'kind':<22} {'first(s)':>9} {'at exec':>8} {'count':>7} {'buckets':>8}",
              file=out)
        for kind, first in s["first_by_kind"].items():
            n_buckets = sum(1 for b in s["buckets"] if b["kind"] == kind)
            eff = "  (efficiency)" if kind in EFFICIENCY_KINDS else \
                "  (upstream)" if kind in UPSTREAM_KINDS else ""
            print(f"{kind:<22} {first:>9.2f} {s['first_exec_by_kind'][kind]:>8} "
                  f"{s['count_by_kind'][kind]:>7} {n_buckets:>8}{eff}", file=out)
    out.flush()


def write_json(camp: HypoCampaign, path: str) -> None:
    from pathlib import Path

    from ..repro.triage import atomic_write

    atomic_write(Path(path), json.dumps(camp.summary(), indent=1))
