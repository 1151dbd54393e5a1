"""Binary form of the op language, for libFuzzer/Atheris.

`decode` accepts any byte string and never raises: missing bytes read as zero, every byte value
maps to some legal field value, and at most `MAX_OPS` ops are read.  `encode` is its inverse on
scenarios: `decode(encode(s)) == s` for every scenario the text form can express, so text and
binary convert both ways without loss.

Layout: a config block, then ops.  Numbers are unsigned LEB128 varints (masked to 64 bits).

    config  fmt, granule, ias, oas, quirks, flags[, page_size][, pgsize][, table_base >> 16]
    op      opcode, fields...   (opcode = byte % 12, in OPCODES order)

The quirks byte holds QUIRK_ORDER in bits 0-6 and `split_blk_unmap` in bit 7 (added after the
others: a bit every decoder before it ignored, so every input `encode` ever wrote decodes as
it did, and no byte moves).
"""

from __future__ import annotations

from model import Config
from model.config import CONCAT_LEGACY, CONCAT_MANDATORY, FORMATS, QUIRK_BITS

from . import ops as O

MAX_OPS = 64
MAX_SEGS = 64
#: A `fail` op's `nth` in the binary form: 1..MAX_NTH.
MAX_NTH = 1 << 20
U64 = (1 << 64) - 1

OPCODES = (O.Map, O.MapNosync, O.Sync, O.MapSg, O.Unmap, O.PtMapPages, O.PtUnmapPages,
           O.PtSyncMap, O.PtIovaToPhys, O.Smmu, O.Evict, O.Fail)
_OPCODE = {t: i for i, t in enumerate(OPCODES)}
GRANULES = (1 << 12, 1 << 14, 1 << 16)
LINES = (64, 32, 128)
#: Address sizes, most interesting first, then every other value 1..64 (a bijection on 64).
ADDR_SIZES = (48, 39, 40, 42, 44, 36, 32, 52, 47, 41, 43, 45, 46, 34, 35, 37, 38, 33, 49, 50,
              51) + tuple(v for v in range(1, 65) if v not in (
                  48, 39, 40, 42, 44, 36, 32, 52, 47, 41, 43, 45, 46, 34, 35, 37, 38, 33, 49,
                  50, 51))
_ADDR_INDEX = {v: i for i, v in enumerate(ADDR_SIZES)}
QUIRK_ORDER = ("ttbr1", "no_warn", "ns", "s2fwb", "hd", "outer_wbwa", "no_perms")
#: Bit of the quirks byte that carries `Config.split_blk_unmap` (the one QUIRK_ORDER leaves).
SPLIT_BIT = 1 << len(QUIRK_ORDER)
SITES = ("alloc", "sync_map")
PROT_MASK = 0x3F

assert len(ADDR_SIZES) == 64 and len(set(ADDR_SIZES)) == 64
assert SPLIT_BIT == 0x80


class Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.data)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        # byte() inlined: the campaign decodes every input twice (mutator and target), and
        # most of an input's bytes are varints.  A missing byte reads as 0, which ends it.
        data, pos = self.data, self.pos
        end = min(len(data), pos + 10)
        value = shift = 0
        while pos < end:
            b = data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
        self.pos = pos
        return value & U64


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


# --- config ------------------------------------------------------------------------------------

def decode_config(r: Reader) -> Config:
    fmt = FORMATS[r.byte() % len(FORMATS)]
    granule = GRANULES[r.byte() % 3]
    ias = ADDR_SIZES[r.byte() % 64]
    oas = ADDR_SIZES[r.byte() % 64]
    qb = r.byte()
    quirks = 0
    for i, name in enumerate(QUIRK_ORDER):
        if qb >> i & 1:
            quirks |= QUIRK_BITS[name]
    flags = r.byte()
    c = Config(fmt=fmt, granule=granule, ias=ias, oas=oas, quirks=quirks,
               line=LINES[flags & 3] if flags & 3 != 3 else 64,
               concat=CONCAT_LEGACY if flags & 4 else CONCAT_MANDATORY,
               enoent_bug=not flags & 8, coherent_walk=bool(flags & 16),
               split_blk_unmap=bool(qb & SPLIT_BIT))
    if flags & 32:
        c = c.with_(page_size=GRANULES[r.byte() % 3])
    if flags & 64:
        c = c.with_(pgsize_bitmap=r.varint())
    if flags & 128:
        c = c.with_(table_base=(r.varint() << 16) & U64)
    return c


