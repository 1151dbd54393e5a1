"""The CMO report (`python -m fuzz report`): workloads -> measurements -> table, JSON, PNG.

Each workload is a short, deterministic list of `.ops` operations built in code (setup ops that
are not measured, then the measured ops).  It runs once per variant, each time in a fresh
`World`, and for every variant the report counts the cache lines cleaned and the clean calls
(`dma_sync_single_for_device`) of the measured ops, in total and by call site.

The yardsticks are the `reference` variant (upstream: every PTE write cleaned at once) and the
*least possible*: for each measured op, the cache lines of page-table memory whose hardware bits
the op changed, in tables still live when it returns.  The SMMU may read any of them as soon as
the op returns, and a line only reaches memory when it is cleaned (or evicted, which nothing
guarantees), so every correct variant has to clean each of them at least once per op.  That
count comes from the CPU views of the tables before and after each op (`World.take_changed_tables`
and `World.table_view`), so it does not depend on any variant's walker or on the clean
accounting; docs/report.md explains it in full.

Correctness is reported alongside: after every measured op, and over the whole workload at the
end, `World.first_divergence` must find no entry where the SMMU reads something other than the
CPU wrote; returns and the final tables (hardware bits) must match the reference's.  A variant
that cleans less by being wrong shows `stale` (or a note), and is never counted as a saving.

matplotlib is imported only inside `plot_png`, never at module level.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fuzz.lang.ops import (
    Map,
    MapSg,
    Op,
    Scenario,
    Segment,
    Unmap,
    fmt_size,
    format_op,
    format_scenario,
    parse_config_filter,
)
from model import QUIRK_BITS, Config, ConfigRejected, IopgfuzzError, World

EXIT_OK, EXIT_BAD_INPUT = 0, 2
SCHEMA = "iopgfuzz-cmo-report/1"
BUILTIN_VARIANTS = ("reference", "v1", "v1-review", "fixed")
DEFAULT_PNG = "out/report/cmo.png"
#: The clean call sites of design §6, in report order.
SITES = ("alloc", "install", "table", "leaf", "sync_map", "unmap")
#: Bits 55..58 are for software; the SMMU ignores them (docs/model.md, "Memory and cache").
HW_MASK = np.uint64(((1 << 64) - 1) & ~(0xF << 55))
ENTRY_BYTES = 8
INSTALL_HINT = 'pip install -e ".[report]"   (or: pip install "matplotlib>=3.8,<4")'


# --- workloads ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Sizes and addresses a workload is built from, derived from the world's geometry so that
    the same workloads run under any granule (with 4K pages: page 4K, leaf table 2M, ...)."""

    page: int              # the granule: one leaf PTE
    leaf_span: int         # IOVA span of one leaf (level-3) table
    block_l2: int | None   # level-2 block size, when a page size
    block_l1: int | None   # level-1 block size, when a page size and below the start level
    iova: int              # base of every workload's region
    paddr: int             # base of every workload's physical pages
    iova_limit: int        # first IOVA past the region the table can translate
    paddr_limit: int       # 2^oas


def layout_for(w: World) -> Layout:
    g = w.geometry
    page = g.granule
    ias, oas = g.ias, g.oas
    bl2 = w.block_size(2)
    bl1 = w.block_size(1) if g.start_level <= 1 else None
    # Region bases: 4G (2G for 32-bit spaces) of IOVA and 8G of physical address.
    base = 1 << min(32, ias - 1)
    if w.config.quirks & QUIRK_BITS["ttbr1"]:
        base = ((1 << 64) - (1 << ias)) + base       # upper half: TTBR1 tables cover the top
        limit = 1 << 64
    else:
        limit = 1 << ias
    return Layout(page=page, leaf_span=bl2,
                  block_l2=bl2 if g.pgsize_bitmap & bl2 else None,
                  block_l1=bl1 if bl1 is not None and g.pgsize_bitmap & bl1 else None,
                  iova=base, paddr=1 << min(33, oas - 1), iova_limit=limit,
                  paddr_limit=1 << oas)


@dataclass(frozen=True)
class Workload:
    """Setup ops (run, not measured), then the measured ops."""

    name: str
    what: str
    setup: tuple[Op, ...]
    ops: tuple[Op, ...]


