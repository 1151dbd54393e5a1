"""The CMO report's measurement: one workload in a fresh world per variant, the cache lines
cleaned and clean calls by call site, the least possible (`TableTracker`, from the CPU's view of
the tables alone) and the correctness checks (`_compare`) that keep a wrong variant from
counting as a saving."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fuzz.lang.ops import Map, MapSg, Op, Unmap, format_op
from model import Config, ConfigRejected, IopgfuzzError, World

from .workloads import WORKLOAD_NAMES, Workload, build_workloads, layout_for

#: The clean call sites of design §6, in report order.
SITES = ("alloc", "install", "table", "leaf", "sync_map", "unmap")
#: Bits 55..58 are for software; the SMMU ignores them (docs/model.md, "Memory and cache").
HW_MASK = np.uint64(((1 << 64) - 1) & ~(0xF << 55))
ENTRY_BYTES = 8


def op_range(op: Op) -> tuple[int, int]:
    """(iova, size) an op publishes to the SMMU when it returns."""
    if isinstance(op, MapSg):
        return op.iova, sum(s.length for s in op.segs if not s.bus)
    return op.iova, op.size


def apply_op(w: World, op: Op) -> int:
    if isinstance(op, Map):
        return w.map(op.iova, op.paddr, op.size, op.prot)
    if isinstance(op, MapSg):
        return w.map_sg(op.iova, [(s.paddr, s.length, s.bus) for s in op.segs], op.prot)
    if isinstance(op, Unmap):
        return w.unmap(op.iova, op.size)
    raise TypeError(f"the report runs map, map_sg and unmap only, not {op.kind}")


class TableTracker:
    """The least possible cleans, from the CPU's view of the tables alone.

    Keeps the hardware bits of every live table as of the last op boundary.  At the next
    boundary, for every table the world reports as allocated, freed or stored to since
    (`take_changed_tables`): a table freed by then needs nothing; a table allocated since needs
    every line of its entries (DRAM under it holds whatever was there before); a table that
    existed needs the lines where some entry's hardware bits changed.  Lines are counted per
    table, `line // 8` entries each (tables are aligned to at least a page, so a line never
    spans two tables), and a clean call covers one range of one table, so the calls needed are
    at least the number of tables with a line to clean.
    """

    def __init__(self, w: World):
        self.w = w
        self.le = w.config.line // ENTRY_BYTES
        self.coherent = w.config.coherent_walk
        self.tables: dict[int, np.ndarray] = {}
        self.boundary()                           # the state before the measured ops

    def boundary(self) -> tuple[int, int]:
        """(lines, calls) needed since the previous boundary; updates the snapshot."""
        lines = calls = 0
        for pa in sorted(self.w.take_changed_tables()):
            view = self.w.table_view(pa)
            old = self.tables.pop(pa, None)
            if view is None or view[0]:           # freed (or gone): nothing to clean
                continue
            new = view[1] & HW_MASK
            self.tables[pa] = new
            if old is None:
                n = -(-len(new) // self.le)
            else:
                n = int(np.unique(np.flatnonzero(np.not_equal(old, new)) // self.le).size)
            lines += n
            calls += 1 if n else 0
        return (0, 0) if self.coherent else (lines, calls)


@dataclass
class Result:
    """One variant on one workload."""

    variant: str
    lines: int = 0
    calls: int = 0
    by_site: dict = field(default_factory=dict)
    warns: int = 0
    memory_events: int = 0        # out-of-bounds / use-after-free / wild-pointer accesses
    first_memory_event: str | None = None
    least_lines: int = 0          # this world's own lower bound (the reference's is reported)
    least_calls: int = 0
    returns: list = field(default_factory=list)
    stale: dict | None = None     # the first divergence: {"op", "iova", "lvl", "reason"}
    error: str | None = None
    notes: list = field(default_factory=list)
    tags: list = field(default_factory=list)      # one word per note
    tables: dict = field(default_factory=dict, repr=False)

    def flag(self, tag: str, note: str) -> None:
        self.tags.append(tag)
        self.notes.append(note)

    @property
    def correct(self) -> bool:
        return self.stale is None and self.error is None and not self.notes

    @property
    def flags(self) -> list[str]:
        """Why the result is flagged, in short words (empty when correct)."""
        return (["error"] if self.error else []) + (["stale"] if self.stale else []) \
            + self.tags

    def as_json(self, ref: Result | None, least_lines: int, least_calls: int) -> dict:
        return {"variant": self.variant, "lines": self.lines, "calls": self.calls,
                "by_site": self.by_site, "warns": self.warns,
                "memory_events": self.memory_events,
                "vs_reference": {"lines": _ratio(self.lines, ref.lines if ref else 0),
                                 "calls": _ratio(self.calls, ref.calls if ref else 0)},
                "vs_least": {"lines": _ratio(self.lines, least_lines),
                             "calls": _ratio(self.calls, least_calls)},
                "stale": self.stale is not None, "first_stale": self.stale,
                "correct": self.correct, "flags": self.flags, "error": self.error,
                "notes": self.notes}


def _ratio(a: int, b: int) -> float | None:
    return None if b == 0 else a / b


def _stats_delta(before: dict, after: dict) -> dict:
    return {s: {"calls": after["by_site"].get(s, {"calls": 0})["calls"]
                - before["by_site"].get(s, {"calls": 0})["calls"],
                "lines": after["by_site"].get(s, {"lines": 0})["lines"]
                - before["by_site"].get(s, {"lines": 0})["lines"]} for s in SITES}


def measure(wl: Workload, config: Config, variant, kernel_version: str | None = None) -> Result:
    """Run `wl` in a fresh world of `variant` (a model world models `kernel_version` when a C
    world is among the columns).  ConfigRejected propagates (a bad config is the caller's
    error); anything else that goes wrong is recorded in the result."""
    from ...run.worlds import make_world

    res = Result(variant.name)
    try:
        w = make_world(variant, config, None, kernel_version)
        for op in wl.setup:
            ret = apply_op(w, op)
            if ret < 0 or (isinstance(op, Unmap) and ret != op.size):
                res.error = f"setup op {format_op(op)!r} returned {ret}"
                return res
        tracker = TableTracker(w)
        before = w.stats()
        mark = len(w.events.events)
        lo, hi = None, None
        for i, op in enumerate(wl.ops):
            res.returns.append(apply_op(w, op))
            lines, calls = tracker.boundary()
            res.least_lines += lines
            res.least_calls += calls
            iova, size = op_range(op)
            lo = iova if lo is None else min(lo, iova)
            hi = iova + size if hi is None else max(hi, iova + size)
            if res.stale is None:
                d = w.first_divergence(iova, size)
                if d is not None:
                    res.stale = {"op": i, "iova": d.iova, "lvl": d.lvl, "reason": d.reason}
        if res.stale is None and lo is not None:
            d = w.first_divergence(lo, hi - lo)
            if d is not None:
                res.stale = {"op": len(wl.ops), "iova": d.iova, "lvl": d.lvl,
                             "reason": d.reason}
        after = w.stats()
        res.by_site = _stats_delta(before, after)
        res.lines = sum(v["lines"] for v in res.by_site.values())
        res.calls = sum(v["calls"] for v in res.by_site.values())
        res.warns = after["warns"] - before["warns"]
        memory = [e for e in w.events.events[mark:] if e.kind not in ("WARN", "BUG")]
        res.memory_events = sum(e.count for e in memory)
        res.first_memory_event = f"{memory[0].kind} at {memory[0].site}" if memory else None
        res.tables = tracker.tables
    except ConfigRejected:
        raise
    except IopgfuzzError as e:             # BUG_ON, a crashed world, a work budget
        res.error = f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - a plugin variant's own code
        res.error = f"{type(e).__name__}: {e}"
    return res


@dataclass
class WorkloadReport:
    workload: Workload
    least_lines: int
    least_calls: int
    results: list[Result]

    @property
    def reference(self) -> Result | None:
        return next((r for r in self.results if r.variant == "reference"), None)


@dataclass
class Report:
    config: Config
    geometry: dict
    variants: list[str]
    workloads: list[WorkloadReport]
    skipped: list[tuple[str, str]]


def run_report(config: Config, variants: list, names: list[str] | None = None) -> Report:
    """Measure every workload (or those in `names`) for the reference and `variants`.

    The reference always runs first (the baseline and the source of the least-possible
    count), whether or not it is among `variants`.  Raises ConfigRejected for a config the
    kernel refuses and ValueError for an unknown workload name."""
    from model.variants import get_variant

    reference = get_variant("reference")
    w = World(config, reference)
    workloads, skipped = build_workloads(layout_for(w))
    geometry = w.geometry.as_dict()
    if names:
        known = set(WORKLOAD_NAMES)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown workload {unknown[0]!r} (workloads: "
                             f"{', '.join(WORKLOAD_NAMES)})")
        workloads = [wl for wl in workloads if wl.name in names]
        skipped = [s for s in skipped if s[0] in names]
    from ...run.worlds import paired_kernel_version

    others = [v for v in variants if v.name != "reference"]
    version = paired_kernel_version(*others)
    reports = []
    for wl in workloads:
        ref = measure(wl, config, reference, version)
        results = [ref]
        for v in others:
            r = measure(wl, config, v, version)
            _compare(r, ref)
            results.append(r)
        reports.append(WorkloadReport(wl, ref.least_lines, ref.least_calls, results))
    names_out = ["reference"] + [v.name for v in others]
    return Report(config, geometry, names_out, reports, skipped)


def _compare(r: Result, ref: Result) -> None:
    """Notes where a variant's world differs from the reference's in what it must not."""
    if r.error or ref.error:
        return
    diff = [i for i, (a, b) in enumerate(zip(r.returns, ref.returns, strict=True)) if a != b]
    if diff:
        i = diff[0]
        r.flag("returns", f"op {i} returned {r.returns[i]}, reference {ref.returns[i]}")
    if r.warns > ref.warns:
        r.flag("WARN", f"{r.warns} WARNs where the reference has {ref.warns}")
    if r.memory_events > ref.memory_events:
        r.flag("bad access", f"{r.memory_events} out-of-bounds/use-after-free accesses "
                             f"(first: {r.first_memory_event})")
    if set(r.tables) != set(ref.tables) or any(
            not np.array_equal(r.tables[pa], ref.tables[pa]) for pa in ref.tables):
        r.flag("tables", "final tables differ from the reference's (hardware bits)")
