"""The `.ops` language (design §4): a scenario is a config plus a list of operations.

Text form, one op per line, `#` comments; the first non-blank line must be the version line
`# iopgfuzz ops v1`.  Numbers are decimal or 0x-hex and may carry a K/M/G/T suffix.  Parsing is
strict: an unknown op, key or value is an `OpsSyntaxError` naming the file, line and problem.
`format_scenario(parse_scenario(t))` is canonical and `parse_scenario` of it gives the same
scenario back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from model import Config
from model.cint import ERRNO
from model.config import (
    CONCAT_LEGACY,
    CONCAT_MANDATORY,
    FORMATS,
    PROT_LETTERS,
    QUIRK_BITS,
    QUIRK_NAMES,
)
from model.errors import IopgfuzzError
from model.failpoints import SITES

VERSION_LINE = "# iopgfuzz ops v1"
PROT_RW = PROT_LETTERS["r"] | PROT_LETTERS["w"]
_SUFFIX = {"K": 10, "M": 20, "G": 30, "T": 40}


class OpsSyntaxError(IopgfuzzError):
    """A `.ops` file that does not parse.  The message names file, line and what to fix."""

    def __init__(self, message: str, line: int | None = None, source: str = "<ops>"):
        where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)
        self.message = message
        self.line = line
        self.source = source


# --- the operations ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """Base class; `kind` is the op's name in the language."""

    kind = "?"

    def text(self) -> str:
        return format_op(self)


@dataclass(frozen=True)
class Map(Op):
    kind = "map"
    iova: int
    paddr: int
    size: int
    prot: int = PROT_RW


@dataclass(frozen=True)
class MapNosync(Op):
    kind = "map_nosync"
    iova: int
    paddr: int
    size: int
    prot: int = PROT_RW


@dataclass(frozen=True)
class Sync(Op):
    kind = "sync"
    iova: int
    size: int


@dataclass(frozen=True)
class Segment:
    paddr: int
    length: int
    bus: bool = False


@dataclass(frozen=True)
class MapSg(Op):
    kind = "map_sg"
    iova: int
    segs: tuple[Segment, ...]
    prot: int = PROT_RW


@dataclass(frozen=True)
class Unmap(Op):
    kind = "unmap"
    iova: int
    size: int


@dataclass(frozen=True)
class PtMapPages(Op):
    kind = "pt.map_pages"
    iova: int
    paddr: int
    pgsize: int
    pgcount: int
    prot: int = PROT_RW


@dataclass(frozen=True)
class PtUnmapPages(Op):
    kind = "pt.unmap_pages"
    iova: int
    pgsize: int
    pgcount: int


@dataclass(frozen=True)
class PtSyncMap(Op):
    kind = "pt.sync_map"
    iova: int
    size: int


@dataclass(frozen=True)
class PtIovaToPhys(Op):
    kind = "pt.iova_to_phys"
    iova: int


@dataclass(frozen=True)
class Smmu(Op):
    kind = "smmu"
    iova: int


@dataclass(frozen=True)
class Evict(Op):
    """`evict IOVA` (the lines on IOVA's walk path) or `evict all` (iova None)."""

    kind = "evict"
    iova: int | None = None


@dataclass(frozen=True)
class Fail(Op):
    kind = "fail"
    site: str
    nth: int = 1
    err: int | None = None


OP_TYPES: dict[str, type[Op]] = {t.kind: t for t in (
    Map, MapNosync, Sync, MapSg, Unmap, PtMapPages, PtUnmapPages, PtSyncMap, PtIovaToPhys,
    Smmu, Evict, Fail)}
_POSITIONAL = {t.kind: [f.name for f in fields(t) if f.name not in ("prot", "nth", "err")]
               for t in OP_TYPES.values()}


@dataclass(frozen=True)
class Scenario:
    config: Config = field(default_factory=Config)
    ops: tuple[Op, ...] = ()


# --- numbers, prot, config -------------------------------------------------------------------

_NUM_RE = re.compile(r"^(-)?(0x[0-9a-fA-F]+|\d+)([KMGT])?$")


