"""The CMO report's workloads: short, deterministic lists of `.ops` operations (setup ops that
are not measured, then the measured ops), built from the world's geometry (`Layout`) so that the
same workloads run under any granule."""

from __future__ import annotations

from dataclasses import dataclass

from fuzz.lang.ops import Map, MapSg, Op, Scenario, Segment, Unmap, fmt_size, format_scenario
from model import QUIRK_BITS, Config, World


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


def workload_scenario(wl: Workload, config: Config) -> str:
    """The workload as an `.ops` file (setup ops marked), for `python -m fuzz replay`."""
    comments = {0: "setup (not measured)"} if wl.setup else {}
    comments[len(wl.setup)] = f"measured: {wl.name}"
    text = format_scenario(Scenario(config, wl.setup + wl.ops), comments)
    head, _, rest = text.partition("\n")
    return f"{head}\n# {wl.name}: {wl.what}\n{rest}"