def _sg(iova: int, paddr: int, nseg: int, seg_pages: int, page: int) -> MapSg:
    """`nseg` segments of `seg_pages` pages each; a one-page gap between segments keeps them
    physically discontiguous, so iommu_map_sg maps each one with its own iommu_map_nosync."""
    stride = (seg_pages + 1) * page
    return MapSg(iova, tuple(Segment(paddr + i * stride, seg_pages * page)
                             for i in range(nseg)))


def _warm(iova: int, paddr: int, page: int) -> tuple[Op, ...]:
    """Map and unmap one page at `iova`: the tables on its path now exist and are empty
    (io-pgtable-arm frees a table only when a whole block-sized range is unmapped)."""
    return (Map(iova, paddr, page), Unmap(iova, page))


def build_workloads(lay: Layout) -> tuple[list[Workload], list[tuple[str, str]]]:
    """Every workload that fits this layout, and (name, reason) for those that do not."""
    P, R, Q = lay.page, lay.iova, lay.paddr
    T = lay.leaf_span
    out: list[Workload] = []
    skipped: list[tuple[str, str]] = []

    def add(name, what, setup, ops, span_iova, span_pa, need=None):
        if need:
            skipped.append((name, need))
        elif R + span_iova > lay.iova_limit or Q + span_pa > lay.paddr_limit:
            skipped.append((name, f"needs {fmt_size(span_iova)} of IOVA and {fmt_size(span_pa)} "
                                  f"of physical space above the region base"))
        else:
            out.append(Workload(name, what, tuple(setup), tuple(ops)))

    # Scatter-gather lists: one iommu_map_sg (one final sync) into a leaf table that exists
    # and is empty, as after earlier buffers there were mapped and unmapped.
    for n in (1, 8, 64, 512):
        add(f"sg-{n}", f"map_sg of {n} discontiguous {fmt_size(P)} page(s) into an existing, "
                       f"empty leaf table", _warm(R, Q, P), [_sg(R, Q, n, 1, P)],
            n * P, 2 * n * P)
    add("sg-512-cold", f"map_sg of 512 discontiguous {fmt_size(P)} pages into a fresh domain "
                       f"(tables allocated on the way)", (), [_sg(R, Q, 512, 1, P)],
        512 * P, 1024 * P)
    add("sg-64x4", f"map_sg of 64 discontiguous segments of 4 pages ({fmt_size(4 * P)}) into an "
                   f"existing, empty leaf table", _warm(R, Q, P), [_sg(R, Q, 64, 4, P)],
        256 * P, 320 * P)

    # Large single maps: the physical address is one page off a block boundary, so
    # iommu_pgsize can only use pages (the case `python -m fuzz bench` times).
    for size in (64 << 20, 1 << 30):
        add(f"map-{fmt_size(size)}", f"one iommu_map of {fmt_size(size)} as {size // P} pages "
                                   f"(paddr one page off alignment), fresh domain",
            (), [Map(R, Q + P, size)], size, size + P)

    # Block maps into an existing table of the level above.
    b2 = lay.block_l2
    if b2 is None:
        skipped += [("block-l2", "no level-2 block size"), ("block-l2x64", "no level-2 block")]
    else:
        add("block-l2", f"one {fmt_size(b2)} block (a level-2 leaf) into an existing level-2 "
                        f"table", _warm(R + 64 * b2, Q, P), [Map(R, Q, b2)], 65 * b2, b2)
        add("block-l2x64", f"one iommu_map of 64 {fmt_size(b2)} blocks ({fmt_size(64 * b2)}) into "
                           f"an existing level-2 table",
            _warm(R + 64 * b2, Q, P), [Map(R, Q, 64 * b2)], 65 * b2, 64 * b2)
    b1 = lay.block_l1
    if b1 is None:
        skipped.append(("block-l1", "no level-1 block size in this configuration"))
    else:
        add("block-l1", f"one {fmt_size(b1)} block (a level-1 leaf) into an existing level-1 "
                        f"table", _warm(R + b1, Q, P), [Map(R, Q, b1)], 2 * b1, b1)

    # Churn.
    ops: list[Op] = []
    for _ in range(32):
        ops += [Map(R, Q, 16 * P), Unmap(R, 16 * P)]
    add("churn", f"32 x (map {fmt_size(16 * P)} as 16 pages, unmap it) at one IOVA, existing "
                 f"leaf table", _warm(R, Q, P), ops, 16 * P, 16 * P)
    ops = []
    for _ in range(16):
        ops += [Map(R, Q + P, T), Unmap(R, T)]
    add("churn-tables", f"16 x (map {fmt_size(T)} as pages, unmap it): every unmap frees the "
                        f"leaf table, every map allocates a new one",
        _warm(R + T, Q, P), ops, 2 * T, T + P, None if b2 else "no level-2 block size")
    nbuf, lag, pages = 128, 16, 4
    ops = []
    for k in range(nbuf):
        ops.append(_sg(R + k * pages * P, Q + k * 8 * P, pages, 1, P))
        if k >= lag:
            ops.append(Unmap(R + (k - lag) * pages * P, pages * P))
    for k in range(nbuf - lag, nbuf):
        ops.append(Unmap(R + k * pages * P, pages * P))
    add("churn-ring", f"a ring of {nbuf} buffers, each a map_sg of {pages} discontiguous pages "
                      f"at the next IOVA, unmapped {lag} buffers later",
        _warm(R, Q, P), ops, nbuf * pages * P, nbuf * 8 * P)
    return out, skipped