def parse_num(tok: str, what: str, signed: bool = False) -> int:
    m = _NUM_RE.match(tok)
    if not m:
        raise ValueError(f"{what}: {tok!r} is not a number (decimal, 0x-hex, optional K/M/G/T)")
    value = int(m.group(2), 0) << _SUFFIX.get(m.group(3) or "", 0)
    if m.group(1):
        if not signed:
            raise ValueError(f"{what}: {tok!r} is negative (addresses and sizes are u64)")
        value = -value
    if not m.group(1) and value >> 64:
        raise ValueError(f"{what}: {tok!r} does not fit in 64 bits")
    return value


def fmt_size(n: int) -> str:
    """Sizes print with the largest exact suffix, others as hex."""
    for suffix, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n and n % (1 << shift) == 0 and n >> shift < 1 << 20:
            return f"{n >> shift}{suffix}"
    return str(n) if n < 10 else hex(n)


def fmt_addr(n: int) -> str:
    return hex(n)


def parse_prot(tok: str) -> int:
    if tok == "none":
        return 0
    prot = 0
    for ch in tok:
        if ch not in PROT_LETTERS:
            raise ValueError(f"prot: unknown letter {ch!r} in {tok!r} "
                             f"(letters: {''.join(PROT_LETTERS)}, or none)")
        prot |= PROT_LETTERS[ch]
    return prot


def fmt_prot(prot: int) -> str:
    s = "".join(ch for ch, bit in PROT_LETTERS.items() if prot & bit)
    extra = prot & ~sum(PROT_LETTERS.values())
    if extra:
        raise ValueError(f"prot {prot:#x} has bits the language cannot express")
    return s or "none"


def parse_errno(tok: str) -> int:
    name = tok.lstrip("-")
    if name in ERRNO:
        return -ERRNO[name]
    value = parse_num(tok, "err", signed=True)
    if not -4095 <= value < 0:
        raise ValueError(f"err: {tok!r} is not a negative errno (e.g. -EIO, -5)")
    return value


def fmt_errno(err: int) -> str:
    for name, value in ERRNO.items():
        if err == -value:
            return f"-{name}"
    return str(err)


CONFIG_KEYS = ("fmt", "granule", "ias", "oas", "quirks", "line", "concat", "enoent_bug",
               "coherent", "page_size", "pgsize", "table_base", "split")


def parse_config(tokens: list[str]) -> Config:
    kw = {}
    for tok in tokens:
        key, eq, val = tok.partition("=")
        if not eq:
            raise ValueError(f"config: {tok!r} is not key=value")
        if key in kw:
            raise ValueError(f"config: {key} given twice")
        kw[key] = val
    c = Config()
    changes = {}
    for key, val in kw.items():
        if key == "fmt":
            if val not in FORMATS:
                raise ValueError(f"config: fmt {val!r} (one of {', '.join(FORMATS)})")
            changes["fmt"] = val
        elif key in ("granule", "page_size"):
            n = parse_num(val, key)
            if n not in (1 << 12, 1 << 14, 1 << 16):
                raise ValueError(f"config: {key} {val!r} (4K, 16K or 64K)")
            changes[key] = n
        elif key in ("ias", "oas"):
            n = parse_num(val, key)
            if not 1 <= n <= 64:
                raise ValueError(f"config: {key} {val!r} out of range 1..64")
            changes[key] = n
        elif key == "quirks":
            bits = 0
            if val != "none":
                for name in val.split(","):
                    if name not in QUIRK_BITS:
                        raise ValueError(f"config: unknown quirk {name!r} "
                                         f"(known: {', '.join(QUIRK_BITS)})")
                    bits |= QUIRK_BITS[name]
            changes["quirks"] = bits
        elif key == "line":
            n = parse_num(val, key)
            if n not in (32, 64, 128):
                raise ValueError(f"config: line {val!r} (32, 64 or 128)")
            changes["line"] = n
        elif key == "concat":
            if val not in (CONCAT_MANDATORY, CONCAT_LEGACY):
                raise ValueError(f"config: concat {val!r} (mandatory or legacy)")
            changes["concat"] = val
        elif key in ("enoent_bug", "coherent", "split"):
            if val not in ("0", "1"):
                raise ValueError(f"config: {key} {val!r} (0 or 1)")
            changes[_KEY_FIELD[key]] = val == "1"
        elif key == "pgsize":
            changes["pgsize_bitmap"] = None if val == "auto" else parse_num(val, key)
        elif key == "table_base":
            n = parse_num(val, key)
            if n % (1 << 16):
                raise ValueError(f"config: table_base {val!r} must be 64K-aligned")
            changes["table_base"] = n
        else:
            raise ValueError(f"config: unknown key {key!r} (keys: {', '.join(CONFIG_KEYS)})")
    return c.with_(**changes)


