"""ClusterFuzzLite / OSS-Fuzz: the continuously fuzzed targets, their seed corpora and dictionary.

The targets are `.clusterfuzzlite/<name>.py`; each one calls `run(name, sys.argv)`.  See
docs/clusterfuzzlite.md for the layout and for what counts as a crash.

This module is imported by those entry points *before* Atheris instruments `model` and `fuzz`
(`fuzz.target` does that as it imports them), so at module level it imports the standard library
only: every import of the codec, the model or the executor is inside a function.  A module of
`model` or `fuzz` imported too early would run uninstrumented, which libFuzzer cannot see.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: Options of the .options files, and why: docs/clusterfuzzlite.md, "Options".
MAX_LEN = 2048
#: libFuzzer keeps dictionary words of at most this many bytes (FuzzerDictionary.h: FixedWord<64>)
#: and silently drops longer ones.
MAX_DICT_WORD = 64
#: Out of every `BYTE_MUTATION_EVERY` mutations, one is libFuzzer's own byte-level mutation
#: (`atheris.Mutate`, which is what uses the dictionary); the others are `fuzz.gen.mutate`'s.
BYTE_MUTATION_EVERY = 10


@dataclass(frozen=True)
class CfliteTarget:
    name: str
    variant: str
    #: Correctness kinds already known for this variant (docs/findings.md, crashes/<variant>/):
    #: recorded in the bucket folder, never a crash.  Every other correctness kind is a crash.
    expected: tuple[str, ...] = ()


TARGETS = {t.name: t for t in (
    # The regression guard: `fixed` must stay clean, so every correctness finding is a crash.
    CfliteTarget("fuzz_fixed", "fixed"),
    # The posted patch: the kinds its reproducers in crashes/v1/ declare are recorded only.
    CfliteTarget("fuzz_v1", "v1", ("continued-after-error", "foreign-walk", "lost-error",
                                   "oob-access", "stale-read", "warn")),
)}


# --- the target at run time --------------------------------------------------------------------

class CorrectnessFinding(Exception):
    """Raised from TestOneInput so that libFuzzer reports the input as a crash."""


def expected_kinds(t: CfliteTarget, environ=os.environ) -> frozenset[str]:
    """`t.expected`, or IOPGFUZZ_EXPECTED_KINDS (comma-separated; empty or `-`: none) if set."""
    if "IOPGFUZZ_EXPECTED_KINDS" not in environ:
        return frozenset(t.expected)
    from ..judge.findings import ALL_KINDS  # (imports the model: call this after fuzz.target)

    kinds = {k.strip() for k in environ["IOPGFUZZ_EXPECTED_KINDS"].split(",")} - {"", "-"}
    unknown = kinds - set(ALL_KINDS)
    if unknown:
        raise SystemExit(f"IOPGFUZZ_EXPECTED_KINDS: unknown kind(s) {', '.join(sorted(unknown))}"
                         f" (kinds: {', '.join(ALL_KINDS)})")
    return frozenset(kinds)


def run(name: str, argv: list[str]) -> None:
    """Fuzz target `name` under libFuzzer; `argv` is libFuzzer's command line.

    The variant is the target's (IOPGFUZZ_VARIANT is overridden).  IOPGFUZZ_CRASHES defaults to
    a new temporary folder per process; IOPGFUZZ_CONFIG and IOPGFUZZ_STRICT work as for
    `fuzz/target.py`.  IOPGFUZZ_STOP_FIRST does not apply: see `test_one_input` below.
    """
    t = TARGETS[name]
    os.environ["IOPGFUZZ_VARIANT"] = t.variant
    if not os.environ.get("IOPGFUZZ_CRASHES"):
        os.environ["IOPGFUZZ_CRASHES"] = tempfile.mkdtemp(prefix=f"iopgfuzz-{name}-")

    import atheris
    import numpy  # noqa: F401  - before instrumentation (fuzz.target imports it first as well)

    from fuzz import target  # instruments model/ and fuzz/ as it imports them

    from ..gen.mutate import custom_crossover, custom_mutator
    from ..judge.findings import is_crash
    from ..repro.replay import format_trace
    from ..run.executor import run_scenario

    expected = expected_kinds(t)

    def crashes(kind: str) -> bool:
        return kind not in expected and is_crash(kind, target.STRICT)

    def test_one_input(data: bytes) -> None:
        """Stateless: an input crashes whenever it has a crashing finding, whatever this process
        has seen before, so the crash reproduces in any process and libFuzzer can minimise it.
        Every finding is still recorded in the bucket folder, as by `fuzz/target.py`."""
        res = run_scenario(target.decode(data), target.VARIANT)
        if not res.findings:
            return
        target.TRIAGE.record(data, res, lambda: format_trace(res))
        bad = [f for f in res.findings if crashes(f.kind)]
        if bad:
            f = bad[0]
            print(f"\n{format_trace(res)}", file=sys.stderr, flush=True)
            raise CorrectnessFinding(
                f"{f.signature}: {f.message} (op {f.op_index}; replay the crash file with "
                f"`python -m fuzz replay FILE --variant {t.variant}`)")

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        if seed % BYTE_MUTATION_EVERY == 0:
            return atheris.Mutate(data, max_size)
        return custom_mutator(data, max_size, seed)

    print(f"INFO: iopgfuzz {name}: variant {t.variant}; a crash is any "
          f"{'' if target.STRICT else 'correctness '}finding"
          + (f" except the known kinds {', '.join(sorted(expected))}" if expected else "")
          + f"; buckets in {target.TRIAGE.root}", file=sys.stderr, flush=True)
    atheris.Setup(argv, test_one_input, custom_mutator=mutator,
                  custom_crossover=custom_crossover)
    try:
        atheris.Fuzz()
    finally:
        target.TRIAGE.flush()


# --- seed corpora ------------------------------------------------------------------------------

def seed_inputs() -> list[bytes]:
    """The binary seeds of `python -m fuzz campaign`, sorted
    (`fuzz.campaigns.campaign.write_seeds`)."""
    from .campaign import write_seeds

    with tempfile.TemporaryDirectory() as d:
        n = write_seeds(Path(d))
        if n == 0:
            raise RuntimeError("no seeds: corpus/differential/*.ops not found next to fuzz/ "
                               "(run from a source tree)")
        return [p.read_bytes() for p in sorted(Path(d).glob("*.bin"))]


def write_seed_zip(path: Path, seeds: list[bytes]) -> int:
    """`path` = a flat zip of `seeds`, each named by its SHA-1 (OSS-Fuzz's convention), with
    fixed timestamps so that the same seeds always give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    names = set()
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for data in seeds:
            name = hashlib.sha1(data).hexdigest()
            if name in names:
                continue
            names.add(name)
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data, zipfile.ZIP_DEFLATED)
    os.replace(tmp, path)
    return len(names)


