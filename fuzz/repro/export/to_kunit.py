"""`export --format kunit`: a KUnit-style C test body for
`drivers/iommu/io-pgtable-arm-selftests.c`, checked against the reference (upstream) model's
returns, with the SMMU's view checked through the helpers of `fuzz/templates/kunit_smmu_view.c`."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from model import Reference, Variant, World
from model.cint import ERRNO
from model.config import KERNEL_FMT_NAME, PROT_LETTERS, QUIRK_NAMES, Config

from ...judge.findings import Finding
from ...judge.intervals import IntervalSet
from ...judge.oracles import SYNCING_OPS, written_range
from ...lang import ops as O
from ...run.executor import RunResult, run_op
from .common import ident_from_path, signatures

# --- KUnit: C spellings -----------------------------------------------------------------------

_KERNEL_QUIRK = {"ns": "IO_PGTABLE_QUIRK_ARM_NS", "no_perms": "IO_PGTABLE_QUIRK_NO_PERMS",
                 "ttbr1": "IO_PGTABLE_QUIRK_ARM_TTBR1",
                 "outer_wbwa": "IO_PGTABLE_QUIRK_ARM_OUTER_WBWA", "hd": "IO_PGTABLE_QUIRK_ARM_HD",
                 "s2fwb": "IO_PGTABLE_QUIRK_ARM_S2FWB", "no_warn": "IO_PGTABLE_QUIRK_NO_WARN"}
_KERNEL_PROT = {"r": "IOMMU_READ", "w": "IOMMU_WRITE", "c": "IOMMU_CACHE", "x": "IOMMU_NOEXEC",
                "m": "IOMMU_MMIO", "p": "IOMMU_PRIV"}
U64 = (1 << 64) - 1


def sz_name(n: int) -> str | None:
    """`SZ_4K`-style name of a power of two that <linux/sizes.h> defines (SZ_1 .. SZ_64T)."""
    if n <= 0 or n & (n - 1) or n > 1 << 46:
        return None
    b = n.bit_length() - 1
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if b >= shift:
            return f"SZ_{n >> shift}{unit}"
    return f"SZ_{n}"


def c_size(n: int) -> str:
    """A size: `SZ_2M`, `3UL * SZ_2M` where that is exact, else hex."""
    if n == 0:
        return "0"
    name = sz_name(n)
    if name:
        return name
    low = n & -n
    if low >= 1 << 12 and sz_name(low) and n // low < 1024:
        return f"{n // low}UL * {sz_name(low)}"
    return f"{n:#x}UL"


def c_addr(n: int, suffix: str = "UL") -> str:
    return "0" if n == 0 else f"{n:#x}{suffix}"


def c_prot(prot: int) -> str:
    names = [_KERNEL_PROT[ch] for ch, bit in PROT_LETTERS.items() if prot & bit]
    return " | ".join(names) or "0"


def c_errno(ret: int) -> str:
    for name, value in ERRNO.items():
        if ret == -value:
            return f"-{name}"
    return str(ret)


def c_size_t(ret: int) -> str:
    """A `size_t` return; (size_t)-errno spelled as such."""
    if ret >> 63:
        return f"(size_t){c_errno(ret - (1 << 64))}"
    return c_size(ret)


# KUNIT_EXPECT_EQ compares its two sides with their own types, so an expected value has the
# type of what it is compared with: a size_t next to `0` or SZ_4K (ints in <linux/sizes.h> up to
# SZ_1G) is a -Wsign-compare warning (-Wextra; in a kernel build W=3).

def c_expect_size_t(n: int) -> str:
    """An expected `size_t`: `(size_t)SZ_8K`, `(size_t)0`, `3UL * SZ_2M`, `(size_t)-ENOENT`."""
    text = c_size_t(n)
    return f"(size_t){text}" if text == "0" or text.startswith("SZ_") else text


def c_expect_phys(n: int) -> str:
    """An expected `phys_addr_t` (u64): `0x80001010ULL`, `0ULL` (not `c_addr`'s bare `0`)."""
    return c_addr(n, "ULL") if n else "0ULL"


def c_pgsize_bitmap(bitmap: int) -> str:
    parts = [sz_name(1 << b) or f"{1 << b:#x}UL" for b in range(64) if bitmap >> b & 1]
    return " | ".join(parts) or "0"


def c_quirks(quirks: int) -> str:
    return " | ".join(_KERNEL_QUIRK[QUIRK_NAMES[b]] for b in sorted(QUIRK_NAMES)
                      if quirks & b) or "0"


def _c_comment(text: str, indent: str = "\t") -> list[str]:
    """A C block comment wrapped to 100 columns (tabs of 8); `*/` in the text is defused."""
    text = text.replace("*/", "* /")
    width = 100 - len(indent.expandtabs(8)) - 3
    lines = []
    for para in text.split("\n"):
        wrapped = textwrap.wrap(para, width, break_long_words=False,
                                break_on_hyphens=False, subsequent_indent="    "
                                if para.startswith("  ") else "") or [""]
        lines.extend(wrapped)
    if len(lines) == 1:
        return [f"{indent}/* {lines[0]} */"]
    return [f"{indent}/*"] + [f"{indent} * {ln}".rstrip() for ln in lines] + [f"{indent} */"]


# --- KUnit: the io-pgtable calls of each op ----------------------------------------------------

@dataclass
class PtCall:
    name: str             # map_pages, unmap_pages, iova_to_phys
    args: tuple
    ret: object = None
    mapped: int | None = None
    raised: bool = False


class CallRecorder:
    """Wraps a world's `io_pgtable_ops` members and records every call made through them."""

    def __init__(self, world: World):
        self.calls: list[PtCall] = []
        ops = world.data.iop.ops
        for name in ("map_pages", "unmap_pages", "iova_to_phys"):
            setattr(ops, name, self._wrap(name, getattr(ops, name)))

    def _wrap(self, name, fn):
        def recorded(ops, *args):
            call = PtCall(name, args)
            self.calls.append(call)
            call.raised = True
            call.ret = fn(ops, *args)
            call.raised = False
            if name == "map_pages":
                call.mapped = args[-1].value
            return call.ret
        return recorded


@dataclass
class OpTrace:
    op: O.Op
    calls: list[PtCall] = field(default_factory=list)
    ref_ret: object = None
    crashed: str | None = None
    error: str | None = None
    legal_sync: bool = False       # sync, pt.sync_map: a range a correct walker must accept


def reference_trace(scenario: O.Scenario) -> list[OpTrace]:
    """Replay on a fresh reference world, recording the io-pgtable calls of every op.  An
    `smmu` op becomes an `iova_to_phys` (what a test can ask; it reads the CPU view)."""
    world = World(scenario.config, Reference())
    rec = CallRecorder(world)
    out = []
    for op in scenario.ops:
        t = OpTrace(op)
        n0 = len(rec.calls)
        if isinstance(op, (O.PtSyncMap, O.Sync)):
            g = world.geometry.granule
            t.legal_sync = bool(op.size) and not (op.iova | op.size) % g and \
                world.first_hole(op.iova, op.size, "cpu") is None
        run = O.PtIovaToPhys(op.iova) if isinstance(op, O.Smmu) else op
        o = run_op(world, run)
        t.calls, t.ref_ret, t.crashed, t.error = rec.calls[n0:], o.ret, o.crashed, o.error
        out.append(t)
        if o.crashed or o.error or o.exhausted:
            break
    return out


_KIND_NOTES = {
    "stale-read": (
        "ops->iova_to_phys() and every other CPU read see the new entry; what the SMMU reads is "
        "checked by iopgfuzz_smmu_expect_synced() (the recording DMA ops' copy of memory, "
        "walked from the TTBR), which fails naming the IOVA, level, CPU entry and memory "
        "entry."),
    "bad-walk": (
        "The SMMU would follow a pointer to freed or non-table memory: "
        "iopgfuzz_smmu_expect_synced() fails on an entry in no table mapped for the device."),
    "oob-access": (
        "A clean past the end of a table fails in the recording DMA ops (a sync of memory "
        "that was never mapped for the device); reads past it are not seen (KASAN may report "
        "them)."),
    "foreign-walk": (
        "Cleans of cache lines holding no entry of the range fail iopgfuzz_smmu_sync_map(); "
        "entries the walk only reads are not seen, and its WARN_ON(!pte)s do not fail a KUnit "
        "test (the kernel log shows them)."),
    "warn": (
        "A WARN does not fail a KUnit test, and the kernel has no hook to count them: check "
        "the kernel log for the backtrace (`python -m fuzz kunit` prints each WARN site with "
        "its count)."),
    "lost-error": (
        "The injected sync-walk failure does not reach the caller.  Needs fault injection in "
        "the walker (none exists upstream); a 'driver' loss is in PATCH 2/2's "
        "arm_smmu_iotlb_sync_map(), which this test, calling the io-pgtable op directly, does "
        "not exercise."),
    "continued-after-error": (
        "After an (injected) failure the walk descends into further tables.  Needs fault "
        "injection in the walker to reproduce."),
    "return-mismatch": "The KUNIT_EXPECT_EQ on this op's return value catches this.",
    "state-mismatch": (
        "The page tables differ from the reference's; an ops->iova_to_phys() of the affected "
        "IOVAs catches it."),
    "model-error": "An exception inside the iopgfuzz model: a bug of iopgfuzz, not the kernel.",
    "cmo-regression": (
        "Efficiency: more cache lines cleaned than upstream.  The recording DMA ops see every "
        "clean, but the test does not judge counts; KUnit has no hook for it."),
    "redundant-clean": (
        "Efficiency: a line cleaned twice or without a dirty entry.  The recording DMA ops see "
        "every clean, but the test does not judge it."),
    "sanitizer": "Undefined behaviour: a CONFIG_UBSAN kernel reports it in the log.",
}

#: Kinds the exported test can fail on (given the op that shows them is checked)
_KUNIT_FAILS_ON = {"stale-read", "bad-walk", "oob-access", "foreign-walk", "return-mismatch",
                   "state-mismatch"}


def _finding_comment(f: Finding, explained: set[str], injected: bool = False) -> list[str]:
    """The finding, and (the first time its kind shows) what a test can observe of it.
    `injected`: it follows a `fail sync_map`, which no kernel test can inject."""
    text = f"iopgfuzz finding: {f.signature}\n  {f.message}"
    if injected:
        text += ("\n  It follows the injected sync-walk failure above, which this test cannot "
                 "make: the checks here pass without it.")
    if "walk_mem" in f.detail:
        text += f"\n  SMMU {f.detail['walk_mem']}\n  CPU  {f.detail['walk_cpu']}"
    note = _KIND_NOTES.get(f.kind)
    if note and f.kind not in explained:
        explained.add(f.kind)
        text += "\n" + note
    elif note:
        text += f"\n(See the first {f.kind} comment above.)"
    return _c_comment(text)


def _fits(line: str) -> bool:
    return len(line.expandtabs(8)) <= 100          # the kernel's line length (checkpatch)


def _expect(call: str, expected: str, indent: str = "\t") -> list[str]:
    one = f"{indent}KUNIT_EXPECT_EQ(test, {call}, {expected});"
    if _fits(one):
        return [one]
    head = f"{indent}KUNIT_EXPECT_EQ(test, {call},"
    if _fits(head):
        return [head, f"{indent}\t\t{expected});"]
    # the call itself is too long: break its argument list after the last argument that fits
    name, args = call.split("(", 1)
    parts = args[:-1].split(", ")
    for k in range(len(parts) - 1, 0, -1):
        first = f"{indent}KUNIT_EXPECT_EQ(test, {name}({', '.join(parts[:k])},"
        if _fits(first):
            return [first, f"{indent}\t\t{', '.join(parts[k:])}), {expected});"]
    return [head, f"{indent}\t\t{expected});"]


def _emit_pt_call(c: PtCall) -> list[str]:
    if c.name == "map_pages":
        iova, paddr, pgsize, pgcount, prot = c.args[:5]
        out = ["\tmapped = 0;",
               f"\tret = ops->map_pages(ops, {c_addr(iova)}, {c_addr(paddr, 'ULL')}, "
               f"{c_size(pgsize)}, {pgcount},",
               f"\t\t\t     {c_prot(prot)}, GFP_KERNEL, &mapped);"]
        if c.raised:
            return out + _c_comment("the reference hits a BUG_ON in this call")
        out += _expect("ret", c_errno(c.ret))
        out += _expect("mapped", c_expect_size_t(c.mapped))
        return out
    if c.name == "unmap_pages":
        iova, pgsize, pgcount = c.args[:3]
        call = f"ops->unmap_pages(ops, {c_addr(iova)}, {c_size(pgsize)}, {pgcount}, NULL)"
        return [f"\t{call};"] if c.raised else _expect(call, c_expect_size_t(c.ret))
    iova = c.args[0]
    call = f"ops->iova_to_phys(ops, {c_addr(iova)})"
    return [f"\t{call};"] if c.raised else _expect(call, c_expect_phys(c.ret))


def _core_call(op: O.Op) -> str:
    if isinstance(op, O.Map):
        return (f"iommu_map(domain, {c_addr(op.iova)}, {c_addr(op.paddr, 'ULL')}, "
                f"{c_size(op.size)}, {c_prot(op.prot)}, GFP_KERNEL)")
    if isinstance(op, O.MapNosync):
        return (f"iommu_map_nosync(domain, {c_addr(op.iova)}, {c_addr(op.paddr, 'ULL')}, "
                f"{c_size(op.size)}, {c_prot(op.prot)}, GFP_KERNEL)")
    if isinstance(op, O.Sync):
        return f"iommu_sync_map(domain, {c_addr(op.iova)}, {c_size(op.size)})"
    if isinstance(op, O.MapSg):
        segs = ", ".join(("bus " if s.bus else "") + f"{s.paddr:#x}+{O.fmt_size(s.length)}"
                         for s in op.segs)
        return f"iommu_map_sg(domain, {c_addr(op.iova)}, sg = {{{segs}}}, {c_prot(op.prot)})"
    if isinstance(op, O.Unmap):
        return f"iommu_unmap(domain, {c_addr(op.iova)}, {c_size(op.size)})"
    return op.text()


def _ret_text(op: O.Op, ret) -> str:
    if isinstance(ret, tuple):
        return f"{c_errno(ret[0])}, mapped {c_size(ret[1])}"
    if isinstance(op, (O.Unmap, O.PtUnmapPages)) and isinstance(ret, int):
        return c_size_t(ret)
    if isinstance(op, O.MapSg) and isinstance(ret, int) and ret > 0:
        return c_size(ret)
    if isinstance(ret, int):
        return c_errno(ret) if ret < 0 else hex(ret) if ret > 9 else str(ret)
    return "-" if ret is None else str(ret)


def _pgsize_bitmap(c: Config, res: RunResult) -> int:
    """The config's bitmap; by default what the kernel keeps of every size the granule can
    express (what an SMMU driver passes: e.g. SZ_4K | SZ_2M | SZ_1G)."""
    if c.pgsize_bitmap is not None or res.ref is None:
        return c.requested_pgsize_bitmap
    return res.ref.geometry.pgsize_bitmap


def _core_ok(op: O.Op, ret) -> bool:
    if isinstance(op, O.MapSg):
        return isinstance(ret, int) and ret >= 0
    return ret == 0


def export_kunit(scenario: O.Scenario, res: RunResult, variant: Variant, variant_spec: str,
                 source: str) -> str:
    c: Config = scenario.config
    name = f"iopgfuzz_{ident_from_path(source)}"
    trace = reference_trace(scenario)
    records = {r.index: r for r in res.records}
    by_op: dict[int, list[Finding]] = {}
    for f in res.findings:
        lst = by_op.setdefault(f.op_index, [])
        if f.signature not in [g.signature for g in lst]:
            lst.append(f)

    head = [f"iopgfuzz reproducer {source}, exported for KUnit (variant {variant_spec}) by "
            f"`python -m fuzz export {source} --format kunit --variant {variant_spec}`.",
            "",
            "Paste into drivers/iommu/io-pgtable-arm-selftests.c (it uses dummy_tlb_ops and "
            f"cfg_cookie from there) and add KUNIT_CASE({name}) to the suite's cases.",
            "",
            "That is the file's KUnit version (kunit_device_register(): Linux 6.8 on).  Needs "
            "CONFIG_ARCH_HAS_DMA_OPS (CONFIG_DMA_OPS before 6.12; on arm64 CONFIG_XEN selects "
            "it), else it skips itself.  Without PATCH 1/2, #define IOPGFUZZ_DEFERRED_SYNC 0 "
            "first.  Run here with `python -m fuzz kunit FILE.c --variant c:PATCH` "
            "(or c:upstream).",
            "",
            "Scenario:"]
    head += [f"  {ln}" for ln in O.format_scenario(scenario).splitlines()[1:]]
    head += ["", f"Findings of {variant_spec} in the iopgfuzz model:"]
    head += [f"  {s}" for s in signatures(res)] or ["  (none)"]
    head += ["",
             "Each KUNIT_EXPECT_EQ expects what upstream io-pgtable-arm (iopgfuzz's reference "
             "model, every PTE cleaned when written) returns.  Upstream has no iotlb_sync_map: "
             "0 is expected wherever the core call it belongs to succeeded in the reference.  "
             "The calls per op are those the iommu core makes (iommu_pgsize() splitting, then "
             "the driver's iotlb_sync_map).",
             "",
             "The SMMU's view: the test device's recording dma_map_ops keep a copy of what "
             "memory holds of every page table (the cache lines each dma_map_single() and "
             "dma_sync_single_for_device() writes back).  After every op that syncs a range "
             "(map, map_sg, sync: the driver's iotlb_sync_map) and at every SMMU read of a "
             "synced IOVA, iopgfuzz_smmu_expect_synced() walks that copy from the TTBR as the "
             "SMMU would and fails, naming the IOVA, level, CPU entry and memory entry, where it "
             "differs from what the CPU wrote.  iopgfuzz_smmu_sync_map() also fails when the "
             "sync cleans a cache line holding no entry of its range, and the DMA ops fail on a "
             "clean of memory no table was mapped for.  Not seen: reads outside a table (KASAN "
             "may report them), WARNs (no KUnit hook: the kernel log shows them) and clean "
             "counts; the comments at the ops say what to look for."]
    extra = []
    if c.line != 64:
        extra.append(f"the scenario assumes {c.line}-byte cache lines")
    if c.concat != "mandatory":
        extra.append("concat=legacy: the pre-6.14 concatenation rule (kernels before 4dcac8407fe1)")
    if not c.enoent_bug:
        extra.append("enoent_bug=0: unmap of a hole returns 0, as from 6.18.8 on "
                     "(earlier kernels return (size_t)-ENOENT)")
    elif any(isinstance(t.ref_ret, int) and t.ref_ret == (1 << 64) - 2 for t in trace):
        extra.append("an unmap below expects (size_t)-ENOENT: v6.17/v6.18 behaviour, fixed in "
                     "6.18.8, where it returns 0")
    if c.page_size != 1 << 12:
        extra.append(f"needs a kernel with PAGE_SIZE = {c_size(c.page_size)} "
                     "(arm_lpae_restrict_pgsizes prefers it)")
    if c.coherent_walk:
        extra.append("coherent walk: the patch installs no iotlb_sync_map for it, and the "
                     "SMMU-view checks do nothing (the SMMU reads the CPU's caches)")
    if c.split_blk_unmap:
        extra.append("split=1: a kernel before 6.13, whose unmap of part of a block splits it "
                     "(arm_lpae_split_blk_unmap); from 6.13 on it WARNs and returns 0")
    if extra:
        head += ["", "Notes: " + "; ".join(extra) + "."]
    head += ["", f"iopgfuzz kunit: page_size={O.fmt_size(c.page_size)} line={c.line}"]

    lines = _c_comment("\n".join(head), indent="") + [""] + smmu_view_helpers().splitlines()
    lines += [f"static void {name}(struct kunit *test)", "{",
              "\tstruct io_pgtable_cfg cfg = {",
              f"\t\t.quirks\t\t= {c_quirks(c.quirks)},",
              f"\t\t.pgsize_bitmap\t= {c_pgsize_bitmap(_pgsize_bitmap(c, res))},",
              f"\t\t.ias\t\t= {c.ias},",
              f"\t\t.oas\t\t= {c.oas},",
              f"\t\t.coherent_walk\t= {'true' if c.coherent_walk else 'false'},"]
    if variant.defer_sync_pte:
        lines += ["#if IOPGFUZZ_DEFERRED_SYNC",
                  "\t\t.defer_sync_pte\t= true,\t/* PATCH 1/2 */", "#endif"]
    fmt = KERNEL_FMT_NAME[c.fmt]
    lines += ["\t\t.tlb\t\t= &dummy_tlb_ops,", "\t};",
              "\tstruct io_pgtable_ops *ops;", "\tstruct iopgfuzz_smmu *smmu;",
              "\tstruct device *dev;",
              _LOCALS, "",
              "\tdev = kunit_device_register(test, \"iopgfuzz\");",
              "\tKUNIT_ASSERT_FALSE(test, IS_ERR(dev));",
              "\tsmmu = iopgfuzz_smmu_register(test, dev);",
              "\tcfg.iommu_dev = dev;",
              "\tcfg_cookie = &cfg;",
              f"\tops = alloc_io_pgtable_ops({fmt}, &cfg, &cfg);"]
    lines += ["\tKUNIT_ASSERT_NOT_NULL(test, ops);",
              f"\tiopgfuzz_smmu_attach(smmu, &cfg, {fmt});"]
    if res.var is not None and not res.var.has_pt_sync_map:
        lines += _c_comment(f"{variant_spec} installs no io-pgtable iotlb_sync_map; the sync "
                            "calls below are left out")

    explained: set[str] = set()
    synced = IntervalSet()
    injected = False
    for i, t in enumerate(trace):
        lines.append("")
        lines += _op_lines(i, t, records.get(i), variant_spec)
        lines += _smmu_checks(i, t, synced)
        injected |= isinstance(t.op, O.Fail) and t.op.site == "sync_map"
        for f in by_op.pop(i, []):
            lines += _finding_comment(f, explained, injected)
        if t.crashed or t.error:
            lines += _c_comment(f"the reference stops here: {t.crashed or 'model error'}; "
                                "the rest of the scenario is left out")
            break
    for fs in by_op.values():              # findings of the run as a whole
        lines.append("")
        for f in fs:
            lines += _finding_comment(f, explained)
    lines += ["", "\tfree_io_pgtable_ops(ops);", "}"]
    return _declare_locals(lines)


_LOCALS = "\t/* locals */"
_HELPERS = Path(__file__).parents[2] / "templates" / "kunit_smmu_view.c"


def smmu_view_helpers() -> str:
    """The C every exported test shares (the recording DMA ops, the SMMU walk), guarded so
    that a second paste is harmless: fuzz/templates/kunit_smmu_view.c."""
    return _HELPERS.read_text(encoding="utf-8")


def _smmu_checks(i: int, t: OpTrace, synced: IntervalSet) -> list[str]:
    """The SMMU-view checks after op `i`, by the rule of the stale-read oracle
    (fuzz/judge/oracles.py): a successful syncing op (in the reference) makes its range synced and
    is checked at once; an op that writes entries un-syncs what it writes; an SMMU read of a
    synced IOVA is checked."""
    op, ret = t.op, t.ref_ret
    if t.crashed or t.error:
        return []
    # a pt.sync_map has no reference return (upstream has no such op): its range must be legal
    ok = t.legal_sync if isinstance(op, O.PtSyncMap) else ret is not None and _core_ok(op, ret)
    if isinstance(op, O.Sync) and not t.legal_sync:
        return []                  # checked where it is called, if the walker accepted it
    if isinstance(op, SYNCING_OPS) and ok:
        size = ret if isinstance(op, O.MapSg) else op.size
        if not size:
            return []
        synced.add(op.iova, min(op.iova + size, U64 + 1))
        return [f"\tiopgfuzz_smmu_expect_synced(smmu, {c_addr(op.iova)}, {c_size(size)}, "
                f'"[{i}] {op.kind}");']
    w = written_range(op)
    if w is not None:
        synced.remove(w[0], min(w[0] + w[1], U64 + 1))
    if isinstance(op, O.Smmu) and op.iova in synced:
        return [f'\tiopgfuzz_smmu_expect_synced(smmu, {c_addr(op.iova)}, 1, "[{i}] smmu");']
    return []


def _declare_locals(lines: list[str]) -> str:
    """Declare `mapped` and `ret` only when the body uses them (no unused-variable warnings)."""
    i = lines.index(_LOCALS)
    body = "\n".join(lines[i:])            # the test function, not the shared helpers
    decl = [d for d, used in (("\tsize_t mapped;", "&mapped" in body),
                              ("\tint ret;", "\tret = " in body)) if used]
    return "\n".join(lines[:i] + decl + lines[i + 1:]) + "\n"


def _op_lines(i: int, t: OpTrace, rec, variant_spec: str) -> list[str]:
    op = t.op
    syncs = rec.var.sync_calls if rec is not None else []
    out: list[str] = []
    if isinstance(op, O.Fail):
        if op.site == "alloc":
            how = (f"make the {_nth(op.nth)} page-table allocation from here on fail, once, "
                   f"with {c_errno(op.err) if op.err else '-ENOMEM'} (e.g. "
                   "CONFIG_FAIL_PAGE_ALLOC with fail_page_alloc, or a test hook in "
                   "__arm_lpae_alloc_pages()).  The reference fails the same way: the "
                   "expectations below assume the injection")
        else:
            how = (f"make the {_nth(op.nth)} table visit of the sync walk from here on fail, "
                   f"once, with {c_errno(op.err) if op.err else '-EIO'}.  No such injection "
                   "point exists and the posted walker cannot fail; a later one (e.g. built on "
                   "__arm_lpae_iopte_walk()) can.  The reference has no sync walk: the "
                   "expectations below are those of a walker that does not fail")
        return _c_comment(f"[{i}] {op.text()}: fault injection needed: {how}.")
    if isinstance(op, O.Evict):
        return _c_comment(f"[{i}] {op.text()}: iopgfuzz writes dirty cache lines back to "
                          "memory here (a real cache may do so at any time); nothing to do "
                          "in a test")
    if isinstance(op, O.Smmu):
        out += _c_comment(f"[{i}] {op.text()}: the SMMU walks {c_addr(op.iova)} now (reads "
                          "memory).  iova_to_phys reads what the CPU sees; where the IOVA is "
                          "synced, iopgfuzz_smmu_expect_synced() reads what the SMMU would")
        for c in t.calls:
            out += _emit_pt_call(c)
        return out
    if isinstance(op, (O.Map, O.MapNosync, O.Sync, O.MapSg, O.Unmap)):
        n_map = sum(c.name == "map_pages" for c in t.calls)
        n_unmap = sum(c.name == "unmap_pages" for c in t.calls)
        parts = []
        if n_map:
            parts.append(f"{n_map} map_pages call{'s' * (n_map != 1)}")
        if n_unmap:
            parts.append(f"{n_unmap} unmap_pages call{'s' * (n_unmap != 1)}")
        if syncs:
            parts.append("the driver's iotlb_sync_map")
        how = ", then ".join(parts) or "no io-pgtable call"
        out += _c_comment(f"[{i}] {_core_call(op)}\n  -> {how}; the reference returns "
                          f"{_ret_text(op, t.ref_ret)}")
        for c in t.calls:
            out += _emit_pt_call(c)
        ok = _core_ok(op, t.ref_ret)
        for s in syncs:
            call = f"iopgfuzz_smmu_sync_map(smmu, ops, {c_addr(s.iova)}, {c_size(s.size)}, true)"
            if isinstance(op, O.Sync) and not t.legal_sync:
                # the oracles' rule for a sync of a range that is not fully mapped and aligned:
                # any errno is a correct answer; 0 means all of it the table translates synced
                out += _c_comment("not a fully mapped, aligned range: the walker may refuse it; "
                                  "if it returns 0, the SMMU must read what the CPU wrote")
                out += [f"\tret = {call};", "\tif (!ret)",
                        f"\t\tiopgfuzz_smmu_expect_synced(smmu, {c_addr(op.iova)}, "
                        f'{c_size(op.size)}, "[{i}] sync");']
                continue
            out += _expect(call, "0") if ok else [f"\t{call};"]
        return out
    if isinstance(op, O.PtSyncMap):
        out += _c_comment(f"[{i}] {op.text()}: the io-pgtable op directly")
        for s in syncs:
            call = (f"iopgfuzz_smmu_sync_map(smmu, ops, {c_addr(s.iova)}, {c_size(s.size)}, "
                    f"{'true' if t.legal_sync else 'false'})")
            if t.legal_sync:
                out += _expect(call, "0")
            else:
                # the oracles' rule (as for an illegal sync): any errno is a correct answer;
                # 0 means all of it the table translates synced
                out += _c_comment("not a fully mapped, aligned range: the walker may refuse it; "
                                  "if it returns 0, the SMMU must read what the CPU wrote")
                out += [f"\tret = {call};", "\tif (!ret)",
                        f"\t\tiopgfuzz_smmu_expect_synced(smmu, {c_addr(op.iova)}, "
                        f'{c_size(op.size)}, "[{i}] pt.sync_map");']
        if not syncs:
            out += _c_comment(f"{variant_spec} has no io-pgtable iotlb_sync_map to call")
        return out
    out += _c_comment(f"[{i}] {op.text()}: the io-pgtable op directly; the reference returns "
                      f"{_ret_text(op, t.ref_ret)}")
    for c in t.calls:
        out += _emit_pt_call(c)
    return out


def _nth(n: int) -> str:
    if n == 1:
        return "next"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
