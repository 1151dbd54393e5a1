"""`minimize`: shrink an input while one finding signature stays present.

Three stages, repeated until a whole round changes nothing (or the replay budget runs out):

a. ops: delta debugging (ddmin): remove chunks of ops, starting with halves and halving the
   chunk size whenever no chunk can go;
b. each op: drop map_sg segments, `prot=` back to the default rw, pgcount down to 1, `nth` down
   to 1, an injected `err` back to the site's default, sizes down to the smallest page size or
   by halving, addresses rounded down to larger alignments;
c. the config: line 64, concat mandatory, enoent_bug on, no quirks (or only those needed),
   and the other keys back to their defaults.

Every candidate is formatted to text, parsed back and replayed; it is kept only if the replay
still reports the signature.  Candidates are tried in a fixed order, so the result depends on
the input alone.  Replays are cached by text and counted against a budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from model import Config, Variant
from model.config import QUIRK_BITS

from ..judge.findings import Finding
from ..lang import ops as O
from ..run.executor import RunResult, run_scenario
from .triage import group_findings

#: Replays one minimisation may spend (cache hits are free).
DEFAULT_MAX_REPLAYS = 3000


class BudgetExhausted(Exception):
    """The replay budget ran out; the best scenario so far stands."""


def default_signature(findings: list[Finding]) -> str | None:
    """The signature of the run's correctness primary (its first correctness finding, the one
    whose bucket a campaign opens), else of its first primary of another category, else None."""
    groups = group_findings(findings)
    for g in groups:
        if g.primary.correctness:
            return g.primary.signature
    return groups[0].primary.signature if groups else None


def is_primary(signature: str, findings: list[Finding]) -> bool:
    """Whether `signature` is a primary of this run (it opens or counts in its own bucket)."""
    return any(g.primary.signature == signature for g in group_findings(findings))


@dataclass
class MinimizeResult:
    original: O.Scenario
    scenario: O.Scenario
    signature: str
    replays: int
    exhausted: bool
    result: RunResult            # the replay of the minimised scenario

    @property
    def op_index(self) -> int | None:
        """The first op of the minimised scenario that reports the signature."""
        hits = [f.op_index for f in self.result.findings if f.signature == self.signature]
        return hits[0] if hits else None


class Minimizer:
    """`as_primary`: the signature must stay the run's primary (first of its category), so that
    the result lands in the same bucket as the input; else it only has to be reported."""

    def __init__(self, variant: Variant, signature: str, max_replays: int = DEFAULT_MAX_REPLAYS,
                 as_primary: bool = False):
        self.variant = variant
        self.signature = signature
        self.as_primary = as_primary
        self.max_replays = max_replays
        self.replays = 0
        self.cache: dict[str, bool] = {}
        self.latest: O.Scenario | None = None     # the last candidate accepted

    # -- the predicate ----------------------------------------------------------------------

    def run(self, sc: O.Scenario) -> RunResult:
        return run_scenario(O.parse_scenario(O.format_scenario(sc)), self.variant)

    def holds(self, sc: O.Scenario) -> bool:
        """Whether the property kept while shrinking holds: here, that the replay still
        reports the signature (fidelity keeps a model-vs-C difference instead)."""
        res = run_scenario(sc, self.variant)
        if self.as_primary:
            return is_primary(self.signature, res.findings)
        return any(f.signature == self.signature for f in res.findings)

    def interesting(self, sc: O.Scenario) -> bool:
        try:
            text = O.format_scenario(sc)
        except (ValueError, TypeError):
            return False
        if text in self.cache:
            if self.cache[text]:
                self.latest = sc
            return self.cache[text]
        if self.replays >= self.max_replays:
            raise BudgetExhausted
        self.replays += 1
        try:
            ok = self.holds(O.parse_scenario(text))
        except O.OpsSyntaxError:
            ok = False
        self.cache[text] = ok
        if ok:
            self.latest = sc
        return ok

    # -- stage a: ddmin over the ops ----------------------------------------------------------

    def ddmin(self, sc: O.Scenario) -> O.Scenario:
        ops = list(sc.ops)
        n = 2
        while ops:
            n = min(n, len(ops))
            chunk = -(-len(ops) // n)
            for start in range(0, len(ops), chunk):
                cand = ops[:start] + ops[start + chunk:]
                if self.interesting(replace(sc, ops=tuple(cand))):
                    ops = cand
                    n = max(n - 1, 2)
                    break
            else:
                if n >= len(ops):
                    break
                n = min(2 * n, len(ops))
        return replace(sc, ops=tuple(ops))

    # -- stage b: simplify each op ------------------------------------------------------------

    def simplify_ops(self, sc: O.Scenario) -> O.Scenario:
        i = 0
        while i < len(sc.ops):
            changed = True
            while changed:
                changed = False
                for cand_op in op_candidates(sc.ops[i], sc.config):
                    cand = replace(sc, ops=sc.ops[:i] + (cand_op,) + sc.ops[i + 1:])
                    if self.interesting(cand):
                        sc, changed = cand, True
                        break
            i += 1
        return sc

    # -- stage c: simplify the config ---------------------------------------------------------

    def simplify_config(self, sc: O.Scenario) -> O.Scenario:
        changed = True
        while changed:
            changed = False
            for cfg in config_candidates(sc.config):
                cand = replace(sc, config=cfg)
                if self.interesting(cand):
                    sc, changed = cand, True
                    break
        return sc

    def minimize(self, sc: O.Scenario) -> tuple[O.Scenario, bool]:
        """Returns (smallest scenario found, whether the budget ran out)."""
        self.latest = sc
        try:
            while True:
                before = O.format_scenario(sc)
                sc = self.simplify_config(self.simplify_ops(self.ddmin(sc)))
                if O.format_scenario(sc) == before:
                    return sc, False
        except BudgetExhausted:
            # every stage replaces its scenario only by a candidate `interesting` accepted,
            # so the latest accepted candidate is the best so far
            return self.latest, True


# --- candidate generators (simplest first) ----------------------------------------------------

def _smaller_sizes(size: int, granule: int) -> list[int]:
    """The smallest page size, then halvings of `size` from the most shrunk up."""
    out = []
    if granule < size:
        out.append(granule)
    k = size.bit_length()
    for shift in range(k, 0, -1):
        s = size >> shift
        if s >= granule and s not in out and s < size:
            out.append(s)
    return out


def _rounder_addrs(addr: int, granule: int) -> list[int]:
    """`addr` rounded down to every larger power-of-two alignment, most rounded first."""
    out = []
    for shift in range(64, granule.bit_length() - 2, -1):
        a = addr & ~((1 << shift) - 1) & ((1 << 64) - 1)
        if a != addr and a not in out:
            out.append(a)
    return out


def op_candidates(op: O.Op, config: Config) -> Iterator[O.Op]:
    g = config.granule
    if isinstance(op, O.MapSg) and len(op.segs) > 1:
        for j in range(len(op.segs)):
            yield replace(op, segs=op.segs[:j] + op.segs[j + 1:])
    if getattr(op, "prot", O.PROT_RW) != O.PROT_RW:
        yield replace(op, prot=O.PROT_RW)
    if isinstance(op, O.Fail):
        if op.err is not None:
            yield replace(op, err=None)
        for nth in sorted({1, op.nth // 2, op.nth - 1}):
            if 1 <= nth < op.nth:
                yield replace(op, nth=nth)
        return
    if isinstance(op, (O.PtMapPages, O.PtUnmapPages)):
        for count in sorted({1, op.pgcount // 2, op.pgcount - 1}):
            if 1 <= count < op.pgcount:
                yield replace(op, pgcount=count)
        bitmap = config.requested_pgsize_bitmap
        for bit in range(64):
            pgsize = 1 << bit
            if pgsize >= op.pgsize:
                break
            if bitmap & pgsize:
                yield replace(op, pgsize=pgsize)
    if hasattr(op, "size"):
        for s in _smaller_sizes(op.size, g):
            yield replace(op, size=s)
    if isinstance(op, O.MapSg):
        for j, seg in enumerate(op.segs):
            for length in _smaller_sizes(seg.length, g):
                yield replace(op, segs=_with_seg(op.segs, j, replace(seg, length=length)))
            for paddr in _rounder_addrs(seg.paddr, g):
                yield replace(op, segs=_with_seg(op.segs, j, replace(seg, paddr=paddr)))
    if isinstance(op, O.Evict) and op.iova is None:
        return
    if hasattr(op, "iova"):
        for a in _rounder_addrs(op.iova, g):
            yield replace(op, iova=a)
    if hasattr(op, "paddr"):
        for a in _rounder_addrs(op.paddr, g):
            yield replace(op, paddr=a)


def _with_seg(segs: tuple[O.Segment, ...], j: int, seg: O.Segment) -> tuple[O.Segment, ...]:
    return segs[:j] + (seg,) + segs[j + 1:]


def config_candidates(c: Config) -> Iterator[Config]:
    d = Config()
    for name in ("line", "concat", "enoent_bug", "coherent_walk", "split_blk_unmap"):
        if getattr(c, name) != getattr(d, name):
            yield c.with_(**{name: getattr(d, name)})
    if c.quirks:
        yield c.with_(quirks=0)
        for bit in sorted(QUIRK_BITS.values()):
            if c.quirks & bit:
                yield c.with_(quirks=c.quirks & ~bit)
    for name in ("pgsize_bitmap", "page_size", "table_base"):
        if getattr(c, name) != getattr(d, name):
            yield c.with_(**{name: getattr(d, name)})


# --- the command ------------------------------------------------------------------------------

def minimize(sc: O.Scenario, variant: Variant, signature: str | None = None,
             max_replays: int = DEFAULT_MAX_REPLAYS) -> MinimizeResult:
    """Minimise `sc` keeping `signature` (default: `default_signature` of its replay): as the
    run's primary when it is one in `sc`, else only reported.  Raises ValueError when the replay
    does not report the signature."""
    first = run_scenario(sc, variant)
    if first.config_error:
        raise ValueError(f"the kernel refuses this configuration: {first.config_error}")
    have = [f.signature for f in first.findings]
    if signature is None:
        signature = default_signature(first.findings)
        if signature is None:
            raise ValueError(f"variant {variant.name} reports no finding on this input")
    elif signature not in have:
        raise ValueError(f"variant {variant.name} does not report {signature!r} on this input"
                         + (f" (it reports: {', '.join(dict.fromkeys(have))})" if have else
                            " (it reports nothing)"))
    # a primary stays the primary (the result reproduces the bucket); a secondary asked for by
    # name only has to stay reported (shrinking usually removes its cause)
    m = Minimizer(variant, signature, max_replays, is_primary(signature, first.findings))
    best, exhausted = m.minimize(sc)
    return MinimizeResult(sc, best, signature, m.replays, exhausted, m.run(best))


def minimized_text(res: MinimizeResult, source: str, variant: str) -> str:
    """The readable `.ops` output: version line, a header naming signature and origin, the
    config, the ops, and a comment on the op where the signature first shows."""
    comments = {}
    if res.op_index is not None and 0 <= res.op_index < len(res.scenario.ops):
        comments[res.op_index] = f"<- {res.signature.split('|')[0]}"
    body = O.format_scenario(res.scenario, comments).splitlines()
    counts = (f"# {plural(len(res.original.ops), 'op')} -> "
              f"{plural(len(res.scenario.ops), 'op')} in {plural(res.replays, 'replay')}")
    if res.exhausted:
        counts += " (replay budget exhausted; may not be minimal)"
    header = [f"# minimized from {source} by `python -m fuzz minimize` (variant {variant})",
              f"# signature: {res.signature}", counts]
    return "\n".join([body[0], *header, *body[1:]]) + "\n"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def minimize_file(path: str, out: str, variant_spec: str, signature: str | None,
                  max_replays: int = DEFAULT_MAX_REPLAYS) -> tuple[MinimizeResult, str]:
    """Minimise the input at `path` into `out` (written atomically).  Raises OpsSyntaxError
    for an unreadable input and ValueError when the signature is not there."""
    from ..run.plugins import load_variant
    from .replay import load_input
    from .triage import atomic_write

    variant = load_variant(variant_spec)
    sc = load_input(path)
    try:
        res = minimize(sc, variant, signature, max_replays)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    text = minimized_text(res, path, variant_spec)
    atomic_write(Path(out), text)
    return res, text