def write_seed_corpora(out_dir: Path, names: list[str] | None = None) -> dict[str, int]:
    """`<out_dir>/<target>_seed_corpus.zip` for each target; returns the seed count of each."""
    seeds = seed_inputs()
    return {n: write_seed_zip(Path(out_dir) / f"{n}_seed_corpus.zip", seeds)
            for n in (names or list(TARGETS))}


# --- the dictionary ----------------------------------------------------------------------------

SZ_4K = 1 << 12
#: Configuration blocks worth splicing in: every format and granule the model accepts, plus the
#: shapes the findings live in (TTBR1, small PGD, concatenated stage-2 PGDs, 52-bit).
DICT_CONFIGS = (
    ("arm64_s1_4K_48", dict(fmt="arm64-s1", granule=1 << 12, ias=48, oas=48)),
    ("arm64_s1_4K_39", dict(fmt="arm64-s1", granule=1 << 12, ias=39, oas=40)),
    ("arm64_s1_4K_48_ttbr1", dict(fmt="arm64-s1", granule=1 << 12, ias=48, oas=48,
                                  quirks="ttbr1")),
    ("arm64_s1_16K_48", dict(fmt="arm64-s1", granule=1 << 14, ias=48, oas=48)),
    ("arm64_s1_64K_48", dict(fmt="arm64-s1", granule=1 << 16, ias=48, oas=48)),
    ("arm64_s1_64K_52", dict(fmt="arm64-s1", granule=1 << 16, ias=52, oas=52)),
    ("arm64_s2_4K_40", dict(fmt="arm64-s2", granule=1 << 12, ias=40, oas=40)),
    ("arm64_s2_4K_40_legacy", dict(fmt="arm64-s2", granule=1 << 12, ias=40, oas=40,
                                   concat="legacy")),
    ("arm64_s2_16K_40", dict(fmt="arm64-s2", granule=1 << 14, ias=40, oas=40)),
    ("arm64_s2_64K_48", dict(fmt="arm64-s2", granule=1 << 16, ias=48, oas=48)),
    ("arm32_s1_4K_32", dict(fmt="arm32-s1", granule=1 << 12, ias=32, oas=40)),
    ("arm32_s2_4K_40", dict(fmt="arm32-s2", granule=1 << 12, ias=40, oas=40)),
    ("mali_4K_48", dict(fmt="mali", granule=1 << 12, ias=48, oas=40)),
)


def dict_config(kw: dict):
    from model import Config
    from model.config import QUIRK_BITS

    kw = dict(kw)
    if "quirks" in kw:
        kw["quirks"] = QUIRK_BITS[kw["quirks"]]
    return Config(**kw)


