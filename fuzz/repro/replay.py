"""`replay`: run inputs, print a readable trace or the JSON of design §6."""

from __future__ import annotations

import json
from pathlib import Path

from model import Variant

from ..judge import findings as K
from ..lang.codec import decode
from ..lang.ops import VERSION_LINE, OpsSyntaxError, Scenario, parse_scenario
from ..run.executor import OpRecord, Outcome, RunResult, run_scenario
from .triage import secondary_of


def load_input(path: str | Path) -> Scenario:
    """Read an input file, or a bucket folder (its `input.ops`).

    `*.ops` files and files starting with `# iopgfuzz` are text and parsed strictly; anything
    else is a binary (fuzzer) input, which always decodes.  Raises `OpsSyntaxError`, naming the
    file (and the line where there is one) and what is wrong, for a file that cannot be read, an
    empty file, a text file that is not UTF-8, does not parse or looks cut short (no final
    newline, or neither a config line nor an op), and a bucket folder that is not complete.
    """
    p = input_path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise OpsSyntaxError(f"cannot read: {e.strerror}", None, str(p)) from None
    if not raw:
        raise OpsSyntaxError("empty file (a .ops file starts with the line "
                             f"{VERSION_LINE!r}; a binary input holds at least a config)",
                             None, str(p))
    if p.suffix == ".ops" or raw.lstrip().startswith(b"# iopgfuzz"):
        return parse_ops_file(raw, str(p))
    return decode(raw)