_KEY_FIELD = {"fmt": "fmt", "granule": "granule", "ias": "ias", "oas": "oas", "quirks": "quirks",
              "line": "line", "concat": "concat", "enoent_bug": "enoent_bug",
              "coherent": "coherent_walk", "page_size": "page_size", "pgsize": "pgsize_bitmap",
              "table_base": "table_base", "split": "split_blk_unmap"}


def parse_config_filter(text: str) -> dict:
    """`fmt=arm64-s2,granule=4K` (commas or spaces) -> the Config fields it pins."""
    out = {}
    for tok in text.replace(",", " ").split():
        key = tok.partition("=")[0]
        if key not in _KEY_FIELD:
            raise ValueError(f"config filter: unknown key {key!r} (keys: {', '.join(CONFIG_KEYS)})")
        field_name = _KEY_FIELD[key]
        out[field_name] = getattr(parse_config([tok]), field_name)
    return out


def format_config(c: Config) -> str:
    quirks = ",".join(QUIRK_NAMES[b] for b in sorted(QUIRK_NAMES) if c.quirks & b) or "none"
    parts = [f"fmt={c.fmt}", f"granule={fmt_size(c.granule)}", f"ias={c.ias}", f"oas={c.oas}",
             f"quirks={quirks}", f"line={c.line}", f"concat={c.concat}",
             f"enoent_bug={int(c.enoent_bug)}"]
    defaults = Config()
    if c.coherent_walk:
        parts.append("coherent=1")
    if c.page_size != defaults.page_size:
        parts.append(f"page_size={fmt_size(c.page_size)}")
    if c.pgsize_bitmap is not None:
        parts.append(f"pgsize={c.pgsize_bitmap:#x}")
    if c.table_base != defaults.table_base:
        parts.append(f"table_base={c.table_base:#x}")
    if c.split_blk_unmap:
        parts.append("split=1")
    return "config " + " ".join(parts)


# --- ops ---------------------------------------------------------------------------------------

def parse_op(tokens: list[str]) -> Op:
    kind, args = tokens[0], tokens[1:]
    if kind not in OP_TYPES:
        raise ValueError(f"unknown op {kind!r} (ops: {', '.join(OP_TYPES)})")
    kw = {}
    pos = []
    for tok in args:
        if "=" in tok:
            key, _, val = tok.partition("=")
            if key in kw:
                raise ValueError(f"{kind}: {key} given twice")
            kw[key] = val
        elif kw:
            raise ValueError(f"{kind}: positional argument {tok!r} after key=value")
        else:
            pos.append(tok)

    if kind == "map_sg":
        if len(pos) < 2:
            raise ValueError("map_sg: needs IOVA and at least one PADDR+LEN segment")
        segs = tuple(_parse_segment(t) for t in pos[1:])
        op_kw = {"iova": parse_num(pos[0], "iova"), "segs": segs}
    elif kind == "evict":
        if len(pos) != 1:
            raise ValueError("evict: needs IOVA or 'all'")
        op_kw = {"iova": None if pos[0] == "all" else parse_num(pos[0], "iova")}
    elif kind == "fail":
        if len(pos) != 1:
            raise ValueError("fail: needs SITE")
        if pos[0] not in SITES:
            raise ValueError(f"fail: unknown site {pos[0]!r} (sites: {', '.join(SITES)})")
        op_kw = {"site": pos[0]}
    else:
        names = _POSITIONAL[kind]
        if len(pos) != len(names):
            raise ValueError(f"{kind}: expected {len(names)} arguments "
                             f"({' '.join(n.upper() for n in names)}), got {len(pos)}")
        op_kw = {n: parse_num(t, n) for n, t in zip(names, pos, strict=True)}

    allowed = {f.name for f in fields(OP_TYPES[kind])} & {"prot", "nth", "err"}
    for key, val in kw.items():
        if key not in allowed:
            raise ValueError(f"{kind}: unknown key {key!r}"
                             + (f" (keys: {', '.join(sorted(allowed))})" if allowed else ""))
        if key == "prot":
            op_kw["prot"] = parse_prot(val)
        elif key == "nth":
            op_kw["nth"] = parse_num(val, "nth")
            if op_kw["nth"] < 1:
                raise ValueError("fail: nth counts from 1")
        elif key == "err":
            op_kw["err"] = parse_errno(val)
    return OP_TYPES[kind](**op_kw)