WORKLOAD_NAMES = ("sg-1", "sg-8", "sg-64", "sg-512", "sg-512-cold", "sg-64x4", "map-64M",
                  "map-1G", "block-l2", "block-l2x64", "block-l1", "churn", "churn-tables",
                  "churn-ring")


# --- measurement ---------------------------------------------------------------------------------

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
    from ..run.executor import make_world

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
    from ..run.executor import paired_kernel_version

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


# --- output --------------------------------------------------------------------------------------

COLUMNS = ("workload", "variant", "lines", "calls", "lines/ref", "calls/ref", "lines/least",
           "calls/least", "stale", "warns", "cleans by site (calls/lines)")


def _fmt_ratio(a: int, b: int) -> str:
    if b == 0:
        return "-" if a == 0 else "inf"
    return f"{a / b:.2f}"


def _fmt_sites(by_site: dict) -> str:
    return " ".join(f"{s}:{v['calls']}/{v['lines']}" for s, v in by_site.items()
                    if v["calls"] or v["lines"]) or "-"


def table_rows(rep: Report) -> list[list[str]]:
    rows = []
    for wr in rep.workloads:
        name = wr.workload.name
        rows.append([name, "least possible", str(wr.least_lines), str(wr.least_calls),
                     "", "", "", "", "", "", ""])
        ref = wr.reference
        for r in wr.results:
            if r.error:
                rows.append([name, r.variant, "-", "-", "", "", "", "", "-", "-",
                             f"ERROR {r.error}"])
                continue
            stale = "no" if r.stale is None else \
                f"YES L{r.stale['lvl']} {r.stale['iova']:#x}"
            extra = "; ".join(r.notes)
            rows.append([name, r.variant, str(r.lines), str(r.calls),
                         _fmt_ratio(r.lines, ref.lines), _fmt_ratio(r.calls, ref.calls),
                         _fmt_ratio(r.lines, wr.least_lines),
                         _fmt_ratio(r.calls, wr.least_calls), stale, str(r.warns),
                         _fmt_sites(r.by_site) + (f"  !! {extra}" if extra else "")])
    return rows


def _header(rep: Report) -> list[str]:
    c, g = rep.config, rep.geometry
    quirks = ",".join(c.quirk_names()) or "none"
    walk = "coherent walk (nothing needs cleaning)" if c.coherent_walk else "non-coherent walk"
    return [f"CMO report: {c.fmt} {fmt_size(c.granule)} ias={c.ias} oas={c.oas} line={c.line} "
            f"quirks={quirks}, {walk}; {g['levels']} levels from L{g['start_level']}, PGD "
            f"{g['pgd_entries']} entries",
            "lines/calls: cleans of the measured ops; least possible: lines whose hardware bits "
            "an op changed, summed over ops (docs/report.md)"]


def format_text(rep: Report) -> str:
    rows = table_rows(rep)
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in rows)) if rows else len(COLUMNS[i])
              for i in range(len(COLUMNS))]
    right = {2, 3, 4, 5, 6, 7, 9}

    def line(cells):
        out = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
               for i, c in enumerate(cells)]
        return "  ".join(out).rstrip()

    out = _header(rep) + ["", line(COLUMNS)]
    prev = None
    for r in rows:
        shown = list(r)
        if r[0] == prev:
            shown[0] = ""
        elif prev is not None:
            out.append("")
        prev = r[0]
        out.append(line(shown))
    out += _footer(rep)
    return "\n".join(out) + "\n"


