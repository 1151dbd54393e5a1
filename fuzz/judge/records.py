"""What one run recorded, op by op: the types the executor fills and the oracles, triage,
replay and the tools read.  They live below both the executor and the oracles, so that neither
imports the other's module for them (the data flow is one way: execute -> check)."""

from __future__ import annotations

from dataclasses import dataclass, field

from model.interface import OpTrace, SyncCall, WorldInterface

from ..lang import ops as O
from .findings import Finding

__all__ = ["OpRecord", "Outcome", "RunResult", "SyncCall"]


@dataclass
class Outcome(OpTrace):
    """What one op did in one world: what the world recorded (`OpTrace`: events, failpoints
    fired, cleans per site, sync walks) and how the call ended."""

    ret: object = None
    crashed: str | None = None
    error: str | None = None                         # a model error's traceback
    exhausted: bool = False                          # the work budget ran out

    @property
    def lines(self) -> int:
        return sum(v[1] for v in self.cleans.values())

    def as_json(self) -> dict:
        ret = self.ret
        if hasattr(ret, "describe"):
            ret = ret.describe()
        return {"ret": ret,
                "events": [{"kind": e.kind, "site": e.site, "detail": e.detail, "count": e.count}
                           for e in self.events],
                "cleans": {k: {"calls": v[0], "lines": v[1]} for k, v in self.cleans.items()},
                "crashed": self.crashed, "error": self.error,
                "failpoints_fired": [f"{f.site} {f.err}" for f in self.fired]}


@dataclass
class OpRecord:
    index: int
    op: O.Op
    ref: Outcome
    var: Outcome
    findings: list[Finding] = field(default_factory=list)


@dataclass
class RunResult:
    scenario: O.Scenario
    variant: str
    records: list[OpRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ref: WorldInterface | None = None
    var: WorldInterface | None = None
    config_error: str | None = None
    exhausted: bool = False          # stopped early: the work budget ran out
