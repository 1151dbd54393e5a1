"""Scenario generation biased toward structure (design §7).

Addresses come from the boundaries the format defines (every level's block, the table above it,
the pages of a concatenated PGD, 2^ias, the top of the aperture, TTBR1's upper half), just below
and above them; sizes from granules, blocks, table spans and ranges that cross them; physical
addresses co-aligned with the IOVA or skewed by a granule.  Op sequences follow how drivers use
the API: scatter-gather lists then one sync, map/unmap churn, remaps over freed tables, blocks
over tables, holes, failpoints, SMMU reads and write-backs at any time.

Everything draws from one `random.Random`, so a seed reproduces a scenario exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from model import Config, ConfigRejected, World
from model.config import CONCAT_LEGACY, CONCAT_MANDATORY, QUIRK_BITS

from ..lang import ops as O

U64 = (1 << 64) - 1
FORMAT_WEIGHTS = (("arm64-s1", 5), ("arm64-s2", 4), ("arm32-s1", 1), ("arm32-s2", 1),
                  ("mali", 1))
IAS_CHOICES = (32, 36, 39, 40, 42, 44, 47, 48, 52)
OAS_CHOICES = (32, 36, 40, 42, 44, 48, 52)
#: (max ias, max oas) of the formats that restrict them (kernel-semantics §1.5)
FORMAT_LIMITS = {"arm32-s1": (32, 40), "arm32-s2": (40, 40), "mali": (48, 40)}


@dataclass(frozen=True)
class Geometry:
    """What the generator needs to know about a config (computed once per config)."""

    granule: int
    ias: int
    oas: int
    start_level: int
    blocks: tuple[int, ...]          # BLOCK_SIZE of each level from the start level
    pgd_page_span: int               # IOVA span of one page of the PGD
    pgsizes: tuple[int, ...]
    ttbr1: bool


@lru_cache(maxsize=4096)
def geometry_of(config: Config) -> Geometry | None:
    try:
        w = World(config)
    except ConfigRejected:
        return None
    g = w.geometry
    blocks = tuple(w.block_size(lvl) for lvl in range(g.start_level, 4))
    ptes = g.granule // 8
    pgsizes = tuple(1 << b for b in range(64) if g.pgsize_bitmap >> b & 1)
    return Geometry(g.granule, g.ias, g.oas, g.start_level, blocks, blocks[0] * ptes,
                    pgsizes, bool(config.quirks & QUIRK_BITS["ttbr1"]))


def random_config(r: random.Random) -> Config:
    """An accepted configuration, every supported combination reachable."""
    for _ in range(100):
        fmt = r.choices([f for f, _ in FORMAT_WEIGHTS], [w for _, w in FORMAT_WEIGHTS])[0]
        granule = r.choice((1 << 12, 1 << 12, 1 << 14, 1 << 16))
        ias, oas = r.choice(IAS_CHOICES), r.choice(OAS_CHOICES)
        if fmt in FORMAT_LIMITS:                   # the 32-bit and Mali formats' own limits
            max_ias, max_oas = FORMAT_LIMITS[fmt]
            granule = 1 << 12
            ias = r.choice([v for v in IAS_CHOICES if v <= max_ias])
            oas = r.choice([v for v in OAS_CHOICES if v <= max_oas])
        if r.random() < 0.4:
            oas = max(oas, ias) if ias in OAS_CHOICES else oas
        quirks = 0
        if fmt.endswith("s1") and r.random() < 0.25:
            quirks |= QUIRK_BITS["ttbr1"]
        if r.random() < 0.2:
            quirks |= QUIRK_BITS["no_warn"]
        if fmt == "arm64-s1" and r.random() < 0.1:
            quirks |= QUIRK_BITS["ns"]
        if fmt == "arm64-s1" and r.random() < 0.1:
            quirks |= QUIRK_BITS["hd"]
        if fmt == "arm64-s2" and r.random() < 0.1:
            quirks |= QUIRK_BITS["s2fwb"]
        c = Config(fmt=fmt, granule=granule, ias=ias, oas=oas, quirks=quirks,
                   line=r.choice((64, 64, 32, 128)),
                   concat=CONCAT_LEGACY if r.random() < 0.15 else CONCAT_MANDATORY,
                   enoent_bug=r.random() < 0.3, coherent_walk=r.random() < 0.03,
                   page_size=granule)
        if geometry_of(c) is not None:
            return c
    return Config()


def _top(g: Geometry) -> int:
    return 1 << g.ias


def _to_iova(g: Geometry, a: int) -> int:
    """Place an offset inside the input range (upper half for TTBR1), granule-aligned."""
    a %= _top(g)
    a -= a % g.granule
    if g.ttbr1:
        a = (U64 + 1 - _top(g)) + a
    return a & U64


def boundaries(g: Geometry) -> list[int]:
    out = [0, _top(g) // 2, g.pgd_page_span]
    for b in g.blocks:
        out += [b, 2 * b, b * (g.granule // 8), b * 3]
    return out


def random_iova(r: random.Random, g: Geometry) -> int:
    k = r.random()
    if k < 0.25:                                   # the top of the aperture (top-down IOVAs)
        a = _top(g) - r.choice((1, 2, 3, 8, 16, 512, 513)) * g.granule
    else:
        a = r.choice(boundaries(g)) * r.choice((1, 1, 1, 2, 3, 7))
        a += r.choice((0, 0, 0, -1, 1, -2, 2, -8, 8, -511)) * g.granule
        if r.random() < 0.1:
            a += r.randrange(0, 64) * g.granule
    if r.random() < 0.03:                          # now and then, not aligned at all
        return (_to_iova(g, a) + r.randrange(1, g.granule)) & U64
    return _to_iova(g, a)


def random_size(r: random.Random, g: Geometry) -> int:
    k = r.random()
    if k < 0.4:
        return g.granule * r.choice((1, 1, 2, 3, 8, 16, 17, 64, 511, 512, 513))
    if k < 0.8:
        b = r.choice(g.blocks[1:] or g.blocks)
        return max(g.granule, b * r.choice((1, 1, 2, 3)) +
                   r.choice((0, 0, -1, 1, 2)) * g.granule)
    if k < 0.95:
        return g.pgd_page_span * r.choice((1, 2)) if g.pgd_page_span < (1 << 44) else g.granule
    return r.choice((0, g.granule // 2, r.randrange(1, 1 << 20)))


def random_paddr(r: random.Random, g: Geometry, iova: int) -> int:
    limit = (1 << min(g.oas, 52)) - 1
    base = iova & limit
    k = r.random()
    if k < 0.6:
        p = base                                   # co-aligned: blocks possible
    elif k < 0.85:
        p = base + g.granule                       # skewed by one granule: small pages only
    else:
        p = r.choice((0, 1 << 32, 1 << 39, limit + 1 - g.granule)) + \
            r.choice((0, g.granule, 2 * g.granule))
    return p & limit & ~(g.granule - 1)


def random_prot(r: random.Random) -> int:
    return r.choice((O.PROT_RW, O.PROT_RW, O.PROT_RW, 1, 2, 0b111, 0b1011, 0b10011, 0))


def random_op(r: random.Random, g: Geometry) -> O.Op:
    k = r.random()
    iova = random_iova(r, g)
    if k < 0.2:
        size = random_size(r, g)
        return O.Map(iova, random_paddr(r, g, iova), size, random_prot(r))
    if k < 0.3:
        size = random_size(r, g)
        return O.MapNosync(iova, random_paddr(r, g, iova), size, random_prot(r))
    if k < 0.38:
        return O.Sync(iova, random_size(r, g))
    if k < 0.5:
        return random_sg(r, g, iova)
    if k < 0.62:
        return O.Unmap(iova, random_size(r, g))
    if k < 0.72:
        return O.Smmu((iova + r.choice((0, 0, g.granule, 2 * g.granule))) & U64)
    if k < 0.76:
        return O.Evict(None if r.random() < 0.5 else iova)
    if k < 0.82:
        return O.Fail(r.choice(("alloc", "sync_map", "sync_map")), r.randrange(1, 6))
    if k < 0.88:
        return O.PtSyncMap(iova, random_size(r, g))
    if k < 0.93:
        return O.PtMapPages(iova, random_paddr(r, g, iova), r.choice(g.pgsizes),
                            r.choice((1, 2, 3, 512, 600)), random_prot(r))
    if k < 0.97:
        return O.PtUnmapPages(iova, r.choice(g.pgsizes), r.choice((1, 2, 512, 600)))
    return O.PtIovaToPhys(iova)


def random_sg(r: random.Random, g: Geometry, iova: int) -> O.MapSg:
    n = r.choice((1, 2, 3, 8, 16, 32, 64))
    paddr = random_paddr(r, g, iova)
    segs = []
    for _ in range(n):
        length = g.granule * r.choice((1, 1, 1, 2, 4))
        bus = r.random() < 0.04
        segs.append(O.Segment(paddr, length, bus))
        paddr = (paddr + length + (0 if r.random() < 0.3 else g.granule * r.choice((1, 2, 5)))) \
            & U64
    return O.MapSg(iova, tuple(segs), random_prot(r) or O.PROT_RW)


def random_template(r: random.Random, g: Geometry) -> list[O.Op]:
    """A short sequence that looks like a real user."""
    k = r.random()
    iova = random_iova(r, g)
    if k < 0.3:                                     # DMA: sg list, device reads, unmap
        sg = random_sg(r, g, iova)
        return [sg, O.Smmu(iova), O.Unmap(iova, sum(s.length for s in sg.segs if not s.bus))]
    if k < 0.5:                                     # batch of nosync maps, one sync
        ops, a = [], iova
        for _ in range(r.randrange(2, 6)):
            size = g.granule * r.choice((1, 2, 8))
            ops.append(O.MapNosync(a, random_paddr(r, g, a), size))
            a = (a + size) & U64
        total = (a - iova) & U64
        return ops + [O.Sync(iova, total), O.Smmu((a - g.granule) & U64)]
    if k < 0.7:                                     # block over a table emptied by unmap
        b = g.blocks[-2] if len(g.blocks) > 1 else g.blocks[-1]
        a = _to_iova(g, (iova // b) * b)
        return [O.Map(a, a & ((1 << min(g.oas, 48)) - 1), g.granule), O.Unmap(a, g.granule),
                O.Map(a, random_paddr(r, g, a), b), O.Smmu(a)]
    if k < 0.85:                                    # a failing sync on a fresh map
        return [O.Fail("sync_map", r.randrange(1, 5)), O.Map(iova, random_paddr(r, g, iova),
                                                             random_size(r, g)), O.Smmu(iova)]
    return [O.Map(iova, random_paddr(r, g, iova), random_size(r, g)), O.Evict(None),
            O.Unmap(iova, random_size(r, g)), O.Smmu(iova)]


def random_scenario(r: random.Random, config: Config | None = None,
                    max_ops: int = 12) -> O.Scenario:
    config = config or random_config(r)
    g = geometry_of(config)
    if g is None:
        return O.Scenario(config, ())
    ops: list[O.Op] = []
    while len(ops) < max_ops:
        if r.random() < 0.3:
            ops.extend(random_template(r, g))
        else:
            ops.append(random_op(r, g))
        if r.random() < 0.15:
            break
    return O.Scenario(config, tuple(ops[:max_ops]))
