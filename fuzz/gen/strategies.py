"""Hypothesis strategies over the op language: the property-based front end (design §7).

`configs()`, `ops_for(config)` and `scenarios(max_ops)` produce the same `fuzz.lang.ops` objects as
`fuzz.gen.generate`, with the same bias toward structure: configs from the generator's pools of
formats, granules and address sizes (accepted ones only, `geometry_of(config) is not None`);
IOVAs from `boundaries(geometry)`, their multiples and neighbours and the top of the aperture;
sizes from granules, blocks and PGD-page spans; physical addresses co-aligned with the IOVA or
skewed by one granule; and the generator's user-like templates (sg list then unmap, a batch of
nosync maps then one sync, a block over a freed table, a failing sync, evict then unmap).

Every choice is a `st.sampled_from` or `st.integers` whose first (simplest) value is the
plain one: the default config, IOVA 0 or a boundary, one granule, prot rw, nth 1.  Hypothesis
shrinks toward those, so a shrunk failure reads like a hand-written `.ops` file.  The pools
repeat `fuzz/gen/generate.py`'s literal choices (keep them in step when those change); the
geometry, the boundary list and the IOVA placement are that module's own functions.

Shrinking ops away: an op takes about eight choices, and Hypothesis's shrinker (6.15x) deletes
at most five consecutive choices at a time, so it rarely manages to delete a list element that
size.  Each chunk (a single op or a template) and each op of a template therefore starts with
a keep flag, kept 19 times in 20, that shrinks to "drop": one choice turns an op off.  With it a
v1 stale read shrinks to `fail sync_map` + `map 0x0 0x0 4K`; without it, to 3-5 ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

from hypothesis import strategies as st

from model import Config
from model.config import CONCAT_LEGACY, CONCAT_MANDATORY, QUIRK_BITS

from ..lang import ops as O
from .generate import (
    FORMAT_WEIGHTS,
    IAS_CHOICES,
    OAS_CHOICES,
    U64,
    Geometry,
    _to_iova,
    _top,
    boundaries,
    geometry_of,
)

# Strategy objects are built once and reused: Hypothesis caches labels and validation on the
# object, and building fresh ones inside every draw costs more than running a scenario.


def _pool(values) -> st.SearchStrategy:
    """Uniform over `values` (repeats weight them); shrinks toward `values[0]`."""
    return st.sampled_from(tuple(values))


def _chance(p_true: int, p_false: int) -> st.SearchStrategy[bool]:
    """A biased boolean that shrinks to False (p_true : p_false)."""
    return _pool((False,) * p_false + (True,) * p_true)


# --- pools (simplest first; repeats give fuzz/gen/generate.py's weights) -------------------------

_FORMATS = tuple(f for f, w in FORMAT_WEIGHTS for _ in range(w))
_GRANULES = (1 << 12, 1 << 12, 1 << 14, 1 << 16)
_IAS = (48,) + tuple(i for i in IAS_CHOICES if i != 48)
_OAS = (48,) + tuple(o for o in OAS_CHOICES if o != 48)

_LINE = _pool((64, 64, 32, 128))
_TOP_PAGES = _pool((1, 2, 3, 8, 16, 512, 513))       # granules below the top of the aperture
# (multiple of a boundary, granules around it): the generator's (1, 1, 1, 2, 3, 7) and
# (0, 0, 0, -1, 1, -2, 2, -8, 8, -511), in one draw
_AROUND = _pool((m, d) for m in (1, 1, 1, 2, 3, 7) for d in (0, 0, 0, -1, 1, -2, 2, -8, 8, -511))
_EXTRA = st.integers(0, 63)
_GRANULE_COUNT = _pool((1, 1, 2, 3, 8, 16, 17, 64, 511, 512, 513))
_BLOCK_MULTIPLE = _pool((1, 1, 2, 3))
_BLOCK_NUDGE = _pool((0, 0, -1, 1, 2))
_SIZE_KIND = _pool(("granules",) * 8 + ("blocks",) * 8 + ("pgd",) * 3 + ("odd",))
_PGD_MULTIPLE = _pool((1, 2))
_ODD_SIZE = st.integers(1, (1 << 20) - 1)
_PADDR_KIND = _pool(("co",) * 12 + ("skew",) * 5 + ("fixed",) * 3)
_PADDR_SKEW = _pool((0, 1, 2))                       # granules above a fixed paddr
_PROT = _pool((O.PROT_RW, O.PROT_RW, O.PROT_RW, 1, 2, 0b111, 0b1011, 0b10011, 0))
_PGCOUNT_MAP = _pool((1, 2, 3, 512, 600))
_PGCOUNT_UNMAP = _pool((1, 2, 512, 600))
_SG_COUNT = _pool((1, 2, 3, 8, 16, 32, 64))
# one draw per segment: (granules long, granules of gap after it, bus address?), the lengths
# (1, 1, 1, 2, 4) of the generator, no gap 3 times in 10 else 1, 2 or 5, bus 1 in 24
_SG_SEGMENT = _pool((n, gap, bus) for bus in (False, True) for n in (1, 1, 1, 2, 4)
                    for gap in (0,) * 9 + (1, 2, 5) * 7 for _ in range(23 if not bus else 1))
_SMMU_STEP = _pool((0, 0, 1, 2))
_FAIL_SITE = _pool(("sync_map", "sync_map", "alloc"))
_FAIL_NTH = st.integers(1, 5)
_TEMPLATE_NTH = st.integers(1, 4)
_BATCH_LEN = st.integers(2, 5)
_BATCH_GRANULES = _pool((1, 2, 8))
_OP_KIND = _pool(("map",) * 20 + ("map_nosync",) * 10 + ("sync",) * 8 + ("map_sg",) * 12
                 + ("unmap",) * 12 + ("smmu",) * 10 + ("evict",) * 4 + ("fail",) * 6
                 + ("pt.sync_map",) * 6 + ("pt.map_pages",) * 5 + ("pt.unmap_pages",) * 4
                 + ("pt.iova_to_phys",) * 3)
_TEMPLATE_KIND = _pool(("sg",) * 6 + ("batch",) * 4 + ("block",) * 4 + ("failsync",) * 3
                       + ("evict",) * 3)

# (top of the aperture?, a few granules more?, not aligned?) in one draw, weighted as the
# generator (1:3, 1:9 off the top only, 1:32); the plain shape first
_IOVA_SHAPE = _pool(
    (top, extra, unaligned)
    for top in (False, True) for extra in ((False, True) if not top else (False,))
    for unaligned in (False, True)
    for _ in range((1 if top else 3) * ((1 if extra else 9) if not top else 10)
                   * (1 if unaligned else 32)))
_P_TEMPLATE = _chance(3, 7)
_KEEP = _pool((False,) + (True,) * 19)
_BOOL = st.booleans()


# --- configs ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _accepted() -> dict:
    """(fmt, granule, ias) -> the OAS values the kernel accepts, without quirks (945 cached
    `geometry_of` calls, ~0.1 s once).  Drawing from this table instead of filtering keeps the
    rare formats (arm32 accepts only 4K and small address sizes) as likely as their weight."""
    table: dict = {}
    for fmt in dict(FORMAT_WEIGHTS):
        for granule in dict.fromkeys(_GRANULES):
            for ias in _IAS:
                oas = tuple(o for o in _OAS if geometry_of(
                    Config(fmt=fmt, granule=granule, ias=ias, oas=o, page_size=granule)))
                if oas:
                    table[fmt, granule, ias] = oas
    return table


@cache
def _config_pool(*key) -> st.SearchStrategy:
    """The accepted next field given the ones before it (fmt -> granule -> ias -> oas)."""
    table = _accepted()
    if len(key) == 1:
        return _pool(g for g in _GRANULES if any(k[:2] == (key[0], g) for k in table))
    if len(key) == 2:
        return _pool(i for i in _IAS if (*key, i) in table)
    return _pool(table[key])


_FORMAT = _pool(f for f in _FORMATS if any(k[0] == f for k in _accepted()))
_P_OAS_GE_IAS = _chance(2, 3)
_P_TTBR1, _P_NO_WARN, _P_RARE_QUIRK = _chance(1, 3), _chance(1, 4), _chance(1, 9)
_P_LEGACY, _P_COHERENT = _chance(1, 6), _chance(1, 30)
_ENOENT_BUG = _pool((True, False, False))                # 1 in 3, as the generator's 0.3


@st.composite
def _raw_config(draw) -> Config:
    fmt = draw(_FORMAT)
    granule = draw(_config_pool(fmt))
    ias = draw(_config_pool(fmt, granule))
    oas_ok = _accepted()[fmt, granule, ias]
    oas = draw(_config_pool(fmt, granule, ias))
    if draw(_P_OAS_GE_IAS) and ias in oas_ok:       # oas >= ias, as real SMMUs have
        oas = max(oas, ias)
    quirks = 0
    if fmt.endswith("s1") and draw(_P_TTBR1):
        quirks |= QUIRK_BITS["ttbr1"]
    if draw(_P_NO_WARN):
        quirks |= QUIRK_BITS["no_warn"]
    if fmt == "arm64-s1" and draw(_P_RARE_QUIRK):
        quirks |= QUIRK_BITS["ns"]
    if fmt == "arm64-s1" and draw(_P_RARE_QUIRK):
        quirks |= QUIRK_BITS["hd"]
    if fmt == "arm64-s2" and draw(_P_RARE_QUIRK):
        quirks |= QUIRK_BITS["s2fwb"]
    return Config(fmt=fmt, granule=granule, ias=ias, oas=oas, quirks=quirks,
                  line=draw(_LINE),
                  concat=CONCAT_LEGACY if draw(_P_LEGACY) else CONCAT_MANDATORY,
                  enoent_bug=draw(_ENOENT_BUG),           # shrinks to the default (True)
                  coherent_walk=draw(_P_COHERENT),
                  page_size=granule)


_CONFIGS = _raw_config().filter(lambda c: geometry_of(c) is not None)


def configs() -> st.SearchStrategy[Config]:
    """An accepted configuration (the kernel's alloc checks pass); every combination of
    `fuzz.gen.generate.random_config` is reachable.  Shrinks toward arm64-s1 4K ias=oas=48."""
    return _CONFIGS


# --- fields (draw helpers take a per-geometry kit of prebuilt strategies) --------------------

@dataclass(frozen=True)
class _Kit:
    g: Geometry
    boundary: st.SearchStrategy
    block: st.SearchStrategy
    pgsize: st.SearchStrategy
    unaligned: st.SearchStrategy
    odd_size: st.SearchStrategy
    fixed_paddr: st.SearchStrategy


@lru_cache(maxsize=1024)
def _kit(g: Geometry) -> _Kit:
    limit = (1 << min(g.oas, 52)) - 1
    return _Kit(g, _pool(boundaries(g)), _pool(g.blocks[1:] or g.blocks), _pool(g.pgsizes),
                st.integers(1, g.granule - 1),
                st.one_of(_pool((0, g.granule // 2)), _ODD_SIZE),
                _pool((0, 1 << 32, 1 << 39, limit + 1 - g.granule)))


def _draw_iova(draw, k: _Kit) -> int:
    g = k.g
    top, extra, unaligned = draw(_IOVA_SHAPE)
    if top:                                         # the top of the aperture (top-down IOVAs)
        a = _top(g) - draw(_TOP_PAGES) * g.granule
    else:
        m, d = draw(_AROUND)
        a = draw(k.boundary) * m + d * g.granule
        if extra:
            a += draw(_EXTRA) * g.granule
    iova = _to_iova(g, a)
    if unaligned:                                   # now and then, not aligned at all
        iova = (iova + draw(k.unaligned)) & U64
    return iova


def _draw_size(draw, k: _Kit) -> int:
    g = k.g
    kind = draw(_SIZE_KIND)
    if kind == "granules":
        return g.granule * draw(_GRANULE_COUNT)
    if kind == "blocks":
        return max(g.granule, draw(k.block) * draw(_BLOCK_MULTIPLE)
                   + draw(_BLOCK_NUDGE) * g.granule)
    if kind == "pgd":
        if g.pgd_page_span >= 1 << 44:
            return g.granule
        return g.pgd_page_span * draw(_PGD_MULTIPLE)
    return draw(k.odd_size)


def _draw_paddr(draw, k: _Kit, iova: int) -> int:
    g = k.g
    limit = (1 << min(g.oas, 52)) - 1
    kind = draw(_PADDR_KIND)
    if kind == "co":                                # co-aligned: blocks possible
        p = iova & limit
    elif kind == "skew":                            # skewed by one granule: small pages only
        p = (iova & limit) + g.granule
    else:
        p = draw(k.fixed_paddr) + draw(_PADDR_SKEW) * g.granule
    return p & limit & ~(g.granule - 1)


def _draw_sg(draw, k: _Kit, iova: int) -> O.MapSg:
    g = k.g
    paddr = _draw_paddr(draw, k, iova)
    segs = []
    for _ in range(draw(_SG_COUNT)):
        n, gap, bus = draw(_SG_SEGMENT)
        segs.append(O.Segment(paddr, n * g.granule, bus))
        paddr = (paddr + (n + gap) * g.granule) & U64
    return O.MapSg(iova, tuple(segs), draw(_PROT) or O.PROT_RW)


def _draw_op(draw, k: _Kit) -> O.Op:
    """One op, with `fuzz.gen.generate.random_op`'s mix of kinds (map first: it shrinks there)."""
    g = k.g
    kind = draw(_OP_KIND)
    iova = _draw_iova(draw, k)
    if kind in ("map", "map_nosync"):
        size = _draw_size(draw, k)
        cls = O.Map if kind == "map" else O.MapNosync
        return cls(iova, _draw_paddr(draw, k, iova), size, draw(_PROT))
    if kind == "sync":
        return O.Sync(iova, _draw_size(draw, k))
    if kind == "map_sg":
        return _draw_sg(draw, k, iova)
    if kind == "unmap":
        return O.Unmap(iova, _draw_size(draw, k))
    if kind == "smmu":
        return O.Smmu((iova + draw(_SMMU_STEP) * g.granule) & U64)
    if kind == "evict":
        return O.Evict(None if draw(_BOOL) else iova)
    if kind == "fail":
        return O.Fail(draw(_FAIL_SITE), draw(_FAIL_NTH))
    if kind == "pt.sync_map":
        return O.PtSyncMap(iova, _draw_size(draw, k))
    if kind == "pt.map_pages":
        return O.PtMapPages(iova, _draw_paddr(draw, k, iova), draw(k.pgsize),
                            draw(_PGCOUNT_MAP), draw(_PROT))
    if kind == "pt.unmap_pages":
        return O.PtUnmapPages(iova, draw(k.pgsize), draw(_PGCOUNT_UNMAP))
    return O.PtIovaToPhys(iova)


def _draw_template(draw, k: _Kit) -> list[O.Op]:
    """`fuzz.gen.generate.random_template`: short sequences that look like a real driver.  Each op
    of a template then draws a keep flag (kept 19 times in 20) that shrinks to "drop", so the
    shrinker can take a template apart one op at a time."""
    return [op for op in _template_ops(draw, k) if draw(_KEEP)]


def _template_ops(draw, k: _Kit) -> list[O.Op]:
    g = k.g
    kind = draw(_TEMPLATE_KIND)
    iova = _draw_iova(draw, k)
    if kind == "sg":                                # DMA: sg list, device reads, unmap
        sg = _draw_sg(draw, k, iova)
        return [sg, O.Smmu(iova), O.Unmap(iova, sum(s.length for s in sg.segs if not s.bus))]
    if kind == "batch":                             # batch of nosync maps, one sync
        ops, a = [], iova
        for _ in range(draw(_BATCH_LEN)):
            size = g.granule * draw(_BATCH_GRANULES)
            ops.append(O.MapNosync(a, _draw_paddr(draw, k, a), size))
            a = (a + size) & U64
        return ops + [O.Sync(iova, (a - iova) & U64), O.Smmu((a - g.granule) & U64)]
    if kind == "block":                             # block over a table emptied by unmap
        b = g.blocks[-2] if len(g.blocks) > 1 else g.blocks[-1]
        a = _to_iova(g, (iova // b) * b)
        return [O.Map(a, a & ((1 << min(g.oas, 48)) - 1), g.granule), O.Unmap(a, g.granule),
                O.Map(a, _draw_paddr(draw, k, a), b), O.Smmu(a)]
    if kind == "failsync":                          # a failing sync on a fresh map
        return [O.Fail("sync_map", draw(_TEMPLATE_NTH)),
                O.Map(iova, _draw_paddr(draw, k, iova), _draw_size(draw, k)), O.Smmu(iova)]
    return [O.Map(iova, _draw_paddr(draw, k, iova), _draw_size(draw, k)), O.Evict(None),
            O.Unmap(iova, _draw_size(draw, k)), O.Smmu(iova)]


# --- public strategies -----------------------------------------------------------------------

def _geometry(config: Config) -> Geometry:
    g = geometry_of(config)
    if g is None:
        raise ValueError(f"config not accepted by the model: {O.format_config(config)}")
    return g


@lru_cache(maxsize=1024)
def iovas(config: Config) -> st.SearchStrategy[int]:
    """A structured IOVA: a boundary times a small multiple, nudged by granules; or the top
    of the aperture; now and then not granule-aligned.  Shrinks to 0 (TTBR1: its bottom)."""
    k = _kit(_geometry(config))
    return st.composite(lambda draw: _draw_iova(draw, k))()


@lru_cache(maxsize=1024)
def sizes(config: Config) -> st.SearchStrategy[int]:
    """Granule counts, blocks (and just off them), PGD-page spans, and odd sizes."""
    k = _kit(_geometry(config))
    return st.composite(lambda draw: _draw_size(draw, k))()


@lru_cache(maxsize=1024)
def single_ops(config: Config) -> st.SearchStrategy[O.Op]:
    """One op of any kind, mixed as `fuzz.gen.generate.random_op` mixes them."""
    k = _kit(_geometry(config))
    return st.composite(lambda draw: _draw_op(draw, k))()


@lru_cache(maxsize=1024)
def templates(config: Config) -> st.SearchStrategy[list[O.Op]]:
    """One of `fuzz.gen.generate.random_template`'s user-like sequences."""
    k = _kit(_geometry(config))
    return st.composite(lambda draw: _draw_template(draw, k))()


@lru_cache(maxsize=1024)
def _chunks(g: Geometry) -> st.SearchStrategy[list[O.Op]]:
    k = _kit(g)

    def chunk(draw) -> tuple[bool, list[O.Op]]:
        keep = draw(_KEEP)
        return keep, _draw_template(draw, k) if draw(_P_TEMPLATE) else [_draw_op(draw, k)]
    return st.composite(chunk)()


def _flatten(max_ops: int):
    def flatten(chunks: list[tuple[bool, list[O.Op]]]) -> tuple[O.Op, ...]:
        kept = [ops for keep, ops in chunks if keep] or [chunks[0][1]]   # never all dropped
        return tuple(op for ops in kept for op in ops)[:max_ops]
    return flatten


@lru_cache(maxsize=1024)
def ops_for(config: Config, max_ops: int = 12) -> st.SearchStrategy[tuple[O.Op, ...]]:
    """A tuple of at most `max_ops` ops for an accepted `config` (ValueError otherwise): one
    to `max_ops` chunks, single ops and templates 7:3 as the generator mixes them, cut at
    `max_ops`.  Shrinking drops ops through their keep flags (the first chunk stays if all
    would go), then simplifies kinds and fields."""
    return st.lists(_chunks(_geometry(config)), min_size=1, max_size=max_ops).map(
        _flatten(max_ops))


def scenarios(max_ops: int = 12) -> st.SearchStrategy[O.Scenario]:
    """A whole `Scenario`: an accepted config and up to `max_ops` ops for it."""
    return _scenarios(max_ops)


@lru_cache(maxsize=64)
def _scenarios(max_ops: int) -> st.SearchStrategy[O.Scenario]:
    def scenario(draw) -> O.Scenario:
        config = draw(_CONFIGS)
        return O.Scenario(config, draw(ops_for(config, max_ops)))
    return st.composite(scenario)()
