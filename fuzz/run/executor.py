"""Run a scenario in a reference world and a variant world side by side, op by op.

The executor only runs and records; judging is `fuzz.judge.oracles`.  It instruments the variant's
io-pgtable `iotlb_sync_map` (whatever variant or plugin supplied it) to log every entry the
walk reads and every line it cleans, which the footprint and efficiency oracles need.
"""

from __future__ import annotations

import functools
import traceback
import weakref

from model import BudgetExhausted, ConfigRejected, KernelBug, Reference, Variant, World

from ..judge.findings import Finding
from ..judge.oracles import Oracles
from ..judge.records import OpRecord, Outcome, RunResult, SyncCall
from ..lang import ops as O

__all__ = ["DEFAULT_BUDGET", "Executor", "OpRecord", "Outcome", "RunResult", "SyncCall",
           "SyncTracer", "apply", "default_reference", "make_world", "paired_kernel_version",
           "run_op", "run_scenario"]


class SyncTracer:
    """Wraps `io_pgtable_ops.iotlb_sync_map` of one world.  It holds the world weakly: it is
    itself reachable from the world, and a world nobody holds should end at once (a C world
    then goes back to its pool), not at the next cyclic garbage collection."""

    def __init__(self, world: World):
        self._world = weakref.ref(world)
        self.inner = world.data.iop.ops.iotlb_sync_map
        self.calls: list[SyncCall] = []

    @property
    def world(self) -> World:
        return self._world()

    def __call__(self, ops, iova, size):
        data = self.world.data
        mem, fp = data.mem, data.failpoints
        call = SyncCall(iova, size)
        self.calls.append(call)
        mem.access_log, mem.clean_log = call.accesses, call.cleans
        hits0, fired0 = fp.hits.get("sync_map", 0), len(fp.fired)
        try:
            call.ret = self.inner(ops, iova, size)
        finally:
            mem.access_log = mem.clean_log = None
            call.hits = list(range(hits0 + 1, fp.hits.get("sync_map", 0) + 1))
            call.fired = [f for f in fp.fired[fired0:] if f.site == "sync_map"]
        return call.ret


#: Default work budget per world (entries written or allocated): keeps every input fast.
DEFAULT_BUDGET = 1 << 18

#: Environment variable naming the reference world (`--reference`): unset or "model" for the
#: model's Reference, "c" for the kernel C without patches, or any variant spec.
REFERENCE_ENV = "IOPGFUZZ_REFERENCE"


def default_reference() -> Variant:
    """The reference variant this process runs against (see REFERENCE_ENV)."""
    import os
    return _reference_for(os.environ.get(REFERENCE_ENV, "") or "model")


@functools.lru_cache(maxsize=4)
def _reference_for(spec: str) -> Variant:
    if spec in ("model", "reference"):
        return Reference()
    from .plugins import load_variant
    return load_variant("c:upstream" if spec == "c" else spec)


def make_world(variant: Variant, config, budget: int | None,
               kernel_version: str | None = None) -> World:
    """A world for `variant`: the model's, or whatever the variant builds (a C world).
    A model world paired with a C world models the C's kernel: `kernel_version` sets the
    model's kernel-version switches (cworld.profiles)."""
    factory = getattr(variant, "make_world", None)
    if factory is not None:
        return factory(config, budget)
    if kernel_version is not None:
        from cworld.profiles import model_config_for_tree
        config = model_config_for_tree(config, kernel_version)
    return World(config, variant, budget)


def paired_kernel_version(*variants: Variant) -> str | None:
    """The kernel version of the first C world among `variants`, if any."""
    for v in variants:
        version = getattr(v, "kernel_version", None)
        if version:
            return version
    return None


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


def apply(world: World, op: O.Op):
    """Perform `op` on `world` through the public API; returns the op's return value."""
    fn = _APPLY.get(type(op))
    if fn is None:
        raise TypeError(f"unknown op {op!r}")
    return fn(world, op)


def run_op(world: World, op: O.Op, tracer: SyncTracer | None) -> Outcome:
    out = Outcome()
    ev0 = world.events.mark()
    fired0 = len(world.failpoints.fired)
    by_site = world.data.mem.by_site
    before = [(k, v.calls, v.lines) for k, v in by_site.items()]
    calls0 = len(tracer.calls) if tracer else 0
    try:
        out.ret = apply(world, op)
    except KernelBug as bug:
        out.crashed = str(bug)
    except BudgetExhausted:
        out.exhausted = True
    except Exception:  # noqa: BLE001 - anything else is a bug of ours or of a plugin
        out.error = traceback.format_exc(limit=-8)
    out.events = world.events.since(ev0)
    out.fired = world.failpoints.fired[fired0:]
    if len(by_site) != len(before):       # a site seen for the first time
        before += [(k, 0, 0) for k in list(by_site)[len(before):]]
    for k, c0, l0 in before:
        v = by_site[k]
        if v.calls != c0 or v.lines != l0:
            out.cleans[k] = [v.calls - c0, v.lines - l0]
    if tracer:
        out.sync_calls = tracer.calls[calls0:]
    return out


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
        self.tracer = None
        if self.var.data.iop.ops.iotlb_sync_map is not None:
            self.tracer = SyncTracer(self.var)
            self.var.data.iop.ops.iotlb_sync_map = self.tracer
        self.oracles = Oracles(self.ref, self.var, variant.name, self.reference.name)

    def run(self, stop_on_first: bool = False) -> RunResult:
        if self.ref is None:
            return self.result
        for i, op in enumerate(self.scenario.ops):
            rec = OpRecord(i, op, run_op(self.ref, op, None), run_op(self.var, op, self.tracer))
            if rec.ref.exhausted or rec.var.exhausted:
                self.result.exhausted = True      # nothing is judged about a cut-short op
                break
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
