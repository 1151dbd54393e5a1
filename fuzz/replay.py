"""`replay`: run inputs, print a readable trace or the JSON of design §6."""

from __future__ import annotations

import json
from pathlib import Path

from model import Variant

from . import findings as K
from .executor import OpRecord, Outcome, RunResult, run_scenario
from .ops import OpsSyntaxError, Scenario, parse_scenario


def load_input(path: str | Path) -> Scenario:
    """Read an input: `*.ops` files and files starting with the version line are text and
    parsed strictly; anything else is a binary (fuzzer) input, which always decodes."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise OpsSyntaxError(f"cannot read: {e.strerror}", None, str(p)) from None
    if p.suffix == ".ops" or raw.lstrip().startswith(b"# iopgfuzz ops"):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise OpsSyntaxError(f"not UTF-8 at byte {e.start}", None, str(p)) from None
        return parse_scenario(text, str(p))
    try:
        from .codec import decode
    except ImportError:
        raise OpsSyntaxError("not a .ops text file (no '# iopgfuzz ops v1' line)", None,
                             str(p)) from None
    return decode(raw)


def result_json(res: RunResult) -> dict:
    c = res.scenario.config
    out = {"variant": res.variant,
           "config": {"fmt": c.fmt, "granule": c.granule, "ias": c.ias, "oas": c.oas,
                      "quirks": c.quirk_names(), "line": c.line, "concat": c.concat,
                      "enoent_bug": c.enoent_bug, "coherent_walk": c.coherent_walk},
           "geometry": None, "ops": [], "findings": [f.as_json() for f in res.findings],
           "stats": None}
    if res.config_error:
        out["config_error"] = res.config_error
    if res.var is not None:
        out["geometry"] = res.var.geometry.as_dict()
        out["stats"] = {"reference": res.ref.stats(), "variant": res.var.stats()}
    for rec in res.records:
        out["ops"].append({"index": rec.index, "text": rec.op.text(),
                           "reference": rec.ref.as_json(), "variant": rec.var.as_json()})
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
             f"ias={c.ias} oas={c.oas} line={c.line} quirks={','.join(c.quirk_names()) or 'none'}"]
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
    correctness = [f for f in res.findings if not f.efficiency]
    lines.append(f"{len(correctness)} finding(s), "
                 f"{len(res.findings) - len(correctness)} efficiency note(s)")
    for f in res.findings:
        lines.append(f"  {f.signature}  (op {f.op_index})")
    return "\n".join(lines) + "\n"


def _fmt_record(rec: OpRecord, variant: str, width: int) -> list[str]:
    out = [f"[{rec.index}] {rec.op.text()}",
           f"    {'reference':<{width}}  {_fmt_outcome(rec.ref)}",
           f"    {variant:<{width}}  {_fmt_outcome(rec.var)}"]
    for f in rec.findings:
        tag = "note" if f.efficiency else "FINDING"
        out.append(f"    !! {tag} {f.kind}: {f.message}")
        if "walk_mem" in f.detail:
            out.append(f"       SMMU {f.detail['walk_mem']}")
            out.append(f"       CPU  {f.detail['walk_cpu']}")
    return out


def replay_file(path: str, variant: Variant, as_json: bool, strict: bool) -> tuple[int, str]:
    """Returns (exit code, output).  Exit 1 when there are findings (efficiency ones only
    with `strict`), 2 for an input that cannot be read or a config the kernel refuses."""
    sc = load_input(path)
    res = run_scenario(sc, variant)
    text = json.dumps(result_json(res), indent=1) if as_json else format_trace(res)
    if res.config_error:
        return 2, text
    counted = [f for f in res.findings if strict or f.kind not in K.EFFICIENCY_KINDS]
    return (1 if counted else 0), text