def encode_config(c: Config) -> bytes:
    qb = sum(1 << i for i, name in enumerate(QUIRK_ORDER) if c.quirks & QUIRK_BITS[name])
    if c.split_blk_unmap:
        qb |= SPLIT_BIT
    defaults = Config()
    flags = LINES.index(c.line) | (4 if c.concat == CONCAT_LEGACY else 0) | \
        (0 if c.enoent_bug else 8) | (16 if c.coherent_walk else 0)
    tail = b""
    if c.page_size != defaults.page_size:
        flags |= 32
        tail += bytes([GRANULES.index(c.page_size)])
    if c.pgsize_bitmap is not None:
        flags |= 64
        tail += _varint(c.pgsize_bitmap)
    if c.table_base != defaults.table_base:
        flags |= 128
        tail += _varint(c.table_base >> 16)
    return bytes([FORMATS.index(c.fmt), GRANULES.index(c.granule), _ADDR_INDEX[c.ias],
                  _ADDR_INDEX[c.oas], qb, flags]) + tail


# --- ops ---------------------------------------------------------------------------------------

def decode_op(r: Reader) -> O.Op:
    t = OPCODES[r.byte() % len(OPCODES)]
    if t in (O.Map, O.MapNosync):
        return t(r.varint(), r.varint(), r.varint(), r.byte() & PROT_MASK)
    if t in (O.Sync, O.Unmap, O.PtSyncMap):
        return t(r.varint(), r.varint())
    if t is O.MapSg:
        iova = r.varint()
        prot = r.byte() & PROT_MASK
        n = r.byte() % MAX_SEGS + 1
        segs = []
        for _ in range(n):
            bus = bool(r.byte() & 1)
            segs.append(O.Segment(r.varint(), r.varint(), bus))
        return O.MapSg(iova, tuple(segs), prot)
    if t is O.PtMapPages:
        return O.PtMapPages(r.varint(), r.varint(), r.varint(), r.varint(), r.byte() & PROT_MASK)
    if t is O.PtUnmapPages:
        return O.PtUnmapPages(r.varint(), r.varint(), r.varint())
    if t in (O.PtIovaToPhys, O.Smmu):
        return t(r.varint())
    if t is O.Evict:
        return O.Evict(r.varint() if r.byte() & 1 else None)
    # Fail
    site = SITES[r.byte() % 2]
    nth = r.varint() % MAX_NTH + 1
    e = r.byte()
    err = -e if e else None
    return O.Fail(site, nth, err)


def encode_op(op: O.Op) -> bytes:
    code = bytes([_OPCODE[type(op)]])
    v = _varint
    if isinstance(op, (O.Map, O.MapNosync)):
        return code + v(op.iova) + v(op.paddr) + v(op.size) + bytes([op.prot])
    if isinstance(op, (O.Sync, O.Unmap, O.PtSyncMap)):
        return code + v(op.iova) + v(op.size)
    if isinstance(op, O.MapSg):
        out = code + v(op.iova) + bytes([op.prot, len(op.segs) - 1])
        for s in op.segs:
            out += bytes([int(s.bus)]) + v(s.paddr) + v(s.length)
        return out
    if isinstance(op, O.PtMapPages):
        return code + v(op.iova) + v(op.paddr) + v(op.pgsize) + v(op.pgcount) + bytes([op.prot])
    if isinstance(op, O.PtUnmapPages):
        return code + v(op.iova) + v(op.pgsize) + v(op.pgcount)
    if isinstance(op, (O.PtIovaToPhys, O.Smmu)):
        return code + v(op.iova)
    if isinstance(op, O.Evict):
        return code + (b"\x00" if op.iova is None else b"\x01" + v(op.iova))
    if isinstance(op, O.Fail):
        err = 0 if op.err is None else -op.err
        return code + bytes([SITES.index(op.site)]) + v(op.nth - 1) + bytes([err])
    raise TypeError(f"not an op: {op!r}")


def encodable(sc: O.Scenario) -> str | None:
    """Why `sc` has no binary form (None when it has one)."""
    for i, op in enumerate(sc.ops):
        if isinstance(op, O.MapSg) and not 1 <= len(op.segs) <= MAX_SEGS:
            return f"op {i}: map_sg has {len(op.segs)} segments (binary form: 1..{MAX_SEGS})"
        if isinstance(op, O.Fail) and (op.nth > MAX_NTH or (op.err is not None
                                                            and not -255 <= op.err < 0)):
            return f"op {i}: fail nth/err outside the binary form's range"
    if len(sc.ops) > MAX_OPS:
        return f"{len(sc.ops)} ops (binary form: at most {MAX_OPS})"
    if sc.config.table_base % (1 << 16):
        return "table_base not 64K-aligned"
    return None


def decode(data: bytes) -> O.Scenario:
    r = Reader(data)
    config = decode_config(r)
    ops = []
    while not r.exhausted and len(ops) < MAX_OPS:
        ops.append(decode_op(r))
    return O.Scenario(config, tuple(ops))


def encode(sc: O.Scenario) -> bytes:
    why = encodable(sc)
    if why:
        raise ValueError(f"no binary form: {why}")
    return encode_config(sc.config) + b"".join(encode_op(op) for op in sc.ops)