def _parse_segment(tok: str) -> Segment:
    bus = tok.startswith("p2p:")
    body = tok[4:] if bus else tok
    paddr, plus, length = body.partition("+")
    if not plus:
        raise ValueError(f"map_sg: segment {tok!r} is not PADDR+LEN (or p2p:PADDR+LEN)")
    return Segment(parse_num(paddr, "segment paddr"), parse_num(length, "segment length"), bus)


def format_op(op: Op) -> str:
    k = op.kind
    if isinstance(op, (Map, MapNosync)):
        s = f"{k} {fmt_addr(op.iova)} {fmt_addr(op.paddr)} {fmt_size(op.size)}"
    elif isinstance(op, (Sync, Unmap, PtSyncMap)):
        s = f"{k} {fmt_addr(op.iova)} {fmt_size(op.size)}"
    elif isinstance(op, MapSg):
        segs = " ".join(f"{'p2p:' if g.bus else ''}{fmt_addr(g.paddr)}+{fmt_size(g.length)}"
                        for g in op.segs)
        s = f"{k} {fmt_addr(op.iova)} {segs}"
    elif isinstance(op, PtMapPages):
        s = f"{k} {fmt_addr(op.iova)} {fmt_addr(op.paddr)} {fmt_size(op.pgsize)} {op.pgcount}"
    elif isinstance(op, PtUnmapPages):
        s = f"{k} {fmt_addr(op.iova)} {fmt_size(op.pgsize)} {op.pgcount}"
    elif isinstance(op, (PtIovaToPhys, Smmu)):
        s = f"{k} {fmt_addr(op.iova)}"
    elif isinstance(op, Evict):
        s = f"{k} {'all' if op.iova is None else fmt_addr(op.iova)}"
    elif isinstance(op, Fail):
        s = f"{k} {op.site}" + (f" nth={op.nth}" if op.nth != 1 else "") + \
            (f" err={fmt_errno(op.err)}" if op.err is not None else "")
    else:
        raise TypeError(f"not an op: {op!r}")
    if hasattr(op, "prot") and op.prot != PROT_RW:
        s += f" prot={fmt_prot(op.prot)}"
    return s


# --- whole files -------------------------------------------------------------------------------

def parse_scenario(text: str, source: str = "<ops>") -> Scenario:
    lines = text.splitlines()
    config: Config | None = None
    ops: list[Op] = []
    seen_version = False
    for lineno, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not seen_version:
            if not stripped:
                continue
            if stripped != VERSION_LINE:
                if stripped.startswith("# iopgfuzz ops"):
                    raise OpsSyntaxError(f"unsupported version line {stripped!r} "
                                         f"(this iopgfuzz reads {VERSION_LINE!r})", lineno, source)
                raise OpsSyntaxError(f"the first line must be {VERSION_LINE!r}", lineno, source)
            seen_version = True
            continue
        body = raw.split("#", 1)[0].strip()
        if not body:
            continue
        tokens = body.split()
        try:
            if tokens[0] == "config":
                if config is not None:
                    raise ValueError("a second config line")
                if ops:
                    raise ValueError("config must come before the first op")
                config = parse_config(tokens[1:])
            else:
                ops.append(parse_op(tokens))
        except ValueError as e:
            raise OpsSyntaxError(str(e), lineno, source) from None
    if not seen_version:
        raise OpsSyntaxError(f"empty file: the first line must be {VERSION_LINE!r}", None, source)
    return Scenario(config or Config(), tuple(ops))


def format_scenario(sc: Scenario, comments: dict[int, str] | None = None) -> str:
    out = [VERSION_LINE, format_config(sc.config)]
    for i, op in enumerate(sc.ops):
        line = format_op(op)
        if comments and i in comments:
            line += f"   # {comments[i]}"
        out.append(line)
    return "\n".join(out) + "\n"