def format_markdown(rep: Report) -> str:
    """The full table as Markdown."""
    rows = table_rows(rep)
    out = [f"_{_header(rep)[0]}_", ""]
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "|".join("---:" if i in {2, 3, 4, 5, 6, 7, 9} else "---"
                              for i in range(len(COLUMNS))) + "|")
    prev = None
    for r in rows:
        shown = list(r)
        shown[0] = "" if r[0] == prev else f"`{r[0]}`"
        prev = r[0]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in shown) + " |")
    return "\n".join(out + _footer(rep, markdown=True)) + "\n"


def format_summary(rep: Report) -> str:
    """One Markdown row per workload: `lines / calls` for the least possible and each
    variant; a flagged result says why."""
    out = [f"_{_header(rep)[0]}_", "",
           "| workload | least possible | " + " | ".join(rep.variants) + " |",
           "|---|" + "---:|" * (1 + len(rep.variants))]
    for wr in rep.workloads:
        cells = [f"`{wr.workload.name}`", f"{wr.least_lines} / {wr.least_calls}"]
        for v in rep.variants:
            r = next((r for r in wr.results if r.variant == v), None)
            if r is None:
                cells.append("")
            elif r.error:
                cells.append("error")
            else:
                why = ", ".join(r.flags)
                cells.append(f"{r.lines} / {r.calls}" + (f" ({why})" if why else ""))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out + _footer(rep, markdown=True)) + "\n"


def _footer(rep: Report, markdown: bool = False) -> list[str]:
    out = [""]
    item = "- `{}`: {}" if markdown else "{}: {}"
    for wr in rep.workloads:
        out.append(item.format(wr.workload.name, wr.workload.what))
    for name, why in rep.skipped:
        out.append(item.format(name, f"skipped ({why})"))
    flagged: dict[str, list[str]] = {}
    for wr in rep.workloads:
        for r in wr.results:
            if not r.correct:
                flagged.setdefault(r.variant, []).append(wr.workload.name)
    if flagged:
        out.append("")
        out.append("Flagged (a stale entry, an error, WARNs, bad memory accesses or a difference "
                   "from the reference): their counts are no evidence of a saving.")
        for v, names in flagged.items():
            where = "every workload" if len(names) == len(rep.workloads) > 1 else \
                ", ".join(names)
            out.append(("- " if markdown else "  ") + f"{v}: {where}")
    return out


def report_json(rep: Report) -> dict:
    c = rep.config
    doc = {"schema": SCHEMA,
           "config": {"fmt": c.fmt, "granule": c.granule, "ias": c.ias, "oas": c.oas,
                      "quirks": c.quirk_names(), "line": c.line, "concat": c.concat,
                      "enoent_bug": c.enoent_bug, "coherent_walk": c.coherent_walk},
           "geometry": rep.geometry, "variants": rep.variants, "workloads": [],
           "skipped": [{"name": n, "reason": why} for n, why in rep.skipped]}
    for wr in rep.workloads:
        ref = wr.reference
        doc["workloads"].append({
            "name": wr.workload.name, "what": wr.workload.what,
            "setup": [format_op(op) for op in wr.workload.setup],
            "ops": [format_op(op) for op in wr.workload.ops],
            "least": {"lines": wr.least_lines, "calls": wr.least_calls},
            "results": {r.variant: r.as_json(ref, wr.least_lines, wr.least_calls)
                        for r in wr.results}})
    return doc


def workload_scenario(wl: Workload, config: Config) -> str:
    """The workload as an `.ops` file (setup ops marked), for `python -m fuzz replay`."""
    comments = {0: "setup (not measured)"} if wl.setup else {}
    comments[len(wl.setup)] = f"measured: {wl.name}"
    text = format_scenario(Scenario(config, wl.setup + wl.ops), comments)
    head, _, rest = text.partition("\n")
    return f"{head}\n# {wl.name}: {wl.what}\n{rest}"


FORMATS = {"text": format_text, "markdown": format_markdown, "summary": format_summary}


# --- the picture ---------------------------------------------------------------------------------

