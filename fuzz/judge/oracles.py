"""The oracles of design §5: small named checks run after every op (and once at the end).

Each check reads the two worlds through `model.interface.WorldInterface` and the executor's
records and returns findings; none of them changes what a world does, except `_mirror_unwind`, which
replays on the reference the unmap the core performed in the variant after a sync failure (an
injected one, or the variant's refusal of a range upstream mishandled), so the two worlds stay
comparable for the ops that follow.

An op in which the reference itself misbehaved (`upstream`) is *tainted*: the variant is not
held to the reference's return value or WARNs there, only to what it can be judged on alone
(docs/oracles.md, "Upstream misbehaviour").
"""

from __future__ import annotations

import re

import numpy as np

from model import KernelBug
from model import events as E
from model.config import IO_PGTABLE_QUIRK_ARM_TTBR1
from model.events import BUG, MEMORY_KINDS, UBSAN, WARN
from model.interface import WorldInterface
from model.pte import HW_MASK
from model.smmu import BAD_WALK_REASONS

from ..lang import ops as O
from . import findings as K
from .findings import Finding, config_class
from .intervals import IntervalSet, clip_pieces, input_region, request_pieces
from .records import OpRecord, SyncCall

U64 = (1 << 64) - 1
CORE_OPS = (O.Map, O.MapNosync, O.MapSg, O.Sync, O.Unmap)
SYNCING_OPS = (O.Map, O.MapSg, O.Sync, O.PtSyncMap)


