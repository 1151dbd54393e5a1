"""Run a scenario in a reference world and a variant world side by side, op by op.

The executor only runs and records; judging is `fuzz.judge.oracles`.  It uses nothing of a world
but `model.interface.WorldInterface`: each op between `begin_op` and `end_op`, and the variant's
sync walks traced (`trace_sync_walks`: every entry the walk reads and every line it cleans,
which the footprint and efficiency oracles need).
"""

from __future__ import annotations

import traceback

from model import BudgetExhausted, ConfigRejected, KernelBug, Variant
from model.interface import WorldInterface

from ..judge.findings import Finding
from ..judge.oracles import Oracles
from ..judge.records import OpRecord, Outcome, RunResult, SyncCall
from ..lang import ops as O
from .worlds import default_reference, make_world, paired_kernel_version

__all__ = ["DEFAULT_BUDGET", "Executor", "OpRecord", "Outcome", "RunResult", "SyncCall",
           "apply", "run_op", "run_scenario"]


#: Default work budget per world (entries written or allocated): keeps every input fast.
DEFAULT_BUDGET = 1 << 18

#: How each op kind is performed on a world through its public API.
_APPLY = {
    O.Map: lambda w, op: w.map(op.iova, op.paddr, op.size, op.prot),
    O.MapNosync: lambda w, op: w.map_nosync(op.iova, op.paddr, op.size, op.prot),
    O.Sync: lambda w, op: w.sync(op.iova, op.size),
    O.MapSg: lambda w, op: w.map_sg(op.iova, [(s.paddr, s.length, s.bus) for s in op.segs],
                                    op.prot),
    O.Unmap: lambda w, op: w.unmap(op.iova, op.size),
    O.PtMapPages: lambda w, op: w.pt_map_pages(op.iova, op.paddr, op.pgsize, op.pgcount,
                                               op.prot),
    O.PtUnmapPages: lambda w, op: w.pt_unmap_pages(op.iova, op.pgsize, op.pgcount),
    O.PtSyncMap: lambda w, op: w.pt_sync_map(op.iova, op.size),
    O.PtIovaToPhys: lambda w, op: w.pt_iova_to_phys(op.iova),
    O.Smmu: lambda w, op: w.smmu_walk(op.iova),
    O.Evict: lambda w, op: w.evict(op.iova),
    O.Fail: lambda w, op: w.fail(op.site, op.nth, op.err),     # returns None
}


def apply(world: WorldInterface, op: O.Op):
    """Perform `op` on `world` through the public API; returns the op's return value."""
    fn = _APPLY.get(type(op))
    if fn is None:
        raise TypeError(f"unknown op {op!r}")
    return fn(world, op)


def run_op(world: WorldInterface, op: O.Op) -> Outcome:
    """Perform `op` on `world` and record what it did; a BUG_ON, an exhausted budget and an
    exception of ours or of a plugin are recorded, not raised."""
    world.begin_op()
    ret = crashed = error = None
    exhausted = False
    try:
        ret = apply(world, op)
    except KernelBug as bug:
        crashed = str(bug)
    except BudgetExhausted:
        exhausted = True
    except Exception:  # noqa: BLE001 - anything else is a bug of ours or of a plugin
        error = traceback.format_exc(limit=-8)
    return world.end_op(Outcome(ret=ret, crashed=crashed, error=error, exhausted=exhausted))


class Executor:
    """Builds both worlds for a scenario and steps through its ops, judging each with the
    oracles.  `stop_on_first` ends the run at the first op that produced a finding."""

    def __init__(self, scenario: O.Scenario, variant: Variant,
                 budget: int | None = DEFAULT_BUDGET, reference: Variant | None = None):
        self.scenario = scenario
        self.variant = variant
        self.reference = reference if reference is not None else default_reference()
        self.result = RunResult(scenario, variant.name)
        try:
            version = paired_kernel_version(self.reference, variant)
            self.ref = make_world(self.reference, scenario.config, budget, version)
            self.var = make_world(variant, scenario.config, budget, version)
        except ConfigRejected as e:
            self.result.config_error = e.reason
            self.ref = self.var = None
            return
        except Exception:  # noqa: BLE001 - a plugin's constructor hooks failing
            self.result.config_error = None
            self.ref = self.var = None
            self.result.findings.append(Finding(
                "model-error", variant.name, "setup", "-", "-", -1,
                "building the worlds raised", {"traceback": traceback.format_exc(limit=-8)}))
            return
        self.result.ref, self.result.var = self.ref, self.var
        self.var.trace_sync_walks()
        self.oracles = Oracles(self.ref, self.var, variant.name, self.reference.name)

    def run(self, stop_on_first: bool = False) -> RunResult:
        if self.ref is None:
            return self.result
        for i, op in enumerate(self.scenario.ops):
            ref = run_op(self.ref, op)
            # nothing is judged about a cut-short op, so the variant does not run one the
            # reference ran out on: a campaign's corpus spends three quarters of its time in
            # runs that end so, and the variant's half of it was for nothing (docs/c-world.md)
            var = None if ref.exhausted else run_op(self.var, op)
            if var is None or var.exhausted:
                self.result.exhausted = True
                break
            rec = OpRecord(i, op, ref, var)
            try:
                rec.findings = self.oracles.after_op(rec)
            except BudgetExhausted:           # an oracle's range walk ran out of budget
                self.result.exhausted = True
                break
            self.result.records.append(rec)
            self.result.findings.extend(rec.findings)
            if rec.ref.error or rec.var.error or rec.ref.crashed or rec.var.crashed:
                break
            if stop_on_first and rec.findings:
                break
        if not self.result.exhausted:
            self.result.findings.extend(self.oracles.at_end(self.result.records))
        return self.result


def run_scenario(scenario: O.Scenario, variant: Variant, stop_on_first: bool = False,
                 budget: int | None = DEFAULT_BUDGET,
                 reference: Variant | None = None) -> RunResult:
    return Executor(scenario, variant, budget, reference).run(stop_on_first)