COLORS = {"reference": "#7f7f7f", "v1": "#d62728", "v1-review": "#ff7f0e", "fixed": "#1f77b4"}
_EXTRA_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def matplotlib_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def plot_png(rep: Report, path: Path) -> None:
    """Two panels (lines cleaned, clean calls), grouped bars per workload and variant, the
    least possible as a black bar across each group, stale results hatched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    names = [wr.workload.name for wr in rep.workloads]
    variants = rep.variants
    nv = max(1, len(variants))
    width = 0.8 / nv
    fig = Figure(figsize=(max(8.0, 0.95 * len(names) + 2.5), 8.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    colors = {v: COLORS.get(v, _EXTRA_COLORS[i % len(_EXTRA_COLORS)])
              for i, v in enumerate(variants)}
    for ax, what, least_of in ((axes[0], "lines", lambda wr: wr.least_lines),
                               (axes[1], "calls", lambda wr: wr.least_calls)):
        for j, v in enumerate(variants):
            xs, ys, hatches = [], [], []
            for i, wr in enumerate(rep.workloads):
                r = next((r for r in wr.results if r.variant == v), None)
                if r is None or r.error:
                    continue
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(getattr(r, what))
                hatches.append(None if r.correct else "xx")
            bars = ax.bar(xs, ys, width=width, color=colors[v])
            for b, h in zip(bars, hatches, strict=True):
                if h:
                    b.set_hatch(h)
                    b.set_edgecolor("black")
        for i, wr in enumerate(rep.workloads):
            ax.hlines(least_of(wr), i - 0.42, i + 0.42, colors="black", linewidth=2.2)
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"{what} cleaned" if what == "lines" else "clean calls")
        ax.grid(axis="y", which="major", alpha=0.3)
    axes[1].set_xticks(range(len(names)))
    axes[1].set_xticklabels(names, rotation=35, ha="right")
    c = rep.config
    fig.suptitle(f"Cache maintenance per workload: {c.fmt} {fmt_size(c.granule)} ias={c.ias} "
                 f"line={c.line}" + (" (coherent)" if c.coherent_walk else " (non-coherent)"))
    handles = [Line2D([], [], color="black", linewidth=2.2)]
    labels = ["least possible"]
    for v in variants:
        handles.append(Patch(facecolor=colors[v]))
        labels.append(v)
    if any(not r.correct for wr in rep.workloads for r in wr.results):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="xx"))
        labels.append("flagged: stale, error, WARNs, bad access or mismatch")
    axes[0].legend(handles, labels, ncol=min(6, len(labels)), fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})


# --- the command ---------------------------------------------------------------------------------

def run_cli(variant_specs: list[str] | None, workloads: list[str] | None, config_filter: str,
            png: str | None, no_png: bool, json_path: str | None, fmt: str = "text",
            ops_dir: str | None = None) -> int:
    """`python -m fuzz report`.  Exit 0 on success; 2 on bad arguments, or when `--png PATH`
    was asked for explicitly and matplotlib is not installed (the table is printed first).
    The default PNG is skipped with a note when matplotlib is missing."""
    from fuzz.run.plugins import VariantLoadError, load_variant

    def bad(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if fmt not in FORMATS:
        return bad(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    try:
        config = Config(**parse_config_filter(config_filter or ""))
    except ValueError as e:
        return bad(str(e))
    variants = []
    for spec in variant_specs or BUILTIN_VARIANTS:
        try:
            v = load_variant(spec)
        except VariantLoadError as e:
            return bad(str(e))
        if v.name not in {x.name for x in variants}:
            variants.append(v)
    if png is not None and no_png:
        return bad("--png and --no-png contradict each other")
    try:
        rep = run_report(config, variants, workloads)
    except ConfigRejected as e:
        return bad(str(e))
    except ValueError as e:
        return bad(str(e))
    if not rep.workloads:
        return bad("no workload fits this configuration: "
                   + "; ".join(f"{n}: {why}" for n, why in rep.skipped))
    print(FORMATS[fmt](rep), end="")
    if json_path:
        from fuzz.repro.triage import atomic_write

        atomic_write(Path(json_path), json.dumps(report_json(rep), indent=1) + "\n")
        print(f"wrote {json_path}")
    if ops_dir:
        from fuzz.repro.triage import atomic_write

        for wr in rep.workloads:
            atomic_write(Path(ops_dir) / f"{wr.workload.name}.ops",
                         workload_scenario(wr.workload, config))
        print(f"wrote {len(rep.workloads)} .ops files to {ops_dir}")
    if no_png:
        return EXIT_OK
    target = Path(png or DEFAULT_PNG)
    if not matplotlib_available():
        msg = f"matplotlib is not installed, so no PNG; install the extra: {INSTALL_HINT}"
        if png is not None:
            return bad(msg)
        print(f"note: {msg}")
        return EXIT_OK
    plot_png(rep, target)
    print(f"wrote {target}")
    return EXIT_OK
