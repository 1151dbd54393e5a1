"""A time-bounded Hypothesis-only campaign: `python -m fuzz hypothesis --variant V --time S`.

The baseline for the Atheris campaigns: the same op language, the same structured strategies
(`fuzz.strategies`), the same executor and oracles, but no coverage guidance, no corpus and no
custom mutator; only Hypothesis's own generation from a seed.  It records, per finding kind, the
time and the number of executions to the first finding, and per signature a bucket (count, first
time, the first scenario's text as reproducer), in the shape of the Atheris campaign's
`summary.json` so the two can be set side by side.

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

from .executor import run_scenario
from .findings import ALL_KINDS, EFFICIENCY_KINDS, UPSTREAM_KINDS
from .ops import format_scenario
from .strategies import scenarios


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


@dataclass
class HypoCampaign:
    variant: str
    seed: int
    seconds: float
    max_ops: int = 12
    execs: int = 0
    elapsed: float = 0.0
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def first_by_kind(self) -> dict[str, Bucket]:
        """The earliest bucket of each kind, in the order the kinds were first reached."""
        out: dict[str, Bucket] = {}
        for b in sorted(self.buckets.values(), key=lambda b: b.first_exec):
            out.setdefault(b.kind, b)
        return out

    def summary(self) -> dict:
        firsts = self.first_by_kind()
        return {
            "engine": "hypothesis", "variant": self.variant, "seed": self.seed,
            "max_ops": self.max_ops, "execs": self.execs,
            "exec_per_sec": round(self.execs / self.elapsed, 1) if self.elapsed else 0.0,
            "seconds": round(self.elapsed, 1),
            "first_by_kind": {k: round(b.first_seen_s, 2) for k, b in firsts.items()},
            "first_exec_by_kind": {k: b.first_exec for k, b in firsts.items()},
            "count_by_kind": {k: sum(b.count for b in self.buckets.values() if b.kind == k)
                              for k in ALL_KINDS if k in firsts},
            "buckets": [{"signature": b.signature, "kind": b.kind, "count": b.count,
                         "first_seen_s": round(b.first_seen_s, 2), "first_exec": b.first_exec,
                         "reproducer": b.reproducer}
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
        for f in res.findings:
            b = camp.buckets.get(f.signature)
            if b is None:
                new_kind = all(x.kind != f.kind for x in camp.buckets.values())
                b = camp.buckets[f.signature] = Bucket(f.signature, f.kind, 0, t, camp.execs,
                                                       format_scenario(sc))
                if new_kind and not quiet:
                    print(f"[{t:7.2f}s] exec {camp.execs:>7}  first {f.kind:<22} {f.signature}",
                          file=out, flush=True)
            b.count += 1

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
          f"only, seed {camp.seed}); {len(s['buckets'])} bucket(s), "
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

    from .triage import atomic_write

    atomic_write(Path(path), json.dumps(camp.summary(), indent=1))
