"""Findings: the fixed vocabulary of design §5 and their stable one-line signatures.

A signature is `kind|variant|where|level|config-class`.  It must not depend on addresses, op
indices, process or hash seed, so that one root cause lands in one bucket across runs.  Fields
that only say how a cause happened to show, not what the cause is, are `-` for some kinds
(`Finding.signature`; docs/oracles.md, "Signatures").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from model.interface import WorldInterface

# Correctness and safety: crashes by default.
STALE_READ = "stale-read"
BAD_WALK = "bad-walk"
OOB_ACCESS = "oob-access"
FOREIGN_WALK = "foreign-walk"
WARN = "warn"
LOST_ERROR = "lost-error"
CONTINUED_AFTER_ERROR = "continued-after-error"
RETURN_MISMATCH = "return-mismatch"
STATE_MISMATCH = "state-mismatch"
MODEL_ERROR = "model-error"
SANITIZER = "sanitizer"       # a C world's undefined-behaviour checks fired (cworld/shim/ubsan.c)
# Efficiency: recorded; crashes only with --strict.
CMO_REGRESSION = "cmo-regression"
REDUNDANT_CLEAN = "redundant-clean"
# Upstream: the reference world (the unpatched kernel) itself misbehaved in an op.  Recorded and
# bucketed, attributed to the reference, never a crash of the variant (docs/oracles.md).
UPSTREAM = "upstream"

CORRECTNESS_KINDS = (STALE_READ, BAD_WALK, OOB_ACCESS, FOREIGN_WALK, WARN, LOST_ERROR,
                     CONTINUED_AFTER_ERROR, RETURN_MISMATCH, STATE_MISMATCH, MODEL_ERROR,
                     SANITIZER)
EFFICIENCY_KINDS = (CMO_REGRESSION, REDUNDANT_CLEAN)
UPSTREAM_KINDS = (UPSTREAM,)
ALL_KINDS = CORRECTNESS_KINDS + EFFICIENCY_KINDS + UPSTREAM_KINDS


def is_crash(kind: str, strict: bool = False) -> bool:
    """Whether a finding of `kind` fails a campaign, a replay or a CI run: correctness always,
    efficiency with --strict, upstream never (it is not the variant's)."""
    return kind in CORRECTNESS_KINDS or (strict and kind in EFFICIENCY_KINDS)

#: Kinds whose signature leaves the level out: the level a stale walk differs at is the level
#: the mapping happened to end at (a block, a table's leaves), whatever left it uncleaned.
SIGNATURE_WITHOUT_LEVEL = (STALE_READ,)
#: Kinds whose signature leaves the config class out: error propagation does not depend on the
#: table's shape, a WARN's site already names the check that fired, and a walk that leaves its
#: range is placed by its level from the PGD (one line of a walker over-walks a small and a
#: concatenated PGD alike: findings.md §2).
SIGNATURE_WITHOUT_CLASS = (LOST_ERROR, CONTINUED_AFTER_ERROR, WARN, FOREIGN_WALK)


@dataclass
class Finding:
    kind: str
    variant: str
    where: str
    level: str
    config_class: str
    op_index: int
    message: str
    detail: dict = field(default_factory=dict)
    #: the PGD's level: the signature counts levels from it (`level_name`)
    start_level: int | None = None

    @property
    def signature(self) -> str:
        where, level, cclass = self.where, self.level, self.config_class
        if level.startswith("L") and self.start_level is not None:
            level = level_name(int(level[1:]), self.start_level)
        if self.kind in SIGNATURE_WITHOUT_LEVEL:
            level = "-"
        if self.kind in SIGNATURE_WITHOUT_CLASS:
            cclass = "-"
        if self.kind == FOREIGN_WALK and self.detail.get("request", {}).get("size") == 0:
            # a walk on an empty request is wrong wherever it goes: one cause in every config
            where, level, cclass = f"{where}:empty", "-", "-"
        if self.kind == STALE_READ and where in ("past-ias", "unaligned", "smmu"):
            # a synced range running past the top of the table, or not a whole number of
            # granules: its arithmetic, not the table's shape; a later read gone stale: what an
            # op in between did to synced entries (6.12's split on unmap), not the shape
            cclass = "-"
        if self.kind == FOREIGN_WALK and where == "past-ias":
            # a walk on a request that leaves the input region goes wherever the table's shape
            # takes the part outside (the top level for a start past the IAS, lower for an
            # end past it): one cause, not bounding the walk by the IAS
            level = "-"
        return "|".join((self.kind, self.variant, where, level, cclass))

    @property
    def bucket(self) -> str:
        return signature_hash(self.signature)

    @property
    def efficiency(self) -> bool:
        return self.kind in EFFICIENCY_KINDS

    @property
    def correctness(self) -> bool:
        return self.kind in CORRECTNESS_KINDS

    def as_json(self) -> dict:
        return {"kind": self.kind, "signature": self.signature, "op_index": self.op_index,
                "message": self.message, "detail": self.detail}

    def __repr__(self) -> str:
        return f"<Finding {self.signature} @op{self.op_index}: {self.message}>"


def signature_hash(signature: str) -> str:
    return hashlib.sha1(signature.encode()).hexdigest()[:12]


def level_name(level: int, start_level: int) -> str:
    """A signature's level, counted from the PGD's: `top` (the start level), `top+1`, ...
    What a walker does at a level depends on where that level sits under the PGD, not on its
    number (one root cause shows at L1 under a level-0 PGD and at L2 under a level-1 one)."""
    rel = level - start_level
    return "top" if rel == 0 else f"top{rel:+d}"


def config_class(world: WorldInterface) -> str:
    """Coarse on purpose: the PGD's shape relative to a table page (small / exact / concat)
    and TTBR1 are what change how a walker indexes; format and granule only change the
    numbers, so they stay out of the signature (one root cause, few buckets)."""
    g = world.geometry
    shape = ("exact" if g.pgd_bits == g.bits_per_level
             else "small" if g.pgd_bits < g.bits_per_level else "concat")
    return shape + ("/ttbr1" if world.config.quirks & (1 << 5) else "")