def human_size(n: int) -> str:
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def dictionary_entries() -> list[tuple[str, bytes, str]]:
    """(name, token, section) for every dictionary word, derived from `fuzz.lang.codec`."""
    from model.config import GRANULE_PGSIZES

    from ..lang import codec
    from ..lang import ops as O

    out: list[tuple[str, bytes, str]] = []

    def add(name: str, word: bytes, section: str) -> None:
        if all(word != w for _, w, _ in out):  # e.g. 2^39 is already there as size_512G
            out.append((name, word, section))

    sec = "opcodes: the first byte of an op (codec.OPCODES order)"
    for i, t in enumerate(codec.OPCODES):
        add(f"op_{t.kind.replace('.', '_')}", bytes([i]), sec)
    sec = "whole ops whose fields are all fixed"
    add("op_evict_all", codec.encode_op(O.Evict(None)), sec)
    for site in codec.SITES:
        add(f"op_fail_{site}", codec.encode_op(O.Fail(site, 1, None)), sec)
    sec = "configuration blocks (the input's first bytes)"
    for name, kw in DICT_CONFIGS:
        add(f"cfg_{name}", codec.encode_config(dict_config(kw)), sec)
    sec = "page and block sizes of every granule, as LEB128 varints"
    sizes = sorted({1 << b for v in GRANULE_PGSIZES.values() for b in range(64) if v >> b & 1})
    for s in sizes:
        add(f"size_{human_size(s)}", codec._varint(s), sec)
    sec = "2^N for the address sizes the codec puts first, and the last 4K page below each"
    for n in codec.ADDR_SIZES[:21]:
        add(f"addr_2p{n}", codec._varint(1 << n), sec)
    for n in codec.ADDR_SIZES[:21]:
        add(f"top_2p{n}", codec._varint((1 << n) - SZ_4K), sec)
    sec = "the top of the 64-bit space (u64 wrap-around)"
    add("u64_max", codec._varint(codec.U64), sec)
    add("u64_top_4K", codec._varint(codec.U64 + 1 - SZ_4K), sec)
    return out


def escape(word: bytes) -> str:
    """`word` in libFuzzer's dictionary syntax, every byte as \\xAB."""
    return "".join(f"\\x{b:02x}" for b in word)


def format_dictionary() -> str:
    lines = ["# iopgfuzz: libFuzzer dictionary for the binary op language (fuzz/lang/codec.py).",
             "# Generated by `python -m fuzz cflite-dict -o .clusterfuzzlite/iopgfuzz.dict`;",
             "# tests/test_clusterfuzzlite.py fails when it no longer matches the codec."]
    section = None
    for name, token, sec in dictionary_entries():
        if sec != section:
            lines += ["", f"# {sec}"]
            section = sec
        lines.append(f'{name}="{escape(token)}"')
    return "\n".join(lines) + "\n"


def parse_dictionary(text: str) -> list[tuple[str, bytes]]:
    """A libFuzzer dictionary file as libFuzzer reads it (FuzzerUtil.cpp, ParseDictionaryFile and
    ParseOneDictionaryEntry): blank and `#` lines are skipped, anything else must be
    `[name=]"..."` with printable characters, `\\\\`, `\\"` and `\\xAB`.  Returns (name, word) pairs
    (name '' when there is none); raises ValueError naming the line of the first bad entry."""
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        s = line.strip(" \t\r\f\v")
        if not s or s.startswith("#"):
            continue
        if len(s) < 3 or not s.endswith('"') or '"' not in s[:-1]:
            raise ValueError(f"line {lineno}: not [name=]\"...\": {line!r}")
        q = s.index('"')
        name, body = s[:q].strip().removesuffix("=").strip(), s[q + 1:-1]
        if not body:
            raise ValueError(f"line {lineno}: empty word")
        word = bytearray()
        i = 0
        while i < len(body):
            c = body[i]
            if not (c.isprintable() and c.isascii()) and c not in " \t":
                raise ValueError(f"line {lineno}: non-printable character {c!r}")
            if c == "\\":
                if body[i + 1:i + 2] in ("\\", '"'):
                    word.append(ord(body[i + 1]))
                    i += 2
                    continue
                h = body[i + 2:i + 4]
                if body[i + 1:i + 2] == "x" and len(h) == 2 and all(
                        ch in "0123456789abcdefABCDEF" for ch in h):
                    word.append(int(h, 16))
                    i += 4
                    continue
                raise ValueError(f"line {lineno}: invalid escape in {line!r}")
            word.append(ord(c))
            i += 1
        out.append((name, bytes(word)))
    return out


def max_encoded_len() -> int:
    """The longest input `codec.decode` can read anything from: a config with every optional
    field, then `MAX_OPS` map_sg ops of `MAX_SEGS` segments with 10-byte varints.  Any byte after
    that is ignored."""
    from ..lang import codec

    varint = len(codec._varint(codec.U64))
    config = 6 + 1 + 2 * varint
    map_sg = 1 + varint + 1 + 1 + codec.MAX_SEGS * (1 + 2 * varint)
    return config + codec.MAX_OPS * map_sg