def _s64(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


def written_range(op: O.Op) -> tuple[int, int] | None:
    """(iova, size) of the entries an op writes (and so un-syncs), or None."""
    if isinstance(op, (O.Map, O.MapNosync)):
        return op.iova, op.size
    if isinstance(op, O.MapSg):
        return op.iova, sum(s.length for s in op.segs if not s.bus)
    if isinstance(op, O.PtMapPages):
        # the entries written cover whole pgsize-aligned slots, whatever the iova's offset
        # (a block at an unaligned iova replaces the table of the whole slot)
        pgsize = op.pgsize if op.pgsize and not op.pgsize & (op.pgsize - 1) else 1
        start = op.iova & ~(pgsize - 1)
        return start, min(pgsize * op.pgcount + (op.iova - start), U64)
    return None


def _lines_in_range(st: np.ndarray, base: int, blk: int, r: tuple[int, int], le: int) -> set:
    """The lines (entry // le) of the entries `st` whose IOVA span
    [base + e * blk, base + (e + 1) * blk - 1] meets the range r.  A few entries are done on
    Python integers, which give what the int64 vector arithmetic gives as long as it cannot
    overflow (checked: every value it forms is below 2^63)."""
    if len(st) <= 64:
        es = st.tolist()
        if min(es) >= 0 and base >= 0 and base + (max(es) + 2) * blk < 1 << 63:
            r0, r1 = r
            return {e // le for e in es if base + (e + 1) * blk - 1 >= r0 and
                    base + e * blk <= r1}
    lo_e, hi_e = base + st * blk, base + (st + 1) * blk - 1
    inr = st[np.greater_equal(hi_e, r[0]) & np.less_equal(lo_e, r[1])]
    return set((inr // le).tolist())


#: How an upstream finding is named when the reference misbehaved in several ways in one op:
#: the most telling first (a BUG, then writes, reads, cleans), so that the name depends on what
#: happened, not on the order a world reports it in (a C world reports by kind).
UPSTREAM_PRECEDENCE = ("BUG", E.UAF_WRITE, E.OOB_WRITE, E.UAF_READ, E.OOB_READ, E.BAD_POINTER,
                       E.UAF_CLEAN, E.OOB_CLEAN, "untranslatable")

#: The core ops that map, and so can return success for a range the hardware cannot translate.
MAPPING_OPS = (O.Map, O.MapNosync, O.MapSg)


class Oracles:
    def __init__(self, ref: WorldInterface, var: WorldInterface, variant: str,
                 reference: str = "reference"):
        self.ref, self.var, self.variant, self.reference = ref, var, variant, reference
        self.cclass = config_class(var)
        g = var.geometry
        self.granule = g.granule
        self.ias_mask = (1 << g.ias) - 1
        self.region = input_region(g.ias, bool(var.config.quirks & IO_PGTABLE_QUIRK_ARM_TTBR1))
        self.synced = IntervalSet()
        self._blocks: dict[int, int] = {}
        self.tainted = False            # the reference misbehaved in the op being judged

    def _block_size(self, lvl: int) -> int:
        """`var.block_size(lvl)`, once per level (the geometry never changes)."""
        blk = self._blocks.get(lvl)
        if blk is None:
            blk = self._blocks[lvl] = self.var.block_size(lvl)
        return blk

    def finding(self, kind: str, where: str, level, rec: OpRecord | None, message: str,
                **detail) -> Finding:
        lvl = "-" if level is None else f"L{level}"
        return Finding(kind, self.variant, where, lvl, self.cclass,
                       -1 if rec is None else rec.index, message, detail,
                       self.var.geometry.start_level)

    # -- the per-op pipeline ---------------------------------------------------------------

    def after_op(self, rec: OpRecord) -> list[Finding]:
        """Every check, in this order (the order decides which finding of an op is the primary:
        docs/oracles.md).  A check that can only fire on something the op did not produce
        (events, sync walks, a failpoint, a crash) is not called for it: most ops produce few of
        these, and this runs after every op."""
        r, v = rec.ref, rec.var
        if r.error or v.error:
            return self.model_error(rec)
        # first: it may replay the core's unwind on the reference
        out = self.errors(rec) if v.sync_calls or v.fired else []
        out += self.upstream(rec)        # it may too, and it says whether rec is tainted
        if v.crashed:
            out += self.crash(rec)
        if v.events:
            out += self.memory_safety(rec)
            out += self.sanitizer(rec)
        if v.sync_calls:
            out += self.footprint(rec)
        if v.events:
            out += self.warns(rec)
        out += self.returns(rec)
        out += self.staleness(rec)
        out += self.state(rec)
        if v.sync_calls:
            out += self.redundancy(rec)
        return out

    # -- model-error -------------------------------------------------------------------------

    def model_error(self, rec: OpRecord) -> list[Finding]:
        out = []
        for world_name, o in (("reference", rec.ref), ("variant", rec.var)):
            if o.error:
                frames = re.findall(r'File "[^"]*?([\w.]+)\.py", line \d+, in (\w+)', o.error)
                last = o.error.strip().splitlines()[-1].split(":")[0]
                where = f"{world_name}:{frames[-1][1] if frames else '?'}:{last}"
                out.append(self.finding(K.MODEL_ERROR, where, None, rec,
                                        f"exception in the {world_name} world: "
                                        f"{o.error.strip().splitlines()[-1]}",
                                        traceback=o.error))
        return out

    # -- upstream ---------------------------------------------------------------------------------

    def _untranslatable(self, op: O.Op, ret) -> bool:
        """A mapping op that succeeded for a range not wholly inside the input region (it
        ends past the IAS, or wraps past 2^64): the core reported as mapped IOVAs that the SMMU
        can only fault on."""
        if not isinstance(op, MAPPING_OPS) or ret is None or not self._succeeded(op, ret):
            return False
        size = _s64(ret) if isinstance(op, O.MapSg) else op.size
        return self._leaves_region(request_pieces(op.iova, size))

    def _leaves_region(self, pieces: list[tuple[int, int]]) -> bool:
        """Whether a request's pieces (`request_pieces`) run outside the input region: past the
        IAS, past 2^64, or into the other TTBR half."""
        return clip_pieces(pieces, self.region) != pieces

    def upstream(self, rec: OpRecord) -> list[Finding]:
        """The reference misbehaved: read, wrote or cleaned out of bounds, hit a BUG (the core's
        no-progress loop is one), or reported success for IOVAs the hardware cannot translate.
        One finding per op, named by the first of these, attributed to the reference.  If the
        variant refused the call, the core's unwind is replayed on the reference."""
        r = rec.ref
        what = [f"{e.kind}:{e.site}" for e in r.events if e.kind in MEMORY_KINDS]
        if r.crashed:
            what.append(f"BUG:{next((e.site for e in r.events if e.kind == BUG), '?')}")
        if self._untranslatable(rec.op, r.ret):
            what.append(f"untranslatable:{rec.op.kind}")
        self.tainted = bool(what)
        if not what:
            return []
        # the variant refused (an errno), or its core's unwind of the refusal met a BUG_ON
        # (upstream's unmap of such a range can): the same unwind on the reference
        if (isinstance(rec.op, MAPPING_OPS) and self._succeeded(rec.op, r.ret)
                and (rec.var.crashed or not self._succeeded(rec.op, rec.var.ret))
                and not self._sync_fired(rec)):      # (errors() replayed that unwind already)
            self._mirror_unwind(rec)
        seen = sorted(set(what), key=lambda w: (UPSTREAM_PRECEDENCE.index(w.split(":")[0]), w))
        # named by its root cause where the driver layer saw one (the core is the model's in
        # every world, so both name it alike), else by what happened; the PGD's shape stays
        # out: one root cause, one bucket
        causes = [e.site for e in r.events if e.kind == E.UPSTREAM_CAUSE]
        if isinstance(rec.op, (O.PtMapPages, O.PtUnmapPages)):     # direct io-pgtable calls
            causes = [name for name, _ in self.ref.upstream_causes(rec.op.iova, rec.op.pgsize,
                                                                   rec.op.pgcount)]
        where = causes[0] if causes else seen[0]
        return [Finding(K.UPSTREAM, self.reference, where, "-", "-", rec.index,
                        f"the reference ({self.reference}) misbehaved in {rec.op.kind}: "
                        + "; ".join(seen) + (f" (cause: {where})" if causes else ""),
                        {"misbehaviour": seen, "causes": list(dict.fromkeys(causes))})]

    # -- warn (BUG half) -----------------------------------------------------------------------

    def crash(self, rec: OpRecord) -> list[Finding]:
        if rec.var.crashed and not rec.ref.crashed:
            site = next((e.site for e in rec.var.events if e.kind == BUG), "?")
            return [self.finding(K.WARN, f"BUG:{site}", None, rec,
                                 f"the variant hit BUG_ON where the reference did not: "
                                 f"{rec.var.crashed}")]
        return []

    # -- oob-access ------------------------------------------------------------------------------

    def memory_safety(self, rec: OpRecord) -> list[Finding]:
        ref_seen = {(e.kind, e.site) for e in rec.ref.events if e.kind in MEMORY_KINDS}
        out, seen = [], set()
        for e in rec.var.events:
            key = (e.kind, e.site)
            if e.kind in MEMORY_KINDS and key not in ref_seen and key not in seen:
                seen.add(key)
                out.append(self.finding(K.OOB_ACCESS, f"{e.kind}:{e.site}", None, rec,
                                        f"{e.kind} in {e.site}: {e.detail}"))
        return out

    # -- sanitizer ---------------------------------------------------------------------------------

    def sanitizer(self, rec: OpRecord) -> list[Finding]:
        """Undefined behaviour in a C world's code (ubsan events), by check and function, where
        the reference did not run into the same in this op."""
        if not any(e.kind == UBSAN for e in rec.var.events):
            return []
        def key(e):
            return e.site, e.detail.split(" ", 1)[0]
        ref_seen = {key(e) for e in rec.ref.events if e.kind == UBSAN}
        out, seen = [], set()
        for e in rec.var.events:
            if e.kind == UBSAN and key(e) not in ref_seen and key(e) not in seen:
                seen.add(key(e))
                out.append(self.finding(K.SANITIZER, f"{key(e)[1]}:{e.site}", None, rec,
                                        f"undefined behaviour in {e.site}: {e.detail}"))
        return out

    # -- foreign-walk ------------------------------------------------------------------------------

    def _range(self, iova: int, size: int) -> list[tuple[int, int]]:
        """The translatable IOVAs of a request as sorted inclusive [lo, hi] pieces in the
        table's index space (IAS bits): one piece, two for a range that wraps past 2^64 onto
        IOVA 0, none for an empty request or one wholly outside the input region."""
        pieces = clip_pieces(request_pieces(iova, size), self.region)
        return sorted((lo & self.ias_mask, hi & self.ias_mask) for lo, hi in pieces)

    def footprint(self, rec: OpRecord) -> list[Finding]:
        out = []
        for call in rec.var.sync_calls:
            r = self._range(call.iova, call.size)
            bad = self._shallowest_foreign(call, r)
            if bad is not None:
                lvl, span_lo, span_hi = bad
                rng = (f"[{call.iova:#x}, +{call.size:#x})")
                where = "past-ias" if self._followed_past_region(call, span_lo, span_hi) \
                    else "sync_map"
                out.append(self.finding(
                    K.FOREIGN_WALK, where, lvl, rec,
                    f"the sync walk for {rng} read an L{lvl} entry covering "
                    f"[{span_lo:#x}, {span_hi:#x}], outside the range",
                    request={"iova": call.iova, "size": call.size}))
                break
        return out

    def _followed_past_region(self, call: SyncCall, lo: int, hi: int) -> bool:
        """Whether the foreign entry [lo, hi] (index space) is one the request itself names
        outside the input region: the walk went where the request said, past the IAS (or
        wrapped, or into the other TTBR half), and the table's index arithmetic, which drops
        the bits above the IAS, took it there (findings.md §12).  An entry outside the request
        altogether is an over-walk of the walker's own, whatever the request."""
        pieces = request_pieces(call.iova, call.size)
        if not self._leaves_region(pieces):
            return False
        m = self.ias_mask
        for a, b in pieces:
            if b - a >= m:
                return True                    # the request covers every index
            a, b = a & m, b & m
            spans = ((a, b),) if a <= b else ((a, m), (0, b))
            if any(lo <= y and x <= hi for x, y in spans):
                return True
        return False

    def _shallowest_foreign(self, call: SyncCall, r):
        """(level, span) of a foreign entry at the shallowest level the walk read one: where
        the walk left the range.  What it reads below that (it descends into foreign tables,
        with the size by then wrong) is a consequence, so the finding is named by this level.
        Among reads at that level, the first in walk order."""
        best = None
        for acc in call.accesses:
            t = acc.table
            if t.freed or t.lvl < 0 or (best is not None and t.lvl >= best[0]):
                continue
            bad = self._foreign_entry(acc, r)
            if bad is not None:
                best = bad
        return best

    def _foreign_entry(self, acc, r):
        """The first entry of one read run [first, first + n) whose IOVA span meets no piece of
        the request (design §5: judged per entry), as (level, lo, hi), or None."""
        t = acc.table
        first, last = max(acc.first, 0), min(acc.first + acc.n, t.entries) - 1
        if first > last:
            return None
        blk = self._block_size(t.lvl)
        base = t.iova_base & self.ias_mask
        cur = first
        # the entries meeting a piece [p0, p1] are [(p0 - base) // blk, (p1 - base) // blk];
        # walk the (sorted, disjoint) pieces and find the first entry of the run none covers
        for p0, p1 in r:
            e0, e1 = (p0 - base) // blk, (p1 - base) // blk
            if e1 < cur:
                continue
            if e0 > cur:
                break
            cur = e1 + 1
            if cur > last:
                return None
        return t.lvl, base + cur * blk, base + (cur + 1) * blk - 1

    # -- lost-error, continued-after-error --------------------------------------------------------

    @staticmethod
    def _sync_fired(rec: OpRecord) -> bool:
        return any(f.site == "sync_map" for f in rec.var.fired)

    @staticmethod
    def _succeeded(op: O.Op, ret) -> bool:
        if isinstance(op, O.MapSg):
            return ret is not None and _s64(ret) >= 0
        return ret == 0

    def errors(self, rec: OpRecord) -> list[Finding]:
        out = []
        for call in rec.var.sync_calls:
            for f in call.fired:
                later = [h for h in call.hits if h > f.hit]
                if later:
                    out.append(self.finding(
                        K.CONTINUED_AFTER_ERROR, "walker", None, rec,
                        f"after the sync walk met {f.err} it entered {len(later)} more "
                        f"table level(s)"))
                    break
        if not self._sync_fired(rec):
            return out
        op, ret = rec.op, rec.var.ret
        if not isinstance(op, SYNCING_OPS):
            return out
        if not rec.var.crashed and self._succeeded(op, ret):
            walker_lost = any(c.fired and c.ret == 0 for c in rec.var.sync_calls)
            where = "walker" if walker_lost else "driver"
            err = next(f.err for f in rec.var.fired if f.site == "sync_map")
            out.append(self.finding(
                K.LOST_ERROR, where, None, rec,
                f"the sync walk failed with {err} but {op.kind} returned {_s64(ret)}; "
                f"lost in the {where}"))
        else:
            self._mirror_unwind(rec)
        return out

    def _mirror_unwind(self, rec: OpRecord) -> None:
        """The core unmapped the range after the variant's sync failed; do the same on the
        reference (whose map succeeded) so that both worlds stay comparable.  If that unwind
        hits a BUG_ON in the variant (the core's own bugs, e.g. the -ENOENT unmap return), it
        hits it in the reference too, and the crash is not the variant's."""
        op = rec.op
        self.ref.begin_op()
        try:
            if isinstance(op, (O.Map, O.MapNosync)) and rec.ref.ret == 0:
                self.ref.unmap(op.iova, op.size)
            elif isinstance(op, O.MapSg) and self._succeeded(op, rec.ref.ret):
                self.ref.unmap(op.iova, rec.ref.ret)
        except KernelBug as bug:          # the executor stops after a crashed world
            rec.ref.crashed = str(bug)
        finally:
            # what the kernel's own unwind does (WARNs, out-of-bounds on a bogus range) is the
            # reference's too, not the variant's
            rec.ref.events = rec.ref.events + self.ref.end_op().events

    # -- warn ------------------------------------------------------------------------------------

    def _legal_sync(self, iova: int, size: int) -> bool:
        """Granule-aligned, non-empty, inside the IAS and fully mapped (reference CPU view)."""
        g = self.granule
        return bool(size) and not (iova | size) % g and \
            self.ref.first_hole(iova, size, "cpu") is None

    def warns(self, rec: OpRecord) -> list[Finding]:
        op = rec.op
        var_warns = [e for e in rec.var.events if e.kind == WARN]
        if not var_warns or self.tainted:    # a refusal of what upstream mishandled WARNs
            return []
        if isinstance(op, O.PtSyncMap):
            judged = self._legal_sync(op.iova, op.size)
            ref_sites = set()
        elif isinstance(op, CORE_OPS):
            judged = not isinstance(op, O.Sync) or self._legal_sync(op.iova, op.size)
            ref_sites = {e.site for e in rec.ref.events if e.kind == WARN}
        else:
            judged = False
        if not judged:
            return []
        out, seen = [], set()
        for e in var_warns:
            if e.site in ref_sites or e.site in seen:
                continue
            seen.add(e.site)
            n = sum(x.count for x in var_warns if x.site == e.site)
            out.append(self.finding(K.WARN, e.site, None, rec,
                                    f"WARN at {e.site} ({n}x) on a legal {op.kind}: {e.detail}"))
        return out

    # -- return-mismatch ---------------------------------------------------------------------------

    def returns(self, rec: OpRecord) -> list[Finding]:
        op = rec.op
        if isinstance(op, (O.Smmu, O.Evict, O.Fail, O.PtSyncMap)):
            return []
        if rec.ref.crashed or rec.var.crashed or self._sync_fired(rec):
            return []
        if isinstance(op, O.Sync) and not self._legal_sync(op.iova, op.size):
            return []
        if self.tainted and self._refused(op, rec.var.ret):
            return []
        if rec.ref.ret != rec.var.ret:
            return [self.finding(K.RETURN_MISMATCH, op.kind, None, rec,
                                 f"{op.kind} returned {rec.var.ret!r} in the variant, "
                                 f"{rec.ref.ret!r} in the reference")]
        return []

    @staticmethod
    def _refused(op: O.Op, ret) -> bool:
        """The variant declined the call: an errno, or for the size_t unmaps, 0 bytes."""
        if isinstance(op, (O.Unmap, O.PtUnmapPages)):
            return ret == 0
        return isinstance(ret, int) and (ret < 0 or _s64(ret) < 0)

    # -- stale-read, bad-walk ---------------------------------------------------------------------

    def staleness(self, rec: OpRecord) -> list[Finding]:
        op, v = rec.op, rec.var
        out = []
        if isinstance(op, SYNCING_OPS) and v.ret is not None and self._succeeded(op, v.ret):
            # the contract for any range, wrapped or past the IAS included: a walker that
            # returns success has synced every IOVA of it the hardware can translate
            size = _s64(v.ret) if isinstance(op, O.MapSg) else op.size
            pieces = request_pieces(op.iova, size)
            translatable = clip_pieces(pieces, self.region)
            # a range running past the IAS (or past 2^64) is a cause of its own (an overflow),
            # and so is one that is not a whole number of granules (its rounding)
            where = ("past-ias" if self._leaves_region(pieces) else
                     "unaligned" if (op.iova | size) & (self.granule - 1) else "-")
            for lo, hi in translatable:
                d = self.var.first_divergence(lo, hi - lo + 1)
                if d is not None:
                    out.append(self._divergence_finding(rec, d, f"after a successful {op.kind}",
                                                        where))
                    break
            for lo, hi in pieces:
                self.synced.add(lo, hi + 1)
            return out
        w = written_range(op)
        if w is not None:
            for lo, hi in request_pieces(*w):
                self.synced.remove(lo, hi + 1)
        if isinstance(op, O.Smmu) and v.ret is not None:
            walk = v.ret
            if walk.bad:
                out.append(self.finding(
                    K.BAD_WALK, walk.fault, walk.level, rec,
                    f"the SMMU walk of {op.iova:#x} hit a {walk.fault} page",
                    walk_mem=walk.describe(),
                    walk_cpu=self.var.smmu_walk(op.iova, "cpu").describe()))
            elif op.iova in self.synced:
                cpu = self.var.smmu_walk(op.iova, "cpu")
                if not walk.same_as(cpu):
                    out.append(self.finding(        # memory changed after a good sync
                        K.STALE_READ, "smmu", walk.level, rec,
                        f"the SMMU read a stale entry for synced iova {op.iova:#x}",
                        walk_mem=walk.describe(), walk_cpu=cpu.describe()))
        return out

    def _divergence_finding(self, rec: OpRecord, d, when: str, where: str = "-") -> Finding:
        mem = self.var.smmu_walk(d.iova, "mem")
        cpu = self.var.smmu_walk(d.iova, "cpu")
        if d.reason in BAD_WALK_REASONS:
            return self.finding(K.BAD_WALK, d.reason, d.lvl, rec,
                                f"{when}, the SMMU walk of {d.iova:#x} hits a {d.reason} page",
                                iova=d.iova, walk_mem=mem.describe(), walk_cpu=cpu.describe())
        return self.finding(K.STALE_READ, where, d.lvl, rec,
                            f"{when}, the SMMU reads a stale L{d.lvl} entry for {d.iova:#x}",
                            iova=d.iova, walk_mem=mem.describe(), walk_cpu=cpu.describe())

    # -- state-mismatch ---------------------------------------------------------------------------

    def state(self, rec: OpRecord) -> list[Finding]:
        pas = self.ref.take_changed_tables() | self.var.take_changed_tables()
        hw = np.uint64(HW_MASK)
        for pa in sorted(pas):
            a, b = self.ref.table_view(pa), self.var.table_view(pa)
            if a is None or b is None or a[0] != b[0]:
                why = f"table {pa:#x} exists or is freed in one world only"
            elif len(a[1]) != len(b[1]):
                why = (f"table {pa:#x} has {len(a[1])} entries in the reference, "
                       f"{len(b[1])} in the variant")
            else:
                if a[1].tobytes() == b[1].tobytes():      # equal in every bit: the cheap test
                    continue
                diff = ((a[1] ^ b[1]) & hw).nonzero()[0]
                if not len(diff):
                    continue
                i = int(diff[0])
                why = (f"table {pa:#x} entry {i}: reference {int(a[1][i]):#x}, "
                       f"variant {int(b[1][i]):#x}")
            return [self.finding(K.STATE_MISMATCH, rec.op.kind, None, rec,
                                 f"the CPU-view tables differ after {rec.op.kind}: {why}")]
        return []

    # -- redundant-clean ---------------------------------------------------------------------------

    def redundancy(self, rec: OpRecord) -> list[Finding]:
        out = []
        for call in rec.var.sync_calls:
            f = self._redundant(call, rec)
            if f is not None:
                out.append(f)
                break
        return out

    def _redundant(self, call: SyncCall, rec: OpRecord) -> Finding | None:
        r = self._range(call.iova, call.size)
        seen: set[int] = set()
        for c in call.cleans:
            t = c.table
            if t.freed or t.lvl < 0:
                continue
            line_bytes = t.line_entries * 8
            base_line = t.pa // line_bytes
            nlines_table = len(t.dirty)
            # a clean may ask for far more than the table (a negative int count times 8):
            # only the table's own lines exist; the rest is reported by oob-access
            lines = range(max(c.first_line, 0), min(c.first_line + c.nlines, nlines_table))
            absolute = range(base_line + lines.start, base_line + lines.stop)
            if not seen.isdisjoint(absolute):
                ln = next(a for a in absolute if a in seen)
                return self.finding(K.REDUNDANT_CLEAN, "twice", None, rec,
                                    f"one sync cleaned line {ln * line_bytes:#x}"
                                    f" (L{t.lvl}) twice")
            seen.update(absolute)
            # lines holding no entry of the range changed since a sync walk last cleaned them
            blk = self._block_size(t.lvl)
            base = t.iova_base & self.ias_mask
            st = c.changed
            needed = set()
            if len(st):
                for piece in r:
                    needed |= _lines_in_range(st, base, blk, piece, t.line_entries)
            for ln in (lines if not needed.issuperset(lines) else ()):
                if ln not in needed:
                    return self.finding(
                        K.REDUNDANT_CLEAN, "unchanged", None, rec,
                        f"one sync cleaned line {(base_line + ln) * line_bytes:#x} (L{t.lvl}) "
                        f"holding no entry of the range stored to since a sync last cleaned it")
        return None

    # -- cmo-regression (once, at the end) ---------------------------------------------------------

    def at_end(self, records: list[OpRecord]) -> list[Finding]:
        if not records or any(r.ref.error or r.var.error for r in records):
            return []
        ref_total = self.ref.stats()["lines_cleaned"]
        var_total = self.var.stats()["lines_cleaned"]
        if var_total <= ref_total:
            return []
        # the first op after which the variant's running total exceeds the reference's
        run_ref = run_var = 0
        first = records[-1]
        for r in records:
            run_ref += r.ref.lines
            run_var += r.var.lines
            if run_var > run_ref:
                first = r
                break
        return [self.finding(K.CMO_REGRESSION, "total", None, first,
                             f"the variant cleaned {var_total} lines, the reference "
                             f"{ref_total}", reference=ref_total, variant=var_total)]