def parse_ops_file(raw: bytes, source: str) -> Scenario:
    """A whole `.ops` file: `parse_scenario` plus what only a file can get wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise OpsSyntaxError(f"not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}); "
                             "a .ops file is text (give a binary fuzzer input another name, "
                             "e.g. input.bin)", line, source) from None
    lines = text.splitlines()
    complete = text.endswith(("\n", "\r"))
    try:
        sc = parse_scenario(text, source)
    except OpsSyntaxError as e:
        if complete or e.line != len(lines):
            raise
        raise OpsSyntaxError(f"{e.message} (the file ends inside this line, with no final "
                             "newline: it looks cut short)", e.line, source) from None
    if not complete:
        raise OpsSyntaxError("the file ends inside this line (no final newline): it looks cut "
                             "short; if the line is complete, end it with a newline",
                             len(lines), source)
    if not sc.ops and not any(ln.split("#", 1)[0].split()[:1] == ["config"] for ln in lines):
        raise OpsSyntaxError("no config line and no op after the version line: the file looks "
                             "cut short", len(lines), source)
    return sc


def input_path(path: str | Path) -> Path:
    """`path` itself, or for a bucket folder its `input.ops` once the bucket is complete."""
    p = Path(path)
    if not p.is_dir():
        return p
    from .triage import check_bucket

    if not any((p / name).exists() for name in ("report.txt", "input.ops", "input.bin")):
        raise OpsSyntaxError("is a folder, not an input file (a bucket folder holds input.bin, "
                             "input.ops and report.txt)", None, str(p))
    problem = check_bucket(p)
    if problem:
        raise OpsSyntaxError(problem.message, problem.line, str(problem.path))
    return p / "input.ops"


def result_json(res: RunResult) -> dict:
    c = res.scenario.config
    out = {"variant": res.variant,
           "config": {"fmt": c.fmt, "granule": c.granule, "ias": c.ias, "oas": c.oas,
                      "quirks": c.quirk_names(), "line": c.line, "concat": c.concat,
                      "enoent_bug": c.enoent_bug, "coherent_walk": c.coherent_walk},
           "geometry": None, "ops": [], "findings": findings_json(res.findings),
           "stats": None}
    if c.split_blk_unmap:          # only when set: the JSON of every other input is unchanged
        out["config"]["split_blk_unmap"] = True
    if res.config_error:
        out["config_error"] = res.config_error
    if res.var is not None:
        out["geometry"] = res.var.geometry.as_dict()
        out["stats"] = {"reference": res.ref.stats(), "variant": res.var.stats()}
    for rec in res.records:
        out["ops"].append({"index": rec.index, "text": rec.op.text(),
                           "reference": rec.ref.as_json(), "variant": rec.var.as_json()})
    return out


def findings_json(findings) -> list[dict]:
    """design §6's findings, each with `primary` (whether it opens a bucket: the first of its
    category in the run) and `secondary_of` (the signature of the primary that explains it, or
    null), as `fuzz.repro.triage` buckets them."""
    out = []
    for f, p in zip(findings, secondary_of(findings), strict=True):
        out.append({**f.as_json(), "primary": p is None,
                    "secondary_of": None if p is None else p.signature})
    return out


def _fmt_ret(ret) -> str:
    if ret is None:
        return "-"
    if hasattr(ret, "describe"):
        return ret.describe()
    if isinstance(ret, tuple):
        return "(" + ", ".join(_fmt_ret(r) for r in ret) + ")"
    if isinstance(ret, int) and ret >= 0 and ret >> 63:
        return f"{ret:#x} (= {ret - (1 << 64)})"
    if isinstance(ret, int) and ret > 9:
        return hex(ret)
    return str(ret)


def _fmt_outcome(o: Outcome) -> str:
    parts = [f"ret={_fmt_ret(o.ret)}"]
    if o.cleans:
        parts.append("cleans " + " ".join(f"{k}:{c}/{ln}" for k, (c, ln) in o.cleans.items()))
    warns = [e for e in o.events if e.kind == "WARN"]
    if warns:
        sites = sorted({e.site for e in warns})
        parts.append(f"WARN x{sum(e.count for e in warns)} ({', '.join(sites)})")
    other = [e for e in o.events if e.kind != "WARN"]
    if other:
        parts.append("events " + "; ".join(f"{e.kind} {e.site}" for e in other[:3]))
    if o.fired:
        parts.append("failpoint " + ", ".join(f"{f.site}={f.err}" for f in o.fired))
    if o.crashed:
        parts.append(f"CRASHED: {o.crashed}")
    if o.error:
        parts.append("MODEL ERROR:\n" + o.error)
    return "  ".join(parts)


def format_trace(res: RunResult) -> str:
    c = res.scenario.config
    lines = [f"variant {res.variant} against reference; {c.fmt} {c.granule >> 10}K "
             f"ias={c.ias} oas={c.oas} line={c.line} quirks={','.join(c.quirk_names()) or 'none'}"
             + (" split=1 (v6.12 split-on-unmap)" if c.split_blk_unmap else "")]
    if res.config_error:
        lines.append(f"configuration refused by the kernel: {res.config_error}")
        return "\n".join(lines) + "\n"
    g = res.var.geometry
    lines.append(f"geometry: {g.levels} levels from L{g.start_level}, PGD {g.pgd_entries} "
                 f"entries (pgd_bits {g.pgd_bits}, {g.bits_per_level} bits/level), "
                 f"page sizes {g.pgsize_bitmap:#x}")
    width = max(len("reference"), len(res.variant))
    for rec in res.records:
        lines.extend(_fmt_record(rec, res.variant, width))
    ref, var = res.ref.stats(), res.var.stats()
    lines.append(f"lines cleaned: reference {ref['lines_cleaned']} in {ref['cmo_calls']} calls, "
                 f"{res.variant} {var['lines_cleaned']} in {var['cmo_calls']} calls")
    correctness = [f for f in res.findings if f.correctness]
    upstream = [f for f in res.findings if f.kind in K.UPSTREAM_KINDS]
    lines.append(f"{len(correctness)} finding(s), "
                 f"{len(res.findings) - len(correctness) - len(upstream)} efficiency note(s)"
                 + (f", {len(upstream)} upstream finding(s)" if upstream else ""))
    for f, p in zip(res.findings, secondary_of(res.findings), strict=True):
        lines.append(f"  {f.signature}  (op {f.op_index})" if p is None else
                     f"    {f.signature}  (op {f.op_index}; secondary of {p.signature})")
    return "\n".join(lines) + "\n"


def _fmt_record(rec: OpRecord, variant: str, width: int) -> list[str]:
    out = [f"[{rec.index}] {rec.op.text()}",
           f"    {'reference':<{width}}  {_fmt_outcome(rec.ref)}",
           f"    {variant:<{width}}  {_fmt_outcome(rec.var)}"]
    for f in rec.findings:
        tag = "FINDING" if f.correctness else "UPSTREAM" if f.kind in K.UPSTREAM_KINDS \
            else "note"
        out.append(f"    !! {tag} {f.kind}: {f.message}")
        if "walk_mem" in f.detail:
            out.append(f"       SMMU {f.detail['walk_mem']}")
            out.append(f"       CPU  {f.detail['walk_cpu']}")
    return out


def replay_file(path: str, variant: Variant, as_json: bool,
                strict: bool) -> tuple[int, str, str | None]:
    """Returns (exit code, output, error).  Exit 1 when there are findings (efficiency ones only
    with `strict`; upstream ones never: they are the reference's), 2 with an error message for a
    config the kernel refuses.  Raises
    OpsSyntaxError for an input that cannot be read."""
    sc = load_input(path)
    res = run_scenario(sc, variant)
    text = json.dumps(result_json(res), indent=1) if as_json else format_trace(res)
    if res.config_error:
        return 2, text, f"{path}: the kernel refuses this configuration: {res.config_error}"
    counted = [f for f in res.findings if K.is_crash(f.kind, strict)]
    return (1 if counted else 0), text, None
